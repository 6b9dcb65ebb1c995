"""What an INVITE session or a registration needs from the core that owns it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from sipwire.core.client import RequestSender
from sipwire.core.config import UAConfig
from sipwire.core.events import UAEvent
from sipwire.dialog.dialog import Dialog
from sipwire.dialog.ids import IdSource
from sipwire.message import Request
from sipwire.timerheap import TimerHeap
from sipwire.transaction.layer import TransactionLayer
from sipwire.transaction.server import ServerTransaction

if TYPE_CHECKING:
    from sipwire.core.in_dialog import InDialog
    from sipwire.core.session import InviteSession

__all__ = ["SessionHost"]


class SessionHost(Protocol):
    """The services of a UserAgentCore, as its sessions see them."""

    config: UAConfig
    layer: TransactionLayer
    sender: RequestSender
    ids: IdSource
    timers: TimerHeap

    def emit(self, event: UAEvent) -> None:
        """Queue an event for the application."""
        ...

    def bind(self, dialog: Dialog, owner: InDialog) -> None:
        """Route requests of ``dialog`` to ``owner`` from now on."""
        ...

    def unbind_dialog(self, dialog: Dialog) -> None:
        """Stop routing requests of ``dialog``."""
        ...

    def peer_verified(self, session: InDialog, now: float) -> None:
        """The peer of ``session`` showed itself (its ACK or a request with our tag came)."""
        ...

    def forget(self, session: InviteSession, now: float) -> None:
        """A session ended: drop it from the core's live tables."""
        ...

    def dialog_usage(
        self, owner: InDialog, request: Request, transaction: ServerTransaction, now: float
    ) -> bool:
        """Offer an in-dialog request the session does not handle itself (REFER,
        NOTIFY, SUBSCRIBE) to the core's other dialog usages; True when taken."""
        ...
