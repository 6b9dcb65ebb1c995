"""RTCP statistics (RFC 3550 A.1, A.3, A.8), round-trip time from LSR/DLSR,
and the transmission interval (§6.3, A.7), checked against computed truth."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

import pytest

from sipwire.media.rtcp import (
    Bye,
    ReceiverReport,
    ReportBlock,
    SenderReport,
    SourceDescription,
    compact_ntp,
    ntp_timestamp,
    parse_rtcp,
    serialize_rtcp,
)
from sipwire.media.rtp import RtpPacket, RtpSender, parse_rtp
from sipwire.media.statistics import (
    COMPENSATION,
    RtcpScheduler,
    RtcpSession,
    SourceStatistics,
    round_trip_time,
    rtcp_interval,
)


@dataclass
class Arrival:
    index: int  # position in the sent stream
    seq: int
    timestamp: int
    time: float


def lossy_schedule(seed: int, count: int, start_seq: int, start_ts: int) -> list[Arrival]:
    """20 ms packets with jitter, 7 % loss, adjacent swaps and a few duplicates."""
    rng = random.Random(seed)
    arrivals = []
    for i in range(count):
        if i and rng.random() < 0.07:
            continue
        time = i * 0.02 + 0.04 + rng.uniform(0.0, 0.03)
        arrival = Arrival(i, (start_seq + i) & 0xFFFF, (start_ts + 160 * i) & 0xFFFFFFFF, time)
        arrivals.append(arrival)
        if rng.random() < 0.01:
            arrivals.append(Arrival(i, arrival.seq, arrival.timestamp, time + 0.001))
    for k in range(1, len(arrivals) - 1):  # swap neighbours now and then (not the first)
        if rng.random() < 0.05:
            arrivals[k], arrivals[k + 1] = arrivals[k + 1], arrivals[k]
    return arrivals


def a8_jitter(arrivals: list[Arrival], clock_rate: int) -> float:
    """The A.8 estimator, written from the formula: J += (|D(i-1,i)| - J) / 16,
    with D computed on the unwrapped stream positions."""
    jitter = 0.0
    for previous, current in itertools.pairwise(arrivals):
        d = (current.time - previous.time) * clock_rate - 160 * (current.index - previous.index)
        jitter += (abs(d) - jitter) / 16
    return jitter


class TestSourceStatistics:
    @pytest.mark.parametrize("seed", [1, 2, 3])
    def test_against_computed_truth(self, seed: int) -> None:
        arrivals = lossy_schedule(seed, 3000, start_seq=64000, start_ts=0xFFFF0000)
        stats = SourceStatistics(0xABC, arrivals[0].seq, 8000, probation=0)
        half = len(arrivals) // 2
        for arrival in arrivals[:half]:
            assert stats.receive(arrival.seq, arrival.timestamp, arrival.time)
        first = stats.report_block(arrivals[half - 1].time)
        for arrival in arrivals[half:]:
            assert stats.receive(arrival.seq, arrival.timestamp, arrival.time)
        second = stats.report_block(arrivals[-1].time)

        def truth(upto: list[Arrival], since: list[Arrival]) -> tuple[int, int, int]:
            highest = max(a.index for a in upto)
            expected = highest + 1  # base is index 0
            lost = expected - len(upto)
            expected_before = max((a.index for a in since), default=-1) + 1
            interval_expected = expected - expected_before
            interval_lost = interval_expected - (len(upto) - len(since))
            fraction = (interval_lost << 8) // interval_expected if interval_lost > 0 else 0
            return highest, lost, fraction

        highest, lost, fraction = truth(arrivals[:half], [])
        assert first.highest_sequence == 64000 + highest
        assert first.cumulative_lost == lost
        assert first.fraction_lost == fraction
        highest, lost, fraction = truth(arrivals, arrivals[:half])
        assert second.highest_sequence == 64000 + highest  # past the 16-bit wrap: cycles counted
        assert second.highest_sequence > 0xFFFF
        assert second.cumulative_lost == lost
        assert second.fraction_lost == fraction
        assert 0 < fraction < 256
        assert abs(second.jitter - a8_jitter(arrivals, 8000)) <= 1
        assert second.ssrc == 0xABC

    def test_no_loss_no_jitter(self) -> None:
        stats = SourceStatistics(1, 100, 8000, probation=0)
        for i in range(50):
            stats.receive(100 + i, 1000 + 160 * i, 5.0 + 0.02 * i)
        block = stats.report_block(6.0)
        assert (block.fraction_lost, block.cumulative_lost, block.jitter) == (0, 0, 0)
        assert block.highest_sequence == 149
        assert (block.lsr, block.dlsr) == (0, 0)
        assert not stats.heard_since_report
        empty = stats.report_block(7.0)
        assert empty.fraction_lost == 0

    def test_probation_drops_the_first_packet(self) -> None:
        stats = SourceStatistics(1, 100, 8000)
        assert not stats.receive(100, 0, 0.0)
        assert stats.receive(101, 160, 0.02)
        assert stats.sequence.received == 1

    def test_cumulative_loss_is_clamped_to_24_bits(self) -> None:
        stats = SourceStatistics(1, 0, 8000, probation=0)
        stats.receive(0, 0, 0.0)
        stats.sequence.cycles = 1 << 30  # a stream that lost a great deal
        assert stats.report_block(1.0).cumulative_lost == 0x7FFFFF

    def test_lsr_and_dlsr(self) -> None:
        stats = SourceStatistics(1, 0, 8000, probation=0)
        ntp = ntp_timestamp(1000.25)
        stats.receive_sr(SenderReport(1, ntp, 0, 0, 0), now=50.0)
        block = stats.report_block(51.5)
        assert block.lsr == compact_ntp(ntp)
        assert block.dlsr == int(1.5 * 65536)


class TestRoundTrip:
    def test_formula(self) -> None:
        # §6.4.1's example: A = 0xb710:8000, LSR = 0xb705:2000, DLSR = 0x0005:4000 -> 6.125 s
        arrival = (0xB710 << 32) | (0x8000 << 16)  # the middle 32 bits are 0xb7108000
        block = ReportBlock(1, lsr=0xB7052000, dlsr=0x00054000)
        assert round_trip_time(block, arrival) == 6.125
        assert round_trip_time(ReportBlock(1), arrival) is None
        assert round_trip_time(ReportBlock(1, lsr=0xB7200000), arrival) is None  # negative

    def test_two_sessions_over_a_delayed_wire(self) -> None:
        """A sends RTP and an SR; B answers with an RR after holding it; A's RTT
        is twice the one-way delay, whatever B's clock says."""
        rng = random.Random(9)
        delay, hold = 0.037, 0.8
        a_sender = RtpSender(rng, 0)
        a = RtcpSession(rng, a_sender.ssrc, "a@x", 8000, 0.0, ntp_offset=3_900_000_000.0)
        b = RtcpSession(rng, 0xB0B, "b@y", 8000, 0.0, ntp_offset=12.5, probation=0)
        now = 0.0
        for _ in range(100):
            packet = a_sender.packet(b"\xff" * 160, 160)
            a.sent_rtp(packet, now)
            b.received_rtp(parse_rtp(bytes(packet)), now + delay)
            now += 0.02
        sr = serialize_rtcp(a.report(now))
        b.received_rtcp(sr, now + delay)
        rr = serialize_rtcp(b.report(now + delay + hold))
        a.received_rtcp(rr, now + 2 * delay + hold)
        assert a.round_trip_time == pytest.approx(2 * delay, abs=2 / 65536)
        block = a.remote_reports[0xB0B]
        assert block.ssrc == a_sender.ssrc
        assert block.highest_sequence & 0xFFFF == (a_sender.sequence_number - 1) & 0xFFFF
        assert block.cumulative_lost == 0


