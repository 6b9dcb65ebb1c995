"""G.711 µ-law and A-law (ITU-T G.711), vectorised with numpy, and a
packet-loss concealment in the style of G.711 Appendix I.

Coding is a table look-up, built once at import from the algorithm of the
Recommendation: 65536-entry tables from 16-bit linear PCM to code and
256-entry tables back. A-law quantizes the top 13 bits of a sample, µ-law
the top 14; both encode a negative value from its one's complement (so -1
and 0 fall in the two smallest intervals either side of zero), and decode
to the middle of the interval. A-law inverts the even bits of the code
(XOR 0x55), µ-law all of them.

A-law, 12-bit magnitude M of the 13-bit value, segment S, 4-bit step Q::

    S = 0:       0 <= M < 32,               Q = M >> 1,        out = 2Q + 1
    S = 1..7:    16·2**S <= M < 32·2**S,     Q = (M >> S) - 16,  out = (16 + Q)·2**S + 2**(S-1)

µ-law, 13-bit magnitude M of the 14-bit value, biased Y = min(M + 33, 8191)::

    S = 0..7:    32·2**S <= Y < 64·2**S,     Q = (Y >> (S+1)) - 16,  out = (2Q + 33)·2**S - 33

Frames are numpy int16 arrays (mono, 8 kHz); payloads are bytes.
"""

from __future__ import annotations

import os
from collections import deque
from typing import Final, Literal

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "ALAW_TO_LINEAR",
    "ULAW_TO_LINEAR",
    "G711Concealer",
    "G711Decoder",
    "G711Encoder",
    "Law",
    "alaw_decode",
    "alaw_encode",
    "ulaw_decode",
    "ulaw_encode",
]

Law = Literal["ulaw", "alaw"]
Pcm = NDArray[np.int16]

_INT16: Final = np.dtype(np.int16)


def _alaw_tables() -> tuple[NDArray[np.uint8], NDArray[np.int16]]:
    x = np.arange(-32768, 32768, dtype=np.int32)
    x13 = x >> 3
    negative = x13 < 0
    magnitude = np.where(negative, ~x13, x13)  # 0..4095
    segment = np.zeros_like(magnitude)
    for s in range(1, 8):
        segment[magnitude >= 16 << s] = s
    step = (magnitude >> np.maximum(segment, 1)) & 0x0F
    code = ((segment << 4) | step | np.where(negative, 0, 0x80)) ^ 0x55
    encode = np.empty(65536, np.uint8)
    encode[x & 0xFFFF] = code
    c = np.arange(256, dtype=np.int32) ^ 0x55
    segment = (c >> 4) & 7
    step = c & 0x0F
    upper = ((16 + step) << segment) + (1 << np.maximum(segment - 1, 0))
    out = np.where(segment == 0, 2 * step + 1, upper) << 3
    decode = np.where(c & 0x80, out, -out).astype(np.int16)
    return encode, decode


def _ulaw_tables() -> tuple[NDArray[np.uint8], NDArray[np.int16]]:
    x = np.arange(-32768, 32768, dtype=np.int32)
    x14 = x >> 2
    negative = x14 < 0
    biased = np.minimum(np.where(negative, ~x14, x14) + 33, 8191)  # 33..8191
    segment = np.zeros_like(biased)
    for s in range(1, 8):
        segment[biased >= 32 << s] = s
    step = (biased >> (segment + 1)) & 0x0F
    code = ~(np.where(negative, 0x80, 0) | (segment << 4) | step) & 0xFF
    encode = np.empty(65536, np.uint8)
    encode[x & 0xFFFF] = code
    c = ~np.arange(256, dtype=np.int32) & 0xFF
    segment = (c >> 4) & 7
    step = c & 0x0F
    out = (((2 * step + 33) << segment) - 33) << 2
    decode = np.where(c & 0x80, -out, out).astype(np.int16)
    return encode, decode


