"""Route information: §16.4 preprocessing, Record-Route (§16.6 step 4, RFC 5658), flows.

- :func:`preprocess` is §16.4 on a received request: a Request-URI that is
  one of our Record-Route values came from a strict router (the last Route
  becomes the Request-URI, §16.12.1.2); a ``maddr`` naming us is stripped;
  our own topmost Route value is removed, and the second one too when both
  carry ``r2=on`` (the double Record-Route of RFC 5658 §4).
- :func:`add_record_route` inserts our Record-Route: one value, or two when
  the request leaves on another interface than it came (transport or address
  family: UDP in, TCP or WS out; IPv4 in, IPv6 out), each with ``r2=on``, the
  one facing the next hop on top (RFC 5658 §4, "double Record-Routing").
- Flow tokens (RFC 5626 §5.3): a phone behind NAT or on a connection is
  reachable only through the flow its requests came on, not at its Contact.
  The proxy puts a token naming that flow (transport, address, connection,
  node), signed with ``policy.flow_secret``, in the user part of its
  Record-Route value. A later request that reaches us through that value and
  did not arrive on that flow goes out on it, whatever its Request-URI says.
  Without a secret there are no tokens.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Final

from sipwire.errors import ParseError
from sipwire.message import Request, SipUri, Uri
from sipwire.proxy.policy import Interface, ProxyPolicy, host_key
from sipwire.transport.address import DEFAULT_PORTS, RELIABLE, Source, Target

__all__ = [
    "FlowToken",
    "RouteInfo",
    "add_record_route",
    "caller_flow",
    "next_hop",
    "preprocess",
    "record_route_value",
]

_MAC_BYTES: Final = 8
_TOKEN_PREFIX: Final = "f"
# Record-Route is for requests that may create a dialog (§16.6 step 4; RFC 3515, RFC 6665).
DIALOG_CREATING: Final = frozenset({"INVITE", "SUBSCRIBE", "REFER", "NOTIFY"})


@dataclass(frozen=True, slots=True)
class FlowToken:
    """A flow to a user agent (RFC 5626 §5.3): where its requests came from."""

    transport: str
    host: str
    port: int
    flow: int | None = None
    """The connection on ``node`` (None: UDP, or unknown)."""
    node: str = ""

    @property
    def target(self) -> Target:
        return Target(self.transport, self.host, self.port)

    def matches(self, source: Source) -> bool:
        """Did ``source`` come on this flow (same transport and remote address)?"""
        return (
            source.transport.lower() == self.transport
            and host_key(source.host) == host_key(self.host)
            and source.port == self.port
        )

    def encode(self, secret: bytes) -> str:
        """The token for a URI user part: base32 of the flow and an HMAC-SHA256 of it."""
        payload = "|".join(
            (self.transport, self.host, str(self.port), "" if self.flow is None else str(self.flow))
        )
        payload += "|" + self.node
        raw = payload.encode("utf-8", "surrogateescape")
        mac = hmac.new(secret, raw, hashlib.sha256).digest()[:_MAC_BYTES]
        text = base64.b32encode(raw + mac).decode("ascii").rstrip("=").lower()
        return _TOKEN_PREFIX + text

    @classmethod
    def decode(cls, text: str, secret: bytes) -> FlowToken | None:
        """The flow a token names, or None (not a token, or not signed with ``secret``)."""
        if not secret or not text.startswith(_TOKEN_PREFIX):
            return None
        body = text[len(_TOKEN_PREFIX) :].upper()
        try:
            raw = base64.b32decode(body + "=" * (-len(body) % 8))
        except (binascii.Error, ValueError):
            return None
        if len(raw) <= _MAC_BYTES:
            return None
        payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        expected = hmac.new(secret, payload, hashlib.sha256).digest()[:_MAC_BYTES]
        if not hmac.compare_digest(mac, expected):
            return None
        parts = payload.decode("utf-8", "surrogateescape").split("|")
        if len(parts) != 5 or not parts[2].isdigit():
            return None
        transport, host, port, flow, node = parts
        return cls(transport, host, int(port), int(flow) if flow.isdigit() else None, node)


@dataclass(frozen=True, slots=True)
class RouteInfo:
    """What §16.4 found in a received request."""

    strict: bool = False
    """The Request-URI was one of our Record-Route values (sent by a strict router)
    and was replaced by the last Route value."""
    removed: int = 0
    """How many Route values naming this proxy were removed (0, 1 or 2)."""
    flow: FlowToken | None = None
    """A flow named by a removed value that the request did not come on: the request
    goes out there (RFC 5626 §5.3)."""

    @property
    def through_us(self) -> bool:
        """Did the request name this proxy in its route (a Route value, or the
        Request-URI a strict router put there)?"""
        return self.strict or self.removed > 0 or self.flow is not None


def preprocess(
    request: Request, source: Source, policy: ProxyPolicy, domains: AbstractSet[str]
) -> RouteInfo:
    """§16.4 on ``request`` (changed in place); see the module docstring.

    ``domains`` are the domains this proxy is responsible for: a Route value
    naming one of them names this proxy too (a phone configured with its
    domain as outbound proxy). Raises ParseError for a malformed Route.
    """
    tokens: list[str] = []
    strict = False
    uri = request.uri
    if isinstance(uri, SipUri) and uri.lr and policy.is_us(uri):
        # "If the Request-URI of the request contains a value this proxy previously
        # placed into a Record-Route header field ..., the proxy MUST replace the
        # Request-URI in the request with the last value from the Route header field,
        # and remove that value from the Route header field."
        routes = request.route
        if routes:
            strict = True
            if uri.user:
                tokens.append(uri.user)
            request.uri = routes[-1].uri
            _set_routes(request, [str(a) for a in routes[:-1]])
    _strip_our_maddr(request, source, policy)
    removed = 0
    previous_r2 = False
    routes = request.route
    while routes and removed < 2:
        first = routes[0].uri
        if not isinstance(first, SipUri) or not policy.is_us(first, domains):
            break
        r2 = _r2(first)
        if removed == 1 and not (r2 and previous_r2):
            break
        # "If the first value in the Route header field indicates this proxy, the
        # proxy MUST remove that value from the request."
        request.headers.pop_first_value("route")
        previous_r2 = r2
        if first.user:
            tokens.append(first.user)
        removed += 1
        routes = routes[1:]
    flow: FlowToken | None = None
    for text in tokens:
        token = FlowToken.decode(text, policy.flow_secret)
        if token is not None and not token.matches(source):
            flow = token
            break
    return RouteInfo(strict, removed, flow)


def _r2(uri: SipUri) -> bool:
    return (uri.params.get("r2") or "").lower() == "on"


def _set_routes(request: Request, values: list[str]) -> None:
    if values:
        request.headers.set("Route", ", ".join(values))
    else:
        request.headers.remove("Route")


def _strip_our_maddr(request: Request, source: Source, policy: ProxyPolicy) -> None:
    """§16.4: a ``maddr`` naming us, received on the port and transport the URI
    indicates: strip the maddr and any non-default port or transport."""
    uri = request.uri
    if not isinstance(uri, SipUri) or uri.maddr is None:
        return
    transport = uri.transport or ("tls" if uri.secure else "udp")
    if not policy.is_our_address(uri.maddr, uri.port, transport):
        return
    port = uri.port if uri.port is not None else DEFAULT_PORTS.get(transport, 5060)
    if source.transport.lower() != transport or (source.local_port and source.local_port != port):
        return
    params = {k: v for k, v in uri.params.items() if k not in ("maddr", "transport")}
    request.uri = SipUri(uri.host, uri.user, uri.password, None, params, uri.headers, uri.scheme)


def record_route_value(
    iface: Interface, *, secure: bool = False, token: str | None = None, r2: bool = False
) -> str:
    """Our Record-Route value for ``iface``: ``<sip:host:port;transport=tcp;lr>``.

    SIPS when the request is (§16.6 step 4); the transport parameter for
    anything but UDP (and TLS under SIPS), so that the next request reaches
    this interface; ``r2=on`` for a double Record-Route (RFC 5658); a flow
    token as user part (RFC 5626 §5.3).
    """
    scheme = "sips" if secure else "sip"
    user = f"{token}@" if token else ""
    params = ""
    if iface.transport != "udp" and not (secure and iface.transport == "tls"):
        params += f";transport={iface.transport}"
    if r2:
        params += ";r2=on"
    return f"<{scheme}:{user}{iface.hostport}{params};lr>"


def add_record_route(
    copy: Request,
    inbound: Interface,
    outbound: Interface,
    *,
    secret: bytes = b"",
    inbound_flow: FlowToken | None = None,
    outbound_flow: FlowToken | None = None,
) -> None:
    """§16.6 step 4: our Record-Route before any existing values (RFC 5658 §4: two when
    the interfaces differ, or when both sides need a flow token)."""
    uri = copy.uri
    secure = isinstance(uri, SipUri) and uri.secure
    in_token = inbound_flow.encode(secret) if inbound_flow is not None and secret else None
    out_token = outbound_flow.encode(secret) if outbound_flow is not None and secret else None
    if inbound != outbound or (in_token and out_token):
        copy.headers.prepend(
            "Record-Route", record_route_value(inbound, secure=secure, token=in_token, r2=True)
        )
        copy.headers.prepend(
            "Record-Route", record_route_value(outbound, secure=secure, token=out_token, r2=True)
        )
        return
    copy.headers.prepend(
        "Record-Route", record_route_value(inbound, secure=secure, token=in_token or out_token)
    )


def caller_flow(request: Request, source: Source, policy: ProxyPolicy) -> FlowToken | None:
    """The flow a request came on, when its sender is only reachable through it: it came
    over a connection, or its Contact is another address than its source (NAT)."""
    if not policy.flow_secret:
        return None
    transport = source.transport.lower()
    if transport in RELIABLE:
        return FlowToken(transport, source.host, source.port, source.flow, policy.node)
    try:
        contacts = request.contact
    except ParseError:
        return None
    if not contacts or not isinstance(contacts[0].uri, SipUri):
        return None
    contact = contacts[0].uri
    port = contact.port if contact.port is not None else DEFAULT_PORTS["udp"]
    if host_key(contact.host) == host_key(source.host) and port == source.port:
        return None
    return FlowToken(transport, source.host, source.port, source.flow, policy.node)


def next_hop(copy: Request, strict: bool) -> Uri:
    """§16.6 step 7: the URI RFC 3263 is applied to: the Request-URI after a strict-router
    rewrite, else the first Route value, else the Request-URI."""
    if not strict:
        routes = copy.route
        if routes:
            return routes[0].uri
    return copy.uri
