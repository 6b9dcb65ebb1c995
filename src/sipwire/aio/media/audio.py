"""Audio in and out of files, and tones: what ``call.play()`` and ``call.record()`` use.

- :func:`read_wav` reads a RIFF WAVE file of any rate and channel count
  (PCM of 8, 16, 24 or 32 bits, IEEE float of 32 or 64 bits, plain or
  ``WAVE_FORMAT_EXTENSIBLE``), mixes it down to mono and resamples it to
  the rate asked for with libsoxr's polyphase filter (:func:`resample`).
- :class:`WavWriter` writes 16-bit PCM mono WAV as frames arrive.
- :func:`tone` makes a sine (or the sum of several, for DTMF-style pairs).
"""

from __future__ import annotations

import math
import os
import struct
import wave
from typing import Final

import numpy as np
from numpy.typing import NDArray

__all__ = ["StreamResampler", "WavFormatError", "WavWriter", "read_wav", "resample", "tone"]

Pcm = NDArray[np.int16]

_PCM: Final = 1
_FLOAT: Final = 3
_EXTENSIBLE: Final = 0xFFFE


class WavFormatError(ValueError):
    """A file that is not a WAV file this module can read."""


def _chunks(data: bytes) -> dict[bytes, bytes]:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavFormatError("not a RIFF WAVE file")
    chunks: dict[bytes, bytes] = {}
    offset = 12
    while offset + 8 <= len(data):
        name = data[offset : offset + 4]
        (size,) = struct.unpack_from("<I", data, offset + 4)
        body = data[offset + 8 : offset + 8 + size]
        chunks.setdefault(name, body)
        offset += 8 + size + (size & 1)
    return chunks


def _samples(fmt: bytes, body: bytes) -> tuple[NDArray[np.float64], int, int]:
    """(samples as float in -1..1, interleaved; rate; channels) of a fmt chunk and data."""
    if len(fmt) < 16:
        raise WavFormatError("fmt chunk too short")
    tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == _EXTENSIBLE and len(fmt) >= 26:
        (tag,) = struct.unpack_from("<H", fmt, 24)  # the sub-format GUID's first two octets
    if channels == 0 or rate == 0:
        raise WavFormatError("no channels or no sample rate")
    width = bits // 8
    usable = len(body) - len(body) % (width * channels) if width else 0
    raw = body[:usable]
    if tag == _PCM and bits == 8:
        values = (np.frombuffer(raw, np.uint8).astype(np.float64) - 128.0) / 128.0
    elif tag == _PCM and bits == 16:
        values = np.frombuffer(raw, "<i2").astype(np.float64) / 32768.0
    elif tag == _PCM and bits == 24:
        octets = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        joined = octets[:, 0] | (octets[:, 1] << 8) | (octets[:, 2] << 16)
        joined = np.where(joined >= 1 << 23, joined - (1 << 24), joined)
        values = joined.astype(np.float64) / float(1 << 23)
    elif tag == _PCM and bits == 32:
        values = np.frombuffer(raw, "<i4").astype(np.float64) / float(1 << 31)
    elif tag == _FLOAT and bits in (32, 64):
        values = np.frombuffer(raw, "<f4" if bits == 32 else "<f8").astype(np.float64)
    else:
        raise WavFormatError(f"unsupported WAV encoding (format {tag}, {bits} bits)")
    return values, rate, channels


def resample(samples: NDArray[np.floating], rate_in: int, rate_out: int) -> NDArray[np.float64]:
    """``samples`` (mono, float) at ``rate_out``: libsoxr's high-quality polyphase filter."""
    if rate_in == rate_out or len(samples) == 0:
        return np.asarray(samples, np.float64)
    import soxr  # only when audio is resampled: calls without files never load it

    out = soxr.resample(np.asarray(samples, np.float64), rate_in, rate_out, quality="HQ")
    return np.asarray(out, np.float64)


class StreamResampler:
    """Resamples audio that arrives in pieces, with no seam between them (libsoxr's
    stream mode). The filter holds back about 0.1 s until more comes, or ``end``."""

    def __init__(self, rate_in: int, rate_out: int) -> None:
        import soxr

        self.rate_in = rate_in
        self.rate_out = rate_out
        self._stream = soxr.ResampleStream(rate_in, rate_out, 1, dtype="float64", quality="HQ")

    def __call__(self, pcm: Pcm, *, end: bool = False) -> Pcm:
        """The samples at ``rate_out`` that ``pcm`` completes (all of them with ``end``)."""
        samples = pcm.astype(np.float64) / 32768.0
        out = np.asarray(self._stream.resample_chunk(samples, last=end), np.float64)
        return _to_pcm(out)


def _to_pcm(samples: NDArray[np.floating]) -> Pcm:
    return np.clip(np.round(samples * 32767.0), -32768, 32767).astype(np.int16)


def read_wav(path: str | os.PathLike[str], rate: int = 8000) -> Pcm:
    """The audio of a WAV file as mono 16-bit PCM at ``rate``.

    Raises OSError when the file cannot be read and WavFormatError when it
    is not a WAV file of a supported encoding.
    """
    with open(path, "rb") as file:
        data = file.read()
    chunks = _chunks(data)
    if b"fmt " not in chunks or b"data" not in chunks:
        raise WavFormatError("no fmt or data chunk")
    values, file_rate, channels = _samples(chunks[b"fmt "], chunks[b"data"])
    mono = values.reshape(-1, channels).mean(axis=1) if channels > 1 else values
    return _to_pcm(resample(mono, file_rate, rate))


def tone(
    frequency: float | tuple[float, ...],
    duration: float,
    *,
    rate: int = 8000,
    level: float = 0.5,
    phase: float = 0.0,
) -> Pcm:
    """``duration`` seconds of a sine at ``frequency`` Hz (or the sum of several,
    each at ``level / len(frequencies)``), ``level`` a fraction of full scale."""
    frequencies = frequency if isinstance(frequency, tuple) else (frequency,)
    count = round(duration * rate)
    t = np.arange(count, dtype=np.float64) / rate
    total = np.zeros(count, np.float64)
    for f in frequencies:
        total += np.sin(2 * math.pi * f * t + phase)
    return _to_pcm(total * (level / max(1, len(frequencies))))


class WavWriter:
    """A 16-bit PCM mono WAV file written as audio arrives; ``close()`` finishes it."""

    def __init__(self, path: str | os.PathLike[str], rate: int = 8000) -> None:
        self.path = os.fspath(path)
        self.rate = rate
        self.samples = 0
        self._file: wave.Wave_write | None = wave.open(self.path, "wb")  # noqa: SIM115
        self._file.setnchannels(1)
        self._file.setsampwidth(2)
        self._file.setframerate(rate)

    @property
    def closed(self) -> bool:
        """Whether the file is finished."""
        return self._file is None

    def write(self, pcm: Pcm) -> None:
        """Append samples (ignored once closed)."""
        if self._file is not None:
            self._file.writeframesraw(pcm.astype("<i2", copy=False).tobytes())
            self.samples += len(pcm)

    def close(self) -> None:
        """Write the header's final sizes and close the file."""
        file, self._file = self._file, None
        if file is not None:
            file.close()
