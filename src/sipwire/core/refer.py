"""Call transfer: REFER (RFC 3515) with Replaces (RFC 3891) and norefersub (RFC 4488).

``transfers = install(core)`` makes the core play every role:

- transferor: ``transfers.transfer(session, target, now)`` (blind) and
  ``transfers.attended_transfer(session, other, now)`` (Refer-To carries
  ``?Replaces=`` for the dialog of ``other``, escaped as RFC 3891 §3 asks)
  send a REFER in the session's dialog. The NOTIFYs of the implicit ``refer``
  subscription (RFC 3515 §2.4.4) carry ``message/sipfrag`` status lines; each
  becomes a :class:`~sipwire.core.events.TransferProgress`, the one with
  ``Subscription-State: terminated`` (or a failed REFER) has ``done=True``.
- transferee: a REFER in a session's dialog is answered 202, NOTIFY
  ``SIP/2.0 100 Trying`` follows, :class:`~sipwire.core.events.TransferRequested`
  is emitted and (``auto_accept``) the new call starts with Referred-By and
  Replaces. With ``ask`` the REFER waits for the application instead
  (RFC 3515 §2.4.2: approval from the user): ``accept`` answers 202 and starts
  the call, ``decline`` answers 603; undecided after ``decision_timeout``
  seconds, it is declined. Its outcome goes back in the final NOTIFY; once it is confirmed
  the original call is hung up (``hangup_after``). ``Refer-Sub: false``
  (RFC 4488) is honoured: 2xx with ``Refer-Sub: false`` and no NOTIFY.
- transfer target: an INVITE with Replaces (RFC 3891 §3) matching a dialog of
  ours is answered automatically and the replaced call ended (BYE, or CANCEL
  for our own early dialog); no match gets 481, a terminated one 603, a
  confirmed one with ``early-only`` 486.

Hooks: ``core.dialog_usages`` (REFER and ``Event: refer`` NOTIFYs),
``core.request_handlers["INVITE"]`` (returns False for INVITEs without
Replaces so that the core's normal path takes them), and ``core.observers``
to watch the :class:`CallStateChanged` of the calls a REFER started. The
core gives event observers no clock, so what they trigger runs from the
core's timer heap at its next ``handle_timer`` (scheduled at the
last time seen, hence due at once).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sipwire.core.client import ClientRequest
from sipwire.core.events import (
    CallReplaced,
    CallStateChanged,
    TransferProgress,
    TransferRequested,
    UAEvent,
)
from sipwire.core.session import CallState, InviteSession
from sipwire.core.sipfrag import SIPFRAG, parse_status_line, status_line
from sipwire.dialog.dialog import Dialog, DialogState
from sipwire.errors import LocalProtocolError, ParseError
from sipwire.message import Address, Event, Request, Response, SipUri, Uri
from sipwire.message.params import parse_params
from sipwire.timerheap import TimerHandle
from sipwire.transaction.server import ServerTransaction

if TYPE_CHECKING:
    from sipwire.core.in_dialog import InDialog
    from sipwire.core.ua import UserAgentCore

__all__ = ["IncomingTransfer", "OutgoingTransfer", "Replaces", "Transfers", "install"]

log = logging.getLogger("sipwire.refer")


@dataclass(frozen=True, slots=True)
class Replaces:
    """``Replaces: call-id;to-tag=...;from-tag=...[;early-only]`` (RFC 3891 §6.1).

    The tags are seen from the UA that sends the INVITE: its receiver matches
    ``to_tag`` against its local tag and ``from_tag`` against its remote tag.
    """

    call_id: str
    to_tag: str
    from_tag: str
    early_only: bool = False

    @classmethod
    def parse(cls, text: str) -> Replaces:
        """Parse the header value; ParseError when the Call-ID or a tag is missing."""
        call_id, sep, rest = text.strip().partition(";")
        params = parse_params(sep + rest, "Replaces")
        to_tag, from_tag = params.get("to-tag"), params.get("from-tag")
        if not call_id.strip() or not to_tag or not from_tag:
            raise ParseError(f"malformed Replaces: {text!r}")
        return cls(call_id.strip(), to_tag, from_tag, "early-only" in params)

    @classmethod
    def of_dialog(cls, dialog: Dialog, *, early_only: bool = False) -> Replaces:
        """What lets a third party take over ``dialog``, one of ours, at its peer."""
        return cls(dialog.call_id, dialog.remote_tag, dialog.local_tag, early_only)

    def __str__(self) -> str:
        flag = ";early-only" if self.early_only else ""
        return f"{self.call_id};to-tag={self.to_tag};from-tag={self.from_tag}{flag}"


class OutgoingTransfer:
    """A REFER we sent: we are the transferor."""

    def __init__(self, session: InviteSession, refer_to: Address, request: ClientRequest) -> None:
        self.session = session
        self.refer_to = refer_to
        self.request = request
        self.accepted = False
        """The REFER got a 2xx."""
        self.subscribed = True
        """NOTIFYs will report progress (False once ``Refer-Sub: false`` is granted)."""
        self.status: int | None = None
        """The last status heard: a sipfrag's, or the REFER's own when it failed."""
        self.reason = ""
        self.done = False

    @property
    def event_id(self) -> str:
        """The ``id`` of ``Event: refer`` in its NOTIFYs: the REFER's CSeq number."""
        return str(self.request.request.cseq.seq)


