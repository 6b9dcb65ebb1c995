"""RTP packets (RFC 3550 §5.1, §5.3.1), sequence arithmetic, A.1 source
validation, and the sender's state (§5.1, §8.2)."""

from __future__ import annotations

import random

import pytest

from sipwire.errors import ParseError, SipError
from sipwire.media.errors import MediaError, MediaFormatError
from sipwire.media.rtp import (
    MAX_DROPOUT,
    RtpExtension,
    RtpPacket,
    RtpSender,
    SequenceTracker,
    extend_seq,
    extend_timestamp,
    parse_rtp,
    random_bits,
    random_fraction,
    seq_delta,
    ts_delta,
)

# V=2, M=1, PT=0, seq 0x1234, ts 0xDEADBEEF, SSRC 0x01020304, payload "\xff\xfe"
SIMPLE = bytes.fromhex("8080 1234 deadbeef 01020304 fffe".replace(" ", ""))
# V=2 P=1 X=1 CC=2, M=0 PT=8, seq 1, ts 2, SSRC 3, CSRCs 10 and 11,
# extension profile 0xBEDE with one word, payload "ab", 3 octets of padding.
FULL = bytes.fromhex("b208000100000002000000030000000a0000000bbede000110aa00006162000003")


class TestParse:
    def test_simple_packet(self) -> None:
        packet = parse_rtp(SIMPLE)
        assert packet == RtpPacket(0, 0x1234, 0xDEADBEEF, 0x01020304, b"\xff\xfe", True)
        assert packet.version == 2
        assert bytes(packet) == SIMPLE
        assert RtpPacket.parse(SIMPLE) == packet

    def test_csrcs_extension_padding(self) -> None:
        packet = parse_rtp(FULL)
        assert packet.payload_type == 8
        assert not packet.marker
        assert packet.csrcs == (10, 11)
        assert packet.extension == RtpExtension(0xBEDE, bytes.fromhex("10aa0000"))
        assert packet.payload == b"ab"
        assert packet.padding == 3
        assert bytes(packet) == FULL

    def test_empty_payload(self) -> None:
        packet = parse_rtp(SIMPLE[:12])
        assert packet.payload == b""
        assert bytes(packet) == SIMPLE[:12]

    def test_padding_may_eat_the_whole_payload(self) -> None:
        data = bytes([0xA0]) + SIMPLE[1:12] + b"\x00\x00\x00\x04"
        packet = parse_rtp(data)
        assert packet.payload == b""
        assert packet.padding == 4

    @pytest.mark.parametrize(
        ("data", "why"),
        [
            (b"", "shorter"),
            (SIMPLE[:11], "shorter"),
            (bytes([0x40]) + SIMPLE[1:], "version"),
            (bytes([0xC0]) + SIMPLE[1:], "version"),
            (bytes([0x81]) + SIMPLE[1:12], "CSRC"),
            (bytes([0x90]) + SIMPLE[1:12], "extension"),
            (bytes([0x90]) + SIMPLE[1:12] + b"\xbe\xde\x00\x02\x00\x00\x00\x00", "extension"),
            (bytes([0xA0]) + SIMPLE[1:12] + b"\x00", "padding"),
            (bytes([0xA0]) + SIMPLE[1:12] + b"\x05", "padding"),
        ],
    )
    def test_malformed(self, data: bytes, why: str) -> None:
        with pytest.raises(MediaFormatError, match=why):
            parse_rtp(data)

    def test_error_is_the_packages(self) -> None:
        assert issubclass(MediaFormatError, ParseError)
        assert issubclass(MediaFormatError, SipError)
        assert issubclass(MediaError, SipError)


