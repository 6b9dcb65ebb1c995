"""Local addresses as ``TRANSPORT:HOST:PORT`` (``udp:127.0.0.1:5060``, ``tls:[::1]:5061``)."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from sipwire.transport.address import TRANSPORTS

__all__ = ["ListenSpec", "advertised_host", "local_address_for", "parse_listen"]


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


WILDCARDS = frozenset({"0.0.0.0", "::"})


def local_address_for(host: str) -> str:
    """The local IP address the system would use to reach ``host``.

    A UDP socket is "connected" to ``host``: that picks a route and a source
    address, and sends nothing.
    """
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((host, 9))
            return str(probe.getsockname()[0])
    except OSError:
        return "::1" if family == socket.AF_INET6 else "127.0.0.1"


def advertised_host(bound: str) -> str:
    """What to put in Via and Contact for a listener bound to ``bound``.

    A wildcard (``0.0.0.0``, ``::``) is no address a peer can send to: the
    address of the default route is used instead (TEST-NET destinations are
    only looked up in the routing table, never contacted).
    """
    if bound not in WILDCARDS:
        return bound
    return local_address_for("2001:db8::1" if bound == "::" else "192.0.2.1")
