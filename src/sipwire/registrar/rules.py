"""The registrar's rules (RFC 3261 §10.3), with Path (RFC 3327), Service-Route
(RFC 3608) and outbound (RFC 5626), as pure functions.

An asyncio server handles one REGISTER as::

    rejection = check_register(request, policy)           # steps 1, 2 and 5's 404
    ...authenticate in register_realm(request, policy)    # step 3 (authenticate.py)
    current = await store.bindings(canonical_aor(request.to.uri), now)
    outcome = plan(request, current, now=now, policy=policy, source=source,
                   node=node, auth_user=user)             # steps 4 to 7
    if isinstance(outcome, Rejection): send outcome.response(request, to_tag=...)
    after = await store.apply(outcome.aor, outcome.change, now)
    send ok_response(request, after, now=now, policy=policy, date=sip_date(now))  # step 8

§10.3 asks that a REGISTER be "processed atomically ... either processed
completely or not at all": :func:`plan` returns one :class:`BindingChange`
for the store to apply in one transaction, or a :class:`Rejection` and no
change at all. Nothing here reads a clock: ``now`` is wall-clock seconds.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from sipwire.errors import ParseError
from sipwire.message.address import Address, parse_address, parse_address_list
from sipwire.message.message import Request, Response
from sipwire.message.params import int_param, unquote
from sipwire.message.uri import AbsoluteUri, SipUri, TelUri, Uri, escape, to_uri
from sipwire.message.validate import Policy, Rejection, Role, check_request
from sipwire.registrar.model import Binding, BindingChange
from sipwire.registrar.policy import ONE_HOUR, RegistrarPolicy, host_key
from sipwire.transport.address import Source

__all__ = [
    "MALFORMED_EXPIRES",
    "Plan",
    "Rejection",
    "binding_key",
    "canonical_aor",
    "check_register",
    "ok_response",
    "plan",
    "register_realm",
    "sip_date",
]

MALFORMED_EXPIRES: Final = 3600
"""§10.2: a malformed Contact ``expires`` "SHOULD be treated as equivalent to 3600"."""
_REG_ID_MAX: Final = 2**31 - 1  # RFC 5626 §10: reg-id = 1*DIGIT, 1 to 2**31-1
# §19.1.4: these make two SIP URIs differ when only one of them has it.
_SIGNIFICANT_PARAMS: Final = ("maddr", "method", "transport", "ttl", "user")
# §19.1.2, the characters the user and password parts may carry unescaped.
_USER_SAFE: Final = "-_.!~*'()&=+$,;?/"
_PASSWORD_SAFE: Final = "-_.!~*'()&=+$,"
_ONLY_REGISTER: Final = frozenset({"REGISTER"})


@dataclass(frozen=True, slots=True)
class Plan:
    """What an accepted REGISTER does: apply ``change`` to ``aor``, then answer 200."""

    aor: str
    """The canonical address-of-record (:func:`canonical_aor` of the To URI)."""
    change: BindingChange
    """Empty for a query (a REGISTER without Contact, §10.2.3)."""

    @property
    def is_query(self) -> bool:
        """True when the REGISTER changes nothing and only fetches the bindings."""
        change = self.change
        return not (change.remove or change.upsert or change.remove_all)


# -- names: the AOR and the binding key ----------------------------------------------------


def canonical_aor(uri: Uri | str) -> str:
    """The index of an address-of-record in the location service (§10.3 step 5).

    "all URI parameters MUST be removed (including the user-param), and any
    escaped characters MUST be converted to their unescaped form": parameters
    and URI headers go, the user is written with only the escapes its grammar
    needs (``sip:%61lice@Example.COM;user=phone`` is ``sip:alice@example.com``),
    the host is lower-cased. The password (deprecated, §19.1.1) and the port
    go too: an AOR names a user in a domain, and step 5 judges it by domain.

    ``sips:`` is folded into ``sip:``. RFC 5630 §4.1 (which updates RFC
    3261): "the sip:bob@example.com and sips:bob@example.com AORs refer to the
    same user ... When Bob registers, it therefore does not really matter if
    he is using a SIP or a SIPS AOR"; the §19.1.4 rule that SIP and SIPS URIs
    are never equivalent applies to the Contact bindings, which keep their
    scheme (:func:`binding_key`). Raises ValueError for a URI that is not
    SIP or SIPS (§10.2: the AOR "MUST be a SIP URI or SIPS URI").
    """
    parsed = to_uri(uri)
    if not isinstance(parsed, SipUri):
        raise ValueError(f"an address-of-record is a SIP or SIPS URI: {parsed}")
    return str(SipUri(host_key(parsed.host), parsed.user))


def binding_key(contact: Address | str, *, outbound: bool = True) -> str:
    """The identity of a binding within its AOR: equal keys mean the same binding.

    RFC 5626 §6: when the Contact has both ``+sip.instance`` and ``reg-id``
    (and ``outbound``, the registrar's decision that outbound processing
    applies, is true), the binding is "between an AOR and the combination of
    the instance-id ... and the value of reg-id", whatever the Contact URI:
    the key is ``<instance-id>;reg-id=N``.

    Otherwise the Contact URI, compared as §19.1.4 says, written as a
    string: scheme, user and password exactly (after unescaping), the host
    case-insensitively, the port when present (an explicit port never
    equals an absent one), the ``maddr``, ``method``, ``transport``,
    ``ttl`` and ``user`` parameters (lower-cased values) and the URI
    headers. §19.1.4 compares other parameters only when both URIs carry
    them, which no single string can express; they are left out, so a
    re-registration that changes or drops, say, ``;rinstance`` or ``;ob``
    refreshes the binding rather than adding a second one. A ``tel:``
    Contact compares as RFC 3966 §4 says; other schemes byte for byte.
    """
    address = parse_address(contact, what="Contact") if isinstance(contact, str) else contact
    if outbound:
        instance = instance_id(address)
        reg_id = None if instance is None else reg_id_of(address)
        if instance is not None and reg_id is not None:
            return f"<{instance}>;reg-id={reg_id}"
    return _uri_key(address.uri)


def _uri_key(uri: Uri) -> str:
    if isinstance(uri, SipUri):
        out = [uri.scheme, ":"]
        if uri.user is not None:
            out.append(escape(uri.user, _USER_SAFE))
            if uri.password is not None:
                out += (":", escape(uri.password, _PASSWORD_SAFE))
            out.append("@")
        out.append(host_key(uri.host))
        if uri.port is not None:
            out.append(f":{uri.port}")
        for name in _SIGNIFICANT_PARAMS:
            if name in uri.params:
                value = uri.params[name]
                out.append(f";{name}" if value is None else f";{name}={value.lower()}")
        if uri.headers:
            pairs = sorted((n.lower(), v) for n, v in uri.headers)
            out.append("?" + "&".join(f"{n}={escape(v, '')}" for n, v in pairs))
        return "".join(out)
    if isinstance(uri, TelUri):
        params = "".join(
            f";{k}" if v is None else f";{k}={v.lower()}" for k, v in sorted(uri.params.items())
        )
        return f"tel:{uri.digits.lower()}{params}"
    assert isinstance(uri, AbsoluteUri)
    return f"{uri.scheme}:{uri.opaque}"


def instance_id(contact: Address) -> str | None:
    """The instance-id of a Contact: its ``+sip.instance`` URN without quotes and
    angle brackets (RFC 5626 §4.1), or None. ``urn:uuid:`` URNs are lower-cased
    (RFC 4122 §3: hex digits compare case-insensitively)."""
    value = contact.params.get("+sip.instance")
    if value is None:
        return None
    text = unquote(value).strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    if not text:
        return None
    return text.lower() if text.lower().startswith("urn:uuid:") else text


def reg_id_of(contact: Address) -> int | None:
    """The ``reg-id`` of a Contact (RFC 5626 §4.2), or None when absent.

    Raises ParseError (400) for a value that is not 1 to 2**31-1.
    """
    if "reg-id" not in contact.params:
        return None
    value = int_param(contact.params["reg-id"], "reg-id", _REG_ID_MAX, clamp=False)
    if value is None or value < 1:
        raise ParseError(f"malformed reg-id: {contact.params['reg-id']!r}")
    return value


# -- steps 1, 2 and 5: is this REGISTER for us at all --------------------------------------


def check_register(request: Request, policy: RegistrarPolicy) -> Rejection | None:
    """The checks that come before authentication; None means go on.

    §8.2 and §10.3 step 2 through :func:`sipwire.message.validate.check_request`
    (405 for another method, 420 for a Require naming an extension outside
    ``policy.extensions``, 400 for a To that is not a SIP or SIPS URI or a
    malformed Contact); step 1: the Request-URI must name a served domain;
    step 5: so must the To URI ("If the address-of-record is not valid for
    the domain in the Request-URI, the registrar MUST send a 404"). Both
    give 404. A registrar that is not also a proxy does not forward a
    REGISTER for a foreign domain (step 1's SHOULD is for proxies).

    Run before the Digest challenge, so that a foreign domain is refused
    without one.
    """
    rejection = check_request(request, _request_policy(policy.extensions))
    if rejection is not None:
        return rejection
    try:
        uri = request.uri
        if not isinstance(uri, SipUri):
            return Rejection(416, f"a registrar serves SIP and SIPS URIs, not {uri.scheme}")
        if not policy.serves(uri.host):
            return Rejection(404, f"domain {uri.host} is not served here")
        to_uri_ = request.to.uri
        if not isinstance(to_uri_, SipUri):  # check_request has said so already
            return Rejection(400, "address-of-record must be a SIP or SIPS URI")
        if not policy.serves(to_uri_.host):
            return Rejection(404, f"address-of-record domain {to_uri_.host} is not served here")
    except ParseError as exc:
        return Rejection(400, exc.reason)
    return None


@functools.lru_cache(maxsize=16)
def _request_policy(extensions: AbstractSet[str]) -> Policy:
    """The §8.2 checks of a registrar with these extensions, made once per set."""
    return Policy(role=Role.REGISTRAR, methods=_ONLY_REGISTER, extensions=frozenset(extensions))


def register_realm(request: Request, policy: RegistrarPolicy) -> str:
    """The Digest realm to authenticate a REGISTER in: that of the AOR's domain.

    Users are kept per domain with HA1 over ``name:domain:password``, so the
    To host decides (``policy.realm_for``). Call after :func:`check_register`.
    """
    to = request.to.uri
    if not isinstance(to, SipUri):
        raise ValueError(f"an address-of-record is a SIP or SIPS URI: {to}")
    return policy.realm_for(to.host)


# -- steps 4 to 7 --------------------------------------------------------------------------


def plan(
    request: Request,
    current: Sequence[Binding],
    *,
    now: float,
    policy: RegistrarPolicy,
    source: Source,
    node: str = "",
    auth_user: str | None,
    checked: bool = False,
) -> Plan | Rejection:
    """Decide what a REGISTER does to the bindings of its AOR (§10.3 steps 2 - 7).

    ``current`` are the AOR's unexpired bindings (``store.bindings``);
    ``source`` is how the REGISTER arrived and ``node`` the name of the
    node that took it (recorded in the bindings for flows, RFC 5626 §6);
    ``auth_user`` the Digest username the server authenticated in
    :func:`register_realm`, or None when it did not authenticate.

    Returns a :class:`Plan` (a REGISTER without Contact is a query: an
    empty change) or a :class:`Rejection`: 400 (malformed Contact, Expires,
    q, reg-id or Path; ``*`` not alone or without ``Expires: 0``; several
    Contacts with a reg-id, RFC 5626 §6), 403 (step 4: another user's AOR;
    or ``policy.max_contacts`` exceeded), 404 / 405 / 416 / 420 (see
    :func:`check_register`), 420 (Path from a UA that did not announce
    ``path``, RFC 3327 §5.3), 423 with Min-Expires (step 7), 439 (reg-id
    and outbound with a first hop that does not do outbound, RFC 5626 §6),
    500 (step 7: the request is older than a binding it would change).
    ``checked=True``: :func:`check_register` passed this request already.
    """
    if not checked:
        rejection = check_register(request, policy)
        if rejection is not None:
            return rejection
    try:
        return _plan(request, current, now, policy, source, node, auth_user)
    except ParseError as exc:
        return Rejection(400, exc.reason)


def _plan(
    request: Request,
    current: Sequence[Binding],
    now: float,
    policy: RegistrarPolicy,
    source: Source,
    node: str,
    auth_user: str | None,
) -> Plan | Rejection:
    aor = canonical_aor(request.to.uri)
    refused = _authorize(request, aor, policy, auth_user)
    if refused is not None:
        return refused
    supported = request.supported
    path = _path(request)
    if path and "path" not in supported and policy.path_requires_support:
        # RFC 3327 §5.3: "The recommended policy is for the registrar to reject the
        # request with a 420 "Bad Extension" response indicating the Path extension."
        return Rejection(420, "Path without Supported: path", (("Unsupported", "path"),))
    if "contact" not in request.headers:
        return Plan(aor, BindingChange())  # §10.2.3 fetching bindings; step 6 skips to 8
    live = [b for b in current if b.expires_at > now]
    call_id = request.call_id
    cseq = request.cseq.seq
    if request.contact_is_wildcard:
        return _remove_all(aor, request, live, call_id, cseq)
    contacts = request.contact
    if not contacts:
        return Rejection(400, "empty Contact header")
    outbound = _outbound_applies(request, path)
    if not outbound and "outbound" in supported and any("reg-id" in c.params for c in contacts):
        # RFC 5626 §6: not the first hop, and the Path does not start with ;ob.
        return Rejection(439, "first hop lacks outbound support")
    header_expires = request.expires
    requested: list[tuple[Address, int, str]] = []
    for contact in contacts:
        expires = _requested_expires(contact, header_expires, policy)
        # §10.3 step 7: "If and only if the requested expiration interval is greater
        # than zero AND smaller than one hour AND less than a registrar-configured
        # minimum, the registrar MAY reject the registration with ... 423".
        if 0 < expires < ONE_HOUR and expires < policy.min_expires:
            return Rejection(
                423, "expiration too brief", (("Min-Expires", str(policy.min_expires)),)
            )
        if "q" in contact.params and contact.q is None:
            raise ParseError(f"malformed q value: {contact.params['q']!r}")
        requested.append((contact, expires, binding_key(contact, outbound=outbound)))
    registering = [c for c, e, _ in requested if e > 0]
    if len(registering) > 1 and any(_flow_bound(c, outbound) for c in registering):
        # RFC 5626 §6: "if the Contact header field contains more than one header field
        # value with a non-zero expiration and any of these ... contain a reg-id ...
        # the entire registration SHOULD be rejected with a 400 (Bad Request)".
        return Rejection(400, "a Contact with reg-id must be the only one registered")
    by_key = {b.key: b for b in live}
    remove: dict[str, None] = {}
    upsert: dict[str, Binding] = {}
    for contact, expires, key in requested:
        existing = by_key.get(key)
        # §10.3 step 7: "If the Call-ID value in the existing binding differs from the
        # Call-ID value in the request, the binding MUST be removed if the expiration
        # time is zero and updated otherwise. If they are the same, the registrar
        # compares the CSeq value. If the value is higher than that of the existing
        # binding, it MUST update or remove the binding as above. If not, the update
        # MUST be aborted and the request fails."
        if existing is not None and existing.call_id == call_id and cseq <= existing.cseq:
            return _out_of_order(existing)
        if expires == 0:
            upsert.pop(key, None)
            if existing is not None:
                remove[key] = None
            continue
        remove.pop(key, None)
        granted = min(expires, policy.max_expires)
        upsert[key] = _binding(
            request, aor, contact, key, now + granted, path, source, node, outbound, now
        )
    after = (by_key.keys() - remove.keys()) | upsert.keys()
    if len(after) > policy.max_contacts and upsert.keys() - by_key.keys():
        return Rejection(403, f"at most {policy.max_contacts} contacts per address-of-record")
    return Plan(aor, BindingChange(remove=tuple(remove), upsert=tuple(upsert.values())))


def _authorize(
    request: Request, aor: str, policy: RegistrarPolicy, auth_user: str | None
) -> Rejection | None:
    """§10.3 step 4: may this user change the bindings of ``aor``?

    Without third-party registration, the To user must be the authenticated
    user. A server that does not authenticate (``require_auth`` off) takes
    the From address as the asserted identity (step 3: "the registrar MAY
    take the From address as the asserted identity of the originator"). An
    unauthenticated request to a registrar that requires authentication is
    refused: the server should have challenged it.
    """
    if auth_user is None:
        if policy.require_auth:
            return Rejection(403, "not authenticated")
        if policy.allow_third_party or canonical_aor(request.from_.uri) == aor:
            return None
        return Rejection(403, "From is not the address-of-record")
    if policy.allow_third_party:
        return None
    to = request.to.uri
    if isinstance(to, SipUri) and to.user == auth_user:
        return None
    return Rejection(403, f"{auth_user} may not register {aor}")


def _path(request: Request) -> tuple[str, ...]:
    """The Path values of the request, in order (RFC 3327 §4); ParseError when malformed."""
    values = request.headers.get_all("path")
    if not values:
        return ()
    return tuple(str(a) for a in parse_address_list(values, "Path"))


def _outbound_applies(request: Request, path: tuple[str, ...]) -> bool:
    """RFC 5626 §6: outbound processing applies when the registrar is the first hop
    (one Via), or when the first Path URI carries ``ob``."""
    if len(request.via) <= 1:
        return True
    if not path:
        return False
    first = parse_address(path[0], what="Path").uri
    return isinstance(first, SipUri) and "ob" in first.params


def _flow_bound(contact: Address, outbound: bool) -> bool:
    """True when this Contact registers one flow: instance-id and reg-id, outbound applying.
    (RFC 5626 §6: a reg-id without instance-id, or with outbound not applying, is ignored.)"""
    return outbound and instance_id(contact) is not None and reg_id_of(contact) is not None


def _requested_expires(contact: Address, header: int | None, policy: RegistrarPolicy) -> int:
    """§10.3 step 7: the Contact's ``expires``, else the Expires header, else the default."""
    if "expires" in contact.params:
        value = contact.expires
        return MALFORMED_EXPIRES if value is None else value
    if header is not None:
        return header
    return policy.default_expires


def _remove_all(
    aor: str, request: Request, live: list[Binding], call_id: str, cseq: int
) -> Plan | Rejection:
    """§10.3 step 6: ``Contact: *`` removes every binding of the AOR.

    Only with ``Expires: 0`` ("If the request has additional Contact fields
    or an expiration time other than zero, the request is invalid, and the
    server MUST return a 400"); a binding set by the same Call-ID with a
    CSeq not lower than the request's aborts it ("Otherwise, the update
    MUST be aborted and the request fails"). ``remove`` lists the keys that
    were checked; ``remove_all`` tells the store to drop every binding.
    """
    if request.expires != 0:
        return Rejection(400, "Contact: * needs Expires: 0")
    for binding in live:
        if binding.call_id == call_id and cseq <= binding.cseq:
            return _out_of_order(binding)
    return Plan(aor, BindingChange(remove=tuple(b.key for b in live), remove_all=True))


def _out_of_order(binding: Binding) -> Rejection:
    """The failure of §10.3 steps 6 and 7 for a REGISTER older than ``binding``.

    §10.3 says only that "the request fails". 500 is what §12.2.2 prescribes
    for the same situation inside a dialog (a request whose CSeq is lower
    than the last one seen "is out of order and MUST be rejected with a 500
    (Server Internal Error) response"); no binding changes.
    """
    return Rejection(500, f"CSeq not above {binding.cseq} of the binding's last REGISTER")


def _binding(
    request: Request,
    aor: str,
    contact: Address,
    key: str,
    expires_at: float,
    path: tuple[str, ...],
    source: Source,
    node: str,
    outbound: bool,
    now: float,
) -> Binding:
    """The binding a Contact makes; it records the Call-ID and CSeq (§10.3 step 7),
    the Path (RFC 3327 §5.3), and the flow it arrived on (RFC 5626 §6)."""
    params = {k: v for k, v in contact.params.items() if k != "expires"}
    return Binding(
        aor=aor,
        contact=str(Address(contact.uri, contact.display_name, params)),
        key=key,
        expires_at=expires_at,
        call_id=request.call_id,
        cseq=request.cseq.seq,
        q=contact.q,
        path=path,
        instance_id=instance_id(contact),
        reg_id=reg_id_of(contact) if _flow_bound(contact, outbound) else None,
        transport=source.transport.lower(),
        source=_host_port(source.host, source.port),
        local=_host_port(source.local_host, source.local_port) if source.local_host else "",
        node=node,
        flow=source.flow,
        user_agent=request.user_agent or "",
        registered_at=now,
    )


def _host_port(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"{shown}:{port}"


# -- step 8: the 200 -----------------------------------------------------------------------


def ok_response(
    request: Request,
    bindings_after: Iterable[Binding],
    *,
    now: float,
    policy: RegistrarPolicy,
    date: str | None = None,
    to_tag: str | None = None,
) -> Response:
    """The 200 (OK) to an accepted REGISTER (§10.3 step 8).

    - every current binding as a Contact whose ``expires`` is its remaining
      time ("The response MUST contain Contact header field values
      enumerating all current bindings. Each Contact value MUST feature an
      expires parameter"), with its ``q``, highest q first;
    - ``Date`` when ``date`` is given (step 8 "SHOULD include a Date";
      :func:`sip_date` formats one);
    - the request's Path, when the UA supports ``path`` (RFC 3327 §5.3: "The
      registrar copies the Path header field values into a Path header field
      in the successful (200 class) REGISTER response");
    - Service-Route when the policy has one (RFC 3608 §6.3, queries included);
    - ``Require: outbound`` when a Contact was bound to a flow and the UA
      listed ``outbound`` in Supported (RFC 5626 §6), and ``Supported`` with
      the registrar's extensions;
    - a To tag (§8.2.6.2): ``to_tag``, or one derived from the request;
    - no Record-Route (§10.3: "Registrars MUST NOT include a Record-Route
      header field in any response to a REGISTER request").
    """
    headers: list[tuple[str, str]] = []
    live = [b for b in bindings_after if b.remaining(now) > 0]
    live.sort(key=lambda b: (-(1.0 if b.q is None else b.q), b.key))
    for binding in live:
        headers.append(("Contact", _contact_value(binding, now)))
    if date is not None:
        headers.append(("Date", date))
    supported = request.supported
    path = _path(request)
    if path and "path" in supported:
        headers.append(("Path", ", ".join(path)))
    for route in policy.service_route:
        headers.append(("Service-Route", route))
    if "outbound" in supported and _uses_outbound(request, path):
        headers.append(("Require", "outbound"))
    if policy.extensions:
        headers.append(("Supported", ", ".join(sorted(policy.extensions))))
    response = request.reply(200, headers=headers, to_tag=to_tag or derived_to_tag(request))
    response.headers.remove("Record-Route")
    return response


def _contact_value(binding: Binding, now: float) -> str:
    address = parse_address(binding.contact, what="Contact")
    params = {k: v for k, v in address.params.items() if k not in ("expires", "q")}
    if binding.q is not None:
        params["q"] = _format_q(binding.q)
    params["expires"] = str(binding.remaining(now))
    return str(Address(address.uri, address.display_name, params))


def _format_q(q: float) -> str:
    """A qvalue as §25.1 writes it: ``0`` to ``1`` with at most three decimals."""
    text = f"{q:.3f}".rstrip("0").rstrip(".")
    return text or "0"


def _uses_outbound(request: Request, path: tuple[str, ...]) -> bool:
    """True when some Contact of the request was bound to a flow (RFC 5626 §6)."""
    if "contact" not in request.headers or request.contact_is_wildcard:
        return False
    outbound = _outbound_applies(request, path)
    return any(_flow_bound(c, outbound) for c in request.contact)


def derived_to_tag(request: Request) -> str:
    """A To tag for a response to ``request``, derived from its Call-ID, From tag and
    branch: each REGISTER transaction gets its own, with no random source needed."""
    top = request.top_via
    branch = (top.branch or "") if top is not None else ""
    seed = "\x00".join((request.call_id, request.from_.tag or "", branch))
    return hashlib.sha256(seed.encode("utf-8", "surrogateescape")).hexdigest()[:16]


_WKDAY: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTH: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def sip_date(now: float) -> str:
    """``now`` as a Date header value (§20.17): rfc1123-date, always in GMT.

    ``sip_date(0)`` is ``Thu, 01 Jan 1970 00:00:00 GMT``; English names
    whatever the locale.
    """
    t = datetime.fromtimestamp(int(now), UTC)
    return (
        f"{_WKDAY[t.weekday()]}, {t.day:02d} {_MONTH[t.month - 1]} {t.year:04d} "
        f"{t.hour:02d}:{t.minute:02d}:{t.second:02d} GMT"
    )