class TestSerialize:
    def test_round_trip_every_field(self) -> None:
        packet = RtpPacket(
            127, 65535, 0xFFFFFFFF, 0xFFFFFFFF, b"x" * 160, True, tuple(range(15)),
            RtpExtension(0x1000, b"\x01\x02\x03\x04" * 3), 255,
        )  # fmt: skip
        data = bytes(packet)
        assert len(data) == 12 + 60 + 4 + 12 + 160 + 255
        assert parse_rtp(data) == packet

    @pytest.mark.parametrize(
        "packet",
        [
            RtpPacket(128, 0, 0, 0),
            RtpPacket(-1, 0, 0, 0),
            RtpPacket(0, 65536, 0, 0),
            RtpPacket(0, 0, 1 << 32, 0),
            RtpPacket(0, 0, 0, -1),
            RtpPacket(0, 0, 0, 0, csrcs=tuple(range(16))),
            RtpPacket(0, 0, 0, 0, extension=RtpExtension(0xBEDE, b"abc")),
            RtpPacket(0, 0, 0, 0, padding=256),
            RtpPacket(0, 0, 0, 0, csrcs=(1 << 32,)),
        ],
    )
    def test_refuses_what_cannot_be_sent(self, packet: RtpPacket) -> None:
        with pytest.raises(MediaError):
            bytes(packet)


class TestArithmetic:
    @pytest.mark.parametrize(
        ("a", "b", "delta"),
        [
            (5, 3, 2),
            (3, 5, -2),
            (0, 65535, 1),
            (65535, 0, -1),
            (32767, 0, 32767),
            (32768, 0, -32768),
        ],
    )
    def test_seq_delta(self, a: int, b: int, delta: int) -> None:
        assert seq_delta(a, b) == delta

    def test_ts_delta(self) -> None:
        assert ts_delta(160, 0xFFFFFFF0) == 176
        assert ts_delta(0xFFFFFFF0, 160) == -176
        assert ts_delta(1 << 31, 0) == -(1 << 31)

    def test_extend_across_wraps(self) -> None:
        ext = 65530
        seen = []
        for i in range(20):
            ext = extend_seq((65530 + i) & 0xFFFF, ext)
            seen.append(ext)
        assert seen == list(range(65530, 65550))
        assert extend_seq(65535, 65536 + 3) == 65535  # a reordered packet before the wrap
        assert extend_timestamp(100, 0xFFFFFF00) == (1 << 32) + 100
        assert extend_timestamp(0xFFFFFF00, (1 << 32) + 100) == 0xFFFFFF00


class TestSequenceTracker:
    def test_probation_then_valid(self) -> None:
        tracker = SequenceTracker(100)
        assert tracker.update(100) is False  # on probation
        assert tracker.update(101) is True
        assert tracker.base_seq == 101
        assert (tracker.received, tracker.expected, tracker.lost) == (1, 1, 0)

    def test_probation_restarts_on_a_gap(self) -> None:
        tracker = SequenceTracker(100)
        assert not tracker.update(100)
        assert not tracker.update(105)
        assert tracker.update(106)
        assert tracker.base_seq == 106

    def test_no_probation(self) -> None:
        tracker = SequenceTracker(7, probation=0)
        assert tracker.update(7)
        assert (tracker.base_seq, tracker.received, tracker.cycles) == (7, 1, 0)

    def test_wrap_counts_a_cycle_and_loss(self) -> None:
        tracker = SequenceTracker(65534, probation=0)
        for seq in (65534, 65535, 1, 2):  # 0 lost
            assert tracker.update(seq)
        assert tracker.cycles == 65536
        assert tracker.extended_max == 65536 + 2
        assert (tracker.expected, tracker.received, tracker.lost) == (5, 4, 1)

    def test_reordered_and_duplicate_packets_count_as_received(self) -> None:
        tracker = SequenceTracker(10, probation=0)
        for seq in (10, 12, 11, 12):
            assert tracker.update(seq)
        assert tracker.max_seq == 12
        assert tracker.lost == 3 - 4  # a duplicate makes loss negative (A.3)

    def test_big_jump_resyncs_after_two_in_sequence(self) -> None:
        tracker = SequenceTracker(10, probation=0)
        assert tracker.update(10)
        assert tracker.update(11)
        far = 11 + MAX_DROPOUT + 10
        assert not tracker.update(far)
        assert tracker.max_seq == 11
        assert tracker.update(far + 1)
        assert tracker.base_seq == far + 1
        assert tracker.received == 1

    def test_lone_big_jump_is_dropped(self) -> None:
        tracker = SequenceTracker(10, probation=0)
        tracker.update(10)
        assert not tracker.update(40000)
        assert tracker.update(11)
        assert tracker.max_seq == 11


