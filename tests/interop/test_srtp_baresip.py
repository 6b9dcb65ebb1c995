"""SDES-SRTP and wideband codecs between sipwire and baresip (Debian baresip-core with
its ``srtp``, ``g722`` and ``opus`` modules), both ways, the tones found by FFT.

baresip's ``mediaenc=srtp-mand`` offers and requires RTP/SAVP; ``mediaenc=srtp``
is best effort (RTP/AVP carrying ``a=crypto``), the same trick as sipwire's
``srtp="preferred"``. The signalling is UDP on loopback: the tests opt in to
sending the keys over it (``srtp_insecure_signalling``).
"""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path
from typing import Any, Literal

import pytest

from sipwire import Call, MediaConfig, MediaStats, RtpConfig, UserAgent, read_wav, tone
from sipwire.media.wideband import available
from tests.aio.media.helpers import peak_frequency, wait_until
from tests.interop.baresip import BARESIP, Baresip

pytestmark = [
    pytest.mark.skipif(BARESIP is None, reason="baresip not installed (Debian: baresip-core)"),
    pytest.mark.timeout(90),
    pytest.mark.asyncio,
]

SrtpSetting = Literal["off", "preferred", "required"]
needs_av = pytest.mark.skipif(not available(), reason="PyAV (sipwire[codecs]) is not installed")


class ModuleBaresip(Baresip):
    """:class:`Baresip` with the srtp, g722 and opus modules loaded, a media
    encryption (``mediaenc``) and the audio codecs of its account."""

    def __init__(
        self, *args: Any, mediaenc: str | None = None, codecs: str = "PCMU,PCMA", **kwargs: Any
    ) -> None:
        self.mediaenc = mediaenc
        self.codecs = codecs
        super().__init__(*args, **kwargs)

    def account_line(self) -> str:
        line = (
            super().account_line().replace("audio_codecs=PCMU,PCMA", f"audio_codecs={self.codecs}")
        )
        return line + (f";mediaenc={self.mediaenc}" if self.mediaenc else "")

    def _write_config(self) -> None:
        super()._write_config()
        with (self.workdir / "config").open("a") as config:
            config.write("module\t\t\tsrtp.so\nmodule\t\t\tg722.so\nmodule\t\t\topus.so\n")


def _uri(ua: UserAgent, user: str) -> str:
    host, port = ua.contact_address
    return f"sip:{user}@{host}:{port}"


def _tone_file(path: Path, frequency: float, rate: int) -> Path:
    with wave.open(str(path), "wb") as out:  # longer than the call: baresip stops at its end
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(tone(frequency, 20.0, rate=rate, level=0.5).astype("<i2").tobytes())
    return path


def _media(codecs: tuple[str, ...], srtp: SrtpSetting) -> MediaConfig:
    return MediaConfig(
        codecs=(*codecs, "telephone-event"), srtp=srtp, srtp_insecure_signalling=True
    )


async def _sipwire_calls(
    tmp_path: Path, bob: Baresip, media: MediaConfig, rate: int = 8000
) -> tuple[MediaStats, Any]:
    """sipwire calls baresip (auto answer), records its sine and plays a 1 kHz tone;
    its statistics once baresip reported on our packets, and the recording."""
    recording = tmp_path / "from-baresip.wav"
    rtp = RtpConfig(rtcp_interval=1.0)
    async with UserAgent("sip:alice@127.0.0.1", rtp=rtp, media=media) as ua:
        call = await ua.call(bob.sip_uri, timeout=10)
        await asyncio.to_thread(bob.wait_event, "CALL_ESTABLISHED")
        writer = call.record(str(recording))
        await call.play_tone(1000.0, 2.0)
        await wait_until(
            lambda: (s := call.media_stats()) is not None and s.remote_packets_lost is not None,
            timeout=15,
        )
        stats = call.media_stats()
        assert stats is not None
        await call.hangup()
        await asyncio.to_thread(bob.wait_event, "CALL_CLOSED")
    return stats, read_wav(recording, writer.rate)


