"""The target set of a request (RFC 3261 §16.5) and the order it is tried in (§16.6).

A :class:`TargetPlan` is a list of groups tried one after the other; the
targets of a group are forked in parallel. The next group is started when
every branch of the current one ended without a 2xx or a 6xx, and (for a
static route) with a status in the group's ``advance_on``.

- Bindings of an AOR (:func:`location_plan`): one group per q-value,
  highest first (§16.6: "Targets are processed from highest qvalue to
  lowest. Targets with equal qvalues may be processed in parallel"); a
  binding without q counts as 1.0. The Path of a binding becomes its Route
  (RFC 3327 §5.3). A binding whose Contact cannot be reached directly goes
  out on the flow its REGISTER came on (:func:`needs_flow`).
- Gateways of a route (:func:`relay_plan`): one group per gateway, in
  order, moving on only for a failover status (408, 503; a transport error
  counts as 503, §16.9).

Each URI is in the set once (§16.5: "If a target URI is already present in
the set ..., it MUST NOT be added again").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from sipwire.errors import ParseError
from sipwire.message import Request, SipUri, TelUri, Uri
from sipwire.message.address import parse_address
from sipwire.message.uri import to_uri
from sipwire.proxy.policy import ProxyPolicy, host_key
from sipwire.proxy.routes import Relay, request_user
from sipwire.proxy.routing import FlowToken
from sipwire.registrar.model import Binding
from sipwire.transport.address import Target
from sipwire.transport.rfc3263 import Locator, RandomSource, is_ip_address

__all__ = [
    "Candidate",
    "DirectHops",
    "Group",
    "TargetPlan",
    "binding_candidate",
    "location_plan",
    "needs_flow",
    "relay_plan",
]


@dataclass(frozen=True, slots=True)
class Candidate:
    """One target: the Request-URI to send with, and how to get there."""

    uri: Uri | None
    """The Request-URI (None: the request's own, unchanged)."""
    routes: tuple[str, ...] = ()
    """Route values pushed ahead of the request's (a Path, a gateway as next hop)."""
    destination: FlowToken | None = None
    """Send here whatever the Route and Request-URI say (the flow of a binding)."""
    q: float = 1.0


@dataclass(slots=True)
class Group:
    """Targets forked in parallel."""

    candidates: list[Candidate]
    advance_on: frozenset[int] | None = None
    """Statuses after which the next group is tried (None: any non-2xx, non-6xx)."""


@dataclass(slots=True)
class TargetPlan:
    """Groups tried in order, and what every forwarded copy gets."""

    groups: list[Group] = field(default_factory=list)
    add_headers: tuple[tuple[str, str], ...] = ()
    remove_headers: tuple[str, ...] = ()
    recurse: bool = False
    """3xx Contacts may be added (§16.5: only when we are responsible for the
    Request-URI, i.e. for targets from the location service)."""

    @property
    def empty(self) -> bool:
        return not any(g.candidates for g in self.groups)


DIRECT_HOPS_KEPT: Final = 4096
"""Next hops remembered by :class:`DirectHops` (all are forgotten when it is full)."""

_HopKey = tuple[str, str, int | None, str | None, str | None]


class DirectHops:
    """RFC 3263 targets of next hops that need no DNS, remembered.

    A next hop whose host (or ``maddr``) is an IP address has its one target
    from the URI alone (§4.1, §4.2: the address, the ``transport`` parameter
    or the scheme's default, the port or the transport's default), the same
    every time: it is kept by exactly the URI parts :class:`Locator` reads
    (scheme, host, port, ``maddr``, ``transport``), sparing a Locator per
    request sent to a phone's address. Names are never kept (DNS answers change).
    """

    __slots__ = ("_known", "_transports")

    def __init__(self, transports: Sequence[str]) -> None:
        self._transports = tuple(transports)
        self._known: dict[_HopKey, list[Target]] = {}

    def targets(self, hop: SipUri, rng: Callable[[], RandomSource]) -> list[Target] | None:
        """The targets of ``hop`` when they need no DNS, else None (resolve it). Raises
        SipError as ``Locator`` does for a URI it cannot use."""
        params = hop.params
        key = (hop.scheme, hop.host, hop.port, params.get("maddr"), params.get("transport"))
        known = self._known.get(key)
        if known is not None:
            return list(known)
        locator = Locator(hop, rng(), transports=self._transports)
        if not locator.done:
            return None
        targets = locator.targets()
        if len(self._known) >= DIRECT_HOPS_KEPT:
            self._known.clear()
        self._known[key] = list(targets)
        return targets


def _split_hostport(text: str) -> tuple[str, int] | None:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        return None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def needs_flow(binding: Binding, contact: SipUri) -> bool:
    """Is the Contact of ``binding`` unreachable, so that requests must take its flow?

    - a binding with a Path: no (the first Path hop, an edge proxy, holds the flow);
    - an RFC 5626 registration (reg-id): yes, always (§5.3);
    - WebSocket: yes (RFC 7118: a WS client cannot accept connections);
    - a Contact naming a host: no (it is resolved like any URI);
    - a Contact whose address or port is not the one the REGISTER came from:
      yes (a NAT, or a phone on a connection whose Contact port nobody listens on).
    """
    if binding.path or not binding.source:
        return False
    if binding.reg_id is not None or binding.transport in ("ws", "wss"):
        return True
    if not is_ip_address(contact.maddr or contact.host):
        return False
    source = _split_hostport(binding.source)
    if source is None:
        return False
    transport = contact.transport or ("tls" if contact.secure else binding.transport)
    port = contact.port if contact.port is not None else (5061 if transport == "tls" else 5060)
    return (host_key(contact.maddr or contact.host), port) != (host_key(source[0]), source[1])


def binding_candidate(binding: Binding, policy: ProxyPolicy) -> Candidate | None:
    """The target a binding gives (None when its Contact does not parse)."""
    try:
        contact = parse_address(binding.contact, what="Contact")
    except ParseError:
        return None
    uri = contact.uri
    destination: FlowToken | None = None
    if isinstance(uri, SipUri) and needs_flow(binding, uri):
        source = _split_hostport(binding.source)
        if source is not None:
            # The connection is only usable on its node (``note_flow`` tells them apart).
            destination = FlowToken(
                binding.transport, source[0], source[1], binding.flow, binding.node
            )
    q = 1.0 if binding.q is None else binding.q
    return Candidate(uri, tuple(binding.path), destination, q)


def location_plan(bindings: Iterable[Binding], policy: ProxyPolicy, now: float) -> TargetPlan:
    """The target set of a local user: its unexpired bindings, grouped by q (see the
    module docstring); at most ``policy.max_branches``. Empty when there are none."""
    candidates: list[tuple[Candidate, float]] = []
    for binding in bindings:
        if binding.expires_at <= now:
            continue
        candidate = binding_candidate(binding, policy)
        if candidate is not None:
            candidates.append((candidate, binding.registered_at))
    # Highest q first, the most recent registration first among equals.
    candidates.sort(key=lambda item: (-item[0].q, -item[1]))
    unique = _unique(c for c, _ in candidates)[: policy.max_branches]
    plan = TargetPlan(recurse=True)
    if policy.forking == "parallel":
        plan.groups.append(Group(unique))
        return plan
    for candidate in unique:
        if plan.groups and plan.groups[-1].candidates[0].q == candidate.q:
            plan.groups[-1].candidates.append(candidate)
        else:
            plan.groups.append(Group([candidate]))
    return plan


def _unique(candidates: Iterable[Candidate]) -> list[Candidate]:
    seen: list[Uri] = []
    out: list[Candidate] = []
    for candidate in candidates:
        if candidate.uri is not None and candidate.uri in seen:
            continue
        if candidate.uri is not None:
            seen.append(candidate.uri)
        out.append(candidate)
    return out


def rewrite_user(uri: Uri, strip: int, prepend: str) -> Uri:
    """The Request-URI with ``strip`` leading characters of its user removed and
    ``prepend`` put in front (number normalization)."""
    if not strip and not prepend:
        return uri
    user = request_user(uri)
    if user is None:
        return uri
    new = prepend + user[strip:]
    if isinstance(uri, SipUri):
        return SipUri(uri.host, new, uri.password, uri.port, dict(uri.params), [], uri.scheme)
    if isinstance(uri, TelUri):
        return TelUri(new, dict(uri.params))
    return uri


def _at_gateway(uri: Uri, gateway: SipUri) -> SipUri:
    """``uri``'s user at ``gateway``'s host, port and parameters (a tel URI's number
    becomes the user, with ``user=phone``, §19.1.6)."""
    user = request_user(uri)
    params = dict(gateway.params)
    if isinstance(uri, TelUri):
        params.setdefault("user", "phone")
    elif isinstance(uri, SipUri) and "user" in uri.params and "user" not in params:
        params["user"] = uri.params["user"]
    return SipUri(gateway.host, user, None, gateway.port, params, [], gateway.scheme)


def relay_plan(relay: Relay, request: Request) -> TargetPlan:
    """The plan of a :class:`~sipwire.proxy.routes.Relay` decision (see its docstring)."""
    plan = TargetPlan(add_headers=relay.add_headers, remove_headers=relay.remove_headers)
    base = rewrite_user(request.uri, relay.strip, relay.prepend)
    changed = base is not request.uri
    if not relay.targets:
        plan.groups.append(Group([Candidate(base if changed else None)], relay.failover))
        return plan
    seen: list[Uri] = []
    for target in relay.targets:
        gateway = to_uri(target)
        if not isinstance(gateway, SipUri):
            raise ValueError(f"a gateway must be a SIP URI: {target}")
        if relay.rewrite == "host":
            candidate = Candidate(_at_gateway(base, gateway))
        else:
            hop = SipUri(
                gateway.host,
                gateway.user,
                None,
                gateway.port,
                dict(gateway.params),
                [],
                gateway.scheme,
            )
            hop.params["lr"] = None
            candidate = Candidate(base if changed else None, routes=(f"<{hop}>",))
        key = candidate.uri if relay.rewrite == "host" else gateway
        if key in seen:
            continue
        seen.append(key if key is not None else gateway)
        plan.groups.append(Group([candidate], relay.failover))
    return plan


def recursion_candidates(contacts: Sequence[Uri], tried: Sequence[Uri]) -> list[Candidate]:
    """§16.7 step 5: the SIP and SIPS Contacts of a 3xx not tried yet, as targets."""
    out: list[Candidate] = []
    seen = list(tried)
    for uri in contacts:
        if isinstance(uri, SipUri) and uri not in seen:
            seen.append(uri)
            out.append(Candidate(uri))
    return out
