"""Audio between two sipwire agents on loopback: a tone through, loss and
reordering through a relay, RTCP statistics on both sides, NAT latching."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import numpy as np
import pytest

from sipwire import read_wav, tone
from tests.aio.media.helpers import (
    LossyRelay,
    agents,
    connect,
    peak_frequency,
    rtp_config,
    wait_until,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

TONE_SECONDS = 3.0
TONE_PACKETS = int(TONE_SECONDS / 0.02)


def _write_wav(path: Path, rate: int, channels: int, seconds: float, frequency: float) -> None:
    """A 16-bit WAV of a sine at ``rate`` Hz with ``channels`` channels."""
    mono = tone(frequency, seconds, rate=rate, level=0.6)
    frames = np.repeat(mono, channels) if channels > 1 else mono
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames.astype("<i2").tobytes())


async def test_a_tone_played_from_a_wav_file_is_recorded_with_its_frequency(
    tmp_path: Path,
) -> None:
    source = tmp_path / "tone-44k-stereo.wav"
    _write_wav(source, 44100, 2, TONE_SECONDS, 1000.0)
    recording = tmp_path / "b.wav"
    async with agents() as (a, b):
        call_a, call_b = await connect(a, b)
        call_b.record(str(recording))
        await call_a.play(str(source))
        # The tail of the tone arrives, and a report from each side about the other.
        await asyncio.sleep(0.2)
        await wait_until(
            lambda: (s := call_a.media_stats()) is not None and s.remote_packets_sent is not None
        )
        await wait_until(
            lambda: (s := call_b.media_stats()) is not None and s.remote_packets_lost is not None
        )
        stats_a = call_a.media_stats()
        stats_b = call_b.media_stats()
        assert stats_a is not None and stats_b is not None
        await call_a.hangup()
    assert stats_a.codec == "PCMU/8000"
    # B got what A sent (a few packets may still be in flight when the two are read).
    assert stats_b.packets_received >= 0.99 * stats_a.packets_sent - 3
    assert stats_b.packets_received >= 0.99 * TONE_PACKETS
    assert stats_b.packets_lost == 0
    # The RTCP each side received agrees with what the other counted.
    assert stats_a.remote_packets_lost == 0
    assert stats_b.remote_packets_lost == 0
    assert stats_b.remote_packets_sent is not None
    assert 0 < stats_b.remote_packets_sent <= stats_a.packets_sent
    assert stats_a.remote_packets_sent is not None
    assert 0 < stats_a.remote_packets_sent <= stats_b.packets_sent
    assert stats_a.rtt is not None and 0 <= stats_a.rtt < 0.5
    assert stats_b.rtt is not None and 0 <= stats_b.rtt < 0.5
    pcm = read_wav(recording)
    assert len(pcm) >= TONE_SECONDS * 8000 * 0.95
    loud = pcm[np.abs(pcm) > 1000]
    assert len(loud) > 0.5 * TONE_SECONDS * 8000
    assert abs(peak_frequency(pcm) - 1000.0) < 10.0


async def test_loss_and_reordering_are_reported_and_concealed(tmp_path: Path) -> None:
    relay = LossyRelay(loss=0.1, reorder=0.1)
    recording = tmp_path / "b.wav"
    relay.start()
    try:
        async with agents(
            rtp_config(advertise=relay.advertise_for("a")),
            rtp_config(advertise=relay.advertise_for("b")),
        ) as (a, b):
            call_a, call_b = await connect(a, b)
            call_b.record(str(recording))
            await call_a.play_tone(1000.0, TONE_SECONDS)
            await asyncio.sleep(0.2)
            await wait_until(
                lambda: (s := call_a.media_stats()) is not None and (s.remote_packets_lost or 0) > 0
            )
            stats_b = call_b.media_stats()
            stats_a = call_a.media_stats()
            assert stats_a is not None and stats_b is not None
            await call_a.hangup()
    finally:
        relay.close()
    truth = relay.dropped / relay.forwarded
    assert 0.05 < truth < 0.15
    assert relay.reordered > 0
    assert abs(stats_b.loss - truth) <= 0.01, (stats_b, relay)
    # A hears of it through B's receiver reports.
    assert stats_a.remote_packets_lost is not None
    assert 0 < stats_a.remote_packets_lost <= stats_b.packets_lost
    assert stats_b.concealed > 0
    pcm = read_wav(recording)
    assert len(pcm) >= TONE_SECONDS * 8000 * 0.9
    assert abs(peak_frequency(pcm) - 1000.0) < 10.0


async def test_latching_sends_to_where_the_peers_packets_come_from(tmp_path: Path) -> None:
    # B's SDP names a port where a socket is bound but nobody reads (a NAT's inside address).
    import socket

    dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dead.bind(("127.0.0.1", 0))
    dead_address = dead.getsockname()
    try:
        async with agents(b_rtp=rtp_config(advertise=lambda host, port: dead_address)) as (a, b):
            call_a, call_b = await connect(a, b)
            media_b = call_b.media
            assert media_b is not None
            real_b = ("127.0.0.1", media_b.sockets.port)
            call_a.record(str(tmp_path / "a.wav"))
            call_b.record(str(tmp_path / "b.wav"))
            await asyncio.gather(
                call_a.play_tone(1000.0, 1.0),
                call_b.play_tone(700.0, 1.0),
            )
            await asyncio.sleep(0.2)
            stats_a = call_a.media_stats()
            stats_b = call_b.media_stats()
            assert stats_a is not None and stats_b is not None
            await call_a.hangup()
    finally:
        dead.close()
    assert stats_a.remote_address == real_b
    assert stats_a.packets_received > 40
    assert stats_b.packets_received > 40
    assert abs(peak_frequency(read_wav(tmp_path / "a.wav")) - 700.0) < 10.0
    assert abs(peak_frequency(read_wav(tmp_path / "b.wav")) - 1000.0) < 10.0
