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
    opened together. Beyond it incoming connections are closed at once and
    ``send`` raises :class:`TransportError`."""
    idle_timeout: float = 300.0
    """Seconds without traffic (either way) after which a connection is closed."""
    message_timeout: float = 10.0
    """Seconds a stream connection may hold part of a message; then it is
    closed (defence against slowloris-style peers that dribble a header)."""
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


class Connection(ABC):
    """One stream or WebSocket connection and its read loop.

    ``flow`` is the connection id put into every :class:`Source` of a
    message read from it; ``send(..., flow=...)`` finds the connection again.
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
        self.last_activity = now
        """Loop time of the last read or write, for ``idle_timeout``."""
        self.closed = False
        self.source = Source(transport, remote[0], remote[1], local[0], local[1], flow)
        """The source of every message read from this connection."""

    @abstractmethod
    async def send(self, data: bytes) -> None:
        """Write one message; raise TransportError when it cannot be written."""

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
    """(host, port) of a socket address tuple (IPv6 tuples have four items)."""
    if isinstance(address, tuple) and len(address) >= 2:
        return str(address[0]), int(address[1])
    return "", 0
