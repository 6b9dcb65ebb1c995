"""Client-side HTTP Digest authentication for SIP (RFC 3261 §22, RFC 7616, RFC 8760).

:class:`DigestClient` answers ``401``/``407`` challenges for a user agent and
keeps, per realm, what it needs to add credentials to later requests
pre-emptively (nonce, nonce-count). It is sans-I/O: the caller supplies the
randomness (``new_cnonce``) and resends the requests.

The stateless computation (:func:`digest_response`) and the verifying side
(:func:`make_challenge`, :func:`verify`) are re-exported here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from sipwire.auth.algorithms import (
    Algorithm,
    digest_response,
    find_algorithm,
    format_nc,
    response_for_nc_text,
    userhash,
)
from sipwire.auth.server import make_challenge, verify
from sipwire.errors import ParseError
from sipwire.message.auth_fields import Challenge, Credentials, parse_challenges
from sipwire.message.message import Request, Response
from sipwire.message.params import quote
from sipwire.message.uri import SipUri, Uri

__all__ = [
    "DigestAccount",
    "DigestClient",
    "digest_response",
    "make_challenge",
    "verify",
]

AUTHORIZATION: Final = "Authorization"
PROXY_AUTHORIZATION: Final = "Proxy-Authorization"
# Which credentials header answers which challenge header (RFC 3261 §22.2, §22.3).
_KINDS: Final = (
    ("WWW-Authenticate", AUTHORIZATION),
    ("Proxy-Authenticate", PROXY_AUTHORIZATION),
)
_MAX_NC: Final = 0xFFFFFFFF
# How many of its own answers per realm the client remembers to spot a rejection.
_ANSWERS_KEPT: Final = 32


@dataclass(frozen=True, slots=True)
class DigestAccount:
    """The secret a user agent answers Digest challenges with.

    ``username`` is the authentication username, which may differ from the
    user part of the From/To address of record (3CX, many PBXes and
    carriers issue a separate auth ID). ``realm=None`` makes the account
    answer any realm; an account naming the realm is preferred over it.
    """

    username: str
    """The auth username (``username=`` in the credentials)."""
    password: str
    realm: str | None = None
    """The realm this account is for, compared exactly; None: any realm."""


@dataclass(slots=True)
class _RealmState:
    """What a client remembers about one realm it has been challenged for."""

    account: DigestAccount
    realm: str
    algorithm: Algorithm
    nonce: str
    opaque: str | None
    qop: str | None
    userhash: bool
    nc: int = 0
    """The last nonce-count sent with ``nonce``."""
    session_cnonce: str | None = None
    """For ``-sess`` algorithms, the cnonce that A1 was computed with."""
    hosts: set[str] = field(default_factory=set)
    """Request-URI hosts challenged for this realm (scope of pre-emptive Authorization)."""
    answered: dict[str, None] = field(default_factory=dict)
    """``response`` values this client sent in answer to a challenge, oldest first."""


class DigestClient:
    """Answers 401/407 challenges for one user agent; keeps per-realm state (nonce, nc).

    ``accounts`` are tried in order: the first whose realm equals the
    challenge's, else the first with ``realm=None``. ``new_cnonce`` returns
    a fresh client nonce (an unpredictable string, e.g. 16 random bytes as
    hex) each time it is called; the client never draws randomness itself.

    State is kept per credentials header and realm: ``Authorization`` for
    ``WWW-Authenticate`` challenges (401, from the UAS or registrar) and
    ``Proxy-Authorization`` for ``Proxy-Authenticate`` ones (407, from
    proxies on the path).
    """

    __slots__ = ("_accounts", "_new_cnonce", "_realms")

    def __init__(self, accounts: Sequence[DigestAccount], new_cnonce: Callable[[], str]) -> None:
        self._accounts: tuple[DigestAccount, ...] = tuple(accounts)
        self._new_cnonce = new_cnonce
        self._realms: dict[tuple[str, str], _RealmState] = {}
        """(credentials header name, realm) -> state."""

    # -- answering challenges ---------------------------------------------------
    def authorize(self, request: Request, challenge_response: Response) -> Request | None:
        """Return a copy of ``request`` that answers the challenges of ``challenge_response``.

        Every Digest challenge the client can answer gets credentials:
        ``WWW-Authenticate`` (401) is answered with ``Authorization``,
        ``Proxy-Authenticate`` (407) with ``Proxy-Authorization``; a response
        may carry several realms (e.g. two proxies after forking) and each
        one is answered, replacing credentials the request already had for
        that realm. When one realm offers several challenges (RFC 8760 §2.4)
        the strongest supported algorithm is used (SHA-512-256 > SHA-256 >
        MD5), the topmost one among equals. The qop ``auth`` is preferred to
        ``auth-int``; a challenge without qop gets an RFC 2069 answer.

        Challenges the client cannot answer are skipped: other schemes,
        malformed header lines, no realm or nonce, an unknown algorithm or
        qop, a realm no account serves. Returns None when nothing was
        answered, or when the server challenges again a realm this client
        already answered for ``request`` without ``stale=true`` (a wrong
        password: retrying would loop). With ``stale=true`` the new nonce
        is used without asking the application.

        Neither ``request`` nor its CSeq/Via branch is changed: the caller
        (the UAC core) gives the copy a new CSeq and a new transaction.
        """
        if challenge_response.status not in (401, 407):
            return None
        plan: list[tuple[str, Challenge, Algorithm, str | None, DigestAccount]] = []
        for challenge_header, credentials_header in _KINDS:
            by_realm: dict[str, list[Challenge]] = {}
            for line in challenge_response.headers.get_all(challenge_header):
                for challenge in _parse_line(line):
                    realm = challenge.realm
                    if challenge.is_digest and realm is not None and challenge.nonce is not None:
                        by_realm.setdefault(realm, []).append(challenge)
            for realm, challenges in by_realm.items():
                account = self._account_for(realm)
                picked = _pick(challenges)
                if account is None or picked is None:
                    continue
                challenge, algorithm, qop = picked
                if not challenge.stale and self._answered_before(
                    request, credentials_header, realm
                ):
                    return None
                plan.append((credentials_header, challenge, algorithm, qop, account))
        if not plan:
            return None
        retry = _copy_request(request)
        host = _host_key(request.uri)
        for credentials_header, challenge, algorithm, qop, account in plan:
            state = self._remember(credentials_header, challenge, algorithm, qop, account)
            state.hosts.add(host)
            value, response = self._credentials(state, retry)
            state.answered[response] = None
            while len(state.answered) > _ANSWERS_KEPT:
                del state.answered[next(iter(state.answered))]
            _replace(retry, credentials_header, state.realm, value)
        return retry

    def apply(self, request: Request) -> None:
        """Pre-emptively add credentials for realms already challenged, in place.

        For a NEW request to the same server, e.g. a REGISTER refresh:
        each remembered realm's cached nonce is reused with the nonce-count
        incremented (and a fresh cnonce, except for ``-sess`` algorithms,
        which keep the one their session key was computed with).
        ``Proxy-Authorization`` is added for every realm a proxy challenged;
        ``Authorization`` only when the Request-URI host is one that realm
        challenged a request to. Credentials the request already has for
        those realms are replaced. If the nonce has expired the server
        answers ``stale=true`` and :meth:`authorize` takes the new one.
        """
        host = _host_key(request.uri)
        for (credentials_header, realm), state in self._realms.items():
            if credentials_header == AUTHORIZATION and host not in state.hosts:
                continue
            if state.qop is not None and state.nc >= _MAX_NC:
                continue  # nonce-count exhausted: wait for a new challenge
            value, _ = self._credentials(state, request)
            _replace(request, credentials_header, realm, value)

    def forget(self, realm: str | None = None) -> None:
        """Drop the remembered state of ``realm`` (every realm for None).

        Call it after changing an account's password, so that stale
        credentials are not sent pre-emptively.
        """
        for key in [k for k in self._realms if realm is None or k[1] == realm]:
            del self._realms[key]

    # -- internals --------------------------------------------------------------
    def _account_for(self, realm: str) -> DigestAccount | None:
        for account in self._accounts:
            if account.realm == realm:
                return account
        for account in self._accounts:
            if account.realm is None:
                return account
        return None

    def _answered_before(self, request: Request, credentials_header: str, realm: str) -> bool:
        """True when ``request`` carries this client's answer to a challenge for ``realm``.

        Credentials added pre-emptively by :meth:`apply` (or by the
        application) do not count: an old nonce may have been refused.
        """
        state = self._realms.get((credentials_header, realm))
        if state is None:
            return False
        for credentials in _credentials_in(request, credentials_header, realm):
            if credentials.params.get("response", "").lower() in state.answered:
                return True
        return False

    def _remember(
        self,
        credentials_header: str,
        challenge: Challenge,
        algorithm: Algorithm,
        qop: str | None,
        account: DigestAccount,
    ) -> _RealmState:
        realm = challenge.realm or ""
        nonce = challenge.nonce or ""
        key = (credentials_header, realm)
        old = self._realms.get(key)
        opaque = challenge.params.get("opaque")
        hashed = challenge.params.get("userhash", "false").lower() == "true"
        if (
            old is not None
            and old.nonce == nonce
            and old.algorithm == algorithm
            and old.qop == qop
            and old.account == account
            and old.userhash == hashed
        ):
            old.opaque = opaque  # same nonce: keep counting
            return old
        state = _RealmState(account, realm, algorithm, nonce, opaque, qop, hashed)
        if old is not None:
            state.hosts = old.hosts
            state.answered = old.answered
        self._realms[key] = state
        return state

    def _credentials(self, state: _RealmState, request: Request) -> tuple[str, str]:
        """The credentials header value for ``request`` and its ``response`` hex."""
        account, algorithm = state.account, state.algorithm
        uri = _request_uri_text(request)
        nc_text: str | None = None
        cnonce: str | None = None
        if state.qop is not None:
            state.nc += 1
            nc_text = format_nc(state.nc)
            if algorithm.session:
                if state.session_cnonce is None:
                    state.session_cnonce = self._new_cnonce()
                cnonce = state.session_cnonce
            else:
                cnonce = self._new_cnonce()
        response = response_for_nc_text(
            algorithm,
            username=account.username,
            realm=state.realm,
            password=account.password,
            method=request.method,
            uri=uri,
            nonce=state.nonce,
            nc_text=nc_text,
            cnonce=cnonce,
            qop=state.qop,
            body=request.body,
        )
        username = (
            userhash(algorithm, account.username, state.realm)
            if state.userhash
            else account.username
        )
        parts = [
            f"username={quote(username)}",
            f"realm={quote(state.realm)}",
            f"nonce={quote(state.nonce)}",
            f"uri={quote(uri)}",
            f'response="{response}"',
            f"algorithm={algorithm.name}",
        ]
        if cnonce is not None:
            parts.append(f"cnonce={quote(cnonce)}")
        if state.opaque is not None:
            parts.append(f"opaque={quote(state.opaque)}")
        if state.qop is not None:
            parts.append(f"qop={state.qop}")
            parts.append(f"nc={nc_text}")
        if state.userhash:
            parts.append("userhash=true")
        return "Digest " + ", ".join(parts), response


def _parse_line(line: str) -> list[Challenge]:
    """The challenges/credentials of one header line; none if it is malformed."""
    try:
        return parse_challenges([line])
    except ParseError:
        return []


def _choose_qop(challenge: Challenge) -> tuple[bool, str | None]:
    """(usable, qop): ``auth`` if offered, else ``auth-int``; None when no qop is offered."""
    options = [q.lower() for q in challenge.qop_options]
    if not options:
        return True, None
    for qop in ("auth", "auth-int"):
        if qop in options:
            return True, qop
    return False, None


def _pick(challenges: list[Challenge]) -> tuple[Challenge, Algorithm, str | None] | None:
    """The challenge to answer among those of one realm: strongest algorithm, then topmost."""
    best: tuple[Challenge, Algorithm, str | None] | None = None
    for challenge in challenges:
        algorithm = find_algorithm(challenge.params.get("algorithm"))
        if algorithm is None:
            continue
        usable, qop = _choose_qop(challenge)
        if not usable or (qop is None and algorithm.session):
            continue  # -sess needs a cnonce, which only a qop answer carries
        if best is None or algorithm.strength > best[1].strength:
            best = (challenge, algorithm, qop)
    return best


def _credentials_in(request: Request, header: str, realm: str) -> list[Credentials]:
    """The Digest credentials ``request`` already carries for ``realm`` in ``header``."""
    found: list[Credentials] = []
    for line in request.headers.get_all(header):
        found.extend(c for c in _parse_line(line) if c.is_digest and c.realm == realm)
    return found


def _replace(request: Request, header: str, realm: str, value: str) -> None:
    """Put ``value`` into ``header``, dropping earlier credentials for ``realm``."""
    headers = request.headers
    kept: list[str] = []
    for line in headers.get_all(header):
        parsed = _parse_line(line)
        if not any(c.is_digest and c.realm == realm for c in parsed):
            kept.append(line)
        else:  # a line listing several credentials keeps the other realms'
            kept.extend(str(c) for c in parsed if not (c.is_digest and c.realm == realm))
    headers.remove(header)
    for line in kept:
        headers.add(header, line)
    headers.add(header, value)


def _request_uri_text(request: Request) -> str:
    """The digest-uri: the Request-URI exactly as it is (or was) written on the wire."""
    text = request._uri_text
    return text if text is not None else str(request.uri)


def _copy_request(request: Request) -> Request:
    """A copy that shares nothing mutable with ``request``."""
    retry = Request(
        request.method, copy.deepcopy(request.uri), request.headers.copy(), request.body
    )
    retry._uri_text = request._uri_text
    retry.version = request.version
    return retry


def _host_key(uri: Uri) -> str:
    """What scopes pre-emptive ``Authorization``: the host of a SIP URI, else the scheme."""
    if isinstance(uri, SipUri):
        return uri.host.lower()
    return uri.scheme
