"""``sipwire serve`` as a library: a :class:`Server` to start and close, and :func:`run_serve`.

::

    async with Server(ServerConfig(listen=(ListenSpec("udp", "127.0.0.1", 0),))) as server:
        print(server.listeners, server.domains, server.http_address)

Start-up, in order: the store (opened, its schema created or migrated; a
store that cannot be reached is :class:`ServeError`), the nonce secret from
the store, the TLS certificate when a tls or wss listener needs one (the
configured one, or a self-signed one made in the data directory on first
start), the SIP listeners (a TransportError when an address is taken or not
local), the registrar policy for the configured domains (default:
``localhost`` and every address listened on), the proxy role (unless
``proxy`` is off: routes, the Python hook, stateful or stateless; its
flow-token key from the store), the HTTP responder, and the
housekeeping tasks (``store.purge`` every minute; the registered-AOR gauge
and the store's health every 15 seconds).

:meth:`Server.close` stops in the other order: REGISTERs still arriving get
503 with Retry-After while those in flight are answered (at most the store
timeout), the listeners close, then the HTTP responder, then the store.
:func:`run_serve` does all of it around a wait for SIGINT, SIGTERM or
``stop``, with the garbage collector on a clock (``TimedCollection``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from types import TracebackType

from sipwire.aio.endpoint import Endpoint
from sipwire.aio.gcpolicy import TimedCollection
from sipwire.aio.limits import default_limits
from sipwire.aio.listen import ListenSpec, advertised_host
from sipwire.aio.transport_base import TransportConfig
from sipwire.auth.nonce import NonceIssuer
from sipwire.server.config import ConfigError, ServerConfig, default_domains
from sipwire.server.http import HttpServer
from sipwire.server.metrics import Metrics
from sipwire.server.proxy import ProxyRole, proxy_policy, routing_table
from sipwire.server.registrar import FlowKeeper, RegistrarRole, RegistrarSettings
from sipwire.server.tls import CertificateError, ensure_certificate, server_context
from sipwire.server.tu import ServerCore
from sipwire.server.workers import WorkerChannel, worker_node
from sipwire.store import LocationStore, StoreUnavailable, open_store
from sipwire.transaction.admission import AdmissionConfig

__all__ = ["ServeError", "ServeStats", "Server", "prepare_shared", "run_serve"]

log = logging.getLogger("sipwire.serve")

NONCE_SECRET = "nonce"
"""Name of the nonce-signing secret in the store (``LocationStore.secret``)."""
FLOW_SECRET = "flow"
"""Name of the key of the proxy's flow tokens in Record-Route (RFC 5626 §5.3), shared
by the nodes of one store so that any of them can read another's tokens."""
CHECK_INTERVAL = 15.0
"""Seconds between two refreshes of the registered-AOR gauge and the store's health."""
MAX_COUNTED_AORS = 100_000
"""The registered-AOR gauge counts at most this many (one query, bounded)."""

Trace = Callable[[str, bytes, object], None]


class ServeError(Exception):
    """The server cannot start: one line saying why (store, certificate, data directory)."""


@dataclass(slots=True)
class ServeStats:
    """What a server did, for the line printed when it stops."""

    registrations: dict[str, int] = field(default_factory=dict)
    """REGISTERs answered, by outcome."""
    calls: dict[str, int] = field(default_factory=dict)
    """INVITEs the proxy answered, by outcome."""


