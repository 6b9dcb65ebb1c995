"""Where requests go: the routing table (TOML-shaped data) and the Python routing hook.

A :class:`RoutingTable` turns a request into a :data:`Decision`:

- :class:`Local`: a user of one of our domains: ask the location service;
- :class:`Relay`: forward to these targets (trunks, gateways, another
  proxy), or, without targets, to where the request itself points (its
  Route, else its Request-URI, resolved with RFC 3263);
- :class:`Respond`: answer with this status;
- :class:`Challenge`: authenticate the caller first (407), then route again.

The table is checked in this order: the hook (if any); routes by
Request-URI user prefix, longest prefix first, whatever the domain (so
``sip:+4930123@example.com`` reaches the PSTN gateway); our domains (the
location service); routes by domain; the default route; else the
Request-URI itself (§16.5: "If the domain of the Request-URI indicates a
domain this element is not responsible for, the Request-URI MUST be placed
into the target set as the only target"). Whether a caller may use a route
(who is relaying, who must authenticate) is ``authz.py``'s decision, made
on the result.

The TOML shape, read by :meth:`RoutingTable.from_mapping` (``from_toml``
parses the text with ``tomllib``)::

    domains = ["example.com"]           # served from the location service

    [[routes]]
    name = "pstn"
    prefixes = ["+49", "0049"]           # Request-URI user prefixes
    gateways = ["sip:gw1.carrier.net", "sip:gw2.carrier.net;transport=tcp"]
    failover = [408, 503]                # next gateway on these (and transport errors)
    strip = 0                            # digits removed from the user ...
    prepend = ""                         # ... and what is put in front
    rewrite = "host"                     # the gateway becomes the Request-URI host;
                                         # "none": it is only the next hop (a Route)
    [[routes]]
    name = "partner"
    domains = ["partner.example"]
    gateways = ["sip:sbc.partner.example"]

    [[routes]]
    name = "premium"
    prefixes = ["+49900"]
    respond = 403                        # answer instead of forwarding

    [default]                            # anything else not ours; omit to use DNS
    gateways = ["sip:upstream.example.net"]

The hook
--------
``hook(request, ctx) -> Decision | None`` is plain Python an operator
writes; None means "continue with the table". It runs inside the sans-I/O
proxy, so it must be synchronous and quick, and must not do I/O: what needs
a database or DNS is expressed as a decision the proxy turns into events
for the edge (``Local(aor)`` makes a location lookup, ``Relay(["sip:gw.example"])``
an RFC 3263 resolution). Time comes from ``ctx.wall_time``. Examples::

    BLOCKED = {"sip:spam@bad.example"}

    def route(request, ctx):
        if str(request.from_.uri) in BLOCKED:                  # a blacklist
            return Respond(603, "Declined")
        user = getattr(request.uri, "user", None) or ""
        if user.startswith("0") and not user.startswith("00"):  # number normalization
            return Relay(["sip:gw.carrier.net"], strip=1, prepend="+4930")
        hour = time.gmtime(ctx.wall_time).tm_hour              # time-of-day routing
        if user == "support" and not 8 <= hour < 18:
            return Local("sip:voicemail@example.com")
        return None                                            # the table decides
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeAlias

from sipwire.message import Request, SipUri, TelUri, Uri
from sipwire.message.uri import parse_uri
from sipwire.proxy.policy import host_key
from sipwire.registrar.rules import canonical_aor
from sipwire.transport.address import Source

__all__ = [
    "Challenge",
    "Decision",
    "Local",
    "Relay",
    "Respond",
    "RouteContext",
    "RouteHook",
    "RoutingTable",
    "StaticRoute",
    "request_user",
]

FAILOVER: Final = frozenset({408, 503})
"""Statuses that move a route on to its next gateway (with transport errors, a 503)."""


@dataclass(frozen=True, slots=True)
class Local:
    """A user of our domains: the targets are the bindings of ``aor`` (None: the
    Request-URI's AOR, canonicalized as §10.3 says)."""

    aor: str | None = None


@dataclass(frozen=True, slots=True)
class Relay:
    """Forward to ``targets`` in order, the next one on a ``failover`` status.

    Empty ``targets``: forward to where the request points (its Route, else its
    Request-URI). ``rewrite="host"`` puts each target's host, port and transport
    into the Request-URI (keeping its user); ``"none"`` leaves the Request-URI
    and pushes the target as a loose Route (§16.6 step 6). ``strip`` / ``prepend``
    rewrite the Request-URI user (number normalization). ``add_headers`` and
    ``remove_headers`` are the optional headers of §16.6 step 5.
    """

    targets: Sequence[Uri | str] = ()
    failover: frozenset[int] = FAILOVER
    rewrite: Literal["host", "none"] = "host"
    strip: int = 0
    prepend: str = ""
    add_headers: tuple[tuple[str, str], ...] = ()
    remove_headers: tuple[str, ...] = ()
    name: str = ""


@dataclass(frozen=True, slots=True)
class Respond:
    """Answer the request with ``status`` (and ``headers``) instead of forwarding it."""

    status: int
    reason: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Challenge:
    """Authenticate the caller (407) before routing; the hook is asked again afterwards,
    with ``ctx.user`` set."""


Decision: TypeAlias = Local | Relay | Respond | Challenge


@dataclass(frozen=True, slots=True)
class RouteContext:
    """What a routing decision may look at besides the request."""

    source: Source
    """How the request arrived."""
    now: float
    """The proxy's clock (monotonic seconds, as passed to the proxy)."""
    wall_time: float
    """Seconds since the epoch: for time-of-day routing."""
    domains: frozenset[str]
    """Our domains, lower case."""
    user: str | None = None
    """The authenticated username of the caller, once authenticated."""

    def is_local(self, host: str) -> bool:
        return host_key(host) in self.domains


RouteHook: TypeAlias = Callable[[Request, RouteContext], Decision | None]


@dataclass(frozen=True, slots=True)
class StaticRoute:
    """One ``[[routes]]`` entry (see the module docstring)."""

    name: str = ""
    gateways: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    failover: frozenset[int] = FAILOVER
    strip: int = 0
    prepend: str = ""
    rewrite: Literal["host", "none"] = "host"
    respond: int | None = None

    def __post_init__(self) -> None:
        for gateway in self.gateways:
            if not isinstance(parse_uri(gateway), SipUri):
                raise ValueError(f"route {self.name!r}: gateway {gateway!r} is not a SIP URI")
        if not self.gateways and self.respond is None:
            raise ValueError(f"route {self.name!r} has neither gateways nor respond")
        if self.respond is not None and not 300 <= self.respond <= 699:
            raise ValueError(f"route {self.name!r}: respond must be 300 to 699")
        if self.rewrite not in ("host", "none"):
            raise ValueError(f"route {self.name!r}: rewrite is 'host' or 'none'")
        object.__setattr__(self, "domains", tuple(host_key(d) for d in self.domains))

    def decision(self) -> Decision:
        if self.respond is not None:
            return Respond(self.respond)
        return Relay(
            self.gateways,
            failover=self.failover,
            rewrite=self.rewrite,
            strip=self.strip,
            prepend=self.prepend,
            name=self.name,
        )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], default_name: str = "") -> StaticRoute:
        known = {
            "name",
            "gateways",
            "prefixes",
            "domains",
            "failover",
            "strip",
            "prepend",
            "rewrite",
            "respond",
        }
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"route {default_name!r}: unknown keys {sorted(unknown)}")
        return cls(
            name=str(data.get("name", default_name)),
            gateways=_strings(data.get("gateways", ()), "gateways"),
            prefixes=_strings(data.get("prefixes", ()), "prefixes"),
            domains=_strings(data.get("domains", ()), "domains"),
            failover=frozenset(int(s) for s in data.get("failover", FAILOVER)),
            strip=int(data.get("strip", 0)),
            prepend=str(data.get("prepend", "")),
            rewrite=data.get("rewrite", "host"),
            respond=None if data.get("respond") is None else int(data["respond"]),
        )


