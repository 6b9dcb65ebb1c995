"""The verifying side of Digest: build a challenge, check a credential.

Nonce management (issuing, expiry, replay and nonce-count tracking) is the
caller's job: :func:`verify` only checks that the credential's ``response``
was computed with the right password. The caller must also check that the
credential's ``realm`` is its own, its ``nonce`` one it issued and still
valid, and its ``uri`` the Request-URI of the request (RFC 3261 §22.4).
"""

from __future__ import annotations

import hmac
import re
from typing import Final

from sipwire.auth.algorithms import QOPS, find_algorithm, response_for_nc_text
from sipwire.auth.algorithms import userhash as hash_username
from sipwire.message.auth_fields import Credentials
from sipwire.message.params import quote

__all__ = ["make_challenge", "verify"]

_NC_RE: Final = re.compile(r"[0-9A-Fa-f]{8}")


def make_challenge(
    realm: str,
    nonce: str,
    *,
    algorithm: str = "MD5",
    qop: str | None = "auth",
    stale: bool = False,
    opaque: str | None = None,
    userhash: bool = False,
) -> str:
    """A ``WWW-Authenticate`` / ``Proxy-Authenticate`` value offering Digest.

    ``make_challenge("biloxi.com", "84f1c1ae6cbe5ua9", algorithm="SHA-256")``
    gives ``Digest realm="biloxi.com", nonce="84f1c1ae6cbe5ua9",
    algorithm=SHA-256, qop="auth"``. ``qop`` is ``"auth"``, ``"auth-int"``,
    ``"auth,auth-int"`` or ``None`` (RFC 2069 style, no qop parameter).
    ``algorithm`` and ``stale`` are written unquoted, the qop list quoted
    (RFC 7616 §3.3). To offer several algorithms (RFC 8760 §2.4) add one
    header line per call, most preferred first.

    Raises ValueError for an unsupported algorithm or qop.
    """
    algo = find_algorithm(algorithm)
    if algo is None:
        raise ValueError(f"unsupported digest algorithm: {algorithm!r}")
    parts = [f"realm={quote(realm)}", f"nonce={quote(nonce)}"]
    if opaque is not None:
        parts.append(f"opaque={quote(opaque)}")
    parts.append(f"algorithm={algo.name}")
    if qop is not None:
        options = [q.strip() for q in qop.split(",")]
        if not options or any(q not in QOPS for q in options):
            raise ValueError(f"unsupported qop: {qop!r}")
        parts.append(f'qop="{",".join(options)}"')
    if stale:
        parts.append("stale=true")
    if userhash:
        parts.append("userhash=true")
    return "Digest " + ", ".join(parts)


def verify(
    authorization: Credentials,
    *,
    method: str,
    password: str,
    body: bytes = b"",
    username: str | None = None,
) -> bool:
    """True when ``authorization`` (a parsed ``Authorization`` or
    ``Proxy-Authorization`` value) carries the right Digest ``response``.

    ``method`` is the request's method and ``body`` its body (hashed for
    qop ``auth-int``). ``username``, when given, must be the credential's
    username; it is required to check a credential sent with
    ``userhash=true``, whose ``username`` is a hash.

    Never raises: a missing or malformed parameter, an unknown algorithm or
    qop, or a nonce-count that is not 8 hex digits all give False. See the
    module docstring for the checks left to the caller (nonce, realm, uri).
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
    if params.get("userhash", "false").lower() == "true":
        if username is None or not _same(sent_user.lower(), hash_username(algo, username, realm)):
            return False
        plain_user = username
    else:
        if username is not None and sent_user != username:
            return False
        plain_user = sent_user
    try:
        expected = response_for_nc_text(
            algo,
            username=plain_user,
            realm=realm,
            password=password,
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
    return _same(response.lower(), expected)


def _same(given: str, expected: str) -> bool:
    """Constant-time comparison of ASCII hex strings."""
    return given.isascii() and hmac.compare_digest(given, expected)
