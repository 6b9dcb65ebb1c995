"""``sipwire serve --workers 2``: two processes share the listeners and the store.

Calls arrive from 24 UDP sources: the kernel spreads them over both workers
(SO_REUSEPORT hashes the source address), so each worker forwards some
(the chance that one gets none is 2 x 2^-24). bob is registered over TCP: his
connection is held by one worker, and the INVITEs the other one takes reach
him all the same (handed over with the flow number, written on his
connection), and his answers find their way back (the branch names the
worker). carol is registered over UDP: her answers land on whichever worker
her address hashes to, and are handed to the worker that forwarded the INVITE
(stateful); a stateless proxy routes them by Via wherever they land.
"""

from __future__ import annotations

import asyncio
import re
import time
import urllib.request
from pathlib import Path

import pytest

from sipwire.aio.call import Call
from sipwire.aio.ua import UserAgent
from sipwire.registrar.authenticate import make_user
from sipwire.store import open_store
from tests.interop.peerproc import pick_port
from tests.server.helpers import PASSWORDS, RawClient, serve_process
from tests.server.test_proxy import invite_text

pytestmark = pytest.mark.timeout(90)

SOURCES = 24


async def add_users(data: Path) -> None:
    data.mkdir(parents=True, exist_ok=True)
    store = open_store(f"sqlite:{data / 'sipwire.db'}")
    await store.open()
    try:
        for name, password in PASSWORDS.items():
            await store.put_user(make_user(name, "localhost", password))
    finally:
        await store.close()


def metric(http_port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5) as page:
        text = page.read().decode()
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def busy_phone(port: int, user: str, transport: str) -> UserAgent:
    """A phone registered over ``transport`` that answers every call 486 (Busy Here)."""
    suffix = "" if transport == "udp" else ";transport=tcp"
    ua = UserAgent(
        f"sip:{user}@localhost",
        password=PASSWORDS[user],
        listen=[f"{transport}:127.0.0.1:0"],
        outbound_proxy=f"<sip:127.0.0.1:{port}{suffix};lr>",
    )
    await ua.start()

    @ua.on_call
    async def busy(call: Call) -> None:
        await call.reject(486)

    await ua.register(f"sip:127.0.0.1:{port}{suffix}", timeout=5)
    return ua


async def call_from_everywhere(port: int, user: str) -> list[int]:
    """One INVITE to ``user`` from each of SOURCES UDP sockets; their final statuses."""
    clients = [await RawClient.open() for _ in range(SOURCES)]
    try:
        answers = [
            client.request(
                invite_text(port, f"{user}@localhost", "x@elsewhere.example", client.local_port),
                port,
                10,
            )
            for client in clients
        ]
        return [response.status for response in await asyncio.gather(*answers)]
    finally:
        for client in clients:
            client.close()


@pytest.mark.parametrize("mode", ["stateful", "stateless"])
def test_two_workers_share_the_traffic_and_reach_a_tcp_phone_from_either(
    tmp_path: Path, mode: str
) -> None:
    data = tmp_path / "data"
    asyncio.run(add_users(data))
    port = pick_port()
    http = pick_port(span=2, avoid=(port,))
    args = ["--data", str(data), "--workers", "2", "--listen", f"tcp:127.0.0.1:{port}"]
    if mode == "stateless":
        args.append("--stateless")
    with serve_process(tmp_path, *args, "--http", f"127.0.0.1:{http}", port=port) as server:

        async def scenario() -> tuple[list[int], list[int]]:
            bob = await busy_phone(port, "bob", "tcp")
            carol = await busy_phone(port, "alice", "udp")
            try:
                return (
                    await call_from_everywhere(port, "bob"),
                    await call_from_everywhere(port, "alice"),
                )
            finally:
                await bob.close()
                await carol.close()

        started = time.monotonic()
        to_bob, to_carol = asyncio.run(scenario())
        assert time.monotonic() - started < 30
        assert to_bob == [486] * SOURCES
        assert to_carol == [486] * SOURCES
        forwarded = [
            metric(http + worker, 'sipwire_forwarded_requests_total{method="INVITE"}')
            for worker in (0, 1)
        ]
        assert sum(forwarded) == 2 * SOURCES
        assert all(count > 0 for count in forwarded), forwarded  # both workers took calls
        assert server.stop() == 0
    assert "Traceback" not in server.err()