class TestInterval:
    def test_minimum_and_randomization(self) -> None:
        # Two members, bandwidth plenty: the 5 s minimum, randomized in [0.5, 1.5), compensated.
        assert rtcp_interval(2, 1, 500.0, True, 100.0, False, 0.5) == pytest.approx(
            5.0 / COMPENSATION
        )
        assert rtcp_interval(2, 1, 500.0, True, 100.0, False, 0.0) == pytest.approx(
            2.5 / COMPENSATION
        )
        assert rtcp_interval(2, 1, 500.0, True, 100.0, True, 0.5) == pytest.approx(
            2.5 / COMPENSATION
        )

    def test_bandwidth_share(self) -> None:
        # 1000 members, 10 senders: receivers share 75 % of the RTCP bandwidth.
        t = rtcp_interval(1000, 10, 500.0, False, 100.0, False, 0.5)
        assert t == pytest.approx(100.0 * 990 / (500.0 * 0.75) / COMPENSATION)
        # a sender shares 25 % with the other senders
        t = rtcp_interval(1000, 10, 500.0, True, 100.0, False, 0.5)
        assert t == pytest.approx(max(5.0, 100.0 * 10 / (500.0 * 0.25)) / COMPENSATION)

    def test_scheduler_sends_within_the_bounds(self) -> None:
        scheduler = RtcpScheduler(random.Random(4), 100.0)
        first = scheduler.next_timer() - 100.0
        assert 2.5 * 0.5 / COMPENSATION <= first < 2.5 * 1.5 / COMPENSATION
        assert not scheduler.handle_timer(100.0)
        sends: list[float] = []
        now = 100.0
        while len(sends) < 30:
            now = scheduler.next_timer()
            if scheduler.handle_timer(now):
                scheduler.sent(120, now)
                sends.append(now)
        gaps = [b - a for a, b in itertools.pairwise(sends)]
        assert all(5.0 * 0.5 / COMPENSATION <= gap < 5.0 * 1.5 / COMPENSATION for gap in gaps)
        assert scheduler.avg_rtcp_size == pytest.approx(148.0, abs=10)

    def test_reverse_reconsideration(self) -> None:
        scheduler = RtcpScheduler(random.Random(4), 0.0)
        scheduler.members = scheduler.pmembers = 10
        scheduler.tn, scheduler.tp = 20.0, 0.0
        scheduler.member_left(10.0)
        assert scheduler.members == 9
        assert scheduler.tn == pytest.approx(10.0 + 0.9 * 10.0)
        assert scheduler.tp == pytest.approx(10.0 - 0.9 * 10.0)