class IncomingTransfer:
    """A REFER we received: we are the transferee."""

    def __init__(
        self,
        session: InviteSession,
        request: Request,
        refer_to: Address,
        replaces: Replaces | None,
        *,
        notify: bool,
    ) -> None:
        self.session = session
        self.request = request
        self.refer_to = refer_to
        self.replaces = replaces
        self.referred_by = request.headers.get("Referred-By") or str(Address(request.from_.uri))
        self.event_id = str(request.cseq.seq)
        self.notify = notify
        """Report progress with NOTIFYs (False under ``Refer-Sub: false``)."""
        self.call: InviteSession | None = None
        """The call the REFER asked for, once started."""
        self.status: int | None = None
        self.done = False
        self.tx: ServerTransaction | None = None
        """The REFER's transaction while the application decides (``Transfers.ask``)."""
        self.decision_timer: TimerHandle | None = None

    @property
    def undecided(self) -> bool:
        """The REFER waits for ``accept`` or ``decline`` (not answered yet)."""
        return self.tx is not None

    @property
    def referred_by_header(self) -> str | None:
        """The REFER's Referred-By (RFC 3892) as sent, None when it had none."""
        return self.request.headers.get("Referred-By")

    @property
    def target(self) -> Uri:
        """The Refer-To URI without its headers: the Request-URI of the new INVITE."""
        uri = self.refer_to.uri
        if isinstance(uri, SipUri):
            return dataclasses.replace(uri, params=dict(uri.params), headers=[])
        return uri


