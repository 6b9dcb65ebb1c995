"""One suite, three backends: every LocationStore behaves the same on SQLite, Redis and
PostgreSQL (real servers, see ``servers.py``).

Each test gets a clean namespace: a fresh SQLite file, a fresh Redis key prefix,
a fresh PostgreSQL schema. Times are wall-clock based (``time.time()``) because
Redis TTLs and nonce records are.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import pytest_asyncio
import redis.asyncio

from sipwire.store import Binding, BindingChange, LocationStore, User, open_store
from sipwire.store.redis import RedisStore
from tests.store.servers import PostgresServer, RedisServer

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

AOR = "sip:alice@example.com"
BACKENDS = ["sqlite", "redis", "postgres"]


@dataclass
class Backend:
    """A clean namespace on one backend, and how to open stores on it."""

    name: str
    url: str

    def new(self) -> LocationStore:
        return open_store(self.url)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    tag = f"t{uuid.uuid4().hex[:12]}"
    if request.param == "sqlite":
        return Backend("sqlite", f"sqlite://{tmp_path / 'store.db'}")
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        return Backend("redis", server.url(prefix=f"{tag}:"))
    postgres: PostgresServer = request.getfixturevalue("postgres_server")
    return Backend("postgres", postgres.url(schema=tag))


@pytest_asyncio.fixture
async def store(backend: Backend) -> AsyncIterator[LocationStore]:
    store = backend.new()
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def binding(key: str, expires_at: float, aor: str = AOR, **fields: object) -> Binding:
    """A binding with the usual fields; ``fields`` override them."""
    base = Binding(
        aor=aor,
        contact=f"<sip:{key}@192.0.2.4:5060>",
        key=key,
        expires_at=expires_at,
        call_id=f"call-{key}",
        cseq=1,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def by_key(bindings: list[Binding]) -> dict[str, Binding]:
    return {b.key: b for b in bindings}


async def upsert(store: LocationStore, now: float, *bindings: Binding) -> list[Binding]:
    return await store.apply(bindings[0].aor, BindingChange(upsert=bindings), now)


# -- bindings ----------------------------------------------------------------------------


async def test_round_trip_of_every_field(store: LocationStore) -> None:
    now = time.time()
    full = Binding(
        aor=AOR,
        contact='"Alice" <sip:alice@[2001:db8::4]:5061;transport=tls;ob>;+sip.instance="x"',
        key="<urn:uuid:00000000-0000-1000-8000-000a95a0e128>/1",
        expires_at=now + 3600.25,
        call_id="a84b4c76e66710@pc33.atlanta.com",
        cseq=4294967295,
        q=0.7,
        path=("<sip:edge1.example.com;lr>", "<sip:edge2.example.com;lr;ob>"),
        instance_id="<urn:uuid:00000000-0000-1000-8000-000a95a0e128>",
        reg_id=1,
        transport="wss",
        source="198.51.100.7:49152",
        local="203.0.113.1:443",
        node="node-b",
        flow=123456789,
        user_agent='Ünïcode phone/1.0 "quoted" \\ back',
        registered_at=now - 0.5,
    )
    plain = binding("sip:bob@192.0.2.5", now + 60)
    applied = await upsert(store, now, full, plain)
    assert by_key(applied) == {full.key: full, plain.key: plain}
    assert by_key(await store.bindings(AOR, now)) == {full.key: full, plain.key: plain}
    assert await store.bindings("sip:nobody@example.com", now) == []


async def test_upsert_replaces_the_binding_with_the_same_key(store: LocationStore) -> None:
    now = time.time()
    await upsert(store, now, binding("a", now + 60), binding("b", now + 60))
    newer = binding("a", now + 120, cseq=2, contact="<sip:a@192.0.2.9>", q=1.0)
    applied = await upsert(store, now, newer)
    assert by_key(applied) == {"a": newer, "b": binding("b", now + 60)}
    assert by_key(await store.bindings(AOR, now))["a"] == newer
    # The same key twice in one change: the last one wins.
    last = replace(newer, cseq=3)
    assert by_key(await upsert(store, now, replace(newer, cseq=9), last))["a"] == last


async def test_remove(store: LocationStore) -> None:
    now = time.time()
    await upsert(store, now, binding("a", now + 60), binding("b", now + 60))
    applied = await store.apply(AOR, BindingChange(remove=("a", "no-such-key")), now)
    assert [b.key for b in applied] == ["b"]
    assert [b.key for b in await store.bindings(AOR, now)] == ["b"]
    # Removes come before upserts: removing and adding one key in a change keeps it.
    again = binding("b", now + 90, cseq=2)
    applied = await store.apply(AOR, BindingChange(remove=("b",), upsert=(again,)), now)
    assert applied == [again]
    assert await store.apply(AOR, BindingChange(remove=("b",)), now) == []
    assert await store.bindings(AOR, now) == []
    assert AOR not in await store.aors(now)


async def test_remove_all_leaves_other_aors_alone(store: LocationStore) -> None:
    now = time.time()
    bob = "sip:bob@example.com"
    await upsert(store, now, binding("a", now + 60), binding("b", now + 60))
    await upsert(store, now, binding("c", now + 60, aor=bob))
    assert await store.apply(AOR, BindingChange(remove_all=True), now) == []
    assert await store.bindings(AOR, now) == []
    assert [b.key for b in await store.bindings(bob, now)] == ["c"]
    assert await store.aors(now) == [bob]


async def test_a_binding_for_another_aor_is_refused(store: LocationStore) -> None:
    now = time.time()
    with pytest.raises(ValueError, match="applied to"):
        await store.apply(AOR, BindingChange(upsert=(binding("a", now + 60, aor="sip:x@y"),)), now)
    assert await store.bindings(AOR, now) == []


async def test_expired_bindings_are_never_returned_and_purge_removes_them(
    store: LocationStore,
) -> None:
    now = time.time()
    short, long = binding("short", now + 10), binding("long", now + 100)
    await upsert(store, now, short, long)
    other = binding("other", now + 10, aor="sip:bob@example.com")
    await upsert(store, now, other)
    later = now + 20  # short and other have expired, not yet purged
    assert await store.bindings(AOR, later) == [long]
    assert await store.aors(later) == [AOR]
    assert await store.bindings(AOR, now + 100) == []  # expires_at == now: expired
    assert await store.aors(now + 100) == []
    # An apply answers with the unexpired bindings only, even for an upsert already
    # expired, and deletes the AOR's expired bindings (short, stale).
    applied = await upsert(store, later, binding("stale", later))
    assert applied == [long]
    assert await store.purge(later) == 1  # other
    assert await store.purge(later) == 0
    # Gone for good: not even a reader with an earlier clock sees them.
    assert await store.bindings(AOR, now) == [long]
    assert await store.bindings("sip:bob@example.com", now) == []
    assert await store.aors(now) == [AOR]


async def test_aors(store: LocationStore) -> None:
    now = time.time()
    aors = [f"sip:user{i}@example.com" for i in range(12)]
    for i, aor in enumerate(aors):
        await upsert(store, now, binding("k", now + 60 + i, aor=aor))
    assert sorted(await store.aors(now)) == sorted(aors)
    some = await store.aors(now, limit=5)
    assert len(some) == 5 and set(some) <= set(aors)
    await store.apply(aors[0], BindingChange(remove_all=True), now)
    assert sorted(await store.aors(now)) == sorted(aors[1:])
    assert sorted(await store.aors(now + 65)) == sorted(aors[6:])  # 60 + i > 65


async def test_concurrent_applies_to_one_aor_all_land(backend: Backend) -> None:
    """20 tasks on two stores (two nodes, or two connections to one file) register
    20 contacts of one AOR at once: none is lost."""
    now = time.time()
    nodes = [backend.new(), backend.new()]
    for node in nodes:
        await node.open()
    try:

        async def register(i: int) -> list[Binding]:
            change = BindingChange(upsert=(binding(f"k{i}", now + 60 + i, node=f"n{i % 2}"),))
            return await nodes[i % 2].apply(AOR, change, now)

        results = await asyncio.gather(*(register(i) for i in range(20)))
        for i, result in enumerate(results):
            assert f"k{i}" in by_key(result)
        final = by_key(await nodes[0].bindings(AOR, now))
        assert sorted(final) == sorted(f"k{i}" for i in range(20))
        # Concurrent refreshes and removals of the same keys keep the store consistent.
        await asyncio.gather(
            *(
                nodes[i % 2].apply(
                    AOR, BindingChange(remove=(f"k{i}",)) if i % 2 else BindingChange(), now
                )
                for i in range(20)
            )
        )
        assert sorted(by_key(await nodes[1].bindings(AOR, now))) == sorted(
            f"k{i}" for i in range(0, 20, 2)
        )
    finally:
        for node in nodes:
            await node.close()


async def test_data_outlives_the_store_object(backend: Backend) -> None:
    now = time.time()
    first = backend.new()
    await first.open()
    await upsert(first, now, binding("a", now + 60))
    await first.put_user(User("alice", "example.com", {"MD5": "0" * 32}))
    await first.close()
    second = backend.new()
    await second.open()
    await second.open()  # opening twice is harmless
    try:
        assert [b.key for b in await second.bindings(AOR, now)] == ["a"]
        assert await second.get_user("alice", "example.com") is not None
        assert await second.ping()
    finally:
        await second.close()


# -- users -------------------------------------------------------------------------------


async def test_users(store: LocationStore) -> None:
    ha1 = {
        "MD5": "939e7578ed9e3c518a452acee763bce9",
        "SHA-256": "a" * 64,
        "SHA-512-256": "b" * 64,
    }
    alice = User("alice", "example.com", ha1)
    await store.put_user(alice)
    await store.put_user(User("bob", "example.com", {"MD5": "c" * 32}))
    await store.put_user(User("alice", "example.org"))  # no HA1 yet
    assert await store.get_user("alice", "example.com") == alice
    assert (await store.get_user("alice", "example.org")) == User("alice", "example.org", {})
    assert await store.get_user("carol", "example.com") is None
    assert await store.get_user("alice", "example.net") is None
    assert [(u.name, u.domain) for u in await store.users("example.com")] == [
        ("alice", "example.com"),
        ("bob", "example.com"),
    ]
    assert [(u.name, u.domain) for u in await store.users()] == [
        ("alice", "example.com"),
        ("bob", "example.com"),
        ("alice", "example.org"),
    ]
    # put_user replaces the whole user: an algorithm left out is gone.
    await store.put_user(User("alice", "example.com", {"SHA-256": "d" * 64}))
    assert (await store.get_user("alice", "example.com")) == User(
        "alice", "example.com", {"SHA-256": "d" * 64}
    )
    assert await store.delete_user("alice", "example.com")
    assert not await store.delete_user("alice", "example.com")
    assert await store.get_user("alice", "example.com") is None
    assert [u.name for u in await store.users("example.com")] == ["bob"]
    assert await store.users("example.invalid") == []


# -- nonce counts ------------------------------------------------------------------------


async def test_nonce_counts_only_go_up(store: LocationStore) -> None:
    expires_at = time.time() + 300
    assert await store.use_nonce_count("n1", 1, expires_at)
    assert not await store.use_nonce_count("n1", 1, expires_at)  # replay
    assert await store.use_nonce_count("n1", 3, expires_at)  # a gap is fine
    assert not await store.use_nonce_count("n1", 2, expires_at)  # older than the newest
    assert not await store.use_nonce_count("n1", 3, expires_at)
    assert await store.use_nonce_count("n1", 0xFFFFFFFF, expires_at)
    assert await store.use_nonce_count("n2", 1, expires_at)  # nonces are independent
    assert await store.use_nonce_count("n2", 2, expires_at)


async def test_nonce_count_is_atomic(backend: Backend) -> None:
    """The same nc raced from two stores is accepted exactly once."""
    expires_at = time.time() + 300
    nodes = [backend.new(), backend.new()]
    for node in nodes:
        await node.open()
    try:
        # SQLite keeps nonce counts in the memory of its process: one store only.
        racing = nodes[:1] if backend.name == "sqlite" else nodes
        results = await asyncio.gather(
            *(racing[i % len(racing)].use_nonce_count("race", 1, expires_at) for i in range(10))
        )
        assert sorted(results) == [False] * 9 + [True]
    finally:
        for node in nodes:
            await node.close()


# -- secrets -----------------------------------------------------------------------------


async def test_secret_is_made_once_and_shared_with_the_nonce_counts(backend: Backend) -> None:
    """The nonce-signing secret: 32 bytes, the same each time it is asked for, one per
    name; shared through the database by every store on it (Redis, PostgreSQL), kept
    in memory with the nonce counts by SQLite (a new store has a new one)."""
    nodes = [backend.new(), backend.new()]
    for node in nodes:
        await node.open()
    try:
        first = await nodes[0].secret("nonce")
        assert len(first) == 32
        assert await nodes[0].secret("nonce") == first
        assert await nodes[0].secret("other") != first
        raced = await asyncio.gather(*(node.secret("raced") for node in nodes for _ in range(4)))
        if backend.name == "sqlite":
            assert await nodes[1].secret("nonce") != first
            assert len(set(raced)) == 2  # one per store object
        else:
            assert await nodes[1].secret("nonce") == first
            assert len(set(raced)) == 1
    finally:
        for node in nodes:
            await node.close()
    again = backend.new()
    await again.open()
    try:
        kept = await again.secret("nonce") == first
        assert kept is (backend.name != "sqlite")
    finally:
        await again.close()


# -- Redis: keys expire by themselves ---------------------------------------------------


async def test_redis_expires_an_aor_by_itself(redis_server: RedisServer) -> None:
    prefix = f"t{uuid.uuid4().hex[:12]}:"
    store = RedisStore(redis_server.url(prefix=prefix))
    raw = redis.asyncio.Redis.from_url(redis_server.url())
    await store.open()
    try:
        now = time.time()
        await upsert(store, now, binding("a", now + 1.0), binding("b", now + 0.5))
        keys = [f"{prefix}b:{AOR}", f"{prefix}e:{AOR}"]
        ttl = await raw.pttl(keys[0])
        assert 500 < ttl <= 1000
        assert await raw.exists(*keys) == 2

        async def gone() -> None:
            while await raw.exists(*keys):
                await asyncio.sleep(0.05)

        await asyncio.wait_for(gone(), 2.0)
        assert await store.bindings(AOR, time.time()) == []
        assert await store.purge(time.time()) == 2  # index entries of what Redis dropped
        assert await raw.zcard(f"{prefix}aors") == 0
        assert await raw.zcard(f"{prefix}exp") == 0
        # A nonce record is dropped with its nonce.
        assert await store.use_nonce_count("n", 1, time.time() + 5)
        assert 4000 < await raw.pttl(f"{prefix}n:n") <= 5000
    finally:
        await store.close()
        await raw.aclose()
