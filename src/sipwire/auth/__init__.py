"""SIP authentication: HTTP Digest (RFC 3261 §22, RFC 7616, RFC 8760), sans-I/O.

The client side is :class:`DigestClient` (answer 401/407 challenges, add
credentials pre-emptively); the verifying side, for a registrar or a test,
is :func:`make_challenge` and :func:`verify`; :func:`digest_response`
computes a ``response`` value directly. Supported algorithms: MD5,
SHA-256, SHA-512-256 and their ``-sess`` variants; qop ``auth``,
``auth-int`` or none (RFC 2069).
"""

from sipwire.auth.algorithms import ALGORITHMS, digest_response
from sipwire.auth.digest import DigestAccount, DigestClient
from sipwire.auth.server import make_challenge, verify

__all__ = [
    "ALGORITHMS",
    "DigestAccount",
    "DigestClient",
    "digest_response",
    "make_challenge",
    "verify",
]