class Transfers:
    """REFER in every role for one core (see the module docstring)."""

    def __init__(
        self,
        core: UserAgentCore,
        *,
        auto_accept: bool = True,
        hangup_after: bool = True,
        notify_expires: int = 60,
        ask: bool = False,
        decision_timeout: float = 10.0,
    ) -> None:
        self.core = core
        self.auto_accept = auto_accept
        """Start the call a REFER asks for at once (else call :meth:`accept`)."""
        self.ask = ask
        """Leave each REFER unanswered until :meth:`accept` (202) or :meth:`decline` (603)."""
        self.decision_timeout = decision_timeout
        """With ``ask``: seconds before an undecided REFER is declined (603)."""
        self.hangup_after = hangup_after
        """Hang up the original call once the transferred one is confirmed."""
        self.notify_expires = notify_expires
        self.outgoing: list[OutgoingTransfer] = []
        self.incoming: list[IncomingTransfer] = []
        self._refers: dict[ClientRequest, OutgoingTransfer] = {}
        self._notifies: dict[ClientRequest, IncomingTransfer] = {}
        self._by_call: dict[InviteSession, IncomingTransfer] = {}
        self._clock = 0.0

    # ================================================================ transferor
    def transfer(
        self,
        session: InviteSession,
        target: Address | Uri | str,
        now: float,
        *,
        norefersub: bool = False,
    ) -> OutgoingTransfer:
        """Blind transfer: ask the peer of ``session`` to call ``target``."""
        return self._refer(session, Address.of(target), now, norefersub)

    def attended_transfer(
        self, session: InviteSession, other: InviteSession, now: float, *, norefersub: bool = False
    ) -> OutgoingTransfer:
        """Attended transfer: ask the peer of ``session`` to replace our call ``other``."""
        dialog = other.dialog
        if dialog is None or dialog.state is DialogState.TERMINATED:
            raise LocalProtocolError("the call to replace has no dialog")
        uri = dialog.remote_target
        if not isinstance(uri, SipUri):
            raise LocalProtocolError(f"cannot refer to {uri}")
        replaces = str(Replaces.of_dialog(dialog))
        target = dataclasses.replace(uri, params=dict(uri.params), headers=[("Replaces", replaces)])
        return self._refer(
            session, Address(target, dialog.remote_uri.display_name), now, norefersub
        )

    def _refer(
        self, session: InviteSession, refer_to: Address, now: float, norefersub: bool
    ) -> OutgoingTransfer:
        self._tick(now)
        dialog = session.dialog
        if dialog is None or dialog.state is DialogState.TERMINATED:
            raise LocalProtocolError("no dialog to send REFER in")
        headers = [
            ("Refer-To", str(refer_to)),
            ("Referred-By", str(Address(self.core.config.aor.uri))),
            ("Contact", session.contact()),
        ]
        if norefersub:
            headers += [("Refer-Sub", "false"), ("Supported", "norefersub")]
        creq = ClientRequest(dialog.create_request("REFER", headers=headers), self, dialog=dialog)
        transfer = OutgoingTransfer(session, refer_to, creq)
        self.outgoing.append(transfer)
        self._refers[creq] = transfer
        self.core.sender.send(creq, now)
        return transfer

    def _on_refer_response(
        self, transfer: OutgoingTransfer, response: Response, now: float
    ) -> None:
        if 200 <= response.status < 300:
            transfer.accepted = True
            if (response.headers.get("Refer-Sub") or "").strip().lower() == "false":
                transfer.subscribed = False
                self._finish_out(transfer, response.status, response.reason)
        else:
            self._finish_out(transfer, response.status, response.reason)

    def _on_notify(
        self,
        session: InviteSession,
        request: Request,
        event: Event,
        tx: ServerTransaction,
        now: float,
    ) -> None:
        layer = self.core.layer
        transfer = next(
            (
                t
                for t in self.outgoing
                if t.session is session and (event.id is None or event.id == t.event_id)
            ),
            None,
        )
        if transfer is None:
            layer.respond(tx, request.reply(481), now)  # RFC 6665 §4.1.3: no such subscription
            return
        state = request.subscription_state
        if state is None:
            layer.respond(tx, request.reply(400, "Missing Subscription-State"), now)
            return
        layer.respond(tx, request.reply(200), now)
        status, reason = parse_status_line(request.body) or (transfer.status or 0, "")
        if state.state == "terminated":
            self._finish_out(transfer, status, reason)
            return
        transfer.status, transfer.reason = status, reason
        self.core.emit(TransferProgress(session, status, reason, False, transfer))

    def _finish_out(self, transfer: OutgoingTransfer, status: int, reason: str) -> None:
        if transfer.done:
            return
        transfer.done = True
        transfer.status, transfer.reason = status, reason
        if transfer in self.outgoing:
            self.outgoing.remove(transfer)
        self.core.emit(TransferProgress(transfer.session, status, reason, True, transfer))

    # ================================================================ transferee
    def _on_refer(
        self, session: InviteSession, request: Request, tx: ServerTransaction, now: float
    ) -> None:
        layer = self.core.layer
        try:
            refer_to = request.refer_to
            uri = refer_to.uri if refer_to is not None else None
            replaces = None
            if isinstance(uri, SipUri):
                for name, value in uri.headers:
                    if name.lower() == "replaces":
                        replaces = Replaces.parse(value)
        except ParseError as exc:
            layer.respond(tx, request.reply(400, exc.reason), now)
            return
        if refer_to is None:
            layer.respond(tx, request.reply(400, "Missing Refer-To"), now)
            return
        if not isinstance(uri, SipUri):
            layer.respond(tx, request.reply(416), now)
            return
        refer_sub = (request.headers.get("Refer-Sub") or "").strip().lower()
        quiet = refer_sub == "false" and "norefersub" in self.core.config.supported
        transfer = IncomingTransfer(session, request, refer_to, replaces, notify=not quiet)
        self.incoming.append(transfer)
        if self.ask:
            transfer.tx = tx
            transfer.decision_timer = self.core.timers.schedule(
                now + self.decision_timeout, lambda at: self.decline(transfer, at)
            )
            self.core.emit(TransferRequested(session, refer_to, replaces, transfer))
            return
        self._agree(transfer, tx, now)
        self.core.emit(TransferRequested(session, refer_to, replaces, transfer))
        if self.auto_accept:
            self.accept(transfer, now)

    def _agree(self, transfer: IncomingTransfer, tx: ServerTransaction, now: float) -> None:
        """202 Accepted, then the initial NOTIFY (RFC 3515 §2.4.4)."""
        headers = [("Contact", transfer.session.contact())]
        if not transfer.notify:
            headers.append(("Refer-Sub", "false"))  # RFC 4488 §4: no implicit subscription
        self.core.layer.respond(tx, transfer.request.reply(202, headers=headers), now)
        self._notify(transfer, 100, now)

    def _decided(self, transfer: IncomingTransfer) -> ServerTransaction | None:
        """The REFER's transaction if it still waited for the decision (now taken)."""
        tx, transfer.tx = transfer.tx, None
        if transfer.decision_timer is not None:
            transfer.decision_timer.cancel()
            transfer.decision_timer = None
        return tx

    def accept(self, transfer: IncomingTransfer, now: float) -> InviteSession | None:
        """Start the call ``transfer`` asks for (done at once when ``auto_accept``);
        an undecided REFER (``ask``) is answered 202 first."""
        self._tick(now)
        if transfer.call is not None or transfer.done:
            return transfer.call
        tx = self._decided(transfer)
        if tx is not None:
            self._agree(transfer, tx, now)
        factory = self.core.media_factory
        media = factory() if factory is not None else None
        if media is None:
            self._finish_in(transfer, 503, now)
            return None
        headers = [("Referred-By", transfer.referred_by)]
        if transfer.replaces is not None:
            headers += [("Replaces", str(transfer.replaces)), ("Require", "replaces")]
        to = Address(transfer.target, transfer.refer_to.display_name)
        call = self.core.invite(transfer.target, media, now, headers=headers, to=to)
        transfer.call = call
        self._by_call[call] = transfer
        return call

    def decline(self, transfer: IncomingTransfer, now: float, status: int = 603) -> None:
        """Refuse a transfer: an undecided REFER gets ``status`` as its response, one
        answered 202 already a final NOTIFY reporting ``status``."""
        self._tick(now)
        tx = self._decided(transfer)
        if tx is not None:
            self.core.layer.respond(tx, transfer.request.reply(status), now)
            transfer.done, transfer.status = True, status
            if transfer in self.incoming:
                self.incoming.remove(transfer)
            return
        if transfer.call is None and not transfer.done:
            self._finish_in(transfer, status, now)

    def _call_settled(self, transfer: IncomingTransfer, now: float) -> None:
        call = transfer.call
        if call is None or transfer.done:
            return
        if call.state is CallState.CONFIRMED:
            final = call.final
            status, reason = (final.status, final.reason) if final is not None else (200, None)
            self._finish_in(transfer, status, now, reason)
            if self.hangup_after:
                transfer.session.hangup(now)
        elif call.state is CallState.TERMINATED:
            self._finish_in(transfer, call.end_status or 500, now, call.end_reason or None)

    def _finish_in(
        self, transfer: IncomingTransfer, status: int, now: float, reason: str | None = None
    ) -> None:
        transfer.done = True
        transfer.status = status
        if transfer.call is not None:
            self._by_call.pop(transfer.call, None)
        if transfer in self.incoming:
            self.incoming.remove(transfer)
        self._notify(transfer, status, now, reason, final=True)

    def _notify(
        self,
        transfer: IncomingTransfer,
        status: int,
        now: float,
        reason: str | None = None,
        *,
        final: bool = False,
    ) -> None:
        """A NOTIFY of the implicit subscription, in the REFER's dialog (RFC 3515 §2.4.5)."""
        dialog = transfer.session.dialog
        if not transfer.notify or dialog is None or dialog.state is DialogState.TERMINATED:
            return
        state = "terminated;reason=noresource" if final else f"active;expires={self.notify_expires}"
        headers = [
            ("Event", f"refer;id={transfer.event_id}"),
            ("Subscription-State", state),
            ("Contact", transfer.session.contact()),
            ("Content-Type", SIPFRAG),
        ]
        body = status_line(status, reason)
        creq = ClientRequest(dialog.create_request("NOTIFY", headers=headers, body=body), self)
        creq.dialog = dialog
        self._notifies[creq] = transfer
        self.core.sender.send(creq, now)

    # ================================================================ transfer target
    def on_invite(self, request: Request, tx: ServerTransaction, now: float) -> bool:
        """``request_handlers["INVITE"]``: vet a Replaces header (RFC 3891 §3).

        False (the core goes on) without one, or when it matches a dialog we
        give up: the new call is then answered and the old one ended.
        """
        self._tick(now)
        values = request.headers.get_all("Replaces")
        if not values:
            return False
        try:
            replaces = Replaces.parse(values[0]) if len(values) == 1 else None
        except ParseError:
            replaces = None
        match = self.find(replaces) if replaces is not None else None
        status = 400 if replaces is None else _refusal(replaces, match)
        if (
            match is None
            and replaces is not None
            and self.core.ended_recently((replaces.call_id, replaces.to_tag, replaces.from_tag))
        ):
            status = 603  # RFC 3891 §3: the dialog has already terminated
        if status is not None or match is None:  # (no match always has a status)
            reply = request.reply(status or 481, to_tag=self.core.ids.token())
            self.core.layer.respond(tx, reply, now)
            return True
        old = match[0]
        self._soon(lambda at: self._replace(request, old, at))
        return False

    def find(self, replaces: Replaces) -> tuple[InviteSession, Dialog] | None:
        """The session and dialog ``replaces`` names, from our side (to-tag is ours)."""
        for session in self.core.sessions:
            for dialog in (session.dialog, *session.early.values()):
                if (
                    dialog is not None
                    and dialog.call_id == replaces.call_id
                    and dialog.local_tag == replaces.to_tag
                    and dialog.remote_tag == replaces.from_tag
                ):
                    return session, dialog
        return None

    def _replace(self, request: Request, old: InviteSession, now: float) -> None:
        new = next((s for s in self.core.sessions if s.request is request), None)
        if new is None or new.state not in (CallState.INCOMING, CallState.EARLY):
            return
        new.answer(now)
        if new.end_status is not None:
            return  # the answer failed (media): keep the old call
        old.hangup(now)
        self.core.emit(CallReplaced(old, new))

    # ================================================================ plumbing
    def on_dialog_request(
        self, owner: InDialog, request: Request, tx: ServerTransaction, now: float
    ) -> bool:
        """``core.dialog_usages`` entry: REFER, and NOTIFY for ``Event: refer``."""
        self._tick(now)
        if not isinstance(owner, InviteSession):
            return False
        if request.method == "REFER":
            self._on_refer(owner, request, tx, now)
            return True
        if request.method != "NOTIFY":
            return False
        try:
            event = request.event
        except ParseError:
            return False
        if event is None or event.package != "refer":
            return False
        self._on_notify(owner, request, event, tx, now)
        return True

    def on_provisional(self, creq: ClientRequest, response: Response, now: float) -> None:
        """Provisional responses to REFER/NOTIFY change nothing."""

    def on_final(self, creq: ClientRequest, response: Response, now: float) -> None:
        """The final response to a REFER or NOTIFY we sent."""
        self._tick(now)
        refer = self._refers.pop(creq, None)
        if refer is not None:
            self._on_refer_response(refer, response, now)
            return
        transfer = self._notifies.pop(creq, None)
        if transfer is not None and response.status in (408, 481):
            transfer.notify = False  # the transferor forgot the subscription (RFC 6665 §4.2.2)

    def observe(self, event: UAEvent) -> None:
        """Watch the core's events (``install`` adds this to ``core.observers``)."""
        if not isinstance(event, CallStateChanged):
            return
        if event.state not in (CallState.CONFIRMED, CallState.TERMINATED):
            return
        transfer = self._by_call.get(event.session)
        if transfer is not None:
            self._soon(lambda at: self._call_settled(transfer, at))
        if event.state is CallState.TERMINATED:
            for out in [t for t in self.outgoing if t.session is event.session]:
                # the dialog is gone: no more NOTIFYs can come for it
                self._finish_out(out, out.status or 0, out.reason or "dialog ended")

    def _tick(self, now: float) -> None:
        self._clock = max(self._clock, now)

    def _soon(self, action: Callable[[float], None]) -> None:
        """Run ``action(now)`` at the core's next timer pass (it is due at once)."""
        self.core.timers.schedule(self._clock, action)