class TestSession:
    def make(self, ssrc: int = 0x5EED) -> RtcpSession:
        return RtcpSession(random.Random(2), ssrc, "me@host", 8000, 0.0, probation=0)

    def run_until_report(self, session: RtcpSession, start: float) -> tuple[float, bytes]:
        now = start
        while True:
            now = max(now, session.next_timer())
            data = session.handle_timer(now)
            if data is not None:
                return now, data

    def test_receiver_report_then_sender_report(self) -> None:
        session = self.make()
        session.received_rtp(RtpPacket(0, 10, 0, 0x1111), 0.1)
        now, data = self.run_until_report(session, 0.0)
        rr, sdes = parse_rtcp(data)
        assert isinstance(rr, ReceiverReport)
        assert rr.ssrc == 0x5EED
        assert [block.ssrc for block in rr.reports] == [0x1111]
        assert isinstance(sdes, SourceDescription)
        assert sdes.chunks[0].cname == "me@host"
        sender = RtpSender(random.Random(3), 0, ssrc=0x5EED)
        for i in range(10):
            session.sent_rtp(sender.packet(b"x" * 160, 160), now + 0.02 * i)
        last_ts = (sender.timestamp - 160) & 0xFFFFFFFF
        sr_data = serialize_rtcp(session.report(now + 0.5))
        sr = parse_rtcp(sr_data)[0]
        assert isinstance(sr, SenderReport)
        assert (sr.packet_count, sr.octet_count) == (10, 1600)
        assert sr.rtp_timestamp == (last_ts + round((0.5 - 0.18) * 8000)) & 0xFFFFFFFF
        assert sr.reports == ()  # nothing heard since the last report
        assert sr.ntp_timestamp == ntp_timestamp(now + 0.5)

    def test_sender_report_stops_after_two_silent_intervals(self) -> None:
        session = self.make()
        session.sent_rtp(RtpPacket(0, 1, 0, 0x5EED, b"x"), 0.0)
        kinds = [type(parse_rtcp(serialize_rtcp(session.report(t)))[0]) for t in (1, 2, 3)]
        assert kinds == [SenderReport, SenderReport, ReceiverReport]

    def test_new_ssrc_restarts_counters(self) -> None:
        session = self.make()
        session.sent_rtp(RtpPacket(0, 1, 0, 0x5EED, b"xx"), 0.0)
        session.sent_rtp(RtpPacket(0, 2, 0, 0x7777, b"y"), 0.1)
        sr = session.report(0.2)[0]
        assert isinstance(sr, SenderReport)
        assert (sr.ssrc, sr.packet_count, sr.octet_count) == (0x7777, 1, 1)
        assert session.ssrc == 0x7777

    def test_bye(self) -> None:
        session = self.make()
        packets = parse_rtcp(session.bye(1.0, reason="done"))
        assert isinstance(packets[0], ReceiverReport)
        assert packets[-1] == Bye((0x5EED,), b"done")
        collision = parse_rtcp(session.bye(1.0, ssrc=0x1234))
        assert collision[-1] == Bye((0x1234,))

    def test_remote_bye_removes_the_source(self) -> None:
        session = self.make()
        session.received_rtp(RtpPacket(0, 10, 0, 0x1111), 0.1)
        assert session.scheduler.members == 2
        data = serialize_rtcp([ReceiverReport(0x1111), Bye((0x1111,))])
        session.received_rtcp(data, 0.2)
        assert 0x1111 not in session.sources
        assert session.scheduler.members == 1

    def test_sources_are_bounded(self) -> None:
        session = RtcpSession(random.Random(2), 1, "c", 8000, 0.0, probation=0, max_sources=4)
        for ssrc in range(100, 120):
            session.received_rtp(RtpPacket(0, 1, 0, ssrc), 0.0)
        assert len(session.sources) == 4