def _strings(value: object, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, Iterable):
        raise ValueError(f"{what} must be a list of strings")
    out = tuple(str(v) for v in value)
    return out


def request_user(uri: Uri) -> str | None:
    """The user a Request-URI names: its user part, or a tel URI's number."""
    if isinstance(uri, SipUri):
        return uri.user
    if isinstance(uri, TelUri):
        return uri.digits
    return None


@dataclass(frozen=True, slots=True)
class RoutingTable:
    """Our domains, the static routes, the default route and the hook."""

    domains: frozenset[str] = frozenset()
    routes: tuple[StaticRoute, ...] = ()
    default: StaticRoute | None = None
    hook: RouteHook | None = None
    _prefixes: tuple[tuple[str, StaticRoute], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        domains: object = self.domains
        if isinstance(domains, str):
            raise TypeError("domains must be a set of host names, not one string")
        object.__setattr__(self, "domains", frozenset(host_key(d) for d in self.domains))
        object.__setattr__(self, "routes", tuple(self.routes))
        prefixes = [(p, r) for r in self.routes for p in r.prefixes]
        prefixes.sort(key=lambda item: -len(item[0]))
        object.__setattr__(self, "_prefixes", tuple(prefixes))

    def serves(self, host: str) -> bool:
        """True for one of our domains."""
        return host_key(host) in self.domains

    def decide(
        self, request: Request, ctx: RouteContext, *, hook_only: bool = False
    ) -> Decision | None:
        """The decision for an initial request (see the module docstring for the order).

        ``hook_only``: ask the hook alone (None when it has nothing to say): for a
        request addressed to the proxy itself, which only the hook may route (e.g. a
        REGISTER sent on to a registrar farm)."""
        if self.hook is not None:
            decision = self.hook(request, ctx)
            if decision is not None:
                return decision
        if hook_only:
            return None
        uri = request.uri
        user = request_user(uri)
        if user:
            for prefix, route in self._prefixes:
                if user.startswith(prefix):
                    return route.decision()
        if isinstance(uri, SipUri):
            host = host_key(uri.host)
            if host in self.domains:
                return Local(canonical_aor(uri))
            for route in self.routes:
                if host in route.domains:
                    return route.decision()
        if self.default is not None:
            return self.default.decision()
        if isinstance(uri, SipUri):
            return Relay()
        return Respond(404, "No route")

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], *, hook: RouteHook | None = None
    ) -> RoutingTable:
        """The table from TOML-shaped data (see the module docstring); ValueError when
        malformed."""
        unknown = set(data) - {"domains", "routes", "default"}
        if unknown:
            raise ValueError(f"unknown routing keys {sorted(unknown)}")
        routes = tuple(
            StaticRoute.from_mapping(r, default_name=f"route{i + 1}")
            for i, r in enumerate(data.get("routes", ()))
        )
        default_data = data.get("default")
        default = (
            None
            if default_data is None
            else StaticRoute.from_mapping(default_data, default_name="default")
        )
        return cls(
            domains=frozenset(_strings(data.get("domains", ()), "domains")),
            routes=routes,
            default=default,
            hook=hook,
        )

    @classmethod
    def from_toml(cls, text: str, *, hook: RouteHook | None = None) -> RoutingTable:
        """Parse ``text`` (TOML) and build the table (``tomllib`` is pure)."""
        return cls.from_mapping(tomllib.loads(text), hook=hook)
