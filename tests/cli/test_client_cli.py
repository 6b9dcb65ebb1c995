"""The client commands against an in-process UserAgent on loopback."""

from __future__ import annotations

import asyncio
import sys

import pytest

from sipwire import Call, UserAgent

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

SIPWIRE = [sys.executable, "-m", "sipwire.cli.main"]


async def _run(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *SIPWIRE, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 45)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_call_with_headers_and_dtmf() -> None:
    async with UserAgent("sip:bob@127.0.0.1", listen=["udp:127.0.0.1:0"]) as bob:
        calls: list[Call] = []

        @bob.on_call
        async def pick_up(call: Call) -> None:
            calls.append(call)
            await call.answer()

        host, port = bob.contact_address
        code, out, err = await _run(
            "call", f"sip:bob@{host}:{port}", "--header", "X-Campaign: 42",
            "--dtmf", "1#", "--duration", "0.2", "--timeout", "5",
        )  # fmt: skip
        assert code == 0, err
        assert "answered in" in out
        (call,) = calls
        assert call.request.headers.get("X-Campaign") == "42"
        await call.wait_ended(5)
        signals = [r.body for r in call.info if r.method == "INFO"]
        assert signals == [b"Signal=1\r\nDuration=160\r\n", b"Signal=#\r\nDuration=160\r\n"]


async def test_message_and_refused_call() -> None:
    async with UserAgent("sip:bob@127.0.0.1", listen=["udp:127.0.0.1:0"]) as bob:

        @bob.on_call
        async def busy(call: Call) -> None:
            await call.reject(486)

        host, port = bob.contact_address
        inbox = bob.messages()
        code, out, _ = await _run("message", f"bob@{host}:{port}", "hi from the shell")
        assert (code, out.strip()) == (0, "200 OK")
        request = await asyncio.wait_for(inbox.__anext__(), 5)
        assert request.body == b"hi from the shell"
        code, out, err = await _run("call", f"sip:bob@{host}:{port}", "--timeout", "5")
        assert code == 1 and out == ""
        assert err.strip().splitlines()[-1] == "Error: 486 Busy Here"


async def test_bad_header_option_is_a_usage_error() -> None:
    code, _, err = await _run("call", "sip:bob@127.0.0.1:9", "--header", "no-colon")
    assert code == 2 and "expected NAME: VALUE" in err
