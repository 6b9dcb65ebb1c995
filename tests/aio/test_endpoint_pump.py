"""The endpoint's event pump is a loop: bursts of messages or timers never recurse.

Each test drives a real ``UserAgent`` (its ``Endpoint`` and core) without
sleeping: messages go straight into the endpoint as if a transport had
parsed them, and timers are fired by calling the endpoint with a later time.
"""

from __future__ import annotations

import logging
import sys

import pytest

from sipwire.aio.ua import UserAgent
from sipwire.message import parse_message
from sipwire.transport.address import Source

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

BURST = 2 * sys.getrecursionlimit()


def _options(n: int) -> bytes:
    return (
        f"OPTIONS sip:ua@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.9:5999;branch=z9hG4bK-burst-{n}\r\n"
        f"From: <sip:peer@127.0.0.9>;tag=f{n}\r\n"
        f"To: <sip:ua@127.0.0.1>\r\n"
        f"Call-ID: burst-{n}\r\n"
        f"CSeq: 1 OPTIONS\r\n"
        f"Max-Forwards: 70\r\n"
        f"Content-Length: 0\r\n\r\n"
    ).encode()


async def test_a_burst_of_expiring_timers_does_not_recurse(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with UserAgent("sip:ua@127.0.0.1", listen=["udp:127.0.0.1:0"]) as ua:
        endpoint = ua.endpoint
        assert endpoint is not None
        source = Source("udp", "127.0.0.9", 5999, "127.0.0.1", 5060)
        for n in range(BURST):
            endpoint._on_message(parse_message(_options(n)), source)
        assert len(endpoint.transactions) == BURST  # each waits for Timer J (64*T1)
        caplog.set_level(logging.ERROR)
        # Every Timer J expires at once: BURST TransactionTerminated events in one pump.
        now = endpoint.now() + 64 * endpoint.transactions.config.t1 + 1
        endpoint.transactions.handle_timer(now)
        endpoint._pump(now)
        assert len(endpoint.transactions) == 0
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_closing_with_many_calls_open_hangs_up_every_one() -> None:
    """``close()`` with many calls up: every call gets its BYE, nothing raises."""
    calls = 300
    async with (
        # Signalling only: 300 calls' worth of RTP would overload one process.
        UserAgent("sip:alice@127.0.0.1", listen=["udp:127.0.0.1:0"], rtp=False) as alice,
        UserAgent("sip:bob@127.0.0.1", listen=["udp:127.0.0.1:0"], rtp=False) as bob,
    ):
        bob.auto_answer()
        host, port = bob.contact_address
        for _ in range(calls):
            await alice.call(f"sip:bob@{host}:{port}", timeout=10, wait=False)
        for _ in range(200):
            if len([c for c in alice.calls if c.state.value == "confirmed"]) == calls:
                break
            await _tick()
        assert len(alice.calls) == calls
        await alice.close()  # a BYE for each, in one burst of events
        for _ in range(200):
            if bob.calls_completed == calls:
                break
            await _tick()
        assert bob.calls_completed == calls


async def _tick() -> None:
    import asyncio

    await asyncio.sleep(0.02)


async def test_a_failing_timer_callback_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with UserAgent("sip:ua@127.0.0.1", listen=["udp:127.0.0.1:0"]) as ua:
        endpoint, core = ua.endpoint, ua.core
        assert endpoint is not None and core is not None
        ran: list[str] = []

        def broken(now: float) -> None:
            raise RuntimeError("a bug in one timer")

        now = endpoint.now()
        core.timers.schedule(now, broken)
        core.timers.schedule(now, lambda _now: ran.append("second"))
        core.timers.schedule(now + 3600, lambda _now: ran.append("later"))
        endpoint._on_timer()
        assert "a bug in one timer" in caplog.text
        endpoint._on_timer()  # the loop would call it again at once: the rest runs
        assert ran == ["second"]
        assert endpoint._timer is not None  # re-armed for the one an hour away


async def test_a_response_too_large_to_send_becomes_a_bare_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import asyncio
    import socket

    from sipwire.aio.transport_base import TransportConfig
    from sipwire.message import Request
    from sipwire.transaction.events import SendResponse

    config = TransportConfig(max_message_size=2000)
    async with UserAgent("sip:ua@127.0.0.1", listen=["udp:127.0.0.1:0"], transport=config) as ua:
        endpoint = ua.endpoint
        assert endpoint is not None
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        peer.bind(("127.0.0.1", 0))
        peer.setblocking(False)
        port = peer.getsockname()[1]
        request = parse_message(
            _options(1).replace(b"127.0.0.9:5999", f"127.0.0.1:{port}".encode())
        )
        assert isinstance(request, Request)
        big = request.reply(200, body=b"x" * 3000, to_tag="t")
        source = Source("udp", "127.0.0.1", port, "127.0.0.1", 5060)
        endpoint._send_response(SendResponse(big, source, None))
        loop = asyncio.get_running_loop()
        data = await asyncio.wait_for(loop.sock_recv(peer, 65536), 2)
        peer.close()
        assert data.startswith(b"SIP/2.0 500 ") and b"too large" in data
        assert len(data) < 2000
        assert "exceeds 2000 bytes" in caplog.text
