"""``sipwire call`` and ``sipwire options`` against sipp's built-in ``uas`` scenario."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from sipwire.aio.ua import UserAgent
from sipwire.core.session import CallState
from tests.interop.sipp import SIPP, free_port
from tests.interop.sipp_peer import SippServer

pytestmark = [
    pytest.mark.skipif(SIPP is None, reason="sipp not installed (Debian: sip-tester)"),
    pytest.mark.timeout(90),
]

SIPWIRE = [sys.executable, "-m", "sipwire.cli.main"]


def test_sipwire_call_completes_calls_to_sipp_uas(tmp_path: Path) -> None:
    calls = 3
    outputs = []
    with SippServer(tmp_path, "uas", calls=calls, timeout=60) as uas:
        for _ in range(calls):
            done = subprocess.run(
                [*SIPWIRE, "call", uas.uri(), "--duration", "0.2", "--timeout", "10"],
                capture_output=True,
                timeout=60,
                check=False,
            )
            assert done.returncode == 0, done.stderr.decode()
            outputs.append(done.stdout.decode())
        result = uas.wait()
    assert all("answered in" in out and "ended by us" in out for out in outputs), outputs
    assert (result.successful, result.failed) == (calls, 0), (result.stats, result.stderr)
    assert result.returncode == 0, result.stderr


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
    with SippServer(tmp_path, "uas", transport="t1", calls=calls, timeout=60) as uas:
        async with UserAgent("sip:alice@127.0.0.1", listen=["tcp:127.0.0.1:0"]) as ua:
            for _ in range(calls):
                call = await ua.call(uas.uri() + ";transport=tcp", timeout=10)
                assert call.state is CallState.CONFIRMED
                assert call.remote_sdp is not None and b"m=audio" in call.remote_sdp
                await call.hangup()
                assert call.ended and call.end_status == 200
            result = await asyncio.to_thread(uas.wait)
    assert (result.successful, result.failed) == (calls, 0), (result.stats, result.stderr)
    assert result.returncode == 0, result.stderr
