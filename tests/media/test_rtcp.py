"""RTCP packets and compound packets (RFC 3550 §6, §A.2), RFC 5761 demux."""

from __future__ import annotations

import pytest

from sipwire.media.errors import MediaError, MediaFormatError
from sipwire.media.rtcp import (
    NTP_UNIX_OFFSET,
    AppPacket,
    Bye,
    ReceiverReport,
    ReportBlock,
    SdesChunk,
    SdesItem,
    SenderReport,
    SourceDescription,
    UnknownRtcp,
    compact_ntp,
    is_rtcp,
    ntp_seconds,
    ntp_timestamp,
    parse_rtcp,
    serialize_rtcp,
)

SR_HEX = (
    "81c8000c" "11111111" "83aa7e8000000000" "00000100" "0000000a" "00000640"
    "22222222" "40ffffff" "00010005" "00000020" "7e800000" "00010000"
)  # fmt: skip
SDES_HEX = "81ca00041111111101076140622e636f6d000000"
BYE_HEX = "81cb00021111111103627965"
COMPOUND = bytes.fromhex(SR_HEX + SDES_HEX + BYE_HEX)

SR_PACKET = SenderReport(
    0x11111111,
    0x83AA7E80_00000000,
    0x100,
    10,
    1600,
    (ReportBlock(0x22222222, 0x40, -1, 0x10005, 0x20, 0x7E800000, 0x10000),),
)
SDES_PACKET = SourceDescription((SdesChunk.with_cname(0x11111111, "a@b.com"),))
BYE_PACKET = Bye((0x11111111,), b"bye")


class TestCompound:
    def test_parse_known_bytes(self) -> None:
        assert parse_rtcp(COMPOUND) == [SR_PACKET, SDES_PACKET, BYE_PACKET]

    def test_serialize_known_bytes(self) -> None:
        assert serialize_rtcp([SR_PACKET, SDES_PACKET, BYE_PACKET]) == COMPOUND
        assert bytes(SR_PACKET) == bytes.fromhex(SR_HEX)

    def test_fields(self) -> None:
        sr, sdes, bye = parse_rtcp(COMPOUND)
        assert isinstance(sr, SenderReport)
        assert sr.reports[0].cumulative_lost == -1
        assert sr.count == 1
        assert isinstance(sdes, SourceDescription)
        assert sdes.chunks[0].cname == "a@b.com"
        assert isinstance(bye, Bye)
        assert bye.reason == b"bye"

    def test_padding_on_the_last_packet(self) -> None:
        data = serialize_rtcp([SR_PACKET, SDES_PACKET], padding=8)
        assert len(data) == len(bytes.fromhex(SR_HEX + SDES_HEX)) + 8
        assert data[len(bytes.fromhex(SR_HEX))] & 0x20  # P bit of the SDES
        assert data[-1] == 8
        assert parse_rtcp(data) == [SR_PACKET, SDES_PACKET]

    def test_receiver_report_and_extension(self) -> None:
        rr = ReceiverReport(
            5, (ReportBlock(6, 255, 0x7FFFFF), ReportBlock(7, 0, -0x800000)), b"ext!"
        )
        data = bytes(rr)
        assert data[:4] == bytes.fromhex("82c9000e")
        assert parse_rtcp(data) == [rr]

    def test_sdes_items_and_alignment(self) -> None:
        for size in range(0, 9):
            chunk = SdesChunk(1, ((SdesItem.CNAME, b"x" * size), (SdesItem.TOOL, b"sipwire")))
            packet = SourceDescription((chunk, SdesChunk(2, ())))
            data = bytes(packet)
            assert len(data) % 4 == 0
            assert parse_rtcp(data, strict=False) == [packet]
        assert SdesChunk(1, ((SdesItem.NAME, b"n"),)).cname is None
        assert SdesChunk(1, ((SdesItem.CNAME, b"\xff"),)).cname == "\ufffd"

    def test_bye_without_reason_and_with_many_sources(self) -> None:
        bye = Bye((1, 2, 3))
        assert bytes(bye) == bytes.fromhex("83cb0003000000010000000200000003")
        assert parse_rtcp(bytes(bye), strict=False) == [bye]

    def test_app_and_unknown_pass_through(self) -> None:
        app = AppPacket(5, 9, b"TEST", b"\x00\x01\x02\x03")
        xr = UnknownRtcp(207, 0, bytes(range(12)))
        rr = ReceiverReport(9)
        data = serialize_rtcp([rr, app, xr])
        assert parse_rtcp(data) == [rr, app, xr]
        assert serialize_rtcp(parse_rtcp(data)) == data