_ALAW_ENCODE, ALAW_TO_LINEAR = _alaw_tables()
_ULAW_ENCODE, ULAW_TO_LINEAR = _ulaw_tables()
ALAW_TO_LINEAR.flags.writeable = False
ULAW_TO_LINEAR.flags.writeable = False
_ALAW_ENCODE.flags.writeable = False
_ULAW_ENCODE.flags.writeable = False


# The optional C look-ups (sipwire/media/_gather.c, built by setup.py) index the same
# tables as the numpy ones below; SIPWIRE_PURE_PYTHON=1 disables them.
ACCELERATED = False
if not os.environ.get("SIPWIRE_PURE_PYTHON"):
    try:
        import sipwire.media._gather as _gather
    except ImportError:  # pragma: no cover - built without a C compiler
        pass
    else:
        ACCELERATED = True
        _expand = _gather.expand
        _narrow = _gather.narrow


def _raw(table: NDArray[np.generic]) -> bytes | None:
    """The table's bytes for the C look-ups, or None without them."""
    return table.tobytes() if ACCELERATED else None


_ULAW_ENCODE_RAW: Final = _raw(_ULAW_ENCODE)
_ALAW_ENCODE_RAW: Final = _raw(_ALAW_ENCODE)
_ULAW_DECODE_RAW: Final = _raw(ULAW_TO_LINEAR)
_ALAW_DECODE_RAW: Final = _raw(ALAW_TO_LINEAR)


def _decode_numpy(table: Pcm, data: bytes) -> Pcm:
    return table.take(np.frombuffer(data, np.uint8))


def _encode_numpy(table: NDArray[np.uint8], pcm: Pcm) -> bytes:
    return table.take(pcm.view(np.uint16)).tobytes()


def _decode(table: Pcm, raw: bytes | None, data: bytes) -> Pcm:
    """``table[code]`` for each octet of ``data`` (``raw``: the table's bytes, in C)."""
    if raw is not None:
        return np.frombuffer(_expand(raw, data), np.int16)
    return _decode_numpy(table, data)


def _encode(table: NDArray[np.uint8], raw: bytes | None, pcm: Pcm) -> bytes:
    """``table[sample]`` for each 16-bit sample of ``pcm`` (``raw``: the table's bytes)."""
    if raw is not None:
        try:
            return _narrow(raw, pcm)
        except (BufferError, ValueError):  # not contiguous: a strided view
            pass
    return _encode_numpy(table, pcm)


def _as_pcm(pcm: NDArray[np.generic]) -> Pcm:
    if pcm.dtype != _INT16:
        if np.issubdtype(pcm.dtype, np.floating):
            pcm = np.rint(pcm)
        pcm = np.clip(pcm, -32768, 32767).astype(np.int16)
    return pcm  # type: ignore[return-value]


def ulaw_encode(pcm: NDArray[np.generic]) -> bytes:
    """µ-law codes of 16-bit linear PCM (other dtypes are rounded and clipped)."""
    return _encode(_ULAW_ENCODE, _ULAW_ENCODE_RAW, _as_pcm(pcm))


def alaw_encode(pcm: NDArray[np.generic]) -> bytes:
    """A-law codes of 16-bit linear PCM (other dtypes are rounded and clipped)."""
    return _encode(_ALAW_ENCODE, _ALAW_ENCODE_RAW, _as_pcm(pcm))


def ulaw_decode(data: bytes) -> Pcm:
    """16-bit linear PCM of µ-law codes."""
    return _decode(ULAW_TO_LINEAR, _ULAW_DECODE_RAW, data)


def alaw_decode(data: bytes) -> Pcm:
    """16-bit linear PCM of A-law codes."""
    return _decode(ALAW_TO_LINEAR, _ALAW_DECODE_RAW, data)


# ---------------------------------------------------------------- concealment


_FADE: Final = np.clip(1.0 - (np.arange(480, dtype=np.float32) - 80) / (480 - 80), 0.0, 1.0).astype(
    np.float32
)
"""The concealment's gain by sample of an erasure: 1 for 10 ms, down to 0 at 60 ms."""


