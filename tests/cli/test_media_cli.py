"""``sipwire call`` and ``sipwire answer`` with audio: play, record (one file per
call with a pattern), echo, DTMF lines and the media statistics line."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import numpy as np
import pytest

from sipwire import Call, MediaConfig, RtpConfig, UserAgent, read_wav, tone
from sipwire.errors import RequestFailed
from tests.aio.media.helpers import band_share, peak_frequency
from tests.cli.cli_helpers import SIPWIRE, answerer, sipwire, wait_for
from tests.interop.sipp import free_port

pytestmark = pytest.mark.timeout(90)


def _tone_file(path: Path, frequency: float, seconds: float, rate: int = 16000) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(tone(frequency, seconds, rate=rate, level=0.6).astype("<i2").tobytes())
    return path


def test_call_plays_to_an_echoing_answer_and_both_record(tmp_path: Path) -> None:
    port = free_port()
    prompt = _tone_file(tmp_path / "tone.wav", 1000.0, 1.5)
    pattern = str(tmp_path / "in-{n}.wav")
    with answerer(
        tmp_path / "answer", f"udp:127.0.0.1:{port}", extra=("--echo", "--record", pattern)
    ) as server:
        back = tmp_path / "back.wav"
        result = sipwire(
            "call", f"sip:echo@127.0.0.1:{port}", "--play", str(prompt),
            "--record", str(back), "--dtmf", "12#", "--timeout", "5",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        out = wait_for(server.stdout, "media PCMU/8000")
        second = sipwire(
            "call", f"sip:echo@127.0.0.1:{port}", "--media", "--duration", "0.3",
            "--timeout", "5",
        )  # fmt: skip
        assert second.returncode == 0, second.stderr
        wait_for(server.stdout, "(call ", timeout=10)
        assert server.stop() == 0
        out = server.stdout.read_text()
    assert [line for line in out.splitlines() if line.startswith("DTMF")] == [
        "DTMF 1",
        "DTMF 2",
        "DTMF #",
    ]
    assert len([line for line in out.splitlines() if line.startswith("media PCMU/8000")]) == 2
    lines = result.stdout.strip().splitlines()
    assert lines[-1].startswith("call to sip:echo@")
    assert lines[-2].startswith("media PCMU/8000: sent ")
    # The answer recorded the caller's tone; the caller recorded its echo.
    recorded = read_wav(tmp_path / "in-1.wav")
    assert abs(peak_frequency(recorded) - 1000.0) < 10.0
    assert (tmp_path / "in-2.wav").exists()
    echoed = read_wav(back)
    assert band_share(echoed, 950.0, 1050.0) > 0.8


@pytest.mark.asyncio
async def test_answer_plays_its_prompt_and_prints_info_digits(tmp_path: Path) -> None:
    port = free_port()
    prompt = _tone_file(tmp_path / "prompt.wav", 500.0, 1.0, rate=44100)
    with answerer(
        tmp_path / "answer", f"udp:127.0.0.1:{port}", extra=("--play", str(prompt))
    ) as server:
        # A caller without telephone-event: the digits go as INFO.
        caller = UserAgent(
            "sip:caller@127.0.0.1",
            rtp=RtpConfig(),
            media=MediaConfig(codecs=("PCMU",)),
        )
        async with caller:
            call = await caller.call(f"sip:x@127.0.0.1:{port}", timeout=5)
            call.record(str(tmp_path / "heard.wav"))
            await call.send_dtmf("7*")
            await asyncio.sleep(1.3)
            await call.hangup()
        await asyncio.to_thread(wait_for, server.stdout, "media PCMU/8000")
        out = server.stdout.read_text()
    assert [line for line in out.splitlines() if line.startswith("DTMF")] == ["DTMF 7", "DTMF *"]
    heard = read_wav(tmp_path / "heard.wav")
    assert np.abs(heard).max() > 5000
    assert abs(peak_frequency(heard) - 500.0) < 10.0


def test_record_takes_only_the_two_fields() -> None:
    result = sipwire("answer", "--record", "x-{user}.wav")
    assert result.returncode == 2
    assert "--record" in result.stderr


@pytest.mark.asyncio
async def test_call_prints_the_digits_it_receives_and_its_statistics() -> None:
    async with UserAgent("sip:ivr@127.0.0.1", rtp=RtpConfig()) as ivr:

        @ivr.on_call
        async def pick_up(call: Call) -> None:
            await call.answer()
            await asyncio.sleep(0.2)
            await call.send_dtmf("4*", duration=60)

        host, port = ivr.contact_address
        proc = await asyncio.create_subprocess_exec(
            *SIPWIRE, "call", f"sip:ivr@{host}:{port}", "--media", "--duration", "1.5",
            "--timeout", "5",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 45)
    assert proc.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert [line for line in lines if line.startswith("DTMF")] == ["DTMF 4", "DTMF *"]
    assert lines[-2].startswith("media PCMU/8000: sent ")
    assert lines[-1].startswith("call to sip:ivr@")


@pytest.mark.asyncio
async def test_answer_codecs_and_srtp_options_reach_the_negotiation(tmp_path: Path) -> None:
    port = free_port()
    extra: tuple[str, ...] = ("--echo", "--codecs", "PCMA,telephone-event")
    extra += ("--srtp", "required", "--srtp-insecure-signalling")
    with answerer(tmp_path / "answer", f"udp:127.0.0.1:{port}", extra=extra) as server:
        caller = UserAgent(
            "sip:caller@127.0.0.1",
            rtp=RtpConfig(),
            media=MediaConfig(
                codecs=("PCMU", "PCMA"),
                srtp="required",
                srtp_suites=("AES_CM_128_HMAC_SHA1_80",),
                srtp_insecure_signalling=True,
            ),
        )
        async with caller:
            call = await caller.call(f"sip:echo@127.0.0.1:{port}", timeout=5)
            await call.play_tone(1000.0, 0.6)
            await asyncio.sleep(0.3)
            stats = call.media_stats()
            await call.hangup()
        await asyncio.to_thread(wait_for, server.stdout, "media PCMA/8000")
    assert stats is not None
    assert stats.codec == "PCMA/8000"  # the answer's --codecs, not the caller's first choice
    assert stats.srtp_suite == "AES_CM_128_HMAC_SHA1_80"
    assert stats.srtp is not None and stats.srtp.unprotected > 0
    assert stats.srtp.auth_failures == 0


@pytest.mark.asyncio
async def test_answer_srtp_keys_stay_off_plain_udp_without_the_opt_in(tmp_path: Path) -> None:
    port = free_port()
    extra = ("--media", "--srtp", "required")
    with answerer(tmp_path / "answer", f"udp:127.0.0.1:{port}", extra=extra):
        caller = UserAgent(
            "sip:caller@127.0.0.1",
            rtp=RtpConfig(),
            media=MediaConfig(srtp="required", srtp_insecure_signalling=True),
        )
        async with caller:
            with pytest.raises(RequestFailed) as refused:
                await caller.call(f"sip:echo@127.0.0.1:{port}", timeout=5)
    assert refused.value.status == 488


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (("--codecs", "PCMU,speex"), "unknown codec 'speex'"),
        (("--codecs", "telephone-event"), "carries no audio"),
        (("--codecs", ","), "no codec named"),
        (("--srtp", "sometimes"), "--srtp"),
        (("--srtp-insecure-signalling",), "needs --srtp"),
    ],
)
def test_answer_refuses_bad_codec_and_srtp_options(args: tuple[str, ...], complaint: str) -> None:
    result = sipwire("answer", "--echo", *args)
    assert result.returncode == 2
    assert complaint in result.stderr
