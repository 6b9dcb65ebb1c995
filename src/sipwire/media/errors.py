"""The errors of the media layer.

Like every sipwire error they derive from :class:`sipwire.errors.SipError`.
A malformed RTP or RTCP packet, or a telephone-event payload, raises
:class:`MediaFormatError` and nothing else: the I/O edge that received the
datagram drops it and counts it (RFC 3550 §A.1, §A.2 say what to discard).
"""

from __future__ import annotations

from sipwire.errors import LocalProtocolError, ParseError

__all__ = ["MediaError", "MediaFormatError"]


class MediaFormatError(ParseError):
    """Bytes that are not a well-formed RTP or RTCP packet (or payload).

    The status hint (400) has no SIP meaning here: media errors are answered
    by dropping the datagram, never by a response.
    """


class MediaError(LocalProtocolError):
    """The application asked the media layer for something the RFCs forbid
    (a packet that cannot be serialized, an unknown DTMF digit ...)."""
