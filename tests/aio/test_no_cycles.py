"""A call leaves no reference cycle behind: reference counting frees all of it.

``sipwire answer`` collects garbage on a clock rather than by allocation count
(``sipwire.aio.gcpolicy``); that is only cheap while calls make no cycles.
"""

from __future__ import annotations

import gc

import pytest

from sipwire.aio.ua import UserAgent
from sipwire.message import Response, parse_message
from sipwire.transaction.events import SendResponse
from sipwire.transport.address import Source

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

SDP = (
    "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def _request(method: str, n: int, step: int, tag: str = "", body: str = "") -> bytes:
    to_tag = f";tag={tag}" if tag else ""
    cseq = 2 if method == "BYE" else 1
    lines = [
        f"{method} sip:service@127.0.0.1:5090 SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-{n}-{step}",
        f"From: sipp <sip:sipp@127.0.0.1:5061>;tag={n}a",
        f"To: <sip:service@127.0.0.1:5090>{to_tag}",
        f"Call-ID: cycle-{n}",
        f"CSeq: {cseq} {method}",
        "Contact: <sip:sipp@127.0.0.1:5061>",
        "Max-Forwards: 70",
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


async def test_calls_through_the_whole_stack_leave_no_cycles() -> None:
    async with UserAgent("sip:service@127.0.0.1", listen=["udp:127.0.0.1:0"]) as ua:
        ua.auto_answer()
        endpoint = ua.endpoint
        assert endpoint is not None
        source = Source("udp", "127.0.0.1", 9, "127.0.0.1", 5090)
        tags: dict[str, str] = {}
        send = endpoint._send_response

        def capture(event: SendResponse) -> None:
            response: Response = event.response
            if response.status == 200 and response.cseq.method == "INVITE":
                tags[response.call_id] = response.to.tag or ""
            send(event)

        endpoint._send_response = capture  # type: ignore[method-assign]
        enabled = gc.isenabled()
        gc.collect()
        gc.disable()
        try:
            for n in range(50):
                endpoint._on_message(parse_message(_request("INVITE", n, 1, body=SDP)), source)
                tag = tags[f"cycle-{n}"]
                endpoint._on_message(parse_message(_request("ACK", n, 2, tag)), source)
                endpoint._on_message(parse_message(_request("BYE", n, 3, tag)), source)
            assert ua.calls_completed == 50
            gc.set_debug(gc.DEBUG_SAVEALL)
            gc.collect()
            ours = [o for o in gc.garbage if type(o).__module__.startswith("sipwire")]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            if enabled:
                gc.enable()
        assert ours == [], sorted({type(o).__qualname__ for o in ours})


async def test_timed_collection_freezes_survivors_and_a_full_collection_frees_old_cycles() -> None:
    import asyncio

    from sipwire.aio.gcpolicy import TimedCollection

    assert gc.isenabled()
    collector = TimedCollection(young=0.01, full=3600)
    collector.start()
    try:
        assert not gc.isenabled()
        cycle: list[object] = []
        cycle.append(cycle)
        await asyncio.sleep(0.05)  # survives young collections: frozen
        assert gc.get_freeze_count() > 0
        del cycle  # now garbage, but frozen: young collections never see it
        await asyncio.sleep(0.05)
        assert collector.collect_all() >= 1
    finally:
        collector.stop()
    assert gc.isenabled() and gc.get_freeze_count() == 0
    young, full = collector.collections
    assert young >= 5 and full == 1
