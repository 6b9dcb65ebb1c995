"""Call transfer on asyncio: REFERs we receive (:class:`TransferRequest`) and send.

An incoming REFER (RFC 3515) in a call is not answered until the
application decides: it arrives in ``call.events()`` (and ``call.transfers()``)
as a :class:`TransferRequest`; ``await transfer.accept()`` answers 202, starts
the call to the Refer-To target and reports its progress to the transferor
in NOTIFYs; ``await transfer.decline()`` answers 603.

The default, when the application does nothing, is to **decline**: after
``UserAgent.transfer_decision_timeout`` seconds (10) for calls the application
handles, at once for calls answered by ``auto_answer`` (unless
``auto_answer(accept_transfers=True)``). A REFER makes us place a call, on
our account and at our cost, to an address the peer chose; RFC 3515 §2.4.2
asks for the user's approval first, and an application that does not look
has not approved.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, cast

from sipwire.aio.timeouts import within
from sipwire.core.events import TransferProgress, TransferRequested
from sipwire.core.refer import IncomingTransfer, OutgoingTransfer, Transfers
from sipwire.core.session import InviteSession
from sipwire.errors import LocalProtocolError, ParseError, RequestFailed
from sipwire.message import Address, Uri

if TYPE_CHECKING:
    from sipwire.aio.call import Call
    from sipwire.aio.ua import UserAgent

__all__ = ["TransferRequest", "TransfersMixin"]


class TransferRequest:
    """The peer of a call asks us to call ``refer_to`` (a REFER, RFC 3515).

    Found in ``call.events()`` and ``call.transfers()``. Undecided, it is
    declined after ``UserAgent.transfer_decision_timeout`` seconds.
    """

    def __init__(self, ua: UserAgent, transfer: IncomingTransfer) -> None:
        self._ua = ua
        self._transfer = transfer

    @property
    def refer_to(self) -> Address:
        """The Refer-To header: where the peer wants us to call (may carry ``?Replaces=``)."""
        return self._transfer.refer_to

    @property
    def target(self) -> Uri:
        """The Request-URI of the call an accepted transfer makes (Refer-To without headers)."""
        return self._transfer.target

    @property
    def referred_by(self) -> Address | None:
        """The Referred-By header (RFC 3892): who asks, None when the REFER had none."""
        value = self._transfer.referred_by_header
        if value is None:
            return None
        try:
            return Address.parse(value)
        except ParseError:
            return None

    @property
    def attended(self) -> bool:
        """The new call replaces a call of the target (Refer-To carries Replaces, RFC 3891)."""
        return self._transfer.replaces is not None

    @property
    def call(self) -> Call | None:
        """The call the REFER came in (None once it is over and forgotten)."""
        return self._ua._calls.get(self._transfer.session)

    @property
    def decided(self) -> bool:
        """Accepted or declined (by the application, or by the default)."""
        return not self._transfer.undecided

    @property
    def status(self) -> int | None:
        """603 (or the status given) once declined; the new call's final status once known."""
        return self._transfer.status

    async def accept(self) -> Call:
        """Answer 202 and call the target (with Referred-By, and Replaces if attended).

        Returns the new call at once (``await new.wait_answered()`` to follow it);
        its outcome goes to the transferor in NOTIFYs, and once it is answered
        the original call is hung up. Raises LocalProtocolError when already decided.
        """
        if self.decided:
            raise LocalProtocolError("the transfer was decided already")
        session = self._ua._transfer_manager().accept(self._transfer, self._ua._now())
        call = self._ua._wrap(session) if session is not None else None
        self._ua._flush()
        if call is None:
            raise RequestFailed(503, "no media for the transferred call")
        return call

    async def decline(self, status: int = 603) -> None:
        """Refuse the transfer: the REFER gets ``status`` (603 Decline)."""
        if self.decided:
            raise LocalProtocolError("the transfer was decided already")
        self._ua._transfer_manager().decline(self._transfer, self._ua._now(), status)
        self._ua._flush()

    def __repr__(self) -> str:
        return f"<TransferRequest to {self.refer_to.uri}>"


class TransfersMixin:
    """The REFER part of :class:`~sipwire.aio.ua.UserAgent`."""

    transfer_manager: Transfers | None
    transfer_decision_timeout: float
    _accept_transfers: bool
    _calls: dict[InviteSession, Call]
    _transfer_waiters: dict[OutgoingTransfer, asyncio.Future[TransferProgress]]

    if TYPE_CHECKING:

        def _now(self) -> float: ...

        def _flush(self) -> None: ...

    def _transfer_manager(self) -> Transfers:
        if self.transfer_manager is None:
            raise LocalProtocolError("the user agent is not started (use 'async with')")
        return self.transfer_manager

    def _on_transfer_requested(self, event: TransferRequested) -> None:
        transfer = event.transfer
        call = self._calls.get(event.session)
        if call is not None and call._log is not None:
            call._on_other(TransferRequest(cast("UserAgent", self), transfer))
            return
        # nobody reads this call's events (auto-answered): decide at once
        manager, now = self._transfer_manager(), self._now()
        if self._accept_transfers:
            manager.accept(transfer, now)
        else:
            manager.decline(transfer, now)

    def _on_transfer_progress(self, event: TransferProgress) -> None:
        waiter = self._transfer_waiters.get(event.transfer) if event.transfer else None
        if event.done and waiter is not None and not waiter.done():
            waiter.set_result(event)
        call = self._calls.get(event.session)
        if call is not None:
            call._on_other(event)

    async def _transfer(self, outgoing: OutgoingTransfer, timeout: float | None) -> int:
        waiter: asyncio.Future[TransferProgress] = asyncio.get_running_loop().create_future()
        self._transfer_waiters[outgoing] = waiter
        self._flush()
        try:
            if outgoing.done:
                status = outgoing.status or 500
            else:
                status = (await within(waiter, timeout)).status
        finally:
            self._transfer_waiters.pop(outgoing, None)
        if status >= 300:
            raise RequestFailed(status, outgoing.reason or "transfer failed")
        return status
