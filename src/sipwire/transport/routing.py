"""Where responses go and which transport a request takes: RFC 3261 §18, RFC 3581.

Pure functions over messages and addresses; nothing here opens a socket.

- :func:`stamp_via` is what a server transport does to every request it
  receives (§18.2.1): record the address the request really came from in
  the top Via (``received``, and ``rport`` when asked to, RFC 3581 §4).
- :func:`response_target` picks the destination of a response from the top
  Via (§18.2.2, RFC 3581 §4).
- :func:`fallback_target` is where a response goes when the connection the
  request came on is gone (§18.2.2).
- :func:`choose_transport` switches a large UDP request to TCP (§18.1.1).
"""

from __future__ import annotations

import functools
import ipaddress
from typing import Final

from sipwire.errors import LocalProtocolError
from sipwire.message.message import Request
from sipwire.message.via import Via
from sipwire.transport.address import DEFAULT_PORTS, RELIABLE, Source, Target

__all__ = [
    "MTU_MARGIN",
    "choose_transport",
    "fallback_target",
    "response_target",
    "stamp_via",
    "strip_brackets",
]

MTU_MARGIN: Final = 200
"""§18.1.1: a UDP request "within 200 bytes of the path MTU" must go over TCP."""


def strip_brackets(host: str) -> str:
    """``[2001:db8::1]`` -> ``2001:db8::1``; any other host unchanged."""
    if host.startswith("[") and host.endswith("]"):
        return host[1:-1]
    return host


def _same_address(sent_by_host: str, source_host: str) -> bool:
    """True when the sent-by host is an IP literal equal to the source address.

    A host name never matches (§18.2.1: "received" is added whenever sent-by
    is a domain name); IP literals compare by value, so ``::1`` equals
    ``0:0:0:0:0:0:0:1``.
    """
    if sent_by_host == source_host:
        return _is_ip(sent_by_host)  # the common case: no parsing needed twice
    try:
        return ipaddress.ip_address(strip_brackets(sent_by_host)) == ipaddress.ip_address(
            strip_brackets(source_host)
        )
    except ValueError:
        return False


@functools.lru_cache(maxsize=4096)
def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(strip_brackets(host))
    except ValueError:
        return False
    return True


def _port_of(transport: str, port: int | None) -> int:
    if port is not None:
        return port
    return DEFAULT_PORTS.get(transport, 5060)


def stamp_via(request: Request, source: Source) -> Via:
    """Record where ``request`` came from in its top Via (§18.2.1, RFC 3581 §4).

    §18.2.1: when the sent-by host of the top Via differs from the source
    address of the packet (always, when sent-by is a host name), the server
    adds ``received=<source address>``. RFC 3581 §4: when the top Via has an
    ``rport`` parameter without a value, the server sets it to the source
    port, and adds ``received`` even if the address matched.

    The request is changed through its Headers (the top Via value is popped
    and the new one prepended), so ``bytes(request)`` and ``request.via``
    both reflect the change; when nothing needs adding the header is left
    untouched. Returns the (possibly new) top Via.
    """
    via = request.top_via
    if via is None:
        raise LocalProtocolError("request has no Via header")
    params = dict(via.params)
    changed = False
    if via.wants_rport and not params.get("rport"):
        # RFC 3581 §4: fill the empty rport with the source port, and always add received.
        params["rport"] = str(source.port)
        params["received"] = source.host
        changed = True
    if not _same_address(via.host, source.host) and params.get("received") != source.host:
        params["received"] = source.host
        changed = True
    if not changed:
        return via
    new_via = Via(via.transport, via.host, via.port, params, via.protocol)
    request.headers.pop_first_value("via")
    request.headers.prepend("Via", new_via)
    return new_via


def response_target(via: Via, source: Source) -> tuple[Target, bool]:
    """Where a response to a request with top Via ``via`` goes (§18.2.2, RFC 3581 §4).

    Returns ``(target, reuse)``. The rules, in the order of §18.2.2:

    1. Reliable sent-protocol (TCP, TLS, WS, WSS): the response goes back on
       the connection the request came on: ``target`` is the source and
       ``reuse`` is True; send with ``flow=source.flow``. When that fails,
       use :func:`fallback_target`.
    2. ``maddr`` present: the response goes to that address, port from
       sent-by or the default port.
    3. Otherwise (unreliable): to ``received`` (the source address when the
       Via has none, which after :func:`stamp_via` means sent-by equalled the
       source), port from ``rport`` when it has a value (RFC 3581 §4), else
       from sent-by, else the default port (5060).

    IPv6 hosts come back without brackets.
    """
    transport = via.transport.lower()
    if transport in RELIABLE:
        return Target(source.transport, strip_brackets(source.host), source.port), True
    maddr = via.maddr
    if maddr:
        return Target(transport, strip_brackets(maddr), _port_of(transport, via.port)), False
    host = via.received or source.host
    port = via.rport
    if port is None and via.wants_rport:
        # rport asked for but not filled in (no stamp_via): the source port is the answer.
        port = source.port
    if port is None:
        port = _port_of(transport, via.port)
    return Target(transport, strip_brackets(host), port), False


def fallback_target(via: Via) -> Target:
    """Where a response goes when the request's connection has failed (§18.2.2).

    "the server SHOULD open a connection to the IP address in the 'received'
    parameter, if present, using the port in the 'sent-by' value, or the
    default port for that transport, if no port is specified." Without
    ``received`` the sent-by host itself is returned; when that is a host
    name the caller resolves it with RFC 3263 §5 first.
    """
    transport = via.transport.lower()
    host = via.received or via.host
    return Target(transport, strip_brackets(host), _port_of(transport, via.port))


def choose_transport(request_size: int, transport: str, *, path_mtu: int = 1500) -> str:
    """The transport a request of ``request_size`` bytes must use (§18.1.1).

    "If a request is within 200 bytes of the path MTU, or if it is larger
    than 1300 bytes and the path MTU is unknown, the request MUST be sent
    using an RFC 2914 congestion controlled transport protocol, such as
    TCP." So a UDP request larger than ``path_mtu - 200`` (1300 bytes by
    default) goes over TCP; every other choice is kept. The caller must
    then rewrite the transport in its top Via. Returns a lower-case name.
    """
    name = transport.lower()
    if name == "udp" and request_size > path_mtu - MTU_MARGIN:
        return "tcp"
    return name
