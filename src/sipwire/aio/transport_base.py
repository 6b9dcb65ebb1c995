"""What every asyncio transport shares: configuration, the error type, connections.

The pieces are split from :mod:`sipwire.aio.transport` so that the UDP,
stream (TCP/TLS) and WebSocket modules can use them without importing the
layer that owns them.
"""

from __future__ import annotations

import logging
import ssl
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from sipwire.errors import ParseError, SipError
from sipwire.message import Request, Response
from sipwire.transport.address import Source

__all__ = [
    "Connection",
    "MessageHandler",
    "ErrorHandler",
    "Sink",
    "TransportConfig",
    "TransportError",
    "address_pair",
    "is_keepalive",
    "known_address",
    "log",
]

log: Final = logging.getLogger("sipwire.transport")
"""Everything the transports drop, close or refuse is logged here, with the reason."""

MessageHandler = Callable[[Request | Response, Source], None]
"""``on_message(message, source)``: a message arrived."""
ErrorHandler = Callable[[bytes, ParseError, Source], None]
"""``on_error(data, error, source)``: bytes arrived that are not a usable message."""


class TransportError(SipError):
    """Sending failed: no route, connection refused or reset, timeout, full buffers.

    RFC 3261 §17.1.4 and §8.1.3.1: a transport failure is reported to the
    transaction user as if a 503 (Service Unavailable) had been received,
    hence the default status.
    """

    def __init__(self, reason: str, status: int = 503) -> None:
        super().__init__(reason, status)


@dataclass(frozen=True, slots=True)
class TransportConfig:
    """Limits and TLS settings of a :class:`~sipwire.aio.transport.TransportLayer`.

    Every buffer a peer can fill is bounded by one of these numbers.
    """

    max_message_size: int = 65536
    """Largest message accepted, head and body, in bytes. A larger datagram is
    dropped; on a stream it is fatal and the connection is closed (the
    parser's 513); on WebSocket the connection is closed with 1009."""
    max_connections: int = 1024
    """Open stream and WebSocket connections, incoming, outgoing and being
    opened together. When it is reached, a new connection (incoming, or one
    ``send`` needs to open) first evicts the least useful incoming connection:
    one that never delivered a complete message, oldest first, else the one
    idle longest (at least ``eviction_min_idle``), never a kept flow
    (:meth:`~sipwire.aio.transport.TransportLayer.keep_flow`). When none
    qualifies, an incoming connection is closed at once and ``send`` raises
    :class:`TransportError`."""
    max_connections_per_source: int = 128
    """Incoming stream and WebSocket connections from one IP address; beyond it
    a new one is closed at once (a WebSocket handshake gets HTTP 503).
    Connections this side opens are not counted. 128 leaves room for a busy
    NAT or a proxy in front of many clients, yet one host cannot take more
    than an eighth of the default ``max_connections``."""
    eviction_min_idle: float = 1.0
    """Seconds an incoming connection that delivered a message must have been
    idle before it may be evicted to make room (see ``max_connections``), so
    that a connection in the middle of an exchange is not closed for a
    newcomer."""
    first_message_timeout: float = 5.0
    """Seconds an incoming connection (after its TLS or WebSocket handshake)
    may stay open without delivering one complete SIP message; CRLF
    keep-alives do not count. A client opens a connection to send a request,
    so its first message follows within a round trip or two; 5 s covers slow
    mobile links and a large first message, and is short enough that silent
    connections cannot pile up (a peer holding N of them must reconnect
    N/5 times a second)."""
    idle_timeout: float = 300.0
    """Seconds without a complete SIP message (read or written) after which a
    connection is closed. RFC 5626 CRLF keep-alives are answered but do not
    count, except on kept flows and on connections this side opened (see
    ``keepalive_idle_timeout``)."""
    keepalive_idle_timeout: float = 300.0
    """Seconds a connection whose keep-alives count (a flow kept with
    :meth:`~sipwire.aio.transport.TransportLayer.keep_flow`, or a connection
    this side opened) may go without a message or a keep-alive before it is
    closed; such a connection stays open as long as either clock runs. RFC
    5626 §4.4.1 clients ping every 95 to 120 s on connections, so 300 s
    survives one late ping."""
    message_timeout: float = 10.0
    """Seconds a stream connection may hold part of a message; then it is
    closed (defence against slowloris-style peers that dribble a header).
    While part of a message is held, this replaces the idle timeouts."""
    connect_timeout: float = 10.0
    """Seconds to open an outgoing connection, TLS and WebSocket handshakes included;
    also the TLS handshake timeout of incoming connections."""
    write_timeout: float = 10.0
    """Seconds a send may wait for a peer to drain the write buffer."""
    write_buffer_size: int = 262144
    """Bytes queued towards one peer (a connection, or a UDP socket) beyond
    which a send fails: a stream or WebSocket connection whose peer does not
    read is closed, a datagram is dropped."""
    udp_socket_buffer: int = 4 * 1024 * 1024
    """SO_RCVBUF / SO_SNDBUF asked for on UDP sockets (the kernel may cap it)."""
    reuse_port: bool = False
    """Bind UDP, TCP and TLS listeners with SO_REUSEPORT, so that several processes
    share one address (``sipwire serve --workers``; the kernel spreads datagrams by
    source address and connections as they come)."""
    tls_server_context: ssl.SSLContext | None = None
    """Server context for ``tls`` and ``wss`` listeners (certificate and key loaded)."""
    tls_client_context: ssl.SSLContext | None = None
    """Client context for outgoing ``tls`` and ``wss`` connections. None means
    ``ssl.create_default_context()``: the system CAs, certificate and host
    name verification on."""