def _refusal(replaces: Replaces, match: tuple[InviteSession, Dialog] | None) -> int | None:
    """RFC 3891 §3: the status refusing to replace the dialog ``replaces`` names, if any."""
    if match is None:
        return 481
    old, dialog = match
    if old.state is CallState.TERMINATED or dialog.state is DialogState.TERMINATED:
        return 603
    if dialog.state is DialogState.CONFIRMED and replaces.early_only:
        return 486
    if dialog.state is DialogState.EARLY and not old.is_uac:
        return 481  # an early dialog this UA did not start cannot be replaced
    return None


def install(
    core: UserAgentCore,
    *,
    auto_accept: bool = True,
    hangup_after: bool = True,
    notify_expires: int = 60,
    ask: bool = False,
    decision_timeout: float = 10.0,
) -> Transfers:
    """Make ``core`` handle REFER and Replaces; returns the manager (see module docstring)."""
    manager = Transfers(
        core,
        auto_accept=auto_accept,
        hangup_after=hangup_after,
        notify_expires=notify_expires,
        ask=ask,
        decision_timeout=decision_timeout,
    )
    core.dialog_usages.append(manager.on_dialog_request)
    previous = core.request_handlers.get("INVITE")

    def on_invite(request: Request, tx: ServerTransaction, now: float) -> bool:
        if manager.on_invite(request, tx, now):
            return True
        return previous is not None and previous(request, tx, now)

    core.request_handlers["INVITE"] = on_invite
    core.observers.append(manager.observe)
    return manager
