"""Wideband codecs: G.722 (RFC 3551 §4.5.2) and Opus (RFC 7587), through PyAV.

PyAV (``pip install sipwire[codecs]``) carries FFmpeg's G.722 and libopus in
its wheels, so nothing is compiled here. When it is not importable,
:func:`available` is False and :func:`register_wideband` registers nothing:
a codec is offered only when it can be encoded.

The two quirks the RTP side must know:

- G.722 samples at 16 kHz but its RTP clock, and its ``a=rtpmap``, say
  8000 (RFC 3551 §4.5.2, an error kept for compatibility): a 20 ms packet
  carries 320 samples and advances the timestamp by 160.
- Opus is ``opus/48000/2`` in SDP whatever it carries (RFC 7587 §7); the
  decoder here gives mono at 48 kHz (``stereo=1`` in the peer's fmtp only
  says it *may* send stereo, which libopus downmixes). The encoder makes
  one Opus frame per packet, 10 to 60 ms, and asks libopus for in-band FEC.

Packet-loss concealment: Opus' own (libopus conceals a frame when handed a
packet with no frame data: the last TOC byte alone, RFC 6716 §3.2.1); G.722
repeats the last frame, halving it at each further loss (FFmpeg's G.722
has no PLC of its own). Opus in-band FEC is sent; it is not used on receipt,
because FFmpeg's libopus decoder does not expose ``decode_fec``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from sipwire.media.codecs import DEFAULT_PTIME, CodecRegistry
from sipwire.media.errors import MediaError, MediaFormatError

_av: Any
try:  # the optional extra
    _av = importlib.import_module("av")
except ImportError:  # pragma: no cover - exercised only without the extra
    _av = None

__all__ = [
    "G722",
    "OPUS",
    "AvDecoder",
    "AvEncoder",
    "G722Codec",
    "OpusCodec",
    "available",
    "register_wideband",
]

_EMPTY: Final = np.zeros(0, dtype=np.int16)


def available() -> bool:
    """Whether PyAV is importable (G.722 and Opus can be used)."""
    return _av is not None


def _require_av() -> Any:
    if _av is None:
        raise MediaError("G.722 and Opus need PyAV: pip install 'sipwire[codecs]'")
    return _av


class AvEncoder:
    """Frames of 16-bit mono PCM in, one payload out per frame (an FFmpeg encoder).

    The FFmpeg context is made at the first frame, whose length fixes the
    frame duration (libopus must know it before the first frame)."""

    __slots__ = ("_bit_rate", "_codec", "_context", "_options", "_pts", "_sample_rate")

    def __init__(
        self,
        codec: str,
        sample_rate: int,
        *,
        bit_rate: int | None = None,
        options: dict[str, str] | None = None,
    ) -> None:
        _require_av()
        self._codec = codec
        self._sample_rate = sample_rate
        self._bit_rate = bit_rate
        self._options = dict(options or {})
        self._context: Any = None
        self._pts = 0

    def _open(self, samples: int) -> Any:
        av = _require_av()
        context = av.CodecContext.create(self._codec, "w")
        context.sample_rate = self._sample_rate
        context.layout = "mono"
        context.format = "s16"
        if self._bit_rate is not None:
            context.bit_rate = self._bit_rate
        options = dict(self._options)
        if self._codec == "libopus":
            options["frame_duration"] = f"{samples * 1000 / self._sample_rate:g}"
        context.options = options
        return context

    def encode(self, pcm: NDArray[np.int16]) -> bytes:
        """The payload of one frame of ``pcm`` (the codec's sample rate, mono)."""
        av = _require_av()
        samples = np.ascontiguousarray(pcm, dtype=np.int16).reshape(1, -1)
        if self._context is None:
            self._context = self._open(samples.shape[1])
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = self._sample_rate
        frame.pts = self._pts
        self._pts += samples.shape[1]
        try:
            packets = self._context.encode(frame)
        except (av.FFmpegError, ValueError) as exc:
            raise MediaError(f"{self._codec}: cannot encode: {exc}") from None
        return b"".join(bytes(packet) for packet in packets)


class AvDecoder:
    """Payloads in, 16-bit mono PCM out (an FFmpeg decoder), with concealment."""

    __slots__ = ("_codec", "_context", "_last", "_losses", "_sample_rate", "_toc")

    def __init__(self, codec: str, sample_rate: int) -> None:
        av = _require_av()
        self._codec = codec
        self._sample_rate = sample_rate
        self._context: Any = av.CodecContext.create(codec, "r")
        self._context.sample_rate = sample_rate
        self._context.layout = "mono"
        self._last = _EMPTY
        self._losses = 0
        self._toc: int | None = None

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def channels(self) -> int:
        return 1

    def decode(self, payload: bytes) -> NDArray[np.int16]:
        """The PCM of one payload; :class:`MediaFormatError` for one that does not
        decode (the edge drops it and counts it, like a malformed packet)."""
        if not payload:
            raise MediaFormatError(f"{self._codec}: empty payload")
        pcm = self._run(payload)
        self._last = pcm
        self._losses = 0
        if self._codec == "libopus":
            self._toc = payload[0] & 0xFC  # code 0: one frame, here of no data
        return pcm

    def conceal(self) -> NDArray[np.int16]:
        """PCM standing in for one lost payload (see the module docstring)."""
        self._losses += 1
        if self._toc is not None:
            try:
                return self._run(bytes((self._toc,)))
            except MediaFormatError:
                pass
        if self._last.size == 0:
            return _EMPTY
        scaled = self._last.astype(np.int32) >> min(self._losses, 15)
        return scaled.astype(np.int16)

    def _run(self, payload: bytes) -> NDArray[np.int16]:
        av = _require_av()
        try:
            frames = self._context.decode(av.Packet(payload))
        except (av.FFmpegError, ValueError) as exc:
            raise MediaFormatError(f"{self._codec}: undecodable payload: {exc}") from None
        if not frames:
            return _EMPTY
        parts = [_mono_s16(frame.to_ndarray()) for frame in frames]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _mono_s16(samples: NDArray[Any]) -> NDArray[np.int16]:
    """One channel of 16-bit PCM from what FFmpeg gives (s16 packed or float planar)."""
    if samples.dtype == np.int16:
        mono: NDArray[np.int16] = np.ascontiguousarray(samples.reshape(-1))
        return mono
    floats: NDArray[np.float64] = samples[0] if samples.ndim == 2 else samples
    scaled: NDArray[np.int16] = np.clip(np.round(floats * 32767.0), -32768, 32767).astype(np.int16)
    return scaled


@dataclass(frozen=True, slots=True)
class G722Codec:
    """G.722 (RFC 3551 §4.5.2): 16 kHz audio, 64 kbit/s, an RTP clock of 8000."""

    name: str = "G722"
    payload_type: int | None = 9
    clock_rate: int = 8000
    sample_rate: int = 16000
    channels: int = 1
    fmtp: str | None = None
    is_audio: bool = True
    default_ptime: int = DEFAULT_PTIME
    ptime_step: int = 10
    max_ptime: int = 120  # 960 octets

    def frame_samples(self, ptime: int) -> int:
        return self.sample_rate * ptime // 1000

    def timestamp_increment(self, ptime: int) -> int:
        return self.clock_rate * ptime // 1000  # half the samples: the RFC's quirk

    def encoder(self) -> AvEncoder:
        return AvEncoder("g722", self.sample_rate)

    def decoder(self) -> AvDecoder:
        return AvDecoder("g722", self.sample_rate)


@dataclass(frozen=True, slots=True)
class OpusCodec:
    """Opus (RFC 7587): ``opus/48000/2`` in SDP; mono 48 kHz PCM here."""

    name: str = "opus"
    payload_type: int | None = 111
    clock_rate: int = 48000
    sample_rate: int = 48000
    channels: int = 2
    fmtp: str | None = "minptime=10;useinbandfec=1"
    is_audio: bool = True
    default_ptime: int = DEFAULT_PTIME
    ptime_step: int = 20  # 20, 40, 60: frame sizes libopus makes in one frame
    max_ptime: int = 60
    bit_rate: int = 32000
    """Bits per second asked of the encoder (``maxaveragebitrate`` of the peer caps it)."""
    packet_loss: int = 10
    """Expected loss in percent, for which libopus sizes its in-band FEC."""
    fec: bool = True
    """Send in-band FEC (the peer's ``useinbandfec=1`` says its decoder uses it)."""

    def frame_samples(self, ptime: int) -> int:
        return self.sample_rate * ptime // 1000

    def timestamp_increment(self, ptime: int) -> int:
        return self.clock_rate * ptime // 1000

    def encoder(self) -> AvEncoder:
        return AvEncoder(
            "libopus",
            self.sample_rate,
            bit_rate=self.bit_rate,
            options={
                "application": "voip",
                "fec": "1" if self.fec else "0",
                "packet_loss": str(self.packet_loss) if self.fec else "0",
            },
        )

    def decoder(self) -> AvDecoder:
        return AvDecoder("libopus", self.sample_rate)


G722: Final = G722Codec()
OPUS: Final = OpusCodec()


def register_wideband(registry: CodecRegistry) -> CodecRegistry:
    """Add G.722 and Opus to ``registry`` when PyAV is importable; returns it."""
    if available():
        for codec in (OPUS, G722):
            if (codec.name, codec.clock_rate, codec.channels) not in registry:
                registry.register(codec)
    return registry
