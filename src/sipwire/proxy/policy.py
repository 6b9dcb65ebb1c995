"""What a proxy is and what it does by choice: its addresses, timers and options.

One frozen :class:`ProxyPolicy` describes a proxy (RFC 3261 §16); every
other module of ``sipwire.proxy`` reads it and never changes it. The
domains the proxy is responsible for live in the routing table
(``routes.py``), which decides where requests go.

The addresses the proxy listens on are its :class:`Interface` values: they
are what it writes in Via sent-by (§16.6 step 8) and Record-Route (§16.6
step 4), and what it recognises as itself in Route, Request-URI and Via
(§16.3 item 4, §16.4).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Final, Literal

from sipwire.message.uri import SipUri
from sipwire.message.via import Via
from sipwire.transport.address import DEFAULT_PORTS, RELIABLE, TRANSPORTS, Target

__all__ = ["AUTH_METHODS", "TIMER_C_MINIMUM", "Interface", "ProxyPolicy", "host_key"]

TIMER_C_MINIMUM: Final = 180.0
"""§16.6 step 11: Timer C "MUST be larger than 3 minutes"."""

AUTH_METHODS: Final = frozenset({"INVITE", "MESSAGE", "SUBSCRIBE"})
"""Methods a user of our domains must authenticate for, even towards another local user."""

_TRANSPORTS_3263: Final = ("udp", "tcp", "tls", "ws", "wss")


def host_key(host: str) -> str:
    """The comparison form of a host: lower case, IPv6 without brackets, compressed."""
    text = host.strip().lower()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if ":" in text:
        try:
            return ipaddress.IPv6Address(text).compressed
        except ValueError:
            return text
    return text


@dataclass(frozen=True, slots=True)
class Interface:
    """One address the proxy receives on: ``Interface("udp", "192.0.2.1", 5060)``."""

    transport: str
    """udp, tcp, tls, ws or wss (lower case)."""
    host: str
    """The IP address bound (IPv6 without brackets)."""
    port: int
    advertise: str | None = None
    """The host written in Via and Record-Route when it differs from ``host``
    (a name, or the public address of a host behind a static NAT)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "transport", self.transport.lower())
        if self.transport not in TRANSPORTS:
            raise ValueError(f"unknown transport {self.transport!r}")

    @property
    def shown_host(self) -> str:
        """The host as written in a header (IPv6 in brackets)."""
        host = self.advertise or self.host
        return f"[{host}]" if ":" in host and not host.startswith("[") else host

    @property
    def hostport(self) -> str:
        """``host:port`` for a Via sent-by or a Record-Route URI."""
        return f"{self.shown_host}:{self.port}"

    @property
    def family(self) -> int:
        """4 or 6: the address family of the bound address."""
        return 6 if ":" in self.host else 4

    @property
    def reliable(self) -> bool:
        return self.transport in RELIABLE

    def via(self, branch: str, transport: str | None = None) -> Via:
        """Our Via for a request sent from this interface over ``transport`` (default:
        the interface's own) (§16.6 step 8, §18.1.1)."""
        sent = (transport or self.transport).upper()
        return Via(sent, self.shown_host, self.port, {"branch": branch})


