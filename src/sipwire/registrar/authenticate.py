"""The registrar's Digest decision (RFC 3261 §22.4, RFC 7616, RFC 8760), pure.

An asyncio server authenticates a REGISTER as::

    realm = register_realm(request, policy)                  # rules.py
    credentials = credentials_for(request, realm)            # parsed once
    name = username_of(credentials)
    user = await store.get_user(name, realm) if name else None
    outcome = check_digest(request, credentials, realm=realm, issuer=issuer, now=now,
                           user=user)
    if isinstance(outcome, Authenticated):
        if not await store.use_nonce_count(outcome.nonce, outcome.nc, outcome.expires_at):
            outcome = Challenge(stale=False)                 # a replayed nc
    if isinstance(outcome, Challenge):
        send challenge_response(request, realm=realm, issuer=issuer, now=now,
                                stale=outcome.stale)

The challenge offers SHA-256 first and MD5 second, one WWW-Authenticate
each, both with ``qop="auth"`` (RFC 8760 §2.3: "The UAS MUST add these
header fields to the response in the order in which it would prefer to see
them used"; §2.6 item 8: "A UAS MUST always send a qop parameter").

An unknown user and a known user with a wrong password get the same
answer: a 401 with a fresh challenge and ``stale=false``, after the same
hashing (the unknown user's credential is checked against a dummy HA1).
``stale=true`` is only ever sent for a correct digest computed with an
expired nonce of ours (RFC 7616 §3.3: "The server SHOULD only set stale to
TRUE if it receives a request for which the nonce is invalid and with a
valid digest for that nonce"), so it says nothing about who exists either.
The user look-up is the server's; a store that answers "no such user"
much faster than it returns one would still leak, which this module cannot
see.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from sipwire.auth.algorithms import find_algorithm
from sipwire.auth.ha1 import ha1_table, verify_ha1
from sipwire.auth.nonce import NonceIssuer, NonceState, parse_nc
from sipwire.auth.server import make_challenge
from sipwire.errors import ParseError
from sipwire.message.auth_fields import Credentials, parse_challenges
from sipwire.message.message import Request, Response
from sipwire.message.uri import parse_uri
from sipwire.registrar.model import User
from sipwire.registrar.policy import host_key
from sipwire.registrar.rules import derived_to_tag

__all__ = [
    "OFFERED",
    "AuthOutcome",
    "Authenticated",
    "Challenge",
    "challenge_headers",
    "challenge_response",
    "check_credentials",
    "check_digest",
    "credentials_for",
    "credentials_username",
    "make_user",
    "username_of",
]

OFFERED: Final[tuple[str, ...]] = ("SHA-256", "MD5")
"""Algorithms offered, most preferred first (RFC 8760 §2.3). MD5 stays for the
many phones that know nothing else; RFC 8760 §3 calls it NOT RECOMMENDED."""
_QOP: Final = "auth"
# Verified instead of a real HA1 when the user is unknown: the same work, never a match.
_DUMMY_HA1: Final = ha1_table("\x00unknown", "\x00", "\x00")


@dataclass(frozen=True, slots=True)
class Authenticated:
    """The credential is right: the server records ``nc`` for ``nonce`` before trusting it."""

    username: str
    """The Digest username: the user the REGISTER is from (``auth_user`` of ``plan``)."""
    nonce: str
    nc: int
    """The nonce-count the client sent; ``store.use_nonce_count`` refuses a reuse."""
    expires_at: float
    """When ``nonce`` expires: how long the store must remember its counts."""


@dataclass(frozen=True, slots=True)
class Challenge:
    """Answer 401 with a fresh challenge (:func:`challenge_response`)."""

    stale: bool = False
    """``stale=true``: the digest was right but the nonce had expired; the client
    retries with the new nonce without asking its user (RFC 7616 §3.3)."""


AuthOutcome = Authenticated | Challenge


def challenge_headers(
    realm: str,
    issuer: NonceIssuer,
    now: float,
    *,
    stale: bool = False,
    algorithms: Sequence[str] = OFFERED,
) -> list[tuple[str, str]]:
    """One ``WWW-Authenticate`` per algorithm, most preferred first (RFC 8760 §2.3),
    sharing one fresh nonce, each with ``qop="auth"``."""
    nonce = issuer.issue(now, realm)
    return [
        ("WWW-Authenticate", make_challenge(realm, nonce, algorithm=a, qop=_QOP, stale=stale))
        for a in algorithms
    ]


def challenge_response(
    request: Request,
    *,
    realm: str,
    issuer: NonceIssuer,
    now: float,
    stale: bool = False,
    to_tag: str | None = None,
) -> Response:
    """The 401 (Unauthorized) that challenges ``request`` (§22.1, §22.4)."""
    headers = challenge_headers(realm, issuer, now, stale=stale)
    return request.reply(401, headers=headers, to_tag=to_tag or derived_to_tag(request))


def credentials_for(request: Request, realm: str) -> Credentials | None:
    """The first Digest credentials of ``request`` for ``realm`` (compared exactly),
    from its Authorization header lines; malformed lines are skipped."""
    for line in request.headers.get_all("authorization"):
        try:
            parsed = parse_challenges([line])
        except ParseError:
            continue
        for credentials in parsed:
            if credentials.is_digest and credentials.realm == realm:
                return credentials
    return None


def credentials_username(request: Request, realm: str) -> str | None:
    """The username to look the user up by, or None (no credentials for ``realm``,
    or a ``userhash``, which this registrar never offers)."""
    return username_of(credentials_for(request, realm))


def username_of(credentials: Credentials | None) -> str | None:
    """:func:`credentials_username` of credentials found by :func:`credentials_for`."""
    if credentials is None:
        return None
    params = credentials.params
    if params.get("userhash", "false").lower() == "true":
        return None
    return params.get("username")


def check_credentials(
    request: Request,
    *,
    realm: str,
    issuer: NonceIssuer,
    now: float,
    user: User | None,
    algorithms: Sequence[str] = OFFERED,
) -> AuthOutcome:
    """Whether ``request`` carries a valid Digest credential of ``user`` for ``realm``.

    ``user`` is what the store returned for :func:`credentials_username`
    (None: no such user). The credential must be for our ``realm`` (others
    are ignored: "no credentials"), name a nonce ``issuer`` gave out for that
    realm, an algorithm of ``algorithms`` (RFC 8760 §2.3: the ones we
    offered), qop ``auth`` with a valid ``nc`` and a ``cnonce``, a ``uri``
    that is the Request-URI compared as a URI (§22.4: "the Request-URI in
    the Authorization header field value corresponds to a user"; RFC 8760
    §2.6 item 6), a plain ``username`` that is ``user.name``, and the right
    ``response`` for that user's HA1.

    Returns :class:`Authenticated`, or ``Challenge(stale=True)`` for a right
    digest with an expired nonce, or ``Challenge(stale=False)`` for
    everything else. An unknown user and a wrong password take the same
    path and the same hashing (a dummy HA1), and give the same outcome.
    """
    return check_digest(
        request,
        credentials_for(request, realm),
        realm=realm,
        issuer=issuer,
        now=now,
        user=user,
        algorithms=algorithms,
    )


def check_digest(
    request: Request,
    credentials: Credentials | None,
    *,
    realm: str,
    issuer: NonceIssuer,
    now: float,
    user: User | None,
    algorithms: Sequence[str] = OFFERED,
) -> AuthOutcome:
    """:func:`check_credentials` for ``credentials``, what :func:`credentials_for`
    found in ``request`` for ``realm``: a server that has them already (it read
    the username from them) does not parse the Authorization lines again."""
    if credentials is None:
        return Challenge()
    params = credentials.params
    username = params.get("username")
    nonce = params.get("nonce")
    digest_uri = params.get("uri")
    if username is None or nonce is None or digest_uri is None or "response" not in params:
        return Challenge()
    if params.get("userhash", "false").lower() == "true":
        return Challenge()  # never offered
    algorithm = find_algorithm(params.get("algorithm"))
    if algorithm is None or not _offered(algorithm.name, algorithms):
        return Challenge()
    nc = parse_nc(params.get("nc"))
    if params.get("qop") != _QOP or nc is None or not params.get("cnonce"):
        return Challenge()
    if not _same_uri(digest_uri, request):
        return Challenge()
    state = issuer.check(nonce, now, realm)
    if state is NonceState.INVALID:
        return Challenge()
    known = user is not None and user.name == username and host_key(user.domain) == realm
    table = user.ha1 if known and user is not None else _DUMMY_HA1
    valid = verify_ha1(
        credentials,
        method=request.method,
        ha1_by_algorithm=table,
        body=request.body,
        username=username,
    )
    if not (valid and known):
        return Challenge()
    if state is NonceState.STALE:
        return Challenge(stale=True)
    expires_at = issuer.expires_at(nonce)
    return Authenticated(username, nonce, nc, now if expires_at is None else expires_at)


def _offered(name: str, algorithms: Sequence[str]) -> bool:
    """Whether algorithm ``name`` is one of ``algorithms`` (case-insensitively)."""
    wanted = name.lower()
    return any(offered.lower() == wanted for offered in algorithms)


def _same_uri(digest_uri: str, request: Request) -> bool:
    """§22.4: the credential's ``uri`` is the Request-URI (compared per §19.1.4).

    The common case, a client that copied the Request-URI as it wrote it, is
    a string comparison: a URI equals the parse of its own text."""
    uri = request.uri
    if digest_uri == str(uri):
        return True
    try:
        return parse_uri(digest_uri) == uri
    except ParseError:
        return False


def make_user(name: str, domain: str, password: str) -> User:
    """A :class:`User` of ``domain`` with the HA1 of every algorithm, realm = domain.

    The password itself is not kept (RFC 7616 §3.4.2). The domain is kept in
    lower case, as :meth:`RegistrarPolicy.realm_for` names realms.
    """
    realm = host_key(domain)
    return User(name=name, domain=realm, ha1=ha1_table(name, realm, password))
