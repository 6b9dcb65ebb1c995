"""What only the SQLite store does: survive kill -9 of its process, WAL settings, schema
migrations, a lock held too long, nonce counts kept in memory."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sipwire.store import BindingChange, StoreUnavailable
from sipwire.store.sqlite import MIGRATIONS, SqliteStore
from tests.store.sqlite_writer import AOR_FORMAT
from tests.store.test_store import binding

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

WRITER = Path(__file__).with_name("sqlite_writer.py")


async def test_every_answered_apply_survives_kill_9(tmp_path: Path) -> None:
    """A writer prints each binding once apply returned; SIGKILL it mid-stream, reopen:
    every binding it printed is there (WAL, synchronous=NORMAL)."""
    path = tmp_path / "registrar.db"
    writer = subprocess.Popen(
        [sys.executable, str(WRITER), str(path), "1000000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None
    printed: list[int] = []
    try:
        for line in writer.stdout:
            printed.append(int(line))
            if len(printed) >= 400:
                break
        assert len(printed) >= 400, writer.stderr.read() if writer.stderr else ""
        writer.send_signal(signal.SIGKILL)
        printed += [int(line) for line in writer.stdout]  # what it printed before dying
    finally:
        if writer.poll() is None:
            writer.kill()
        writer.wait(10)
    assert writer.returncode == -signal.SIGKILL
    assert printed == list(range(len(printed)))
    assert Path(f"{path}-wal").exists()  # not checkpointed: recovered from the WAL

    store = SqliteStore(path)
    await store.open()
    try:
        now = time.time()
        found: set[str] = set()
        for aor in {AOR_FORMAT.format(i % 50) for i in printed}:
            found.update(b.call_id for b in await store.bindings(aor, now))
        missing = [i for i in printed if f"call-{i}" not in found]
        assert missing == []
    finally:
        await store.close()


async def test_wal_and_synchronous(tmp_path: Path) -> None:
    for level, code in (("NORMAL", 1), ("FULL", 2)):
        store = SqliteStore(tmp_path / f"{level}.db", synchronous=level)
        await store.open()
        try:
            journal = await store._call(lambda c: c.execute("PRAGMA journal_mode").fetchone())
            sync = await store._call(lambda c: c.execute("PRAGMA synchronous").fetchone())
            assert (journal[0], sync[0]) == ("wal", code)
        finally:
            await store.close()
    with pytest.raises(ValueError):
        SqliteStore(tmp_path / "x.db", synchronous="SOMETIMES")


async def test_schema_version_and_migration_hook(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store = SqliteStore(path)
    await store.open()
    now = time.time()
    await store.apply(
        "sip:a@x", BindingChange(upsert=(binding("k", now + 60, aor="sip:a@x"),)), now
    )
    assert await store.schema_version() == len(MIGRATIONS) == 1
    await store.close()

    class Newer(SqliteStore):
        migrations = (*MIGRATIONS, ("ALTER TABLE users ADD COLUMN note TEXT",))

    newer = Newer(path)
    await newer.open()
    try:
        assert await newer.schema_version() == 2
        assert len(await newer.bindings("sip:a@x", now)) == 1  # data kept
        columns = await newer._call(lambda c: c.execute("PRAGMA table_info(users)").fetchall())
        assert "note" in [column[1] for column in columns]
    finally:
        await newer.close()

    # An older sipwire does not touch a schema it does not know.
    older = SqliteStore(path)
    with pytest.raises(StoreUnavailable, match="newer"):
        await older.open()


async def test_a_lock_held_too_long_is_store_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store = SqliteStore(path, busy_timeout=0.2)
    await store.open()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        now = time.time()
        change = BindingChange(upsert=(binding("k", now + 60),))
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="locked"):
            await store.apply(binding("k", now).aor, change, now)
        assert time.monotonic() - started < 2
        other.execute("ROLLBACK")
        assert len(await store.apply(binding("k", now).aor, change, now)) == 1
    finally:
        other.close()
        await store.close()


async def test_open_failure_is_store_unavailable(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "no-such-dir" / "store.db")
    with pytest.raises(StoreUnavailable):
        await store.open()
    with pytest.raises(RuntimeError, match="not open"):
        await store.bindings("sip:a@x", 0.0)


async def test_memory_database(tmp_path: Path) -> None:
    store = SqliteStore(":memory:")
    await store.open()
    try:
        now = time.time()
        b = binding("k", now + 60)
        assert await store.apply(b.aor, BindingChange(upsert=(b,)), now) == [b]
    finally:
        await store.close()


async def test_nonce_counts_are_a_bounded_lru(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store.db", nonce_capacity=3)
    await store.open()
    try:
        expires_at = time.time() + 300
        for nonce in ("a", "b", "c"):
            assert await store.use_nonce_count(nonce, 5, expires_at)
        assert not await store.use_nonce_count("a", 5, expires_at)  # "a" is now the newest
        assert await store.use_nonce_count("d", 1, expires_at)  # evicts "b", the oldest
        assert list(store._nonces) == ["c", "a", "d"]
        assert await store.use_nonce_count("b", 5, expires_at)  # forgotten: accepted again
        # An expired record counts as no record, and is dropped.
        assert await store.use_nonce_count("e", 1, time.time() + 0.05)
        await asyncio.sleep(0.1)
        assert await store.use_nonce_count("e", 1, time.time() + 300)
        assert await store.use_nonce_count("f", 1, time.time() + 0.05)
        await asyncio.sleep(0.1)
        await store.purge(time.time())
        assert list(store._nonces) == ["b", "e"]  # "f" expired; "a", "c", "d" evicted
    finally:
        await store.close()
