"""SDP (RFC 8866) and the offer/answer model (RFC 3264), as pure data.

``parse_sdp`` turns a body into a :class:`SessionDescription`, ``bytes()``
turns it back; :class:`OfferAnswer` negotiates codecs, ports and directions
for one session. Nothing here does I/O or reads a clock.
"""

from sipwire.sdp.codecs import (
    CN,
    G722,
    G729,
    H264,
    KNOWN_CODECS,
    OPUS,
    PCMA,
    PCMU,
    STATIC_PAYLOAD_TYPES,
    TELEPHONE_EVENT,
    VP8,
    VP9,
    Codec,
    codec_from_rtpmap,
    fmtp_params,
    media_codecs,
)
from sipwire.sdp.negotiation import SrtpKeys
from sipwire.sdp.offer_answer import (
    GlareError,
    NegotiatedStream,
    OfferAnswer,
    OfferAnswerError,
    OfferAnswerState,
)
from sipwire.sdp.parser import parse_sdp
from sipwire.sdp.rtp_params import RtpParameters, rtp_parameters
from sipwire.sdp.sdes import SdesOfferAnswer, SrtpMode
from sipwire.sdp.session import (
    Attribute,
    Bandwidth,
    Connection,
    Direction,
    ExtraLine,
    MediaDescription,
    Origin,
    RtpMap,
    SdpError,
    SessionDescription,
    Timing,
    parse_rtpmap,
)

__all__ = [
    # data model and syntax
    "Attribute",
    "Bandwidth",
    "Connection",
    "Direction",
    "ExtraLine",
    "MediaDescription",
    "Origin",
    "RtpMap",
    "SdpError",
    "SessionDescription",
    "Timing",
    "parse_rtpmap",
    "parse_sdp",
    # codecs
    "CN",
    "G722",
    "G729",
    "H264",
    "KNOWN_CODECS",
    "OPUS",
    "PCMA",
    "PCMU",
    "STATIC_PAYLOAD_TYPES",
    "TELEPHONE_EVENT",
    "VP8",
    "VP9",
    "Codec",
    "codec_from_rtpmap",
    "fmtp_params",
    "media_codecs",
    # offer/answer
    "GlareError",
    "NegotiatedStream",
    "OfferAnswer",
    "OfferAnswerError",
    "OfferAnswerState",
    # SDES-SRTP (RFC 4568)
    "SdesOfferAnswer",
    "SrtpKeys",
    "SrtpMode",
    # RTP transport parameters
    "RtpParameters",
    "rtp_parameters",
]
