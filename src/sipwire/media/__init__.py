"""The media layer, sans-I/O: RTP and RTCP packets and statistics, a jitter
buffer, G.711, RFC 4733 DTMF and the codec registry.

Nothing here opens a socket, reads the clock or draws random numbers: time
is passed in as ``now`` (seconds), randomness comes from an injected source
(an object with ``getrandbits(k)``, or a callable ``k -> int`` such as
``secrets.randbits``), and malformed
packets raise :class:`MediaFormatError`. The asyncio edge binds it to
sockets. Modules:

- :mod:`.rtp`: RTP packets (RFC 3550 §5), sequence arithmetic, A.1 source
  validation, the sender's state and SSRC collisions (§8.2);
- :mod:`.rtcp`: RTCP packets and compound packets (§6, §A.2), RFC 5761 demux;
- :mod:`.statistics`: reception statistics (A.3, A.8), RTT, the report
  interval (§6.3, A.7) and :class:`RtcpSession`;
- :mod:`.jitter`: the adaptive jitter buffer;
- :mod:`.g711`: µ-law and A-law, and their packet-loss concealment;
- :mod:`.dtmf`: RFC 4733 telephone-events;
- :mod:`.codecs`: the codec registry; :mod:`.frame`: the audio frame.
"""

from sipwire.media.codecs import (
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    Codec,
    CodecRegistry,
    Decoder,
    Encoder,
    PayloadFormat,
    default_registry,
    negotiate_ptime,
)
from sipwire.media.dtmf import DtmfDigit, DtmfEnded, DtmfReceiver, DtmfSender, TelephoneEvent
from sipwire.media.errors import MediaError, MediaFormatError
from sipwire.media.frame import Frame
from sipwire.media.jitter import JitterBuffer, JitterStats
from sipwire.media.rtcp import (
    AppPacket,
    Bye,
    ReceiverReport,
    ReportBlock,
    RtcpPacket,
    SdesChunk,
    SenderReport,
    SourceDescription,
    UnknownRtcp,
    is_rtcp,
    parse_rtcp,
    serialize_rtcp,
)
from sipwire.media.rtp import (
    RandomSource,
    RtpExtension,
    RtpPacket,
    RtpSender,
    SequenceTracker,
    parse_rtp,
    seq_delta,
    ts_delta,
)
from sipwire.media.statistics import RtcpScheduler, RtcpSession, SourceStatistics

__all__ = [
    # packets
    "RtpPacket",
    "RtpExtension",
    "parse_rtp",
    "RtcpPacket",
    "SenderReport",
    "ReceiverReport",
    "ReportBlock",
    "SourceDescription",
    "SdesChunk",
    "Bye",
    "AppPacket",
    "UnknownRtcp",
    "parse_rtcp",
    "serialize_rtcp",
    "is_rtcp",
    # state
    "RandomSource",
    "RtpSender",
    "SequenceTracker",
    "seq_delta",
    "ts_delta",
    "SourceStatistics",
    "RtcpScheduler",
    "RtcpSession",
    # audio
    "Frame",
    "JitterBuffer",
    "JitterStats",
    "Codec",
    "PayloadFormat",
    "Encoder",
    "Decoder",
    "CodecRegistry",
    "default_registry",
    "negotiate_ptime",
    "PCMU",
    "PCMA",
    "TELEPHONE_EVENT",
    # DTMF
    "TelephoneEvent",
    "DtmfSender",
    "DtmfReceiver",
    "DtmfDigit",
    "DtmfEnded",
    # errors
    "MediaError",
    "MediaFormatError",
]