class TestValidity:
    """RFC 3550 §A.2: what makes a compound packet invalid."""

    @pytest.mark.parametrize(
        ("data", "why"),
        [
            (b"", "whole number of words"),
            (COMPOUND[:-1], "whole number of words"),
            (bytes([0x41]) + COMPOUND[1:], "version"),
            (COMPOUND[:52] + bytes([0x01]) + COMPOUND[53:], "version"),
            (COMPOUND[:-4], "past the end"),
            (bytes.fromhex("80c9000200000001"), "past the end"),
            (bytes.fromhex(SDES_HEX + BYE_HEX), "SR or RR"),
            (bytes.fromhex("81c80006" + "00" * 24), "too short"),
            (bytes.fromhex("81c9000100000001"), "too short"),
        ],
    )
    def test_invalid(self, data: bytes, why: str) -> None:
        with pytest.raises(MediaFormatError, match=why):
            parse_rtcp(data)

    def test_a_lone_packet_may_be_padded(self) -> None:
        assert parse_rtcp(bytes.fromhex("a0c900020000000100000004")) == [ReceiverReport(1)]

    def test_padding_only_on_the_last_packet(self) -> None:
        data = bytearray(COMPOUND)
        data[52] |= 0x20
        with pytest.raises(MediaFormatError, match="not the last"):
            parse_rtcp(bytes(data))

    @pytest.mark.parametrize("count", [0, 9])
    def test_padding_count_must_fit(self, count: int) -> None:
        data = bytes.fromhex("80c9000100000001") + bytes.fromhex("a0ca0001000000") + bytes([count])
        with pytest.raises(MediaFormatError, match="padding count"):
            parse_rtcp(data)

    @pytest.mark.parametrize(
        ("body", "why"),
        [
            ("81ca000100000001", "no terminating null"),
            ("81ca00020000000101096161", "runs past"),
            ("82ca00020000000100000000", "runs past"),
            ("81cb00020000000109616161", "reason runs past"),
            ("82cb000100000001", "too short"),
            ("80cc000100000001", "APP packet is too short"),
        ],
    )
    def test_invalid_bodies(self, body: str, why: str) -> None:
        with pytest.raises(MediaFormatError, match=why):
            parse_rtcp(bytes.fromhex(body), strict=False)

    def test_reduced_size_needs_strict_off(self) -> None:
        data = bytes(BYE_PACKET)
        with pytest.raises(MediaFormatError):
            parse_rtcp(data)
        assert parse_rtcp(data, strict=False) == [BYE_PACKET]


class TestSerializeRefuses:
    @pytest.mark.parametrize(
        "packet",
        [
            ReceiverReport(1, tuple(ReportBlock(i) for i in range(32))),
            ReceiverReport(1, (ReportBlock(1, fraction_lost=256),)),
            ReceiverReport(1, (ReportBlock(1, cumulative_lost=0x800000),)),
            ReceiverReport(1, extension=b"abc"),
            SourceDescription((SdesChunk(1, ((0, b"x"),)),)),
            SourceDescription((SdesChunk(1, ((1, b"x" * 256),)),)),
            Bye((1,), b"x" * 256),
            Bye(tuple(range(32))),
            AppPacket(32, 1, b"NAME"),
            AppPacket(1, 1, b"NAM"),
            AppPacket(1, 1, b"NAME", b"abc"),
            UnknownRtcp(256, 0),
            UnknownRtcp(207, 0, b"abc"),
            ReceiverReport(-1),
            ReceiverReport(1, (ReportBlock(1 << 32),)),
            SenderReport(1, 1 << 64, 0, 0, 0),
            SourceDescription((SdesChunk(-5),)),
            Bye((1 << 32,)),
            AppPacket(1, -1, b"NAME"),
        ],
    )
    def test_refuses(self, packet: object) -> None:
        with pytest.raises(MediaError):
            serialize_rtcp([packet])  # type: ignore[list-item]

    def test_empty_compound_and_bad_padding(self) -> None:
        with pytest.raises(MediaError):
            serialize_rtcp([])
        with pytest.raises(MediaError):
            serialize_rtcp([ReceiverReport(1)], padding=3)


class TestMux:
    """RFC 5761 §4: RTCP packet types 192-223 tell RTCP from RTP on one port."""

    def test_rtcp_is_recognised(self) -> None:
        assert is_rtcp(COMPOUND)
        assert is_rtcp(bytes(ReceiverReport(1)))
        assert is_rtcp(bytes.fromhex("80c0"))  # FIR (192) and NACK (193) are RTCP too
        assert is_rtcp(bytes.fromhex("80df"))

    def test_rtp_is_not(self) -> None:
        for second in (0x00, 0x08, 0x80, 0x88, 0x65, 0xE5, 0xBF, 0xE0):
            assert not is_rtcp(bytes([0x80, second]) + bytes(10))
        assert not is_rtcp(b"\x80")


class TestNtp:
    def test_timestamp_and_compact_form(self) -> None:
        ntp = ntp_timestamp(NTP_UNIX_OFFSET + 0.5)
        assert ntp >> 32 == NTP_UNIX_OFFSET
        assert ntp & 0xFFFFFFFF == 0x80000000
        assert compact_ntp(ntp) == ((NTP_UNIX_OFFSET & 0xFFFF) << 16) | 0x8000
        assert ntp_seconds(ntp) == NTP_UNIX_OFFSET + 0.5
