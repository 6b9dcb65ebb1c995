"""What an INVITE session does inside its dialog.

- offer/answer bookkeeping (RFC 3264): who owes whom an answer;
- the 2xx retransmission of a UAS until the ACK (§13.3.1.4), BYE when none comes;
- the ACK of a UAC for a 2xx, resent for every retransmitted 2xx (§13.2.2.4);
- reliable provisional responses and PRACK, both roles (RFC 3262);
- BYE (§15), re-INVITE (§14) and UPDATE (RFC 3311) both ways, the 491 glare
  back-off of §14.1, and 500 + Retry-After for overlapping re-INVITEs (§14.2);
- INFO (RFC 6086), MESSAGE (RFC 3428) and OPTIONS inside the dialog;
- session timers (RFC 4028): ``session_timers.SessionTimer`` keeps the numbers,
  this class sends the refreshes and the BYE when the session expires.
"""

from __future__ import annotations

import logging

from sipwire.core.client import ClientRequest
from sipwire.core.events import InDialogRequest, MediaChanged, RequestCompleted
from sipwire.core.host import SessionHost
from sipwire.core.media import MediaError, SessionMedia
from sipwire.core.session_timers import SessionTimer
from sipwire.dialog.dialog import Dialog, DialogState
from sipwire.errors import LocalProtocolError
from sipwire.message import Reason, Request, Response
from sipwire.timerheap import TimerHandle
from sipwire.transaction.base import State
from sipwire.transaction.server import ServerTransaction
from sipwire.transport.address import Target

__all__ = ["InDialog"]

log = logging.getLogger("sipwire.session")

_IDLE, _LOCAL, _REMOTE = "idle", "local-offer", "remote-offer"


