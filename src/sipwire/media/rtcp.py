"""RTCP packets (RFC 3550 §6): SR, RR, SDES, BYE, APP, compound packets, and
how to tell RTCP from RTP on one port (RFC 5761 §4).

Sans-I/O wire format only; the statistics a report carries are computed by
:mod:`sipwire.media.statistics`. :func:`parse_rtcp` reads a compound packet
with the validity checks of RFC 3550 §A.2 and raises
:class:`~sipwire.media.errors.MediaFormatError` on anything malformed;
:func:`serialize_rtcp` writes one. Packet types this module does not model
(RTPFB/PSFB feedback, XR ...) come through as :class:`UnknownRtcp` with
their body untouched, so a compound packet always round-trips.

The common header (§6.4.1)::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |V=2|P|    RC   |   PT=SR=200   |             length            |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

``length`` is the packet's length in 32-bit words minus one, header and
padding included.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, Final

from sipwire.media.errors import MediaError, MediaFormatError

__all__ = [
    "APP",
    "BYE",
    "NTP_UNIX_OFFSET",
    "RR",
    "RTCP_MUX_CONFLICTING_PAYLOAD_TYPES",
    "SDES",
    "SR",
    "AppPacket",
    "Bye",
    "ReceiverReport",
    "ReportBlock",
    "RtcpPacket",
    "SdesChunk",
    "SdesItem",
    "SenderReport",
    "SourceDescription",
    "UnknownRtcp",
    "compact_ntp",
    "is_rtcp",
    "ntp_seconds",
    "ntp_timestamp",
    "parse_rtcp",
    "serialize_rtcp",
]

SR: Final = 200
RR: Final = 201
SDES: Final = 202
BYE: Final = 203
APP: Final = 204

RTCP_MUX_CONFLICTING_PAYLOAD_TYPES: Final = range(64, 96)
"""RTP payload types that RFC 5761 §4 forbids on a multiplexed port: with
the marker bit they look like RTCP packet types 192-223."""

NTP_UNIX_OFFSET: Final = 2_208_988_800
"""Seconds from the NTP epoch (1900) to the Unix epoch (1970)."""

_HEADER = struct.Struct("!BBH")
_WORD = struct.Struct("!I")
_SR_INFO = struct.Struct("!IQIII")
_REPORT_BLOCK = struct.Struct("!6I")
_APP_HEAD = struct.Struct("!I4s")


# ---------------------------------------------------------------- helpers


def is_rtcp(data: bytes) -> bool:
    """RFC 5761 §4: on a port carrying both, a datagram whose second octet is
    192-223 (RTCP packet types 192-223, RTP payload types 64-95 with the
    marker) is RTCP; everything else is RTP."""
    return len(data) > 1 and 192 <= data[1] <= 223


def ntp_timestamp(seconds: float) -> int:
    """A 64-bit NTP timestamp (§4): 32 bits of seconds since 1900, 32 of fraction.

    ``seconds`` counts from the NTP epoch; add :data:`NTP_UNIX_OFFSET` to a
    Unix time first.
    """
    return int(seconds * 4294967296.0) & 0xFFFFFFFFFFFFFFFF


def ntp_seconds(ntp: int) -> float:
    """The seconds a 64-bit NTP timestamp stands for (since its epoch, mod 2**32 s)."""
    return ntp / 4294967296.0


def compact_ntp(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp (16.16 fixed point): LSR's unit (§6.4.1)."""
    return (ntp >> 16) & 0xFFFFFFFF


def _check_count(count: int, what: str) -> None:
    if count > 31:
        raise MediaError(f"{count} {what}: at most 31 fit an RTCP count field")


def _check_words(data: bytes, what: str) -> None:
    if len(data) % 4:
        raise MediaError(f"{what} is not a whole number of 32-bit words")


def _pad4(data: bytes) -> bytes:
    return data + bytes(-len(data) % 4)


