"""HA1, the stored form of a Digest password, and verifying a credential from it.

RFC 7616 §3.4.2: ``A1 = unq(username) ":" unq(realm) ":" passwd`` and a
server "need not know the user's cleartext password": it may keep
``H(A1)`` (HA1) instead, one per algorithm it offers, since MD5, SHA-256
and SHA-512/256 hash A1 differently. RFC 7616 §5.2 warns that HA1 is
password-equivalent for its realm: keep it as secret as a password.

:func:`verify_ha1` is :func:`sipwire.auth.server.verify` computed from the
stored HA1 rather than the password. The ``-sess`` algorithms work too:
their session key ``H(HA1 ":" nonce ":" cnonce)`` (RFC 7616 §3.4.2) is
derived from the stored HA1 of the base algorithm. Its running time does
not depend on whether the HA1 it was given is right, nor on whether the
table holds one for the credential's algorithm (a missing entry is
replaced by a dummy and the full computation still runs).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from typing import Final

from sipwire.auth.algorithms import ALGORITHMS, QOPS, Algorithm, find_algorithm
from sipwire.auth.algorithms import userhash as hash_username
from sipwire.message.auth_fields import Credentials

__all__ = ["BASE_ALGORITHMS", "ha1_for", "ha1_table", "response_from_ha1", "verify_ha1"]

BASE_ALGORITHMS: Final[tuple[str, ...]] = tuple(
    a.name for a in ALGORITHMS.values() if not a.session
)
"""The algorithms a user's HA1 is stored for: MD5, SHA-256, SHA-512-256 (when hashlib has it)."""
_NC_RE: Final = re.compile(r"[0-9A-Fa-f]{8}")


def _base(algorithm: Algorithm) -> str:
    """The canonical name of the algorithm whose HA1 ``algorithm`` starts from."""
    return algorithm.name.removesuffix("-sess")


def ha1_for(algorithm: str, username: str, realm: str, password: str) -> str:
    """``H(username ":" realm ":" password)`` in lower-case hex (RFC 7616 §3.4.2).

    ``algorithm`` is ``MD5``, ``SHA-256`` or ``SHA-512-256`` in any case.
    Raises ValueError for an unknown algorithm and for a ``-sess`` one,
    whose session key depends on the nonce: store the base algorithm's HA1.
    """
    algo = find_algorithm(algorithm)
    if algo is None:
        raise ValueError(f"unsupported digest algorithm: {algorithm!r}")
    if algo.session:
        raise ValueError(f"store the HA1 of {_base(algo)}, not of {algo.name}")
    return algo.hash_text(f"{username}:{realm}:{password}")


def ha1_table(username: str, realm: str, password: str) -> dict[str, str]:
    """HA1 for every algorithm of :data:`BASE_ALGORITHMS`, keyed by canonical name."""
    return {name: ha1_for(name, username, realm, password) for name in BASE_ALGORITHMS}


def response_from_ha1(
    algorithm: Algorithm,
    ha1: str,
    *,
    method: str,
    uri: str,
    nonce: str,
    nc_text: str | None,
    cnonce: str | None,
    qop: str | None,
    body: bytes = b"",
) -> str:
    """The ``response`` a credential must carry, from the base algorithm's HA1.

    The formulas of RFC 7616 §3.4.1 - §3.4.3 (see ``algorithms.py``); for a
    ``-sess`` algorithm the session key is derived from ``ha1`` first.
    Raises ValueError when ``qop`` or ``-sess`` lacks the ``nc``/``cnonce``
    it needs, or for an unknown qop.
    """
    if qop is not None and qop not in QOPS:
        raise ValueError(f"unsupported qop: {qop!r}")
    if qop is not None and (nc_text is None or cnonce is None):
        raise ValueError("qop needs nc and cnonce")
    if algorithm.session:
        if cnonce is None:
            raise ValueError(f"{algorithm.name} needs a cnonce")
        ha1 = algorithm.hash_text(f"{ha1}:{nonce}:{cnonce}")
    if qop == "auth-int":
        ha2 = algorithm.hash_text(f"{method}:{uri}:{algorithm.hash(body)}")
    else:
        ha2 = algorithm.hash_text(f"{method}:{uri}")
    if qop is None:
        return algorithm.hash_text(f"{ha1}:{nonce}:{ha2}")
    return algorithm.hash_text(f"{ha1}:{nonce}:{nc_text}:{cnonce}:{qop}:{ha2}")


def verify_ha1(
    authorization: Credentials,
    *,
    method: str,
    ha1_by_algorithm: Mapping[str, str],
    body: bytes = b"",
    username: str | None = None,
) -> bool:
    """True when ``authorization`` carries the right Digest ``response`` for a stored HA1.

    ``ha1_by_algorithm`` maps base algorithm names (``MD5``, ``SHA-256``,
    ``SHA-512-256``, any case) to HA1 hex, as :class:`sipwire.registrar.model.User`
    keeps them; the entry of the credential's algorithm (its base, for
    ``-sess``) is used. ``method``, ``body`` and ``username`` are as for
    :func:`sipwire.auth.server.verify`; like it, this never raises and
    leaves the nonce, realm and uri checks to the caller.

    The response is compared in constant time, and a table without an
    entry for the algorithm costs the same work as a wrong HA1.
    """
    if not authorization.is_digest:
        return False
    params = authorization.params
    realm = params.get("realm")
    nonce = params.get("nonce")
    uri = params.get("uri")
    response = params.get("response")
    sent_user = params.get("username")
    if realm is None or nonce is None or uri is None or response is None or sent_user is None:
        return False
    algo = find_algorithm(params.get("algorithm"))
    if algo is None:
        return False
    qop = params.get("qop")
    nc_text = params.get("nc")
    cnonce = params.get("cnonce")
    if qop is not None and (nc_text is None or _NC_RE.fullmatch(nc_text) is None):
        return False
    if qop is None:
        nc_text = None
        if not algo.session:
            cnonce = None
    user_ok = True
    if params.get("userhash", "false").lower() == "true":
        user_ok = username is not None and _same(
            sent_user.lower(), hash_username(algo, username, realm)
        )
    elif username is not None:
        user_ok = _same(sent_user, username)
    ha1 = _lookup(ha1_by_algorithm, _base(algo))
    known = ha1 is not None
    if ha1 is None:
        ha1 = "0" * len(algo.hash(b""))
    try:
        expected = response_from_ha1(
            algo,
            ha1.lower(),
            method=method,
            uri=uri,
            nonce=nonce,
            nc_text=nc_text,
            cnonce=cnonce,
            qop=qop,
            body=body,
        )
    except ValueError:
        return False
    matches = _same(response.lower(), expected)
    return matches and known and user_ok


def _lookup(table: Mapping[str, str], name: str) -> str | None:
    """``table[name]`` with the algorithm name compared case-insensitively."""
    found = table.get(name)
    if found is not None:
        return found
    wanted = name.lower()
    for key, value in table.items():
        if key.lower() == wanted:
            return value
    return None


def _same(given: str, expected: str) -> bool:
    """Constant-time comparison of two strings (as UTF-8: usernames need not be ASCII)."""
    return hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape")
    )
