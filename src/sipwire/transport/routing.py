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
    ``rport`` parameter, the server sets it to the source port and adds
    ``received`` even if the address matched.

    What the client wrote itself is never trusted: a ``received`` it put in
    is replaced by the real source address, and an ``rport`` that already
    has a value gets the real source port, so that no response can be
    steered to a third address by the request's own Via.

    The request is changed through its Headers (the top Via value is popped
    and the new one prepended), so ``bytes(request)`` and ``request.via``
    both reflect the change; when nothing needs changing the header is left
    untouched. Returns the (possibly new) top Via.
    """
    via = request.top_via
    if via is None:
        raise LocalProtocolError("request has no Via header")
    params = via.params
    rport = params.get("rport", _ABSENT)
    received = params.get("received")
    port = str(source.port)
    if rport is not _ABSENT:
        if rport == port and received == source.host:
            return via
    elif received == source.host or (received is None and _same_address(via.host, source.host)):
        return via
    new_params = dict(params)
    if rport is not _ABSENT:
        new_params["rport"] = port
    new_params["received"] = source.host
    new_via = Via(via.transport, via.host, via.port, new_params, via.protocol)
    request.headers.pop_first_value("via")
    request.headers.prepend("Via", new_via)
    return new_via


_ABSENT: Final = object()


def response_target(via: Via, source: Source, *, honour_maddr: bool = False) -> tuple[Target, bool]:
    """Where a response to a request with top Via ``via`` goes (§18.2.2, RFC 3581 §4).

    Returns ``(target, reuse)``. ``source`` is how the request arrived, and
    it decides more than the Via does:

    1. The request came over a connection (TCP, TLS, WS, WSS): the response
       goes back on that connection whatever the Via says: ``target`` is
       the source and ``reuse`` is True; send with ``flow=source.flow``.
       When that fails, use :func:`fallback_target`.
    2. Over UDP, ``maddr`` is honoured only when it is a multicast address
       (the case §18.2.2 has in mind) or when ``honour_maddr`` is set by
       configuration; a unicast ``maddr`` would let a request aim its
       response at a third party.
    3. Otherwise the response goes to the address the request came from
       (which :func:`stamp_via` wrote into ``received``), port from
       ``rport`` when it has a value (RFC 3581 §4), else from sent-by, else
       the default port (5060).

    IPv6 hosts come back without brackets.
    """
    if source.transport in RELIABLE:
        return Target(source.transport, strip_brackets(source.host), source.port), True
    transport = source.transport or via.transport.lower()
    maddr = via.maddr
    if maddr and (honour_maddr or _is_multicast(maddr)):
        return Target(transport, strip_brackets(maddr), _port_of(transport, via.port)), False
    port = via.rport
    if port is None and via.wants_rport:
        # rport asked for but not filled in (no stamp_via): the source port is the answer.
        port = source.port
    if port is None:
        port = _port_of(transport, via.port)
    return Target(transport, strip_brackets(source.host), port), False


@functools.lru_cache(maxsize=1024)
def _is_multicast(host: str) -> bool:
    try:
        return ipaddress.ip_address(strip_brackets(host)).is_multicast
    except ValueError:
        return False


def fallback_target(via: Via, source: Source) -> Target:
    """Where a response goes when the request's connection has failed (§18.2.2).

    "the server SHOULD open a connection to the IP address in the 'received'
    parameter, if present, using the port in the 'sent-by' value, or the
    default port for that transport, if no port is specified." The address
    is the one the connection came from (``received`` is that address once
    :func:`stamp_via` ran; a value the client wrote is never used), and the
    transport is the connection's own, whatever the Via claims.
    """
    transport = source.transport
    return Target(transport, strip_brackets(source.host), _port_of(transport, via.port))


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