# ---------------------------------------------------------------- packets


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """One reception report (§6.4.1) about the source ``ssrc``."""

    ssrc: int
    fraction_lost: int = 0
    """Lost since the previous report, in 1/256 of the packets expected (8 bits)."""
    cumulative_lost: int = 0
    """Lost since reception began: signed 24 bits (duplicates can make it negative)."""
    highest_sequence: int = 0
    """Extended highest sequence number received: 16 bits of cycles, 16 of sequence."""
    jitter: int = 0
    """Interarrival jitter in RTP timestamp units (§6.4.1, A.8)."""
    lsr: int = 0
    """Last SR timestamp: the middle 32 bits of the NTP time of the last SR from ``ssrc``."""
    dlsr: int = 0
    """Delay since that SR, in units of 1/65536 s."""

    def _pack(self) -> bytes:
        if not 0 <= self.fraction_lost <= 255:
            raise MediaError(f"fraction lost {self.fraction_lost} is not in 0..255")
        if not -0x800000 <= self.cumulative_lost <= 0x7FFFFF:
            raise MediaError(f"cumulative lost {self.cumulative_lost} does not fit 24 bits")
        return _REPORT_BLOCK.pack(
            self.ssrc,
            (self.fraction_lost << 24) | (self.cumulative_lost & 0xFFFFFF),
            self.highest_sequence,
            self.jitter,
            self.lsr,
            self.dlsr,
        )


def _parse_blocks(data: bytes, offset: int, count: int) -> tuple[ReportBlock, ...]:
    blocks = []
    for index in range(count):
        ssrc, lost, highest, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(
            data, offset + 24 * index
        )
        cumulative = lost & 0xFFFFFF
        if cumulative & 0x800000:
            cumulative -= 0x1000000
        blocks.append(ReportBlock(ssrc, lost >> 24, cumulative, highest, jitter, lsr, dlsr))
    return tuple(blocks)


@dataclass(frozen=True, slots=True)
class SenderReport:
    """SR (§6.4.1): sender information, then reception reports."""

    ssrc: int
    ntp_timestamp: int
    """Wallclock time of the report, 64-bit NTP format."""
    rtp_timestamp: int
    """The same instant in the sender's RTP timestamp units."""
    packet_count: int
    octet_count: int
    """Payload octets sent since the sender started (headers and padding excluded)."""
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""
    """Profile-specific extension (whole 32-bit words)."""

    packet_type: ClassVar[int] = SR

    @property
    def count(self) -> int:
        return len(self.reports)

    def body(self) -> bytes:
        _check_count(len(self.reports), "report blocks")
        _check_words(self.extension, "SR profile extension")
        info = _SR_INFO.pack(
            self.ssrc, self.ntp_timestamp, self.rtp_timestamp, self.packet_count, self.octet_count
        )
        return b"".join([info, *(block._pack() for block in self.reports), self.extension])

    def __bytes__(self) -> bytes:
        return _serialize(self)


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    """RR (§6.4.2): reception reports from a participant that is not sending."""

    ssrc: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""

    packet_type: ClassVar[int] = RR

    @property
    def count(self) -> int:
        return len(self.reports)

    def body(self) -> bytes:
        _check_count(len(self.reports), "report blocks")
        _check_words(self.extension, "RR profile extension")
        parts = [_WORD.pack(self.ssrc), *(block._pack() for block in self.reports)]
        return b"".join([*parts, self.extension])

    def __bytes__(self) -> bytes:
        return _serialize(self)


class SdesItem(IntEnum):
    """SDES item types (§6.5)."""

    END = 0
    CNAME = 1
    NAME = 2
    EMAIL = 3
    PHONE = 4
    LOC = 5
    TOOL = 6
    NOTE = 7
    PRIV = 8


@dataclass(frozen=True, slots=True)
class SdesChunk:
    """One SDES chunk (§6.5): a source and its items, as (type, value) pairs.

    Values are the bytes on the wire (UTF-8 text by §6.5, but a peer may
    send anything); :attr:`cname` decodes the CNAME.
    """

    ssrc: int
    items: tuple[tuple[int, bytes], ...] = ()

    @classmethod
    def with_cname(cls, ssrc: int, cname: str) -> SdesChunk:
        """A chunk carrying the CNAME alone (what §6.1 asks in every compound)."""
        return cls(ssrc, ((SdesItem.CNAME, cname.encode("utf-8")),))

    @property
    def cname(self) -> str | None:
        """The CNAME item, decoded (invalid UTF-8 replaced), or None."""
        for kind, value in self.items:
            if kind == SdesItem.CNAME:
                return value.decode("utf-8", "replace")
        return None

    def _pack(self) -> bytes:
        parts = [_WORD.pack(self.ssrc)]
        for kind, value in self.items:
            if not 0 < kind < 256 or len(value) > 255:
                raise MediaError(f"SDES item {kind} of {len(value)} octets cannot be sent")
            parts.append(bytes((kind, len(value))) + value)
        items = b"".join(parts)
        return items + bytes(4 - len(items) % 4)


