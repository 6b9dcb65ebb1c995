"""Audio between sipwire and baresip (Debian baresip-core, no sound card): baresip's
``ausine`` tone and ``aufile`` file recorded by sipwire and found by FFT, and
sipwire's tone received by baresip, as its RTCP receiver reports say and as the FFT
finds in what baresip decoded (its ``sndfile`` dump)."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import numpy as np
import pytest

from sipwire import Call, RtpConfig, UserAgent, read_wav, tone
from tests.aio.media.helpers import peak_frequency, wait_until
from tests.interop.baresip import BARESIP, Baresip

pytestmark = [
    pytest.mark.skipif(BARESIP is None, reason="baresip not installed (Debian: baresip-core)"),
    pytest.mark.timeout(90),
    pytest.mark.asyncio,
]


def _uri(ua: UserAgent, user: str) -> str:
    host, port = ua.contact_address
    return f"sip:{user}@{host}:{port}"


async def test_sipwire_records_baresips_sine_and_baresip_receives_sipwires_tone(
    tmp_path: Path,
) -> None:
    recording = tmp_path / "from-baresip.wav"
    with Baresip(tmp_path / "bob", user="bob", auto_answer=True) as bob:
        async with UserAgent("sip:alice@127.0.0.1", rtp=RtpConfig(rtcp_interval=1.0)) as ua:
            call = await ua.call(bob.sip_uri, timeout=10)
            await asyncio.to_thread(bob.wait_event, "CALL_ESTABLISHED")
            call.record(str(recording))
            await call.play_tone(1000.0, 2.0)
            # baresip reports on our packets in its RTCP (on RTP port + 1: no rtcp-mux).
            await wait_until(
                lambda: (s := call.media_stats()) is not None and s.remote_packets_lost is not None,
                timeout=15,
            )
            stats = call.media_stats()
            assert stats is not None
            await call.hangup()
            await asyncio.to_thread(bob.wait_event, "CALL_CLOSED")
    assert stats.codec in ("PCMU/8000", "PCMA/8000")
    assert stats.remote_packets_lost is not None and stats.remote_packets_lost <= 1
    assert stats.packets_received > 90 and stats.loss < 0.01
    assert stats.rtcp_received > 0
    pcm = read_wav(recording)
    assert len(pcm) > 8000
    assert abs(peak_frequency(pcm) - 440.0) < 10.0


async def test_baresip_plays_a_file_to_sipwire_which_records_it(tmp_path: Path) -> None:
    source = tmp_path / "tone.wav"
    with wave.open(str(source), "wb") as out:  # longer than the call: baresip stops at its end
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(tone(1000.0, 20.0, level=0.5).astype("<i2").tobytes())
    recording = tmp_path / "from-baresip.wav"
    async with UserAgent("sip:alice@127.0.0.1", rtp=RtpConfig()) as ua:
        answered: asyncio.Queue[Call] = asyncio.Queue()

        @ua.on_call
        async def pick_up(call: Call) -> None:
            call.record(str(recording))
            await call.answer()
            await answered.put(call)

        with Baresip(tmp_path / "bob", user="bob", audio_file=source) as bob:
            bob.dial(_uri(ua, "alice"))
            await asyncio.to_thread(bob.wait_event, "CALL_ESTABLISHED")
            call = await asyncio.wait_for(answered.get(), 10)
            await asyncio.sleep(2.0)
            stats = call.media_stats()
            bob.hangup()
            await call.wait_ended(10)
    assert stats is not None and stats.packets_received > 80
    pcm = read_wav(recording)
    assert len(pcm) > 8000
    assert abs(peak_frequency(pcm) - 1000.0) < 10.0


async def test_baresip_records_sipwires_tone(tmp_path: Path) -> None:
    """sipwire plays 1 kHz; baresip's ``sndfile`` module writes what it decoded to a
    WAV file, where the FFT must find the tone."""
    dumps = tmp_path / "dumps"
    with Baresip(tmp_path / "bob", user="bob", auto_answer=True, dump_dir=dumps) as bob:
        async with UserAgent("sip:alice@127.0.0.1") as ua:
            call = await ua.call(bob.sip_uri, timeout=10)
            await asyncio.to_thread(bob.wait_event, "CALL_ESTABLISHED")
            await call.play_tone(1000.0, 2.0)
            await call.hangup()
            await asyncio.to_thread(bob.wait_event, "CALL_CLOSED")
    decoded = sorted(dumps.glob("*dec*.wav"))
    assert decoded, sorted(p.name for p in dumps.iterdir())
    with wave.open(str(decoded[0]), "rb") as wav:
        rate, channels = wav.getframerate(), wav.getnchannels()
        frames = wav.readframes(wav.getnframes())
    samples = np.frombuffer(frames, dtype="<i2").reshape(-1, channels)[:, 0]
    assert samples.size > rate  # more than a second of it
    loud = samples[np.abs(samples) > 1000]
    assert loud.size > rate // 2, "baresip decoded silence"
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(samples.size)))
    peak = float(np.fft.rfftfreq(samples.size, 1 / rate)[int(np.argmax(spectrum))])
    assert abs(peak - 1000.0) < 10.0, peak
