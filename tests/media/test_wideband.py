"""G.722 and Opus through PyAV: really wideband, concealment, RTP clock quirks."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

pytest.importorskip("av")

from sipwire.media.codecs import default_registry, negotiate_ptime
from sipwire.media.errors import MediaFormatError
from sipwire.media.wideband import (
    G722,
    OPUS,
    G722Codec,
    OpusCodec,
    available,
    register_wideband,
)


def tone(freq: float, rate: int, seconds: float, amplitude: float = 8000.0) -> NDArray[np.int16]:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def peak(pcm: NDArray[np.int16], rate: int) -> float:
    """The frequency with the most energy (after the codec's start-up)."""
    body = pcm[rate // 10 :].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(body * np.hanning(body.size)))
    return float(np.fft.rfftfreq(body.size, 1 / rate)[int(np.argmax(spectrum))])


def through(codec: G722Codec | OpusCodec, pcm: NDArray[np.int16], ptime: int = 20) -> list[bytes]:
    encoder = codec.encoder()
    step = codec.frame_samples(ptime)
    return [encoder.encode(pcm[i : i + step]) for i in range(0, pcm.size - step + 1, step)]


@pytest.mark.parametrize("freq", [1000.0, 6000.0])
def test_g722_carries_tones_above_the_narrowband_limit(freq: float) -> None:
    payloads = through(G722, tone(freq, 16000, 1.0))
    assert {len(p) for p in payloads} == {160}  # 64 kbit/s, 20 ms
    decoder = G722.decoder()
    out = np.concatenate([decoder.decode(p) for p in payloads])
    assert out.size == 16000
    assert abs(peak(out, 16000) - freq) < 20
    assert np.abs(out).max() > 4000  # not just a trace of it


@pytest.mark.parametrize("freq", [1000.0, 6000.0])
def test_opus_round_trip(freq: float) -> None:
    payloads = through(OPUS, tone(freq, 48000, 1.0))
    assert len(payloads) == 50
    assert all(0 < len(p) < 400 for p in payloads)
    decoder = OPUS.decoder()
    out = np.concatenate([decoder.decode(p) for p in payloads])
    assert out.size == 48000
    assert abs(peak(out, 48000) - freq) < 20


@pytest.mark.parametrize("ptime", [20, 40, 60])
def test_opus_frame_durations(ptime: int) -> None:
    payloads = through(OPUS, tone(1000, 48000, 0.6), ptime)
    decoder = OPUS.decoder()
    assert all(decoder.decode(p).size == OPUS.frame_samples(ptime) for p in payloads)


def test_opus_conceals_a_lost_packet_with_the_tone() -> None:
    payloads = through(OPUS, tone(1000, 48000, 1.0))
    decoder = OPUS.decoder()
    for payload in payloads[:20]:
        decoder.decode(payload)
    concealed = decoder.conceal()
    assert concealed.size == 960
    assert np.abs(concealed).max() > 2000  # the tone goes on, not silence
    assert decoder.decode(payloads[21]).size == 960  # and decoding resumes


def test_g722_conceals_by_fading_repetition() -> None:
    payloads = through(G722, tone(1000, 16000, 0.2))
    decoder = G722.decoder()
    assert decoder.conceal().size == 0  # nothing to repeat yet
    last = decoder.decode(payloads[0])
    first = decoder.conceal()
    second = decoder.conceal()
    assert first.size == last.size == 320
    assert np.abs(second).max() < np.abs(first).max() <= np.abs(last).max()


def test_rtp_clock_quirks() -> None:
    assert (G722.clock_rate, G722.sample_rate) == (8000, 16000)
    assert (G722.frame_samples(20), G722.timestamp_increment(20)) == (320, 160)
    assert (OPUS.clock_rate, OPUS.channels) == (48000, 2)
    assert (OPUS.frame_samples(20), OPUS.timestamp_increment(20)) == (960, 960)
    assert negotiate_ptime(OPUS, 30) == 20
    assert negotiate_ptime(OPUS, 120) == 60


def test_registered_under_their_sdp_names() -> None:
    assert available()
    registry = register_wideband(default_registry())
    assert registry.codec("g722", 8000) is G722
    assert registry.codec("OPUS", 48000, 2) is OPUS
    assert register_wideband(registry) is registry  # twice is harmless
    assert len(registry.codecs()) == 4


def test_garbage_payload_is_a_format_error() -> None:
    decoder = OPUS.decoder()
    with pytest.raises(MediaFormatError):
        decoder.decode(b"")
    # Whatever libopus makes of random bytes, it is PCM or a MediaFormatError.
    rng = np.random.default_rng(7)
    for _ in range(200):
        data = rng.integers(0, 256, int(rng.integers(1, 200)), dtype=np.uint8).tobytes()
        try:
            out = decoder.decode(data)
        except MediaFormatError:
            continue
        assert out.dtype == np.int16
