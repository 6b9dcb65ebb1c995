"""The transform stage between RTP/RTCP packets and the socket.

Every datagram a media stream sends passes through
:meth:`PacketTransform.outgoing_rtp` (or ``outgoing_rtcp``) after it was
serialized, and every datagram it receives through ``incoming_rtp`` (or
``incoming_rtcp``) before it is parsed. :data:`PLAIN` leaves packets as
they are; SRTP (RFC 3711) protects and authenticates here, with keys from
the negotiated stream (``RtpConfig.transform`` makes one per stream).
"""

from __future__ import annotations

from typing import Final, Protocol

from sipwire.media.srtp import SrtpCounters, SrtpStream
from sipwire.sdp import SrtpKeys

__all__ = ["PLAIN", "PacketTransform", "PlainTransform", "SrtpTransform"]


class PacketTransform(Protocol):
    """Bytes to the wire and back; None from ``incoming_*`` drops the datagram
    (it failed authentication, or cannot be undone), None from ``outgoing_*``
    drops the packet (it could not be protected)."""

    def outgoing_rtp(self, data: bytes) -> bytes | None:
        """A serialized RTP packet as it goes on the wire."""
        ...

    def incoming_rtp(self, data: bytes) -> bytes | None:
        """A datagram from the wire as an RTP packet, or None to drop it."""
        ...

    def outgoing_rtcp(self, data: bytes) -> bytes | None:
        """A serialized compound RTCP packet as it goes on the wire."""
        ...

    def incoming_rtcp(self, data: bytes) -> bytes | None:
        """A datagram from the wire as a compound RTCP packet, or None to drop it."""
        ...


class PlainTransform:
    """RTP/AVP: packets go out and come in as they are."""

    def outgoing_rtp(self, data: bytes) -> bytes:
        """``data`` unchanged."""
        return data

    def incoming_rtp(self, data: bytes) -> bytes | None:
        """``data`` unchanged."""
        return data

    def outgoing_rtcp(self, data: bytes) -> bytes:
        """``data`` unchanged."""
        return data

    def incoming_rtcp(self, data: bytes) -> bytes | None:
        """``data`` unchanged."""
        return data


PLAIN: Final = PlainTransform()
"""The transform of plain RTP (shared: it keeps no state)."""


class SrtpTransform:
    """RTP/SAVP: SRTP and SRTCP (RFC 3711) with the keys of an SDES agreement.

    Packets that fail authentication, replays and packets that are not SRTP
    are dropped and counted in :attr:`counters` (never raised). ``counters``
    may be those of the transform this one replaces (a re-key), so that a
    call's statistics add up across keys.
    """

    __slots__ = ("keys", "srtp")

    def __init__(self, keys: SrtpKeys, counters: SrtpCounters | None = None) -> None:
        self.keys = keys
        self.srtp = SrtpStream(keys.suite, keys.local_key, keys.remote_key, counters=counters)

    @property
    def counters(self) -> SrtpCounters:
        """What the SRTP layer protected, passed and dropped."""
        return self.srtp.counters

    def outgoing_rtp(self, data: bytes) -> bytes | None:
        """The SRTP packet (None: libsrtp refused it, counted)."""
        return self.srtp.protect(data)

    def incoming_rtp(self, data: bytes) -> bytes | None:
        """The RTP packet, or None: forged, replayed or not SRTP (counted)."""
        return self.srtp.unprotect(data)

    def outgoing_rtcp(self, data: bytes) -> bytes | None:
        """The SRTCP packet (None: libsrtp refused it, counted)."""
        return self.srtp.protect_rtcp(data)

    def incoming_rtcp(self, data: bytes) -> bytes | None:
        """The compound RTCP packet, or None: forged, replayed or not SRTCP (counted)."""
        return self.srtp.unprotect_rtcp(data)

    def __repr__(self) -> str:
        return f"SrtpTransform({self.keys.suite}, {self.counters})"
