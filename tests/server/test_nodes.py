"""Two ``sipwire serve`` nodes, on 127.0.0.2 and 127.0.0.3, sharing one Redis or one
PostgreSQL (the session's database servers of ``tests/conftest.py``).

A phone registers on node A and node B answers a REGISTER query with its
binding; an unregister on B removes it for A; a nonce A issued is accepted by
B (the nonce secret is in the shared store). When the database stops, both
nodes answer 503 with Retry-After, and both recover by themselves once it is
back, with no binding lost.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sipwire import UserAgent
from sipwire.aio.listen import ListenSpec
from sipwire.message import Response
from sipwire.server.serve import Server
from tests.server.helpers import (
    RawClient,
    Running,
    authorize,
    make_config,
    query,
    register,
    register_text,
    renewed,
)
from tests.store.servers import PostgresServer, RedisServer

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

A, B = "127.0.0.2", "127.0.0.3"


@contextlib.asynccontextmanager
async def two_nodes(tmp_path: Path, url: str) -> AsyncIterator[tuple[Running, Running]]:
    """Node A on 127.0.0.2 and node B on 127.0.0.3, on the store at ``url``, user alice."""
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
        await a.add_user("alice", "secret")
        yield a, b
    finally:
        for server in nodes:
            await server.close()


@pytest.mark.parametrize("store_url", ["redis", "postgres"], indirect=True)
async def test_a_binding_made_on_one_node_is_seen_and_removed_on_the_other(
    tmp_path: Path, store_url: str
) -> None:
    async with two_nodes(tmp_path, store_url) as (a, b):
        client = await RawClient.open()
        try:
            async with UserAgent(
                "sip:alice@localhost", password="secret", listen=["udp:127.0.0.1:0"]
            ) as phone:
                registration = await phone.register(f"sip:{A}:{a.port()}", expires=600)
                assert registration.last_response is not None
                [contact] = [str(c.uri) for c in registration.last_response.contact]

                # Node B answers a query with the binding node A took.
                assert await query(client, b.port(), host=B) == [contact]
                [binding] = await b.bindings()
                assert binding.node == "node-a" and binding.local.startswith(f"{A}:")

                # Unregistered on B: gone for A too.
                request = register_text(b.port(), contact=f"<{contact}>", expires=0, host=B)
                ok, _ = await register(client, b.port(), request, host=B)
                assert ok.status == 200 and ok.contact == []
                assert await query(client, a.port(), host=A) == []
        finally:
            client.close()


@pytest.mark.parametrize("store_url", ["redis", "postgres"], indirect=True)
async def test_a_nonce_issued_by_one_node_is_accepted_by_the_other(
    tmp_path: Path, store_url: str
) -> None:
    async with two_nodes(tmp_path, store_url) as (a, b):
        client = await RawClient.open()
        try:
            # The Request-URI names the domain (both nodes serve localhost).
            request = register_text(a.port(), host="localhost", contact="<sip:alice@192.0.2.9>")
            challenge = await client.request(request, a.port(), host=A)
            assert challenge.status == 401
            answered = await client.request(authorize(request, challenge), b.port(), host=B)
            assert answered.status == 200, bytes(answered).decode()
            assert await query(client, a.port(), host=A) == ["sip:alice@192.0.2.9"]
        finally:
            client.close()


async def _register_until_ok(client: RawClient, port: int, host: str, contact: str) -> Response:
    """A REGISTER through the recovery: 503s are retried (a new transaction each time,
    bounded), a 401 is answered (the request may have found a new nonce record)."""
    request = register_text(port, contact=f"<{contact}>", host=host)
    response, sent = await register(client, port, request, host=host, timeout=8)
    for _ in range(40):
        if response.status == 401:
            sent = authorize(sent, response)
        elif response.status == 503:
            await asyncio.sleep(0.25)
            sent = renewed(sent)
        else:
            break
        response = await client.request(sent, port, 8, host=host)
    return response


@pytest.mark.parametrize("kind", ["redis", "postgres"])
async def test_both_nodes_answer_503_while_the_store_is_down_then_recover(
    kind: str, tmp_path: Path
) -> None:
    """Redis is killed and started again (append-only file, fsync'ed at each write);
    PostgreSQL is paused and resumed. A database server of the test's own: the
    session's are never stopped."""
    database: RedisServer | PostgresServer
    database = RedisServer(persistent=True) if kind == "redis" else PostgresServer()
    with database:
        url = database.url(prefix="n:") if isinstance(database, RedisServer) else database.url()
        async with two_nodes(tmp_path, url) as (a, b):
            client = await RawClient.open()
            try:
                first = register_text(a.port(), contact="<sip:alice@192.0.2.1>", host=A)
                ok, _ = await register(client, a.port(), first, host=A)
                assert ok.status == 200

                if isinstance(database, RedisServer):
                    database.kill()
                else:
                    database.pause()
                try:
                    refused = []
                    for node, host in ((a, A), (b, B)):
                        request = register_text(
                            node.port(), contact="<sip:alice@192.0.2.2>", host=host
                        )
                        answer, _ = await register(client, node.port(), request, host=host)
                        refused.append(answer)
                finally:
                    if isinstance(database, RedisServer):
                        database.start()
                    else:
                        database.resume()
                for answer in refused:
                    assert answer.status == 503, bytes(answer).decode()
                    assert answer.headers.get("Retry-After") == "5"
                    assert answer.to.tag

                ok = await _register_until_ok(client, b.port(), B, "sip:alice@192.0.2.2")
                assert ok.status == 200, bytes(ok).decode()
                expected = ["sip:alice@192.0.2.1", "sip:alice@192.0.2.2"]
                assert sorted(str(c.uri) for c in ok.contact) == expected
                # Node A recovers too, and lists both: nothing was lost.
                ok = await _register_until_ok(client, a.port(), A, "sip:alice@192.0.2.3")
                assert ok.status == 200, bytes(ok).decode()
                assert await query(client, a.port(), host=A) == [*expected, "sip:alice@192.0.2.3"]
            finally:
                client.close()
