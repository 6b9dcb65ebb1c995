"""Admission of new requests under load: shed early, cheaply and fairly.

Sans-I/O. The transaction layer asks :meth:`Admission.check` before it
creates a server transaction for a new request; the answer is to admit it,
to shed it (a stateless 503 with Retry-After, RFC 3261 §21.5.4, that costs
no state and no retransmissions), or to drop it without a word (the
per-source rate limit, as kamailio's pike module does).

What is measured, per source address (the IP a request came from, not the
port):

- **offered rate**: new requests per second, an exponentially decaying
  count, admitted or not;
- **holdings**: work the source keeps the element busy with, reported by
  the transaction user (``hold``/``release``): an INVITE session waiting for
  its ACK, a call in progress.

What is decided:

- **hard limits** (transactions, bytes of requests not yet answered,
  holdings): past them every new request is shed, whoever sends it;
- **holdings pressure**: above ``shed_fraction`` of the holdings limit, a
  new dialog-creating request is shed when its source holds more than its
  fair share (total holdings / sources holding anything);
- **overload** (set by the I/O edge from CPU use and event-loop lag): a new
  dialog-creating request is shed when its source offers more than its
  fair share of the total rate. With one source only there is nobody to be
  fair to and the hard limits alone apply, so a single legitimate
  high-rate peer (a trunk, a load balancer, sipp) is never throttled by it;
- **per-source rate limit** (off by default): requests beyond
  ``source_rate_limit`` per second from one address are dropped.

ACK, CANCEL and requests inside a dialog (a To tag) are never shed by the
fairness rules: they finish work already admitted. OPTIONS is cheap and
keeps monitoring truthful, so it is shed only by the hard limits.
"""

from __future__ import annotations

import enum
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from sipwire.errors import ParseError
from sipwire.message import Request

__all__ = ["Admission", "AdmissionConfig", "AdmissionStats", "Verdict"]

_DIALOG_CREATING: Final = frozenset({"INVITE", "SUBSCRIBE", "REFER", "MESSAGE", "PUBLISH"})
"""New requests the fairness rules may shed (REGISTER is the registrar's business)."""
_NEVER_SHED: Final = frozenset({"ACK", "CANCEL"})


class Verdict(enum.Enum):
    """What to do with a new request."""

    ADMIT = "admit"
    SHED = "shed"
    """Answer 503 with Retry-After, statelessly."""
    DROP = "drop"
    """Discard silently (per-source rate limit)."""


