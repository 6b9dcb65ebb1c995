"""A forged source earns its victim little: bounded bytes, no BYE (RFC 3261 §13.3.1.4).

An INVITE arrives from an address that never answers (as if its source were
forged). The agent answers it; its 200 would be retransmitted for 64*T1 and
then a BYE sent. Time is driven by hand (no sleeping): the transaction layer
and the core are fired at later and later times, as the endpoint's timer would.
"""

from __future__ import annotations

import socket

import pytest

from sipwire.aio.ua import UserAgent

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(30)]

SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 6000 RTP/AVP 0\r\n"
)


def _invite(port: int) -> bytes:
    return (
        "INVITE sip:ua@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-victim\r\n"
        "From: <sip:victim@127.0.0.1>;tag=v1\r\n"
        "To: <sip:ua@127.0.0.1>\r\n"
        "Call-ID: reflect-1\r\nCSeq: 1 INVITE\r\n"
        f"Contact: <sip:victim@127.0.0.1:{port}>\r\nMax-Forwards: 70\r\n"
        f"Content-Type: application/sdp\r\nContent-Length: {len(SDP)}\r\n\r\n{SDP}"
    ).encode()


async def test_an_invite_from_an_address_that_never_answers_is_not_amplified() -> None:
    async with UserAgent("sip:ua@127.0.0.1", listen=["udp:127.0.0.1:0"]) as ua:
        ua.auto_answer()
        endpoint = ua.endpoint
        assert endpoint is not None
        victim = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        victim.bind(("127.0.0.1", 0))
        victim.setblocking(False)
        port = victim.getsockname()[1]
        invite = _invite(port)
        udp = endpoint.transport._udp[0]
        udp.datagram_received(invite, ("127.0.0.1", port))
        start = endpoint.now()
        for step in range(1, 100):  # 50 s of timers, in half seconds
            now = start + step * 0.5
            endpoint.transactions.handle_timer(now)
            ua.handle_timer(now)
            endpoint._pump(now)
        received: list[bytes] = []
        while True:
            try:
                received.append(victim.recv(65536))
            except BlockingIOError:
                break
        victim.close()
        oks = [d for d in received if d.startswith(b"SIP/2.0 200")]
        assert oks, "the first 200 is always sent"
        assert not [d for d in received if d.startswith(b"BYE ")]  # no BYE to a stranger
        back = sum(len(d) for d in received)
        # Before: 11 copies of the 200, then 11 BYEs (about 20 times the INVITE).
        assert len(oks) < 11
        assert back <= 3 * len(invite) + 2048 + len(received[0]) + len(oks[0])