@dataclass(frozen=True, slots=True)
class ProxyPolicy:
    """How a proxy behaves (RFC 3261 §16). Every interval is in seconds.

    ``ProxyPolicy(interfaces=(Interface("udp", "192.0.2.1", 5060),))`` is a
    record-routing, forking proxy with the defaults below.
    """

    interfaces: tuple[Interface, ...]
    """Where the proxy listens; the first of each transport and address family is
    the one used to send over it."""
    aliases: AbstractSet[str] = frozenset()
    """Other names of this proxy (``proxy.example.com``): a Route or Request-URI with
    one of them, or with one of our domains, is for this proxy (§16.4)."""
    record_route: bool = True
    """Record-Route dialog-creating requests (§16.6 step 4), with two values when the
    request leaves on another transport or address family than it came (RFC 5658)."""
    extensions: AbstractSet[str] = frozenset()
    """Option tags this proxy understands in Proxy-Require (§16.3 item 5); others: 420."""
    timer_c: float = 185.0
    """Timer C of every INVITE branch (§16.6 step 11: more than 3 minutes), restarted by
    each provisional response but 100 (§16.7 step 2)."""
    forking: Literal["q", "parallel"] = "q"
    """``q``: the bindings of an AOR are tried by q-value groups, highest first, each
    group in parallel (§16.6); ``parallel``: all at once whatever their q."""
    max_branches: int = 16
    """Most targets one request is forked to (the others are dropped, lowest q first)."""
    max_redirects: int = 0
    """3xx recursion (§16.7 step 5): how many Contact URIs of 3xx responses may be added
    to the target set of one request. 0 turns recursion off (the 3xx goes upstream)."""
    auth_methods: AbstractSet[str] = AUTH_METHODS
    """Methods a user of our domains is challenged for (407) even towards a local user.
    Requests towards anything but a local user always need an authenticated local user."""
    trusted: AbstractSet[str] = frozenset()
    """Source addresses (trunks, peer proxies) whose requests are neither challenged nor
    refused as relaying."""
    reveal_unknown_users: bool = True
    """Answer 404 rather than 480 for a user that does not exist, to a caller who
    authenticated as a user of that same domain (see ``pipeline.py``)."""
    default_max_forwards: int = 70
    """Max-Forwards of a request that had none (§16.6 step 3)."""
    node: str = ""
    """This node's name: a binding's flow (RFC 5626) is only used on the node holding it."""
    flow_secret: bytes = b""
    """Key of the flow tokens in Record-Route (RFC 5626 §5.3). Empty: no flow tokens,
    and in-dialog requests towards a flow follow the Request-URI."""
    transports: tuple[str, ...] = _TRANSPORTS_3263
    """Transports RFC 3263 may choose for a next hop."""
    allow: tuple[str, ...] = (
        "INVITE",
        "ACK",
        "BYE",
        "CANCEL",
        "OPTIONS",
        "MESSAGE",
        "SUBSCRIBE",
        "NOTIFY",
        "REFER",
        "INFO",
        "PRACK",
        "UPDATE",
    )
    """The Allow of an OPTIONS this proxy answers itself (§16.3 item 3, §11)."""
    algorithms: tuple[str, ...] = ("SHA-256", "MD5")
    """Digest algorithms of the 407 challenges, most preferred first (as the registrar's)."""
    max_pending: int = 10_000
    """Requests that may wait for the location service or DNS at once; more get 503."""
    edge_timeout: float = 10.0
    """How long a request may wait for an answer of the edge (location service, user
    store, DNS) before the proxy gives up on it (503). The edge should answer sooner,
    with an empty answer when its store or resolver fails; this is the backstop."""
    _hosts: frozenset[tuple[str, int]] = field(init=False, repr=False, compare=False)
    _names: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.interfaces:
            raise ValueError("a proxy needs at least one interface")
        if self.timer_c <= TIMER_C_MINIMUM:
            raise ValueError(f"Timer C must be larger than 3 minutes: {self.timer_c}")
        if self.max_branches < 1:
            raise ValueError("max_branches must be at least 1")
        object.__setattr__(self, "interfaces", tuple(self.interfaces))
        object.__setattr__(self, "aliases", frozenset(host_key(a) for a in self.aliases))
        object.__setattr__(self, "extensions", frozenset(self.extensions))
        object.__setattr__(self, "auth_methods", frozenset(self.auth_methods))
        object.__setattr__(self, "trusted", frozenset(host_key(t) for t in self.trusted))
        hosts = set()
        for iface in self.interfaces:
            hosts.add((host_key(iface.host), iface.port))
            if iface.advertise:
                hosts.add((host_key(iface.advertise), iface.port))
        object.__setattr__(self, "_hosts", frozenset(hosts))
        object.__setattr__(self, "_names", frozenset(h for h, _ in hosts) | self.aliases)

    # -- is it us? ---------------------------------------------------------------------
    def is_our_address(self, host: str, port: int | None, transport: str = "udp") -> bool:
        """True for one of our interface addresses (an absent port is the transport's
        default), or one of our aliases with a port we listen on (or none)."""
        key = host_key(host)
        if key in self.aliases:
            return port is None or any(i.port == port for i in self.interfaces)
        if port is None:
            port = DEFAULT_PORTS.get(transport.lower(), 5060)
        return (key, port) in self._hosts

    def is_us(self, uri: SipUri, domains: AbstractSet[str] = frozenset()) -> bool:
        """Does ``uri`` (a Route or Request-URI) name this proxy? Our addresses and
        aliases, or one of ``domains`` (the domains we are responsible for, §16.4)."""
        key = host_key(uri.maddr or uri.host)
        if key in domains:
            return uri.port is None or any(i.port == uri.port for i in self.interfaces)
        if key not in self._names:
            return False
        transport = uri.transport or ("tls" if uri.secure else "udp")
        return self.is_our_address(key, uri.port, transport)

    def sent_by_us(self, via: Via) -> bool:
        """Is ``via`` one this proxy inserted (its sent-by is one of our addresses)?"""
        key = host_key(via.host)
        if key not in self._names:
            return False
        return self.is_our_address(key, via.port, via.transport)

    def is_trusted(self, host: str) -> bool:
        return host_key(host) in self.trusted

    # -- which interface ----------------------------------------------------------------
    def interface_for(self, target: Target) -> Interface | None:
        """The interface a request to ``target`` leaves from: same transport and address
        family; for a stream transport without an interface of its own, any interface
        of the family (the response comes back on the connection, §18.2.2)."""
        family = 6 if ":" in target.host else 4
        fallback: Interface | None = None
        for iface in self.interfaces:
            if iface.family != family:
                continue
            if iface.transport == target.transport:
                return iface
            if fallback is None:
                fallback = iface
        return fallback if target.transport in RELIABLE else None

    def inbound(self, transport: str, local_host: str, local_port: int) -> Interface:
        """The interface a request arrived on (by its local address, else its transport)."""
        transport = transport.lower()
        key = host_key(local_host) if local_host else ""
        first: Interface | None = None
        for iface in self.interfaces:
            if iface.transport != transport:
                continue
            if host_key(iface.host) == key and iface.port == local_port:
                return iface
            if first is None:
                first = iface
        return first or self.interfaces[0]
