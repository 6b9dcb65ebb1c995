"""Who may use the proxy for what: caller authentication decisions, pure (§22.3).

:func:`authorize` looks at an initial request, its source and the routing
decision, and answers :class:`Accept`, :class:`NeedAuth` or :class:`Forbid`:

==============================================  ================================
request                                          decision
==============================================  ================================
from a trusted source (``policy.trusted``)       accepted, no challenge
to a local user (``Local``), From one of our     challenged (407) for the methods
domains                                          of ``policy.auth_methods``
                                                 (INVITE, MESSAGE, SUBSCRIBE);
                                                 other methods accepted
to a local user, From any other domain           accepted: anyone may call our
                                                 users
anywhere else (``Relay``: a trunk, a gateway,    challenged when From is one of
another domain), From one of our domains         our domains, whatever the method
anywhere else, From another domain               403: no open relay
the hook asked for it (``Challenge``)            challenged
==============================================  ================================

A challenged request is accepted once it carries a valid
Proxy-Authorization for the realm of its From domain, of a user whose name
is the From user (an authenticated user may not speak for another: 403).
Checking the credentials reuses the registrar's rules
(``registrar.authenticate``): the same nonces (``auth.nonce``, stateless,
shared secret), the same algorithms (SHA-256, then MD5), the same answer
for an unknown user and a wrong password, ``stale=true`` only for a right
digest with an expired nonce; the nonce-count is recorded by the store
(``UseNonceCount``) so that a replayed credential is refused.

The edge looks the user up (``LookupUser``); :func:`check_proxy_credentials`
takes the stored :class:`~sipwire.registrar.model.User` it returns.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Final

from sipwire.auth.nonce import NonceIssuer
from sipwire.errors import ParseError
from sipwire.message import Headers, Request, Response, SipUri
from sipwire.message.auth_fields import parse_challenges
from sipwire.proxy.policy import ProxyPolicy, host_key
from sipwire.proxy.routes import Challenge, Decision, Local, Relay, Respond
from sipwire.registrar.authenticate import (
    OFFERED,
    AuthOutcome,
    challenge_headers,
    check_credentials,
    credentials_username,
)
from sipwire.registrar.model import User
from sipwire.registrar.rules import derived_to_tag
from sipwire.transport.address import Source

__all__ = [
    "Accept",
    "Forbid",
    "NeedAuth",
    "Verdict",
    "authorize",
    "check_proxy_credentials",
    "consume_credentials",
    "proxy_challenge",
    "proxy_credentials_username",
]


_NEVER_CHALLENGED: Final = frozenset({"ACK", "CANCEL"})


@dataclass(frozen=True, slots=True)
class Accept:
    """Go on with the request."""


@dataclass(frozen=True, slots=True)
class NeedAuth:
    """The caller must authenticate in ``realm`` (407 without valid credentials)."""

    realm: str


@dataclass(frozen=True, slots=True)
class Forbid:
    """403 (Forbidden) with ``reason``."""

    reason: str


Verdict = Accept | NeedAuth | Forbid


def from_domain(request: Request) -> str | None:
    """The host of the From URI (lower case), or None when it is not a SIP URI."""
    uri = request.from_.uri
    return host_key(uri.host) if isinstance(uri, SipUri) else None


def authorize(
    request: Request,
    source: Source,
    decision: Decision,
    *,
    domains: AbstractSet[str],
    policy: ProxyPolicy,
    authenticated: bool = False,
) -> Verdict:
    """The decision of the table in the module docstring. ``authenticated``: the
    request already proved its caller (then only the relay rule is left to pass)."""
    if isinstance(decision, Respond):
        return Accept()
    if authenticated or policy.is_trusted(source.host):
        return Accept()
    domain = from_domain(request)
    local_caller = domain is not None and domain in domains
    if request.method in _NEVER_CHALLENGED:
        # §22.1: "Servers MUST NOT attempt to challenge an ACK", nor CANCEL requests
        # "since these requests cannot be resubmitted".
        if local_caller or isinstance(decision, Local):
            return Accept()
        return Forbid("Relaying denied")
    if isinstance(decision, Challenge):
        if local_caller and domain is not None:
            return NeedAuth(domain)
        return Forbid("authentication required of a user of this domain")
    if isinstance(decision, Local):
        if local_caller and domain is not None and request.method in policy.auth_methods:
            return NeedAuth(domain)
        return Accept()
    assert isinstance(decision, Relay)
    if local_caller and domain is not None:
        return NeedAuth(domain)
    return Forbid("Relaying denied")


def _as_authorization(request: Request) -> Request:
    """A view of ``request`` whose Authorization lines are its Proxy-Authorization lines:
    what the registrar's credential checks read (§22.3 parallels §22.2)."""
    items = [
        ("authorization", "Authorization", value)
        for key, _, value in request.headers._items
        if key == "proxy-authorization"
    ]
    view = Request(request.method, request.uri, Headers._from_parsed(items), request.body)
    view._uri_text = request._uri_text
    return view


def proxy_credentials_username(request: Request, realm: str) -> str | None:
    """The username of the Proxy-Authorization for ``realm``, or None (none there)."""
    return credentials_username(_as_authorization(request), realm)


def check_proxy_credentials(
    request: Request,
    *,
    realm: str,
    issuer: NonceIssuer,
    now: float,
    user: User | None,
    algorithms: tuple[str, ...] = OFFERED,
) -> AuthOutcome:
    """``registrar.authenticate.check_credentials`` for the Proxy-Authorization of
    ``request``: :class:`~sipwire.registrar.authenticate.Authenticated` or a
    :class:`~sipwire.registrar.authenticate.Challenge` (stale or not)."""
    return check_credentials(
        _as_authorization(request),
        realm=realm,
        issuer=issuer,
        now=now,
        user=user,
        algorithms=algorithms,
    )


def proxy_challenge(
    request: Request,
    *,
    realm: str,
    issuer: NonceIssuer,
    now: float,
    stale: bool = False,
    algorithms: tuple[str, ...] = OFFERED,
) -> Response:
    """The 407 (Proxy Authentication Required) for ``request`` (§22.3): one
    Proxy-Authenticate per algorithm, most preferred first, sharing one fresh nonce."""
    headers = [
        ("Proxy-Authenticate", value)
        for _, value in challenge_headers(realm, issuer, now, stale=stale, algorithms=algorithms)
    ]
    return request.reply(407, headers=headers, to_tag=derived_to_tag(request))


def consume_credentials(request: Request, realm: str) -> None:
    """Remove the Proxy-Authorization values for ``realm`` (ours, used up); those of
    other realms stay for the proxies they belong to (§22.3)."""
    kept: list[tuple[str, str, str]] = []
    changed = False
    for item in request.headers._items:
        if item[0] == "proxy-authorization":
            try:
                parsed = parse_challenges([item[2]])
            except ParseError:
                parsed = []
            if parsed and all(c.realm == realm for c in parsed):
                changed = True
                continue
        kept.append(item)
    if changed:
        request.headers._items = kept
        request.headers._cache.pop("proxy-authorization", None)
