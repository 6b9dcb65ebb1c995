"""RFC 4733 telephone-events: payload, sender, receiver, and the round trip
of every digit over a wire that loses end packets, duplicates and reorders."""

from __future__ import annotations

import random

import pytest

from sipwire.media.dtmf import (
    DTMF_DIGITS,
    DtmfDigit,
    DtmfEnded,
    DtmfReceiver,
    DtmfSender,
    TelephoneEvent,
    digit_event,
    event_digit,
)
from sipwire.media.errors import MediaError, MediaFormatError
from sipwire.media.rtp import RtpPacket, RtpSender, parse_rtp

PT = 101


def events(receiver: DtmfReceiver) -> list[DtmfDigit | DtmfEnded]:
    out = []
    while (event := receiver.next_event()) is not None:
        out.append(event)
    return out


def digits(items: list[DtmfDigit | DtmfEnded]) -> str:
    return "".join(e.digit for e in items if isinstance(e, DtmfDigit))


def event_packet(ts: int, seq: int, event: int, duration: int, end: bool = False) -> RtpPacket:
    payload = bytes(TelephoneEvent(event, end, 10, duration))
    return RtpPacket(PT, seq, ts, 0xD7, payload, marker=duration == 160 and not end)


class TestPayload:
    def test_wire_form(self) -> None:
        event = TelephoneEvent(5, True, 10, 800)
        assert bytes(event) == bytes.fromhex("058a0320")
        assert TelephoneEvent.parse(bytes.fromhex("058a0320")) == event
        assert TelephoneEvent.parse(bytes.fromhex("0b3f0000ffff")) == TelephoneEvent(
            11, False, 63, 0
        )
        assert TelephoneEvent.parse(bytes.fromhex("01400001")).end is False  # R bit ignored

    def test_malformed_and_out_of_range(self) -> None:
        with pytest.raises(MediaFormatError):
            TelephoneEvent.parse(b"\x01\x02\x03")
        for bad in (
            TelephoneEvent(256),
            TelephoneEvent(1, volume=64),
            TelephoneEvent(1, duration=1 << 16),
        ):
            with pytest.raises(MediaError):
                bytes(bad)

    def test_digit_codes(self) -> None:
        assert [digit_event(d) for d in "0123456789*#ABCD"] == list(range(16))
        assert digit_event("a") == 12
        assert event_digit(11) == "#"
        assert event_digit(16) is None
        for bad in ("E", "", "12", " "):
            with pytest.raises(MediaError):
                digit_event(bad)


class TestSender:
    def test_one_digit(self) -> None:
        rtp = RtpSender(random.Random(1), 0)
        start_ts, start_seq = rtp.timestamp, rtp.sequence_number
        dtmf = DtmfSender(PT, duration=0.1, pause=0.06)
        dtmf.send("5")
        assert dtmf.busy
        sent: list[RtpPacket] = []
        ticks = 0
        while dtmf.busy:
            sent += dtmf.tick(rtp)
            ticks += 1
        payloads = [TelephoneEvent.parse(p.payload) for p in sent]
        assert [p.duration for p in payloads] == [160, 320, 480, 640, 800, 800, 800]
        assert [p.end for p in payloads] == [False] * 4 + [True] * 3
        assert {p.event for p in payloads} == {5}
        assert {p.volume for p in payloads} == {10}
        assert [p.marker for p in sent] == [True] + [False] * 6
        assert {p.timestamp for p in sent} == {start_ts}  # the event's start, every packet
        assert [p.sequence_number for p in sent] == [(start_seq + i) & 0xFFFF for i in range(7)]
        assert {p.payload_type for p in sent} == {PT}
        assert {p.ssrc for p in sent} == {rtp.ssrc}
        assert ticks == 7 + 3  # then 60 ms of pause
        assert rtp.timestamp == (start_ts + 7 * 160) & 0xFFFFFFFF  # the clock ran on
        assert dtmf.tick(rtp) == []

    def test_durations_not_a_multiple_of_ptime(self) -> None:
        rtp = RtpSender(random.Random(1), 0)
        dtmf = DtmfSender(PT, ptime=30)
        dtmf.send("#", duration=0.07, volume=20)
        payloads = []
        while dtmf.busy:
            payloads += [TelephoneEvent.parse(p.payload) for p in dtmf.tick(rtp)]
        assert [p.duration for p in payloads] == [240, 480, 560, 560, 560]
        assert {(p.event, p.volume) for p in payloads} == {(11, 20)}

    def test_refuses_bad_input(self) -> None:
        dtmf = DtmfSender(PT)
        with pytest.raises(MediaError):
            dtmf.send("12E")
        assert not dtmf.busy  # nothing queued from a bad string
        with pytest.raises(MediaError):
            dtmf.send("1", duration=9.0)
        with pytest.raises(MediaError):
            dtmf.send("1", volume=64)


