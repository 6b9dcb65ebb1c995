"""The embedded location store: one SQLite file, for a single registrar process.

Durability
    The database is in WAL mode with ``synchronous=NORMAL`` (the default;
    ``synchronous="FULL"`` or ``?synchronous=FULL`` in the URL changes it).
    A commit in WAL mode appends the transaction to the ``-wal`` file with
    ``write()``; with NORMAL the WAL is not fsync'ed at each commit, only at
    checkpoints. Once ``write()`` has returned the data is in the kernel's
    page cache, which outlives the process: so every ``apply`` that returned
    (every REGISTER answered 200) survives ``kill -9``, an OOM kill or a crash
    of the interpreter (``tests/store/test_sqlite.py`` kills a writer with
    SIGKILL and checks). What NORMAL gives up is the last transactions
    before a *power loss or kernel crash*: the database stays consistent (WAL
    recovery), but commits since the last checkpoint may be lost. FULL
    fsyncs the WAL at every commit and survives that too, at the cost of one
    fsync per REGISTER (0.1 to 10 ms depending on the disk).

Threads
    aiosqlite gives the connection a thread of its own. Each operation here
    is one plain function (``_apply``, ``_bindings`` ...) run whole on that
    thread through the queue every aiosqlite call goes through
    (``Connection._execute``), so an ``apply`` is one hop to the thread and
    one transaction, and operations never interleave: writes are serialized
    on the one connection without an asyncio lock. (``_execute`` and
    ``_conn`` are aiosqlite's internals, pinned at 0.22.1: an upgrade that
    renames them fails every store test at once. Through its public calls an
    apply would be five hops and need a lock against interleaving.)
    Statements are fixed strings, so sqlite3's statement cache prepares each
    once.
    Another process (or another ``SqliteStore``) on the same file is
    serialized by SQLite's own lock (``BEGIN IMMEDIATE``, waiting up to
    ``busy_timeout``).

Nonce counts
    Kept in memory, not in the file: a bounded LRU of nonce → (highest nc,
    expiry). A restart forgets them, which is harmless because the nonce
    secret (:meth:`SqliteStore.secret`) lives in the same memory: nonces
    issued before the restart no longer verify. When the LRU is full the
    least recently used nonce is forgotten (a later request with it starts
    over); make ``nonce_capacity`` larger than the number of nonces alive at
    once.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from os import PathLike, fspath
from typing import Any, Final, TypeVar, cast

import aiosqlite

from sipwire.registrar.model import Binding, BindingChange, User
from sipwire.store.base import LocationStore, StoreUnavailable
from sipwire.store.common import (
    decode_binding,
    decode_ha1,
    encode_binding,
    encode_ha1,
    latest_upserts,
)

__all__ = ["MIGRATIONS", "SqliteStore"]

T = TypeVar("T")

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    # 1: bindings keyed (aor, key), the binding itself as JSON; users; nothing for nonces.
    (
        """CREATE TABLE bindings (
            aor TEXT NOT NULL,
            key TEXT NOT NULL,
            expires_at REAL NOT NULL,
            data TEXT NOT NULL,
            PRIMARY KEY (aor, key)
        ) WITHOUT ROWID""",
        "CREATE INDEX bindings_expires_at ON bindings (expires_at)",
        """CREATE TABLE users (
            domain TEXT NOT NULL,
            name TEXT NOT NULL,
            ha1 TEXT NOT NULL,
            PRIMARY KEY (domain, name)
        ) WITHOUT ROWID""",
    ),
)
"""Schema migrations: entry ``i`` takes the schema from version ``i`` to ``i + 1``.

