"""``sipwire.Call``: one call of a :class:`~sipwire.aio.ua.UserAgent`, with awaitable steps."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from sipwire.core.events import (
    CallStateChanged,
    InDialogRequest,
    MediaChanged,
)
from sipwire.core.session import CallState, InviteSession
from sipwire.errors import LocalProtocolError, RequestFailed
from sipwire.message import Address, Reason, Request, Response

if TYPE_CHECKING:
    from sipwire.aio.ua import UserAgent

__all__ = ["Call", "CallEvent"]

CallEvent = CallStateChanged | MediaChanged | InDialogRequest
MAX_EVENTS = 256
_DTMF = frozenset("0123456789*#ABCD")


class Call:
    """A call in progress, outgoing (``direction == "out"``) or incoming.

    Its ``state`` is a :class:`~sipwire.core.session.CallState`. Methods
    that send a request wait for its final response and raise
    :class:`~sipwire.errors.RequestFailed` when it is not 2xx.
    """

    def __init__(self, ua: UserAgent, session: InviteSession) -> None:
        self.ua = ua
        self.session = session
        loop = asyncio.get_running_loop()
        self._answered: asyncio.Future[Response | None] = loop.create_future()
        self._ended: asyncio.Future[None] = loop.create_future()
        self._events: asyncio.Queue[CallEvent] = asyncio.Queue(MAX_EVENTS)
        self.info: list[Request] = []
        """INFO and MESSAGE requests received inside the call."""
        self.claimed = False
        """The application took this call from ``UserAgent.incoming()``."""
        self.transfer_events: list[object] = []
        """TransferRequested, TransferProgress and CallReplaced events of this call."""

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

    def __repr__(self) -> str:
        return f"<Call {self.direction} {self.remote.uri} {self.state.value}>"

    # -- events from the user agent ----------------------------------------------------------
    def _on_event(self, event: CallEvent) -> None:
        if isinstance(event, InDialogRequest):
            self.info.append(event.request)
        if not self._events.full():
            self._events.put_nowait(event)
        if isinstance(event, CallStateChanged):
            if event.state is CallState.CONFIRMED and not self._answered.done():
                self._answered.set_result(event.response)
            elif event.state is CallState.TERMINATED:
                if not self._answered.done():
                    response = event.response or self.session.final
                    status = self.session.end_status or 500
                    reason = self.session.end_reason or "call ended"
                    self._answered.set_exception(RequestFailed(status, reason, response))
                    self._answered.exception()  # mark retrieved
                if not self._ended.done():
                    self._ended.set_result(None)
                self.ua._forget_call(self)

    def _on_other(self, event: object) -> None:
        """Transfer events (REFER progress, a transfer asked of us, a Replaces)."""
        self.transfer_events.append(event)

    async def events(self) -> AsyncIterator[CallEvent]:
        """State changes, media changes and INFO/MESSAGE requests, in order, until the end."""
        while not (self.ended and self._events.empty()):
            yield await self._events.get()

    async def wait_answered(self) -> None:
        """Wait until the call is confirmed; RequestFailed if it ends first."""
        await asyncio.shield(self._answered)

    async def wait_ended(self, timeout: float | None = None) -> None:
        """Wait until the call is over (either side hung up)."""
        await asyncio.wait_for(asyncio.shield(self._ended), timeout)

    # -- commands ------------------------------------------------------------------------------
    async def ring(self, *, early_media: bool = False) -> None:
        """Send 180 Ringing (incoming calls); ``early_media`` sends 183 with the SDP answer."""
        status = 183 if early_media else 180
        self.session.ring(self.ua._now(), status=status, early_media=early_media)
        self.ua._flush()

    async def answer(self) -> None:
        """Answer with 200 OK and wait for the ACK (incoming calls)."""
        if self.session.is_uac:
            raise LocalProtocolError("only an incoming call can be answered")
        self.session.answer(self.ua._now())
        self.ua._flush()
        await self.wait_answered()

    async def reject(self, status: int = 486, reason: str | None = None) -> None:
        """Refuse an incoming call with a final error response."""
        self.session.reject(self.ua._now(), status, reason)
        self.ua._flush()

    async def hangup(self, reason: str | None = None) -> None:
        """End the call: CANCEL, reject or BYE as its state requires.

        After a BYE it waits for the BYE's final response (at most Timer F).
        ``reason`` is a Reason header value (RFC 3326), e.g.
        ``Q.850;cause=16;text="Normal call clearing"``.
        """
        if self.ended:
            return
        if self.state in (CallState.ACCEPTED, CallState.CONFIRMED):
            bye = self.session.bye(self.ua._now(), reason)
            if bye is not None:
                await self.ua._wait(bye)
            return
        self.session.hangup(self.ua._now(), reason=reason)
        self.ua._flush()

    async def hold(self) -> Response:
        """Put the peer on hold (re-INVITE with a sendonly offer)."""
        return await self._wait(self.session.hold(self.ua._now()))

    async def resume(self) -> Response:
        """Take the peer off hold (re-INVITE with a sendrecv offer)."""
        return await self._wait(self.session.resume(self.ua._now()))

    async def reinvite(self, sdp: bytes | None = None) -> Response:
        """Send a re-INVITE with a new offer (``sdp``, or one made by the media)."""
        return await self._wait(self.session.reinvite(self.ua._now(), sdp))

    async def update(self, sdp: bytes | None = None) -> Response:
        """Send an UPDATE (RFC 3311) with a new offer."""
        return await self._wait(self.session.update(self.ua._now(), sdp))

    async def send_info(
        self, body: bytes | str, content_type: str = "application/dtmf-relay"
    ) -> Response:
        """Send INFO (RFC 6086) inside the call."""
        data = body.encode() if isinstance(body, str) else body
        creq = self.session.send_in_dialog(
            "INFO", self.ua._now(), body=data, content_type=content_type
        )
        return await self._wait(creq)

    async def send_dtmf(self, digits: str, duration: int = 160) -> None:
        """Send DTMF digits as INFO ``application/dtmf-relay``, one request per digit.

        ``digits`` may hold 0-9, *, # and A-D; ``duration`` is in milliseconds.
        (RFC 4733 telephone-events go with the media, not with SIP.)
        """
        for digit in digits:
            if digit.upper() not in _DTMF:
                raise ValueError(f"not a DTMF digit: {digit!r}")
            body = f"Signal={digit.upper()}\r\nDuration={duration}\r\n"
            await self.send_info(body, "application/dtmf-relay")

    async def send_message(self, text: str, content_type: str = "text/plain") -> Response:
        """Send a MESSAGE inside the call's dialog."""
        creq = self.session.send_in_dialog(
            "MESSAGE", self.ua._now(), body=text.encode(), content_type=content_type
        )
        return await self._wait(creq)

    async def _wait(self, creq: object) -> Response:
        from sipwire.core.client import ClientRequest

        assert isinstance(creq, ClientRequest)
        response = await self.ua._wait(creq)
        if not 200 <= response.status < 300:
            raise RequestFailed(response.status, response.reason, response)
        return response

    async def transfer(self, target: str, *, timeout: float = 64.0) -> int:
        """Blind transfer (RFC 3515): REFER the peer to ``target``.

        Returns the final status the peer reported for its call to ``target``
        (200); raises RequestFailed when the REFER or that call fails.
        """
        transfers = self.ua.transfers
        if transfers is None:
            raise LocalProtocolError("the user agent is not started")
        outgoing = transfers.transfer(self.session, target, self.ua._now())
        return await self.ua._transfer(outgoing, timeout)

    async def attended_transfer(self, other: Call, *, timeout: float = 64.0) -> int:
        """Attended transfer: REFER the peer to ``other``'s party with Replaces (RFC 3891)."""
        transfers = self.ua.transfers
        if transfers is None:
            raise LocalProtocolError("the user agent is not started")
        outgoing = transfers.attended_transfer(self.session, other.session, self.ua._now())
        return await self.ua._transfer(outgoing, timeout)
