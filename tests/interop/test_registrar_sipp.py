"""sipp registers 1,000 times with digest authentication against ``sipwire serve``.

The users are made by the real ``sipwire user add`` command, the server is the
real ``sipwire serve`` (offering MD5 only: sipp answers the first challenge and
knows no other algorithm), and sipp runs ``scenarios/uac_register_users.xml``
with one user per call from an injection file: 50 users, each registering 20
times (a new Call-ID each time: a full challenge and response, refreshing the
user's one binding). Afterwards ``sipwire user list`` names every user, and both
the store and the server (a REGISTER without Contact) show each user's binding.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sipwire.store import open_store
from tests.interop.sipp import SIPP
from tests.interop.sipp_peer import run_sipp_client
from tests.server.helpers import SIPWIRE, RawClient, query, serve_process

pytestmark = [
    pytest.mark.skipif(SIPP is None, reason="sipp not installed (Debian: sip-tester)"),
    pytest.mark.timeout(120),
]

USERS = 50
ROUNDS = 20
RATE = 200
"""Registrations started per second: 1,000 in about 5 s."""


def password(user: str) -> str:
    return f"pw-{user}-x7"


def user_add(data: Path, user: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SIPWIRE, "user", "add", user, "--password", "-", "--data", str(data)],
        input=password(user) + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def add_users(data: Path, users: list[str]) -> None:
    """``sipwire user add`` for each user: the first alone (it makes the schema), then
    the others four at a time."""
    first = user_add(data, users[0])
    assert first.returncode == 0, first.stderr
    with ThreadPoolExecutor(max_workers=4) as pool:
        for user, done in zip(
            users[1:], pool.map(lambda u: user_add(data, u), users[1:]), strict=True
        ):
            assert done.returncode == 0, (user, done.stderr)
            assert done.stdout.strip() == f"added {user}@localhost"


async def stored_bindings(data: Path, users: list[str]) -> dict[str, list[str]]:
    """Each user's contacts as the store has them (read beside the running server)."""
    store = open_store(f"sqlite:{data / 'sipwire.db'}")
    await store.open()
    try:
        now = time.time()
        assert len(await store.aors(now, 10 * USERS)) == len(users)
        return {
            user: [b.contact for b in await store.bindings(f"sip:{user}@localhost", now)]
            for user in users
        }
    finally:
        await store.close()


async def queried(port: int, users: list[str]) -> dict[str, list[str]]:
    """Each user's contacts as the server answers a REGISTER query."""
    client = await RawClient.open()
    try:
        return {user: await query(client, port, user, password(user)) for user in users}
    finally:
        client.close()


def test_sipp_makes_1000_registrations_with_digest(tmp_path: Path) -> None:
    data = tmp_path / "data"
    users = [f"u{i:03d}" for i in range(USERS)]
    add_users(data, users)
    listed = subprocess.run(
        [*SIPWIRE, "user", "list", "--data", str(data)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == [f"{user}@localhost" for user in users]

    injection = tmp_path / "users.csv"
    lines = [f"{u};[authentication username={u} password={password(u)}]" for u in users]
    injection.write_text("\n".join(["SEQUENTIAL", *lines]) + "\n")

    with serve_process(tmp_path, "--data", str(data), "--algorithm", "MD5") as server:
        result = run_sipp_client(
            "uac_register_users.xml",
            f"127.0.0.1:{server.port}",
            tmp_path / "sipp",
            calls=USERS * ROUNDS,
            keys={"domain": "localhost", "expires": "600"},
            extra=("-inf", str(injection), "-r", str(RATE)),
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert (result.successful, result.failed) == (USERS * ROUNDS, 0), result.stats

        in_store = asyncio.run(stored_bindings(data, users))
        answered = asyncio.run(queried(server.port, users))
        assert server.stop() == 0
    for user in users:
        # Twenty registrations from one sipp refresh one binding.
        [contact] = in_store[user]
        assert contact.startswith(f"<sip:{user}@127.0.0.1:"), contact
        assert answered[user] == [contact.strip("<>")]
    stopped = server.err().strip().splitlines()[-1]
    # A challenge and an accepted REGISTER per registration, and one of each per query.
    assert stopped == f"stopped after answering {2 * (USERS * ROUNDS + USERS)} REGISTER requests"
