"""The jitter buffer, driven by a fake clock: packets arrive on a lossy,
reordering, jittering schedule (seeded), and the buffer's timer is served
the way the I/O edge serves it (get at next_timer)."""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field

import numpy as np
import pytest

from sipwire.media.codecs import PCMU
from sipwire.media.frame import Frame
from sipwire.media.jitter import JitterBuffer
from sipwire.media.rtp import RtpPacket, RtpSender

PTIME = 0.02
PAYLOAD = PCMU.encoder().encode(
    np.rint(6000 * np.sin(2 * np.pi * 400 * np.arange(160) / 8000)).astype(np.int16)
)


def buffer(**options: float) -> JitterBuffer:
    return JitterBuffer({0: PCMU.decoder()}, 8000, **options)  # type: ignore[arg-type]


@dataclass
class Run:
    frames: list[tuple[float, Frame]] = field(default_factory=list)
    depths: list[int] = field(default_factory=list)

    @property
    def times(self) -> list[float]:
        return [t for t, _ in self.frames]

    def played_indices(self, ts0: int) -> list[int]:
        return [(f.timestamp - ts0) // 160 for _, f in self.frames if not f.concealed]


def drive(
    jb: JitterBuffer, arrivals: list[tuple[float, RtpPacket]], end: float, start: float = 0.0
) -> Run:
    """Serve arrivals and the buffer's timer in time order from ``start`` to ``end``
    (a timer already past at ``start`` fires at ``start``, late)."""
    arrivals = sorted(arrivals, key=lambda a: a[0])
    run = Run()
    i = 0
    while True:
        timer = jb.next_timer()
        arrival = arrivals[i][0] if i < len(arrivals) else math.inf
        now = max(start, min(arrival, math.inf if timer is None else timer))
        if now > end:
            return run
        if arrival <= now:
            jb.put(arrivals[i][1], arrival)
            run.depths.append(jb.depth)
            i += 1
        else:
            frame = jb.get(now)
            if frame is not None:
                run.frames.append((now, frame))


def stream(count: int, seed: int = 1) -> tuple[list[RtpPacket], int]:
    sender = RtpSender(random.Random(seed), 0)
    ts0 = sender.timestamp
    return [sender.packet(PAYLOAD, 160) for _ in range(count)], ts0


def unwrap(ts: int, ts0: int) -> int:
    return (ts - ts0) & 0xFFFFFFFF


class TestLossyNetwork:
    @pytest.mark.parametrize(
        ("seed", "jitter", "loss"), [(1, 0.03, 0.05), (2, 0.08, 0.1), (3, 0.01, 0.02)]
    )
    def test_frames_in_order_at_ptime_with_loss_counted(
        self, seed: int, jitter: float, loss: float
    ) -> None:
        rng = random.Random(seed)
        count = 2500
        packets, ts0 = stream(count, seed)
        arrivals: list[tuple[float, RtpPacket]] = []
        lost = duplicated = 0
        for i, packet in enumerate(packets):
            if 10 < i < count - 10 and rng.random() < loss:
                lost += 1
                continue
            t = 1.0 + i * PTIME + rng.uniform(0.0, jitter)
            arrivals.append((t, packet))
            if rng.random() < 0.03:
                duplicated += 1
                arrivals.append((t + rng.uniform(0.0, 0.1), packet))
        jb = buffer(max_packets=32)
        run = drive(jb, arrivals, end=1.0 + count * PTIME + 1.0)
        stats = jb.stats

        # Frames come out every 20 ms, never two at once, never a gap.
        gaps = np.diff(run.times)
        assert np.allclose(gaps, PTIME)
        # Real frames in strictly increasing order: no late packet was played.
        played = [unwrap(f.timestamp, ts0) // 160 for _, f in run.frames if not f.concealed]
        assert all(b > a for a, b in itertools.pairwise(played))
        assert played[-1] == count - 1
        # Loss within one packet of the truth; duplicates exact.
        assert abs(stats.lost - lost) <= 1
        assert stats.duplicates == duplicated
        # Every packet is accounted for exactly once.
        assert stats.played + stats.discarded + stats.overflow + stats.late + stats.lost == count
        assert stats.played == len(played)
        assert stats.concealed == sum(1 for _, f in run.frames if f.concealed)
        # Bounded memory, a target between the bounds that covers the jitter.
        assert max(run.depths) <= 32
        assert jb.min_delay <= stats.target_delay <= jb.max_delay
        assert stats.late <= 0.03 * count + 10
        assert stats.depth == 0

    def test_rare_spikes_do_not_hold_the_delay_up(self) -> None:
        rng = random.Random(5)
        packets, _ = stream(3000)
        spiked = 0
        arrivals = []
        for i, packet in enumerate(packets):
            t = i * PTIME + rng.uniform(0.0, 0.005)
            if 10 < i < 2990 and rng.random() < 0.01:
                t += 0.2
                spiked += 1
            arrivals.append((t, packet))
        jb = buffer()
        run = drive(jb, arrivals, end=62.0)
        assert jb.stats.target_delay <= 0.03
        assert jb.stats.late <= spiked  # the spiked ones, concealed, not waited for
        assert len(run.frames) >= 2990

    def test_target_follows_the_jitter_up_and_down(self) -> None:
        rng = random.Random(6)
        packets, _ = stream(1500)
        arrivals = []
        for i, packet in enumerate(packets):
            spread = 0.1 if 250 <= i < 750 else 0.002
            arrivals.append((i * PTIME + rng.uniform(0.0, spread), packet))
        jb = buffer()
        targets = []
        delays = []
        for end in (15.0, 30.0):
            drive(jb, [a for a in arrivals if end - 15.0 <= a[0] < end], end)
            targets.append(jb.stats.target_delay)
            delays.append(jb.stats.delay)
        assert targets[0] >= 0.09
        assert delays[0] >= 0.08
        assert targets[1] <= 0.03  # a calm network: back down (frames dropped)
        assert delays[1] <= targets[1] + 2 * PTIME
        assert jb.stats.discarded > 0


class TestScenarios:
    def test_steady_stream(self) -> None:
        packets, _ts0 = stream(40)  # fewer than MIN_SAMPLES: the initial delay holds
        jb = buffer(initial_delay=0.06)
        run = drive(jb, [(i * PTIME, p) for i, p in enumerate(packets)], end=2.0)
        assert run.times[0] == pytest.approx(0.06)
        assert all(not f.concealed for _, f in run.frames[:40])
        # then the stream ends: concealment for idle_after (60 ms), then idle
        assert [f.concealed for _, f in run.frames[40:]] == [True, True, True]
        assert jb.next_timer() is None
        frame = run.frames[0][1]
        assert (frame.sample_rate, frame.clock_rate, frame.samples) == (8000, 8000, 160)
        assert frame.duration == PTIME
        assert frame.pcm.dtype == np.int16
        assert jb.stats.lost == jb.stats.late == 0
        assert run.frames[1][1].timestamp - run.frames[0][1].timestamp == 160

    def test_a_hole_is_lost_until_the_packet_comes_late(self) -> None:
        packets, _ = stream(20)
        jb = buffer(initial_delay=0.04)
        arrivals = [(i * PTIME, p) for i, p in enumerate(packets) if i != 5]
        run = drive(jb, arrivals, end=0.3)
        assert jb.stats.lost == 1
        assert [f.concealed for _, f in run.frames[:8]] == [False] * 5 + [True] + [False] * 2
        jb.put(packets[5], 0.3)
        assert (jb.stats.lost, jb.stats.late) == (0, 1)
        jb.put(packets[5], 0.31)
        assert (jb.stats.late, jb.stats.duplicates) == (1, 1)

    def test_reordered_packets_are_played_in_order(self) -> None:
        packets, ts0 = stream(10)
        order = [1, 0, 3, 2, 5, 4, 7, 6, 9, 8]
        jb = buffer(initial_delay=0.06)
        run = drive(jb, [(k * PTIME, packets[i]) for k, i in enumerate(order)], end=1.0)
        assert [unwrap(f.timestamp, ts0) // 160 for _, f in run.frames[:10]] == list(range(10))
        assert jb.stats.late == jb.stats.lost == 0

    def test_duplicates_of_held_and_played_packets(self) -> None:
        packets, _ = stream(10)
        jb = buffer()
        jb.put(packets[0], 0.0)
        jb.put(packets[0], 0.001)
        assert jb.stats.duplicates == 1
        drive(jb, [(0.02 * i, p) for i, p in enumerate(packets[1:], 1)], end=1.0)
        jb.put(packets[3], 1.0)
        assert jb.stats.duplicates == 2
        assert jb.stats.late == 0

    def test_other_payload_types_keep_their_place_as_silence(self) -> None:
        packets, _ = stream(10)
        event = packets[4]
        packets[4] = RtpPacket(
            101, event.sequence_number, event.timestamp, event.ssrc, b"\x01\x0a\x00\xa0"
        )
        jb = buffer()
        run = drive(jb, [(i * PTIME, p) for i, p in enumerate(packets)], end=1.0)
        assert not any(f.concealed for _, f in run.frames[:10])
        silent = run.frames[4][1]
        assert not silent.pcm.any() and not silent.concealed
        assert jb.stats.lost == 0 and jb.stats.played == 9

    def test_new_ssrc_starts_over(self) -> None:
        first, _ = stream(10, seed=1)
        second, ts1 = stream(10, seed=2)
        jb = buffer()
        drive(jb, [(i * PTIME, p) for i, p in enumerate(first)], end=0.25)
        run = drive(jb, [(0.3 + i * PTIME, p) for i, p in enumerate(second)], end=2.0)
        assert jb.stats.resets == 1
        indices = [unwrap(f.timestamp, ts1) // 160 for _, f in run.frames if not f.concealed]
        assert indices[-10:] == list(range(10))

    def test_idle_then_a_new_talkspurt(self) -> None:
        packets, _ = stream(40)
        jb = buffer(initial_delay=0.04)
        talk = [(i * PTIME, p) for i, p in enumerate(packets[:20])]
        run = drive(jb, talk, end=1.0)
        assert jb.next_timer() is None and not jb.playing
        assert jb.stats.underruns > 0
        # The next talkspurt, 3 s later, with packets 20, 21 lost at the tail of silence.
        later = [(3.0 + i * PTIME, p) for i, p in enumerate(packets[22:])]
        run = drive(jb, later, end=5.0)
        assert run.times[0] == pytest.approx(3.0 + jb.stats.target_delay, abs=0.03)
        assert not run.frames[0][1].concealed
        assert jb.stats.lost == 2

    def test_memory_is_bounded_without_a_reader(self) -> None:
        packets, _ = stream(500)
        jb = buffer(max_packets=16)
        for i, packet in enumerate(packets):
            jb.put(packet, i * 0.001)
            assert jb.depth <= 16
        assert jb.stats.overflow == 500 - 16

    def test_burst_beyond_the_window_moves_the_playout_point(self) -> None:
        packets, ts0 = stream(200)
        jb = buffer(max_packets=16)
        run = drive(jb, [(i * PTIME, p) for i, p in enumerate(packets[:10])], end=0.2)
        for k, packet in enumerate(packets[100:130]):
            jb.put(packet, 0.2 + k * 0.0001)
            assert jb.depth <= 16
        run = drive(jb, [], end=2.0)
        played = [unwrap(f.timestamp, ts0) // 160 for _, f in run.frames if not f.concealed]
        assert played[-1] == 129
        assert all(b > a for a, b in itertools.pairwise(played))

    def test_sequence_restart(self) -> None:
        packets, _ = stream(10)
        jb = buffer()
        for i, packet in enumerate(packets):
            jb.put(packet, i * PTIME)
        stray = RtpPacket(
            0, (packets[-1].sequence_number + 20000) & 0xFFFF, 0, packets[0].ssrc, PAYLOAD
        )
        jb.put(stray, 0.3)
        assert jb.stats.resets == 0 and jb.depth == 10
        follower = RtpPacket(0, (stray.sequence_number + 1) & 0xFFFF, 160, stray.ssrc, PAYLOAD)
        jb.put(follower, 0.32)
        assert jb.stats.resets == 1 and jb.depth == 1

    def test_a_stalled_reader_gets_no_burst(self) -> None:
        packets, _ts0 = stream(200)
        jb = buffer()
        drive(jb, [(i * PTIME, p) for i, p in enumerate(packets[:50])], end=1.0)
        for i, packet in enumerate(packets[50:100], 50):  # the reader sleeps for a second
            jb.put(packet, i * PTIME)
        later = [(i * PTIME, p) for i, p in enumerate(packets[100:], 100)]
        run = drive(jb, later, end=5.0, start=2.0)
        assert run.times[0] == 2.0
        assert np.allclose(np.diff(run.times), PTIME)
        assert jb.stats.discarded >= 30
        assert jb.stats.lost == 0
        assert jb.stats.delay <= jb.stats.target_delay + 2 * PTIME

    def test_timestamp_jump_waits_for_its_time(self) -> None:
        sender = RtpSender(random.Random(1), 0)
        packets = [sender.packet(PAYLOAD, 160) for _ in range(10)]
        sender.pause(8000)  # one second of silence, sequence numbers continue
        packets += [sender.packet(PAYLOAD, 160) for _ in range(10)]
        arrivals = [(i * PTIME, p) for i, p in enumerate(packets[:10])]
        arrivals += [(1.2 + i * PTIME, p) for i, p in enumerate(packets[10:])]
        jb = buffer()
        run = drive(jb, arrivals, end=3.0)
        real = [t for t, f in run.frames if not f.concealed]
        assert len(real) == 20
        assert real[10] - real[9] >= 1.0  # the talkspurt after the silence plays in its time
        assert jb.stats.lost == 0

    def test_bad_configuration(self) -> None:
        with pytest.raises(ValueError):
            buffer(min_delay=0.5, max_delay=0.1)


def test_missing_says_when_get_would_conceal_a_frame_not_yet_read() -> None:
    jb = buffer(min_delay=0.02, initial_delay=0.04)
    sender = RtpSender(random.Random(3), 0, ssrc=7)
    packets = [sender.packet(bytes(160), 160) for _ in range(3)]
    jb.put(packets[0], 0.0)
    assert not jb.missing(0.0)  # nothing due yet
    jb.put(packets[1], 0.02)
    due = jb.next_timer()
    assert due is not None
    assert not jb.missing(due)  # priming over: the oldest packet plays
    assert jb.get(due) is not None
    second = jb.next_timer()
    assert second is not None and not jb.missing(second)  # its packet is held
    assert jb.get(second) is not None
    third = jb.next_timer()
    assert third is not None
    assert not jb.missing(third - 0.001)  # not due yet
    assert jb.missing(third)  # due, and packets[2] was not put
    jb.put(packets[2], third)
    assert not jb.missing(third)
    frame = jb.get(third)
    assert frame is not None and not frame.concealed
