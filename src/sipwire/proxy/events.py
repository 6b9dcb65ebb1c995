"""What the proxy asks of the I/O edge, and what it reports (pull with ``next_event()``).

The proxy is sans-I/O: whatever needs the location service, the user
store or DNS comes out as a question with a ticket, and the edge answers
it by calling the proxy with that ticket::

    LookupTargets(ticket, aor)      -> proxy.targets_found(ticket, bindings, now)
    ResolveTargets(ticket, uri)     -> proxy.targets_resolved(ticket, targets, now)
    LookupUser(ticket, name, realm) -> proxy.user_found(ticket, user, now)
    UseNonceCount(ticket, nonce, nc, expires_at) -> proxy.nonce_count_used(ticket, fresh, now)

An answer whose ticket the proxy forgot (the request was cancelled, or
answered meanwhile) is ignored, so the edge never needs to check. One
slotted dataclass per event, read-only by convention.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from sipwire.message import SipUri
from sipwire.registrar.model import Binding, User
from sipwire.transport.address import Target

__all__ = [
    "LookupTargets",
    "LookupUser",
    "ProxyEvent",
    "Queries",
    "RequestAnswered",
    "ResolveTargets",
    "UseNonceCount",
]


@dataclass(slots=True, eq=False)
class ProxyEvent:
    """Base of every proxy event."""


@dataclass(slots=True, eq=False)
class LookupTargets(ProxyEvent):
    """Fetch the bindings of ``aor`` from the location service (``store.bindings``).

    Answer with ``targets_found(ticket, bindings, now)``; an empty list when the
    AOR has none (the proxy answers 480), None when the store failed (503).
    """

    ticket: int
    aor: str
    """The canonical AOR (§10.3 step 5, ``registrar.rules.canonical_aor``)."""


@dataclass(slots=True, eq=False)
class ResolveTargets(ProxyEvent):
    """Resolve ``uri`` as RFC 3263 says (NAPTR, SRV, A/AAAA).

    Answer with ``targets_resolved(ticket, targets, now)``: the ordered targets,
    or an empty list when the name does not resolve (the branch fails with 503).
    """

    ticket: int
    uri: SipUri


@dataclass(slots=True, eq=False)
class LookupUser(ProxyEvent):
    """Fetch the user ``username`` of the realm (the domain) from the user store.

    Answer with ``user_found(ticket, user, now)``; None when there is no such user.
    """

    ticket: int
    username: str
    realm: str


@dataclass(slots=True, eq=False)
class UseNonceCount(ProxyEvent):
    """Record that ``nc`` was used with ``nonce`` (``store.use_nonce_count``).

    Answer with ``nonce_count_used(ticket, fresh, now)``: False when the count was
    used before (a replay: the request is challenged again).
    """

    ticket: int
    nonce: str
    nc: int
    expires_at: float


@dataclass(slots=True, eq=False)
class RequestAnswered(ProxyEvent):
    """A final response went upstream for a request (forwarded or our own): for metrics."""

    method: str
    status: int
    forwarded: bool
    """True for a response that came from downstream, False for one the proxy made."""


Answer: TypeAlias = Callable[[object, float], None]


class Queries:
    """The questions in flight: a ticket per question, the callback that takes its answer.

    Shared by everything in one proxy that asks the edge something, so tickets
    never collide. ``events`` is the proxy's outbox.
    """

    __slots__ = ("_next", "_waiting", "events", "limit")

    def __init__(self, limit: int = 10_000) -> None:
        self._next = 0
        self._waiting: dict[int, Answer] = {}
        self.events: deque[ProxyEvent] = deque()
        self.limit = limit
        """Questions that may wait at once (``ask_*`` raise OverflowError beyond)."""

    def __len__(self) -> int:
        return len(self._waiting)

    def _ticket(self, answer: Answer) -> int:
        if len(self._waiting) >= self.limit:
            raise OverflowError("too many questions waiting for the edge")
        self._next += 1
        self._waiting[self._next] = answer
        return self._next

    def lookup_targets(self, aor: str, answer: Callable[[Sequence[Binding], float], None]) -> int:
        ticket = self._ticket(answer)  # type: ignore[arg-type]
        self.events.append(LookupTargets(ticket, aor))
        return ticket

    def resolve(self, uri: SipUri, answer: Callable[[list[Target], float], None]) -> int:
        ticket = self._ticket(answer)  # type: ignore[arg-type]
        self.events.append(ResolveTargets(ticket, uri))
        return ticket

    def lookup_user(
        self, username: str, realm: str, answer: Callable[[User | None, float], None]
    ) -> int:
        ticket = self._ticket(answer)  # type: ignore[arg-type]
        self.events.append(LookupUser(ticket, username, realm))
        return ticket

    def use_nonce_count(
        self, nonce: str, nc: int, expires_at: float, answer: Callable[[bool, float], None]
    ) -> int:
        ticket = self._ticket(answer)  # type: ignore[arg-type]
        self.events.append(UseNonceCount(ticket, nonce, nc, expires_at))
        return ticket

    def answer(self, ticket: int, value: object, now: float) -> bool:
        """Deliver the edge's answer; False when the ticket is unknown (forgotten)."""
        callback = self._waiting.pop(ticket, None)
        if callback is None:
            return False
        callback(value, now)
        return True

    def forget(self, ticket: int | None) -> None:
        """Drop a question whose answer is no longer wanted."""
        if ticket is not None:
            self._waiting.pop(ticket, None)
