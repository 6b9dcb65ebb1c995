"""Where a message goes and where it came from.

``Target`` is a resolved destination (RFC 3263's output: transport,
address, port). ``Source`` describes how a message arrived, so that a
response can go back the same way (§18.2.2) and a connection can be reused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["DEFAULT_PORTS", "RELIABLE", "TRANSPORTS", "Source", "Target", "default_port"]

TRANSPORTS: Final = frozenset({"udp", "tcp", "tls", "ws", "wss"})
"""Transport names used throughout sipwire, lower case (Via uses them upper-cased)."""

RELIABLE: Final = frozenset({"tcp", "tls", "ws", "wss"})
"""Transports with their own retransmission: Timers A, E and G do not run on them (§17.1.1.2)."""

DEFAULT_PORTS: Final = {"udp": 5060, "tcp": 5060, "tls": 5061, "ws": 80, "wss": 443}


def default_port(transport: str) -> int:
    """The port a transport uses when a URI or Via names none (§19.1.2, RFC 7118)."""
    return DEFAULT_PORTS[transport.lower()]


@dataclass(frozen=True, slots=True)
class Target:
    """A destination: transport, IP address (IPv6 without brackets) and port."""

    transport: str
    host: str
    port: int

    @property
    def reliable(self) -> bool:
        return self.transport in RELIABLE

    @property
    def secure(self) -> bool:
        return self.transport in ("tls", "wss")

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}:{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Source:
    """How a message arrived: transport, remote and local address, and the flow.

    ``flow`` identifies the connection a message came on (stream transports),
    so the response can be sent back on it (§18.2.2); it is None for UDP.
    """

    transport: str
    host: str
    port: int
    local_host: str = ""
    local_port: int = 0
    flow: int | None = None

    @property
    def reliable(self) -> bool:
        return self.transport in RELIABLE

    def as_target(self) -> Target:
        """The remote end of this source as a destination."""
        return Target(self.transport, self.host, self.port)
