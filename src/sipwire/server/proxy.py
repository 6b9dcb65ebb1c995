"""The proxy role of ``sipwire serve``: the I/O edge of ``sipwire.proxy`` (RFC 3261 §16).

The sans-I/O proxy (:class:`~sipwire.proxy.StatefulProxy`, or
:class:`~sipwire.proxy.StatelessProxy` with ``--stateless``) decides; this
module answers its questions and carries its messages:

==================  ==========================================================
the proxy asks      answered from
==================  ==========================================================
``LookupTargets``   the location cache (``location.py``), else
                    ``store.bindings(aor)``: every binding of the AOR, with its
                    Path and the flow it registered on (a store that fails or
                    is slower than ``store_timeout``: 503)
``ResolveTargets``  the RFC 3263 resolver of ``sipwire.aio.dns`` (nothing found:
                    the branch gets 503)
``LookupUser``      ``store.get_user``: the caller's digest HA1 (407 challenges
                    use the registrar's nonces, realm = the From domain)
``UseNonceCount``   ``store.use_nonce_count``: a replayed credential is refused
``RequestAnswered`` the metrics: calls by outcome, final responses
==================  ==========================================================

The location cache answers most look-ups without the store: exact with
SQLite and one worker (the registrar of this process tells it every change,
:meth:`ProxyRole.bindings_changed`), at most ``location_cache_ttl`` seconds
old with a shared store or ``--workers N`` (see ``location.py``). The
sans-I/O proxy asks it first (``Pipeline.known_bindings``): a cached answer
needs no question, task or timer; a miss becomes ``LookupTargets``.

A request that must reach a phone through the connection it registered on
(RFC 5626, a NAT, a TCP phone whose Contact port nobody listens on) goes
out on that flow: the endpoint asks :meth:`ProxyRole.request_flow` for
every request it sends.

Stateful: the role sits behind :class:`~sipwire.server.tu.ServerCore`, which
hands it every request not for the registrar, and every response and
transaction event. Stateless (§16.11): the endpoint diverts every message
but REGISTER to the role before the transaction layer sees it; what the
proxy sends goes straight out (no transaction, no retransmission).

``--routes routes.py``: :func:`load_hook` loads a Python file whose
``route(request, ctx)`` returns a :data:`~sipwire.proxy.Decision` or None
(see ``sipwire.proxy.routes``). It runs inside the sans-I/O proxy, so it is
a plain function: no ``await``; what needs I/O is a decision (``Local``
makes a location look-up, ``Relay`` an RFC 3263 resolution).
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Final, TypeVar

from sipwire.aio.dns import Resolver
from sipwire.aio.endpoint import Endpoint
from sipwire.aio.ids import SecretIds
from sipwire.aio.listen import ListenSpec, advertised_host
from sipwire.auth.nonce import NonceIssuer
from sipwire.dialog.ids import IdSource
from sipwire.message import Request, Response
from sipwire.proxy import (
    Interface,
    LookupTargets,
    LookupUser,
    ProxyPolicy,
    RequestAnswered,
    ResolveTargets,
    RouteHook,
    RoutingTable,
    StatefulProxy,
    StatelessProxy,
    UseNonceCount,
)
from sipwire.registrar.model import Binding, User
from sipwire.server.config import ConfigError, ServerConfig
from sipwire.server.location import DEFAULT_TTL, LocationCache
from sipwire.server.metrics import Metrics
from sipwire.server.workers import WorkerChannel, WorkerIds
from sipwire.store import LocationStore, StoreUnavailable
from sipwire.transaction.events import Event, SendRequest, SendResponse
from sipwire.transport.address import RELIABLE, Source, Target

__all__ = ["ProxyRole", "interfaces_of", "load_hook", "proxy_policy", "routing_table"]

log = logging.getLogger("sipwire.proxy")

T = TypeVar("T")

ALLOW: Final = (
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "MESSAGE",
    "SUBSCRIBE",
    "NOTIFY",
    "REFER",
    "INFO",
    "PRACK",
    "UPDATE",
    "REGISTER",
)
"""The Allow of an OPTIONS the proxy answers for the server: what it forwards, and
REGISTER (the registrar beside it)."""
HOOK_NAME: Final = "route"
"""The function a ``--routes`` file defines."""


def load_hook(path: Path) -> RouteHook:
    """The ``route(request, ctx)`` function of the Python file at ``path``.

    Raises ConfigError when the file cannot be loaded, has no ``route``, or
    defines it with ``async def`` (the proxy is sans-I/O: no awaiting in it).
    """
    spec = importlib.util.spec_from_file_location("sipwire_routes", path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"--routes {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except FileNotFoundError:
        raise ConfigError(f"--routes {path}: no such file") from None
    except Exception as exc:  # the operator's code: any error is a configuration error
        raise ConfigError(f"--routes {path}: {type(exc).__name__}: {exc}") from None
    hook = getattr(module, HOOK_NAME, None)
    if not callable(hook):
        raise ConfigError(f"--routes {path}: defines no function {HOOK_NAME}(request, ctx)")
    if inspect.iscoroutinefunction(hook):
        raise ConfigError(
            f"--routes {path}: {HOOK_NAME}() must be a plain def: it runs inside the "
            "sans-I/O proxy (return Local(...) or Relay(...) for what needs a look-up)"
        )
    return hook  # type: ignore[no-any-return]


def interfaces_of(listeners: Iterable[ListenSpec]) -> tuple[Interface, ...]:
    """The proxy's interfaces: the bound listeners, a wildcard advertised by the
    address of the default route (``advertised_host``)."""
    out = []
    for spec in listeners:
        shown = advertised_host(spec.host)
        advertise = None if shown == spec.host else shown
        out.append(Interface(spec.transport, spec.host.strip("[]"), spec.port, advertise))
    return tuple(out)


def proxy_policy(
    config: ServerConfig,
    listeners: Sequence[ListenSpec],
    *,
    node: str,
    flow_secret: bytes,
    extensions: Iterable[str] = (),
) -> ProxyPolicy:
    """The proxy's policy from the server's configuration and bound listeners."""
    try:
        return ProxyPolicy(
            interfaces=interfaces_of(listeners),
            record_route=config.record_route,
            extensions=frozenset(extensions),
            timer_c=config.timer_c,
            forking="parallel" if config.forking == "parallel" else "q",
            max_branches=config.max_branches,
            max_redirects=config.max_redirects,
            trusted=frozenset(config.trusted),
            reveal_unknown_users=config.reveal_unknown_users,
            node=node,
            flow_secret=flow_secret,
            algorithms=config.algorithms,
            edge_timeout=max(10.0, config.store_timeout * 2),
            allow=ALLOW,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def routing_table(config: ServerConfig, domains: Iterable[str]) -> RoutingTable:
    """Our domains (the location service), the configured routes and the hook."""
    hook = load_hook(config.routes_hook) if config.routes_hook is not None else None
    return RoutingTable(
        domains=frozenset(domains),
        routes=config.routes,
        default=config.default_route,
        hook=hook,
    )


class ProxyRole:
    """The proxy of the server (see the module docstring)."""

    def __init__(
        self,
        endpoint: Endpoint,
        store: LocationStore,
        policy: ProxyPolicy,
        table: RoutingTable,
        issuer: NonceIssuer,
        *,
        metrics: Metrics,
        stateless: bool = False,
        store_timeout: float = 2.0,
        resolver: Resolver | None = None,
        workers: WorkerChannel | None = None,
        location_cache_ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.endpoint = endpoint
        self.store = store
        self.metrics = metrics
        self.store_timeout = store_timeout
        self.resolver = resolver or Resolver()
        self.stateless = stateless
        self.workers = workers
        self.clock = clock
        """Wall-clock seconds (bindings expire in wall-clock time)."""
        exclusive = workers is None and store.url.startswith("sqlite:")
        self.cache = LocationCache(exclusive=exclusive, ttl=location_cache_ttl)
        """The bindings of AORs looked up before (see ``location.py``)."""
        self.proxy: StatefulProxy | StatelessProxy
        if stateless:
            self.proxy = StatelessProxy(policy, table, issuer)
        else:
            ids: IdSource = SecretIds()
            if workers is not None:
                ids = WorkerIds(ids, workers.index)
            self.proxy = StatefulProxy(endpoint.transactions, policy, table, ids, issuer)
        self.proxy.wall_offset = time.time() - endpoint.now()
        self.proxy.pipeline.known_bindings = self._known_bindings
        endpoint.request_flow = self.request_flow
        if stateless or workers is not None:
            endpoint.divert = self.divert
        if workers is not None:
            endpoint.relay_request = self.relay_request
        self.calls: dict[str, int] = {}
        """INVITEs answered, by outcome (for the line printed at the end)."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._store_down = False

    @property
    def allow(self) -> tuple[str, ...]:
        """The methods the proxy forwards (the Allow of the server's OPTIONS)."""
        return self.proxy.policy.allow

    @property
    def contexts(self) -> int:
        """Response contexts alive (stateful), for /metrics."""
        proxy = self.proxy
        return len(proxy.contexts) if isinstance(proxy, StatefulProxy) else 0

    @property
    def waiting(self) -> int:
        """Questions waiting for the store or DNS."""
        return len(self.proxy.queries)

    # -- the transaction user (stateful) ---------------------------------------------------
    def handle(self, event: Event, now: float) -> None:
        """A transaction-layer event for the proxy (from ``ServerCore``)."""
        proxy = self.proxy
        if isinstance(proxy, StatefulProxy):
            proxy.handle(event, now)
            self._drain()

    def next_timer(self) -> float | None:
        return self.proxy.next_timer()

    def handle_timer(self, now: float) -> None:
        self.proxy.handle_timer(now)
        self._drain()

    # -- stateless ---------------------------------------------------------------------
    def divert(self, message: Request | Response, source: Source, now: float) -> bool:
        """The endpoint's ``divert``: a response for another worker goes to it; in
        stateless mode everything but REGISTER goes to the stateless proxy (the
        registrar keeps its transactions)."""
        workers = self.workers
        if workers is not None:
            owner = workers.owner_of(message)
            if owner is not None:
                workers.hand_message(owner, message, source)
                return True
        if not self.stateless:
            return False
        if isinstance(message, Request):
            if message.method == "REGISTER":
                return False
            self.metrics.request(message.method)
        assert isinstance(self.proxy, StatelessProxy)
        self.proxy.receive(message, source, now)
        self._drain()
        return True

    # -- sending ---------------------------------------------------------------------------
    def request_flow(self, event: SendRequest) -> int | None:
        """The endpoint's ``request_flow``: the connection a request goes out on (the
        flow a phone registered on), None for the usual choice. Counts what is forwarded."""
        if not event.retransmission:
            self.metrics.forwarded(event.request.method)
        target = event.target
        if target.transport not in RELIABLE:
            return None
        return self.proxy.flow_for(target)

    def relay_request(self, event: SendRequest, data: bytes) -> bool:
        """The endpoint's ``relay_request`` (with workers): a request that must go out on
        a connection another worker holds is handed to that worker."""
        workers = self.workers
        remote = self.proxy.remote_flow(event.target)
        if workers is None or remote is None:
            return False
        index = workers.worker_of(remote[0])
        if index is None:
            return False  # another server's node: only the address is left to try
        if not event.retransmission:
            self.metrics.forwarded(event.request.method)
        workers.hand_send(index, data, event.target, remote[1])
        return True

    def _stateless_response(self, event: SendResponse) -> SendResponse | None:
        """A response the stateless proxy routed by Via: on the connection its request
        came from when that is how the next hop reached us (handed to the worker holding
        it, if another; then None)."""
        source = event.source
        if source.flow is None and source.transport in RELIABLE:
            target = Target(source.transport, source.host, source.port)
            flow = self.proxy.flow_for(target)
            if flow is not None:
                return SendResponse(event.response, replace(source, flow=flow), None)
            remote = self.proxy.remote_flow(target)
            workers = self.workers
            if remote is not None and workers is not None:
                index = workers.worker_of(remote[0])
                if index is not None:
                    workers.hand_send(index, bytes(event.response), target, remote[1])
                    return None
        return event

    # -- the questions ------------------------------------------------------------------------
    def _drain(self) -> None:
        """Take the proxy's events: sends go to the transaction layer's queue (the
        endpoint sends them when it pumps), questions become tasks."""
        proxy = self.proxy
        layer = self.endpoint.transactions
        while (event := proxy.next_event()) is not None:
            kind = type(event)
            if kind is SendRequest:
                layer.emit(event)  # type: ignore[arg-type]
            elif kind is SendResponse:
                response = self._stateless_response(event)  # type: ignore[arg-type]
                if response is not None:
                    layer.emit(response)
            elif kind is LookupTargets:
                self._spawn(self._bindings(event))  # type: ignore[arg-type]
            elif kind is ResolveTargets:
                self._spawn(self._resolve(event))  # type: ignore[arg-type]
            elif kind is LookupUser:
                self._spawn(self._user(event))  # type: ignore[arg-type]
            elif kind is UseNonceCount:
                self._spawn(self._nonce_count(event))  # type: ignore[arg-type]
            elif kind is RequestAnswered:
                self._answered(event)  # type: ignore[arg-type]

    def _answered(self, event: RequestAnswered) -> None:
        self.metrics.response(event.method, event.status)
        if event.method == "INVITE":
            outcome = self.metrics.call(event.status)
            self.calls[outcome] = self.calls.get(outcome, 0) + 1

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _resume(self) -> None:
        """After an answer: take what the proxy did with it, and send."""
        self._drain()
        self.endpoint.pump()

    async def _timed(self, operation: str, call: Awaitable[T]) -> T:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.store_timeout):
                result = await call
        finally:
            self.metrics.store_latency[operation].observe(time.perf_counter() - started)
        if self._store_down:
            self._store_down = False
            log.warning("location store answers the proxy again")
        return result

    def _failed(self, operation: str, exc: BaseException) -> None:
        if not self._store_down:
            self._store_down = True
            reason = getattr(exc, "reason", None) or type(exc).__name__
            log.warning("location store failed (%s): %s; calls get 503", operation, reason)

    def _known_bindings(self, aor: str) -> list[Binding] | None:
        """The proxy's ``known_bindings``: the cached bindings of ``aor``, or None."""
        return self.cache.get(aor, self.clock())

    async def _bindings(self, event: LookupTargets) -> None:
        """A location look-up the cache could not answer: the store's answer, kept."""
        bindings: list[Binding] | None
        cache = self.cache
        stamp = cache.stamp()
        wall = self.clock()
        try:
            bindings = await self._timed("bindings", self.store.bindings(event.aor, wall))
        except (StoreUnavailable, TimeoutError) as exc:
            self._failed("bindings", exc)
            bindings = None
        else:
            cache.found(event.aor, bindings, stamp, wall)
        self.proxy.targets_found(event.ticket, bindings, self.endpoint.now())
        self._resume()

    def bindings_changed(self, aor: str, bindings: Sequence[Binding] | None, wall: float) -> None:
        """The registrar of this process changed ``aor``'s bindings in the store (None:
        a change whose outcome is unknown): the cache follows at once."""
        self.cache.changed(aor, bindings, wall)

    async def _resolve(self, event: ResolveTargets) -> None:
        try:
            targets = await self.resolver.resolve(event.uri)
        except Exception as exc:  # any resolver failure: the branch gets 503
            log.info("cannot resolve %s: %s", event.uri, exc)
            targets = []
        self.proxy.targets_resolved(event.ticket, list(targets), self.endpoint.now())
        self._resume()

    async def _user(self, event: LookupUser) -> None:
        user: User | None
        try:
            user = await self._timed("get_user", self.store.get_user(event.username, event.realm))
        except (StoreUnavailable, TimeoutError) as exc:
            self._failed("get_user", exc)
            user = None
        self.proxy.user_found(event.ticket, user, self.endpoint.now())
        self._resume()

    async def _nonce_count(self, event: UseNonceCount) -> None:
        try:
            fresh = await self._timed(
                "use_nonce_count",
                self.store.use_nonce_count(event.nonce, event.nc, event.expires_at),
            )
        except (StoreUnavailable, TimeoutError) as exc:
            self._failed("use_nonce_count", exc)
            fresh = False
        self.proxy.nonce_count_used(event.ticket, fresh, self.endpoint.now())
        self._resume()

    # -- stop ---------------------------------------------------------------------------
    async def close(self) -> None:
        """Drop the questions still waiting (their requests are not answered)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=1.0)
