"""SRTP and SRTCP (RFC 3711) for one stream, through libsrtp (pylibsrtp).

No cryptography is written here: libsrtp derives the session keys, encrypts,
authenticates, keeps the rollover counter (ROC) across sequence-number wrap
(§3.3.1) and the replay lists (§3.3.2). This module chooses the profile for
an SDES crypto suite, keeps one libsrtp session per direction (our key for
what we send, the peer's for what we receive: RFC 4568 §6.1), and turns
libsrtp's failures into counters:

- an incoming packet that fails authentication, is a replay, or is not
  SRTP at all is dropped and counted in :class:`SrtpCounters`, never
  raised: a forged or replayed packet must not stop the stream;
- an outgoing packet libsrtp refuses (longer than its buffer) is dropped and
  counted too.

Re-keying (a re-INVITE whose offer carries a new key) is a new
:class:`SrtpStream`: libsrtp's state is per key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import pylibsrtp

from sipwire.media.errors import MediaError

__all__ = ["PROFILES", "SrtpCounters", "SrtpStream"]

PROFILES: Final[dict[str, tuple[int, int]]] = {
    "AES_CM_128_HMAC_SHA1_80": (pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80, 16 + 14),
    "AES_CM_128_HMAC_SHA1_32": (pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32, 16 + 14),
    "AEAD_AES_128_GCM": (pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM, 16 + 12),
    "AEAD_AES_256_GCM": (pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_256_GCM, 32 + 12),
}
"""libsrtp's profile for each SDES crypto suite name (RFC 4568, RFC 7714), and the
bytes of its master key plus master salt."""

_REPLAY: Final = frozenset(
    {"replay check failed (bad index)", "replay check failed (index too old)"}
)
_AUTH: Final = frozenset({"authentication failure", "cipher failure"})
REPLAY_WINDOW: Final = 128
"""Packets of the replay list (RFC 3711 §3.3.2 asks for at least 64)."""


@dataclass(slots=True)
class SrtpCounters:
    """What the stream's SRTP layer did (part of a call's media statistics)."""

    protected: int = 0
    """RTP and RTCP packets protected and sent."""
    unprotected: int = 0
    """RTP and RTCP packets received that passed authentication and replay checks."""
    auth_failures: int = 0
    """Received packets dropped: their authentication tag did not verify."""
    replays: int = 0
    """Received packets dropped: already received, or older than the replay list."""
    malformed: int = 0
    """Received packets dropped for any other reason (too short, not SRTP)."""
    send_failures: int = 0
    """Packets of ours libsrtp refused to protect (dropped)."""


class SrtpStream:
    """SRTP for one media stream: :meth:`protect` what we send, :meth:`unprotect`
    what the peer sends (``None``: dropped and counted).

    ``local_key``/``remote_key`` are the master key followed by the master salt
    (``CryptoAttribute.key_salt``) of our line and of the peer's; ``suite`` is
    the crypto suite both lines name. RTP and RTCP share the keys (§4.3).
    ``counters`` may be carried over from the stream this one re-keys.
    """

    __slots__ = ("_inbound", "_outbound", "counters", "suite")

    def __init__(
        self,
        suite: str,
        local_key: bytes,
        remote_key: bytes,
        *,
        window_size: int = REPLAY_WINDOW,
        counters: SrtpCounters | None = None,
    ) -> None:
        if suite not in PROFILES:
            raise MediaError(f"no SRTP profile for crypto suite {suite!r}")
        profile, length = PROFILES[suite]
        for key in (local_key, remote_key):
            if len(key) != length:
                raise MediaError(
                    f"SRTP key: {len(key)} bytes of key and salt, {suite} needs {length}"
                )
        self.suite = suite
        self.counters = SrtpCounters() if counters is None else counters
        """Shared with the stream this one re-keys, when given: a call's totals."""
        self._outbound = pylibsrtp.Session(
            _policy(local_key, profile, pylibsrtp.Policy.SSRC_ANY_OUTBOUND, window_size)
        )
        self._inbound = pylibsrtp.Session(
            _policy(remote_key, profile, pylibsrtp.Policy.SSRC_ANY_INBOUND, window_size)
        )

    def protect(self, packet: bytes) -> bytes | None:
        """The SRTP packet for our RTP ``packet``, or None (counted)."""
        try:
            protected = self._outbound.protect(packet)
        except (pylibsrtp.Error, ValueError):
            self.counters.send_failures += 1
            return None
        self.counters.protected += 1
        return protected

    def protect_rtcp(self, packet: bytes) -> bytes | None:
        """The SRTCP packet for our compound RTCP ``packet``, or None (counted)."""
        try:
            protected = self._outbound.protect_rtcp(packet)
        except (pylibsrtp.Error, ValueError):
            self.counters.send_failures += 1
            return None
        self.counters.protected += 1
        return protected

    def unprotect(self, packet: bytes) -> bytes | None:
        """The RTP packet inside the peer's SRTP ``packet``, or None (counted)."""
        try:
            plain = self._inbound.unprotect(packet)
        except (pylibsrtp.Error, ValueError) as exc:
            self._count_failure(exc)
            return None
        self.counters.unprotected += 1
        return plain

    def unprotect_rtcp(self, packet: bytes) -> bytes | None:
        """The compound RTCP packet inside the peer's SRTCP ``packet``, or None."""
        try:
            plain = self._inbound.unprotect_rtcp(packet)
        except (pylibsrtp.Error, ValueError) as exc:
            self._count_failure(exc)
            return None
        self.counters.unprotected += 1
        return plain

    def _count_failure(self, exc: Exception) -> None:
        reason = str(exc)
        counters = self.counters
        if reason in _AUTH:
            counters.auth_failures += 1
        elif reason in _REPLAY:
            counters.replays += 1
        else:
            counters.malformed += 1

    def __repr__(self) -> str:
        return f"SrtpStream({self.suite}, {self.counters})"


def _policy(key: bytes, profile: int, ssrc_type: int, window_size: int) -> pylibsrtp.Policy:
    try:
        policy = pylibsrtp.Policy(key=key, ssrc_type=ssrc_type, srtp_profile=profile)
    except (TypeError, ValueError) as exc:
        raise MediaError(f"SRTP key: {exc}") from None
    policy.window_size = window_size
    return policy