class InDialog(SessionTimer):
    """The in-dialog half of an INVITE session (see :class:`InviteSession`)."""

    def __init__(self, host: SessionHost, media: SessionMedia) -> None:
        super().__init__(host)
        self.host = host
        self.media = media
        self.dialog: Dialog | None = None
        self.local_tag = ""
        self.transport = "udp"
        self.peer_verified = True
        """The peer has shown it receives what we send to it: it answered our request,
        sent a request carrying our tag, or talks over a connection. A UAS over UDP
        starts unverified (the source of an INVITE may be forged), and a 2xx that
        is never ACKed then ends the session without a BYE towards that address."""
        self.answer_after_prack = False
        self.remote_reasons: list[Reason] = []
        """Reason headers (RFC 3326) of the BYE or CANCEL that ended the call."""
        self._oa = _IDLE
        self._remote_offer: bytes | None = None
        # UAS: the 2xx we retransmit until the ACK.
        self._ok: Response | None = None
        self._ok_tx: ServerTransaction | None = None
        self._ok_timer: TimerHandle | None = None
        self._ok_interval = 0.0
        self._ok_deadline = 0.0
        # UAC: the ACK we resend for each retransmitted 2xx.
        self._ack: tuple[Request, Target] | None = None
        # RFC 3262, UAS side.
        self._rseq = 0
        self._unacked: Response | None = None
        self._rel_timer: TimerHandle | None = None
        self._rel_interval = 0.0
        self._rel_deadline = 0.0
        # RFC 3262, UAC side: last RSeq per early dialog.
        self._rseq_seen: dict[str, int] = {}
        # re-INVITE / UPDATE we sent, and the glare back-off.
        self._reinvite: ClientRequest | None = None
        self._glare_timer: TimerHandle | None = None
        self._glare_waiting = False

    def verify_peer(self, now: float) -> None:
        """The peer showed it receives what we send (an ACK, a request with our tag)."""
        if not self.peer_verified:
            self.peer_verified = True
            self.host.peer_verified(self, now)

    # -- hooks the session implements -------------------------------------------------------
    def dialog_ended(self, status: int, reason: str, now: float) -> None:
        """Hook: the dialog ended (BYE sent or received)."""
        raise NotImplementedError

    def ack_received(self, now: float) -> None:
        """Hook: the ACK for our 2xx arrived."""
        raise NotImplementedError

    def answer(self, now: float, *, body: bytes | None = None) -> None:
        """Hook: accept the call (see InviteSession.answer)."""
        raise NotImplementedError

    def reject(self, now: float, status: int = 486, reason: str | None = None) -> None:
        """Hook: refuse the call (see InviteSession.reject)."""
        raise NotImplementedError

    # -- offer/answer -------------------------------------------------------------------------
    @property
    def oa_pending_local(self) -> bool:
        """We sent an offer and wait for its answer."""
        return self._oa == _LOCAL

    @property
    def oa_pending_remote(self) -> bool:
        """The peer sent an offer we have not answered yet."""
        return self._oa == _REMOTE

    def make_offer(self, body: bytes | None = None) -> bytes:
        """An offer (ours, or ``body``) that now waits for its answer."""
        offer = self.media.create_offer() if body is None else body
        self._oa = _LOCAL
        return offer

    def remote_offer(self, body: bytes) -> None:
        """Remember the peer's offer until we answer it."""
        self._oa = _REMOTE
        self._remote_offer = body

    def give_answer(self, offer: bytes) -> bytes:
        """Answer the peer's ``offer`` through the media; MediaError if unacceptable."""
        answer = self.media.receive_offer(offer)
        self._oa = _IDLE
        self.host.emit(MediaChanged(self))  # type: ignore[arg-type]
        return answer

    def take_answer(self, body: bytes, now: float) -> bool:
        """The peer's answer to our offer; False if the media refused it."""
        try:
            self.media.receive_answer(body)
        except MediaError as exc:
            log.info("unacceptable answer in call %s: %s", self._call_id(), exc.reason)
            self._oa = _IDLE
            return False
        self._oa = _IDLE
        self.host.emit(MediaChanged(self))  # type: ignore[arg-type]
        return True

    def take_offer_for_ack(self, body: bytes, now: float) -> bytes:
        """An offer in a 2xx (the INVITE had none): the answer goes in the ACK."""
        try:
            return self.give_answer(body)
        except MediaError as exc:
            log.info("unacceptable offer in 2xx of %s: %s", self._call_id(), exc.reason)
            return b""

    def _call_id(self) -> str:
        return self.dialog.call_id if self.dialog is not None else "?"

    # -- headers ---------------------------------------------------------------------------
    def contact(self) -> str:
        """Our Contact for the transport this call uses."""
        return self.host.sender.contact(self.host.config.contact_user, self.transport)

    def allow_headers(self) -> list[tuple[str, str]]:
        """Allow and Supported headers for our requests and 2xx."""
        config = self.host.config
        return [("Allow", ", ".join(config.allow)), ("Supported", ", ".join(config.supported))]

    # -- UAC: ACK for a 2xx ----------------------------------------------------------------
    def send_ack(
        self, creq: ClientRequest, dialog: Dialog, answer: bytes, now: float, remember: bool = True
    ) -> None:
        """ACK a 2xx (§13.2.2.4), carrying ``answer`` if the 2xx held an offer."""
        headers = [("Content-Type", self.media.content_type)] if answer else []
        ack = dialog.create_request("ACK", seq=creq.request.cseq.seq, headers=headers, body=answer)
        target = self.host.sender.send_ack(ack, dialog, creq.target)
        if remember and target is not None:
            self._ack = (ack, target)

    def resend_ack(self, now: float) -> None:
        """Send the last ACK again (a retransmitted 2xx arrived)."""
        if self._ack is not None:
            self.host.layer.send_ack(*self._ack)

    # -- UAS: 2xx until the ACK ----------------------------------------------------------------
    def send_2xx(self, tx: ServerTransaction, ok: Response, now: float) -> None:
        """Send a 2xx to an INVITE and retransmit it until the ACK (§13.3.1.4)."""
        self.host.layer.respond(tx, ok, now)
        t1 = self.host.layer.config.t1
        self._ok, self._ok_tx = ok, tx
        self._ok_interval = t1
        self._ok_deadline = now + 64 * t1
        self._arm_ok(now + t1)

    def _arm_ok(self, deadline: float) -> None:
        if self._ok_timer is not None:
            self._ok_timer.cancel()
        self._ok_timer = self.host.timers.schedule(deadline, self._retransmit_2xx)

    def _retransmit_2xx(self, now: float) -> None:
        ok, tx = self._ok, self._ok_tx
        if ok is None or tx is None:
            return
        if now >= self._ok_deadline:
            self._ok = None
            if self.peer_verified:
                log.info("no ACK for the 2xx of call %s: ending it with BYE", self._call_id())
                self.bye(now)
            else:
                # §13.3.1.4 asks for a BYE, but nothing shows the peer is at the address
                # the INVITE claims: a forged source must not earn its victim a BYE.
                log.info(
                    "no ACK for the 2xx of call %s from an unverified peer: ended", self._call_id()
                )
                self.terminate(now)
                self.dialog_ended(408, "no ACK", now)
            return
        if tx.state is State.ACCEPTED:
            self.host.layer.respond(tx, ok, now)
        else:
            self.host.layer.send_stateless_response(ok, tx.source)
        self._ok_interval = min(2 * self._ok_interval, self.host.layer.config.t2)
        self._arm_ok(now + self._ok_interval)

    def on_ack(self, ack: Request, now: float) -> None:
        """An ACK inside the dialog: stops the 2xx retransmission it acknowledges."""
        self.verify_peer(now)
        ok = self._ok
        if ok is None or ack.cseq.seq != ok.cseq.seq:
            return
        self._ok = self._ok_tx = None
        if self._ok_timer is not None:
            self._ok_timer.cancel()
        if self._oa == _LOCAL:
            if ack.body:
                self.take_answer(ack.body, now)
            else:
                log.info("ACK without the answer to our offer in call %s", self._call_id())
                self.media.offer_rejected()  # the offer never took effect
                self._oa = _IDLE
        self.ack_received(now)

    # -- RFC 3262, UAS -------------------------------------------------------------------------
    def wants_reliable(self) -> bool:
        """True when our 18x must be reliable (RFC 3262): the caller requires or supports 100rel."""
        request = self._initial()
        if "100rel" in request.require:
            return True
        return self.host.config.reliable_provisional and "100rel" in request.supported

    def reliable_unacked(self) -> bool:
        """True while a reliable 18x waits for its PRACK."""
        return self._unacked is not None

    def send_reliable_provisional(self, response: Response, now: float) -> bool:
        """Send ``response`` with Require: 100rel and RSeq; False while one is unacknowledged."""
        if self._unacked is not None or self._ok_tx is not None:
            return False
        server = self._server()
        if server is None:
            return False
        if self._rseq == 0:
            self._rseq = int(self.host.ids.random() * 2**30) + 1
        else:
            self._rseq += 1
        response.headers.add("Require", "100rel")
        response.headers.add("RSeq", str(self._rseq))
        if self._oa == _REMOTE and self._remote_offer is not None and not response.body:
            try:
                answer = self.give_answer(self._remote_offer)
            except MediaError:
                answer = b""
            if answer:
                response.body = answer
                response.headers.set("Content-Type", self.media.content_type)
        self.host.layer.respond(server, response, now)
        t1 = self.host.layer.config.t1
        self._unacked = response
        self._rel_interval = t1
        self._rel_deadline = now + 64 * t1
        self._rel_timer = self.host.timers.schedule(now + t1, self._retransmit_reliable)
        return True

    def _retransmit_reliable(self, now: float) -> None:
        response, server = self._unacked, self._server()
        if response is None or server is None:
            return
        if now >= self._rel_deadline:
            self._unacked = None
            self.reject(now, 504, "No PRACK")  # RFC 3262 §3: reject with a 5xx
            return
        self.host.layer.respond(server, response, now)
        self._rel_interval *= 2
        self._rel_timer = self.host.timers.schedule(
            now + self._rel_interval, self._retransmit_reliable
        )

    def _on_prack(self, request: Request, tx: ServerTransaction, now: float) -> None:
        rack = request.rack
        unacked = self._unacked
        if (
            unacked is None
            or rack is None
            or rack.rseq != self._rseq
            or rack.cseq != unacked.cseq.seq
            or rack.method != unacked.cseq.method
        ):
            self.host.layer.respond(tx, request.reply(481), now)
            return
        self._unacked = None
        if self._rel_timer is not None:
            self._rel_timer.cancel()
        body = b""
        if request.body and self._oa == _LOCAL:
            self.take_answer(request.body, now)
        headers = [("Content-Type", self.media.content_type)] if body else []
        self.host.layer.respond(tx, request.reply(200, headers=headers, body=body), now)
        if self.answer_after_prack:
            self.answer_after_prack = False
            self.answer(now)

    # -- RFC 3262, UAC ---------------------------------------------------------------------------
    def prack_if_reliable(
        self, dialog: Dialog, invite: Request, response: Response, now: float
    ) -> bool:
        """PRACK a reliable 18x; False for a retransmitted or out-of-order one (ignore it)."""
        rseq = response.rseq
        if "100rel" not in response.require or rseq is None:
            return True
        last = self._rseq_seen.get(dialog.remote_tag)
        if last is not None and rseq != last + 1:
            return False
        self._rseq_seen[dialog.remote_tag] = rseq
        headers = [("RAck", f"{rseq} {invite.cseq.seq} INVITE")]
        body = b""
        if response.body and not invite.body and self._oa != _LOCAL:
            body = self.take_offer_for_ack(response.body, now)  # the answer goes in the PRACK
            if body:
                headers.append(("Content-Type", self.media.content_type))
        prack = dialog.create_request("PRACK", headers=headers, body=body)
        self.host.sender.send(ClientRequest(prack, self, dialog=dialog), now)  # type: ignore[arg-type]
        return True

    # -- requests inside the dialog ------------------------------------------------------------
    def on_request(self, request: Request, tx: ServerTransaction, now: float) -> None:
        """A request inside our dialog (the core found it by Call-ID and tags)."""
        dialog = self.dialog
        method = request.method
        if dialog is None or dialog.state is DialogState.TERMINATED:
            self.host.layer.respond(tx, request.reply(481), now)
            return
        self.verify_peer(now)  # it carries our tag: it received what we sent
        status = dialog.check_request(request)
        if status is not None:
            self.host.layer.respond(tx, request.reply(status, "CSeq out of order"), now)
            return
        if method == "BYE":
            self.remote_reasons = request.reason_header
            self.host.layer.respond(tx, request.reply(200), now)
            self.terminate(now)
            self.dialog_ended(200, "BYE received", now)
        elif method == "INVITE":
            self._on_reinvite(request, tx, now)
        elif method == "UPDATE":
            self._on_update(request, tx, now)
        elif method == "PRACK":
            self._on_prack(request, tx, now)
        elif method in ("INFO", "MESSAGE"):
            self.host.layer.respond(tx, request.reply(200), now)
            self.host.emit(InDialogRequest(self, request))  # type: ignore[arg-type]
        elif method == "OPTIONS":
            reply = request.reply(200, headers=self.allow_headers())
            self.host.layer.respond(tx, reply, now)
        elif not self.host.dialog_usage(self, request, tx, now):
            self.host.layer.respond(tx, request.reply(501), now)

    def _exchange_in_flight(self) -> bool:
        """Our re-INVITE/UPDATE is on the wire (not waiting out a 491 back-off)."""
        creq = self._reinvite
        return creq is not None and not creq.done and not self._glare_waiting

    def _on_reinvite(self, request: Request, tx: ServerTransaction, now: float) -> None:
        assert self.dialog is not None
        if self._exchange_in_flight() or self._oa == _LOCAL:
            self.host.layer.respond(tx, request.reply(491), now)  # §14.2 glare
            return
        if self._ok is not None:
            retry = str(int(self.host.ids.random() * 10))
            reply = request.reply(500, headers=[("Retry-After", retry)])
            self.host.layer.respond(tx, reply, now)
            return
        rejection = self.check_session_interval(request)
        if rejection is not None:
            self.host.layer.respond(tx, rejection, now)
            return
        try:
            body = self.give_answer(request.body) if request.body else self.make_offer()
        except MediaError as exc:
            self.host.layer.respond(tx, request.reply(exc.status, exc.reason), now)
            return
        self.dialog.refresh_target(request)
        headers = [("Contact", self.contact()), *self.allow_headers()]
        headers += self.session_timer_for_2xx(request, now)
        if body:
            headers.append(("Content-Type", self.media.content_type))
        self.send_2xx(tx, request.reply(200, headers=headers, body=body), now)

    def _on_update(self, request: Request, tx: ServerTransaction, now: float) -> None:
        assert self.dialog is not None
        if request.body and self._oa == _LOCAL:
            self.host.layer.respond(tx, request.reply(491), now)
            return
        rejection = self.check_session_interval(request)
        if rejection is not None:
            self.host.layer.respond(tx, rejection, now)
            return
        body = b""
        if request.body:
            try:
                body = self.give_answer(request.body)
            except MediaError as exc:
                self.host.layer.respond(tx, request.reply(exc.status, exc.reason), now)
                return
        self.dialog.refresh_target(request)
        headers = [("Contact", self.contact())]
        headers += self.session_timer_for_2xx(request, now)
        if body:
            headers.append(("Content-Type", self.media.content_type))
        self.host.layer.respond(tx, request.reply(200, headers=headers, body=body), now)

    # -- requests we send inside the dialog ---------------------------------------------------
    def send_in_dialog(
        self,
        method: str,
        now: float,
        *,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        content_type: str | None = None,
    ) -> ClientRequest:
        """Send any request inside the dialog; its final response comes as RequestCompleted."""
        dialog = self.dialog
        if dialog is None or dialog.state is DialogState.TERMINATED:
            raise LocalProtocolError(f"no dialog to send {method} in")
        items = list(headers or [])
        if body:
            items.append(("Content-Type", content_type or self.media.content_type))
        request = dialog.create_request(method, headers=items, body=body)
        contact = self.host.config.contact_user if method in ("INVITE", "UPDATE") else None
        creq = ClientRequest(request, self, dialog=dialog, contact_user=contact)  # type: ignore[arg-type]
        self.host.sender.send(creq, now)
        return creq

    def _check_idle(self) -> None:
        if (self._reinvite is not None and not self._reinvite.done) or self._oa != _IDLE:
            raise LocalProtocolError("an offer/answer exchange is already in progress")

    def reinvite(
        self, now: float, body: bytes | None = None, *, refresh: bool = False
    ) -> ClientRequest:
        """Send a re-INVITE with a new offer (or ``body``); raises while another is pending."""
        self._check_idle()
        offer = self.make_offer(body)
        headers = self.allow_headers() + self.session_timer_for_request()
        self._reinvite = self.send_in_dialog("INVITE", now, headers=headers, body=offer)
        return self._reinvite

    def update(self, now: float, body: bytes | None = None, *, offer: bool = True) -> ClientRequest:
        """Send an UPDATE (RFC 3311): a new offer, or a bare session refresh."""
        if self._reinvite is not None and not self._reinvite.done:
            raise LocalProtocolError("an offer/answer exchange is already in progress")
        payload = self.make_offer(body) if offer else b""
        headers = self.session_timer_for_request()
        self._reinvite = self.send_in_dialog("UPDATE", now, headers=headers, body=payload)
        return self._reinvite

    def hold(self, now: float) -> ClientRequest:
        """Put the peer on hold with a sendonly re-offer (RFC 3264 §8.4)."""
        self._check_idle()
        return self.reinvite(now, self.media.hold())

    def resume(self, now: float) -> ClientRequest:
        """Take the peer off hold with a sendrecv re-offer."""
        self._check_idle()
        return self.reinvite(now, self.media.resume())

    def bye(self, now: float, reason: str | None = None) -> ClientRequest | None:
        """End the confirmed dialog (§15.1.1): the session is over as soon as BYE is sent."""
        dialog = self.dialog
        if dialog is None or dialog.state is DialogState.TERMINATED:
            return None
        headers = [("Reason", reason)] if reason else []
        creq = self.send_in_dialog("BYE", now, headers=headers)
        self.terminate(now)
        self.dialog_ended(200, "BYE sent", now)
        return creq

    def usage_provisional(self, creq: ClientRequest, response: Response, now: float) -> None:
        """A provisional response to an in-dialog request: nothing to do."""

    def usage_final(self, creq: ClientRequest, response: Response, now: float) -> None:
        """The final response to a request we sent inside the dialog."""
        status = response.status
        if creq is self._reinvite:
            if status == 491 and self._glare(creq, now):
                return
            if creq.method == "INVITE" and 200 <= status < 300 and self.dialog is not None:
                answer = b""
                if response.body and self._oa == _LOCAL:
                    self.take_answer(response.body, now)
                elif response.body:
                    answer = self.take_offer_for_ack(response.body, now)
                self.dialog.refresh_target(response)
                self.send_ack(creq, self.dialog, answer, now)
            elif 200 <= status < 300:
                if response.body and self._oa == _LOCAL:
                    self.take_answer(response.body, now)
                if self.dialog is not None:
                    self.dialog.refresh_target(response)
            else:
                if self._oa == _LOCAL:
                    self.media.offer_rejected()
                self._oa = _IDLE  # the offer is void (§14.1)
            if 200 <= status < 300:
                self.session_timer_from_2xx(response, now)
        if status in (408, 481) and creq.method != "BYE" and self.dialog is not None:
            # §12.2.1.2: the dialog is gone.
            if status == 408:
                self.bye(now)
            else:
                self.terminate(now)
                self.dialog_ended(status, response.reason, now)
        self.host.emit(RequestCompleted(creq, response))

    def _glare(self, creq: ClientRequest, now: float) -> bool:
        """§14.1: after 491, send the same offer again after a random wait."""
        dialog = self.dialog
        if dialog is None or dialog.state is DialogState.TERMINATED:
            return False
        rnd = self.host.ids.random()
        wait = 2.1 + 1.9 * rnd if getattr(self, "is_uac", False) else 2.0 * rnd
        wait = round(wait, 2)  # units of 10 ms
        log.info("491 for %s in %s: trying again in %.2f s", creq.method, dialog.call_id, wait)

        def again(at: float) -> None:
            self._glare_waiting = False
            if self.dialog is None or self.dialog.state is DialogState.TERMINATED:
                return
            old = creq.request
            request = self.dialog.create_request(
                creq.method,
                headers=[(n, v) for n, v in old.headers if n.lower() not in _REBUILT],
                body=old.body,
            )
            if old.body:
                try:
                    request.body = self.make_offer()  # the offer again, as a new one
                except MediaError:
                    return
            creq.request = request
            creq.final = None
            creq.targets = None
            creq.auth_attempts = 0
            self.host.sender.send(creq, at)

        if self._oa == _LOCAL:
            self.media.offer_rejected()
        self._oa = _IDLE
        creq.final = None
        self._glare_waiting = True
        self._glare_timer = self.host.timers.schedule(now + wait, again)
        return True

    # -- life cycle --------------------------------------------------------------------------------
    def confirmed(self, now: float) -> None:
        """The dialog is confirmed: start the session timer if one was negotiated."""
        self.arm_session_timer(now)

    def terminate(self, now: float) -> None:
        """Stop every timer and forget the dialog."""
        for timer in (self._ok_timer, self._rel_timer, self._glare_timer):
            if timer is not None:
                timer.cancel()
        self.stop_session_timer()
        self._ok = self._ok_tx = self._unacked = None
        if self.dialog is not None:
            self.dialog.state = DialogState.TERMINATED
            self.host.unbind_dialog(self.dialog)

    def _initial(self) -> Request:
        raise NotImplementedError

    def _server(self) -> ServerTransaction | None:
        raise NotImplementedError

    # -- session timers (RFC 4028) --------------------------------------------------------------
    def refresh_session(self, now: float) -> None:
        """We are the refresher: refresh with UPDATE if the peer allows it, else re-INVITE."""
        if self._reinvite is not None and not self._reinvite.done:
            return
        try:
            if "UPDATE" in self.peer_allow:
                self.update(now, offer=False)
            else:
                self.reinvite(now, refresh=True)
        except (LocalProtocolError, MediaError) as exc:
            log.info("session refresh of %s not sent: %s", self._call_id(), exc.reason)

    def session_expired(self, now: float) -> None:
        """The peer did not refresh in time (RFC 4028 §10): BYE."""
        log.info("session of %s expired without a refresh", self._call_id())
        self.bye(now, 'SIP;cause=408;text="Session expired"')


_REBUILT = frozenset({"via", "max-forwards", "from", "to", "call-id", "cseq", "route"})