@dataclass(frozen=True, slots=True)
class AdmissionConfig:
    """Limits of an element; see :meth:`sized_for_memory` for defaults from RAM."""

    max_transactions: int = 200_000
    """Client and server transactions together."""
    max_pending_bytes: int = 64 * 1024 * 1024
    """Bytes of received requests that wait for a final response."""
    max_holdings: int = 20_000
    """Work held for sources (INVITE sessions) beyond which new dialogs are shed."""
    shed_fraction: float = 0.5
    """Above this fraction of ``max_holdings``, sources over their fair share are shed."""
    source_rate_limit: float | None = None
    """New requests per second from one address beyond which they are dropped (None: off)."""
    max_unverified_per_source: int = 1000
    """INVITE sessions one address may hold before anything shows the address is real
    (no ACK, no request with our tag yet; over UDP a source can be forged): a flood of
    INVITEs that are never ACKed stops here, long before the memory limits. A source
    whose calls are ACKed may hold more, in proportion to its rate (about three
    seconds' worth), so that a busy trunk is not cut when its ACKs queue up."""
    retry_after: int = 5
    """Retry-After seconds of the 503s."""
    half_life: float = 1.0
    """Seconds in which a source's offered-rate count halves."""
    max_sources: int = 8192
    """Sources tracked; the least recently seen are forgotten beyond it."""

    @classmethod
    def sized_for_memory(cls, memory: int, **overrides: object) -> AdmissionConfig:
        """Limits that keep the tables within about a quarter of ``memory`` bytes.

        Budget: min(memory / 4, 4 GiB). Half of it for live INVITE sessions
        (about 40 KB each with their transactions), a quarter for other
        transactions (about 4 KB each), a quarter for requests waiting for
        their answer (counted in wire bytes; parsed, a request takes about
        eight times its wire size).
        """
        budget = min(memory // 4, 4 << 30)
        values: dict[str, object] = {
            "max_holdings": max(1000, budget // 2 // 40_000),
            "max_transactions": max(10_000, budget // 4 // 4_000),
            "max_pending_bytes": max(4 << 20, budget // 4 // 8),
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


@dataclass(slots=True)
class AdmissionStats:
    """What admission refused, by cause (counters since start)."""

    shed_tables_full: int = 0
    shed_pending_bytes: int = 0
    shed_holdings: int = 0
    shed_unverified: int = 0
    shed_overload: int = 0
    dropped_rate_limit: int = 0

    @property
    def total(self) -> int:
        return (
            self.shed_tables_full
            + self.shed_pending_bytes
            + self.shed_holdings
            + self.shed_unverified
            + self.shed_overload
            + self.dropped_rate_limit
        )


@dataclass(slots=True)
class _Source:
    rate: float = 0.0
    """Decaying count of new requests (divide by the mean life for a rate)."""
    at: float = 0.0
    holdings: int = 0
    unverified: int = 0
    verifications: float = 0.0
    """Decaying count of sessions this source showed itself in (its ACKs)."""
    verified_at: float = 0.0


class Admission:
    """Per-source accounting and the admit / shed / drop decision."""

    def __init__(self, config: AdmissionConfig | None = None) -> None:
        self.config = config or AdmissionConfig()
        self.overloaded = False
        """Set by the I/O edge while the element cannot keep up (CPU, event-loop lag)."""
        self.holdings = 0
        self.stats = AdmissionStats()
        self._sources: OrderedDict[str, _Source] = OrderedDict()
        self._total = 0.0
        self._total_at = 0.0
        self._holders = 0
        self._fair_rate = float("inf")
        self._active = 0
        self._mean_life = self.config.half_life / math.log(2)

    # -- inputs ---------------------------------------------------------------------
    def set_overloaded(self, overloaded: bool, now: float) -> None:
        """The edge's verdict on CPU and lag; recomputes the fair share when set."""
        self.overloaded = overloaded
        if overloaded:
            self.refresh(now)

    def hold(self, host: str, *, verified: bool = True) -> None:
        """``host`` now keeps one more unit of work (an INVITE session) alive;
        ``verified`` is False while nothing shows the source address is real."""
        entry = self._entry(host)
        if entry.holdings == 0:
            self._holders += 1
        entry.holdings += 1
        self.holdings += 1
        if not verified:
            entry.unverified += 1

    def verified(self, host: str, now: float) -> None:
        """Work held for ``host`` turned out to come from a real peer (its ACK came)."""
        entry = self._sources.get(host)
        if entry is None:
            return
        if entry.unverified > 0:
            entry.unverified -= 1
        elapsed = now - entry.verified_at
        if elapsed > 0:
            entry.verifications *= math.exp(-elapsed / self._mean_life)
            entry.verified_at = now
        entry.verifications += 1.0

    def release(self, host: str, *, verified: bool = True) -> None:
        """One unit of work held for ``host`` is done."""
        entry = self._sources.get(host)
        if entry is None or entry.holdings == 0:
            return
        entry.holdings -= 1
        self.holdings -= 1
        if not verified and entry.unverified > 0:
            entry.unverified -= 1
        if entry.holdings == 0:
            self._holders -= 1

    def refresh(self, now: float) -> None:
        """Recompute the active sources and their fair share of the offered rate.

        Called by the edge periodically (it iterates the bounded table) and
        when overload starts.
        """
        total = self._decayed_total(now)
        active = 0
        for entry in self._sources.values():
            if self._decay(entry, now) >= 1.0:
                active += 1
        self._active = active
        self._fair_rate = total / active if active else float("inf")

    # -- the decision -----------------------------------------------------------------
    def check(
        self, request: Request, host: str, now: float, *, transactions: int, pending_bytes: int
    ) -> Verdict:
        """Admit, shed or drop a request that would create a server transaction."""
        config = self.config
        method = request.method
        entry = self._entry(host)
        rate = self._decay(entry, now) + 1.0
        entry.rate = rate
        entry.at = now
        self._total = self._decayed_total(now) + 1.0
        if method in _NEVER_SHED:
            return Verdict.ADMIT
        limit = config.source_rate_limit
        if limit is not None and rate > limit * self._mean_life:
            self.stats.dropped_rate_limit += 1
            return Verdict.DROP
        if transactions >= config.max_transactions:
            self.stats.shed_tables_full += 1
            return Verdict.SHED
        if pending_bytes >= config.max_pending_bytes:
            self.stats.shed_pending_bytes += 1
            return Verdict.SHED
        if method not in _DIALOG_CREATING or _in_dialog(request):
            return Verdict.ADMIT
        if self.holdings >= config.max_holdings:
            self.stats.shed_holdings += 1
            return Verdict.SHED
        if entry.unverified >= config.max_unverified_per_source and (
            entry.unverified >= 2 * entry.verifications
        ):
            self.stats.shed_unverified += 1
            return Verdict.SHED
        if (
            self.holdings >= config.shed_fraction * config.max_holdings
            and self._holders >= 2
            and entry.holdings * self._holders > self.holdings
        ):
            self.stats.shed_holdings += 1
            return Verdict.SHED
        if self.overloaded and self._active >= 2 and rate > self._fair_rate:
            self.stats.shed_overload += 1
            return Verdict.SHED
        return Verdict.ADMIT

    # -- bookkeeping --------------------------------------------------------------------
    @property
    def sources(self) -> int:
        """Sources tracked now."""
        return len(self._sources)

    def source_holdings(self, host: str) -> int:
        """Units of work ``host`` holds."""
        entry = self._sources.get(host)
        return entry.holdings if entry is not None else 0

    def _entry(self, host: str) -> _Source:
        sources = self._sources
        entry = sources.get(host)
        if entry is None:
            entry = sources[host] = _Source()
            if len(sources) > self.config.max_sources:
                self._evict()
        else:
            sources.move_to_end(host)
        return entry

    def _evict(self) -> None:
        """Forget the least recently seen source that holds nothing."""
        for host, entry in self._sources.items():
            if entry.holdings == 0:
                del self._sources[host]
                return

    def _decay(self, entry: _Source, now: float) -> float:
        elapsed = now - entry.at
        if elapsed <= 0:
            return entry.rate
        return entry.rate * math.exp(-elapsed / self._mean_life)

    def _decayed_total(self, now: float) -> float:
        elapsed = now - self._total_at
        self._total_at = now
        if elapsed > 0:
            self._total *= math.exp(-elapsed / self._mean_life)
        return self._total


def _in_dialog(request: Request) -> bool:
    """True for a request with a To tag (a broken To is the TU's to answer: admit)."""
    try:
        return request.to.tag is not None
    except ParseError:
        return True