class TestRandomness:
    def test_sources(self) -> None:
        assert random_bits(random.Random(3), 32) == random.Random(3).getrandbits(32)
        assert random_bits(lambda k: (1 << 40) - 1, 8) == 255  # masked to k bits
        value = random_fraction(random.Random(1))
        assert 0.0 <= value < 1.0


class TestSender:
    def test_initial_values_are_random(self) -> None:
        a = RtpSender(random.Random(1), 0)
        b = RtpSender(random.Random(2), 0)
        assert (a.ssrc, a.sequence_number, a.timestamp) != (b.ssrc, b.sequence_number, b.timestamp)
        for seed in range(200):
            assert RtpSender(random.Random(seed), 0).sequence_number < 1 << 15

    def test_packets_advance_and_mark_talkspurts(self) -> None:
        sender = RtpSender(random.Random(5), 8, ssrc=0x1234)
        seq, ts = sender.sequence_number, sender.timestamp
        first = sender.packet(b"a" * 160, 160)
        second = sender.packet(b"b" * 160, 160)
        assert (first.marker, second.marker) == (True, False)
        assert (first.sequence_number, second.sequence_number) == (seq, (seq + 1) & 0xFFFF)
        assert (first.timestamp, second.timestamp) == (ts, (ts + 160) & 0xFFFFFFFF)
        assert first.ssrc == second.ssrc == 0x1234
        assert first.payload_type == 8
        sender.pause(800)
        third = sender.packet(b"c", 160)
        assert third.marker
        assert third.timestamp == (ts + 320 + 800) & 0xFFFFFFFF
        assert sender.packet(b"d", 160, marker=True).marker
        assert (sender.packet_count, sender.octet_count) == (4, 322)

    def test_wraps(self) -> None:
        sender = RtpSender(random.Random(5), 0)
        sender.sequence_number, sender.timestamp = 65535, 0xFFFFFF00
        sender.packet(b"", 0x200)
        assert (sender.sequence_number, sender.timestamp) == (0, 0x100)

    def test_pack_is_the_packet_serialized(self) -> None:
        made = RtpSender(random.Random(7), 8, ssrc=0x1234)
        packed = RtpSender(random.Random(7), 8, ssrc=0x1234)
        payloads = [b"a" * 160, b"b" * 160, b"", b"c"]
        for index, payload in enumerate(payloads):
            if index == 2:
                made.pause(800)
                packed.pause(800)
            assert packed.pack(payload, 160) == bytes(made.packet(payload, 160))
        assert (packed.sequence_number, packed.timestamp) == (made.sequence_number, made.timestamp)
        assert (packed.packet_count, packed.octet_count) == (4, 321)
        packed.sequence_number, packed.timestamp = 65535, 0xFFFFFF00
        packed.pack(b"", 0x200)
        assert (packed.sequence_number, packed.timestamp) == (0, 0x100)
        packed.payload_type = 128
        with pytest.raises(MediaError):
            packed.pack(b"", 160)

    def test_event_packets_keep_the_audio_clock(self) -> None:
        sender = RtpSender(random.Random(5), 0)
        ts = sender.timestamp
        event = sender.event_packet(b"\x01\x0a\x00\xa0", 101, ts, marker=True)
        assert (event.payload_type, event.timestamp, event.marker) == (101, ts, True)
        assert sender.timestamp == ts
        sender.advance(160)
        assert sender.packet(b"", 160).timestamp == (ts + 160) & 0xFFFFFFFF

    def test_collision_chooses_a_new_ssrc(self) -> None:
        sender = RtpSender(random.Random(5), 0)
        old = sender.ssrc
        sender.packet(b"x", 160)
        assert sender.handle_collision(old ^ 1) is None
        assert sender.handle_collision(old, frozenset({old ^ 1})) == old
        assert sender.ssrc not in (old, old ^ 1)
        assert (sender.packet_count, sender.octet_count) == (0, 0)
        assert sender.packet(b"y", 160).marker

    def test_collision_never_reuses_ssrcs_in_use(self) -> None:
        draws = iter([7, 0, 0, 7, 9, 11])  # SSRC, seq, timestamp, then the collision
        sender = RtpSender(lambda k: next(draws), 0)
        assert sender.ssrc == 7
        assert sender.handle_collision(7, frozenset({9})) == 7
        assert sender.ssrc == 11
