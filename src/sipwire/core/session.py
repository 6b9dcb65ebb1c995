"""INVITE sessions (RFC 3261 §13-15, RFC 3262, RFC 3311, RFC 4028), both roles.

An :class:`InviteSession` is one call: the INVITE that set it up, the dialog
it created, and everything done inside it. It is sans-I/O: it sends through
the host's transaction layer and request sender, schedules on the host's
timer heap and reports :class:`~sipwire.core.events.CallStateChanged`.

The UAC side (``start``, ``cancel``) handles forking: 18x from several
branches make several early dialogs; the first 2xx confirms its dialog,
and every other 2xx is ACKed and then ended with a BYE (§13.2.2.4). A 2xx
that crosses our CANCEL is ACKed and ended the same way (§9.1).

The UAS side (``ring``, ``answer``, ``reject``) retransmits its 2xx until the
ACK (§13.3.1.4) and its reliable 18x until the PRACK (RFC 3262 §3).

Inside the dialog (``session_mixin.DialogUsage``): BYE, re-INVITE and UPDATE with
offer/answer and the 491 glare back-off of §14.1, INFO, MESSAGE, session
timers.
"""

from __future__ import annotations

import logging
from enum import Enum

from sipwire.core.client import ClientRequest
from sipwire.core.events import CallStateChanged, IncomingCall
from sipwire.core.host import SessionHost
from sipwire.core.in_dialog import InDialog
from sipwire.core.media import MediaError, SessionMedia
from sipwire.dialog.dialog import Dialog, DialogState
from sipwire.errors import ParseError
from sipwire.message import Request, Response
from sipwire.timerheap import TimerHandle
from sipwire.transaction.server import InviteServerTransaction

__all__ = ["CallState", "InviteSession"]

log = logging.getLogger("sipwire.session")


class CallState(Enum):
    """Where an INVITE session is."""

    CALLING = "calling"
    """UAC: INVITE sent, nothing heard yet."""
    PROCEEDING = "proceeding"
    """UAC: a provisional response without a dialog (100, or 18x without To tag)."""
    EARLY = "early"
    """An early dialog exists (18x with a To tag sent or received)."""
    INCOMING = "incoming"
    """UAS: INVITE received, not answered yet."""
    ACCEPTED = "accepted"
    """UAS: 2xx sent, waiting for the ACK."""
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


