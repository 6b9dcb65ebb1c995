"""The HTTP port of ``sipwire serve``: /metrics (Prometheus) and /health, and its bounds."""

from __future__ import annotations

import asyncio

import pytest

from sipwire import UserAgent
from tests.server.helpers import Running, StartServer
from tests.store.servers import RedisServer

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

NAMED = (
    "sipwire_requests_total",
    "sipwire_responses_total",
    "sipwire_registrations_total",
    "sipwire_registered_aors",
    "sipwire_auth_failures_total",
    "sipwire_store_latency_seconds_bucket",
    "sipwire_transactions",
    "sipwire_registers_in_flight",
    "sipwire_shed_requests_total",
    "sipwire_store_up",
    "sipwire_connections",
)


async def fetch(address: tuple[str, int], raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``raw`` as the request; the status, headers and body of the answer."""
    reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(raw)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


async def get(address: tuple[str, int], path: str, method: str = "GET") -> tuple[int, bytes]:
    request = f"{method} {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode()
    status, headers, body = await fetch(address, request)
    assert headers["connection"] == "close"
    if method != "HEAD":
        assert int(headers["content-length"]) == len(body)
    return status, body


async def test_metrics_name_every_counter(running: Running) -> None:
    async with UserAgent(
        "sip:alice@localhost", password="secret", listen=["udp:127.0.0.1:0"]
    ) as ua:
        await ua.register(running.registrar(), expires=600)
        await ua.options(running.registrar())
    assert running.server.registrar is not None
    await running.server.healthy()
    status, body = await get(running.http, "/metrics")
    assert status == 200
    text = body.decode()
    for name in NAMED:
        assert name in text, name
    assert 'sipwire_requests_total{method="REGISTER"} 2.0' in text
    assert 'sipwire_responses_total{method="REGISTER",status="401"} 1.0' in text
    assert 'sipwire_responses_total{method="REGISTER",status="200"} 1.0' in text
    assert 'sipwire_responses_total{method="OPTIONS",status="200"} 1.0' in text
    assert 'sipwire_registrations_total{outcome="registered"} 1.0' in text
    assert 'sipwire_registrations_total{outcome="challenged"} 1.0' in text
    assert 'sipwire_store_latency_seconds_count{operation="apply"} 1.0' in text
    assert 'sipwire_shed_requests_total{cause="tables_full"} 0.0' in text
    assert "sipwire_store_up 1.0" in text


async def test_registered_aors_are_counted_from_the_store(running: Running) -> None:
    async with UserAgent(
        "sip:alice@localhost", password="secret", listen=["udp:127.0.0.1:0"]
    ) as ua:
        await ua.register(running.registrar(), expires=600)
    # The periodic check ran at start (before the registration); run one more round.
    await running.server.check_store()
    text = (await get(running.http, "/metrics"))[1].decode()
    assert "sipwire_registered_aors 1.0" in text


async def test_health_and_unknown_paths(running: Running) -> None:
    assert await get(running.http, "/health") == (200, b"ok\n")
    assert (await get(running.http, "/health", "HEAD"))[0] == 200
    assert (await get(running.http, "/nothing"))[0] == 404
    assert (await get(running.http, "/"))[0] == 404
    assert (await get(running.http, "/metrics", "POST"))[0] == 405
    assert (await get(running.http, "/metrics?name[]=x"))[0] == 200


async def test_health_follows_the_store(start_server: StartServer) -> None:
    with RedisServer() as redis:
        running = await start_server(store=redis.url(prefix="h:"))
        assert (await get(running.http, "/health"))[0] == 200
        redis.pause()
        try:
            status, body = await get(running.http, "/health")
        finally:
            redis.resume()
        assert (status, body) == (503, b"store unavailable\n")
        text = (await get(running.http, "/metrics"))[1].decode()
        assert "sipwire_store_up 0.0" in text
        assert (await get(running.http, "/health"))[0] == 200


async def test_requests_are_bounded(running: Running) -> None:
    huge = b"GET /metrics HTTP/1.1\r\n" + b"X: " + b"y" * 20000 + b"\r\n\r\n"
    status, _, _ = await fetch(running.http, huge)
    assert status == 431
    status, _, _ = await fetch(running.http, b"nonsense\r\n\r\n")
    assert status == 400
    http = running.server.http
    assert http is not None
    # A client that never finishes its request is cut off after the timeout.
    http.timeout = 0.3
    reader, writer = await asyncio.open_connection(*running.http)
    writer.write(b"GET /metrics HTTP/1.1\r\n")
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    # At most max_connections at once: the next one is closed at once.
    http.timeout = 5.0
    http.max_connections = 2
    idle = [await asyncio.open_connection(*running.http) for _ in range(2)]
    await asyncio.sleep(0.1)
    reader, writer = await asyncio.open_connection(*running.http)
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    for _, w in idle:
        w.close()
