"""The cluster: two ``sipwire serve`` nodes on 127.0.0.2 and 127.0.0.3 sharing one Redis.

alice registers on node A, bob on node B; alice calls bob through A, which
finds bob's binding (taken by B) in the shared store, and the call goes
both ways (Record-Route through A, BYE from each side)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sipwire.aio.listen import ListenSpec
from sipwire.aio.ua import UserAgent
from sipwire.server.serve import Server
from tests.server.helpers import PASSWORDS, Running, make_config
from tests.server.test_proxy import answer_next, record_routes

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

A, B = "127.0.0.2", "127.0.0.3"


@contextlib.asynccontextmanager
async def two_nodes(tmp_path: Path, url: str) -> AsyncIterator[tuple[Running, Running]]:
    nodes: list[Server] = []
    try:
        for name, host in (("node-a", A), ("node-b", B)):
            config = make_config(
                tmp_path / name, url, listen=(ListenSpec("udp", host, 0),), node=name
            )
            server = Server(config)
            nodes.append(server)
            await server.start()
        a, b = Running(nodes[0]), Running(nodes[1])
        for user, password in PASSWORDS.items():
            await a.add_user(user, password)
        yield a, b
    finally:
        for server in nodes:
            await server.close()


def phone(user: str, host: str, port: int) -> UserAgent:
    return UserAgent(
        f"sip:{user}@localhost",
        password=PASSWORDS[user],
        listen=["udp:127.0.0.1:0"],
        outbound_proxy=f"<sip:{host}:{port};lr>",
    )


@pytest.mark.parametrize("store_url", ["redis"], indirect=True)
async def test_alice_on_node_a_calls_bob_on_node_b(tmp_path: Path, store_url: str) -> None:
    async with (
        two_nodes(tmp_path, store_url) as (a, b),
        phone("alice", A, a.port()) as alice,
        phone("bob", B, b.port()) as bob,
    ):
        await alice.register(f"sip:{A}:{a.port()}", timeout=5)
        await bob.register(f"sip:{B}:{b.port()}", timeout=5)
        [binding] = await a.bindings("sip:bob@localhost")
        assert binding.node == "node-b"

        answering = asyncio.ensure_future(answer_next(bob))
        call = await alice.call("sip:bob@localhost", timeout=10)
        theirs = await asyncio.wait_for(answering, 5)
        assert record_routes(theirs.request) == [f"<sip:{A}:{a.port()};lr>"]
        await theirs.hangup()  # bob's BYE goes through A
        await call.wait_ended(5)

        answering = asyncio.ensure_future(answer_next(bob))
        again = await alice.call("sip:bob@localhost", timeout=10)
        theirs = await asyncio.wait_for(answering, 5)
        await again.hangup()
        await theirs.wait_ended(5)
        assert theirs.end_status == 200