A schema change appends an entry (never edits one); ``open()`` runs those the
file has not had yet, in one transaction, and records the version in
``schema_version``. A subclass may extend the tuple through ``migrations``.
"""

_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")

_SQL_PRUNE = "DELETE FROM bindings WHERE aor = ? AND expires_at <= ?"
_SQL_REMOVE_ALL = "DELETE FROM bindings WHERE aor = ?"
_SQL_REMOVE = "DELETE FROM bindings WHERE aor = ? AND key = ?"
_SQL_UPSERT = (
    "INSERT INTO bindings (aor, key, expires_at, data) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (aor, key) DO UPDATE SET expires_at = excluded.expires_at, data = excluded.data"
)
_SQL_BINDINGS = "SELECT data FROM bindings WHERE aor = ? AND expires_at > ?"
_SQL_AORS = "SELECT DISTINCT aor FROM bindings WHERE expires_at > ? LIMIT ?"
_SQL_PURGE = "DELETE FROM bindings WHERE expires_at <= ?"
_SQL_PUT_USER = "INSERT OR REPLACE INTO users (domain, name, ha1) VALUES (?, ?, ?)"
_SQL_GET_USER = "SELECT ha1 FROM users WHERE domain = ? AND name = ?"
_SQL_DELETE_USER = "DELETE FROM users WHERE domain = ? AND name = ?"
_SQL_USERS = "SELECT domain, name, ha1 FROM users ORDER BY domain, name"
_SQL_USERS_OF = "SELECT domain, name, ha1 FROM users WHERE domain = ? ORDER BY name"


class SqliteStore(LocationStore):
    """Bindings and users in one SQLite file (see the module docstring).

    Args:
        path: the database file (created with its directory's permissions),
            or ``":memory:"`` for a store that lives as long as the object.
        synchronous: ``"NORMAL"`` (survives process crashes) or ``"FULL"``
            (also power loss), see above.
        busy_timeout: seconds to wait for another connection's write lock
            before :class:`StoreUnavailable`.
        nonce_capacity: how many nonces the nonce-count LRU remembers.
    """

    migrations: tuple[tuple[str, ...], ...] = MIGRATIONS

    def __init__(
        self,
        path: str | PathLike[str],
        *,
        synchronous: str = "NORMAL",
        busy_timeout: float = 5.0,
        nonce_capacity: int = 65536,
    ) -> None:
        if synchronous.upper() not in _SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {', '.join(_SYNCHRONOUS)}")
        if nonce_capacity < 1:
            raise ValueError("nonce_capacity must be positive")
        self.path = fspath(path)
        self.url = f"sqlite:{self.path}"
        self.synchronous = synchronous.upper()
        self.busy_timeout = busy_timeout
        self.nonce_capacity = nonce_capacity
        self._db: aiosqlite.Connection | None = None
        self._run: Callable[..., Awaitable[Any]] | None = None
        self._nonces: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._secrets: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r})"

    # -- lifecycle ---------------------------------------------------------------------

    async def open(self) -> None:
        if self._db is not None:
            return
        db = aiosqlite.connect(
            self.path,
            isolation_level=None,  # autocommit: transactions are explicit BEGIN/COMMIT
            timeout=self.busy_timeout,
            cached_statements=64,
        )
        try:
            await db
        except sqlite3.Error as exc:
            # aiosqlite stops its thread, which then reports to this event loop: let it
            # finish while the loop still runs.
            for _ in range(200):
                if not db._thread.is_alive():
                    break
                await asyncio.sleep(0.005)
            raise StoreUnavailable(f"sqlite {self.path}: {exc}") from exc
        self._db = db
        # aiosqlite's own primitive: queue a callable to the connection's thread.
        self._run = cast(Callable[..., Awaitable[Any]], db._execute)
        try:
            await self._call(self._open)
        except BaseException:
            await self.close()
            raise

    def _open(self, conn: sqlite3.Connection) -> None:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal" and self.path != ":memory:":
            raise StoreUnavailable(f"sqlite {self.path}: cannot use WAL (journal_mode={mode})")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
            version = row[0] or 0
            if version > len(self.migrations):
                raise StoreUnavailable(
                    f"sqlite {self.path}: schema version {version} is newer than this "
                    f"sipwire knows ({len(self.migrations)})"
                )
            for statements in self.migrations[version:]:
                for statement in statements:
                    conn.execute(statement)
            if version < len(self.migrations):
                conn.execute("DELETE FROM schema_version")
                conn.execute(
                    "INSERT INTO schema_version (version) VALUES (?)", (len(self.migrations),)
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    async def close(self) -> None:
        db, self._db, self._run = self._db, None, None
        if db is not None:
            await db.close()

    async def ping(self) -> bool:
        try:
            await self._call(lambda conn: conn.execute("SELECT 1").fetchone())
        except StoreUnavailable:
            return False
        return True

    async def schema_version(self) -> int:
        """The schema version recorded in the file."""
        row = await self._call(
            lambda conn: conn.execute("SELECT max(version) FROM schema_version").fetchone()
        )
        return int(row[0] or 0)

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(connection, *args)`` on the connection's thread."""
        db, run = self._db, self._run
        if db is None or run is None:
            raise RuntimeError("SqliteStore is not open")
        try:
            return cast(T, await run(_with_connection, db, fn, *args))
        except sqlite3.DatabaseError as exc:
            # "database is locked" past busy_timeout, I/O errors, a full disk, corruption.
            raise StoreUnavailable(f"sqlite {self.path}: {exc}") from exc

    # -- bindings ------------------------------------------------------------------------

    async def bindings(self, aor: str, now: float) -> list[Binding]:
        return await self._call(_bindings, aor, now)

    async def apply(self, aor: str, change: BindingChange, now: float) -> list[Binding]:
        rows = [(aor, b.key, b.expires_at, encode_binding(b)) for b in latest_upserts(aor, change)]
        return await self._call(_apply, aor, change, rows, now)

    async def aors(self, now: float, limit: int = 1000) -> list[str]:
        rows = await self._call(_fetchall, _SQL_AORS, (now, limit))
        return [row[0] for row in rows]

    async def purge(self, now: float) -> int:
        self._forget_nonces(time.time())
        return await self._call(_purge, now)

    # -- users ---------------------------------------------------------------------------

    async def put_user(self, user: User) -> None:
        await self._call(_execute, _SQL_PUT_USER, (user.domain, user.name, encode_ha1(user.ha1)))

    async def get_user(self, name: str, domain: str) -> User | None:
        rows = await self._call(_fetchall, _SQL_GET_USER, (domain, name))
        return User(name, domain, decode_ha1(rows[0][0])) if rows else None

    async def delete_user(self, name: str, domain: str) -> bool:
        return await self._call(_execute, _SQL_DELETE_USER, (domain, name)) > 0

    async def users(self, domain: str | None = None) -> list[User]:
        if domain is None:
            rows = await self._call(_fetchall, _SQL_USERS, ())
        else:
            rows = await self._call(_fetchall, _SQL_USERS_OF, (domain,))
        return [User(name, dom, decode_ha1(ha1)) for dom, name, ha1 in rows]

    # -- nonce counts (in memory, see the module docstring) ------------------------------

    async def use_nonce_count(self, nonce: str, nc: int, expires_at: float) -> bool:
        nonces = self._nonces
        now = time.time()
        seen = nonces.get(nonce)
        if seen is not None and seen[1] > now and nc <= seen[0]:
            nonces.move_to_end(nonce)
            return False
        nonces[nonce] = (nc, expires_at)
        nonces.move_to_end(nonce)
        while len(nonces) > self.nonce_capacity:
            nonces.popitem(last=False)
        # The least recently used entries are the likeliest to have expired.
        while nonces:
            oldest = next(iter(nonces.values()))
            if oldest[1] > now:
                break
            nonces.popitem(last=False)
        return True

    async def secret(self, name: str) -> bytes:
        # In memory with the nonce counts it protects (see LocationStore.secret).
        found = self._secrets.get(name)
        if found is None:
            found = self._secrets[name] = secrets.token_bytes(32)
        return found

    def _forget_nonces(self, now: float) -> None:
        for nonce in [n for n, (_, expires_at) in self._nonces.items() if expires_at <= now]:
            del self._nonces[nonce]


# -- what runs on the connection's thread ------------------------------------------------


def _with_connection(db: aiosqlite.Connection, fn: Callable[..., T], *args: Any) -> T:
    return fn(db._conn, *args)


def _fetchall(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> list[Any]:
    return conn.execute(sql, params).fetchall()


def _execute(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> int:
    return conn.execute(sql, params).rowcount


def _bindings(conn: sqlite3.Connection, aor: str, now: float) -> list[Binding]:
    return [decode_binding(aor, data) for (data,) in conn.execute(_SQL_BINDINGS, (aor, now))]


def _apply(
    conn: sqlite3.Connection,
    aor: str,
    change: BindingChange,
    rows: list[tuple[str, str, float, str]],
    now: float,
) -> list[Binding]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        if change.remove_all:
            conn.execute(_SQL_REMOVE_ALL, (aor,))
        elif change.remove:
            conn.executemany(_SQL_REMOVE, [(aor, key) for key in change.remove])
        if rows:
            conn.executemany(_SQL_UPSERT, rows)
        conn.execute(_SQL_PRUNE, (aor, now))
        result = [decode_binding(aor, data) for (data,) in conn.execute(_SQL_BINDINGS, (aor, now))]
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


def _purge(conn: sqlite3.Connection, now: float) -> int:
    return conn.execute(_SQL_PURGE, (now,)).rowcount
