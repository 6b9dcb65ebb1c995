"""Two asyncio UserAgents on loopback: calls, hold, INFO, MESSAGE, OPTIONS, refusals."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import cast

import pytest

from sipwire.aio.call import Call
from sipwire.aio.ua import UserAgent
from sipwire.core.session import CallState
from sipwire.errors import RequestFailed

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(30)]


def _uri(ua: UserAgent, user: str) -> str:
    host, port = ua.contact_address
    return f"sip:{user}@{host}:{port}"


async def test_call_hold_info_and_hangup() -> None:
    async with (
        UserAgent("sip:alice@127.0.0.1", listen=["udp:127.0.0.1:0"]) as alice,
        UserAgent("sip:bob@127.0.0.1", listen=["udp:127.0.0.1:0"]) as bob,
    ):
        answered: list[Call] = []

        @bob.on_call
        async def pick_up(call: Call) -> None:
            await call.ring()
            await call.answer()
            answered.append(call)

        call = await alice.call(_uri(bob, "bob"), timeout=5)
        assert call.state is CallState.CONFIRMED
        assert call.remote_sdp is not None and b"m=audio" in call.remote_sdp
        await asyncio.sleep(0.05)
        assert len(answered) == 1 and answered[0].state is CallState.CONFIRMED
        theirs = answered[0]
        assert theirs.remote.uri.user == "alice"  # type: ignore[union-attr]
        response = await call.hold()
        assert response.status == 200
        assert theirs.remote_sdp is not None and b"a=sendonly" in theirs.remote_sdp
        await call.resume()
        assert b"a=sendrecv" in theirs.remote_sdp
        info = await call.send_info("Signal=1\r\nDuration=100\r\n")
        assert info.status == 200
        await asyncio.sleep(0.05)
        assert [r.method for r in theirs.info] == ["INFO"]
        await call.hangup()
        await theirs.wait_ended(2)
        assert theirs.end_status == 200 and theirs.session.end_reason == "BYE received"


async def test_rejected_call_raises_with_status() -> None:
    async with (
        UserAgent("sip:alice@127.0.0.1", listen=["udp:127.0.0.1:0"]) as alice,
        UserAgent("sip:bob@127.0.0.1", listen=["tcp:127.0.0.1:0"]) as bob,
    ):

        @bob.on_call
        async def busy(call: Call) -> None:
            await call.reject(486)

        host, port = bob.contact_address
        with pytest.raises(RequestFailed) as failure:
            await alice.call(f"sip:bob@{host}:{port};transport=tcp", timeout=5)
        assert failure.value.status == 486


async def test_caller_cancels_on_timeout() -> None:
    async with (
        UserAgent("sip:alice@127.0.0.1", listen=["udp:127.0.0.1:0"]) as alice,
        UserAgent("sip:bob@127.0.0.1", listen=["udp:127.0.0.1:0"]) as bob,
    ):
        ringing: list[Call] = []

        @bob.on_call
        async def never_answer(call: Call) -> None:
            await call.ring()
            ringing.append(call)

        with pytest.raises(RequestFailed) as failure:
            await alice.call(_uri(bob, "bob"), timeout=0.5)
        assert failure.value.status == 408  # no final response in time; the INVITE is cancelled
        await ringing[0].wait_ended(2)
        assert ringing[0].end_status == 487


async def test_message_and_options() -> None:
    async with (
        UserAgent("sip:alice@127.0.0.1", listen=["udp:127.0.0.1:0"]) as alice,
        UserAgent("sip:bob@127.0.0.1", listen=["udp:127.0.0.1:0"]) as bob,
    ):
        response = await alice.message(_uri(bob, "bob"), "hello bob ☎")
        assert response.status == 200
        inbox = bob.messages()
        received = await asyncio.wait_for(inbox.__anext__(), 2)
        assert received.body.decode() == "hello bob ☎"
        assert received.from_.uri.user == "alice"  # type: ignore[union-attr]
        pong = await alice.options(_uri(bob, "bob"))
        assert pong.status == 200
        assert "INVITE" in pong.allow and "MESSAGE" in pong.allow
        assert "100rel" in pong.supported


async def test_unreachable_target_fails_with_503_or_408() -> None:
    async with UserAgent("sip:alice@127.0.0.1", listen=["tcp:127.0.0.1:0"]) as alice:
        with pytest.raises(RequestFailed) as failure:
            # nothing listens on port 9 (discard) over TCP: connection refused
            await alice.request("OPTIONS", "sip:127.0.0.1:9;transport=tcp")
        assert failure.value.status in (503, 408)


async def test_blind_transfer_moves_the_call() -> None:
    async with (
        UserAgent("sip:alice@127.0.0.1", listen=["udp:127.0.0.1:0"]) as alice,
        UserAgent("sip:bob@127.0.0.1", listen=["udp:127.0.0.1:0"]) as bob,
        UserAgent("sip:carol@127.0.0.1", listen=["udp:127.0.0.1:0"]) as carol,
    ):
        bob.auto_answer(accept_transfers=True)
        carol.auto_answer()
        call = await alice.call(_uri(bob, "bob"), timeout=5)
        # alice REFERs bob to carol: bob calls carol, reports 200, and hangs up on alice
        status = await call.transfer(_uri(carol, "carol"), timeout=10)
        assert status == 200
        await call.wait_ended(5)  # the transferee (bob) hangs up the old call
        assert carol.calls_answered == 1
        assert call.end_status == 200


async def test_subscribe_and_notify() -> None:
    from sipwire.core.subscription import SubscribeAnswer

    async with (
        UserAgent("sip:alice@127.0.0.1", listen=["udp:127.0.0.1:0"]) as alice,
        UserAgent("sip:bob@127.0.0.1", listen=["udp:127.0.0.1:0"]) as bob,
    ):
        assert bob.subscription_manager is not None
        bob.subscription_manager.serve(
            "presence",
            lambda sub, request: SubscribeAnswer(200, "active", b"open"),
            content_type="text/plain",
        )
        sub = await alice.subscribe(_uri(bob, "bob"), "presence", expires=600)
        notes = alice.notifications()
        first, request = await asyncio.wait_for(notes.__anext__(), 2)
        assert first is sub and request.body == b"open"
        served = bob.subscription_manager.subscriptions[0]
        bob.subscription_manager.notify(served, b"closed", bob._now())
        bob._flush()
        _, update = await asyncio.wait_for(notes.__anext__(), 2)
        assert update.body == b"closed"
        await alice.unsubscribe(sub)
        _, final = await asyncio.wait_for(notes.__anext__(), 2)
        state = final.subscription_state
        assert state is not None and state.state == "terminated"


async def test_refused_subscription_raises() -> None:
    async with (
        UserAgent("sip:alice@127.0.0.1", listen=["udp:127.0.0.1:0"]) as alice,
        UserAgent("sip:bob@127.0.0.1", listen=["udp:127.0.0.1:0"]) as bob,
    ):
        with pytest.raises(RequestFailed) as failure:
            await alice.subscribe(_uri(bob, "bob"), "no-such-package", timeout=5)
        assert failure.value.status == 489


class _Registrar(asyncio.DatagramProtocol):
    """A bare UDP registrar: 200 for every REGISTER, echoing its Contacts."""

    def __init__(self) -> None:
        self.datagrams: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        from sipwire.message import Request, parse_message

        self.datagrams.append(data)
        if not data.strip():
            return
        message = parse_message(data)
        if isinstance(message, Request):
            headers = [("Contact", c) for c in message.headers.get_all("Contact")]
            headers.append(("Expires", str(message.expires or 0)))
            response = message.reply(200, headers=headers, to_tag="reg")
            assert self.transport is not None
            self.transport.sendto(bytes(response), addr)


async def test_register_several_contacts_keepalive_and_qualify() -> None:
    loop = asyncio.get_running_loop()
    transport, registrar = await loop.create_datagram_endpoint(
        _Registrar, local_addr=("127.0.0.1", 0)
    )
    port = transport.get_extra_info("sockname")[1]
    try:
        async with UserAgent("sip:alice@127.0.0.1", listen=["udp:127.0.0.1:0"]) as ua:
            host, ua_port = ua.contact_address
            contacts = [f"<sip:alice@{host}:{ua_port}>", "<sip:alice@192.0.2.9:5060>"]
            registration = await ua.register(
                f"sip:127.0.0.1:{port}", expires=300, contacts=contacts, keepalive=0.05
            )
            assert [str(b.uri) for b in registration.bindings] == [
                f"sip:alice@{host}:{ua_port}",
                "sip:alice@192.0.2.9:5060",
            ]
            assert registration.granted == 300
            await asyncio.sleep(0.2)
            assert b"\r\n\r\n" in registrar.datagrams  # RFC 5626 CRLF keep-alives
            # the registrar qualifies the binding with OPTIONS: answered 200
            from tests.transaction.helpers import make_request

            ping = make_request("OPTIONS", via_host=f"127.0.0.1:{port}")
            transport.sendto(bytes(ping), (host, ua_port))
            for _ in range(50):
                if any(
                    d.startswith(b"SIP/2.0 200") and b"OPTIONS" in d for d in registrar.datagrams
                ):
                    break
                await asyncio.sleep(0.02)
            assert any(d.startswith(b"SIP/2.0 200") for d in registrar.datagrams)
            await ua.unregister(registration)
    finally:
        transport.close()


async def test_call_over_tls_with_sips_uris(tmp_path: Path) -> None:
    from sipwire.aio.transport_base import TransportConfig
    from tests.aio.certs import make_pki

    pki = make_pki(tmp_path)
    config = TransportConfig(
        tls_server_context=pki.server_context(), tls_client_context=pki.client_context()
    )
    async with (
        UserAgent("sips:alice@127.0.0.1", listen=["tls:127.0.0.1:0"], transport=config) as alice,
        UserAgent("sips:bob@127.0.0.1", listen=["tls:127.0.0.1:0"], transport=config) as bob,
    ):
        answered: asyncio.Queue[Call] = asyncio.Queue()

        @bob.on_call
        async def pick_up(call: Call) -> None:
            await call.answer()
            await answered.put(call)

        host, port = bob.contact_address
        call = await alice.call(f"sips:bob@{host}:{port}", timeout=5)
        theirs = await asyncio.wait_for(answered.get(), 5)
        contact = call.session.dialog.remote_target if call.session.dialog else None
        assert str(contact).startswith("sips:bob@127.0.0.1:")
        assert theirs.request.via[0].transport == "TLS"
        await theirs.hangup()  # BYE from bob to alice's sips: Contact
        await call.wait_ended(5)
        assert call.session.end_reason == "BYE received"


@pytest.mark.parametrize(
    ("transport", "host"),
    [("udp", "::1"), ("tcp", "127.0.0.1"), ("tcp", "::1"), ("ws", "127.0.0.1")],
)
async def test_call_and_bye_over_each_transport(transport: str, host: str) -> None:
    shown = f"[{host}]" if ":" in host else host
    listen = [f"{transport}:{shown}:0"]
    async with (
        UserAgent(f"sip:alice@{shown}", listen=listen) as alice,
        UserAgent(f"sip:bob@{shown}", listen=listen) as bob,
    ):
        answered: asyncio.Queue[Call] = asyncio.Queue()

        @bob.on_call
        async def pick_up(call: Call) -> None:
            await call.answer()
            await answered.put(call)

        bound, port = bob.contact_address
        target = f"sip:bob@{shown}:{port};transport={transport}"
        call = await alice.call(target, timeout=5)
        theirs = await asyncio.wait_for(answered.get(), 5)
        assert theirs.request.via[0].transport == transport.upper()
        assert bound == host
        await theirs.hangup()  # the BYE goes the other way, to alice's Contact
        await call.wait_ended(5)
        assert call.session.end_reason == "BYE received"


async def test_unclaimed_incoming_call_gets_480_and_claimed_one_is_answered() -> None:
    async with (
        UserAgent("sip:alice@127.0.0.1", listen=["udp:127.0.0.1:0"]) as alice,
        UserAgent("sip:bob@127.0.0.1", listen=["udp:127.0.0.1:0"]) as bob,
    ):
        bob.unclaimed_timeout = 0.2
        with pytest.raises(RequestFailed) as failure:
            await alice.call(_uri(bob, "bob"), timeout=5)  # nobody reads bob.incoming()
        assert failure.value.status == 480

        async def take_one() -> None:
            async for call in bob.incoming():
                await call.answer()
                return

        taker = asyncio.ensure_future(take_one())
        call = await alice.call(_uri(bob, "bob"), timeout=5)
        await taker
        assert call.state is CallState.CONFIRMED
