"""WAV in (every encoding, any rate and channels, resampled) and out, tones, the
port allocator, and the transform stage between packets and the socket."""

from __future__ import annotations

import asyncio
import struct
import wave
from pathlib import Path

import numpy as np
import pytest

from sipwire import NoMediaError, UserAgent, WavWriter, read_wav, tone
from sipwire.aio.media import NoFreePort, PortAllocator, WavFormatError, resample
from sipwire.sdp import NegotiatedStream
from tests.aio.media.helpers import agents, connect, peak_frequency, rtp_config, uri_of, wait_until


def _riff(fmt: bytes, data: bytes) -> bytes:
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _fmt(tag: int, channels: int, rate: int, bits: int, extensible: bool = False) -> bytes:
    align = channels * bits // 8
    base = struct.pack(
        "<HHIIHH", 0xFFFE if extensible else tag, channels, rate, rate * align, align, bits
    )
    if not extensible:
        return base
    guid_tail = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    return base + struct.pack("<HHI", 22, bits, 0) + struct.pack("<H", tag) + guid_tail


def _signal(rate: int, seconds: float = 0.5, frequency: float = 1000.0) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return 0.5 * np.sin(2 * np.pi * frequency * t)


@pytest.mark.parametrize(
    ("tag", "bits", "extensible", "encode"),
    [
        (1, 8, False, lambda x: (np.round(x * 127) + 128).astype(np.uint8).tobytes()),
        (1, 16, False, lambda x: np.round(x * 32767).astype("<i2").tobytes()),
        (
            1,
            24,
            False,
            lambda x: b"".join(
                int(v).to_bytes(3, "little", signed=True) for v in np.round(x * 8388607)
            ),
        ),
        (1, 32, True, lambda x: np.round(x * 2147483647).astype("<i4").tobytes()),
        (3, 32, False, lambda x: x.astype("<f4").tobytes()),
        (3, 64, True, lambda x: x.astype("<f8").tobytes()),
    ],
)
@pytest.mark.parametrize(("rate", "channels"), [(8000, 1), (44100, 2), (48000, 1), (11025, 2)])
def test_every_wav_encoding_reads_as_8_khz_mono(
    tmp_path: Path, tag: int, bits: int, extensible: bool, encode: object, rate: int, channels: int
) -> None:
    assert callable(encode)
    mono = _signal(rate)
    interleaved = np.repeat(mono, channels)
    path = tmp_path / "in.wav"
    path.write_bytes(_riff(_fmt(tag, channels, rate, bits, extensible), encode(interleaved)))
    pcm = read_wav(path)
    assert pcm.dtype == np.int16
    assert abs(len(pcm) - 4000) <= 2
    assert abs(peak_frequency(pcm) - 1000.0) < 5.0
    assert 15000 < np.abs(pcm[200:-200]).max() < 17500


def test_resampling_keeps_the_band_and_removes_what_is_above_it() -> None:
    # 1 kHz is kept; 5 kHz (above the 4 kHz Nyquist of 8 kHz) must not alias down to 3 kHz.
    rate = 48000
    signal = _signal(rate, 1.0, 1000.0) + _signal(rate, 1.0, 5000.0)
    out = resample(signal, rate, 8000)
    spectrum = np.abs(np.fft.rfft(out))
    freqs = np.fft.rfftfreq(len(out), 1 / 8000)
    at = {f: spectrum[np.argmin(np.abs(freqs - f))] for f in (1000.0, 3000.0)}
    assert at[3000.0] < at[1000.0] * 1e-3


def test_what_is_not_a_wav_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    path.write_bytes(b"not a riff file at all")
    with pytest.raises(WavFormatError):
        read_wav(path)
    path.write_bytes(_riff(_fmt(2, 1, 8000, 4), b"\x00" * 100))  # ADPCM
    with pytest.raises(WavFormatError):
        read_wav(path)


def test_the_writer_makes_16_bit_mono_wav(tmp_path: Path) -> None:
    path = tmp_path / "out.wav"
    writer = WavWriter(path)
    writer.write(tone(440.0, 0.25))
    writer.write(tone(440.0, 0.25))
    writer.close()
    writer.write(tone(440.0, 1.0))  # after close: ignored
    with wave.open(str(path)) as result:
        assert (result.getnchannels(), result.getsampwidth(), result.getframerate()) == (1, 2, 8000)
        assert result.getnframes() == 4000


def test_a_dual_tone_has_both_frequencies() -> None:
    pcm = tone((697.0, 1209.0), 1.0)
    spectrum = np.abs(np.fft.rfft(pcm.astype(float)))
    top = sorted(np.argsort(spectrum)[-2:].tolist())
    assert top == [697, 1209]


def test_the_allocator_hands_out_each_pair_once_and_takes_it_back() -> None:
    allocator = PortAllocator(29980, 29983)
    first = allocator.allocate("127.0.0.1")
    second = allocator.allocate("127.0.0.1")
    assert {first.port, second.port} == {29980, 29982}
    assert first.rtcp is not None and first.rtcp.getsockname()[1] == first.port + 1
    with pytest.raises(NoFreePort):
        allocator.allocate("127.0.0.1")
    allocator.release(first)
    third = allocator.allocate("127.0.0.1")
    assert third.port == 29980
    allocator.release(second)
    allocator.release(third)
    assert not allocator.in_use


class _Xor:
    """A stand-in for SRTP: every byte after the RTP/RTCP header flipped, both ways."""

    def __init__(self) -> None:
        self.out = 0
        self.refused = 0

    @staticmethod
    def _flip(data: bytes, header: int) -> bytes:
        return data[:header] + bytes(b ^ 0x5A for b in data[header:])

    def outgoing_rtp(self, data: bytes) -> bytes:
        self.out += 1
        return self._flip(data, 12)

    def incoming_rtp(self, data: bytes) -> bytes | None:
        if len(data) < 12:
            self.refused += 1
            return None
        return self._flip(data, 12)

    def outgoing_rtcp(self, data: bytes) -> bytes:
        return self._flip(data, 8)

    def incoming_rtcp(self, data: bytes) -> bytes | None:
        return self._flip(data, 8)


@pytest.mark.asyncio
@pytest.mark.timeout(30)
async def test_packets_pass_the_transform_stage_both_ways(tmp_path: Path) -> None:
    transforms: list[_Xor] = []

    def make(stream: NegotiatedStream) -> _Xor:
        transforms.append(_Xor())
        return transforms[-1]

    config = rtp_config(transform=make)
    async with agents(config, config) as (a, b):
        call_a, call_b = await connect(a, b)
        call_b.record(str(tmp_path / "b.wav"))
        await call_a.play_tone(800.0, 0.6)
        await asyncio.sleep(0.15)
        stats = call_b.media_stats()
        assert stats is not None
        await call_a.hangup()
    assert len(transforms) >= 2 and all(t.out > 0 for t in transforms)
    assert stats.dropped == 0
    assert abs(peak_frequency(read_wav(tmp_path / "b.wav")) - 800.0) < 15.0


@pytest.mark.asyncio
@pytest.mark.timeout(30)
async def test_without_rtp_the_audio_methods_say_so() -> None:
    async with (
        UserAgent("sip:a@127.0.0.1", rtp=False) as a,
        UserAgent("sip:b@127.0.0.1", rtp=False) as b,
    ):
        b.auto_answer()
        call = await a.call(uri_of(b, "b"), timeout=5)
        assert call.media is None and call.media_stats() is None
        with pytest.raises(NoMediaError):
            call.record("x.wav")
        await call.hangup()
        await wait_until(lambda: not b.calls)