class G711Concealer:
    """Packet-loss concealment for 8 kHz speech, after G.711 Appendix I.

    Pitch waveform substitution: at the start of an erasure the pitch period
    P (40-120 samples, 200-66 Hz) is the lag of the best normalised
    correlation of the last 20 ms with the history; the last P samples are
    repeated, the joint smoothed by a quarter-period overlap-add with what
    preceded them. After 10 ms of erasure two periods are repeated, after
    20 ms three (less buzz); from 10 ms on the signal fades by 20 % per
    10 ms, to silence at 60 ms. The first good frame after an erasure is
    overlap-added with the continued synthesis over 4 ms, plus 4 ms per
    further 10 ms erased (at most 10 ms). Unlike Appendix I there is no
    3.75 ms output delay: the start of an erasure is not cross-faded, which
    the quarter-period smoothing of the loop point makes up for in periodic
    speech.

    :meth:`update` takes every good frame (and returns it, merged after an
    erasure); :meth:`conceal` makes the samples of a missing one.
    """

    RATE: Final = 8000
    HISTORY: Final = 390  # 3 periods of the longest pitch and a quarter (48.75 ms)
    PITCH_MIN: Final = 40
    PITCH_MAX: Final = 120
    WINDOW: Final = 160  # the correlation window, 20 ms
    TEN_MS: Final = 80
    FADE_END: Final = 480  # silence after 60 ms

    __slots__ = ("_buffer", "_erased", "_frozen", "_periods", "_pitch", "_pos", "_recent")

    def __init__(self) -> None:
        # The history is kept as references to the last frames (no copy per
        # frame); it is joined only when an erasure starts.
        self._recent: deque[Pcm] = deque(maxlen=8)
        self._frozen = np.zeros(self.HISTORY, np.float32)
        self._buffer = np.zeros(self.PITCH_MAX, np.float32)
        self._erased = 0
        self._pitch = self.PITCH_MAX
        self._periods = 1
        self._pos = 0

    @property
    def erased(self) -> int:
        """Samples concealed in the current erasure (0: none)."""
        return self._erased

    def _history(self) -> NDArray[np.float32]:
        """The last ``HISTORY`` samples played, zeros before the first."""
        history = np.zeros(self.HISTORY, np.float32)
        if self._recent:
            joined = np.concatenate(self._recent)[-self.HISTORY :]
            history[self.HISTORY - len(joined) :] = joined
        return history

    def _find_pitch(self, x: NDArray[np.float32]) -> int:
        # Row i of the candidates is seg[i : i + WINDOW], the lag PITCH_MAX - i: its
        # correlation with the last 20 ms and its energy (a difference of running sums).
        end = len(x)
        window = self.WINDOW
        target = x[end - window :].astype(np.float64)
        seg = x[end - window - self.PITCH_MAX : end - self.PITCH_MIN].astype(np.float64)
        correlation = np.correlate(seg, target, "valid")
        running = np.cumsum(seg * seg)
        energy = running[window - 1 :] - np.concatenate(((0.0,), running[:-window]))
        score = correlation / np.sqrt(np.maximum(energy, 0.0) + 1.0)
        best = int(np.argmax(score))
        if correlation[best] <= 0.0:
            return self.PITCH_MAX
        return self.PITCH_MAX - best  # row 0 is the longest lag

    def _loop(self, periods: int) -> NDArray[np.float32]:
        """``periods`` pitch periods of the frozen history, the loop point smoothed."""
        x = self._frozen
        length = periods * self._pitch
        buffer = x[-length:].copy()
        ola = self._pitch // 4
        if ola:
            w = (np.arange(ola, dtype=np.float32) + 0.5) / ola
            buffer[-ola:] = x[-ola:] * (1 - w) + x[-length - ola : -length] * w
        return buffer

    def _synthesize(self, n: int) -> NDArray[np.float32]:
        out = np.empty(n, np.float32)
        done = 0
        while done < n:
            t = self._erased + done
            periods = 1 if t < self.TEN_MS else 2 if t < 2 * self.TEN_MS else 3
            if periods != self._periods:
                old = len(self._buffer)
                self._buffer = self._loop(periods)
                self._pos = (len(self._buffer) - old + self._pos) % len(self._buffer)
                self._periods = periods
            limit = self.TEN_MS * periods if periods < 3 else t + n
            count = min(n - done, limit - t)
            length = len(self._buffer)
            pos = self._pos
            out[done : done + count] = self._buffer.take(np.arange(pos, pos + count), mode="wrap")
            self._pos = (pos + count) % length
            done += count
        start = self._erased
        if start + n <= self.TEN_MS:  # before the fade
            return out
        gain = _FADE[start : start + n]
        if len(gain) < n:
            gain = np.concatenate((gain, np.zeros(n - len(gain), np.float32)))
        result: NDArray[np.float32] = out * gain
        return result

    def conceal(self, n: int) -> Pcm:
        """``n`` samples standing in for a lost frame."""
        if self._erased == 0:
            self._frozen = self._history()
            self._pitch = self._find_pitch(self._frozen)
            self._periods = 1
            self._buffer = self._loop(1)
            self._pos = 0
        if self._erased >= self.FADE_END:
            out = np.zeros(n, np.int16)
        else:
            out = np.rint(self._synthesize(n)).astype(np.int16)
        self._erased += n
        self._recent.append(out)
        return out

    def update(self, pcm: Pcm) -> Pcm:
        """A good frame: remembered as history, merged with the synthesis after an erasure."""
        if self._erased:
            ola = min(32 + 32 * ((self._erased - 1) // self.TEN_MS), 80, len(pcm))
            if self._erased >= self.FADE_END:
                synth = np.zeros(ola, np.float32)
            else:
                synth = self._synthesize(ola)
            w = (np.arange(ola, dtype=np.float32) + 0.5) / ola
            pcm = pcm.copy()
            pcm[:ola] = np.rint(synth * (1 - w) + pcm[:ola] * w).astype(np.int16)
            self._erased = 0
        self._recent.append(pcm)
        return pcm


# ---------------------------------------------------------------- codec objects


class G711Encoder:
    """Encodes frames of 16-bit PCM to µ-law or A-law payloads."""

    __slots__ = ("_raw", "_table")

    def __init__(self, law: Law) -> None:
        self._table = _ULAW_ENCODE if law == "ulaw" else _ALAW_ENCODE
        self._raw = _raw(self._table)

    def encode(self, pcm: NDArray[np.generic]) -> bytes:
        """The payload of one frame."""
        return _encode(self._table, self._raw, _as_pcm(pcm))


class G711Decoder:
    """Decodes µ-law or A-law payloads; :meth:`conceal` fills a lost frame.

    One decoder per received stream: the concealment keeps the stream's
    recent history (references to the frames it returned: treat them as
    read-only). ``plc=False`` conceals with silence instead.
    """

    __slots__ = ("_frame", "_plc", "_raw", "_table")

    sample_rate: Final = 8000
    channels: Final = 1

    def __init__(self, law: Law, *, plc: bool = True) -> None:
        self._table = ULAW_TO_LINEAR if law == "ulaw" else ALAW_TO_LINEAR
        self._raw = _raw(self._table)
        self._plc = G711Concealer() if plc else None
        self._frame = 160

    def decode(self, payload: bytes) -> Pcm:
        """The PCM of one payload (one sample per octet)."""
        pcm = _decode(self._table, self._raw, payload)
        if payload:
            self._frame = len(payload)
        if self._plc is not None:
            return self._plc.update(pcm)
        return pcm

    def conceal(self) -> Pcm:
        """A frame, as long as the last one decoded, standing in for a lost one."""
        if self._plc is None:
            return np.zeros(self._frame, np.int16)
        return self._plc.conceal(self._frame)