class Sink(Protocol):
    """Where connections hand what they read (the layer implements it)."""

    def deliver(self, message: Request | Response, source: Source) -> None: ...

    def report_error(self, data: bytes, error: ParseError, source: Source) -> None: ...

    def connection_used(self, conn: Connection) -> None:
        """A complete message was read from or written to ``conn``."""


def is_keepalive(data: bytes) -> bool:
    """True for RFC 5626 CRLF keep-alives: bytes that are nothing but CR and LF."""
    return not data.strip(b"\r\n")


class Connection(ABC):
    """One stream or WebSocket connection and its read loop.

    ``flow`` is the connection id put into every :class:`Source` of a
    message read from it; ``send(..., flow=...)`` finds the connection again.

    Two clocks decide when an idle connection is closed (:meth:`deadline`):
    ``last_message`` (complete SIP messages read or written) against
    ``idle_timeout``, and, where keep-alives count (:meth:`keepalives_count`),
    ``last_keepalive`` against ``keepalive_idle_timeout``. An incoming
    connection must deliver its first message within ``first_message_timeout``.
    """

    def __init__(
        self,
        sink: Sink,
        config: TransportConfig,
        transport: str,
        flow: int,
        remote: tuple[str, int],
        local: tuple[str, int],
        *,
        client: bool,
        now: float,
    ) -> None:
        self.sink = sink
        self.config = config
        self.transport = transport
        self.flow = flow
        self.remote = remote
        self.local = local
        self.client = client
        """True on a connection this side opened."""
        self.opened = now
        """Loop time the connection was set up (after its handshakes)."""
        self.last_message = now
        """Loop time of the last complete message read or written."""
        self.last_keepalive = now
        """Loop time of the last keep-alive read or written."""
        self.delivered = False
        """True once a complete, parsable message was read from the peer."""
        self.kept_until = 0.0
        """Loop time until which the flow is kept (``TransportLayer.keep_flow``)."""
        self.closed = False
        self.source = Source(transport, remote[0], remote[1], local[0], local[1], flow)
        """The source of every message read from this connection."""

    # -- the clocks ---------------------------------------------------------------------
    def kept(self, now: float) -> bool:
        """True while the flow is kept: it is neither evicted nor closed for keep-alives only."""
        return now < self.kept_until

    def keepalives_count(self, now: float) -> bool:
        """Whether keep-alives hold this connection open: on kept flows and our own connections."""
        return self.client or self.kept(now)

    def message_seen(self, now: float, *, read: bool) -> None:
        """A complete SIP message was read (``read``) or written at ``now``."""
        self.last_message = now
        if read:
            self.delivered = True
        self.sink.connection_used(self)

    def keepalive_seen(self, now: float) -> None:
        """A CRLF keep-alive was read or written at ``now``."""
        self.last_keepalive = now

    def deadline(self, now: float, partial_since: float | None = None) -> tuple[float, str]:
        """When the read loop closes this connection unless traffic comes, and why.

        ``partial_since`` is when the part of a message now buffered began;
        while it is held, ``message_timeout`` replaces the idle timeouts.
        """
        config = self.config
        if partial_since is not None:
            deadline = partial_since + config.message_timeout
            why = f"partial message held {config.message_timeout:.1f}s"
        else:
            deadline = self.last_message + config.idle_timeout
            why = f"no message for {config.idle_timeout:.1f}s"
            if self.keepalives_count(now):
                alive = max(self.last_message, self.last_keepalive) + config.keepalive_idle_timeout
                if alive > deadline:
                    deadline = alive
                    why = f"no message nor keep-alive for {config.keepalive_idle_timeout:.1f}s"
        if not (self.client or self.delivered or self.kept(now)):
            first = self.opened + config.first_message_timeout
            if first < deadline:
                deadline = first
                why = f"no complete message within {config.first_message_timeout:.1f}s"
        return deadline, why

    # -- the transport ------------------------------------------------------------------
    @abstractmethod
    async def send(self, data: bytes) -> None:
        """Write one message; raise TransportError when it cannot be written."""

    def send_nowait(self, data: bytes) -> Source | None:
        """Queue ``data`` at once when that needs no waiting and return the source;
        None when it cannot be done without ``await send()``."""
        return None

    @abstractmethod
    async def run(self) -> None:
        """Read until the peer closes or a limit is hit; close the connection on return."""

    @abstractmethod
    def abort(self) -> None:
        """Close at once, dropping anything buffered."""

    def __repr__(self) -> str:
        kind = "to" if self.client else "from"
        return f"<{self.transport} flow {self.flow} {kind} {self.remote[0]}:{self.remote[1]}>"


def address_pair(address: object) -> tuple[str, int]:
    """(host, port) of a socket address tuple (IPv6 tuples have four items).

    ("", 0) when there is none: asyncio reports no peer address for a
    connection reset before it was accepted (see :func:`known_address`).
    """
    if isinstance(address, tuple) and len(address) >= 2:
        return str(address[0]), int(address[1])
    return "", 0


def known_address(address: tuple[str, int]) -> bool:
    """False for the ("", 0) of :func:`address_pair`: a source no reply can reach."""
    return bool(address[0]) and address[1] > 0
