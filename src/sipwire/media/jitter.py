"""An adaptive jitter buffer: RTP packets in, one audio frame per packet time out.

Sans-I/O: :meth:`JitterBuffer.put` takes a packet and its arrival time;
:meth:`JitterBuffer.get` returns the frame due at ``now`` or None, and
:meth:`JitterBuffer.next_timer` says when the next one is due, so the edge
keeps a single timer armed and calls ``get`` when it fires (a late call
still gets every frame, in order).

Playout follows the packets' timestamps. Each packet's *transit* is its
arrival time minus its RTP timestamp in seconds; the smallest transit over
the current and the previous window (``window`` seconds each) is the
path's base, and a packet's *deviation* is how much later than that it
came. Deviations go into a histogram per window (``bin_width`` bins); the
*target delay* is the deviation that ``quantile`` (97 %) of those in the
two windows stay under, plus ``margin``, between ``min_delay`` and
``max_delay`` (and no less than ``initial_delay`` until ``MIN_SAMPLES``
arrivals were measured). A rare spike is thus a late packet, concealed,
rather than seconds of extra delay for everyone. The playout *delay* is
how long after a base-transit arrival a frame plays; it moves one frame at
a time: when it exceeds the target by more than a frame, a frame is
dropped (counted ``discarded``); when it falls a frame short, the codec
conceals one frame and the packet waits (a stretch); at most once every
``ADAPT_GAP`` frames, so speech is touched rarely. A timestamp jump of
more than ``TIMELINE_JUMP`` starts the measurement over.

A missing packet whose successors are here is lost: the decoder conceals
it (its PLC). When nothing at all is buffered the frame is concealed and
the packet still waited for (the delay grows by a frame, as for a late
packet); after ``idle_after`` seconds of that the buffer goes idle (get
returns None) and the next packet starts a new playout after the target
delay. A packet older than the playout point is late (dropped; when its
frame had been concealed it is no longer lost but late); one already held,
played or late is a duplicate. At most ``max_packets`` are held: a burst
beyond that drops the oldest (``overflow``), and the playout point jumps
forward when a packet runs that far ahead of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np

from sipwire.media.codecs import Decoder
from sipwire.media.frame import Frame
from sipwire.media.rtp import MAX_DROPOUT, RtpPacket, extend_timestamp

__all__ = ["ADAPT_GAP", "MIN_SAMPLES", "TIMELINE_JUMP", "JitterBuffer", "JitterStats"]

ADAPT_GAP: Final = 4
"""Frames played between two changes of the delay."""

MIN_SAMPLES: Final = 50
"""Arrivals measured before the target may fall below ``initial_delay``."""
TIMELINE_JUMP: Final = 1.0
"""Seconds of transit change taken as a timestamp discontinuity rather than jitter."""

_EPSILON: Final = 1e-6  # seconds: a delay on the edge of the band stays put
_RING: Final = 1024
_PLAYED: Final = 1
_LOST: Final = 2
_LATE: Final = 3


@dataclass(slots=True)
class JitterStats:
    """What the jitter buffer saw and did. Counters only grow; the last four are current."""

    received: int = 0
    """Packets put, of every kind."""
    played: int = 0
    """Packets decoded and played out."""
    lost: int = 0
    """Packets never received whose turn came (a late arrival takes itself off)."""
    late: int = 0
    """Packets that came after their turn, dropped."""
    duplicates: int = 0
    """Packets received twice (the copy dropped)."""
    concealed: int = 0
    """Frames made by packet-loss concealment (losses, underruns, stretches)."""
    discarded: int = 0
    """Packets dropped on purpose to bring the delay down."""
    overflow: int = 0
    """Packets dropped because ``max_packets`` were held."""
    underruns: int = 0
    """Frames due while nothing was buffered."""
    resets: int = 0
    """New sources (SSRC change) and sequence restarts."""
    depth: int = 0
    """Packets held now."""
    delay: float = 0.0
    """Current playout delay over the base transit, seconds."""
    target_delay: float = 0.0
    """Current target delay, seconds."""
    jitter: float = 0.0
    """Interarrival jitter (RFC 3550 A.8 estimator), seconds."""


class JitterBuffer:
    """Reorders and paces one received RTP stream; decodes at playout.

    ``decoders`` maps payload types to decoder objects (one per stream:
    they keep concealment state). A packet of another payload type (a
    telephone-event, comfort noise) keeps its place in the sequence and
    plays as silence. ``ptime`` is the expected packet duration until the
    first packets show the real one.
    """

    def __init__(
        self,
        decoders: Mapping[int, Decoder],
        clock_rate: int = 8000,
        *,
        ptime: float = 0.02,
        min_delay: float = 0.02,
        max_delay: float = 0.3,
        initial_delay: float = 0.06,
        quantile: float = 0.97,
        bin_width: float = 0.005,
        margin: float = 0.0,
        window: float = 2.0,
        max_packets: int = 64,
        idle_after: float = 0.06,
    ) -> None:
        if not 0 < min_delay <= max_delay:
            raise ValueError("min_delay must be positive and at most max_delay")
        self.decoders = decoders
        self.clock_rate = clock_rate
        self.min_delay = min_delay
        self.max_delay = max_delay
        self.quantile = quantile
        self.bin_width = bin_width
        self.margin = margin
        self.window = window
        self._bins = int(max_delay / bin_width) + 2
        self.max_packets = max_packets
        self.idle_after = idle_after
        self.stats = JitterStats(target_delay=min(max(initial_delay, min_delay), max_delay))
        self._initial_delay = self.stats.target_delay
        self._frame_ts = max(1, round(ptime * clock_rate))
        self._slots: dict[int, tuple[RtpPacket, int]] = {}  # ext seq: (packet, ext timestamp)
        self._ring_seq: list[int] = []
        self._ring_state = bytearray(_RING)  # what became of each recent sequence number
        self._decoder: Decoder | None = None
        # Delay measurement: two windows of minimum transit and deviation counts.
        self._window_end = -1.0
        self._min_now = self._min_prev = float("inf")
        self._hist_now: list[int] = []
        self._hist_prev: list[int] = []
        self._count_now = self._count_prev = 0
        self._dirty = True
        self._target_age = 0
        self._reset_source(None)

    def _reset_source(self, ssrc: int | None) -> None:
        self._ssrc = ssrc
        self._slots.clear()
        self._ring_seq = [-1] * _RING
        self._next: int | None = None  # extended sequence number of the next frame
        self._next_ts = 0  # extended timestamp expected of it
        self._max_ext = 0
        self._ts_ref = 0
        self._due: float | None = None
        self._playing = False
        self._bad_seq = -1
        self._underrun = 0.0
        self._since_adapt = ADAPT_GAP
        self._base = 0.0
        self._last_transit: float | None = None
        self._clear_windows()
        self.stats.target_delay = self._initial_delay
        self.stats.depth = 0

    # ------------------------------------------------------------ state

    @property
    def depth(self) -> int:
        """Packets held."""
        return len(self._slots)

    @property
    def playing(self) -> bool:
        """Whether frames are being played out (False before priming and when idle)."""
        return self._playing

    def next_timer(self) -> float | None:
        """When the next frame is due, or None while idle (a put wakes it)."""
        return self._due

    def missing(self, now: float) -> bool:
        """Whether a frame is due at ``now`` while its packet is not held (``get``
        would conceal it): the moment for the edge to read what its socket holds."""
        due = self._due
        return due is not None and now >= due and self._playing and self._next not in self._slots

    # ------------------------------------------------------------ put

    def _finish(self, ext: int, state: int) -> None:
        index = ext & (_RING - 1)
        self._ring_seq[index] = ext
        self._ring_state[index] = state

    def _measure(self, ext_ts: int, now: float) -> None:
        """Transit, base, the deviation histogram and the A.8 jitter of one arrival."""
        stats = self.stats
        transit = now - ext_ts / self.clock_rate
        if now >= self._window_end:
            self._min_prev, self._hist_prev, self._count_prev = (
                self._min_now,
                self._hist_now,
                self._count_now,
            )
            self._min_now, self._hist_now, self._count_now = transit, [0] * self._bins, 0
            self._window_end = now + self.window
        elif transit < self._min_now:
            self._min_now = transit
        base = self._min_now if self._min_now < self._min_prev else self._min_prev
        deviation = transit - base
        if deviation > TIMELINE_JUMP or transit < base - TIMELINE_JUMP:
            # The sender's timestamps jumped (a new timeline, not jitter): start over.
            self._clear_windows()
            self._min_now = transit
            self._window_end = now + self.window
            base, deviation = transit, 0.0
        self._base = base
        index = int(deviation / self.bin_width)
        self._hist_now[index if index < self._bins else self._bins - 1] += 1
        self._count_now += 1
        self._dirty = True
        last = self._last_transit
        if last is not None:
            d = transit - last
            stats.jitter += ((d if d >= 0 else -d) - stats.jitter) / 16
        self._last_transit = transit

    def _clear_windows(self) -> None:
        self._window_end = -1.0
        self._min_now = self._min_prev = float("inf")
        self._hist_now = [0] * self._bins
        self._hist_prev = [0] * self._bins
        self._count_now = self._count_prev = 0
        self._dirty = True

    def target_delay(self, *, force: bool = False) -> float:
        """The delay that ``quantile`` of the deviations in the windows stay under.

        Recomputed at most once per ``ADAPT_GAP`` frames unless ``force``.
        """
        stats = self.stats
        if not self._dirty or (self._target_age < ADAPT_GAP and not force):
            return stats.target_delay
        self._dirty = False
        self._target_age = 0
        total = self._count_now + self._count_prev
        threshold = self.quantile * total
        seen = 0
        deviation = 0.0
        for index, (now_count, prev_count) in enumerate(
            zip(self._hist_now, self._hist_prev, strict=True)
        ):
            seen += now_count + prev_count
            if seen >= threshold:
                deviation = (index + 1) * self.bin_width  # the bin's upper edge
                break
        target = deviation + self.margin
        if total < MIN_SAMPLES and target < self._initial_delay:
            target = self._initial_delay
        stats.target_delay = min(max(target, self.min_delay), self.max_delay)
        return stats.target_delay

    def put(self, packet: RtpPacket, now: float) -> None:
        """A packet arrived at ``now``."""
        stats = self.stats
        stats.received += 1
        seq = packet.sequence_number
        if packet.ssrc != self._ssrc:
            if self._ssrc is not None:
                stats.resets += 1
            self._reset_source(packet.ssrc)
            self._max_ext = seq
            self._ts_ref = packet.timestamp
        max_ext = self._max_ext
        ext = max_ext + ((seq - max_ext + 0x8000) & 0xFFFF) - 0x8000  # extend_seq
        if not -MAX_DROPOUT <= ext - max_ext <= MAX_DROPOUT:
            # RFC 3550 A.1: a big jump is believed when the next packet follows it.
            if seq != self._bad_seq:
                self._bad_seq = (seq + 1) & 0xFFFF
                return
            stats.resets += 1
            self._reset_source(packet.ssrc)
            self._max_ext = max_ext = ext = seq
            self._ts_ref = packet.timestamp
        ext_ts = extend_timestamp(packet.timestamp, self._ts_ref)
        self._measure(ext_ts, now)
        slots = self._slots
        nxt = self._next
        if nxt is not None and ext < nxt:
            index = ext & (_RING - 1)
            if self._ring_seq[index] == ext and self._ring_state[index] != _LOST:
                stats.duplicates += 1
            else:
                if self._ring_seq[index] == ext:
                    stats.lost -= 1
                    self._ring_state[index] = _LATE
                stats.late += 1
            return
        if ext in slots:
            stats.duplicates += 1
            return
        if ext > max_ext:
            self._max_ext = ext
            self._ts_ref = ext_ts
        if self._playing and nxt is not None and ext - nxt >= self.max_packets:
            self._advance_to(ext - self.max_packets + 1)
        elif len(slots) >= self.max_packets:
            oldest = min(slots)
            if oldest > ext:
                stats.overflow += 1
                return
            if self._playing:
                self._advance_to(oldest + 1)
            else:
                del slots[oldest]
                stats.overflow += 1
        slots[ext] = (packet, ext_ts)
        stats.depth = len(slots)
        if self._due is None:
            self._due = now + self.target_delay(force=True)

    def _advance_to(self, new_next: int) -> None:
        """Move the playout point forward, dropping what it passes."""
        stats = self.stats
        slots = self._slots
        nxt = self._next
        assert nxt is not None
        for ext in range(nxt, new_next):
            if slots.pop(ext, None) is not None:
                stats.overflow += 1
                self._finish(ext, _PLAYED)
            else:
                stats.lost += 1
                self._finish(ext, _LOST)
            self._next_ts += self._frame_ts
        self._next = new_next
        stats.depth = len(slots)

    # ------------------------------------------------------------ get

    def _conceal(self, ext_ts: int) -> Frame:
        self.stats.concealed += 1
        decoder = self._decoder
        if decoder is None:
            return Frame.silence(self._frame_ts, self.clock_rate, ext_ts, self.clock_rate)
        rate, channels = decoder.sample_rate, decoder.channels
        return Frame(decoder.conceal(), rate, ext_ts, self.clock_rate, channels, True)

    def _start(self) -> None:
        """Priming is over: play from the oldest packet held."""
        first = min(self._slots)
        if self._next is not None and first > self._next:
            self._advance_to(first)  # the tail of the last talkspurt never came
        self._next = first
        self._next_ts = self._slots[first][1]
        self._playing = True
        self._since_adapt = 0  # let the first frames play as primed

    def _adapt(self, ext: int, ext_ts: int, delay: float, due: float) -> int | Frame | None:
        """Change the delay by a frame when it is off target.

        Returns the extended sequence number to play instead of ``ext``
        (frames dropped), a concealed frame to play while ``ext`` waits, or
        None to play ``ext``.
        """
        target = self.target_delay()
        frame_time = self._frame_ts / self.clock_rate
        high = target + frame_time + _EPSILON
        stats = self.stats
        slots = self._slots
        if delay > high and (self._since_adapt >= ADAPT_GAP or delay > self.max_delay):
            # Too deep: drop a frame and play the next one now; past
            # max_delay (the caller stalled), drop until back on target.
            catch_up = delay > self.max_delay
            start = ext
            while (following := slots.get(ext + 1)) is not None:
                del slots[ext]
                self._finish(ext, _PLAYED)
                stats.discarded += 1
                ext += 1
                delay = due - following[1] / self.clock_rate - self._base
                if not catch_up or delay <= high:
                    break
            if ext != start:
                self._since_adapt = 0
                return ext
            return None
        if delay < target - frame_time - _EPSILON and (self._since_adapt >= ADAPT_GAP or delay < 0):
            # Too shallow (or the packet's time has not come: a timestamp
            # jump): a concealed frame, the packet waits for the next turn.
            self._since_adapt = 0
            return self._conceal(ext_ts - self._frame_ts)
        return None

    def get(self, now: float) -> Frame | None:
        """The frame due at ``now``, or None (not due yet, priming, or idle)."""
        due = self._due
        if due is None or now < due:
            return None
        if now - due > self.max_delay:  # the caller stalled: no burst of old frames
            due = now
        stats = self.stats
        slots = self._slots
        if not self._playing:
            if not slots:
                self._due = None
                return None
            self._start()
        ext = self._next
        assert ext is not None
        self._target_age += 1
        slot = slots.get(ext)
        frame: Frame
        if slot is not None:
            self._underrun = 0.0
            rate = self.clock_rate
            ext_ts = slot[1]
            delay = due - ext_ts / rate - self._base
            if (self._since_adapt >= ADAPT_GAP or delay < 0 or delay > self.max_delay) and (
                not -self._frame_ts / rate - _EPSILON
                <= delay - self.target_delay()
                <= self._frame_ts / rate + _EPSILON
            ):  # off the target by more than a frame (in band, _adapt would keep it)
                change = self._adapt(ext, ext_ts, delay, due)
                if isinstance(change, Frame):
                    self._due = due + len(change.pcm) / (change.sample_rate * change.channels)
                    return change
                if change is not None:
                    ext = change
                    slot = slots[ext]
                    ext_ts = slot[1]
                    delay = due - ext_ts / rate - self._base
            stats.delay = delay
            del slots[ext]
            index = ext & (_RING - 1)
            self._ring_seq[index] = ext
            self._ring_state[index] = _PLAYED
            packet = slot[0]
            decoder = self.decoders.get(packet.payload_type)
            if decoder is None:
                samples = self._frame_ts
                frame = Frame(np.zeros(samples, np.int16), rate, ext_ts, rate, 1, False)
                duration = samples / rate
            else:
                self._decoder = decoder
                pcm = decoder.decode(packet.payload)
                sample_rate = decoder.sample_rate
                channels = decoder.channels
                frame = Frame(pcm, sample_rate, ext_ts, rate, channels, False)
                stats.played += 1
                per_second = sample_rate * channels
                duration = len(pcm) / per_second
                samples = len(pcm) * rate // per_second
                if samples:
                    self._frame_ts = samples
            self._next = ext + 1
            self._next_ts = ext_ts + samples
        else:
            if slots:
                # A hole with packets after it: lost.
                stats.lost += 1
                self._finish(ext, _LOST)
                self._next = ext + 1
                frame = self._conceal(self._next_ts)
                self._next_ts += self._frame_ts
            else:
                # Nothing buffered: conceal, keep waiting for the packet.
                stats.underruns += 1
                self._underrun += self._frame_ts / self.clock_rate
                if self._underrun > self.idle_after:
                    self._due = None
                    self._playing = False
                    return None
                frame = self._conceal(self._next_ts)
            duration = len(frame.pcm) / (frame.sample_rate * frame.channels)
        stats.depth = len(slots)
        self._since_adapt += 1
        self._due = due + duration
        return frame
