"""The user agent core: UAC and UAS cores of RFC 3261 §8 as one transaction user.

Sans-I/O. The I/O edge feeds it transaction-layer events and the time,
calls its commands (``invite``, ``request``, ``register``) and pulls
:mod:`~sipwire.core.events` out of ``next_event()``::

    core = UserAgentCore(layer, UAConfig(aor=Address.parse("sip:alice@example.com")), ids)
    core.set_listeners({"udp": Listener("udp", "127.0.0.1", 5060)})
    session = core.invite("sip:bob@127.0.0.1:5080", StaticMedia(offer), now)
    ...
    core.handle(event, now)            # every TU event of the transaction layer
    core.handle_timer(now)             # when now >= core.next_timer()
    while (ev := core.next_event()) is not None: ...

Requests are checked as §8.2 asks (method, Require, URI scheme, merged
requests → 482); requests inside an unknown dialog get 481 (§12.2.2);
OPTIONS is answered with our capabilities and MESSAGE with 200 (RFC 3428)
before the application hears of it.
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Mapping
from typing import TYPE_CHECKING

from sipwire.core.checks import validate_invite
from sipwire.core.client import ClientRequest, Listener, RequestSender
from sipwire.core.config import UAConfig
from sipwire.core.events import (
    MessageReceived,
    RequestCompleted,
    ResolveTargets,
    UAEvent,
)
from sipwire.core.in_dialog import InDialog
from sipwire.core.media import SessionMedia
from sipwire.core.register import Registration
from sipwire.core.session import InviteSession
from sipwire.dialog.dialog import Dialog, DialogId
from sipwire.dialog.ids import IdSource
from sipwire.errors import ParseError
from sipwire.message import Address, Request, Response, SipUri, Uri
from sipwire.message.uri import to_uri
from sipwire.message.validate import Policy, Role, check_request
from sipwire.timerheap import TimerHandle, TimerHeap
from sipwire.transaction.events import (
    Event,
    RequestReceived,
    ResponseReceived,
    TransactionTerminated,
    TransactionTimedOut,
)
from sipwire.transaction.layer import TransactionLayer
from sipwire.transaction.server import InviteServerTransaction, ServerTransaction
from sipwire.transport.address import Target

if TYPE_CHECKING:
    from sipwire.auth.digest import DigestClient

__all__ = ["DialogUsageHandler", "UserAgentCore"]

log = logging.getLogger("sipwire.ua")

DialogUsageHandler = Callable[[InDialog, Request, ServerTransaction, float], bool]
OutOfDialogHandler = Callable[[Request, ServerTransaction, float], bool]


class UserAgentCore:
    """UAC and UAS cores, INVITE sessions, registrations: one TU for an Endpoint."""

    def __init__(
        self,
        layer: TransactionLayer,
        config: UAConfig,
        ids: IdSource,
        *,
        auth: DigestClient | None = None,
        media_factory: Callable[[], SessionMedia] | None = None,
    ) -> None:
        self.layer = layer
        if config.user_agent:
            # Every response of this element carries our Server header (RFC 3261 §20.35):
            # the transaction layer adds the line to each one it sends.
            layer.response_headers = (("server", "Server", config.user_agent),)
        self.config = config
        self.ids = ids
        self.timers = TimerHeap()
        self.sender = RequestSender(
            layer, ids, auth=auth, emit_resolve=self._resolve, max_redirects=config.max_redirects
        )
        self.media_factory = media_factory
        self._events: deque[UAEvent] = deque()
        self._dialogs: dict[DialogId, InDialog] = {}
        self._sessions: dict[tuple[str, str], InviteSession] = {}
        """Live sessions by (Call-ID, our tag)."""
        self._ended: OrderedDict[tuple[str, str], tuple[float, InviteSession]] = OrderedDict()
        """Calls we placed that ended, for 64*T1, by (Call-ID, our tag): a 2xx that
        arrives after the end (a retransmission, a late fork) is still ACKed, and BYEd
        when it is not the one we took (§13.2.2.4). Bounded by ``max_sessions``; not
        counted as live sessions."""
        self._tombstones: OrderedDict[DialogId, float] = OrderedDict()
        """Dialogs of sessions that ended, until 64*T1 after: a Replaces naming one
        gets 603 rather than 481 (RFC 3891 §3). Bounded by ``max_sessions``."""
        self._servers: dict[int, InviteSession] = {}
        self._recent: OrderedDict[tuple[str, str, str], tuple[Hashable, float]] = OrderedDict()
        """§8.2.2.2 memory: (From tag, Call-ID, CSeq) → (branch, until when), for 64*T1."""
        self._sweep: TimerHandle | None = None
        self._policy = Policy(
            role=Role.UAS,
            methods=frozenset(config.allow),
            extensions=frozenset(config.supported),
            accept=(),  # bodies are the application's business (INFO, MESSAGE, NOTIFY ...)
        )
        self.dialog_usages: list[DialogUsageHandler] = []
        """Extra in-dialog request handlers (REFER, NOTIFY, SUBSCRIBE), tried in order."""
        self.request_handlers: dict[str, OutOfDialogHandler] = {}
        """Handlers for requests outside dialogs by method (SUBSCRIBE, NOTIFY, REFER ...)."""
        self.dialog_fallbacks: list[Callable[[DialogId], InDialog | None]] = []
        """Asked for the owner of a dialog id the table lacks: a NOTIFY may create its
        dialog (before the SUBSCRIBE's 2xx, or from a fork: RFC 6665 §4.1.2.4)."""
        self.observers: list[Callable[[UAEvent], None]] = []
        """Called with every event as it is emitted (dialog usages watching calls)."""

    # -- setup ----------------------------------------------------------------------------------
    def set_listeners(self, listeners: Mapping[str, Listener]) -> None:
        """Where we receive, per transport (for Via sent-by and Contact)."""
        self.sender.set_listeners(listeners)

    # -- SessionHost -------------------------------------------------------------------------------
    def emit(self, event: UAEvent) -> None:
        """Queue an event for the application and tell the observers."""
        self._events.append(event)
        for observer in self.observers:
            observer(event)

    def find_dialog(self, dialog_id: DialogId) -> InDialog | None:
        """The owner of ``dialog_id``: the table, then the fallbacks."""
        owner = self._dialogs.get(dialog_id)
        if owner is None:
            for fallback in self.dialog_fallbacks:
                owner = fallback(dialog_id)
                if owner is not None:
                    break
        return owner

    def bind(self, dialog: Dialog, owner: InDialog) -> None:
        """Route requests of ``dialog`` to ``owner``."""
        self._dialogs[dialog.id] = owner

    def unbind_dialog(self, dialog: Dialog) -> None:
        """Stop routing requests of ``dialog``."""
        self._dialogs.pop(dialog.id, None)

    def dialog_usage(
        self, owner: InDialog, request: Request, transaction: ServerTransaction, now: float
    ) -> bool:
        """Offer an in-dialog request to the other dialog usages; True when taken."""
        return any(handler(owner, request, transaction, now) for handler in self.dialog_usages)

    def _resolve(self, creq: ClientRequest, uri: SipUri) -> None:
        self.emit(ResolveTargets(creq, uri))

    # -- commands ---------------------------------------------------------------------
    def new_request(
        self,
        method: str,
        uri: Uri | str,
        *,
        to: Address | str | None = None,
        from_: Address | None = None,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        content_type: str | None = None,
    ) -> Request:
        """A request outside any dialog, built as §8.1.1 says (Via comes when it is sent)."""
        target = to_uri(uri)
        local = from_ or self.config.aor
        remote = Address.of(to) if to is not None else Address(target)
        items: list[tuple[str, str]] = [
            ("Max-Forwards", "70"),
            ("From", str(Address(local.uri, local.display_name).with_tag(self.ids.token()))),
            ("To", str(remote)),
            ("Call-ID", self.ids.token()),
            ("CSeq", f"1 {method}"),
        ]
        if self.config.outbound_proxy is not None:
            items.append(("Route", str(self.config.outbound_proxy)))
        items.append(("User-Agent", self.config.user_agent))
        items += headers or []
        if body:
            items.append(("Content-Type", content_type or "text/plain;charset=UTF-8"))
        return Request(method, target, items, body)

    def request(
        self,
        method: str,
        uri: Uri | str,
        now: float,
        *,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        to: Address | str | None = None,
    ) -> ClientRequest:
        """Send a non-INVITE request outside a dialog (MESSAGE, OPTIONS, INFO ...).

        Its final response arrives as a RequestCompleted event.
        """
        request = self.new_request(
            method, uri, to=to, headers=headers, body=body, content_type=content_type
        )
        creq = ClientRequest(request, self)
        self.sender.send(creq, now)
        return creq

    def invite(
        self,
        uri: Uri | str,
        media: SessionMedia,
        now: float,
        *,
        headers: list[tuple[str, str]] | None = None,
        to: Address | str | None = None,
        offer: bool = True,
    ) -> InviteSession:
        """Start a call: INVITE ``uri`` with an offer from ``media`` (none if ``offer=False``)."""
        items = [
            ("Allow", ", ".join(self.config.allow)),
            ("Supported", ", ".join(self.config.supported)),
        ]
        if self.config.session_expires is not None:
            items += [
                ("Session-Expires", str(self.config.session_expires)),
                ("Min-SE", str(self.config.min_se)),
            ]
        items += headers or []
        body = media.create_offer() if offer else b""
        request = self.new_request(
            "INVITE", uri, to=to, headers=items, body=body, content_type=media.content_type
        )
        session = InviteSession(self, media, is_uac=True, request=request)
        if body:
            session.make_offer(body)
        session.local_tag = request.from_.tag or ""
        self._remember(session)
        session.start(now)
        return session

    def register(
        self,
        registrar: SipUri | str,
        now: float,
        *,
        aor: Address | None = None,
        expires: int = 3600,
        contacts: list[str] | None = None,
    ) -> Registration:
        """Register ``aor`` (default: our AOR) at ``registrar`` and keep it refreshed."""
        uri = SipUri.parse(registrar) if isinstance(registrar, str) else registrar
        registration = Registration(
            self, uri, aor or self.config.aor, expires=expires, contacts=contacts
        )
        registration.register(now)
        return registration

    def targets_resolved(self, creq: ClientRequest, targets: list[Target], now: float) -> None:
        """The answer to a ResolveTargets event."""
        self.sender.targets_resolved(creq, targets, now)

    # ResponseSink for plain requests
    def on_provisional(self, creq: ClientRequest, response: Response, now: float) -> None:
        """A 1xx to a plain request: nothing to report."""
        pass

    def on_final(self, creq: ClientRequest, response: Response, now: float) -> None:
        """The final response to a plain request: RequestCompleted."""
        self.emit(RequestCompleted(creq, response))

    # -- transaction-layer events ---------------------------------------------------------------
    def handle(self, event: Event, now: float) -> None:
        """Act on one TU event of the transaction layer.

        A header that only turns out malformed when the core reads it (a
        Contact, a RAck ...) gets the request a 400 with the parser's reason,
        or the response dropped with a log line; it never escapes.
        """
        if isinstance(event, ResponseReceived):
            try:
                self._on_response(event, now)
            except ParseError as exc:
                log.info("dropped response %d: %s", event.response.status, exc.reason)
        elif isinstance(event, RequestReceived):
            request, tx = event.request, event.transaction
            try:
                if tx is None:
                    if request.method == "ACK":
                        self._on_ack(request, now)
                    return
                if isinstance(tx, ServerTransaction):
                    self._on_request(request, tx, now)
            except ParseError as exc:
                log.info("malformed %s: %s", request.method, exc.reason)
                if isinstance(tx, ServerTransaction) and not tx.final_sent:
                    with contextlib.suppress(ParseError):
                        reply = request.reply(exc.status, exc.reason, to_tag=self.ids.token())
                        self.layer.respond(tx, reply, now)
        elif isinstance(event, TransactionTerminated):
            self.sender.forget(event.transaction)
            session = self._servers.pop(id(event.transaction), None)
            if session is not None:
                session.server_gone(now)
        elif isinstance(event, TransactionTimedOut):
            log.info("transaction gave up: %s (%s)", event.transaction, event.reason)

    def _on_response(self, event: ResponseReceived, now: float) -> None:
        creq = self.sender.owner(event)
        if creq is not None:
            self.sender.on_response(creq, event, now)
            return
        response = event.response
        if 200 <= response.status < 300 and response.cseq.method == "INVITE":
            session = self._session_for_2xx((response.call_id, response.from_.tag or ""), now)
            if session is not None and session.invite is not None:
                session.on_final(session.invite, response, now)  # a 2xx after the ICT ended
                return
        log.debug("response %d matches nothing; dropped", response.status)

    def _on_ack(self, ack: Request, now: float) -> None:
        owner = self.find_dialog((ack.call_id, ack.to.tag or "", ack.from_.tag or ""))
        if owner is not None:
            owner.on_ack(ack, now)

    def _on_request(self, request: Request, tx: ServerTransaction, now: float) -> None:
        rejection = check_request(request, self._policy)
        if rejection is not None:
            self.layer.respond(tx, rejection.response(request, to_tag=self.ids.token()), now)
            return
        method = request.method
        if method == "CANCEL":
            self._on_cancel(request, tx, now)
            return
        to_tag = request.to.tag
        if to_tag is not None:
            owner = self.find_dialog((request.call_id, to_tag, request.from_.tag or ""))
            if owner is None:
                self.layer.respond(tx, request.reply(481), now)  # §12.2.2
            else:
                owner.on_request(request, tx, now)
            return
        if self._merged(request, tx, now):
            self.layer.respond(tx, request.reply(482, to_tag=self.ids.token()), now)
            return
        handler = self.request_handlers.get(method)
        if handler is not None and handler(request, tx, now):
            return
        if method == "INVITE":
            assert isinstance(tx, InviteServerTransaction)
            self._on_invite(request, tx, now)
        elif method == "OPTIONS":
            headers = [
                ("Allow", ", ".join(self.config.allow)),
                ("Accept", "application/sdp, text/plain"),
                ("Supported", ", ".join(self.config.supported)),
            ]
            self.layer.respond(
                tx, request.reply(200, headers=headers, to_tag=self.ids.token()), now
            )
        elif method == "MESSAGE":
            self.layer.respond(tx, request.reply(200, to_tag=self.ids.token()), now)
            self.emit(MessageReceived(request))
        elif method in ("BYE", "PRACK", "UPDATE", "INFO", "NOTIFY"):
            self.layer.respond(tx, request.reply(481), now)
        else:
            self.layer.respond(tx, request.reply(405, to_tag=self.ids.token()), now)

    def _merged(self, request: Request, tx: ServerTransaction, now: float) -> bool:
        """§8.2.2.2: the same request (From tag, Call-ID, CSeq) on another branch → 482.

        A request is remembered for 64*T1 (a merged copy arrives while the first
        one's transaction lives) and at most ``merged_memory`` of them.
        """
        cseq = request.cseq
        key = (request.from_.tag or "", request.call_id, f"{cseq.seq} {cseq.method}")
        branch = tx.key  # (compared, never shown: the key itself rather than its str())
        seen = self._recent.get(key)
        if seen is not None and seen[0] != branch:
            return True
        self._recent[key] = (branch, now + 64 * self.layer.config.t1)
        while len(self._recent) > self.config.merged_memory:
            self._recent.popitem(last=False)
        self._sweep_later(now)
        return False

    def _on_invite(self, request: Request, tx: InviteServerTransaction, now: float) -> None:
        if len(self._sessions) >= self.config.max_sessions:
            log.warning("%d INVITE sessions (max_sessions): 503 to a new call", len(self._sessions))
            reply = request.reply(503, headers=[("Retry-After", "5")], to_tag=self.ids.token())
            self.layer.respond(tx, reply, now)
            return
        # Every header the session relies on is read now, before any response goes out:
        # a malformed one gets this INVITE a 400 rather than a call that never ends.
        validate_invite(request)
        media = self.media_factory() if self.media_factory is not None else None
        if media is None:
            self.layer.respond(tx, request.reply(488, to_tag=self.ids.token()), now)
            return
        session = InviteSession(self, media, is_uac=False, request=request, server=tx)
        session.transport = tx.source.transport
        session.peer_verified = tx.source.reliable  # a connection: the peer's address is real
        rejection = session.check_session_interval(request)
        if rejection is not None:
            self.layer.respond(tx, rejection, now)
            return
        self._remember(session)
        self._servers[id(tx)] = session
        session.holder = tx.source.host
        self.layer.admission.hold(session.holder, verified=session.peer_verified)
        session.announce(now)

    def _on_cancel(self, cancel: Request, tx: ServerTransaction, now: float) -> None:
        invite = self.layer.find_invite(cancel)
        if invite is None:
            self.layer.respond(tx, cancel.reply(481), now)
            return
        session = self._servers.get(id(invite))
        if session is None:
            # §9.2: the INVITE was answered already; the CANCEL changes nothing.
            self.layer.respond(tx, cancel.reply(200, to_tag=self.ids.token()), now)
            return
        self.layer.respond(tx, cancel.reply(200, to_tag=session.local_tag), now)
        session.on_cancel(now, cancel)

    def _remember(self, session: InviteSession) -> None:
        self._sessions[(session.call_id, session.local_tag)] = session

    def forget(self, session: InviteSession, now: float) -> None:
        """A session ended: it leaves the live tables at once (and frees its slot).

        A call we placed stays findable for stray 2xx for 64*T1 (``_ended``);
        everything else that can still arrive for an ended call (retransmitted
        INVITE, BYE, ACK) is absorbed by the transaction layer or answered 481.
        """
        key = (session.call_id, session.local_tag)
        if self._sessions.get(key) is session:
            del self._sessions[key]
        if session.server is not None:
            self._servers.pop(id(session.server), None)
        if session.holder is not None:
            self.layer.admission.release(session.holder, verified=session.peer_verified)
            session.holder = None
        deadline = now + 64 * self.layer.config.t1
        if session.is_uac:
            self._ended[key] = (deadline, session)
            self._ended.move_to_end(key)
            while len(self._ended) > self.config.max_sessions:
                self._ended.popitem(last=False)
        if session.dialog is not None and session.peer_verified:
            # (a peer that never showed itself, a forged INVITE never ACKed, leaves none)
            self._tombstones[session.dialog.id] = deadline
            self._tombstones.move_to_end(session.dialog.id)
            while len(self._tombstones) > self.config.max_sessions:
                self._tombstones.popitem(last=False)
        self._sweep_later(now)

    def peer_verified(self, session: InDialog, now: float) -> None:
        """A session's peer showed itself: it no longer counts as unverified work."""
        holder = getattr(session, "holder", None)
        if holder is not None:
            self.layer.admission.verified(holder, now)

    def ended_recently(self, dialog_id: DialogId) -> bool:
        """True when a session of ``dialog_id`` ended less than 64*T1 ago."""
        return dialog_id in self._tombstones

    def _session_for_2xx(self, key: tuple[str, str], now: float) -> InviteSession | None:
        session = self._sessions.get(key)
        if session is not None:
            return session
        self._expire_ended(now)
        ended = self._ended.get(key)
        return ended[1] if ended is not None else None

    def _expire_ended(self, now: float) -> None:
        """Forget ended calls, tombstones and merged-request memories past their time."""
        ended = self._ended
        while ended:
            deadline, _ = next(iter(ended.values()))
            if deadline > now:
                break
            ended.popitem(last=False)
        tombstones = self._tombstones
        while tombstones and next(iter(tombstones.values())) <= now:
            tombstones.popitem(last=False)
        recent = self._recent
        while recent and next(iter(recent.values()))[1] <= now:
            recent.popitem(last=False)

    def _sweep_later(self, now: float) -> None:
        """Make sure the memories above are swept by the clock, not only by new calls
        (what a flood left behind must not outlive it)."""
        if self._sweep is None:
            self._sweep = self.timers.schedule(now + 64 * self.layer.config.t1, self._swept)

    def _swept(self, now: float) -> None:
        self._sweep = None
        self._expire_ended(now)
        heads = []
        if self._ended:
            heads.append(next(iter(self._ended.values()))[0])
        if self._tombstones:
            heads.append(next(iter(self._tombstones.values())))
        if self._recent:
            heads.append(next(iter(self._recent.values()))[1])
        if heads:
            self._sweep = self.timers.schedule(max(now + 1.0, min(heads)), self._swept)

    # -- time and events --------------------------------------------------------------
    def next_timer(self) -> float | None:
        """The earliest deadline of every session, registration and subscription."""
        return self.timers.next_deadline()

    def handle_timer(self, now: float) -> None:
        """Fire whatever is due at ``now``."""
        self.timers.fire(now)

    def next_event(self) -> UAEvent | None:
        """The next event for the application, or None."""
        return self._events.popleft() if self._events else None

    def events(self) -> list[UAEvent]:
        """Every queued event, oldest first."""
        out = list(self._events)
        self._events.clear()
        return out

    @property
    def sessions(self) -> list[InviteSession]:
        """The INVITE sessions the core still knows."""
        return list(self._sessions.values())
