"""What only the PostgreSQL store does: schema migrations under a lock, a schema per URL."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from sipwire.store import BindingChange, StoreUnavailable
from sipwire.store.postgres import MIGRATIONS, PostgresStore
from tests.store.servers import PostgresServer
from tests.store.test_store import binding

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


async def test_nodes_starting_together_migrate_once(postgres_server: PostgresServer) -> None:
    url = postgres_server.url(schema=f"t{uuid.uuid4().hex[:12]}")
    stores = [PostgresStore(url) for _ in range(4)]
    await asyncio.gather(*(store.open() for store in stores))
    try:
        assert [await store.schema_version() for store in stores] == [len(MIGRATIONS)] * 4
        now = time.time()
        b = binding("k", now + 60)
        assert await stores[0].apply(b.aor, BindingChange(upsert=(b,)), now) == [b]
        assert await stores[3].bindings(b.aor, now) == [b]
    finally:
        for store in stores:
            await store.close()


async def test_migration_hook(postgres_server: PostgresServer) -> None:
    schema = f"t{uuid.uuid4().hex[:12]}"
    url = postgres_server.url(schema=schema)
    store = PostgresStore(url)
    await store.open()
    now = time.time()
    b = binding("k", now + 60)
    await store.apply(b.aor, BindingChange(upsert=(b,)), now)
    await store.close()

    class Newer(PostgresStore):
        migrations = (*MIGRATIONS, ("ALTER TABLE users ADD COLUMN note text",))

    newer = Newer(url)
    await newer.open()
    try:
        assert await newer.schema_version() == len(MIGRATIONS) + 1
        assert await newer.bindings(b.aor, now) == [b]
    finally:
        await newer.close()
    columns = postgres_server.psql(
        "SELECT column_name FROM information_schema.columns "
        f"WHERE table_schema = '{schema}' AND table_name = 'users'"
    )
    assert "note" in columns.split()

    older = PostgresStore(url)
    with pytest.raises(StoreUnavailable, match="newer"):
        await older.open()
    assert older._pool is None  # closed again


async def test_tables_live_in_the_schema_of_the_url(postgres_server: PostgresServer) -> None:
    schemas = [f"t{uuid.uuid4().hex[:12]}" for _ in range(2)]
    stores = [PostgresStore(postgres_server.url(schema=schema)) for schema in schemas]
    for store in stores:
        await store.open()
    try:
        now = time.time()
        b = binding("k", now + 60)
        await stores[0].apply(b.aor, BindingChange(upsert=(b,)), now)
        assert await stores[1].bindings(b.aor, now) == []
        count = postgres_server.psql(f"SELECT count(*) FROM {schemas[0]}.bindings")
        assert count.strip() == "1"
    finally:
        for store in stores:
            await store.close()
