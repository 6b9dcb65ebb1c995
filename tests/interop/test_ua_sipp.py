"""``sipwire call`` and ``sipwire options`` against sipp's built-in ``uas`` scenario."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from sipwire.aio.ua import UserAgent
from sipwire.core.session import CallState
from tests.interop.sipp import SIPP, _last_stats, free_port

pytestmark = [
    pytest.mark.skipif(SIPP is None, reason="sipp not installed (Debian: sip-tester)"),
    pytest.mark.timeout(90),
]

SIPWIRE = [sys.executable, "-m", "sipwire.cli.main"]


def _sipp_uas(port: int, workdir: Path, calls: int, transport: str) -> subprocess.Popen[bytes]:
    assert SIPP is not None
    args = [
        SIPP,
        "-sn",
        "uas",
        "-i",
        "127.0.0.1",
        "-p",
        str(port),
        "-t",
        transport,
        "-m",
        str(calls),
        "-nostdin",
        "-timeout",
        "60s",
        "-trace_stat",
        "-stf",
        str(workdir / "uas_stats.csv"),
        "-fd",
        "1",
    ]
    return subprocess.Popen(
        args,
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=dict(os.environ, TERM="dumb"),
    )


def _finish(proc: subprocess.Popen[bytes]) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return proc.returncode, err.decode(errors="replace")[-2000:]


def test_sipwire_call_completes_calls_to_sipp_uas(tmp_path: Path) -> None:
    transport = "udp"
    calls = 3
    port = free_port()
    uas = _sipp_uas(port, tmp_path, calls, "u1")
    outputs = []
    try:
        for _ in range(calls):
            suffix = ""
            done = subprocess.run(
                [
                    *SIPWIRE,
                    "call",
                    f"sip:service@127.0.0.1:{port}{suffix}",
                    "--duration",
                    "0.2",
                    "--transport",
                    transport,
                    "--timeout",
                    "10",
                ],
                capture_output=True,
                timeout=60,
                check=False,
            )
            assert done.returncode == 0, done.stderr.decode()
            outputs.append(done.stdout.decode())
    finally:
        code, err = _finish(uas)
    assert all("answered in" in out and "ended by us" in out for out in outputs), outputs
    stats = _last_stats(tmp_path / "uas_stats.csv")
    assert int(stats.get("SuccessfulCall(C)", "0")) == calls, (stats, err)
    assert int(stats.get("FailedCall(C)", "0")) == 0, (stats, err)
    assert code == 0, err


def test_sipwire_call_to_nobody_fails_with_reason() -> None:
    port = free_port()  # nothing listens: ICMP port unreachable, or a timeout
    done = subprocess.run(
        [*SIPWIRE, "call", f"sip:nobody@127.0.0.1:{port}", "--timeout", "3"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    message = done.stderr.decode().strip().splitlines()[-1]
    assert message.startswith("Error: "), message
    assert any(code in message for code in ("503", "408", "487", "no answer")), message


def test_sipwire_options_prints_status_and_rtt(tmp_path: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [*SIPWIRE, "answer", "--listen", f"udp:127.0.0.1:{port}"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    try:
        assert server.stderr is not None
        assert server.stderr.readline().startswith(b"listening on")
        done = subprocess.run(
            [*SIPWIRE, "options", f"sip:127.0.0.1:{port}", "--timeout", "5"],
            capture_output=True,
            timeout=60,
            check=False,
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
        if server.stderr is not None:
            server.stderr.close()
    assert done.returncode == 0, done.stderr.decode()
    out = done.stdout.decode()
    assert out.startswith("200 OK from sip:127.0.0.1:") and " ms " in out, out
    assert "allow: INVITE" in out


def test_trace_prints_messages() -> None:
    port = free_port()
    done = subprocess.run(
        [*SIPWIRE, "options", f"sip:127.0.0.1:{port}", "--timeout", "1", "--trace"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    err = done.stderr.decode()
    assert ">>> send udp:127.0.0.1:" in err and "OPTIONS sip:127.0.0.1:" in err
    assert done.returncode == 1


@pytest.mark.asyncio
async def test_user_agent_calls_sipp_uas_over_tcp(tmp_path: Path) -> None:
    """The API over TCP; the connection stays up until sipp has finished its calls
    (sipp counts calls on a TCP connection closed under it as lost)."""
    calls = 3
    port = free_port(socket.SOCK_STREAM)
    uas = _sipp_uas(port, tmp_path, calls, "t1")
    try:
        await asyncio.sleep(0.3)
        async with UserAgent("sip:alice@127.0.0.1", listen=["tcp:127.0.0.1:0"]) as ua:
            for _ in range(calls):
                call = await ua.call(f"sip:service@127.0.0.1:{port};transport=tcp", timeout=10)
                assert call.state is CallState.CONFIRMED
                assert call.remote_sdp is not None and b"m=audio" in call.remote_sdp
                await call.hangup()
                assert call.ended and call.end_status == 200
            for _ in range(100):
                if uas.poll() is not None:
                    break
                await asyncio.sleep(0.1)
    finally:
        code, err = _finish(uas)
    stats = _last_stats(tmp_path / "uas_stats.csv")
    assert int(stats.get("SuccessfulCall(C)", "0")) == calls, (stats, err)
    assert code == 0, err
