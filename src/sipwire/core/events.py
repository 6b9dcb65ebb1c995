"""What the user-agent core tells the application (pull with ``UserAgentCore.next_event``).

One slotted dataclass per event (read-only by convention: cheaper to make than a
frozen one). The asyncio API turns them into awaitables;
tests read them directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sipwire.message import Address, Request, Response, SipUri

if TYPE_CHECKING:
    from sipwire.core.client import ClientRequest
    from sipwire.core.refer import IncomingTransfer, OutgoingTransfer, Replaces
    from sipwire.core.register import Registration
    from sipwire.core.session import CallState, InviteSession
    from sipwire.core.subscription import Subscription, SubState

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
    "NotifyReceived",
    "SubscriptionStateChanged",
    "SubscribeReceived",
    "TransferRequested",
    "TransferProgress",
    "CallReplaced",
]


@dataclass(slots=True, eq=False)
class UAEvent:
    """Base of every user-agent core event."""


@dataclass(slots=True, eq=False)
class ResolveTargets(UAEvent):
    """The core needs RFC 3263 targets for ``uri`` and cannot get them without DNS.

    The I/O edge resolves it and calls ``UserAgentCore.targets_resolved(request, targets, now)``.
    """

    request: ClientRequest
    uri: SipUri


@dataclass(slots=True, eq=False)
class RequestCompleted(UAEvent):
    """A request outside any INVITE session got its final response (after retries)."""

    request: ClientRequest
    response: Response


@dataclass(slots=True, eq=False)
class IncomingCall(UAEvent):
    """A new INVITE arrived; answer, ring or reject it through ``session``."""

    session: InviteSession
    request: Request


@dataclass(slots=True, eq=False)
class CallStateChanged(UAEvent):
    """An INVITE session moved to ``state``; ``response`` is what moved it, if any."""

    session: InviteSession
    state: CallState
    response: Response | None = None


@dataclass(slots=True, eq=False)
class MediaChanged(UAEvent):
    """An offer/answer exchange completed: the session's media parameters changed."""

    session: InviteSession


@dataclass(slots=True, eq=False)
class InDialogRequest(UAEvent):
    """A request inside a session that the core answered for the application (INFO,
    MESSAGE, NOTIFY, REFER ...)."""

    session: InviteSession
    request: Request


@dataclass(slots=True, eq=False)
class MessageReceived(UAEvent):
    """A MESSAGE (RFC 3428) outside any dialog; the core already answered 200."""

    request: Request

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (replacement characters for bad bytes)."""
        return self.request.body.decode("utf-8", "replace")


@dataclass(slots=True, eq=False)
class RegistrationChanged(UAEvent):
    """A registration was accepted, refreshed, removed or failed."""

    registration: Registration
    response: Response | None


@dataclass(slots=True, eq=False)
class NotifyReceived(UAEvent):
    """A NOTIFY for one of our subscriptions (RFC 6665); the core already answered 200."""

    subscription: Subscription
    request: Request


@dataclass(slots=True, eq=False)
class SubscriptionStateChanged(UAEvent):
    """A subscription became pending, active or terminated (RFC 6665 §4.1.2).

    ``reason`` is the Subscription-State reason of the end; ``response`` the
    final response that ended or refused it, if any.
    """

    subscription: Subscription
    state: SubState
    reason: str | None = None
    response: Response | None = None


@dataclass(slots=True, eq=False)
class SubscribeReceived(UAEvent):
    """A new SUBSCRIBE for a package served without a callback (RFC 6665 §4.2.1):
    ``Subscriptions.answer(subscription, SubscribeAnswer(...), now)`` answers it."""

    subscription: Subscription
    request: Request


@dataclass(slots=True, eq=False)
class TransferRequested(UAEvent):
    """The peer of ``session`` asked us to call ``refer_to`` (REFER, RFC 3515).

    Already answered 202, unless the transfers ask the application
    (``Transfers(ask=True)``): then ``transfer.undecided`` holds until
    ``Transfers.accept`` (202) or ``Transfers.decline`` (603). ``replaces``
    is the dialog the new call replaces (RFC 3891), if any."""

    session: InviteSession
    refer_to: Address
    replaces: Replaces | None
    transfer: IncomingTransfer


@dataclass(slots=True, eq=False)
class TransferProgress(UAEvent):
    """How a transfer we asked for goes: the status of the transferee's new call
    (from the NOTIFY's message/sipfrag), or the REFER's own failure. ``done`` on the last."""

    session: InviteSession
    status: int
    reason: str = ""
    done: bool = False
    transfer: OutgoingTransfer | None = None


@dataclass(slots=True, eq=False)
class CallReplaced(UAEvent):
    """An INVITE with Replaces (RFC 3891) was accepted as ``new``; ``old`` got a BYE."""

    old: InviteSession
    new: InviteSession
