"""``sipwire.Call``: one call of a :class:`~sipwire.aio.ua.UserAgent`, with awaitable steps.

Each method checks the call's state first and raises :class:`CallStateError`
when the state does not allow it (``answer()`` on a call that is not ringing,
``hold()`` before the call is up ...); ``hangup()`` is allowed in every state.
Waiting follows the timeout rule of :mod:`sipwire.aio.ua`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from sipwire.aio.call_events import Broadcast, HoldChanged, HoldState, hold_state_of
from sipwire.aio.media.api import CallAudioMixin
from sipwire.aio.media.config import DtmfReceived, MediaTimeout
from sipwire.aio.timeouts import CALL_TIMEOUT, REQUEST_TIMEOUT, TRANSFER_TIMEOUT, timed_out
from sipwire.aio.transfer import TransferRequest
from sipwire.core.client import ClientRequest
from sipwire.core.events import (
    CallReplaced,
    CallStateChanged,
    InDialogRequest,
    MediaChanged,
    TransferProgress,
)
from sipwire.core.session import CallState, InviteSession
from sipwire.errors import LocalProtocolError, RequestFailed
from sipwire.message import Address, Reason, Request, Response

if TYPE_CHECKING:
    from sipwire.aio.ua import UserAgent

__all__ = ["Call", "CallEvent", "CallStateError"]

CallEvent = (
    CallStateChanged
    | MediaChanged
    | InDialogRequest
    | HoldChanged
    | TransferRequest
    | TransferProgress
    | CallReplaced
    | DtmfReceived
    | MediaTimeout
)
"""What ``call.events()`` yields."""

_RINGING = frozenset({CallState.INCOMING, CallState.EARLY})
_UP = frozenset({CallState.ACCEPTED, CallState.CONFIRMED})
_DIALOG = frozenset({CallState.EARLY, CallState.ACCEPTED, CallState.CONFIRMED})


class CallStateError(LocalProtocolError):
    """A call method was used in a state that does not allow it; ``state`` is the call's."""

    def __init__(self, reason: str, state: CallState) -> None:
        super().__init__(reason)
        self.state = state


