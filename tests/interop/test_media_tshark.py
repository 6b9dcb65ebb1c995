"""tshark decodes the RTP, RTCP and RFC 4733 events of a sipwire call (RTCP on its
own port, and multiplexed) without a malformed packet."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from sipwire import MediaConfig, RtpConfig, UserAgent
from tests.aio.media.helpers import connect

TSHARK = shutil.which("tshark")
pytestmark = [
    pytest.mark.skipif(TSHARK is None, reason="needs tshark (Debian: tshark)"),
    pytest.mark.timeout(90),
    pytest.mark.asyncio,
]

LOW = 29200  # the agents' RTP ports: 29200-29219 and 29220-29239


@pytest.mark.parametrize("mux", [False, True])
async def test_rtp_and_rtcp_of_a_call_decode_cleanly(tmp_path: Path, mux: bool) -> None:
    assert TSHARK is not None
    capture = tmp_path / "media.pcapng"
    dumper = subprocess.Popen(
        [TSHARK, "-i", "lo", "-f", f"udp portrange {LOW}-{LOW + 39}", "-w", str(capture), "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        await asyncio.sleep(1.5)  # tshark needs a moment before it captures
        if dumper.poll() is not None:
            err = dumper.stderr.read().decode(errors="replace") if dumper.stderr else ""
            pytest.skip(f"tshark cannot capture on lo here: {err.strip()[:200]}")
        rtp = RtpConfig(rtcp_interval=0.5, rtcp_mux=mux)
        a = UserAgent(
            "sip:a@127.0.0.1", rtp=rtp, media=MediaConfig(rtp_port_min=LOW, rtp_port_max=LOW + 19)
        )
        b = UserAgent(
            "sip:b@127.0.0.1",
            rtp=rtp,
            media=MediaConfig(rtp_port_min=LOW + 20, rtp_port_max=LOW + 39),
        )
        async with a, b:
            call_a, call_b = await connect(a, b)
            await asyncio.gather(call_a.play_tone(1000.0, 1.5), call_b.play_tone(500.0, 1.5))
            await call_a.send_dtmf("5#", duration=60)
            await asyncio.sleep(0.3)
            media_a, media_b = call_a.media, call_b.media
            assert media_a is not None and media_b is not None
            ports = (media_a.sockets.port, media_b.sockets.port)
            await call_a.hangup()
        await asyncio.sleep(0.5)
    finally:
        dumper.send_signal(signal.SIGINT)
        dumper.wait(timeout=20)
        if dumper.stderr is not None:
            dumper.stderr.close()
    decode_as = []
    for port in ports:
        decode_as += ["-d", f"udp.port=={port},rtp"]
        if not mux:
            decode_as += ["-d", f"udp.port=={port + 1},rtcp"]
    decoded = subprocess.run(
        [
            TSHARK, "-r", str(capture), *decode_as,
            "-d", "rtp.pt==101,rtpevent",
            "-T", "fields", "-e", "rtp.seq", "-e", "rtcp.pt", "-e", "rtpevent.event_id",
            "-e", "_ws.malformed", "-e", "_ws.expert.severity",
        ],
        capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    rows = [line.split("\t") for line in decoded.stdout.decode().splitlines() if line.strip()]
    rtp_rows = [r for r in rows if r[0]]
    rtcp_types = {t for r in rows if len(r) > 1 and r[1] for t in r[1].split(",")}
    events = {r[2] for r in rows if len(r) > 2 and r[2]}
    assert len(rtp_rows) > 150
    assert {"200", "202"} <= rtcp_types  # SR and SDES
    assert {"5", "11"} <= events  # 5 and #
    assert [r for r in rows if len(r) > 3 and r[3]] == []
    assert [r for r in rows if len(r) > 4 and r[4] and "error" in r[4].lower()] == []
