"""sipwire's UserAgent and baresip (Debian baresip-core), calling and messaging both ways.

baresip runs headless with its own config directory (see tests/interop/baresip.py);
its blocking waits run in a thread so that the user agent's loop keeps going.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sipwire import Call, CallState, UserAgent
from tests.interop.baresip import BARESIP, Baresip

pytestmark = [
    pytest.mark.skipif(BARESIP is None, reason="baresip not installed (Debian: baresip-core)"),
    pytest.mark.timeout(90),
    pytest.mark.asyncio,
]


def _uri(ua: UserAgent, user: str, transport: str = "udp") -> str:
    host, port = ua.contact_address
    return f"sip:{user}@{host}:{port}" + (";transport=tcp" if transport == "tcp" else "")


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_sipwire_calls_baresip(transport: str, tmp_path: Path) -> None:
    listen = [f"{transport}:127.0.0.1:0"]
    with Baresip(tmp_path / "bob", user="bob", auto_answer=True) as bob:
        async with UserAgent("sip:alice@127.0.0.1", listen=listen) as ua:
            call = await ua.call(bob.direct_uri(transport), timeout=10)  # type: ignore[arg-type]
            assert call.state is CallState.CONFIRMED
            established = await asyncio.to_thread(bob.wait_event, "CALL_ESTABLISHED")
            assert established.peeruri.startswith("sip:alice@127.0.0.1")
            # baresip answered our offer with a G.711 codec
            assert call.remote_sdp is not None and b"RTP/AVP" in call.remote_sdp
            media = call.session.media
            streams = getattr(media, "negotiated", [])
            assert streams and streams[0].codec.name.upper() in ("PCMU", "PCMA")
            # hold and resume with re-INVITEs
            assert (await call.hold()).status == 200
            assert call.remote_sdp is not None and b"a=recvonly" in call.remote_sdp
            assert (await call.resume()).status == 200
            assert b"a=recvonly" not in call.remote_sdp
            await call.hangup()
            await asyncio.to_thread(bob.wait_event, "CALL_CLOSED")
            assert call.ended


async def test_baresip_calls_sipwire_and_hangs_up(tmp_path: Path) -> None:
    async with UserAgent("sip:alice@127.0.0.1", listen=["udp:127.0.0.1:0"]) as ua:
        answered: asyncio.Queue[Call] = asyncio.Queue()

        @ua.on_call
        async def pick_up(call: Call) -> None:
            await call.ring()
            await call.answer()
            await answered.put(call)

        with Baresip(tmp_path / "bob", user="bob") as bob:
            bob.dial(_uri(ua, "alice"))
            await asyncio.to_thread(bob.wait_event, "CALL_ESTABLISHED")
            call = await asyncio.wait_for(answered.get(), 10)
            assert call.direction == "in" and call.remote.uri.user == "bob"  # type: ignore[union-attr]
            assert call.remote_sdp is not None and b"PCMU" in call.remote_sdp
            bob.hangup()
            await call.wait_ended(10)
            assert call.session.end_reason == "BYE received"


async def test_messages_both_ways(tmp_path: Path) -> None:
    async with UserAgent("sip:alice@127.0.0.1", listen=["udp:127.0.0.1:0"]) as ua:
        inbox = ua.messages()
        with Baresip(tmp_path / "bob", user="bob", contacts=[_uri(ua, "alice")]) as bob:
            response = await ua.message(bob.sip_uri, "hello baresip, from sipwire")
            assert response.status == 200
            got = await asyncio.to_thread(bob.wait_message, "hello baresip, from sipwire")
            assert got.peer == "sip:alice@127.0.0.1"
            bob.message(_uri(ua, "alice"), "hello sipwire, from baresip")
            request = await asyncio.wait_for(inbox.__anext__(), 10)
            assert request.body.decode() == "hello sipwire, from baresip"
            assert request.from_.uri.user == "bob"  # type: ignore[union-attr]