class Call(CallAudioMixin):
    """A call in progress, outgoing (``direction == "out"``) or incoming.

    Its ``state`` is a :class:`~sipwire.CallState`. Methods that send a request
    wait for its final response and raise :class:`~sipwire.RequestFailed`
    when it is not 2xx. The audio methods (``play()``, ``record()``,
    ``audio()``, ``send_audio()``, ``send_dtmf()``, ``dtmf()``,
    ``media_stats()``) come from :class:`~sipwire.aio.media.api.CallAudioMixin`.
    """

    def __init__(self, ua: UserAgent, session: InviteSession, *, record: bool = True) -> None:
        self.ua = ua
        self.session = session
        self._log: Broadcast[CallEvent] | None = Broadcast() if record else None
        """The events for ``events()``; None until asked for (auto-answered calls)."""
        self._answered: asyncio.Future[None] | None = None
        self._ended: asyncio.Future[None] | None = None
        self._confirmed = session.state is CallState.CONFIRMED
        self._hold = hold_state_of(session.media)
        self.auto = False
        """Answered by ``UserAgent.auto_answer``."""
        self.arrived = 0.0
        """When an incoming call arrived (the event loop's clock)."""
        self.info: list[Request] = []
        """INFO and MESSAGE requests received inside the call."""
        self.claimed = False
        """The application took this call (from ``incoming()``, or in an ``on_call``
        handler that is still running); set it to keep a call whose handler returned
        without answering from the unclaimed-call 480."""
        self.transfer_events: list[TransferRequest | TransferProgress | CallReplaced] = []
        """TransferRequest, TransferProgress and CallReplaced events of this call."""

    # -- what it is --------------------------------------------------------------------------
    @property
    def state(self) -> CallState:
        """Where the call is (a CallState)."""
        return self.session.state

    @property
    def direction(self) -> str:
        """``"out"`` for calls we placed, ``"in"`` for calls we received."""
        return "out" if self.session.is_uac else "in"

    @property
    def call_id(self) -> str:
        """The Call-ID of the call."""
        return self.session.call_id

    @property
    def remote(self) -> Address:
        """The other party: To of our INVITE, or From of theirs (without the tag)."""
        request = self.session.request
        party = request.to if self.session.is_uac else request.from_
        return Address(party.uri, party.display_name)

    @property
    def request(self) -> Request:
        """The initial INVITE."""
        return self.session.request

    @property
    def ended(self) -> bool:
        """True once the call is over."""
        return self.session.state is CallState.TERMINATED

    @property
    def end_status(self) -> int | None:
        """The SIP status that ended the call (486, 487, 200 for a BYE ...)."""
        return self.session.end_status

    @property
    def remote_reasons(self) -> list[Reason]:
        """The Reason headers (RFC 3326) of the peer's BYE or CANCEL, if any."""
        return self.session.remote_reasons

    @property
    def remote_sdp(self) -> bytes | None:
        """The last session description the peer sent, if any."""
        return getattr(self.session.media, "remote", None)

    @property
    def hold_state(self) -> HoldState:
        """Who holds whom, as of the last completed offer/answer exchange."""
        return self._hold

    def __repr__(self) -> str:
        return f"<Call {self.direction} {self.remote.uri} {self.state.value}>"

    # -- events from the user agent ----------------------------------------------------------
    def _on_event(self, event: CallStateChanged | MediaChanged | InDialogRequest) -> None:
        log = self._log
        if log is not None:
            log.append(event)
        if type(event) is MediaChanged:
            hold = hold_state_of(self.session.media)
            if hold != self._hold:
                previous, self._hold = self._hold, hold
                if log is not None:
                    log.append(HoldChanged(self.session, hold, previous))
        elif type(event) is InDialogRequest:
            self.info.append(event.request)
        elif type(event) is CallStateChanged:
            if event.state is CallState.CONFIRMED:
                self._confirmed = True
                _settle(self._answered)
            elif event.state is CallState.TERMINATED:
                _settle(self._answered)
                _settle(self._ended)
                if log is not None:
                    log.close()
                self.ua._forget_call(self)

    def _on_media_event(self, event: DtmfReceived | MediaTimeout) -> None:
        """A digit or a media timeout of this call's stream."""
        if self._log is not None:
            self._log.append(event)

    def _on_other(self, event: TransferRequest | TransferProgress | CallReplaced) -> None:
        """Transfer events (a REFER for us, REFER progress, a Replaces)."""
        self.transfer_events.append(event)
        if self._log is not None:
            self._log.append(event)

    async def events(self) -> AsyncIterator[CallEvent]:
        """The call's events, in order, until it ends: state changes, media and hold
        changes, INFO/MESSAGE requests, transfers.

        Every reader gets every event (each starts with the ones already kept: all
        of them for calls the application placed or received, those from the first
        ``events()`` on for calls answered by ``auto_answer``).
        """
        if self._log is None:
            self._log = Broadcast()
            if self.ended:
                self._log.close()
        async for event in self._log.reader():
            yield event

    async def transfers(self) -> AsyncIterator[TransferRequest]:
        """The REFERs the peer sends in this call, to ``accept()`` or ``decline()``."""
        async for event in self.events():
            if isinstance(event, TransferRequest):
                yield event

    async def wait_answered(self, timeout: float | None = CALL_TIMEOUT) -> None:
        """Wait until the call is confirmed (answered, and ACKed for incoming calls).

        Raises RequestFailed with the status that ended the call (486, 487 ...),
        or 408 after ``timeout`` seconds; an outgoing call is then cancelled.
        """
        if not self._confirmed and not self.ended:
            if self._answered is None:
                self._answered = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(asyncio.shield(self._answered), timeout)
            except TimeoutError:
                if not self._confirmed and not self.ended:
                    if self.session.is_uac:
                        self.session.hangup(self.ua._now())
                        self.ua._flush()
                    raise timed_out(timeout or 0.0) from None
        if not self._confirmed:
            session = self.session
            status = session.end_status or 500
            raise RequestFailed(status, session.end_reason or "call ended", session.final)

    async def wait_ended(self, timeout: float | None = None) -> None:
        """Wait until the call is over (either side hung up); TimeoutError after ``timeout``."""
        await asyncio.wait_for(asyncio.shield(self._ended_future()), timeout)

    def _ended_future(self) -> asyncio.Future[None]:
        if self._ended is None:
            self._ended = asyncio.get_running_loop().create_future()
            if self.ended:
                self._ended.set_result(None)
        return self._ended

    # -- commands ------------------------------------------------------------------------------
    def _require(self, allowed: frozenset[CallState], what: str, incoming: bool = False) -> None:
        if self.state not in allowed or (incoming and self.session.is_uac):
            kind = "an outgoing" if self.session.is_uac else "an incoming"
            raise CallStateError(
                f"cannot {what} {kind} call that is {self.state.value}", self.state
            )

    def _require_up(self, what: str) -> None:
        self._require(_DIALOG, what)

    async def ring(self, *, early_media: bool = False) -> None:
        """Send 180 Ringing (incoming calls); ``early_media`` sends 183 with the SDP answer."""
        self._require(_RINGING, "ring", incoming=True)
        status = 183 if early_media else 180
        self.session.ring(self.ua._now(), status=status, early_media=early_media)
        self.ua._flush()

    async def answer(self, *, timeout: float | None = REQUEST_TIMEOUT) -> None:
        """Answer with 200 OK and wait for the ACK (incoming calls)."""
        self._require(_RINGING, "answer", incoming=True)
        self.claimed = True
        self.session.answer(self.ua._now())
        self.ua._flush()
        await self.wait_answered(timeout)

    async def reject(self, status: int = 486, reason: str | None = None) -> None:
        """Refuse an incoming call with a final error response."""
        self._require(_RINGING, "reject", incoming=True)
        self.session.reject(self.ua._now(), status, reason)
        self.ua._flush()

    async def hangup(
        self, reason: str | None = None, *, timeout: float | None = REQUEST_TIMEOUT
    ) -> None:
        """End the call: CANCEL, reject (603) or BYE as its state requires.

        After a BYE it waits for the BYE's final response, at most ``timeout``.
        It never raises: the call is over locally whatever the peer answers.
        ``reason`` is a Reason header value (RFC 3326), e.g.
        ``Q.850;cause=16;text="Normal call clearing"``.
        """
        if self.ended:
            return
        if self.state in _UP:
            bye = self.session.bye(self.ua._now(), reason)
            if bye is not None:
                with contextlib.suppress(RequestFailed):
                    await self.ua._wait(bye, timeout)
            return
        self.session.hangup(self.ua._now(), reason=reason)
        self.ua._flush()

    async def hold(self, *, timeout: float | None = REQUEST_TIMEOUT) -> Response:
        """Put the peer on hold (re-INVITE with a sendonly offer)."""
        self._require(_UP, "hold")
        return await self._send(self.session.hold(self.ua._now()), timeout)

    async def resume(self, *, timeout: float | None = REQUEST_TIMEOUT) -> Response:
        """Take the peer off hold (re-INVITE with a sendrecv offer)."""
        self._require(_UP, "resume")
        return await self._send(self.session.resume(self.ua._now()), timeout)

    async def reinvite(
        self, sdp: bytes | None = None, *, timeout: float | None = REQUEST_TIMEOUT
    ) -> Response:
        """Send a re-INVITE with a new offer (``sdp``, or one made by the media)."""
        self._require(_UP, "re-INVITE")
        return await self._send(self.session.reinvite(self.ua._now(), sdp), timeout)

    async def update(
        self, sdp: bytes | None = None, *, timeout: float | None = REQUEST_TIMEOUT
    ) -> Response:
        """Send an UPDATE (RFC 3311) with a new offer."""
        self._require(_DIALOG, "UPDATE")
        return await self._send(self.session.update(self.ua._now(), sdp), timeout)

    async def send_info(
        self,
        body: bytes | str,
        content_type: str = "application/dtmf-relay",
        *,
        timeout: float | None = REQUEST_TIMEOUT,
    ) -> Response:
        """Send INFO (RFC 6086) inside the call."""
        self._require(_DIALOG, "send INFO in")
        data = body.encode() if isinstance(body, str) else body
        creq = self.session.send_in_dialog(
            "INFO", self.ua._now(), body=data, content_type=content_type
        )
        return await self._send(creq, timeout)

    async def send_message(
        self,
        text: str,
        content_type: str = "text/plain",
        *,
        timeout: float | None = REQUEST_TIMEOUT,
    ) -> Response:
        """Send a MESSAGE inside the call's dialog."""
        self._require(_DIALOG, "send MESSAGE in")
        creq = self.session.send_in_dialog(
            "MESSAGE", self.ua._now(), body=text.encode(), content_type=content_type
        )
        return await self._send(creq, timeout)

    async def _send(self, creq: ClientRequest, timeout: float | None) -> Response:
        return await self.ua._wait(creq, timeout, check=True)

    async def transfer(self, target: str, *, timeout: float | None = TRANSFER_TIMEOUT) -> int:
        """Blind transfer (RFC 3515): REFER the peer to ``target``.

        Returns the final status the peer reported for its call to ``target``
        (200); raises RequestFailed when the REFER or that call fails (603 when
        the peer declines the transfer).
        """
        self._require(_UP, "transfer")
        transfers = self.ua._transfer_manager()
        outgoing = transfers.transfer(self.session, target, self.ua._now())
        return await self.ua._transfer(outgoing, timeout)

    async def attended_transfer(
        self, other: Call, *, timeout: float | None = TRANSFER_TIMEOUT
    ) -> int:
        """Attended transfer: REFER the peer to ``other``'s party with Replaces (RFC 3891)."""
        self._require(_UP, "transfer")
        transfers = self.ua._transfer_manager()
        outgoing = transfers.attended_transfer(self.session, other.session, self.ua._now())
        return await self.ua._transfer(outgoing, timeout)


def _settle(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)
