"""RTP (RFC 3550 §5): the packet, sequence arithmetic, the sender's state.

Sans-I/O. :func:`parse_rtp` turns a datagram into an :class:`RtpPacket` or
raises :class:`~sipwire.media.errors.MediaFormatError`; ``bytes(packet)``
is the wire form. :class:`SequenceTracker` is the source validation of
RFC 3550 Appendix A.1 (probation, MAX_DROPOUT, MAX_MISORDER, 16-bit cycles);
:class:`RtpSender` holds what a sender numbers its packets with: the SSRC,
the sequence number and the timestamp, all starting from values drawn from
an injected random source (§5.1), the marker bit on the first packet of a
talkspurt, and a new SSRC on a collision (§8.2).

The fixed header (RFC 3550 §5.1)::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |V=2|P|X|  CC   |M|     PT      |       sequence number         |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                           timestamp                           |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |           synchronization source (SSRC) identifier            |
    +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
    |            contributing source (CSRC) identifiers             |
    |                             ....                              |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Final, Protocol

from sipwire.media.errors import MediaError, MediaFormatError

__all__ = [
    "MAX_DROPOUT",
    "MAX_MISORDER",
    "MIN_SEQUENTIAL",
    "RTP_SEQ_MOD",
    "RTP_VERSION",
    "RandomSource",
    "Randomness",
    "RtpExtension",
    "RtpPacket",
    "RtpSender",
    "SequenceTracker",
    "extend_seq",
    "extend_timestamp",
    "parse_rtp",
    "random_bits",
    "random_fraction",
    "seq_delta",
    "ts_delta",
]

RTP_VERSION: Final = 2
RTP_SEQ_MOD: Final = 1 << 16
MAX_DROPOUT: Final = 3000
"""A.1: a forward jump of fewer packets than this is a gap, not a restart."""
MAX_MISORDER: Final = 100
"""A.1: a backward step of at most this many packets is a reordered packet."""
MIN_SEQUENTIAL: Final = 2
"""A.1: packets in sequence before a new source is valid."""

_FIXED = struct.Struct("!BBHII")
_EXTENSION_HEADER = struct.Struct("!HH")
_CSRCS = [struct.Struct(f"!{n}I") for n in range(16)]


# ---------------------------------------------------------------- randomness


class RandomSource(Protocol):
    """Where SSRCs, initial sequence numbers and timestamps, and the RTCP
    interval's randomization come from: ``random.Random(seed)`` in tests,
    ``secrets.SystemRandom()`` at the edge."""

    def getrandbits(self, k: int, /) -> int:
        """A non-negative int of ``k`` random bits."""
        ...


Randomness = RandomSource | Callable[[int], int]
"""An object with ``getrandbits(k)``, or a callable ``k -> int`` of ``k``
random bits (``secrets.randbits``)."""


def random_bits(source: Randomness, k: int) -> int:
    """``k`` random bits from ``source`` (masked, whatever the source returns)."""
    draw = source if callable(source) else source.getrandbits
    return int(draw(k)) & ((1 << k) - 1)


def random_fraction(source: Randomness) -> float:
    """A float in [0, 1) with 53 random bits."""
    return random_bits(source, 53) / (1 << 53)


# ---------------------------------------------------------------- arithmetic


def seq_delta(a: int, b: int) -> int:
    """``a - b`` for 16-bit sequence numbers, in [-32768, 32767] (wrap-around)."""
    return ((a - b + 0x8000) & 0xFFFF) - 0x8000


def ts_delta(a: int, b: int) -> int:
    """``a - b`` for 32-bit RTP timestamps, in [-2**31, 2**31)."""
    return ((a - b + 0x80000000) & 0xFFFFFFFF) - 0x80000000


def extend_seq(seq: int, reference: int) -> int:
    """The extended (unwrapped) sequence number nearest to ``reference``.

    ``reference`` is an extended sequence number seen before; the result is
    ``seq`` plus whatever multiple of 2**16 puts it within 2**15 of it.
    """
    return reference + seq_delta(seq, reference & 0xFFFF)


def extend_timestamp(timestamp: int, reference: int) -> int:
    """The extended RTP timestamp nearest to the extended ``reference``."""
    return reference + ts_delta(timestamp, reference & 0xFFFFFFFF)


# ---------------------------------------------------------------- the packet


@dataclass(slots=True)
class RtpExtension:
    """The header extension of §5.3.1: 16 profile-defined bits and the data.

    ``data`` is a whole number of 32-bit words (RFC 8285 profiles 0xBEDE and
    0x100x carry their elements in it, padded).
    """

    profile: int
    data: bytes = b""


@dataclass(slots=True)
class RtpPacket:
    """One RTP packet (RFC 3550 §5.1). A value: parse it, read it, build one, ``bytes()`` it.

    ``padding`` is the number of padding octets (the P bit is set when it is
    non-zero; the last octet holds the count, the others are sent as zeros).
    """

    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: RtpExtension | None = None
    padding: int = 0

    version: ClassVar[int] = RTP_VERSION

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Same as :func:`parse_rtp`."""
        return parse_rtp(data)

    def __bytes__(self) -> bytes:
        pt = self.payload_type
        if pt >> 7:
            raise MediaError(f"RTP payload type {pt} is not in 0..127")
        second = pt | 0x80 if self.marker else pt
        try:
            if not (self.csrcs or self.extension is not None or self.padding):
                return (
                    _FIXED.pack(0x80, second, self.sequence_number, self.timestamp, self.ssrc)
                    + self.payload
                )
            return self._pack_full(second)
        except struct.error as exc:
            raise MediaError(f"RTP header field out of range: {exc}") from None

    def _pack_full(self, second: int) -> bytes:
        count = len(self.csrcs)
        if count > 15:
            raise MediaError(f"{count} CSRCs: at most 15 fit the CC field")
        first = 0x80 | count
        parts = [b"", _CSRCS[count].pack(*self.csrcs)]
        ext = self.extension
        if ext is not None:
            size = len(ext.data)
            if size % 4:
                raise MediaError("RTP header extension data is not a whole number of words")
            first |= 0x10
            parts.append(_EXTENSION_HEADER.pack(ext.profile, size // 4))
            parts.append(ext.data)
        parts.append(self.payload)
        if self.padding:
            if not 0 < self.padding < 256:
                raise MediaError(f"RTP padding {self.padding} is not in 1..255")
            first |= 0x20
            parts.append(bytes(self.padding - 1) + bytes((self.padding,)))
        parts[0] = _FIXED.pack(first, second, self.sequence_number, self.timestamp, self.ssrc)
        return b"".join(parts)


def parse_rtp(data: bytes) -> RtpPacket:
    """An RTP packet from a datagram (RFC 3550 §5.1, §5.3.1).

    Raises MediaFormatError for anything that is not one: shorter than the
    header, a version other than 2, CSRCs or an extension running past the
    end, a padding count of zero or longer than the payload (§A.1's checks).
    The payload type is not judged here: whether it is known is the
    session's business (and RFC 5761's, see :func:`sipwire.media.rtcp.is_rtcp`).
    """
    size = len(data)
    if size < 12:
        raise MediaFormatError(f"RTP packet of {size} bytes is shorter than its header")
    first, second, seq, ts, ssrc = _FIXED.unpack_from(data)
    if first & 0xC0 != 0x80:
        raise MediaFormatError(f"RTP version {first >> 6} is not 2")
    if not first & 0x3F:
        return RtpPacket(second & 0x7F, seq, ts, ssrc, data[12:], second > 127)
    count = first & 0x0F
    offset = 12 + 4 * count
    if offset > size:
        raise MediaFormatError(f"{count} CSRCs run past the end of the RTP packet")
    csrcs: tuple[int, ...] = _CSRCS[count].unpack_from(data, 12) if count else ()
    extension = None
    if first & 0x10:
        if offset + 4 > size:
            raise MediaFormatError("RTP header extension runs past the end of the packet")
        profile, words = _EXTENSION_HEADER.unpack_from(data, offset)
        start = offset + 4
        offset = start + 4 * words
        if offset > size:
            raise MediaFormatError("RTP header extension runs past the end of the packet")
        extension = RtpExtension(profile, data[start:offset])
    end = size
    padding = 0
    if first & 0x20:
        padding = data[-1]
        if padding == 0 or padding > size - offset:
            raise MediaFormatError(f"RTP padding count {padding} does not fit the packet")
        end -= padding
    return RtpPacket(
        second & 0x7F, seq, ts, ssrc, data[offset:end], second > 127, csrcs, extension, padding
    )


# ---------------------------------------------------------------- A.1 source validation


class SequenceTracker:
    """The per-source sequence state of RFC 3550 Appendix A.1 (``update_seq``).

    Make one with the first packet's sequence number, then call
    :meth:`update` for every packet of the source, the first included. A
    new source is on probation until ``probation`` packets arrived in
    sequence (``MIN_SEQUENTIAL``; 0 accepts the first packet at once).
    After that, a jump forward of less than ``MAX_DROPOUT`` is a gap, a step
    back of at most ``MAX_MISORDER`` a reordered or duplicate packet, and
    anything else a possible restart: two such packets in sequence resync.
    """

    __slots__ = (
        "bad_seq",
        "base_seq",
        "cycles",
        "expected_prior",
        "max_seq",
        "probation",
        "received",
        "received_prior",
    )

    def __init__(self, seq: int, probation: int = MIN_SEQUENTIAL) -> None:
        self.base_seq = seq
        self.max_seq = seq
        self.bad_seq = RTP_SEQ_MOD + 1
        self.cycles = 0
        self.received = 0
        self.received_prior = 0
        self.expected_prior = 0
        self.probation = probation
        if probation:
            self.max_seq = (seq - 1) & 0xFFFF

    def _restart(self, seq: int) -> None:
        """A.1 ``init_seq``."""
        self.base_seq = seq
        self.max_seq = seq
        self.bad_seq = RTP_SEQ_MOD + 1
        self.cycles = 0
        self.received = 0
        self.received_prior = 0
        self.expected_prior = 0

    def update(self, seq: int) -> bool:
        """Account for a packet; False when it is not (yet) valid and should be dropped."""
        udelta = (seq - self.max_seq) & 0xFFFF
        if self.probation:
            if seq == (self.max_seq + 1) & 0xFFFF:
                self.probation -= 1
                self.max_seq = seq
                if self.probation == 0:
                    self._restart(seq)
                    self.received += 1
                    return True
            else:
                self.probation = MIN_SEQUENTIAL - 1
                self.max_seq = seq
            return False
        if udelta < MAX_DROPOUT:
            if seq < self.max_seq:
                self.cycles += RTP_SEQ_MOD
            self.max_seq = seq
        elif udelta <= RTP_SEQ_MOD - MAX_MISORDER:
            if seq == self.bad_seq:
                self._restart(seq)
            else:
                self.bad_seq = (seq + 1) & 0xFFFF
                return False
        self.received += 1
        return True

    @property
    def extended_max(self) -> int:
        """The extended highest sequence number received (cycles + max_seq)."""
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        """Packets expected: extended highest - base + 1 (A.3)."""
        return self.cycles + self.max_seq - self.base_seq + 1

    @property
    def lost(self) -> int:
        """Cumulative packets lost (A.3): expected - received; negative with duplicates."""
        return self.expected - self.received


# ---------------------------------------------------------------- the sender


class RtpSender:
    """What a sender numbers its RTP packets with (RFC 3550 §5.1).

    The SSRC, the first sequence number and the first timestamp are random
    (§5.1, §8). The sequence number is drawn below 2**15, the libSRTP advice
    for SRTP's rollover-counter guess (RFC 3711 §3.3.1): a receiver that
    misses the first packets still guesses the ROC right.

    :meth:`packet` makes the next audio packet and advances the timestamp by
    the samples it carries (in RTP clock units); the first packet, and the
    first after :meth:`pause`, has the marker bit (a talkspurt starts,
    RFC 3551 §4.1). :meth:`event_packet` sends a packet with a timestamp of
    its own (RFC 4733 events) and :meth:`advance` moves the clock on without
    sending. ``packet_count`` and ``octet_count`` are the SR's counters for
    the current SSRC (§6.4.1: payload octets only).
    """

    __slots__ = (
        "_random",
        "_talkspurt",
        "octet_count",
        "packet_count",
        "payload_type",
        "sequence_number",
        "ssrc",
        "timestamp",
    )

    def __init__(self, random: Randomness, payload_type: int, *, ssrc: int | None = None) -> None:
        self._random = random
        self.payload_type = payload_type
        """The payload type of audio packets."""
        self.ssrc = random_bits(random, 32) if ssrc is None else ssrc
        """Our synchronization source identifier."""
        self.sequence_number = random_bits(random, 15)
        """The sequence number of the next packet."""
        self.timestamp = random_bits(random, 32)
        """The RTP timestamp of the next audio packet."""
        self.packet_count = 0
        self.octet_count = 0
        self._talkspurt = True

    def packet(self, payload: bytes, samples: int, *, marker: bool = False) -> RtpPacket:
        """The next audio packet: ``payload`` covering ``samples`` RTP clock units.

        The marker bit is set on the first packet of a talkspurt, or when
        ``marker`` asks for it.
        """
        packet = RtpPacket(
            self.payload_type,
            self.sequence_number,
            self.timestamp,
            self.ssrc,
            payload,
            marker or self._talkspurt,
        )
        self._talkspurt = False
        self.sequence_number = (self.sequence_number + 1) & 0xFFFF
        self.timestamp = (self.timestamp + samples) & 0xFFFFFFFF
        self.packet_count += 1
        self.octet_count += len(payload)
        return packet

    def pack(self, payload: bytes, samples: int) -> bytes:
        """The next audio packet as :meth:`packet` makes it, serialized at once.

        The path of every packet a stream sends: no :class:`RtpPacket` is built.
        """
        second = self.payload_type
        if second >> 7:
            raise MediaError(f"RTP payload type {second} is not in 0..127")
        if self._talkspurt:
            second |= 0x80
            self._talkspurt = False
        sequence_number = self.sequence_number
        timestamp = self.timestamp
        self.sequence_number = (sequence_number + 1) & 0xFFFF
        self.timestamp = (timestamp + samples) & 0xFFFFFFFF
        self.packet_count += 1
        self.octet_count += len(payload)
        return _FIXED.pack(0x80, second, sequence_number, timestamp, self.ssrc) + payload

    def event_packet(
        self, payload: bytes, payload_type: int, timestamp: int, *, marker: bool = False
    ) -> RtpPacket:
        """A packet with its own timestamp (a telephone-event, RFC 4733 §2.3.1).

        Takes the next sequence number; leaves the audio timestamp alone.
        """
        packet = RtpPacket(
            payload_type, self.sequence_number, timestamp & 0xFFFFFFFF, self.ssrc, payload, marker
        )
        self.sequence_number = (self.sequence_number + 1) & 0xFFFF
        self.packet_count += 1
        self.octet_count += len(payload)
        return packet

    def advance(self, samples: int) -> None:
        """Time passes without an audio packet (a telephone-event replaces it)."""
        self.timestamp = (self.timestamp + samples) & 0xFFFFFFFF

    def pause(self, samples: int) -> None:
        """Silence (no packets) for ``samples``: the next packet starts a talkspurt."""
        self.advance(samples)
        self._talkspurt = True

    def handle_collision(self, ssrc: int, in_use: frozenset[int] = frozenset()) -> int | None:
        """§8.2: a packet from another source carries ``ssrc``.

        When it is ours, choose a new random SSRC (never one in ``in_use``),
        restart the counters, and return the old SSRC, for which the caller
        sends an RTCP BYE. Otherwise return None.
        """
        if ssrc != self.ssrc:
            return None
        old = self.ssrc
        new = old
        while new == old or new in in_use:
            new = random_bits(self._random, 32)
        self.ssrc = new
        self.packet_count = 0
        self.octet_count = 0
        self._talkspurt = True
        return old
