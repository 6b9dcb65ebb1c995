"""open_store(url): which backend a URL names, and the backends' imports kept lazy."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sipwire.store import open_store
from sipwire.store.postgres import PostgresStore
from sipwire.store.redis import RedisStore
from sipwire.store.sqlite import SqliteStore


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("/var/lib/sipwire/registrar.db", "/var/lib/sipwire/registrar.db"),
        ("registrar.db", "registrar.db"),
        ("data/registrar.db", "data/registrar.db"),
        ("sqlite:///abs/path.db", "/abs/path.db"),
        ("sqlite:////abs/path.db", "/abs/path.db"),
        ("sqlite:relative.db", "relative.db"),
        ("sqlite:dir/with%20space.db", "dir/with space.db"),
        ("SQLite:relative.db", "relative.db"),
        ("sqlite::memory:", ":memory:"),
        ("file:name.db", "file:name.db"),
    ],
)
def test_sqlite_urls(url: str, path: str) -> None:
    store = open_store(url)
    assert isinstance(store, SqliteStore)
    assert store.path == path
    assert store.synchronous == "NORMAL"


def test_sqlite_options() -> None:
    store = open_store("sqlite:///tmp/x.db?synchronous=full")
    assert isinstance(store, SqliteStore) and store.synchronous == "FULL"
    with pytest.raises(ValueError, match="unknown option"):
        open_store("sqlite:///tmp/x.db?journal=delete")
    with pytest.raises(ValueError, match="absolute"):
        open_store("sqlite://host/x.db")
    with pytest.raises(ValueError, match="no file name"):
        open_store("sqlite:")


def test_redis_urls() -> None:
    store = open_store("redis://127.0.0.1:6379/2?prefix=node%3A&socket_timeout=0.5")
    assert isinstance(store, RedisStore)
    assert store.prefix == "node:"
    assert isinstance(open_store("rediss://:secret@redis.example.com:6380/0"), RedisStore)
    assert open_store("redis://localhost").prefix == "sipwire:"  # type: ignore[attr-defined]
    assert "secret" not in open_store("redis://u:secret@localhost/0").url


def test_postgres_urls() -> None:
    store = open_store("postgresql://sipwire:s3cr3t@db.example.com:5432/sip?schema=registrar")
    assert isinstance(store, PostgresStore)
    assert store.schema == "registrar"
    assert "s3cr3t" not in store.url and "***" in store.url
    assert isinstance(open_store("postgres://db/sip"), PostgresStore)
    with pytest.raises(ValueError, match="schema"):
        open_store("postgresql://db/sip?schema=a;drop")


@pytest.mark.parametrize("url", ["mysql://db/sip", "http://example.com/", "", "   "])
def test_unknown_schemes(url: str) -> None:
    with pytest.raises(ValueError):
        open_store(url)


def test_backends_are_imported_only_when_asked_for() -> None:
    code = (
        "import sys, sipwire.store\n"
        "loaded = {'redis', 'asyncpg', 'aiosqlite'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
        "sipwire.store.open_store('sqlite::memory:')\n"
        "assert 'aiosqlite' in sys.modules and 'redis' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize(
    ("url", "extra"), [("redis://h/0", "redis"), ("postgres://h/d", "postgres")]
)
def test_a_missing_extra_is_named(monkeypatch: pytest.MonkeyPatch, url: str, extra: str) -> None:
    for name in ("sipwire.store.redis", "sipwire.store.postgres"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    for name in list(sys.modules):
        if name.partition(".")[0] in ("redis", "asyncpg"):
            monkeypatch.setitem(sys.modules, name, None)  # import redis... -> ImportError
    with pytest.raises(ImportError, match=rf"pip install 'sipwire\[{extra}\]'"):
        open_store(url)
