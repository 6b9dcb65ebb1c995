"""The asyncio user agent: ``sipwire.UserAgent`` and ``sipwire.Call``.

::

    async with UserAgent("sip:alice@example.com", password="secret",
                         listen=["udp:127.0.0.1:5062"]) as ua:
        await ua.register("sip:example.com")
        call = await ua.call("sip:bob@example.com")
        await call.hold()
        await call.hangup()

Incoming calls arrive through ``async for call in ua.incoming()`` or a
handler set with ``@ua.on_call``; MESSAGEs through ``ua.messages()``.

Everything SIP happens in the sans-I/O :class:`~sipwire.core.ua.UserAgentCore`;
this module only turns its events into futures and queues, runs DNS for
it, and owns the sockets through an :class:`~sipwire.aio.endpoint.Endpoint`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from sipwire.aio.call import Call
from sipwire.aio.dns import Resolver
from sipwire.aio.endpoint import Endpoint
from sipwire.aio.ids import SecretIds
from sipwire.aio.limits import default_limits
from sipwire.aio.listen import advertised_host, parse_listen
from sipwire.aio.transport_base import TransportConfig, TransportError
from sipwire.auth.digest import DigestAccount, DigestClient
from sipwire.core import refer, subscription
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
    SubscriptionStateChanged,
    TransferProgress,
    TransferRequested,
    UAEvent,
)
from sipwire.core.media import SessionMedia
from sipwire.core.register import Registration, RegistrationState
from sipwire.core.sdp_media import MediaConfig, SdpMedia
from sipwire.core.session import CallState, InviteSession
from sipwire.core.subscription import Subscription, SubState
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


class UserAgent:
    """A SIP user agent on asyncio: register, call, answer, message.

    ``aor`` is our address of record (the From of our requests).
    ``username``/``password`` answer digest challenges; ``username``
    defaults to the AOR's user and may differ from it (many PBXs use an
    extension number as the auth name). ``listen`` lists local addresses
    as ``TRANSPORT:HOST:PORT`` (port 0 picks a free one).
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
        self._transport_config = transport
        self._trace = trace
        self.endpoint: Endpoint | None = None
        self.core: UserAgentCore | None = None
        self.resolver: Resolver | None = None
        self.listeners: dict[str, Listener] = {}
        self._waiters: dict[int, asyncio.Future[Response]] = {}
        self._calls: dict[int, Call] = {}
        self._incoming: asyncio.Queue[Call] = asyncio.Queue(MAX_QUEUE)
        self._messages: asyncio.Queue[Request] = asyncio.Queue(MAX_QUEUE)
        self._call_handler: Callable[[Call], Awaitable[None]] | None = None
        self._registrations: dict[int, tuple[Registration, asyncio.Future[Response]]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._draining = False
        self._handlers = self._event_handlers()
        self._rtp_port = self.media_config.rtp_port_min
        self._auto_answer: float | None = None
        self.unclaimed_timeout = 60.0
        """Seconds an incoming call may wait in ``incoming()`` before it is refused with 480
        (with no ``on_call`` handler and nobody iterating ``incoming()``)."""
        self.subscriptions: subscription.Subscriptions | None = None
        """SUBSCRIBE/NOTIFY (RFC 6665) of this agent, once started."""
        self.transfers: refer.Transfers | None = None
        """REFER/Replaces (RFC 3515, RFC 3891) of this agent, once started."""
        self._sub_waiters: dict[int, asyncio.Future[None]] = {}
        self._transfer_waiters: dict[int, asyncio.Future[TransferProgress]] = {}
        self._notifications: asyncio.Queue[tuple[Subscription, Request]] = asyncio.Queue(MAX_QUEUE)
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
        self.subscriptions = subscription.install(core)
        self.transfers = refer.install(core)
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

    async def close(self) -> None:
        """Hang up every call, stop refreshing registrations, close the sockets."""
        if self.endpoint is None:
            return
        for call in list(self._calls.values()):
            if not call.ended:
                call.session.hangup(self._now())
        self._flush()
        for registration, _ in self._registrations.values():
            registration.close()
        await self.endpoint.drain()  # let the BYEs reach the transports
        for task in list(self._tasks):
            task.cancel()
        await self.endpoint.close()
        self.endpoint = None

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
            TransferProgress: self._on_transfer_progress,
            TransferRequested: lambda event: self._to_call(event.session, event),
            CallReplaced: lambda event: self._to_call(event.old, event),
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

    def _on_notify(self, event: NotifyReceived) -> None:
        if not self._notifications.full():
            self._notifications.put_nowait((event.subscription, event.request))
        self._wake(self._sub_waiters, event.subscription)

    def _on_subscription_state(self, event: SubscriptionStateChanged) -> None:
        if event.state is not SubState.NOTIFY_WAIT:
            self._wake(self._sub_waiters, event.subscription)

    def _on_transfer_progress(self, event: TransferProgress) -> None:
        waiter = self._transfer_waiters.get(id(event.transfer))
        if event.done and waiter is not None and not waiter.done():
            waiter.set_result(event)
        self._to_call(event.session, event)

    def _on_call_event(self, event: CallStateChanged | MediaChanged | InDialogRequest) -> None:
        call = self._calls.get(id(event.session))
        if (
            call is None
            and self._auto_answer is None
            and isinstance(event, CallStateChanged)
            and event.state is not CallState.TERMINATED
        ):
            call = self._wrap(event.session)  # a call a transfer started for us
        if call is not None:
            call._on_event(event)
        elif (
            isinstance(event, CallStateChanged)
            and event.state is CallState.TERMINATED
            and event.session.end_reason == "BYE received"
            and event.session.final is not None
            and event.session.final.status == 200
        ):
            self.calls_completed += 1

    def _on_message_received(self, event: MessageReceived) -> None:
        if self._messages.full():
            log.info("message queue full; dropping a MESSAGE from %s", event.request.from_)
        else:
            self._messages.put_nowait(event.request)

    def _on_registration_changed(self, event: RegistrationChanged) -> None:
        entry = self._registrations.get(id(event.registration))
        if entry is not None and event.response is not None and not entry[1].done():
            entry[1].set_result(event.response)

    @staticmethod
    def _wake(waiters: dict[int, asyncio.Future[None]], key: object) -> None:
        waiter = waiters.pop(id(key), None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _to_call(self, session: InviteSession, event: UAEvent) -> None:
        call = self._calls.get(id(session))
        if call is not None:
            call._on_other(event)

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
    def _wrap(self, session: InviteSession) -> Call:
        call = Call(self, session)
        self._calls[id(session)] = call
        return call

    def _forget_call(self, call: Call) -> None:
        self._calls.pop(id(call.session), None)

    def auto_answer(self, ring_time: float = 0.0) -> None:
        """Answer every incoming call without the application: 180, then 200 after
        ``ring_time`` seconds. ``calls_answered`` and ``calls_completed`` count them."""
        self._auto_answer = ring_time

    def _auto(self, session: InviteSession, ring_time: float) -> None:
        now = self._now()
        session.ring(now)
        if ring_time > 0:
            asyncio.get_running_loop().call_later(ring_time, self._auto_now, session)
        else:
            session.answer(now)
            self.calls_answered += 1

    def _auto_now(self, session: InviteSession) -> None:
        if session.state in (CallState.INCOMING, CallState.EARLY):
            session.answer(self._now())
            self.calls_answered += 1
            self._flush()

    def _on_incoming(self, event: IncomingCall) -> None:
        if self._auto_answer is not None:
            self._auto(event.session, self._auto_answer)
            return
        call = self._wrap(event.session)
        if self._call_handler is not None:
            self._spawn(self._run_handler(call))
        elif self._incoming.full():
            event.session.reject(self._now(), 486, "Busy Here")
        else:
            self._incoming.put_nowait(call)
            loop = asyncio.get_running_loop()
            loop.call_later(self.unclaimed_timeout, self._unclaimed, call)

    def _unclaimed(self, call: Call) -> None:
        """Nobody took the call from ``incoming()`` in time: 480 (RFC 3261 §21.4.18)."""
        if not call.claimed and call.state in (CallState.INCOMING, CallState.EARLY):
            call.session.reject(self._now(), 480, "Temporarily Unavailable")
            self._flush()

    async def _run_handler(self, call: Call) -> None:
        assert self._call_handler is not None
        try:
            await self._call_handler(call)
        except Exception:
            log.exception("call handler failed for %s", call)
            if not call.ended:
                await call.hangup()

    def on_call(
        self, handler: Callable[[Call], Awaitable[None]]
    ) -> Callable[[Call], Awaitable[None]]:
        """Decorator: run ``handler(call)`` as a task for every incoming call."""
        self._call_handler = handler
        return handler

    async def incoming(self) -> AsyncIterator[Call]:
        """Incoming calls, as they arrive (ringing is up to you: ``call.ring()``)."""
        while True:
            call = await self._incoming.get()
            if call.ended:
                continue  # cancelled, or refused as unclaimed, while it waited
            call.claimed = True
            yield call

    async def call(
        self,
        target: str,
        *,
        headers: Sequence[tuple[str, str]] = (),
        timeout: float | None = None,
        wait: bool = True,
    ) -> Call:
        """Call ``target``; with ``wait`` (default) return once answered.

        Raises :class:`~sipwire.errors.RequestFailed` with the SIP status when
        the call is refused (486, 404 ...), cancelled on ``timeout`` (487) or
        fails locally (408 timeout, 503 unreachable).
        """
        core = self._core()
        media = self._new_media()
        session = core.invite(target, media, self._now(), headers=list(headers))
        call = self._wrap(session)
        self._flush()
        if wait:
            try:
                await asyncio.wait_for(call.wait_answered(), timeout)
            except TimeoutError:
                await call.hangup()
                raise RequestFailed(487, "Request Terminated (timeout)") from None
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
        response = await self._wait(creq)
        if check and not 200 <= response.status < 300:
            raise RequestFailed(response.status, response.reason, response)
        return response

    async def _wait(self, creq: ClientRequest) -> Response:
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        if creq.final is not None:
            future.set_result(creq.final)
        else:
            self._waiters[id(creq)] = future
        self._flush()
        return await future

    async def message(
        self, target: str, text: str, *, content_type: str = "text/plain;charset=UTF-8"
    ) -> Response:
        """Send an instant message (RFC 3428); returns the 2xx, raises RequestFailed otherwise."""
        return await self.request("MESSAGE", target, body=text, content_type=content_type)

    async def options(self, target: str) -> Response:
        """Send OPTIONS (a ping); returns the final response whatever its status."""
        return await self.request("OPTIONS", target, check=False)

    async def messages(self) -> AsyncIterator[Request]:
        """MESSAGE requests received outside dialogs (already answered 200)."""
        while True:
            yield await self._messages.get()

    # -- registration -----------------------------------------------------------------------
    async def register(
        self,
        registrar: str | None = None,
        *,
        expires: int = 3600,
        contacts: Sequence[str] = (),
        keepalive: float | None = None,
    ) -> Registration:
        """Register our AOR at ``registrar`` (default: the AOR's domain) and keep it fresh.

        ``contacts`` binds these Contact values instead of our own (several
        are allowed). ``keepalive`` sends a CRLF keep-alive (RFC 5626 §4.4.1)
        to the registrar every so many seconds, keeping NAT bindings and
        connections open. Returns once the registrar answers 2xx; raises
        RequestFailed otherwise.
        """
        uri = registrar or f"sip:{self.aor.uri.host_port}"  # type: ignore[union-attr]
        core = self._core()
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        registration = core.register(
            uri, self._now(), expires=expires, contacts=list(contacts) or None
        )
        self._registrations[id(registration)] = (registration, future)
        self._flush()
        response = await future
        if registration.state is not RegistrationState.REGISTERED:
            raise RequestFailed(response.status, response.reason, response)
        if keepalive is not None:
            self._spawn(self._keepalive(registration, keepalive))
        return registration

    async def _keepalive(self, registration: Registration, interval: float) -> None:
        """CRLF keep-alives towards the registrar while the registration lasts."""
        while registration.state in (
            RegistrationState.REGISTERED,
            RegistrationState.REGISTERING,
        ):
            await asyncio.sleep(interval)
            creq = registration.request
            endpoint = self.endpoint
            if creq is None or creq.target is None or endpoint is None:
                continue
            try:
                await endpoint.transport.send(b"\r\n\r\n", creq.target)
            except TransportError as exc:
                log.info("keep-alive to %s failed: %s", creq.target, exc.reason)

    async def unregister(self, registration: Registration) -> Response:
        """Remove the bindings of ``registration`` (Expires: 0)."""
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._registrations[id(registration)] = (registration, future)
        registration.unregister(self._now())
        self._flush()
        response = await future
        self._registrations.pop(id(registration), None)
        if not 200 <= response.status < 300:
            raise RequestFailed(response.status, response.reason, response)
        return response

    # -- subscriptions (RFC 6665) ------------------------------------------------------------
    async def subscribe(
        self,
        target: str,
        event: str,
        *,
        expires: int = 3600,
        accept: str | None = None,
        timeout: float = 32.0,
    ) -> Subscription:
        """Subscribe to ``event`` at ``target``; returns once it is pending or active.

        NOTIFYs arrive through :meth:`notifications`; refreshes happen by
        themselves; ``subscription.unsubscribe(now)`` (or :meth:`unsubscribe`)
        ends it. Raises RequestFailed when the subscription is refused.
        """
        manager = self._subscriptions()
        sub = manager.subscribe(target, event, self._now(), expires=expires, accept=accept)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sub_waiters[id(sub)] = waiter
        self._flush()
        await asyncio.wait_for(waiter, timeout)
        if sub.state is SubState.TERMINATED:
            response = sub.response
            status = response.status if response is not None else 481
            reason = response.reason if response is not None else (sub.reason or "terminated")
            raise RequestFailed(status, reason, response)
        return sub

    @property
    def calls(self) -> list[Call]:
        """Calls in progress (placed, received, or started by a transfer)."""
        return [call for call in self._calls.values() if not call.ended]

    async def unsubscribe(self, sub: Subscription) -> None:
        """End a subscription we made (SUBSCRIBE with Expires: 0)."""
        sub.unsubscribe(self._now())
        self._flush()

    async def notifications(self) -> AsyncIterator[tuple[Subscription, Request]]:
        """Every NOTIFY received for our subscriptions (already answered 200)."""
        while True:
            yield await self._notifications.get()

    def _subscriptions(self) -> subscription.Subscriptions:
        if self.subscriptions is None:
            raise LocalProtocolError("the user agent is not started (use 'async with')")
        return self.subscriptions

    async def _transfer(self, outgoing: refer.OutgoingTransfer, timeout: float) -> int:
        waiter: asyncio.Future[TransferProgress] = asyncio.get_running_loop().create_future()
        self._transfer_waiters[id(outgoing)] = waiter
        self._flush()
        try:
            if outgoing.done:
                status = outgoing.status or 500
            else:
                status = (await asyncio.wait_for(waiter, timeout)).status
        finally:
            self._transfer_waiters.pop(id(outgoing), None)
        if status >= 300:
            raise RequestFailed(status, outgoing.reason or "transfer failed")
        return status