async def _baresip_calls(
    tmp_path: Path, media: MediaConfig, **baresip: Any
) -> tuple[MediaStats, Any]:
    """baresip calls sipwire and plays a 1 kHz file; sipwire's stats and recording."""
    recording = tmp_path / "from-baresip.wav"
    async with UserAgent("sip:alice@127.0.0.1", rtp=RtpConfig(), media=media) as ua:
        answered: asyncio.Queue[tuple[Call, Any]] = asyncio.Queue()

        @ua.on_call
        async def pick_up(call: Call) -> None:
            await call.answer()
            await answered.put((call, call.record(str(recording))))

        source = _tone_file(tmp_path / "tone.wav", 1000.0, 16000)
        with ModuleBaresip(tmp_path / "bob", user="bob", audio_file=source, **baresip) as bob:
            bob.dial(_uri(ua, "alice"))
            await asyncio.to_thread(bob.wait_event, "CALL_ESTABLISHED")
            call, writer = await asyncio.wait_for(answered.get(), 10)
            await asyncio.sleep(2.0)
            stats = call.media_stats()
            bob.hangup()
            await call.wait_ended(10)
    assert stats is not None
    return stats, read_wav(recording, writer.rate)


@pytest.mark.parametrize(("mode", "mediaenc"), [("required", "srtp-mand"), ("preferred", "srtp")])
async def test_sipwire_calls_baresip_over_srtp(
    tmp_path: Path, mode: SrtpSetting, mediaenc: str
) -> None:
    with ModuleBaresip(tmp_path / "bob", user="bob", auto_answer=True, mediaenc=mediaenc) as bob:
        stats, pcm = await _sipwire_calls(tmp_path, bob, _media(("PCMU", "PCMA"), mode))
    assert stats.srtp_suite is not None and stats.srtp is not None
    assert stats.srtp.auth_failures == 0 and stats.srtp.unprotected > 90
    # baresip's SRTCP reports: it received our SRTP tone.
    assert stats.remote_packets_lost is not None and stats.remote_packets_lost <= 1
    assert stats.packets_received > 90 and stats.loss < 0.01
    assert abs(peak_frequency(pcm) - 440.0) < 10.0


@pytest.mark.parametrize(("mode", "mediaenc"), [("required", "srtp-mand"), ("preferred", "srtp")])
async def test_baresip_calls_sipwire_over_srtp(
    tmp_path: Path, mode: SrtpSetting, mediaenc: str
) -> None:
    stats, pcm = await _baresip_calls(tmp_path, _media(("PCMU", "PCMA"), mode), mediaenc=mediaenc)
    assert stats.srtp_suite is not None and stats.srtp is not None
    assert stats.srtp.auth_failures == 0
    assert stats.packets_received > 80
    assert abs(peak_frequency(pcm) - 1000.0) < 10.0


@needs_av
@pytest.mark.parametrize(("codec", "rate"), [("G722", 16000), ("opus", 48000)])
async def test_sipwire_calls_baresip_with_wideband(tmp_path: Path, codec: str, rate: int) -> None:
    with ModuleBaresip(tmp_path / "bob", user="bob", auto_answer=True, codecs=codec) as bob:
        stats, pcm = await _sipwire_calls(tmp_path, bob, _media((codec,), "off"))
    assert stats.codec is not None and stats.codec.lower().startswith(codec.lower())
    assert stats.remote_packets_lost is not None and stats.remote_packets_lost <= 1
    assert stats.packets_received > 90
    assert abs(peak_frequency(pcm, rate) - 440.0) < 10.0


@needs_av
@pytest.mark.parametrize(("codec", "rate"), [("G722", 16000), ("opus", 48000)])
async def test_baresip_calls_sipwire_with_wideband(tmp_path: Path, codec: str, rate: int) -> None:
    stats, pcm = await _baresip_calls(tmp_path, _media((codec,), "off"), codecs=codec)
    assert stats.codec is not None and stats.codec.lower().startswith(codec.lower())
    assert stats.packets_received > 80
    assert abs(peak_frequency(pcm, rate) - 1000.0) < 10.0