@dataclass(frozen=True, slots=True)
class SourceDescription:
    """SDES (§6.5): one chunk per source."""

    chunks: tuple[SdesChunk, ...] = ()

    packet_type: ClassVar[int] = SDES

    @property
    def count(self) -> int:
        return len(self.chunks)

    def body(self) -> bytes:
        _check_count(len(self.chunks), "SDES chunks")
        return b"".join(chunk._pack() for chunk in self.chunks)

    def __bytes__(self) -> bytes:
        return _serialize(self)


@dataclass(frozen=True, slots=True)
class Bye:
    """BYE (§6.6): the sources that leave, and an optional reason."""

    sources: tuple[int, ...]
    reason: bytes = b""

    packet_type: ClassVar[int] = BYE

    @property
    def count(self) -> int:
        return len(self.sources)

    def body(self) -> bytes:
        _check_count(len(self.sources), "BYE sources")
        if len(self.reason) > 255:
            raise MediaError("BYE reason longer than 255 octets")
        body = struct.pack(f"!{len(self.sources)}I", *self.sources)
        if self.reason:
            body += _pad4(bytes((len(self.reason),)) + self.reason)
        return body

    def __bytes__(self) -> bytes:
        return _serialize(self)


@dataclass(frozen=True, slots=True)
class AppPacket:
    """APP (§6.7): passed through untouched; ``name`` is four ASCII octets."""

    subtype: int
    ssrc: int
    name: bytes
    data: bytes = b""

    packet_type: ClassVar[int] = APP

    @property
    def count(self) -> int:
        return self.subtype

    def body(self) -> bytes:
        _check_count(self.subtype, "as APP subtype")
        if len(self.name) != 4:
            raise MediaError("APP name is not four octets")
        _check_words(self.data, "APP data")
        return _APP_HEAD.pack(self.ssrc, self.name) + self.data

    def __bytes__(self) -> bytes:
        return _serialize(self)


@dataclass(frozen=True, slots=True)
class UnknownRtcp:
    """A packet type not modelled here (RTPFB 205, PSFB 206, XR 207 ...), kept as is."""

    packet_type: int
    count: int
    body_bytes: bytes = b""

    def body(self) -> bytes:
        _check_count(self.count, "as count")
        _check_words(self.body_bytes, "RTCP packet body")
        return self.body_bytes

    def __bytes__(self) -> bytes:
        return _serialize(self)


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Bye | AppPacket | UnknownRtcp


def _packet(packet_type: int, count: int, body: bytes, padding: int = 0) -> bytes:
    words = (len(body) + padding) // 4
    if not 0 <= packet_type <= 255:
        raise MediaError(f"RTCP packet type {packet_type} is not in 0..255")
    if words > 0xFFFF:
        raise MediaError("RTCP packet longer than its 16-bit length field allows")
    first = 0xA0 | count if padding else 0x80 | count
    pad = bytes(padding - 1) + bytes((padding,)) if padding else b""
    return _HEADER.pack(first, packet_type, words) + body + pad


def _serialize(packet: RtcpPacket, padding: int = 0) -> bytes:
    try:
        return _packet(packet.packet_type, packet.count, packet.body(), padding)
    except struct.error as exc:
        raise MediaError(f"RTCP field out of range: {exc}") from None


def serialize_rtcp(packets: Iterable[RtcpPacket], *, padding: int = 0) -> bytes:
    """A compound RTCP packet (§6.1): the packets in order, ``padding`` octets
    (a multiple of 4, at most 252) after the last one, with its P bit set."""
    items = list(packets)
    if not items:
        raise MediaError("a compound RTCP packet needs at least one packet")
    if padding and (padding % 4 or not 0 < padding < 256):
        raise MediaError(f"RTCP padding {padding} is not a multiple of 4 in 4..252")
    head = b"".join(_serialize(packet) for packet in items[:-1])
    return head + _serialize(items[-1], padding)


# ---------------------------------------------------------------- parsing


def _parse_sr(count: int, data: bytes, start: int, end: int) -> RtcpPacket:
    blocks_end = start + 24 + 24 * count
    if blocks_end > end:
        raise MediaFormatError(f"SR with {count} report blocks is too short")
    ssrc, ntp, rtp_ts, packets, octets = _SR_INFO.unpack_from(data, start)
    reports = _parse_blocks(data, start + 24, count)
    return SenderReport(ssrc, ntp, rtp_ts, packets, octets, reports, data[blocks_end:end])


