"""Stateless Digest nonces (RFC 7616 §3.3, §5.5), sans-I/O.

A server that issues nonces without remembering them signs them::

    nonce = base64url( timestamp | unique | HMAC-SHA256(secret, timestamp | unique | realm)[:16] )

``timestamp`` is the issue time in microseconds since the epoch (8 bytes,
big-endian) and ``unique`` 8 bytes that differ between nonces issued at the
same time (a counter, or bytes from the caller's random source). RFC 7616
§3.3 suggests this construction ("time-stamp H(time-stamp ":" ETag ":"
secret-data)"); the realm is signed in so that a nonce issued for one
realm is worthless in another.

Why ``unique``: a nonce's replay protection is its nonce-count, which the
location store tracks per nonce (``LocationStore.use_nonce_count``). Two
clients challenged in the same instant must not share a nonce, or the
second one's ``nc=00000001`` would look like a replay of the first's.

:meth:`NonceIssuer.check` answers VALID, STALE (ours, but older than the
lifetime: the client may retry with a fresh nonce without asking its user,
``stale=true`` of RFC 7616 §3.3) or INVALID (not ours: forged, truncated,
issued for another realm or with another secret). The HMAC is compared in
constant time.

No clock and no randomness here: ``now`` is wall-clock seconds passed in by
the caller (several nodes sharing ``secret`` accept each other's nonces),
and the unique part comes from ``new_salt`` when the caller supplies one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import re
from collections.abc import Callable
from enum import Enum
from typing import Final

__all__ = ["NONCE_LENGTH", "NonceIssuer", "NonceState", "parse_nc"]

_TIMESTAMP_BYTES: Final = 8
_UNIQUE_BYTES: Final = 8
_MAC_BYTES: Final = 16
_RAW_BYTES: Final = _TIMESTAMP_BYTES + _UNIQUE_BYTES + _MAC_BYTES
NONCE_LENGTH: Final = 43
"""Characters of an issued nonce: 32 bytes in unpadded base64url."""
_NONCE_RE: Final = re.compile(rf"[A-Za-z0-9_-]{{{NONCE_LENGTH}}}")
_NC_RE: Final = re.compile(r"[0-9A-Fa-f]{8}")
_MICROSECONDS: Final = 1_000_000
_MAX_TIMESTAMP: Final = 2**64 - 1


class NonceState(Enum):
    """What :meth:`NonceIssuer.check` found."""

    VALID = "valid"
    """Issued by us for this realm, within its lifetime."""
    STALE = "stale"
    """Issued by us for this realm, but expired (or dated too far in the future)."""
    INVALID = "invalid"
    """Not a nonce we issued for this realm: malformed or forged."""


class NonceIssuer:
    """Issues and checks HMAC-signed nonces (RFC 7616 §3.3) for any number of realms.

    ``secret`` is the signing key (at least 16 bytes; share it between the
    nodes of a cluster). ``lifetime`` is how long, in seconds, a nonce stays
    VALID. ``clock_skew`` is how far in the future a nonce's timestamp may
    lie (clocks of nodes sharing the secret differ a little). ``new_salt``
    returns the 8 unique bytes of each nonce (e.g. ``lambda:
    secrets.token_bytes(8)``); without it a per-issuer counter is used,
    unique within the process.
    """

    __slots__ = ("_counter", "_new_salt", "_secret", "clock_skew", "lifetime")

    def __init__(
        self,
        secret: bytes,
        lifetime: float = 300.0,
        *,
        clock_skew: float = 30.0,
        new_salt: Callable[[], bytes] | None = None,
    ) -> None:
        if len(secret) < 16:
            raise ValueError("the nonce secret needs at least 16 bytes")
        if lifetime <= 0:
            raise ValueError(f"nonce lifetime must be positive: {lifetime}")
        self._secret = bytes(secret)
        self.lifetime = float(lifetime)
        self.clock_skew = float(clock_skew)
        self._new_salt = new_salt
        self._counter = itertools.count(1)

    def issue(self, now: float, realm: str) -> str:
        """A fresh nonce for ``realm``, issued at ``now`` (seconds since the epoch)."""
        stamp = _timestamp_bytes(now)
        unique = self._unique()
        mac = self._mac(stamp, unique, realm)
        return base64.urlsafe_b64encode(stamp + unique + mac).rstrip(b"=").decode("ascii")

    def check(self, nonce: str, now: float, realm: str) -> NonceState:
        """Whether ``nonce`` is one this issuer gave out for ``realm``, and still fresh.

        Never raises: anything that does not decode to a correctly signed
        nonce is INVALID.
        """
        raw = _decode(nonce)
        if raw is None:
            return NonceState.INVALID
        stamp = raw[:_TIMESTAMP_BYTES]
        unique = raw[_TIMESTAMP_BYTES : _TIMESTAMP_BYTES + _UNIQUE_BYTES]
        mac = raw[_TIMESTAMP_BYTES + _UNIQUE_BYTES :]
        if not hmac.compare_digest(mac, self._mac(stamp, unique, realm)):
            return NonceState.INVALID
        age = now - int.from_bytes(stamp, "big") / _MICROSECONDS
        if age > self.lifetime or age < -self.clock_skew:
            return NonceState.STALE
        return NonceState.VALID

    def issued_at(self, nonce: str) -> float | None:
        """When ``nonce`` says it was issued (unchecked: call :meth:`check` first)."""
        raw = _decode(nonce)
        if raw is None:
            return None
        return int.from_bytes(raw[:_TIMESTAMP_BYTES], "big") / _MICROSECONDS

    def expires_at(self, nonce: str) -> float | None:
        """When ``nonce`` stops being VALID: what ``LocationStore.use_nonce_count`` needs."""
        issued = self.issued_at(nonce)
        return None if issued is None else issued + self.lifetime

    # -- internals --------------------------------------------------------------
    def _unique(self) -> bytes:
        if self._new_salt is None:
            return (next(self._counter) % 2**64).to_bytes(_UNIQUE_BYTES, "big")
        salt = self._new_salt()
        if len(salt) < _UNIQUE_BYTES:
            raise ValueError(f"new_salt must return at least {_UNIQUE_BYTES} bytes")
        return salt[:_UNIQUE_BYTES]

    def _mac(self, stamp: bytes, unique: bytes, realm: str) -> bytes:
        message = stamp + unique + realm.encode("utf-8", "surrogateescape")
        return hmac.new(self._secret, message, hashlib.sha256).digest()[:_MAC_BYTES]


def _timestamp_bytes(now: float) -> bytes:
    micros = min(max(int(now * _MICROSECONDS), 0), _MAX_TIMESTAMP)
    return micros.to_bytes(_TIMESTAMP_BYTES, "big")


def _decode(nonce: str) -> bytes | None:
    """The 32 raw bytes of a nonce, or None when it cannot be one of ours."""
    if _NONCE_RE.fullmatch(nonce) is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(nonce + "=")
    except (binascii.Error, ValueError):
        return None
    if len(raw) != _RAW_BYTES:
        return None
    # One spelling per nonce: nonce-counts are kept per nonce string, and the
    # last character's two spare bits would otherwise give four spellings.
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != nonce:
        return None
    return raw


def parse_nc(text: str | None) -> int | None:
    """The nonce-count ``nc`` of a credential: exactly 8 hex digits (RFC 7616 §3.4).

    ``"00000001"`` is 1. None for anything else, and for 0: a client counts
    its requests with a nonce from 1 ("in the first request sent in response
    to a given nonce value, the client sends nc=00000001").
    """
    if text is None or _NC_RE.fullmatch(text) is None:
        return None
    value = int(text, 16)
    return value if value > 0 else None
