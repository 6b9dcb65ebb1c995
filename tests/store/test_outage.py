"""A database that stops answering: the store raises StoreUnavailable quickly (the
registrar answers 503), and works again, with nothing lost, once the database is back.

Each test runs its own server, since it pauses, crashes and restarts it:

- Redis with ``appendonly yes`` and ``appendfsync always``: what it acknowledged
  survives SIGKILL. (Redis without persistence starts empty after a restart:
  a deployment that keeps bindings in Redis must turn persistence on.)
- PostgreSQL, crashed by an "immediate" shutdown (every process exits without
  a checkpoint; the next start runs crash recovery).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Iterator

import pytest

from sipwire.store import BindingChange, LocationStore, StoreUnavailable, User, open_store
from tests.store.servers import PostgresServer, RedisServer
from tests.store.test_store import AOR, binding, by_key

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]

QUICK = 3.0
"""Seconds within which a call to a database that is down must give up."""


@pytest.fixture(params=["redis", "postgres"])
def server(request: pytest.FixtureRequest) -> Iterator[RedisServer | PostgresServer]:
    if request.param == "redis":
        with RedisServer(persistent=True) as redis_server:
            yield redis_server
    else:
        with PostgresServer() as postgres_server:
            yield postgres_server


def url_of(server: RedisServer | PostgresServer) -> str:
    tag = f"t{uuid.uuid4().hex[:12]}"
    if isinstance(server, RedisServer):
        return server.url(prefix=f"{tag}:")
    return server.url(schema=tag)


async def unavailable(store: LocationStore, now: float) -> None:
    """Every kind of call raises StoreUnavailable, each within QUICK seconds."""
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "bindings": lambda: store.bindings(AOR, now),
        "apply": lambda: store.apply(AOR, BindingChange(remove=("x",)), now),
        "aors": lambda: store.aors(now),
        "get_user": lambda: store.get_user("alice", "example.com"),
        "use_nonce_count": lambda: store.use_nonce_count("n", 99, now + 60),
    }
    for name, call in calls.items():
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as caught:
            await call()
        elapsed = time.monotonic() - started
        assert elapsed < QUICK, f"{name} took {elapsed:.1f} s to fail"
        assert caught.value.status == 503
    started = time.monotonic()
    assert not await store.ping()
    assert time.monotonic() - started < QUICK


async def test_down_then_back(server: RedisServer | PostgresServer) -> None:
    store = open_store(url_of(server))
    await store.open()
    try:
        now = time.time()
        contacts = [binding(f"k{i}", now + 600) for i in range(5)]
        await store.apply(AOR, BindingChange(upsert=tuple(contacts)), now)
        await store.put_user(User("alice", "example.com", {"MD5": "0" * 32}))
        assert await store.use_nonce_count("n", 1, time.time() + 300)
        expected = by_key(contacts)

        # Hung: connections open, nothing answers -> the timeouts fire.
        server.pause()
        try:
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                await store.bindings(AOR, now)
            assert time.monotonic() - started < QUICK
            assert not await store.ping()
        finally:
            server.resume()
        assert by_key(await store.bindings(AOR, now)) == expected

        # Crashed: connections refused.
        server.kill()
        await unavailable(store, now)

        # Back: the same store object carries on (its dead connections are replaced),
        # and everything answered before the crash is there.
        server.start()
        assert by_key(await store.bindings(AOR, now)) == expected
        assert await store.get_user("alice", "example.com") is not None
        assert not await store.use_nonce_count("n", 1, time.time() + 300)
        later = binding("k9", now + 600)
        applied = await store.apply(AOR, BindingChange(upsert=(later,)), now)
        assert by_key(applied) == {**expected, "k9": later}
    finally:
        await store.close()


async def test_open_fails_quickly_when_the_database_is_down(
    server: RedisServer | PostgresServer,
) -> None:
    url = url_of(server)
    server.stop()
    store = open_store(url)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await store.open()
    assert time.monotonic() - started < QUICK
    server.start()
    await store.open()
    try:
        assert await store.ping()
    finally:
        await store.close()