class Server:
    """The server: store, SIP endpoint with its transaction user (registrar and proxy), HTTP."""

    def __init__(self, config: ServerConfig, *, trace: Trace | None = None) -> None:
        self.config = config
        self.trace = trace
        self.metrics = Metrics()
        self.node = config.node or f"{socket.gethostname()}-{secrets.token_hex(3)}"
        """This node's name in the bindings it takes (a flow is only usable on it)."""
        if config.workers > 1:
            self.node = worker_node(self.node, config.worker)
        self.channel: WorkerChannel | None = None
        """The channel to the other worker processes (``--workers``)."""
        self.store: LocationStore | None = None
        self.endpoint: Endpoint | None = None
        self.core: ServerCore | None = None
        self.registrar: RegistrarRole | None = None
        self.proxy: ProxyRole | None = None
        self.http: HttpServer | None = None
        self.listeners: list[ListenSpec] = []
        """The bound SIP listeners (port 0 in the configuration replaced by the real one)."""
        self.domains: tuple[str, ...] = ()
        self.http_address: tuple[str, int] | None = None
        self.certificate: tuple[str, str] | None = None
        """(cert, key) paths in use by tls/wss listeners."""
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def url_hint(self) -> str:
        """``--data DIR`` or ``--store URL``: how ``sipwire user`` finds this server's users."""
        if self.config.default_store:
            return f"--data {self.config.data}"
        return f"--store {self.store.url if self.store is not None else self.config.store_url}"

    # -- start ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Open everything (see the module docstring); on failure, close what opened."""
        try:
            await self._start()
        except BaseException:
            await self.close()
            raise

    async def _start(self) -> None:
        config = self.config
        self.store = await self._open_store()
        secret = await self.store.secret(NONCE_SECRET)
        tls = self._tls_context()
        shared = config.workers > 1
        endpoint = Endpoint(
            transport=TransportConfig(tls_server_context=tls, reuse_port=shared),
            limits=self._limits(),
        )
        self.endpoint = endpoint
        if shared:
            base = config.node or self.node
            self.channel = WorkerChannel(
                endpoint, config.worker, config.channel, config.channel_fd, base
            )
            await self.channel.open()
        if self.trace is not None:
            endpoint.trace = self.trace
        for spec in config.listen:
            host, port = await endpoint.listen(spec.transport, spec.host, spec.port)
            self.listeners.append(ListenSpec(spec.transport, host, port))
        self.domains = config.domains or default_domains(
            advertised_host(spec.host) for spec in self.listeners
        )
        policy = config.policy(self.domains)
        issuer = NonceIssuer(secret, config.nonce_lifetime, new_salt=lambda: secrets.token_bytes(8))
        core = ServerCore(
            endpoint.transactions,
            user_agent=config.user_agent,
            extensions=frozenset(policy.extensions),
            metrics=self.metrics,
        )
        core.pump = endpoint.pump
        core.now = endpoint.now
        settings = RegistrarSettings(
            max_in_flight=config.max_in_flight,
            store_timeout=config.store_timeout,
            retry_after=config.retry_after,
            node=self.node,
            algorithms=config.algorithms,
        )
        flows = FlowKeeper(endpoint.transport, self.node, endpoint.now)
        registrar = RegistrarRole(core, self.store, policy, issuer, settings, flows=flows)
        core.roles["REGISTER"] = registrar
        self.core, self.registrar = core, registrar
        if config.proxy:
            self.proxy = await self._proxy(endpoint, issuer, policy.extensions)
            core.use_proxy(self.proxy)
        endpoint.tu = core
        self._watch(endpoint, registrar)
        if config.http is not None:
            self.http = HttpServer(self.metrics, self.healthy)
            host, port = config.http
            if shared and port:
                port += config.worker  # one /metrics per worker
            try:
                self.http_address = await self.http.start(host, port)
            except OSError as exc:
                host, port = config.http
                raise ServeError(
                    f"cannot listen on http {host}:{port}: {_os_reason(exc)}"
                ) from None
        self._tasks = [
            asyncio.ensure_future(registrar.maintain()),
            asyncio.ensure_future(self._check_store_forever()),
        ]

    async def _proxy(
        self, endpoint: Endpoint, issuer: NonceIssuer, extensions: Iterable[str]
    ) -> ProxyRole:
        config = self.config
        assert self.store is not None
        try:
            table = routing_table(config, self.domains)
            policy = proxy_policy(
                config,
                self.listeners,
                node=self.node,
                flow_secret=await self.store.secret(FLOW_SECRET),
                extensions=extensions,
            )
        except ConfigError as exc:
            raise ServeError(str(exc)) from None
        return ProxyRole(
            endpoint,
            self.store,
            policy,
            table,
            issuer,
            metrics=self.metrics,
            stateless=config.stateless,
            store_timeout=config.store_timeout,
            workers=self.channel,
            location_cache_ttl=config.location_cache_ttl,
        )

    async def _open_store(self) -> LocationStore:
        config = self.config
        if config.default_store:
            try:
                config.data.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ServeError(
                    f"cannot create data directory {config.data}: {_os_reason(exc)}"
                ) from None
        try:
            store = open_store(config.store_url)
        except (ValueError, ImportError) as exc:
            raise ServeError(str(exc)) from None
        try:
            await store.open()
        except StoreUnavailable as exc:
            raise ServeError(f"store unreachable: {exc.reason}") from None
        return store

    def _tls_context(self) -> ssl.SSLContext | None:
        config = self.config
        if not any(spec.transport in ("tls", "wss") for spec in config.listen):
            return None
        try:
            if config.cert is not None and config.key is not None:
                cert, key = config.cert, config.key
            else:
                hosts = [spec.host for spec in config.listen]
                cert, key = ensure_certificate(config.data, hosts)
            self.certificate = (str(cert), str(key))
            return server_context(cert, key)
        except CertificateError as exc:
            raise ServeError(str(exc)) from None

    def _limits(self) -> AdmissionConfig:
        config = self.config
        overrides: dict[str, object] = {"retry_after": config.retry_after}
        for name in ("max_transactions", "max_pending_bytes", "source_rate_limit"):
            value = getattr(config, name)
            if value is not None:
                overrides[name] = value
        return replace(default_limits(), **overrides)  # type: ignore[arg-type]

    def _watch(self, endpoint: Endpoint, registrar: RegistrarRole) -> None:
        """What /metrics reads when scraped."""
        live = self.metrics.live
        live.transactions = endpoint.transactions.__len__
        proxy = self.proxy
        if proxy is not None:
            live.proxy_contexts = lambda: proxy.contexts
        live.registers_in_flight = lambda: registrar.in_flight
        live.connections = lambda: endpoint.transport.connection_count

        def shed() -> dict[str, int]:
            stats = endpoint.admission.stats
            return {
                "tables_full": stats.shed_tables_full,
                "pending_bytes": stats.shed_pending_bytes,
                "holdings": stats.shed_holdings,
                "unverified": stats.shed_unverified,
                "overload": stats.shed_overload,
                "rate_limit": stats.dropped_rate_limit,
                "registrar_busy": registrar.counts["busy"],
            }

        live.shed = shed

    # -- health --------------------------------------------------------------------------
    async def healthy(self) -> bool:
        """True when the store answers ``ping()`` (the ``/health`` check)."""
        store, registrar = self.store, self.registrar
        if store is None:
            return False
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.config.store_timeout):
                up = await store.ping()
        except TimeoutError:
            up = False
        self.metrics.store_latency["ping"].observe(time.perf_counter() - started)
        self.metrics.store_up.set(1 if up else 0)
        if registrar is not None:
            if up:
                registrar.store_recovered()
            else:
                registrar.store_failed("ping failed")
        return up

    async def check_store(self) -> None:
        """The store's health (``sipwire_store_up``) and the registered-AOR gauge, now."""
        store = self.store
        if store is None or not await self.healthy():
            return
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.config.store_timeout * 5):
                aors = await store.aors(time.time(), MAX_COUNTED_AORS)
        except (StoreUnavailable, TimeoutError):
            return
        self.metrics.store_latency["aors"].observe(time.perf_counter() - started)
        self.metrics.registered_aors.set(len(aors))

    async def _check_store_forever(self) -> None:
        while True:
            await self.check_store()
            await asyncio.sleep(CHECK_INTERVAL)

    # -- stop ----------------------------------------------------------------------------
    async def close(self) -> None:
        """Answer what is in flight, then close listeners, HTTP and the store."""
        if self._closed:
            return
        self._closed = True
        if self.registrar is not None:
            await self.registrar.drain(self.config.store_timeout + 1.0)
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2.0)
        if self.proxy is not None:
            await self.proxy.close()
        if self.endpoint is not None:
            self.endpoint.pump()
            await self.endpoint.drain(1.0)
            await self.endpoint.close()
        if self.channel is not None:
            self.channel.close()
        if self.http is not None:
            await self.http.close()
        if self.store is not None:
            with contextlib.suppress(Exception):
                await self.store.close()

    def stats(self) -> ServeStats:
        counts = dict(self.registrar.counts) if self.registrar is not None else {}
        calls = dict(self.proxy.calls) if self.proxy is not None else {}
        return ServeStats(registrations=counts, calls=calls)


