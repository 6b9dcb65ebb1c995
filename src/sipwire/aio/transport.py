"""The transport layer on asyncio: UDP, TCP, TLS, WS and WSS (RFC 3261 §18, RFC 7118).

:class:`TransportLayer` owns every listening socket and connection. It turns
received bytes into messages (``on_message``) and sends bytes to a
:class:`~sipwire.transport.address.Target`, reusing connections (§18.1.1,
§18.2.2). Routing decisions (which target, which transport, Via stamping)
are pure functions in :mod:`sipwire.transport.routing`; this module only
moves bytes.

Limits (:class:`TransportConfig`): message size, connection count (in all
and per source address, evicting idle connections to make room), the time to
a connection's first message, idle and partial-message timeouts, write
buffers. Whatever is dropped, closed or refused is logged on the
``sipwire.transport`` logger with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import itertools
import socket
import ssl
from types import TracebackType
from typing import Final

from websockets.asyncio.server import Server as WsServer
from websockets.asyncio.server import ServerConnection

from sipwire.aio.connections import ConnectionTable
from sipwire.aio.stream import READ_CHUNK, StreamConnection
from sipwire.aio.transport_base import (
    Connection,
    ErrorHandler,
    MessageHandler,
    TransportConfig,
    TransportError,
    address_pair,
    known_address,
    log,
)
from sipwire.aio.udp import UdpEndpoint
from sipwire.aio.ws import SUBPROTOCOL, WsConnection, open_ws, serve_ws
from sipwire.errors import ParseError
from sipwire.message import Request, Response
from sipwire.transport.address import TRANSPORTS, Source, Target

__all__ = ["TransportConfig", "TransportError", "TransportLayer"]

_STREAMS: Final = frozenset({"tcp", "tls"})
_WEBSOCKETS: Final = frozenset({"ws", "wss"})


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


@functools.lru_cache(maxsize=4096)
def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


@functools.lru_cache(maxsize=4096)
def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


class TransportLayer:
    """Listeners and connections of every transport, with bounded resources.

    ``on_message(message, source)`` is called for every message received;
    ``source.flow`` names the connection on stream and WebSocket transports,
    to send the response back on it (§18.2.2). ``on_error(data, error,
    source)`` is called for bytes that do not parse (a datagram, a message
    on a stream, a WebSocket message). Both run on the event loop and must
    not block; exceptions they raise are logged and swallowed.

    Use ``async with TransportLayer(...) as layer`` or call :meth:`close`.
    """

    def __init__(
        self,
        on_message: MessageHandler,
        *,
        on_error: ErrorHandler | None = None,
        config: TransportConfig | None = None,
    ) -> None:
        self.config = config if config is not None else TransportConfig()
        self._on_message = on_message
        self._on_error = on_error
        self._udp: list[UdpEndpoint] = []
        self._udp_choice: dict[tuple[socket.AddressFamily, bool], UdpEndpoint] = {}
        """``_udp_endpoint``'s answer per (family, loopback), while that socket is open."""
        self._servers: list[asyncio.Server] = []
        self._ws_servers: list[WsServer] = []
        self._connections = ConnectionTable(self.config)
        self._by_target: dict[tuple[str, str, int], Connection] = {}
        self._connecting: dict[tuple[str, str, int], asyncio.Task[Connection]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._flows = itertools.count(1)
        self._client_context: ssl.SSLContext | None = self.config.tls_client_context
        self._closed = False

    # -- callbacks from the transports ----------------------------------------------
    def deliver(self, message: Request | Response, source: Source) -> None:
        """Hand a received message to ``on_message`` (used by the transports)."""
        try:
            self._on_message(message, source)
        except Exception:
            log.exception("on_message failed for a message from %s", source.as_target())

    def report_error(self, data: bytes, error: ParseError, source: Source) -> None:
        """Hand unparsable bytes to ``on_error`` (used by the transports)."""
        if self._on_error is None:
            return
        try:
            self._on_error(data, error, source)
        except Exception:
            log.exception("on_error failed for bytes from %s", source.as_target())

    def connection_used(self, conn: Connection) -> None:
        """A complete message went through ``conn`` (used by the connections)."""
        self._connections.used(conn)

    # -- introspection ------------------------------------------------------------------
    @property
    def connection_count(self) -> int:
        """Open stream and WebSocket connections, incoming and outgoing."""
        return len(self._connections)

    def connection(self, flow: int) -> Source | None:
        """The source (remote and local address) of an open connection, or None."""
        conn = self._connections.get(flow)
        return None if conn is None else conn.source

    def keep_flow(self, flow: int, until: float) -> bool:
        """Keep the connection ``flow`` open until ``until`` (event loop time).

        For a registrar that accepted a REGISTER over this connection (RFC
        5626 outbound: the flow is how it reaches the user agent), with
        ``until`` the binding's expiry. Until then the connection is never
        evicted to make room, and CRLF keep-alives on it count as traffic: it
        stays open while they come at least every
        ``config.keepalive_idle_timeout`` seconds (otherwise keep-alives do
        not hold an incoming connection open; see ``config.idle_timeout``).
        A later call replaces ``until``; a time already past (0) releases the
        flow. Returns False when the connection is no longer open.
        """
        return self._connections.keep(flow, until, asyncio.get_running_loop().time())

    def _admit(self, transport: str, remote: tuple[str, int], *, evict: bool = True) -> bool:
        """Whether an incoming connection from ``remote`` may open; log why not.

        When ``max_connections`` is reached, room is made by evicting an idle
        incoming connection; with ``evict`` False (a WebSocket handshake not
        yet complete) it is only checked that one could be.
        """
        if self._closed:
            return False
        if not known_address(remote):
            # Reset before the peer's address could be read: nowhere to answer.
            log.info("%s: connection closed: peer address unknown (reset by peer?)", transport)
            return False
        limit = self.config.max_connections_per_source
        if self._connections.from_source(remote[0]) >= limit:
            log.warning(
                "%s: refused connection from %s:%d: %d connections from it "
                "(max_connections_per_source)",
                transport,
                *remote,
                limit,
            )
            return False
        now = asyncio.get_running_loop().time()
        pending = len(self._connecting)
        if evict:
            newcomer = f"{transport} from {remote[0]}:{remote[1]}"
            room = self._connections.make_room(pending, now, newcomer)
        else:
            room = (
                len(self._connections) + pending < self.config.max_connections
                or self._connections.candidate(now) is not None
            )
        if not room:
            log.warning(
                "%s: refused connection from %s:%d: %d connections open, none idle "
                "(max_connections)",
                transport,
                *remote,
                len(self._connections),
            )
        return room

    # -- listening -------------------------------------------------------------------------
    async def listen(self, transport: str, host: str, port: int) -> tuple[str, int]:
        """Listen on ``host:port`` (port 0: any free port); return the bound address.

        ``transport`` is one of udp, tcp, tls, ws, wss; tls and wss need
        ``config.tls_server_context``. IPv6 hosts are given without brackets.
        """
        transport = transport.lower()
        if self._closed:
            raise TransportError("transport layer is closed", 500)
        if transport not in TRANSPORTS:
            raise TransportError(f"unknown transport {transport!r}", 500)
        try:
            if transport == "udp":
                return await self._listen_udp(host, port)
            if transport in _STREAMS:
                return await self._listen_stream(transport, host, port)
            return await self._listen_ws(transport, host, port)
        except OSError as exc:
            raise TransportError(f"cannot listen on {transport} {host}:{port}: {exc}", 500) from exc

    async def _listen_udp(self, host: str, port: int) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        _, endpoint = await loop.create_datagram_endpoint(
            lambda: UdpEndpoint(self, self.config),
            local_addr=(host, port),
            family=_family(host),
            reuse_port=self.config.reuse_port or None,
        )
        sock = endpoint.transport.get_extra_info("socket") if endpoint.transport else None
        if sock is not None:
            # Room for bursts: a full receive buffer drops datagrams and costs retransmissions.
            for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, option, self.config.udp_socket_buffer)
        self._udp.append(endpoint)
        self._udp_choice.clear()
        return endpoint.local

    async def _listen_stream(self, transport: str, host: str, port: int) -> tuple[str, int]:
        context: ssl.SSLContext | None = None
        if transport == "tls":
            context = self.config.tls_server_context
            if context is None:
                raise TransportError("tls needs TransportConfig.tls_server_context", 500)

        async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if not self._admit(transport, address_pair(writer.get_extra_info("peername"))):
                writer.transport.abort()
                return
            conn = StreamConnection(
                self,
                self.config,
                transport,
                next(self._flows),
                reader,
                writer,
                client=False,
                now=asyncio.get_running_loop().time(),
            )
            await self._run_connection(conn)

        server = await asyncio.start_server(
            accepted,
            host,
            port,
            family=_family(host),
            ssl=context,
            ssl_handshake_timeout=self.config.connect_timeout if context is not None else None,
            limit=READ_CHUNK,
            reuse_port=self.config.reuse_port or None,
        )
        self._servers.append(server)
        name = server.sockets[0].getsockname()
        return str(name[0]), int(name[1])

    async def _listen_ws(self, transport: str, host: str, port: int) -> tuple[str, int]:
        async def accepted(ws: ServerConnection) -> None:
            if ws.subprotocol != SUBPROTOCOL or self._closed:
                log.info("%s: connection without the sip subprotocol closed", transport)
                return
            if not self._admit(transport, address_pair(ws.remote_address)):
                ws.transport.abort()
                return
            conn = WsConnection(
                self,
                self.config,
                transport,
                next(self._flows),
                ws,
                client=False,
                now=asyncio.get_running_loop().time(),
            )
            await self._run_connection(conn)

        server = await serve_ws(
            accepted,
            host,
            port,
            self.config,
            secure=transport == "wss",
            accept=functools.partial(self._admit, transport, evict=False),
        )
        self._ws_servers.append(server)
        name = server.sockets[0].getsockname()
        return str(name[0]), int(name[1])

    async def _run_connection(self, conn: Connection) -> None:
        """Register a connection, run its read loop in this task, unregister it."""
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._connections.add(conn)
        log.debug("%r: open", conn)
        try:
            await conn.run()
        finally:
            self._forget(conn)
            self._tasks.discard(task)

    def _forget(self, conn: Connection) -> None:
        self._connections.remove(conn)
        key = (conn.transport, conn.remote[0], conn.remote[1])
        if self._by_target.get(key) is conn:
            del self._by_target[key]
        for k, c in list(self._by_target.items()):
            if c is conn:
                del self._by_target[k]

    # -- sending -----------------------------------------------------------------------------
    async def send(
        self,
        data: bytes,
        target: Target,
        *,
        flow: int | None = None,
        server_name: str | None = None,
    ) -> Source:
        """Send one message (its bytes) to ``target``; return the path used.

        UDP leaves through a listening socket of the target's address family
        (one on an ephemeral port is opened when there is none). Stream and
        WebSocket transports use, in this order: the connection ``flow``
        (from the Source of a received message, §18.2.2) if it is still open
        and of the target's transport; an open connection to the same
        (transport, host, port); a new connection. TLS and WSS verify the
        peer with ``config.tls_client_context`` against ``server_name``
        (default: ``target.host``), which is also the SNI name.

        The returned Source describes the path: remote and local address
        and, on connections, the flow. Raises TransportError (status 503)
        when the bytes cannot be sent.
        """
        if self._closed:
            raise TransportError("transport layer is closed")
        transport = target.transport.lower()
        if transport == "udp":
            return await self._send_udp(data, target)
        if transport not in TRANSPORTS:
            raise TransportError(f"unknown transport {transport!r}")
        conn = self._flow(flow, transport)
        if conn is None:
            conn = await self._connection_to(
                Target(transport, target.host, target.port), server_name
            )
        await conn.send(data)
        return conn.source

    def send_nowait(self, data: bytes, target: Target, *, flow: int | None = None) -> Source | None:
        """Send at once when that needs no waiting, else return None.

        Covers UDP to an IP address through an existing socket, and the
        connection ``flow`` when it is open, of the target's transport, and
        has room in its write buffer: the common cases of a server answering,
        without the cost of a task per message. On a stream the bytes are
        queued before this returns, so an answer is written even when the
        connection is closed right after (a 400 for a message that broke the
        framing). WebSocket connections have no synchronous send: None.
        None means "use ``await send()``". Raises TransportError like ``send``.
        """
        if self._closed:
            return None
        transport = target.transport.lower()
        if flow is not None and transport != "udp":
            conn = self._flow(flow, transport)
            return None if conn is None else conn.send_nowait(data)
        endpoint = self._udp_nowait(transport, target.host)
        if endpoint is None:
            return None
        return endpoint.send(data, target.host, target.port)

    def sent_nowait(self, data: bytes, target: Target, *, flow: int | None = None) -> bool:
        """``send_nowait`` for a caller that only asks whether it went: True when sent,
        False for "use ``await send()``" (and no Source is made for the answer)."""
        if self._closed:
            return False
        transport = target.transport.lower()
        if flow is not None and transport != "udp":
            conn = self._flow(flow, transport)
            return conn is not None and conn.send_nowait(data) is not None
        endpoint = self._udp_nowait(transport, target.host)
        if endpoint is None:
            return False
        endpoint.sendto(data, target.host, target.port)
        return True

    def _udp_nowait(self, transport: str, host: str) -> UdpEndpoint | None:
        """The socket a datagram to ``host`` leaves from at once, if any."""
        if transport != "udp" or not _is_ip_literal(host):
            return None
        return self._udp_endpoint(_family(host), host)

    def _flow(self, flow: int | None, transport: str) -> Connection | None:
        """The open connection ``flow`` if it is of ``transport``."""
        conn = None if flow is None else self._connections.get(flow)
        return conn if conn is not None and conn.transport == transport else None

    async def _send_udp(self, data: bytes, target: Target) -> Source:
        host = target.host
        family = _family(host)
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            host = await self._resolve(host, target.port)
            family = _family(host)
        endpoint = self._udp_endpoint(family, host)
        if endpoint is None:
            any_host = "::" if family == socket.AF_INET6 else "0.0.0.0"
            await self._listen_udp(any_host, 0)
            endpoint = self._udp[-1]
            log.info("udp: no listener for %s; opened %s:%d", host, *endpoint.local)
        return endpoint.send(data, host, target.port)

    def _udp_endpoint(self, family: socket.AddressFamily, host: str) -> UdpEndpoint | None:
        # A socket bound to loopback cannot reach other hosts, nor the reverse via NAT: match.
        loopback = _is_loopback(host)
        key = (family, loopback)
        chosen = self._udp_choice.get(key)
        if chosen is not None:
            transport = chosen.transport
            if transport is not None and not transport.is_closing():
                return chosen
        candidates = [
            e
            for e in self._udp
            if e.transport is not None
            and not e.transport.is_closing()
            and _family(e.local[0]) == family
        ]
        if not candidates:
            return None
        chosen = candidates[0]
        for endpoint in candidates:
            if _is_loopback(endpoint.local[0]) == loopback:
                chosen = endpoint
                break
        # The choice stands while that socket is open and no socket is added (the
        # candidates before it were closing, which they stay).
        self._udp_choice[key] = chosen
        return chosen

    async def _resolve(self, host: str, port: int) -> str:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        except OSError as exc:
            raise TransportError(f"cannot resolve {host}: {exc}") from exc
        if not infos:
            raise TransportError(f"cannot resolve {host}")
        return str(infos[0][4][0])

    async def _connection_to(self, target: Target, server_name: str | None) -> Connection:
        key = (target.transport, target.host, target.port)
        existing = self._by_target.get(key)
        if existing is not None and not existing.closed:
            return existing
        pending = self._connecting.get(key)
        if pending is None:
            now = asyncio.get_running_loop().time()
            newcomer = f"{target.transport} to {target.host}:{target.port}"
            if not self._connections.make_room(len(self._connecting), now, newcomer):
                log.warning("%s: not connecting to %s: max_connections reached", *key[:2])
                raise TransportError("too many connections (max_connections)")
            pending = asyncio.get_running_loop().create_task(self._open(target, server_name))
            self._connecting[key] = pending
            pending.add_done_callback(lambda _: self._connecting.pop(key, None))
        return await asyncio.shield(pending)

    def _client_ssl(self) -> ssl.SSLContext:
        if self._client_context is None:
            self._client_context = ssl.create_default_context()
        return self._client_context

    async def _open(self, target: Target, server_name: str | None) -> Connection:
        """Open a connection to ``target`` and start its read loop."""
        config = self.config
        loop = asyncio.get_running_loop()
        conn: Connection
        if target.transport in _STREAMS:
            secure = target.transport == "tls"
            try:
                async with asyncio.timeout(config.connect_timeout):
                    reader, writer = await asyncio.open_connection(
                        target.host,
                        target.port,
                        ssl=self._client_ssl() if secure else None,
                        server_hostname=(server_name or target.host) if secure else None,
                        ssl_handshake_timeout=config.connect_timeout if secure else None,
                        limit=READ_CHUNK,
                    )
            except TimeoutError:
                raise TransportError(f"connecting to {target} timed out") from None
            except OSError as exc:  # refused, unreachable, ssl.SSLError (verification) ...
                raise TransportError(f"cannot connect to {target}: {exc}") from exc
            conn = StreamConnection(
                self,
                config,
                target.transport,
                next(self._flows),
                reader,
                writer,
                client=True,
                now=loop.time(),
            )
        else:
            secure = target.transport == "wss"
            ws = await open_ws(
                target.host,
                target.port,
                config,
                secure=secure,
                client_context=self._client_ssl() if secure else None,
                server_name=server_name,
            )
            conn = WsConnection(
                self, config, target.transport, next(self._flows), ws, client=True, now=loop.time()
            )
        if self._closed:
            conn.abort()
            raise TransportError("transport layer is closed")
        self._by_target[(target.transport, target.host, target.port)] = conn
        self._connections.add(conn)
        self._tasks.add(loop.create_task(self._run_connection(conn)))
        log.debug("%r: connected", conn)
        return conn

    # -- shutting down ---------------------------------------------------------------------
    async def close(self) -> None:
        """Stop listening and close every socket and connection."""
        if self._closed:
            return
        self._closed = True
        for server in self._servers:
            server.close()
        for ws_server in self._ws_servers:
            ws_server.close(close_connections=False)
        for pending in list(self._connecting.values()):
            pending.cancel()
        for conn in self._connections:
            conn.abort()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)
        for endpoint in self._udp:
            endpoint.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5.0):
                    await server.wait_closed()
        for ws_server in self._ws_servers:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5.0):
                    await ws_server.wait_closed()
        self._servers.clear()
        self._ws_servers.clear()
        self._udp.clear()
        self._udp_choice.clear()
        self._connections = ConnectionTable(self.config)
        self._by_target.clear()

    async def __aenter__(self) -> TransportLayer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
