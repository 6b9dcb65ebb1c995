"""DTMF as RFC 4733 telephone-events: the payload, a sender and a receiver.

The payload (§2.3)::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     event     |E|R| volume    |          duration             |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

Events 0-9 are the digits, 10 ``*``, 11 ``#``, 12-15 ``A``-``D`` (§3.2).

Sending (§2.5.1): every packet of an event carries the RTP timestamp of the
event's start; the first has the marker bit; one packet goes out per
packet time with the duration so far (in RTP units); the last has the E
bit and the full duration and is sent three times (§2.5.1.4), one per
packet time, with new sequence numbers. Audio is not sent while an event
is: the RTP clock moves on without it. A pause follows each digit.

Receiving (§2.5.2): an event is its timestamp. The digit is reported once,
on the first packet of a new timestamp, whichever packet that is (the
start may be lost). The event ends with its E bit; or, when every end
packet is lost, with the first packet of a newer timestamp, or ``timeout``
seconds without a packet. Retransmissions, duplicates, and stragglers of
events already ended are ignored; a new segment of a long event (§2.5.1.3:
same event, timestamp where the last segment's duration ended) continues
it rather than repeating the digit.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass
from typing import Final

from sipwire.media.errors import MediaError, MediaFormatError
from sipwire.media.rtp import RtpPacket, RtpSender, ts_delta

__all__ = [
    "DTMF_DIGITS",
    "DtmfDigit",
    "DtmfEnded",
    "DtmfReceiver",
    "DtmfSender",
    "TelephoneEvent",
    "digit_event",
    "event_digit",
]

DTMF_DIGITS: Final = "0123456789*#ABCD"
"""The digits in event-code order (RFC 4733 §3.2)."""

_EVENT = struct.Struct("!BBH")


def digit_event(digit: str) -> int:
    """The event code of a DTMF digit (case-insensitive); MediaError for anything else."""
    code = DTMF_DIGITS.find(digit.upper()) if len(digit) == 1 else -1
    if code < 0:
        raise MediaError(f"{digit!r} is not a DTMF digit (0-9 * # A-D)")
    return code


def event_digit(event: int) -> str | None:
    """The DTMF digit of an event code, or None (flash and other events)."""
    return DTMF_DIGITS[event] if 0 <= event < 16 else None


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """One telephone-event payload block (§2.3)."""

    event: int
    end: bool = False
    volume: int = 10
    """Power level as -dBm0, 0-63 (§2.3.4)."""
    duration: int = 0
    """Duration so far, in RTP timestamp units."""

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        """The first event of a payload; MediaFormatError when it is shorter than one."""
        if len(payload) < 4:
            raise MediaFormatError(f"telephone-event payload of {len(payload)} bytes")
        event, flags, duration = _EVENT.unpack_from(payload)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)

    def __bytes__(self) -> bytes:
        if not (0 <= self.event <= 255 and 0 <= self.volume <= 63 and 0 <= self.duration <= 0xFFFF):
            raise MediaError("telephone-event field out of range")
        return _EVENT.pack(self.event, (0x80 if self.end else 0) | self.volume, self.duration)


# ---------------------------------------------------------------- sender


@dataclass(slots=True)
class _Queued:
    event: int
    duration: int
    volume: int


class DtmfSender:
    """Turns digits into telephone-event packets, one tick per packet time.

    :meth:`send` queues digits; the media loop calls :meth:`tick` once per
    packet time with the stream's :class:`RtpSender` (events share the
    audio's SSRC and sequence numbers, §2.1). A non-empty list is what to
    send instead of audio in that packet time; an empty one means send
    audio (or silence: between digits ``pause`` seconds pass).
    """

    def __init__(
        self,
        payload_type: int,
        *,
        clock_rate: int = 8000,
        ptime: int = 20,
        volume: int = 10,
        duration: float = 0.1,
        pause: float = 0.06,
    ) -> None:
        self.payload_type = payload_type
        self.clock_rate = clock_rate
        self.volume = volume
        self.duration = duration
        self._tick = clock_rate * ptime // 1000
        self._pause_samples = round(pause * clock_rate)
        self._queue: deque[_Queued] = deque()
        self._current: _Queued | None = None
        self._start = 0
        self._elapsed = 0
        self._ends = 0
        self._pause = 0

    @property
    def busy(self) -> bool:
        """Whether an event, a pause or queued digits remain."""
        return bool(self._queue) or self._current is not None or self._pause > 0

    def send(
        self, digits: str, *, duration: float | None = None, volume: int | None = None
    ) -> None:
        """Queue ``digits`` (0-9 * # A-D), each for ``duration`` seconds."""
        length = round((self.duration if duration is None else duration) * self.clock_rate)
        level = self.volume if volume is None else volume
        if not 0 < length <= 0xFFFF:
            raise MediaError("a DTMF event lasts more than 0 and at most 65535 RTP units")
        if not 0 <= level <= 63:
            raise MediaError("DTMF volume is 0-63 (-dBm0)")
        events = [digit_event(digit) for digit in digits]
        self._queue.extend(_Queued(event, length, level) for event in events)

    def tick(self, rtp: RtpSender) -> list[RtpPacket]:
        """The packets for this packet time: [] to send audio instead."""
        if self._pause > 0:
            self._pause -= self._tick
            return []
        current = self._current
        if current is None:
            if not self._queue:
                return []
            current = self._current = self._queue.popleft()
            self._start = rtp.timestamp
            self._elapsed = 0
            self._ends = 0
        first = self._elapsed == 0
        if not self._ends:
            self._elapsed = min(self._elapsed + self._tick, current.duration)
            if self._elapsed >= current.duration:
                self._ends = 1
        else:
            self._ends += 1
        payload = TelephoneEvent(current.event, bool(self._ends), current.volume, self._elapsed)
        packet = rtp.event_packet(bytes(payload), self.payload_type, self._start, marker=first)
        rtp.advance(self._tick)
        if self._ends >= 3:
            self._current = None
            self._pause = self._pause_samples
        return [packet]


# ---------------------------------------------------------------- receiver


@dataclass(frozen=True, slots=True)
class DtmfDigit:
    """A digit began (reported once per event)."""

    digit: str
    timestamp: int
    """The event's RTP timestamp."""
    volume: int


@dataclass(frozen=True, slots=True)
class DtmfEnded:
    """The event of a digit ended."""

    digit: str
    timestamp: int
    duration: int
    """RTP units, as the last packet received said (all segments counted)."""
    timed_out: bool
    """True when no end packet arrived: a newer event or the timeout ended it."""


DtmfEvent = DtmfDigit | DtmfEnded


@dataclass(slots=True)
class _Event:
    timestamp: int
    event: int
    duration: int
    offset: int
    """RTP units of the earlier segments of the same event."""
    origin: int
    """Timestamp of the event's first segment."""
    last: float
    ended: bool = False


class DtmfReceiver:
    """Telephone-event packets in, one :class:`DtmfDigit` per event out.

    :meth:`receive` every packet of the telephone-event payload type; pull
    :meth:`next_event`; keep a timer at :meth:`next_timer` for
    :meth:`handle_timer` (the timeout that ends an event whose end packets
    were all lost).
    """

    def __init__(self, *, timeout: float = 0.3, memory: int = 32) -> None:
        self.timeout = timeout
        self._ssrc: int | None = None
        self._current: _Event | None = None
        self._recent: deque[int] = deque(maxlen=memory)
        self._events: deque[DtmfEvent] = deque()

    def next_event(self) -> DtmfEvent | None:
        """The next digit or end, in order, or None."""
        return self._events.popleft() if self._events else None

    def next_timer(self) -> float | None:
        """When an event without an end packet times out, or None."""
        current = self._current
        if current is None or current.ended:
            return None
        return current.last + self.timeout

    def handle_timer(self, now: float) -> None:
        """End the current event when its timeout has passed."""
        deadline = self.next_timer()
        if deadline is not None and now >= deadline:
            self._end(timed_out=True)

    def _end(self, *, timed_out: bool) -> None:
        current = self._current
        if current is None or current.ended:
            return
        current.ended = True
        digit = event_digit(current.event)
        if digit is not None:
            self._events.append(
                DtmfEnded(digit, current.origin, current.offset + current.duration, timed_out)
            )

    def receive(self, packet: RtpPacket, now: float) -> None:
        """A telephone-event packet arrived (MediaFormatError: payload too short)."""
        event = TelephoneEvent.parse(packet.payload)
        if packet.ssrc != self._ssrc:
            self._end(timed_out=True)
            self._ssrc = packet.ssrc
            self._current = None
            self._recent.clear()
        timestamp = packet.timestamp
        current = self._current
        if current is not None and timestamp == current.timestamp:
            if not current.ended:
                current.last = now
                current.duration = max(current.duration, event.duration)
                if event.end:
                    self._end(timed_out=False)
            return
        if timestamp in self._recent:
            return
        offset = 0
        origin = timestamp
        if current is not None:
            if ts_delta(timestamp, current.timestamp) < 0:
                return  # a straggler of an event older than the current one
            continuing = (
                not current.ended
                and event.event == current.event
                and timestamp == (current.timestamp + current.duration) & 0xFFFFFFFF
            )
            if continuing:  # §2.5.1.3: the next segment of a long event
                offset = current.offset + current.duration
                origin = current.origin
            else:
                self._end(timed_out=True)
            self._recent.append(current.timestamp)
        self._current = _Event(timestamp, event.event, event.duration, offset, origin, now)
        if not offset:
            digit = event_digit(event.event)
            if digit is not None:
                self._events.append(DtmfDigit(digit, timestamp, event.volume))
        if event.end:
            self._end(timed_out=False)
