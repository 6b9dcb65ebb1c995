"""RTP ports from a configured range, bound and released per stream.

:class:`PortAllocator` hands out an even RTP port with the odd port above
it for RTCP (RFC 3550 §11), both bound as non-blocking UDP sockets, and
takes them back when the stream ends. Ports are tried round-robin from
where the last allocation stopped, so a port just released is the last to
be reused; a port another program holds is skipped. At most
``(high - low + 1) // 2`` pairs exist at once: the range bounds the
sockets a user agent can hold.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

__all__ = ["NoFreePort", "PortAllocator", "RtpSockets"]


class NoFreePort(OSError):
    """Every port pair of the range is in use."""


@dataclass(slots=True, eq=False)
class RtpSockets:
    """The bound sockets of one stream: RTP on ``port``, RTCP on ``port + 1``."""

    host: str
    port: int
    rtp: socket.socket
    rtcp: socket.socket | None

    def close(self) -> None:
        """Close both sockets (idempotent)."""
        self.rtp.close()
        if self.rtcp is not None:
            self.rtcp.close()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class PortAllocator:
    """Even/odd UDP port pairs from ``low``..``high`` (inclusive)."""

    def __init__(self, low: int, high: int) -> None:
        low += low % 2
        if not 0 < low < high <= 65535:
            raise ValueError(f"no RTP port pair in {low}-{high}")
        self.low = low
        self.high = high
        self.in_use: set[int] = set()
        """RTP ports of the pairs handed out and not released."""
        self._next = low

    @property
    def pairs(self) -> int:
        """How many pairs the range holds."""
        return (self.high - self.low + 1) // 2

    def allocate(self, host: str) -> RtpSockets:
        """Bind the next free pair on ``host``; NoFreePort when none is left."""
        for _ in range(self.pairs):
            port = self._next
            self._next = port + 2 if port + 3 <= self.high else self.low
            if port in self.in_use:
                continue
            try:
                rtp = _bind(host, port)
            except OSError:
                continue
            try:
                rtcp = _bind(host, port + 1)
            except OSError:
                rtp.close()
                continue
            self.in_use.add(port)
            return RtpSockets(host, port, rtp, rtcp)
        raise NoFreePort(f"no free RTP port pair in {self.low}-{self.high}")

    def release(self, sockets: RtpSockets) -> None:
        """Close a pair and make its ports available again."""
        sockets.close()
        self.in_use.discard(sockets.port)
