"""G.722 and Opus between two sipwire agents: tones through at 16 and 48 kHz, a
6 kHz tone only wideband can carry, the application's rate resampled to and
from the codec's, Opus format parameters, and a codec change mid-call."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from sipwire import MediaConfig, MediaStats, read_wav
from sipwire.aio.media.session import tuned
from sipwire.media.codecs import PCMU
from sipwire.media.wideband import OPUS, OpusCodec, available
from sipwire.sdp import PCMU as SDP_PCMU
from sipwire.sdp import TELEPHONE_EVENT
from tests.aio.media.helpers import (
    LossyRelay,
    agents,
    connect,
    peak_frequency,
    rtp_config,
    wait_until,
)

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.timeout(60),
    pytest.mark.skipif(not available(), reason="PyAV (sipwire[codecs]) is not installed"),
]

TONE_SECONDS = 2.0


def media(*codecs: str) -> MediaConfig:
    return MediaConfig(codecs=(*codecs, "telephone-event"))


async def tone_through(
    codec: str, frequency: float, tmp: Path, *, sample_rate: int | None = None
) -> tuple[MediaStats, MediaStats, np.ndarray, int]:
    """A plays a tone of ``frequency`` Hz to B over ``codec``; B's stats and recording."""
    recording = tmp / "b.wav"
    a_rtp = rtp_config(sample_rate=sample_rate)
    b_rtp = rtp_config(sample_rate=sample_rate)
    async with agents(a_rtp, b_rtp, a_media=media(codec), b_media=media(codec)) as (a, b):
        call_a, call_b = await connect(a, b)
        writer = call_b.record(str(recording))
        await call_a.play_tone(frequency, TONE_SECONDS)
        await asyncio.sleep(0.3)
        stats_a, stats_b = call_a.media_stats(), call_b.media_stats()
        await call_a.hangup()
    assert stats_a is not None and stats_b is not None
    return stats_a, stats_b, read_wav(recording, writer.rate), writer.rate


def loud_part(pcm: np.ndarray) -> np.ndarray:
    loud = np.flatnonzero(np.abs(pcm) > 1000)
    assert len(loud) > 0, "no tone in the recording"
    return pcm[loud[0] : loud[-1] + 1]


@pytest.mark.parametrize("frequency", [1000.0, 6000.0])
async def test_g722_carries_a_tone_at_16_khz(frequency: float, tmp_path: Path) -> None:
    stats_a, stats_b, pcm, rate = await tone_through("G722", frequency, tmp_path)
    assert stats_a.codec == "G722/8000" and stats_b.codec == "G722/8000"
    assert rate == 16000
    assert stats_b.packets_received >= 0.99 * TONE_SECONDS / 0.02
    tone_part = loud_part(pcm)
    assert len(tone_part) > 0.9 * TONE_SECONDS * 16000
    # 6 kHz is above what 8 kHz sampling can carry (4 kHz): the call is wideband.
    assert abs(peak_frequency(tone_part, 16000) - frequency) < 20.0


async def test_opus_carries_a_tone_at_48_khz(tmp_path: Path) -> None:
    stats_a, stats_b, pcm, rate = await tone_through("opus", 1000.0, tmp_path)
    assert stats_a.codec == "opus/48000" and stats_b.codec == "opus/48000"
    assert rate == 48000
    assert stats_b.packets_received >= 0.99 * TONE_SECONDS / 0.02
    tone_part = loud_part(pcm)
    assert len(tone_part) > 0.9 * TONE_SECONDS * 48000
    assert abs(peak_frequency(tone_part, 48000) - 1000.0) < 10.0


@pytest.mark.parametrize("codec", ["G722", "opus"])
async def test_the_application_rate_is_resampled_to_and_from_the_codec(
    codec: str, tmp_path: Path
) -> None:
    _, stats_b, pcm, rate = await tone_through(codec, 1000.0, tmp_path, sample_rate=8000)
    assert rate == 8000
    assert stats_b.codec is not None and stats_b.codec.lower().startswith(codec.lower())
    tone_part = loud_part(pcm)
    assert len(tone_part) > 0.9 * TONE_SECONDS * 8000
    assert abs(peak_frequency(tone_part, 8000) - 1000.0) < 10.0


