"""``kill -9`` of ``sipwire serve`` (SQLite in its data directory) while registrations run.

Every binding whose REGISTER was answered 200 is there after a restart on the
same data directory, and the bindings that expired in the meantime are not.
The client side counts: raw REGISTERs over UDP answering the 401 with
sipwire's own ``DigestClient``, a new Contact for each, twelve at a time; the
server is killed from the client's loop once 200 of them were answered, with
others in flight.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import pytest

from sipwire.registrar.authenticate import make_user
from sipwire.store import open_store
from tests.server.helpers import (
    RawClient,
    ServeProcess,
    query,
    register,
    register_text,
    serve_process,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]

USERS = [f"d{i:02d}" for i in range(10)]
SHORT_LIVED = USERS[:3]
WORKERS = 12
KILL_AFTER = 200
"""Registrations answered 200 before the kill."""
SHORT = 2
"""Expires of the short-lived bindings (seconds)."""
WAIT = 3.5
"""Seconds between the last short-lived 200 and the restart (expired: SHORT + a margin)."""


def password(user: str) -> str:
    return f"pw-{user}"


async def add_users(data: Path) -> None:
    store = open_store(f"sqlite:{data / 'sipwire.db'}")
    await store.open()
    try:
        for user in USERS:
            await store.put_user(make_user(user, "localhost", password(user)))
    finally:
        await store.close()


async def register_until_killed(
    client: RawClient, server: ServeProcess
) -> tuple[set[tuple[str, str]], int]:
    """REGISTERs with new Contacts from ``WORKERS`` tasks; ``kill -9`` of the server once
    ``KILL_AFTER`` were answered 200. Returns the (user, contact) answered 200 and the
    number of requests in flight at the kill."""
    confirmed: set[tuple[str, str]] = set()
    numbers = itertools.count()
    in_flight_at_kill = -1

    async def worker(index: int) -> None:
        nonlocal in_flight_at_kill
        while in_flight_at_kill < 0:
            n = next(numbers)
            user = USERS[n % len(USERS)]
            contact = f"sip:{user}@192.0.2.{index + 1}:{10000 + n}"
            request = register_text(server.port, user=user, contact=f"<{contact}>", expires=600)
            try:
                ok, _ = await register(
                    client, server.port, request, user, password(user), timeout=3.0
                )
            except TimeoutError:
                assert in_flight_at_kill >= 0, "no answer from a running server"
                return
            assert ok.status == 200, bytes(ok).decode()
            confirmed.add((user, contact))
            if len(confirmed) >= KILL_AFTER and in_flight_at_kill < 0:
                in_flight_at_kill = len(client.waiting)
                server.kill()

    await asyncio.gather(*(worker(i) for i in range(WORKERS)))
    return confirmed, in_flight_at_kill


async def test_answered_bindings_survive_kill_9_and_expired_ones_are_gone(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    await add_users(data)
    options = ("--data", str(data), "--min-expires", "1", "--max-contacts", "100")
    client = await RawClient.open()
    try:
        with serve_process(tmp_path, *options) as first:
            port = first.port
            short: dict[str, str] = {}
            for user in SHORT_LIVED:
                contact = f"sip:{user}@198.51.100.7:5060"
                request = register_text(port, user=user, contact=f"<{contact}>", expires=SHORT)
                ok, _ = await register(client, port, request, user, password(user))
                assert ok.status == 200, bytes(ok).decode()
                short[user] = contact
            short_answered = time.monotonic()
            confirmed, in_flight = await register_until_killed(client, first)
            assert first.proc.returncode == -9
        assert len(confirmed) >= KILL_AFTER
        assert in_flight > 0, "the kill came while no REGISTER was in flight"

        # Real time is the subject here: the short-lived bindings expire meanwhile.
        await asyncio.sleep(max(0.0, short_answered + WAIT - time.monotonic()))
        with serve_process(tmp_path, *options, port=port) as second:
            listed = {
                user: await query(client, second.port, user, password(user)) for user in USERS
            }
            assert second.stop() == 0
    finally:
        client.close()

    for user, contact in confirmed:
        assert contact in listed[user], f"{contact} was answered 200 and is lost"
    for user, contact in short.items():
        assert contact not in listed[user], f"{contact} expired and is still listed"
    # The store agrees with the restarted server.
    store = open_store(f"sqlite:{data / 'sipwire.db'}")
    await store.open()
    try:
        now = time.time()
        for user in USERS:
            stored = sorted(
                b.contact.strip("<>") for b in await store.bindings(f"sip:{user}@localhost", now)
            )
            assert stored == listed[user]
    finally:
        await store.close()
