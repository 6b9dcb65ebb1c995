"""The Digest computation itself (RFC 7616 §3.4.1 - §3.4.3, RFC 8760 §2), with no state.

::

    A1       = unq(username) ":" unq(realm) ":" passwd
    A1-sess  = H(A1) ":" unq(nonce) ":" unq(cnonce)
    A2       = Method ":" request-uri                      (qop auth or none)
    A2       = Method ":" request-uri ":" H(entity-body)   (qop auth-int)
    response = KD(H(A1), unq(nonce) ":" nc ":" unq(cnonce) ":" unq(qop) ":" H(A2))
    response = KD(H(A1), unq(nonce) ":" H(A2))              (no qop, RFC 2069)

Strings are hashed as UTF-8; ``H`` is MD5, SHA-256 or SHA-512/256 as hex.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

__all__ = [
    "ALGORITHMS",
    "QOPS",
    "Algorithm",
    "digest_response",
    "find_algorithm",
    "format_nc",
    "response_for_nc_text",
    "userhash",
]

QOPS: Final = ("auth", "auth-int")
"""The quality-of-protection values this module computes."""


@dataclass(frozen=True, slots=True)
class Algorithm:
    """One Digest algorithm name (RFC 7616 §3.3; RFC 8760 §2.1 for SIP).

    ``strength`` orders algorithms when a server offers several for one realm:
    SHA-512-256 > SHA-256 > MD5 (a ``-sess`` variant ranks with its base).
    """

    name: str
    """The canonical spelling, e.g. ``"SHA-256-sess"``."""
    hash_name: str
    """The :mod:`hashlib` constructor name."""
    session: bool
    """True for the ``-sess`` variants (A1 folds in nonce and cnonce)."""
    strength: int

    def hash(self, data: bytes) -> str:
        """``H(data)``: the lower-case hex digest of ``data``."""
        return hashlib.new(self.hash_name, data).hexdigest()

    def hash_text(self, text: str) -> str:
        """``H(text)`` with ``text`` encoded as UTF-8."""
        return self.hash(text.encode("utf-8"))


def _available(hash_name: str) -> bool:
    try:
        hashlib.new(hash_name, b"")
    except ValueError:  # e.g. an OpenSSL build without SHA-512/256
        return False
    return True


def _build() -> dict[str, Algorithm]:
    table: dict[str, Algorithm] = {}
    for base, hash_name, strength in (
        ("MD5", "md5", 1),
        ("SHA-256", "sha256", 2),
        ("SHA-512-256", "sha512_256", 3),
    ):
        if not _available(hash_name):
            continue
        for session in (False, True):
            name = f"{base}-sess" if session else base
            table[name.lower()] = Algorithm(name, hash_name, session, strength)
    return table


ALGORITHMS: Final[dict[str, Algorithm]] = _build()
"""The supported algorithms, keyed by lower-cased name."""


def find_algorithm(name: str | None) -> Algorithm | None:
    """The algorithm called ``name`` (any case; ``None`` means MD5), or None if unsupported."""
    return ALGORITHMS.get("md5" if name is None else name.strip().lower())


def format_nc(nc: int) -> str:
    """The nonce-count as sent: exactly 8 lower-case hex digits (``00000001``)."""
    if not 0 < nc <= 0xFFFFFFFF:
        raise ValueError(f"nonce count out of range: {nc}")
    return f"{nc:08x}"


def userhash(algorithm: Algorithm, username: str, realm: str) -> str:
    """The hashed username of RFC 7616 §3.4.4: ``H(unq(username) ":" unq(realm))``."""
    return algorithm.hash_text(f"{username}:{realm}")


def response_for_nc_text(
    algorithm: Algorithm,
    *,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    nc_text: str | None,
    cnonce: str | None,
    qop: str | None,
    body: bytes = b"",
) -> str:
    """:func:`digest_response` with the nonce-count given as the text that was sent.

    A verifier must hash the ``nc`` exactly as the client wrote it.
    """
    if qop is not None and qop not in QOPS:
        raise ValueError(f"unsupported qop: {qop!r}")
    if qop is not None and (nc_text is None or cnonce is None):
        raise ValueError("qop needs nc and cnonce")
    if algorithm.session and cnonce is None:
        raise ValueError(f"{algorithm.name} needs a cnonce")
    ha1 = algorithm.hash_text(f"{username}:{realm}:{password}")
    if algorithm.session:
        ha1 = algorithm.hash_text(f"{ha1}:{nonce}:{cnonce}")
    if qop == "auth-int":
        ha2 = algorithm.hash_text(f"{method}:{uri}:{algorithm.hash(body)}")
    else:
        ha2 = algorithm.hash_text(f"{method}:{uri}")
    if qop is None:
        return algorithm.hash_text(f"{ha1}:{nonce}:{ha2}")
    return algorithm.hash_text(f"{ha1}:{nonce}:{nc_text}:{cnonce}:{qop}:{ha2}")


def digest_response(
    *,
    algorithm: str,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    nc: int | None,
    cnonce: str | None,
    qop: str | None,
    body: bytes = b"",
) -> str:
    """The hex ``response`` value of a Digest credential (RFC 7616 §3.4.1).

    ``algorithm`` is any supported name in any case (``MD5``, ``sha-256-sess`` ...);
    ``username`` is the plain auth username (not its userhash); ``uri`` is the
    digest-uri, i.e. the Request-URI as sent; ``qop`` is ``"auth"``,
    ``"auth-int"`` (the entity hash covers ``body``) or ``None`` for the
    RFC 2069 form, which takes neither ``nc`` nor ``cnonce``. ``nc`` is
    hashed as 8 hex digits.

    Raises ValueError for an unknown algorithm or qop, or when ``qop`` (or a
    ``-sess`` algorithm) is given without the ``nc``/``cnonce`` it needs.
    """
    algo = find_algorithm(algorithm)
    if algo is None:
        raise ValueError(f"unsupported digest algorithm: {algorithm!r}")
    return response_for_nc_text(
        algo,
        username=username,
        realm=realm,
        password=password,
        method=method,
        uri=uri,
        nonce=nonce,
        nc_text=None if nc is None else format_nc(nc),
        cnonce=cnonce,
        qop=qop,
        body=body,
    )
