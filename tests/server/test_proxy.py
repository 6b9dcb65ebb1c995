"""The proxy role of ``sipwire serve``: sipwire user agents register and call each other
through a real server on loopback (UDP and TCP), with digest, Record-Route and the flows
they registered on."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sipwire.aio.call import Call
from sipwire.aio.ua import UserAgent
from sipwire.core.session import CallState
from sipwire.errors import RequestFailed
from sipwire.message import Request
from sipwire.proxy import StaticRoute
from tests.server.helpers import PASSWORDS, RawClient, Running, StartServer, new_branch

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


@contextlib.asynccontextmanager
async def phone(
    running: Running, user: str, transport: str = "udp", *, register: bool = True
) -> AsyncIterator[UserAgent]:
    """A sipwire UserAgent ``sip:<user>@localhost`` whose outbound proxy is the server,
    registered (digest) over ``transport``."""
    port = running.port(transport)
    suffix = "" if transport == "udp" else f";transport={transport}"
    ua = UserAgent(
        f"sip:{user}@localhost",
        password=PASSWORDS.get(user, "x"),
        listen=[f"{transport}:127.0.0.1:0"],
        outbound_proxy=f"<sip:127.0.0.1:{port}{suffix};lr>",
    )
    async with ua:
        if register:
            await ua.register(f"sip:127.0.0.1:{port}{suffix}", timeout=5)
        yield ua


async def answer_next(ua: UserAgent) -> Call:
    """The next incoming call of ``ua``, answered."""
    async for call in ua.incoming():
        await call.answer()
        return call
    raise AssertionError("no call")


def record_routes(request: Request) -> list[str]:
    return [str(value) for value in request.record_route]


async def test_two_phones_call_each_other_through_the_proxy(running: Running) -> None:
    async with phone(running, "alice") as alice, phone(running, "bob") as bob:
        # alice calls bob; bob hangs up.
        answering = asyncio.ensure_future(answer_next(bob))
        call = await alice.call("sip:bob@localhost", timeout=10)
        theirs = await asyncio.wait_for(answering, 5)
        assert call.state is CallState.CONFIRMED
        port = running.port()
        assert record_routes(theirs.request) == [f"<sip:127.0.0.1:{port};lr>"]
        assert theirs.request.headers.get("Proxy-Authorization") is None  # used up by us
        await theirs.hangup()
        await call.wait_ended(5)
        assert call.session.end_reason == "BYE received"

        # bob calls alice; alice hangs up.
        answering = asyncio.ensure_future(answer_next(alice))
        back = await bob.call("sip:alice@localhost", timeout=10)
        mine = await asyncio.wait_for(answering, 5)
        await back.hangup()
        await mine.wait_ended(5)
        assert mine.end_status == 200

        # A MESSAGE, authenticated like a call.
        response = await alice.message("sip:bob@localhost", "hello bob")
        assert response.status == 200
        received = await asyncio.wait_for(anext(aiter(bob.messages())), 5)
        assert received.body == b"hello bob"
    metrics = running.server.metrics.render().decode()
    assert 'sipwire_calls_total{outcome="answered"} 2.0' in metrics
    assert 'sipwire_calls_total{outcome="challenged"} 2.0' in metrics
    assert 'sipwire_forwarded_requests_total{method="INVITE"} 2.0' in metrics
    assert 'sipwire_forwarded_requests_total{method="BYE"} 2.0' in metrics
    assert 'sipwire_forwarded_requests_total{method="MESSAGE"} 1.0' in metrics
    assert "sipwire_proxy_contexts " in metrics  # until their transactions end (Timer J ...)


async def test_a_local_user_without_binding_gets_480(running: Running) -> None:
    async with phone(running, "alice") as alice:
        with pytest.raises(RequestFailed) as failed:
            await alice.call("sip:bob@localhost", timeout=10)
        assert failed.value.status == 480
        # An unknown user looks the same to a caller of another domain ...
        outsider = await RawClient.open()
        try:
            invite = invite_text(running.port(), "carol@localhost", "mallory@elsewhere.example")
            response = await outsider.request(invite, running.port())
            assert response.status == 480
        finally:
            outsider.close()
        # ... while an authenticated user of the domain learns that it does not exist.
        with pytest.raises(RequestFailed) as failed:
            await alice.call("sip:nobody@localhost", timeout=10)
        assert failed.value.status == 404


def invite_text(port: int, to: str, from_: str, local_port: int = 5099) -> bytes:
    lines = [
        f"INVITE sip:{to} SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch={new_branch()};rport",
        "Max-Forwards: 70",
        f"To: <sip:{to}>",
        f"From: <sip:{from_}>;tag=raw1",
        f"Call-ID: {new_branch()}@raw",
        "CSeq: 1 INVITE",
        f"Contact: <sip:x@127.0.0.1:{local_port}>",
        "Content-Length: 0",
        "",
        "",
    ]
    return "\r\n".join(lines).encode()


async def test_no_open_relay(running: Running) -> None:
    client = await RawClient.open()
    try:
        invite = invite_text(running.port(), "someone@foreign.example", "x@elsewhere.example")
        response = await client.request(invite, running.port())
        assert response.status == 403
        # From one of our domains: the caller must authenticate first.
        invite = invite_text(running.port(), "someone@foreign.example", "alice@localhost")
        response = await client.request(invite, running.port())
        assert response.status == 407
        assert response.headers.get("Proxy-Authenticate")
    finally:
        client.close()


async def test_a_udp_phone_calls_a_tcp_phone_with_double_record_route(running: Running) -> None:
    async with phone(running, "alice", "udp") as alice, phone(running, "bob", "tcp") as bob:
        answering = asyncio.ensure_future(answer_next(bob))
        call = await alice.call("sip:bob@localhost", timeout=10)
        theirs = await asyncio.wait_for(answering, 5)
        udp, tcp = running.port("udp"), running.port("tcp")
        routes = record_routes(theirs.request)
        assert len(routes) == 2, routes
        assert f"127.0.0.1:{tcp};transport=tcp" in routes[0] and "r2=on" in routes[0]
        assert f"127.0.0.1:{udp}" in routes[1] and "r2=on" in routes[1]
        # BYE from the TCP side reaches alice over UDP; then the other way round.
        await theirs.hangup()
        await call.wait_ended(5)
        answering = asyncio.ensure_future(answer_next(bob))
        again = await alice.call("sip:bob@localhost", timeout=10)
        theirs = await asyncio.wait_for(answering, 5)
        await again.hangup()
        await theirs.wait_ended(5)
        assert theirs.end_status == 200
        # bob (TCP, reached over the connection he registered on) calls alice (UDP).
        answering = asyncio.ensure_future(answer_next(alice))
        back = await bob.call("sip:alice@localhost", timeout=10)
        mine = await asyncio.wait_for(answering, 5)
        await mine.hangup()
        await back.wait_ended(5)


async def test_the_server_options_lists_the_proxy_methods(running: Running) -> None:
    async with phone(running, "alice", register=False) as alice:
        response = await alice.options(f"sip:127.0.0.1:{running.port()}")
    allow = response.headers.get("Allow") or ""
    assert response.status == 200 and "REGISTER" in allow and "INVITE" in allow


async def test_a_stateless_proxy_relays_calls(start_server: StartServer) -> None:
    running = await start_server(stateless=True)
    async with phone(running, "alice") as alice, phone(running, "bob") as bob:
        answering = asyncio.ensure_future(answer_next(bob))
        call = await alice.call("sip:bob@localhost", timeout=10)
        theirs = await asyncio.wait_for(answering, 5)
        assert record_routes(theirs.request) == [f"<sip:127.0.0.1:{running.port()};lr>"]
        await call.hangup()
        await theirs.wait_ended(5)
        assert theirs.end_status == 200
    assert running.server.proxy is not None and running.server.proxy.stateless


async def test_a_python_hook_and_toml_routes(start_server: StartServer, tmp_path: Path) -> None:
    hook = tmp_path / "routes.py"
    hook.write_text(
        "from sipwire.proxy import Local, Respond\n"
        "def route(request, ctx):\n"
        "    if request.from_.uri.user == 'spammer':\n"
        "        return Respond(603, 'Declined')\n"
        "    if getattr(request.uri, 'user', None) == 'support':\n"
        "        return Local('sip:bob@localhost')\n"
        "    return None\n"
    )
    premium = StaticRoute(name="premium", prefixes=("+49900",), respond=403)
    running = await start_server(routes_hook=hook, routes=(premium,))
    client = await RawClient.open()
    try:
        port = running.port()
        spam = invite_text(port, "bob@localhost", "spammer@elsewhere.example")
        assert (await client.request(spam, port)).status == 603
        dearer = invite_text(port, "+4990012345@localhost", "x@elsewhere.example")
        assert (await client.request(dearer, port)).status == 403
    finally:
        client.close()
    async with phone(running, "bob") as bob, phone(running, "alice") as alice:
        answering = asyncio.ensure_future(answer_next(bob))
        call = await alice.call("sip:support@localhost", timeout=10)
        theirs = await asyncio.wait_for(answering, 5)
        assert str(theirs.request.uri).startswith("sip:bob@127.0.0.1")
        await call.hangup()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_a_phone_behind_nat_is_reached_through_its_flow(
    running: Running, transport: str
) -> None:
    """bob registers a Contact nobody can reach (a private address behind a NAT, a port
    nobody listens on): calls reach him at the address and connection the REGISTER came
    from (RFC 5626, the received address)."""
    port = running.port(transport)
    suffix = "" if transport == "udp" else ";transport=tcp"
    unreachable = f"<sip:bob@10.255.255.1:5060{suffix}>"
    bob = UserAgent(
        "sip:bob@localhost",
        password=PASSWORDS["bob"],
        listen=[f"{transport}:127.0.0.1:0"],
        outbound_proxy=f"<sip:127.0.0.1:{port}{suffix};lr>",
    )
    async with bob, phone(running, "alice") as alice:
        await bob.register(f"sip:127.0.0.1:{port}{suffix}", contacts=[unreachable], timeout=5)
        [binding] = await running.bindings("sip:bob@localhost")
        assert binding.transport == transport and binding.source.startswith("127.0.0.1:")
        answering = asyncio.ensure_future(answer_next(bob))
        call = await alice.call("sip:bob@localhost", timeout=10)
        theirs = await asyncio.wait_for(answering, 5)
        assert str(theirs.request.uri).startswith("sip:bob@10.255.255.1")
        await theirs.hangup()
        await call.wait_ended(5)
