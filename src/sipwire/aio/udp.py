"""SIP over UDP: one message per datagram (RFC 3261 §18.1.1, §18.2.1, §18.3)."""

from __future__ import annotations

import asyncio
from typing import cast

from sipwire.aio.transport_base import (
    Sink,
    TransportConfig,
    TransportError,
    address_pair,
    log,
)
from sipwire.errors import ParseError
from sipwire.message import parse_message
from sipwire.transport.address import Source

__all__ = ["UdpEndpoint"]


def _buffered(transport: asyncio.DatagramTransport) -> int:
    """Bytes waiting in the transport because the socket would block."""
    # asyncio's datagram transports have get_write_buffer_size(); typeshed omits it.
    size = getattr(transport, "get_write_buffer_size", None)
    return int(size()) if size is not None else 0


class UdpEndpoint(asyncio.DatagramProtocol):
    """A bound UDP socket: receives datagrams and sends from its own port.

    Requests and responses both leave through the listening socket, so a
    response comes from the port its request was sent to (§18.2.2) and the
    sent-by port of our Via is the port a peer can answer (§18.1.1).
    """

    def __init__(self, sink: Sink, config: TransportConfig) -> None:
        self.sink = sink
        self.config = config
        self.transport: asyncio.DatagramTransport | None = None
        self.local: tuple[str, int] = ("", 0)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.local = address_pair(transport.get_extra_info("sockname"))

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        host, port = address_pair(addr)
        source = Source("udp", host, port, self.local[0], self.local[1])
        if len(data) > self.config.max_message_size:
            log.warning(
                "udp %s:%d: datagram of %d bytes exceeds %d; dropped",
                host,
                port,
                len(data),
                self.config.max_message_size,
            )
            return
        if not data.strip(b"\r\n"):
            # A CRLF keep-alive (RFC 5626 §4.4.1 uses STUN on UDP, but CRLFs are common).
            return
        try:
            message = parse_message(data, max_size=self.config.max_message_size)
        except ParseError as exc:
            log.info("udp %s:%d: unparsable datagram dropped: %s", host, port, exc.reason)
            self.sink.report_error(data, exc, source)
            return
        self.sink.deliver(message, source)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors (port unreachable ...) of earlier sends surface here.
        log.info("udp %s:%d: %s", self.local[0], self.local[1], exc)

    def send(self, data: bytes, host: str, port: int) -> Source:
        """Send one datagram; raise TransportError when the socket buffer is full."""
        self.sendto(data, host, port)
        return Source("udp", host, port, self.local[0], self.local[1])

    def sendto(self, data: bytes, host: str, port: int) -> None:
        """``send`` without the Source of the answer."""
        transport = self.transport
        if transport is None or transport.is_closing():
            raise TransportError("UDP socket is closed")
        if _buffered(transport) + len(data) > self.config.write_buffer_size:
            log.warning("udp: send buffer full; datagram to %s:%d dropped", host, port)
            raise TransportError("UDP send buffer full")
        transport.sendto(data, (host, port))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
