"""What the user-agent core tells the application (pull with ``UserAgentCore.next_event``).

One frozen dataclass per event. The asyncio API turns them into awaitables;
tests read them directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sipwire.message import Request, Response, SipUri

if TYPE_CHECKING:
    from sipwire.core.client import ClientRequest
    from sipwire.core.register import Registration
    from sipwire.core.session import CallState, InviteSession

__all__ = [
    "CallStateChanged",
    "IncomingCall",
    "InDialogRequest",
    "MediaChanged",
    "MessageReceived",
    "RegistrationChanged",
    "RequestCompleted",
    "ResolveTargets",
    "UAEvent",
]


@dataclass(frozen=True, slots=True, eq=False)
class UAEvent:
    """Base of every user-agent core event."""


@dataclass(frozen=True, slots=True, eq=False)
class ResolveTargets(UAEvent):
    """The core needs RFC 3263 targets for ``uri`` and cannot get them without DNS.

    The I/O edge resolves it and calls ``UserAgentCore.targets_resolved(request, targets, now)``.
    """

    request: ClientRequest
    uri: SipUri


@dataclass(frozen=True, slots=True, eq=False)
class RequestCompleted(UAEvent):
    """A request outside any INVITE session got its final response (after retries)."""

    request: ClientRequest
    response: Response


@dataclass(frozen=True, slots=True, eq=False)
class IncomingCall(UAEvent):
    """A new INVITE arrived; answer, ring or reject it through ``session``."""

    session: InviteSession
    request: Request


@dataclass(frozen=True, slots=True, eq=False)
class CallStateChanged(UAEvent):
    """An INVITE session moved to ``state``; ``response`` is what moved it, if any."""

    session: InviteSession
    state: CallState
    response: Response | None = None


@dataclass(frozen=True, slots=True, eq=False)
class MediaChanged(UAEvent):
    """An offer/answer exchange completed: the session's media parameters changed."""

    session: InviteSession


@dataclass(frozen=True, slots=True, eq=False)
class InDialogRequest(UAEvent):
    """A request inside a session that the core answered for the application (INFO,
    MESSAGE, NOTIFY, REFER ...)."""

    session: InviteSession
    request: Request


@dataclass(frozen=True, slots=True, eq=False)
class MessageReceived(UAEvent):
    """A MESSAGE (RFC 3428) outside any dialog; the core already answered 200."""

    request: Request

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (replacement characters for bad bytes)."""
        return self.request.body.decode("utf-8", "replace")


@dataclass(frozen=True, slots=True, eq=False)
class RegistrationChanged(UAEvent):
    """A registration was accepted, refreshed, removed or failed."""

    registration: Registration
    response: Response | None