async def test_a_reinvite_changing_the_codec_leaves_no_gap(tmp_path: Path) -> None:
    recording = tmp_path / "b.wav"
    rtp = rtp_config(sample_rate=16000)
    async with agents(rtp, rtp, a_media=media("PCMU", "G722"), b_media=media("G722", "PCMU")) as (
        a,
        b,
    ):
        call_a, call_b = await connect(a, b)
        first = call_a.media_stats()
        assert first is not None and first.codec == "G722/8000"  # B's preference
        writer = call_b.record(str(recording))
        playing = asyncio.ensure_future(call_a.play_tone(1000.0, 3.0))
        await asyncio.sleep(1.5)
        media_a = call_a.media
        assert media_a is not None
        media_a.negotiator.audio_codecs = (SDP_PCMU, TELEPHONE_EVENT)  # A now offers PCMU only
        await call_a.reinvite()
        await wait_until(lambda: (s := call_b.media_stats()) and s.codec == "PCMU/8000")
        await playing
        await asyncio.sleep(0.3)
        stats_a = call_a.media_stats()
        await call_a.hangup()
    assert stats_a is not None and stats_a.codec == "PCMU/8000"
    pcm = read_wav(recording, writer.rate)
    tone_part = loud_part(pcm)
    assert len(tone_part) > 0.95 * 3.0 * 16000
    # Every 20 ms of the tone has sound in it: the switch left no gap.
    windows = tone_part[: len(tone_part) // 320 * 320].reshape(-1, 320).astype(np.float64)
    rms = np.sqrt((windows**2).mean(axis=1))
    assert int((rms < 2000).sum()) == 0, rms.min()
    assert abs(peak_frequency(tone_part, 16000) - 1000.0) < 10.0


def opus(fmtp: str | None) -> OpusCodec:
    codec = tuned(OPUS, fmtp)
    assert isinstance(codec, OpusCodec)
    return codec


async def test_opus_format_parameters_shape_what_is_sent() -> None:
    assert tuned(PCMU, "maxaveragebitrate=8000") is PCMU
    capped = opus("maxaveragebitrate=20000;useinbandfec=1;stereo=1")
    assert capped.bit_rate == 20000 and capped.fec
    assert opus("maxaveragebitrate=1000").bit_rate == 6000
    assert opus("maxaveragebitrate=96000").bit_rate == OPUS.bit_rate
    assert not opus(None).fec
    assert opus("useinbandfec=1") is OPUS
    # The encoder takes them: a capped stream's packets are smaller.
    pcm = (np.sin(np.arange(960) * 2 * np.pi / 48) * 8000).astype(np.int16)
    low, high = opus("maxaveragebitrate=8000").encoder(), opus("useinbandfec=1").encoder()
    low_sizes = [len(low.encode(pcm)) for _ in range(20)]
    high_sizes = [len(high.encode(pcm)) for _ in range(20)]
    assert sum(low_sizes) < sum(high_sizes)


async def test_opus_conceals_lost_packets(tmp_path: Path) -> None:
    recording = tmp_path / "b.wav"
    relay = LossyRelay(loss=0.1, reorder=0.0)
    relay.start()
    try:
        async with agents(
            rtp_config(advertise=relay.advertise_for("a")),
            rtp_config(advertise=relay.advertise_for("b")),
            a_media=media("opus"),
            b_media=media("opus"),
        ) as (a, b):
            call_a, call_b = await connect(a, b)
            writer = call_b.record(str(recording))
            await call_a.play_tone(1000.0, TONE_SECONDS)
            await asyncio.sleep(0.3)
            stats = call_b.media_stats()
            await call_a.hangup()
    finally:
        relay.close()
    assert stats is not None and stats.codec == "opus/48000"
    assert relay.dropped > 5
    assert stats.concealed >= relay.dropped - 3  # libopus' PLC filled the gaps
    tone_part = loud_part(read_wav(recording, writer.rate))
    assert len(tone_part) > 0.9 * TONE_SECONDS * 48000
    windows = tone_part[: len(tone_part) // 960 * 960].reshape(-1, 960).astype(np.float64)
    assert int((np.sqrt((windows**2).mean(axis=1)) < 1000).sum()) <= 2
    assert abs(peak_frequency(tone_part, 48000) - 1000.0) < 10.0
