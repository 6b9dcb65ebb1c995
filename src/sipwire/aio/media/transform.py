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

__all__ = ["PLAIN", "PacketTransform", "PlainTransform"]


class PacketTransform(Protocol):
    """Bytes to the wire and back; None from ``incoming_*`` drops the datagram
    (it failed authentication, or cannot be undone)."""

    def outgoing_rtp(self, data: bytes) -> bytes:
        """A serialized RTP packet as it goes on the wire."""
        ...

    def incoming_rtp(self, data: bytes) -> bytes | None:
        """A datagram from the wire as an RTP packet, or None to drop it."""
        ...

    def outgoing_rtcp(self, data: bytes) -> bytes:
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