def _parse_rr(count: int, data: bytes, start: int, end: int) -> RtcpPacket:
    blocks_end = start + 4 + 24 * count
    if blocks_end > end:
        raise MediaFormatError(f"RR with {count} report blocks is too short")
    (ssrc,) = _WORD.unpack_from(data, start)
    return ReceiverReport(ssrc, _parse_blocks(data, start + 4, count), data[blocks_end:end])


def _parse_sdes(count: int, data: bytes, start: int, end: int) -> RtcpPacket:
    chunks = []
    pos = start
    for _ in range(count):
        if pos + 4 > end:
            raise MediaFormatError("SDES chunk runs past the end of the packet")
        (ssrc,) = _WORD.unpack_from(data, pos)
        pos += 4
        items = []
        while True:
            if pos >= end:
                raise MediaFormatError("SDES chunk has no terminating null item")
            kind = data[pos]
            if kind == SdesItem.END:
                pos = (pos + 4) & ~3  # the null octet(s) up to the next word (§6.5)
                break
            if pos + 2 > end or pos + 2 + data[pos + 1] > end:
                raise MediaFormatError("SDES item runs past the end of the packet")
            size = data[pos + 1]
            items.append((kind, data[pos + 2 : pos + 2 + size]))
            pos += 2 + size
        chunks.append(SdesChunk(ssrc, tuple(items)))
    if pos > end:
        raise MediaFormatError("SDES chunk padding runs past the end of the packet")
    return SourceDescription(tuple(chunks))


def _parse_bye(count: int, data: bytes, start: int, end: int) -> RtcpPacket:
    pos = start + 4 * count
    if pos > end:
        raise MediaFormatError(f"BYE with {count} sources is too short")
    sources = struct.unpack_from(f"!{count}I", data, start)
    reason = b""
    if pos < end:
        size = data[pos]
        if pos + 1 + size > end:
            raise MediaFormatError("BYE reason runs past the end of the packet")
        reason = data[pos + 1 : pos + 1 + size]
    return Bye(sources, reason)


def _parse_app(count: int, data: bytes, start: int, end: int) -> RtcpPacket:
    if start + 8 > end:
        raise MediaFormatError("APP packet is too short")
    ssrc, name = _APP_HEAD.unpack_from(data, start)
    return AppPacket(count, ssrc, name, data[start + 8 : end])


_PARSERS: dict[int, Callable[[int, bytes, int, int], RtcpPacket]] = {
    SR: _parse_sr,
    RR: _parse_rr,
    SDES: _parse_sdes,
    BYE: _parse_bye,
    APP: _parse_app,
}


def parse_rtcp(data: bytes, *, strict: bool = True) -> list[RtcpPacket]:
    """The packets of a compound RTCP packet, with the checks of RFC 3550 §A.2.

    Every packet has version 2, its length inside the datagram, and the
    lengths add up to the datagram's; only the last packet may be padded
    (so the first only when it is alone), and its padding count fits its
    body. ``strict`` adds §A.2's test of the first packet: an SR or an RR
    (§6.1); pass False for reduced-size RTCP (RFC 5506).
    """
    size = len(data)
    if size < 4 or size % 4:
        raise MediaFormatError(f"RTCP datagram of {size} bytes is not a whole number of words")
    packets: list[RtcpPacket] = []
    offset = 0
    while offset < size:
        first, packet_type, words = _HEADER.unpack_from(data, offset)
        if first >> 6 != 2:
            raise MediaFormatError(f"RTCP version {first >> 6} is not 2")
        end = offset + 4 + 4 * words
        if end > size:
            raise MediaFormatError("RTCP packet length runs past the end of the datagram")
        body_end = end
        if first & 0x20:
            if end != size:
                raise MediaFormatError("RTCP padding on a packet that is not the last")
            padding = data[end - 1]
            if padding == 0 or padding > 4 * words:
                raise MediaFormatError(f"RTCP padding count {padding} does not fit the packet")
            body_end -= padding
        if strict and offset == 0 and packet_type not in (SR, RR):
            raise MediaFormatError("compound RTCP packet does not start with an SR or RR")
        count = first & 0x1F
        parser = _PARSERS.get(packet_type)
        if parser is None:
            packets.append(UnknownRtcp(packet_type, count, data[offset + 4 : body_end]))
        else:
            packets.append(parser(count, data, offset + 4, body_end))
        offset = end
    return packets
