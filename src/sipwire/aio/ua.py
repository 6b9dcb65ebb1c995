"""The asyncio user agent: ``sipwire.UserAgent`` and ``sipwire.Call``.

::

    async with UserAgent("sip:alice@example.com", password="secret",
                         listen=["udp:127.0.0.1:5062"]) as ua:
        await ua.register("sip:example.com")
        call = await ua.call("sip:bob@example.com")
        await call.hold()
        await call.hangup()

Incoming calls arrive through ``async for call in ua.incoming()`` or a
handler set with ``@ua.on_call``; MESSAGEs through ``ua.messages()``;
SUBSCRIBEs for the packages we serve through ``ua.subscriptions()``
(:mod:`sipwire.aio.subscriptions`); REFERs in ``call.events()``
(:mod:`sipwire.aio.transfer`). Every call the agent is part of is tracked
(``ua.calls``) and ended by ``close()``.

Timeouts, one rule: every method that sends a request and waits for its
outcome (``call()``, ``register()``, ``unregister()``, ``request()``,
``message()``, ``options()``, ``subscribe()``, ``call.answer()``,
``call.hold()``, ``call.send_info()`` ..., ``call.transfer()``,
``sub.accept()``, ``sub.notify()``) takes ``timeout=`` in seconds (None: no
limit). When it expires with no final response, the request is given up
(``call()`` cancels its INVITE) and ``RequestFailed(408, "Request Timeout (no
final response in N s)")`` is raised. When a final response arrived, a
failure raises ``RequestFailed`` with its status; a call the local side
cancelled (``hangup()`` or ``close()`` while it rang) raises 487. Defaults:
32 s for requests (64*T1, when a transaction gives up by itself), 60 s for
``call()`` and ``wait_answered()``, 90 s for ``transfer()`` (the REFER, then
the transferee's own call). Methods that end something (``hangup()``,
``unsubscribe()``, ``sub.terminate()``, ``close()``) wait at most their
timeout and never raise: it is over locally either way. Methods that wait
for the peer rather than for a response (``wait_ended()``,
``sub.wait_terminated()``) wait until told otherwise and raise
``TimeoutError`` when given a timeout.

Everything SIP happens in the sans-I/O :class:`~sipwire.core.ua.UserAgentCore`;
this module only turns its events into futures and queues, runs DNS for
it, and owns the sockets through an :class:`~sipwire.aio.endpoint.Endpoint`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from sipwire.aio.answering import IncomingCallsMixin
from sipwire.aio.call import Call
from sipwire.aio.dns import Resolver
from sipwire.aio.endpoint import Endpoint
from sipwire.aio.ids import SecretIds
from sipwire.aio.limits import default_limits
from sipwire.aio.listen import advertised_host, parse_listen
from sipwire.aio.media.config import DtmfReceived, MediaTimeout, RtpConfig
from sipwire.aio.media.session import CallMedia, MediaEvent, MediaManager
from sipwire.aio.registrations import RegistrationsMixin
from sipwire.aio.subscriptions import SubscriptionsMixin
from sipwire.aio.timeouts import CALL_TIMEOUT, REQUEST_TIMEOUT, within
from sipwire.aio.transfer import TransfersMixin
from sipwire.aio.transport_base import TransportConfig
from sipwire.auth.digest import DigestAccount, DigestClient
from sipwire.core import refer
from sipwire.core.client import ClientRequest, Listener
from sipwire.core.config import UAConfig
from sipwire.core.events import (
    CallReplaced,
    CallStateChanged,
    IncomingCall,
    InDialogRequest,
    MediaChanged,
    MessageReceived,
    NotifyReceived,
    RegistrationChanged,
    RequestCompleted,
    ResolveTargets,
    SubscribeReceived,
    SubscriptionStateChanged,
    TransferProgress,
    TransferRequested,
    UAEvent,
)
from sipwire.core.media import SessionMedia
from sipwire.core.sdp_media import MediaConfig, SdpMedia
from sipwire.core.session import CallState, InviteSession
from sipwire.core.subscription import SubscribeAnswer
from sipwire.core.ua import UserAgentCore
from sipwire.errors import LocalProtocolError, RequestFailed
from sipwire.message import Address, Request, Response, SipUri
from sipwire.transaction.admission import AdmissionConfig
from sipwire.transaction.events import Event

__all__ = ["UserAgent"]


def _ignore(event: object) -> None:
    """Events the agent has no use for."""


log = logging.getLogger("sipwire.ua")

MAX_QUEUE = 1000
CLOSE_TIMEOUT = 2.0
"""Seconds ``close()`` waits for its BYEs to be answered and its CANCELled calls to end."""
_UP = frozenset({CallState.ACCEPTED, CallState.CONFIRMED})


class UserAgent(IncomingCallsMixin, RegistrationsMixin, SubscriptionsMixin, TransfersMixin):
    """A SIP user agent on asyncio: register, call, answer, message, subscribe, notify.

    ``aor`` is our address of record (the From of our requests).
    ``username``/``password`` answer digest challenges; ``username``
    defaults to the AOR's user and may differ from it (many PBXs use an
    extension number as the auth name). ``listen`` lists local addresses
    as ``TRANSPORT:HOST:PORT`` (port 0 picks a free one). ``rtp`` says how
    calls carry audio: True (the default) or an :class:`~sipwire.RtpConfig`
    gives each call RTP/RTCP sockets (``call.play()``, ``call.record()`` ...);
    ``rtp=False`` (and ``media_factory``) makes a signalling-only agent, whose
    SDP is negotiated but nothing listens on its ports (a load generator, a
    B2BUA that relays the SDP).
    """

    def __init__(
        self,
        aor: str = "sip:sipwire@127.0.0.1",
        *,
        password: str | None = None,
        username: str | None = None,
        realm: str | None = None,
        listen: Sequence[str] = ("udp:127.0.0.1:0",),
        outbound_proxy: str | None = None,
        display_name: str | None = None,
        user_agent: str = "sipwire",
        media: MediaConfig | None = None,
        media_factory: Callable[[], SessionMedia] | None = None,
        transport: TransportConfig | None = None,
        session_expires: int | None = 1800,
        reliable_provisional: bool = False,
        trace: Callable[[str, bytes, object], None] | None = None,
        limits: AdmissionConfig | None = None,
        rtp: RtpConfig | bool | None = True,
    ) -> None:
        address = Address.parse(aor)
        if display_name is not None:
            address.display_name = display_name
        if not isinstance(address.uri, SipUri):
            raise ValueError(f"the AOR must be a sip: or sips: URI: {aor!r}")
        self.aor = address
        self.listen_specs = [parse_listen(item) for item in listen]
        """Where the agent listens (port 0: a free one, see ``listeners`` once started)."""
        self._accounts: list[DigestAccount] = []
        if password is not None:
            auth_user = username or address.uri.user or ""
            self._accounts.append(DigestAccount(auth_user, password, realm))
        self.limits = limits or default_limits()
        """Admission limits (sessions, transactions, bytes held); sized from memory by default."""
        self.config = UAConfig(
            aor=address,
            max_sessions=self.limits.max_holdings,
            contact_user=address.uri.user or "sipwire",
            user_agent=user_agent,
            outbound_proxy=Address.parse(outbound_proxy) if outbound_proxy else None,
            session_expires=session_expires,
            reliable_provisional=reliable_provisional,
        )
        self.media_config = media or MediaConfig()
        self._media_factory = media_factory
        self.media: MediaManager | None = None
        """The RTP sessions of the calls (None without RTP); ``media.listeners`` hear
        every DtmfReceived, MediaTimeout and MediaEnded, calls answered by
        ``auto_answer`` included."""
        if rtp is True:
            rtp = RtpConfig()
        if isinstance(rtp, RtpConfig) and media_factory is None:
            self.media = MediaManager(rtp, self.media_config)
            self.media.listeners.append(self._on_media_event)
        self._transport_config = transport
        self._trace = trace
        self.endpoint: Endpoint | None = None
        self.core: UserAgentCore | None = None
        self.resolver: Resolver | None = None
        self.listeners: dict[str, Listener] = {}
        self._waiters: dict[int, asyncio.Future[Response]] = {}
        self._calls: dict[InviteSession, Call] = {}
        """Calls with a Call object: placed, received, started by a transfer."""
        self._auto_sessions: set[InviteSession] = set()
        """Calls answered by ``auto_answer`` that nobody asked about yet (no Call object)."""
        self._incoming: asyncio.Queue[Call] = asyncio.Queue(MAX_QUEUE)
        self._messages: asyncio.Queue[Request] = asyncio.Queue(MAX_QUEUE)
        self._call_handler: Callable[[Call], Awaitable[None]] | None = None
        self._registrations = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._draining = False
        self._closing = False
        self._handlers = self._event_handlers()
        self._rtp_port = self.media_config.rtp_port_min
        self._auto_answer: float | None = None
        self._accept_transfers = False
        self.unclaimed_timeout = 60.0
        """Seconds an incoming call may ring unclaimed before it is refused with 480: one
        nobody takes from ``incoming()``, or whose ``on_call`` handler returned without
        answering it (counted from its arrival)."""
        self.transfer_decision_timeout = 10.0
        """Seconds the application has to ``accept()`` or ``decline()`` a REFER it is
        shown (:class:`~sipwire.TransferRequest`); undecided, it is declined (603).
        Set it before ``start()``."""
        self.transfer_manager: refer.Transfers | None = None
        """REFER/Replaces (RFC 3515, RFC 3891) of this agent at core level, once started."""
        self._transfer_waiters = {}
        self._init_subscriptions()
        self.calls_answered = 0
        """Calls answered by ``auto_answer``."""
        self.calls_completed = 0
        """Calls answered by ``auto_answer`` that the caller ended with BYE."""

    # -- life cycle -------------------------------------------------------------------------
    async def __aenter__(self) -> UserAgent:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Open the listeners and start the core."""
        endpoint = Endpoint(transport=self._transport_config, limits=self.limits)
        self.endpoint = endpoint
        if self._trace is not None:
            endpoint.trace = self._trace
        ids = SecretIds()
        auth = DigestClient(self._accounts, ids.token) if self._accounts else None
        core = UserAgentCore(
            endpoint.transactions,
            self.config,
            ids,
            auth=auth,
            media_factory=self._new_media,
        )
        self.core = core
        self._install_subscriptions(core)
        self.transfer_manager = refer.install(
            core, ask=True, decision_timeout=self.transfer_decision_timeout
        )
        endpoint.tu = self
        self.resolver = Resolver()
        try:
            for spec in self.listen_specs:
                bound_host, bound_port = await endpoint.listen(spec.transport, spec.host, spec.port)
                listener = Listener(spec.transport, advertised_host(bound_host), bound_port)
                self.listeners.setdefault(spec.transport, listener)
        except BaseException:
            await endpoint.close()
            raise
        core.set_listeners(self.listeners)

    async def close(self, *, timeout: float = CLOSE_TIMEOUT) -> None:
        """End everything, then close the sockets.

        Every call ends: BYE for answered ones, CANCEL for the ones we place that
        ring, 487 for the ones that ring here. Our subscriptions are unsubscribed,
        the ones we serve terminated (``noresource``), undecided SUBSCRIBEs get 480
        and undecided REFERs 603; registrations stop refreshing. It waits at most
        ``timeout`` seconds for the BYEs to be answered and the CANCELled calls to end.
        """
        endpoint = self.endpoint
        if endpoint is None or self._closing:
            return
        self._closing = True
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()  # handlers and keep-alives: nothing new starts
        try:
            pending = self._end_everything()
            if pending:
                await asyncio.wait(pending, timeout=timeout)
        finally:
            for registration, _ in self._registrations.values():
                registration.close()
            await endpoint.drain()  # let the last messages reach the transports
            for task in list(self._tasks):
                if task is not current:
                    task.cancel()
            if self.media is not None:
                self.media.close()
            await endpoint.close()
            self.endpoint = None
            self._closing = False

    def _end_everything(self) -> list[asyncio.Future[Any]]:
        """Send what ends every call and subscription; the futures to wait for."""
        now, loop = self._now(), asyncio.get_running_loop()
        pending: list[asyncio.Future[Any]] = []
        for session in [*self._calls, *self._auto_sessions]:
            if session.state in _UP:
                bye = session.bye(now)
                if bye is not None:
                    future: asyncio.Future[Response] = loop.create_future()
                    self._waiters[id(bye)] = future
                    pending.append(future)
            elif not session.is_uac:
                session.reject(now, 487)  # nothing happens once it is over
            elif session.state is not CallState.TERMINATED:
                session.cancel(now)
                call = self._calls.get(session) or self._wrap(session)
                pending.append(call._ended_future())
        subs = self.subscription_manager
        if subs is not None:
            for sub in list(subs.subscriptions):
                if sub.is_subscriber:
                    sub.unsubscribe(now)
                else:
                    sub.notify(now, state="terminated", reason="noresource")
            for sub in list(subs.undecided):
                subs.answer(sub, SubscribeAnswer(480), now)
        transfers = self.transfer_manager
        if transfers is not None:
            for transfer in [t for t in transfers.incoming if t.undecided]:
                transfers.decline(transfer, now)
        self._flush()
        return pending

    @property
    def contact_address(self) -> tuple[str, int]:
        """Host and port of the first listener."""
        listener = next(iter(self.listeners.values()))
        return listener.host, listener.port

    # -- media ------------------------------------------------------------------------------
    def _new_media(self) -> SessionMedia:
        if self._media_factory is not None:
            return self._media_factory()
        host = next(iter(self.listeners.values())).host if self.listeners else "127.0.0.1"
        if self.media is not None:
            try:
                return self.media.new_media(host, f"{self.config.contact_user}@{host}")
            except OSError as exc:
                log.warning("call without audio: %s", exc)
        port = self._rtp_port
        self._rtp_port += 2
        if self._rtp_port > self.media_config.rtp_port_max:
            self._rtp_port = self.media_config.rtp_port_min
        return SdpMedia(self.media_config, address=host, audio_port=port)

    # -- the transaction user (driven by the Endpoint) --------------------------------------
    def handle(self, event: Event, now: float) -> None:
        """A transaction-layer event for the core (called by the Endpoint)."""
        assert self.core is not None
        self.core.handle(event, now)
        self._drain()

    def next_timer(self) -> float | None:
        """The core's earliest deadline (called by the Endpoint)."""
        return self.core.next_timer() if self.core is not None else None

    def handle_timer(self, now: float) -> None:
        """Fire the core's timers due at ``now`` (called by the Endpoint)."""
        assert self.core is not None
        self.core.handle_timer(now)
        self._drain()

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _core(self) -> UserAgentCore:
        if self.core is None:
            raise LocalProtocolError("the user agent is not started (use 'async with')")
        return self.core

    def _flush(self) -> None:
        """After a command: send what it queued, then deliver the core's events."""
        if self.endpoint is not None:
            self.endpoint.pump()
        self._drain()

    def _drain(self) -> None:
        """Deliver the core's events: a loop; a nested call leaves them to the outer one."""
        core = self.core
        if core is None or self._draining:
            return
        self._draining = True
        try:
            while (event := core.next_event()) is not None:
                try:
                    self._dispatch(event)
                except Exception:
                    log.exception("error handling %r", event)
        finally:
            self._draining = False
        if self.endpoint is not None:
            self.endpoint.pump()

    def _dispatch(self, event: UAEvent) -> None:
        handler = self._handlers.get(type(event))
        if handler is None:
            handler = next(
                (h for t in type(event).__mro__ if (h := self._handlers.get(t)) is not None),
                _ignore,
            )
            self._handlers[type(event)] = handler
        handler(event)

    def _event_handlers(self) -> dict[type, Callable[[Any], None]]:
        """Which method takes which core event (one dict lookup per event)."""
        call_event = self._on_call_event
        return {
            ResolveTargets: lambda event: self._spawn(self._resolve(event)),
            RequestCompleted: self._on_request_completed,
            IncomingCall: self._on_incoming,
            NotifyReceived: self._on_notify,
            SubscriptionStateChanged: self._on_subscription_state,
            SubscribeReceived: self._on_subscribe_received,
            TransferProgress: self._on_transfer_progress,
            TransferRequested: self._on_transfer_requested,
            CallReplaced: self._on_call_replaced,
            CallStateChanged: call_event,
            MediaChanged: call_event,
            InDialogRequest: call_event,
            MessageReceived: self._on_message_received,
            RegistrationChanged: self._on_registration_changed,
        }

    def _on_request_completed(self, event: RequestCompleted) -> None:
        future = self._waiters.pop(id(event.request), None)
        if future is not None and not future.done():
            future.set_result(event.response)

    def _on_call_event(self, event: CallStateChanged | MediaChanged | InDialogRequest) -> None:
        session = event.session
        media = session.media
        if isinstance(media, CallMedia):
            media.on_call_event(event, self._now())
        call = self._calls.get(session)
        if call is not None:
            call._on_event(event)
        elif type(event) is CallStateChanged:
            if session in self._auto_sessions:
                if event.state is CallState.TERMINATED:
                    self._auto_sessions.discard(session)
                    self._count_completed(session)
            elif event.state is not CallState.TERMINATED:
                self._wrap(session)._on_event(event)  # a call a transfer started for us

    def _on_incoming(self, event: IncomingCall) -> None:
        media = event.session.media
        if isinstance(media, CallMedia):
            media.session = event.session
        super()._on_incoming(event)

    def _on_media_event(self, event: MediaEvent) -> None:
        if isinstance(event, DtmfReceived | MediaTimeout):
            call = self._calls.get(event.session)
            if call is not None:
                call._on_media_event(event)
        if isinstance(event, MediaTimeout) and self.media is not None:
            session = event.session
            if self.media.config.hangup_on_timeout and session.state in _UP:
                log.info("no RTP for %.1f s in call %s: hanging up", event.seconds, session)
                session.bye(self._now(), 'SIP;cause=408;text="Media timeout"')
                self._flush()

    def _on_call_replaced(self, event: CallReplaced) -> None:
        call = self._calls.get(event.old)
        if call is not None:
            call._on_other(event)

    def _count_completed(self, session: InviteSession) -> None:
        final = session.final
        if session.end_reason == "BYE received" and final is not None and final.status == 200:
            self.calls_completed += 1

    def _on_message_received(self, event: MessageReceived) -> None:
        if self._messages.full():
            log.info("message queue full; dropping a MESSAGE from %s", event.request.from_)
        else:
            self._messages.put_nowait(event.request)

    async def _resolve(self, event: ResolveTargets) -> None:
        assert self.resolver is not None
        try:
            targets = await self.resolver.resolve(event.uri)
        except Exception as exc:
            log.info("cannot resolve %s: %s", event.uri, exc)
            targets = []
        self._core().targets_resolved(event.request, targets, self._now())
        self._flush()

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- calls ------------------------------------------------------------------------------
    def _wrap(self, session: InviteSession, *, record: bool = True) -> Call:
        call = Call(self, session, record=record)
        self._calls[session] = call
        return call

    def _forget_call(self, call: Call) -> None:
        self._calls.pop(call.session, None)
        if call.auto:
            self._count_completed(call.session)

    @property
    def calls(self) -> list[Call]:
        """Calls in progress: placed, received, answered by ``auto_answer``, or started
        by a transfer. Each leaves the list the moment it ends."""
        for session in list(self._auto_sessions):  # the application looks at them now
            self._auto_sessions.discard(session)
            if session.state is not CallState.TERMINATED:
                self._wrap(session, record=False).auto = True
        return [call for call in self._calls.values() if not call.ended]

    async def call(
        self,
        target: str,
        *,
        headers: Sequence[tuple[str, str]] = (),
        timeout: float | None = CALL_TIMEOUT,
        wait: bool = True,
    ) -> Call:
        """Call ``target``; with ``wait`` (default) return once answered.

        Raises :class:`~sipwire.RequestFailed` with the SIP status when the call
        is refused (486, 404 ...), cancelled locally (487) or fails locally (503
        unreachable); 408 when nobody answered within ``timeout`` seconds (the
        INVITE is then cancelled).
        """
        core = self._core()
        media = self._new_media()
        if isinstance(media, CallMedia):
            media.signalling_target = target  # SDES keys only over TLS (sips:)
        try:
            session = core.invite(target, media, self._now(), headers=list(headers))
        except BaseException:
            if isinstance(media, CallMedia):
                media.manager.release(media, self._now())
            raise
        if isinstance(media, CallMedia):
            media.session = session
        call = self._wrap(session)
        self._flush()
        if wait:
            await call.wait_answered(timeout)
        return call

    # -- requests outside dialogs -----------------------------------------------------------
    async def request(
        self,
        method: str,
        target: str,
        *,
        body: bytes | str = b"",
        content_type: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
        check: bool = True,
        timeout: float | None = REQUEST_TIMEOUT,
    ) -> Response:
        """Send any request outside a dialog and return its final response.

        With ``check`` a non-2xx final response raises RequestFailed.
        """
        data = body.encode() if isinstance(body, str) else body
        creq = self._core().request(
            method,
            target,
            self._now(),
            headers=list(headers),
            body=data,
            content_type=content_type,
        )
        return await self._wait(creq, timeout, check=check)

    async def _wait(
        self, creq: ClientRequest, timeout: float | None = REQUEST_TIMEOUT, *, check: bool = False
    ) -> Response:
        """The final response to ``creq`` (sent or about to be); 408 after ``timeout``."""
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        if creq.final is not None:
            future.set_result(creq.final)
        else:
            self._waiters[id(creq)] = future
        self._flush()
        try:
            response = await within(future, timeout)
        finally:
            self._waiters.pop(id(creq), None)
        if check and not 200 <= response.status < 300:
            raise RequestFailed(response.status, response.reason, response)
        return response

    async def message(
        self,
        target: str,
        text: str,
        *,
        content_type: str = "text/plain;charset=UTF-8",
        timeout: float | None = REQUEST_TIMEOUT,
    ) -> Response:
        """Send an instant message (RFC 3428); returns the 2xx, raises RequestFailed otherwise."""
        return await self.request(
            "MESSAGE", target, body=text, content_type=content_type, timeout=timeout
        )

    async def options(self, target: str, *, timeout: float | None = REQUEST_TIMEOUT) -> Response:
        """Send OPTIONS (a ping); returns the final response whatever its status."""
        return await self.request("OPTIONS", target, check=False, timeout=timeout)

    async def messages(self) -> AsyncIterator[Request]:
        """MESSAGE requests received outside dialogs (already answered 200)."""
        while True:
            yield await self._messages.get()