class TestRoundTrip:
    @pytest.mark.parametrize("seed", [1, 2, 3, 4])
    def test_every_digit_over_a_bad_wire(self, seed: int) -> None:
        """Some digits lose all three end packets (a new timestamp or the
        timeout ends them), others lose some; packets are duplicated and
        neighbours swapped. Each digit arrives once, in order."""
        rng = random.Random(seed)
        rtp = RtpSender(rng, 0)
        dtmf = DtmfSender(PT)
        sequence = DTMF_DIGITS
        dtmf.send(sequence)
        wire: list[tuple[float, bytes]] = []
        now = 0.0
        lose_all_ends = set(rng.sample(range(16), 5)) | {15}  # the last one too
        end_kept: set[int] = set()
        index = -1
        while dtmf.busy:
            for packet in dtmf.tick(rtp):
                payload = TelephoneEvent.parse(packet.payload)
                if packet.marker:
                    index += 1
                if payload.end and (index in lose_all_ends or rng.random() < 0.3):
                    continue
                if not payload.end and not packet.marker and rng.random() < 0.2:
                    continue  # continuation lost
                if payload.end:
                    end_kept.add(index)
                wire.append((now + rng.uniform(0.0, 0.015), bytes(packet)))
                if rng.random() < 0.2:
                    wire.append((now + rng.uniform(0.0, 0.05), bytes(packet)))
            now += 0.02
        wire.sort()
        receiver = DtmfReceiver(timeout=0.3)
        received: list[DtmfDigit | DtmfEnded] = []
        for time, data in wire:
            receiver.handle_timer(time)
            receiver.receive(parse_rtp(data), time)
            received += events(receiver)
        assert receiver.next_timer() is not None  # the last event waits for its timeout
        receiver.handle_timer(now + 1.0)
        received += events(receiver)
        assert receiver.next_timer() is None

        assert digits(received) == sequence
        ended = [e for e in received if isinstance(e, DtmfEnded)]
        assert "".join(e.digit for e in ended) == sequence
        for i, end in enumerate(ended):
            assert end.timed_out == (i not in end_kept)
            assert end.duration <= 800
            if not end.timed_out:
                assert end.duration == 800
        # the end of each digit comes after its start and before the next start
        kinds = [(type(e).__name__, e.digit) for e in received]
        assert kinds == [(kind, d) for d in sequence for kind in ("DtmfDigit", "DtmfEnded")]


class TestReceiver:
    def test_lost_start_still_reports_once(self) -> None:
        receiver = DtmfReceiver()
        receiver.receive(event_packet(1000, 2, 7, 320), 0.0)
        receiver.receive(event_packet(1000, 3, 7, 480), 0.02)
        receiver.receive(event_packet(1000, 4, 7, 480, end=True), 0.04)
        receiver.receive(event_packet(1000, 5, 7, 480, end=True), 0.05)
        assert events(receiver) == [DtmfDigit("7", 1000, 10), DtmfEnded("7", 1000, 480, False)]

    def test_only_an_end_packet(self) -> None:
        receiver = DtmfReceiver()
        receiver.receive(event_packet(5, 1, 0, 800, end=True), 0.0)
        assert events(receiver) == [DtmfDigit("0", 5, 10), DtmfEnded("0", 5, 800, False)]

    def test_stragglers_of_older_events_are_ignored(self) -> None:
        receiver = DtmfReceiver()
        receiver.receive(event_packet(1000, 1, 1, 160), 0.0)
        receiver.receive(event_packet(2000, 5, 2, 160), 0.2)
        receiver.receive(event_packet(1000, 2, 1, 320), 0.21)  # late continuation of "1"
        receiver.receive(event_packet(500, 0, 9, 160), 0.22)  # an event older still
        assert digits(events(receiver)) == "12"

    def test_same_digit_twice_is_two_events(self) -> None:
        receiver = DtmfReceiver()
        receiver.receive(event_packet(1000, 1, 4, 800, end=True), 0.0)
        receiver.receive(event_packet(2600, 9, 4, 800, end=True), 0.2)
        assert digits(events(receiver)) == "44"

    def test_long_event_segments_continue(self) -> None:
        # §2.5.1.3: a segment ends at 0xFFFF... here at 1600 units for brevity,
        # and the next starts at its timestamp plus its duration.
        receiver = DtmfReceiver()
        receiver.receive(event_packet(0xFFFFF000, 1, 3, 1600), 0.0)
        receiver.receive(event_packet((0xFFFFF000 + 1600) & 0xFFFFFFFF, 2, 3, 160), 0.2)
        receiver.receive(event_packet((0xFFFFF000 + 1600) & 0xFFFFFFFF, 3, 3, 400, end=True), 0.25)
        assert events(receiver) == [
            DtmfDigit("3", 0xFFFFF000, 10),
            DtmfEnded("3", 0xFFFFF000, 2000, False),
        ]

    def test_timeout(self) -> None:
        receiver = DtmfReceiver(timeout=0.25)
        receiver.receive(event_packet(1, 1, 9, 160), 1.0)
        receiver.receive(event_packet(1, 2, 9, 320), 1.02)
        assert receiver.next_timer() == pytest.approx(1.27)
        receiver.handle_timer(1.2)
        assert events(receiver) == [DtmfDigit("9", 1, 10)]
        receiver.handle_timer(1.3)
        assert events(receiver) == [DtmfEnded("9", 1, 320, True)]
        receiver.receive(event_packet(1, 3, 9, 480, end=True), 1.4)  # after the timeout: ignored
        assert events(receiver) == []

    def test_new_source_starts_over(self) -> None:
        receiver = DtmfReceiver()
        receiver.receive(event_packet(1000, 1, 1, 160), 0.0)
        other = RtpPacket(PT, 1, 1000, 0xBEEF, bytes(TelephoneEvent(2, False, 10, 160)))
        receiver.receive(other, 0.1)
        assert [type(e) for e in events(receiver)] == [DtmfDigit, DtmfEnded, DtmfDigit]

    def test_events_other_than_digits_are_not_reported(self) -> None:
        receiver = DtmfReceiver()
        receiver.receive(event_packet(1000, 1, 16, 160, end=True), 0.0)  # flash
        assert events(receiver) == []

    def test_malformed_payload(self) -> None:
        with pytest.raises(MediaFormatError):
            DtmfReceiver().receive(RtpPacket(PT, 1, 1, 1, b"\x01"), 0.0)