async def prepare_shared(config: ServerConfig) -> None:
    """What worker processes share, made once before they start (``--workers``): the
    store's schema and its secrets (two workers making them at once could disagree)."""
    server = Server(config)
    store = await server._open_store()
    try:
        await store.secret(NONCE_SECRET)
        await store.secret(FLOW_SECRET)
    finally:
        await store.close()


async def run_serve(
    config: ServerConfig,
    *,
    ready: Callable[[Server], object] | None = None,
    stop: asyncio.Event | None = None,
    trace: Trace | None = None,
) -> ServeStats:
    """Run the server until ``stop`` is set, or SIGINT or SIGTERM (when on the main thread).

    ``ready(server)`` is called once it listens. Raises :class:`ServeError`
    (or the listener's TransportError) when it cannot start.
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    server = Server(config, trace=trace)
    collector = TimedCollection()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Not available off the main thread (tests run the server in a task).
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    try:
        async with server:
            collector.start()
            if server.endpoint is not None:
                server.endpoint.monitor.collect = collector.collect_all
            if ready is not None:
                ready(server)
            await stop.wait()
            log.info("stopping: answering the REGISTERs in flight")
    finally:
        collector.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)
    return server.stats()


def _os_reason(exc: OSError) -> str:
    """``address already in use``: the system's words for the error, without asyncio's
    "error while attempting to bind on address ..." around them."""
    detail = os.strerror(exc.errno) if exc.errno else (exc.strerror or str(exc))
    return detail[:1].lower() + detail[1:]
