"""Local addresses as ``TRANSPORT:HOST:PORT`` (``udp:127.0.0.1:5060``, ``tls:[::1]:5061``)."""

from __future__ import annotations

from dataclasses import dataclass

from sipwire.transport.address import TRANSPORTS

__all__ = ["ListenSpec", "parse_listen"]


@dataclass(frozen=True, slots=True)
class ListenSpec:
    """``SCHEME:HOST:PORT`` of a ``--listen`` option."""

    transport: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}:{host}:{self.port}"


def parse_listen(text: str) -> ListenSpec:
    """Parse ``udp:127.0.0.1:5080`` or ``tls:[::1]:5061``; raise ValueError otherwise."""
    transport, sep, rest = text.partition(":")
    transport = transport.lower()
    if not sep or transport not in TRANSPORTS:
        raise ValueError(f"expected SCHEME:HOST:PORT with SCHEME one of {sorted(TRANSPORTS)}")
    if rest.startswith("["):
        host, bracket, port_text = rest[1:].partition("]")
        if not bracket or not port_text.startswith(":"):
            raise ValueError(f"malformed IPv6 listen address: {text!r}")
        port_text = port_text[1:]
    else:
        host, sep, port_text = rest.rpartition(":")
        if not sep:
            raise ValueError(f"missing port in {text!r}")
    if not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"malformed listen address: {text!r}")
    return ListenSpec(transport, host, int(port_text))