class InviteSession(InDialog):
    """One call, as caller (``is_uac``) or callee."""

    def __init__(
        self,
        host: SessionHost,
        media: SessionMedia,
        *,
        is_uac: bool,
        request: Request,
        server: InviteServerTransaction | None = None,
    ) -> None:
        super().__init__(host, media)
        self.is_uac = is_uac
        self.request = request
        """The initial INVITE (as last sent, for a UAC)."""
        self.server = server
        self.state = CallState.CALLING if is_uac else CallState.INCOMING
        self.invite: ClientRequest | None = None
        self.early: dict[str, Dialog] = {}
        """UAC: early dialogs by To tag (one per fork)."""
        self.final: Response | None = None
        """The final response that ended or confirmed the INVITE."""
        self.end_status: int | None = None
        self.end_reason: str = ""
        self._cancel_pending = False
        self._cancel_sent = False
        self._offer_in_invite = bool(request.body)
        self._answer_timer: TimerHandle | None = None
        self._cancel_reason: str | None = None
        self._early_answer = b""
        """An SDP answer sent in an unreliable 18x: the 2xx repeats it."""
        self.holder: str | None = None
        """UAS: the source address this session is counted against (admission holdings)."""
        if not is_uac:
            self.local_tag = host.ids.token()

    @property
    def call_id(self) -> str:
        """The Call-ID of the call."""
        return self.request.call_id

    # ================================================================= UAC
    def start(self, now: float) -> None:
        """Send the INVITE (built by the core) and wait for responses."""
        self.invite = ClientRequest(self.request, self, contact_user=self.host.config.contact_user)
        self.host.sender.send(self.invite, now)

    def cancel(self, now: float, reason: str | None = None) -> None:
        """Cancel the INVITE (§9.1): at once if a provisional arrived, else when one does.

        ``reason`` is a Reason header value (RFC 3326), e.g. ``SIP;cause=200;text="Call
        completed elsewhere"``.
        """
        if not self.is_uac or self.state not in (
            CallState.CALLING,
            CallState.PROCEEDING,
            CallState.EARLY,
        ):
            return
        invite = self.invite
        assert invite is not None
        invite.cancelled = True
        self._cancel_reason = reason
        if invite.provisional is None or invite.transaction is None:
            self._cancel_pending = True
            return
        self._send_cancel(now)

    def _send_cancel(self, now: float) -> None:
        invite = self.invite
        assert invite is not None and invite.transaction is not None and invite.target
        if self._cancel_sent:
            return
        self._cancel_sent = True
        self._cancel_pending = False
        sent = invite.request
        headers = [("Via", sent.headers.values("via")[0])]
        for name in ("Max-Forwards", "From", "To", "Call-ID"):
            value = sent.headers.get(name)
            if value is not None:
                headers.append((name, value))
        headers += [("Route", r) for r in sent.headers.values("route")]
        headers.append(("CSeq", f"{sent.cseq.seq} CANCEL"))
        if self._cancel_reason:
            headers.append(("Reason", self._cancel_reason))
        cancel = Request("CANCEL", sent.uri, headers)
        self.host.layer.send_request(cancel, invite.target, now)

    def on_provisional(self, creq: ClientRequest, response: Response, now: float) -> None:
        """A 1xx to our INVITE (or to another request of the call)."""
        if creq is not self.invite:
            self.usage_provisional(creq, response, now)
            return
        if self._cancel_pending:
            self._send_cancel(now)
        if self.state in (CallState.TERMINATED, CallState.CONFIRMED) or response.status == 100:
            if self.state is CallState.CALLING:
                self._set_state(CallState.PROCEEDING, response, now)
            return
        tag = response.to.tag
        if tag is None:
            self._set_state(CallState.PROCEEDING, response, now)
            return
        dialog = self.early.get(tag)
        if dialog is None:
            dialog = Dialog.from_uac(creq.request, response)
            self.early[tag] = dialog
            self.host.bind(dialog, self)
        else:
            dialog.refresh_target(response)
        if not self.prack_if_reliable(dialog, creq.request, response, now):
            return  # a retransmitted or out-of-order reliable provisional
        if response.body and self._offer_in_invite and self.oa_pending_local:
            self.take_answer(response.body, now)
        self.dialog = self.dialog or dialog
        self._set_state(CallState.EARLY, response, now)

    def on_final(self, creq: ClientRequest, response: Response, now: float) -> None:
        """A final response to our INVITE (or to another request of the call)."""
        if creq is not self.invite:
            self.usage_final(creq, response, now)
            return
        if 200 <= response.status < 300:
            self._on_2xx(creq, response, now)
            return
        if response.status == 422 and self.retry_422(creq, response, now):
            return
        if self.state is CallState.TERMINATED:
            return
        for dialog in self.early.values():
            dialog.state = DialogState.TERMINATED
        self.final = response
        self._end(response.status, response.reason, now, response)

    def _on_2xx(self, creq: ClientRequest, response: Response, now: float) -> None:
        tag = response.to.tag or ""
        confirmed = self.dialog if self.state is not CallState.EARLY else None
        if confirmed is not None and confirmed.state is DialogState.CONFIRMED:
            if confirmed.remote_tag == tag:
                self.resend_ack(now)  # a retransmission of the 2xx we took
            else:
                self._refuse_fork(creq, response, now)
            return
        if self.state is CallState.TERMINATED or self._cancel_sent:
            # §9.1: the 2xx crossed our CANCEL (or we gave up): ACK it, then BYE.
            self._refuse_fork(creq, response, now)
            if self.state is not CallState.TERMINATED:
                self._end(487, "Request Terminated", now, response)
            return
        dialog = self.early.pop(tag, None)
        if dialog is None:
            dialog = Dialog.from_uac(creq.request, response)
            self.host.bind(dialog, self)
        else:
            dialog.refresh_target(response)
            dialog.route_set = list(reversed(response.record_route))
        dialog.state = DialogState.CONFIRMED
        for other in self.early.values():
            other.state = DialogState.TERMINATED
            self.host.unbind_dialog(other)
        self.early.clear()
        self.dialog = dialog
        self.final = response
        answer = b""
        if response.body:
            if self.oa_pending_local:
                self.take_answer(response.body, now)
            elif not self._offer_in_invite:
                answer = self.take_offer_for_ack(response.body, now)
        self.send_ack(creq, dialog, answer, now)
        self.session_timer_from_2xx(response, now)
        self._set_state(CallState.CONFIRMED, response, now)

    def _refuse_fork(self, creq: ClientRequest, response: Response, now: float) -> None:
        """ACK a 2xx we do not want (another fork, or after CANCEL), then BYE it."""
        dialog = Dialog.from_uac(creq.request, response)
        dialog.state = DialogState.CONFIRMED
        self.send_ack(creq, dialog, b"", now, remember=False)
        bye = ClientRequest(dialog.create_request("BYE"), _Discard(), dialog=dialog)
        self.host.sender.send(bye, now)

    # ================================================================= UAS
    def ring(
        self, now: float, *, status: int = 180, body: bytes = b"", early_media: bool = False
    ) -> None:
        """Send a provisional response with our tag (reliably when RFC 3262 applies).

        ``early_media`` puts the SDP answer in it (send 183 Session Progress):
        media flows before the call is answered.
        """
        try:
            self._ring(now, status, body, early_media)
        except ParseError as exc:
            self._malformed(now, exc)

    def _ring(self, now: float, status: int, body: bytes, early_media: bool) -> None:
        if (
            self.is_uac
            or self.server is None
            or self.state
            not in (
                CallState.INCOMING,
                CallState.EARLY,
            )
        ):
            return
        if self.dialog is None:
            self.dialog = Dialog.from_uas(self.request, self.local_tag)
            self.host.bind(self.dialog, self)
        reliable = self.wants_reliable()
        if early_media and not body and not reliable and self.oa_pending_remote:
            try:
                body = self._early_answer = self.give_answer(self.request.body)
            except MediaError as exc:
                self.reject(now, exc.status, exc.reason)
                return
        headers = [("Contact", self.contact())]
        if body:
            headers.append(("Content-Type", self.media.content_type))
        response = self.request.reply(status, headers=headers, body=body, to_tag=self.local_tag)
        if reliable:
            if not self.send_reliable_provisional(response, now):
                return
        else:
            self.host.layer.respond(self.server, response, now)
        self._set_state(CallState.EARLY, response, now)

    def answer(self, now: float, *, body: bytes | None = None) -> None:
        """Accept the call with 200 OK; the SDP answer (or offer) is made unless ``body``."""
        try:
            self._answer(now, body)
        except ParseError as exc:
            self._malformed(now, exc)

    def _malformed(self, now: float, exc: ParseError) -> None:
        """A header of the INVITE turned out malformed while answering: never leave the
        caller without a final response (400, or the call ends if one was sent)."""
        log.info("malformed INVITE in call %s: %s", self.call_id, exc.reason)
        if self.state in (CallState.INCOMING, CallState.EARLY):
            server = self.server
            if server is not None and not server.final_sent:
                try:
                    response = self.request.reply(
                        exc.status, exc.reason[:120], to_tag=self.local_tag
                    )
                except ParseError:
                    response = self.request.reply(500, to_tag=self.local_tag)
                self.host.layer.respond(server, response, now)
                self.final = response
            self._end(exc.status, exc.reason, now, None)
        elif self.state is CallState.ACCEPTED:
            self.bye(now)

    def _answer(self, now: float, body: bytes | None) -> None:
        if self.is_uac or self.server is None:
            return
        if self.state not in (CallState.INCOMING, CallState.EARLY):
            return
        if self.reliable_unacked():
            self.answer_after_prack = True  # RFC 3262 §3: 2xx waits for the PRACK
            return
        if body is None:
            try:
                if self.request.body and self.oa_pending_remote:
                    body = self.give_answer(self.request.body)
                elif self.request.body:
                    # the answer went in an 18x: a reliable one settled it, an
                    # unreliable one is repeated in the 2xx
                    body = self._early_answer
                else:
                    body = self.make_offer()
            except MediaError as exc:
                self.reject(now, exc.status, exc.reason)
                return
        if self.dialog is None:
            self.dialog = Dialog.from_uas(self.request, self.local_tag)
            self.host.bind(self.dialog, self)
        self.dialog.state = DialogState.CONFIRMED
        headers = [("Contact", self.contact()), *self.allow_headers()]
        headers += self.session_timer_for_2xx(self.request, now)
        if body:
            headers.append(("Content-Type", self.media.content_type))
        ok = self.request.reply(200, headers=headers, body=body, to_tag=self.local_tag)
        self.final = ok
        self.send_2xx(self.server, ok, now)
        self._set_state(CallState.ACCEPTED, ok, now)

    def reject(self, now: float, status: int = 486, reason: str | None = None) -> None:
        """Refuse the call with a final non-2xx response."""
        if self.is_uac or self.server is None:
            return
        if self.state not in (CallState.INCOMING, CallState.EARLY):
            return
        response = self.request.reply(status, reason, to_tag=self.local_tag)
        self.host.layer.respond(self.server, response, now)
        self.final = response
        self._end(status, response.reason, now, response)

    def on_cancel(self, now: float, cancel: Request | None = None) -> None:
        """A CANCEL matched our INVITE server transaction (the core answered it 200)."""
        if cancel is not None:
            self.remote_reasons = cancel.reason_header
        if self.state in (CallState.INCOMING, CallState.EARLY) and self.server is not None:
            response = self.request.reply(487, to_tag=self.local_tag)
            self.host.layer.respond(self.server, response, now)
            self.final = response
            self._end(487, "Request Terminated", now, None)

    def server_gone(self, now: float) -> None:
        """The INVITE server transaction ended: before a final response, that means its
        connection failed (§17.2.4) and no response can reach the caller: the call ends."""
        if self.state in (CallState.INCOMING, CallState.EARLY):
            log.info("call %s: the caller can no longer be answered", self.call_id)
            self._end(503, "transport error", now, None)

    def ack_received(self, now: float) -> None:
        """The ACK for our 2xx to the initial INVITE arrived."""
        if self.state is CallState.ACCEPTED:
            self._set_state(CallState.CONFIRMED, None, now)

    def announce(self, now: float) -> None:
        """Report the new incoming call to the application."""
        self.host.emit(IncomingCall(self, self.request))
        if self.request.body:
            try:
                self.remote_offer(self.request.body)
            except MediaError as exc:
                self.reject(now, exc.status, exc.reason)

    # ================================================================= both
    def hangup(self, now: float, status: int = 603, reason: str | None = None) -> None:
        """End the call whatever its state: CANCEL, reject or BYE (``reason``: RFC 3326)."""
        if self.state in (CallState.CALLING, CallState.PROCEEDING) or (
            self.is_uac and self.state is CallState.EARLY
        ):
            self.cancel(now, reason)
        elif self.state in (CallState.INCOMING, CallState.EARLY):
            self.reject(now, status)
        elif self.state in (CallState.ACCEPTED, CallState.CONFIRMED):
            self.bye(now, reason)

    def _set_state(self, state: CallState, response: Response | None, now: float) -> None:
        if state is self.state and state is not CallState.EARLY:
            return
        self.state = state
        if state is CallState.CONFIRMED:
            self.confirmed(now)
        self.host.emit(CallStateChanged(self, state, response))

    def _end(self, status: int, reason: str, now: float, response: Response | None) -> None:
        self.end_status = status
        self.end_reason = reason
        self.terminate(now)
        self.state = CallState.TERMINATED
        self.host.forget(self, now)  # the slot is free at once
        self.host.emit(CallStateChanged(self, CallState.TERMINATED, response))

    def dialog_ended(self, status: int, reason: str, now: float) -> None:
        """Called by the in-dialog logic when the dialog ends (BYE sent or received)."""
        if self.state is not CallState.TERMINATED:
            self._end(status, reason, now, None)

    def _initial(self) -> Request:
        return self.request

    def _server(self) -> InviteServerTransaction | None:
        return self.server

    def __repr__(self) -> str:
        role = "UAC" if self.is_uac else "UAS"
        return f"<InviteSession {role} {self.call_id} {self.state.value}>"


class _Discard:
    """A sink for requests whose outcome nobody waits for (the BYE to an unwanted fork)."""

    def on_provisional(self, request: ClientRequest, response: Response, now: float) -> None:
        pass

    def on_final(self, request: ClientRequest, response: Response, now: float) -> None:
        log.debug("%s finished with %d", request.method, response.status)
