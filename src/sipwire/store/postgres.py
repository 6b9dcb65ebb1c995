"""The location store on PostgreSQL (asyncpg), for several registrar nodes.

Schema (created or migrated by ``open()``, see :data:`MIGRATIONS`):
``bindings (aor, key, expires_at, data jsonb)`` keyed ``(aor, key)``,
``users (domain, name, ha1 jsonb)``, ``nonces (nonce, nc, expires_at)``,
``secrets (name, value)``, the function ``sipwire_apply`` and
``schema_version``. With ``?schema=NAME`` in the URL everything lives in that
schema (created if missing; tests use a fresh one each).

``apply`` is one call of ``sipwire_apply``, a PL/pgSQL function, so one round
trip and one transaction: it takes a transaction-scoped advisory lock on the
AOR (``pg_advisory_xact_lock`` of a 64-bit hash of it), so applies to the same
AOR from any number of nodes run one after the other, even when the AOR has
no row yet to lock (which ``SELECT ... FOR UPDATE`` could not do); then it
deletes, upserts and returns the AOR's unexpired bindings. Applies to other
AORs do not wait (two AORs whose hashes collide only share a lock).
``use_nonce_count`` is one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE nc <
new RETURNING``, atomic without a lock.

Durability is the server's: ``apply`` returns once the transaction committed
(with the server's default ``synchronous_commit = on``, flushed to its WAL).

Failures: a refused or lost connection, a server shutting down or starting
up, too many connections, or no answer within ``command_timeout`` (default
1.5 s; ``connect_timeout`` for a new connection, 1.5 s) raise
:class:`StoreUnavailable`. After a lost connection the pool's connections are
all replaced and the operation is tried once more, so the first call after a
database restart succeeds. (A retried ``use_nonce_count`` whose first try did
commit answers False: the client is challenged again, nothing worse.)
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

import asyncpg

from sipwire.registrar.model import Binding, BindingChange, User
from sipwire.store.base import LocationStore, StoreUnavailable
from sipwire.store.common import (
    decode_binding,
    decode_ha1,
    encode_binding,
    encode_ha1,
    latest_upserts,
    pop_query,
    redact,
)

__all__ = ["MIGRATIONS", "PostgresStore"]

T = TypeVar("T")

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    # 1: bindings, users, nonces, and the apply function.
    (
        """CREATE TABLE IF NOT EXISTS bindings (
            aor text NOT NULL,
            key text NOT NULL,
            expires_at double precision NOT NULL,
            data jsonb NOT NULL,
            PRIMARY KEY (aor, key)
        )""",
        "CREATE INDEX IF NOT EXISTS bindings_expires_at ON bindings (expires_at)",
        """CREATE TABLE IF NOT EXISTS users (
            domain text NOT NULL,
            name text NOT NULL,
            ha1 jsonb NOT NULL,
            PRIMARY KEY (domain, name)
        )""",
        """CREATE TABLE IF NOT EXISTS nonces (
            nonce text PRIMARY KEY,
            nc bigint NOT NULL,
            expires_at double precision NOT NULL
        )""",
        """CREATE OR REPLACE FUNCTION sipwire_apply(
            p_aor text, p_now double precision, p_remove_all boolean, p_remove text[],
            p_keys text[], p_expires double precision[], p_data text[]
        ) RETURNS SETOF text LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_advisory_xact_lock(hashtextextended('sipwire-aor:' || p_aor, 0));
            IF p_remove_all THEN
                DELETE FROM bindings WHERE aor = p_aor;
            ELSIF cardinality(p_remove) > 0 THEN
                DELETE FROM bindings WHERE aor = p_aor AND key = ANY (p_remove);
            END IF;
            INSERT INTO bindings (aor, key, expires_at, data)
                SELECT p_aor, u.k, u.e, u.d::jsonb
                FROM unnest(p_keys, p_expires, p_data) AS u(k, e, d)
                ON CONFLICT (aor, key)
                DO UPDATE SET expires_at = EXCLUDED.expires_at, data = EXCLUDED.data;
            DELETE FROM bindings WHERE aor = p_aor AND expires_at <= p_now;
            RETURN QUERY
                SELECT b.data::text FROM bindings b WHERE b.aor = p_aor AND b.expires_at > p_now;
        END
        $$""",
    ),
    # 2: secrets shared by the nodes (the nonce-signing key, LocationStore.secret).
    ("CREATE TABLE IF NOT EXISTS secrets (name text PRIMARY KEY, value bytea NOT NULL)",),
)
"""Schema migrations: entry ``i`` takes the schema from version ``i`` to ``i + 1``.

A change appends an entry (never edits one). ``open()`` runs the missing ones
in one transaction under an advisory lock, so nodes starting together migrate
once, and records the version in ``schema_version``.
"""

_MIGRATION_LOCK = 0x5157_0001  # pg_advisory_xact_lock key held while migrating
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

_SQL_APPLY = "SELECT sipwire_apply($1, $2, $3, $4, $5, $6, $7)"
_SQL_BINDINGS = "SELECT data::text FROM bindings WHERE aor = $1 AND expires_at > $2"
_SQL_AORS = "SELECT DISTINCT aor FROM bindings WHERE expires_at > $1 LIMIT $2"
_SQL_PURGE = "DELETE FROM bindings WHERE expires_at <= $1"
_SQL_PURGE_NONCES = "DELETE FROM nonces WHERE expires_at <= $1"
_SQL_PUT_USER = (
    "INSERT INTO users (domain, name, ha1) VALUES ($1, $2, $3::jsonb) "
    "ON CONFLICT (domain, name) DO UPDATE SET ha1 = EXCLUDED.ha1"
)
_SQL_GET_USER = "SELECT ha1::text FROM users WHERE domain = $1 AND name = $2"
_SQL_DELETE_USER = "DELETE FROM users WHERE domain = $1 AND name = $2"
_SQL_USERS = "SELECT domain, name, ha1::text FROM users ORDER BY domain, name"
_SQL_USERS_OF = "SELECT domain, name, ha1::text FROM users WHERE domain = $1 ORDER BY name"
_SQL_PUT_SECRET = "INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING"
_SQL_GET_SECRET = "SELECT value FROM secrets WHERE name = $1"
_SQL_NONCE = (
    "INSERT INTO nonces (nonce, nc, expires_at) VALUES ($1, $2, $3) "
    "ON CONFLICT (nonce) DO UPDATE SET nc = EXCLUDED.nc, expires_at = EXCLUDED.expires_at "
    "WHERE nonces.nc < EXCLUDED.nc RETURNING 1"
)

# Errors that say "the database is not there (now)", not "the query is wrong".
_LOST = (
    OSError,
    asyncpg.PostgresConnectionError,  # 08xxx, and the connection closing under a query
    asyncpg.InterfaceError,  # "connection is closed"
    asyncpg.exceptions.OperatorInterventionError,  # 57xxx: shutting down, starting up
    asyncpg.exceptions.InsufficientResourcesError,  # 53xxx: too many connections, disk full
)


async def _keep_session(conn: Any) -> None:
    """Skip asyncpg's reset of a connection going back to the pool (``RESET ALL``,
    ``UNLISTEN *`` ...: one more round trip per call). Nothing here changes session
    state: locks are transaction-scoped, the search_path is a startup setting, and
    asyncpg still rolls back a transaction left open."""


class PostgresStore(LocationStore):
    """Bindings, users and nonce counts in PostgreSQL (see the module docstring).

    Args:
        url: ``postgresql://user[:password]@host[:port]/database`` with libpq
            style options, plus ``schema=NAME``.
        min_size, max_size: the connection pool's bounds. With ``min_size`` 0 (the
            default) connections are made when needed and kept while used (closed
            after 5 idle minutes), and nothing reconnects in the background (and
            logs) while the database is down.
        command_timeout: seconds a statement may take before StoreUnavailable.
        connect_timeout: seconds to open a connection.
    """

    migrations: tuple[tuple[str, ...], ...] = MIGRATIONS

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        min_size: int = 0,
        max_size: int = 4,
        command_timeout: float = 1.5,
        connect_timeout: float = 1.5,
    ) -> None:
        self.url = redact(url)
        self._dsn, options = pop_query(url, ["schema"])
        self.schema = schema if schema is not None else options.get("schema")
        if self.schema is not None and not _SCHEMA_NAME.match(self.schema):
            raise ValueError(f"schema {self.schema!r}: use letters, digits and _ only")
        self.min_size = min_size
        self.max_size = max_size
        self.command_timeout = command_timeout
        self.connect_timeout = connect_timeout
        self._pool: Any = None

    def __repr__(self) -> str:
        return f"PostgresStore({self.url!r}, schema={self.schema!r})"

    # -- lifecycle ---------------------------------------------------------------------

    async def open(self) -> None:
        if self._pool is not None:
            return
        settings = {"application_name": "sipwire"}
        if self.schema is not None:
            settings["search_path"] = self.schema
        try:
            self._pool = await asyncpg.create_pool(
                self._dsn,
                min_size=self.min_size,
                max_size=self.max_size,
                command_timeout=self.command_timeout,
                timeout=self.connect_timeout,
                server_settings=settings,
                reset=_keep_session,
            )
        except asyncpg.ClientConfigurationError:
            raise
        except (TimeoutError, *_LOST) as exc:
            raise StoreUnavailable(f"postgres {self.url}: {exc!r}") from exc
        try:
            await self._call(self._migrate)
        except BaseException:
            await self.close()
            raise

    async def _migrate(self, conn: Any) -> None:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            if self.schema is not None:
                await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)"
            )
            version = await conn.fetchval("SELECT max(version) FROM schema_version") or 0
            if version > len(self.migrations):
                raise StoreUnavailable(
                    f"postgres {self.url}: schema version {version} is newer than this "
                    f"sipwire knows ({len(self.migrations)})"
                )
            for statements in self.migrations[version:]:
                for statement in statements:
                    await conn.execute(statement)
            if version < len(self.migrations):
                await conn.execute("DELETE FROM schema_version")
                await conn.execute(
                    "INSERT INTO schema_version (version) VALUES ($1)", len(self.migrations)
                )

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), self.command_timeout + 1)
            except (TimeoutError, *_LOST):
                pool.terminate()

    async def ping(self) -> bool:
        try:
            await self._call(lambda conn: conn.fetchval("SELECT 1"))
        except StoreUnavailable:
            return False
        return True

    async def schema_version(self) -> int:
        """The schema version recorded in the database."""
        return int(
            await self._call(lambda c: c.fetchval("SELECT max(version) FROM schema_version"))
        )

    async def _call(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        """Run ``fn(connection)`` on a pooled connection; StoreUnavailable when the
        database is not there. A lost connection is retried once on a new one."""
        pool = self._pool
        if pool is None:
            raise RuntimeError("PostgresStore is not open")
        for attempt in (1, 2):
            conn: Any = None
            try:
                conn = await pool.acquire(timeout=self.connect_timeout)
                return await fn(conn)
            except asyncpg.ClientConfigurationError:
                raise
            except TimeoutError as exc:  # (before _LOST: TimeoutError is an OSError)
                if conn is not None:
                    # Its query may still run, and asyncpg would wait for the server to
                    # take the cancel request: close it now instead.
                    with contextlib.suppress(asyncpg.InterfaceError):  # already released
                        conn.terminate()
                raise StoreUnavailable(f"postgres {self.url}: no answer in time") from exc
            except _LOST as exc:
                if attempt == 1 and not isinstance(exc, ConnectionRefusedError):
                    # The server restarted, or the network dropped: every pooled
                    # connection is likely dead; replace them all, try once more.
                    await pool.expire_connections()
                    continue
                raise StoreUnavailable(f"postgres {self.url}: {exc}") from exc
            finally:
                if conn is not None:
                    # A connection that fails to go back is terminated by asyncpg.
                    with contextlib.suppress(TimeoutError, *_LOST):
                        await pool.release(conn)
        raise AssertionError("unreachable")

    # -- bindings ------------------------------------------------------------------------

    async def bindings(self, aor: str, now: float) -> list[Binding]:
        rows = await self._call(lambda conn: conn.fetch(_SQL_BINDINGS, aor, now))
        return [decode_binding(aor, row[0]) for row in rows]

    async def apply(self, aor: str, change: BindingChange, now: float) -> list[Binding]:
        upserts = latest_upserts(aor, change)
        args = (
            aor,
            now,
            change.remove_all,
            list(change.remove),
            [b.key for b in upserts],
            [b.expires_at for b in upserts],
            [encode_binding(b) for b in upserts],
        )
        rows = await self._call(lambda conn: conn.fetch(_SQL_APPLY, *args))
        return [decode_binding(aor, row[0]) for row in rows]

    async def aors(self, now: float, limit: int = 1000) -> list[str]:
        rows = await self._call(lambda conn: conn.fetch(_SQL_AORS, now, limit))
        return [row[0] for row in rows]

    async def purge(self, now: float) -> int:
        async def purge(conn: Any) -> int:
            status = await conn.execute(_SQL_PURGE, now)
            await conn.execute(_SQL_PURGE_NONCES, now)
            return int(status.rpartition(" ")[2])

        return await self._call(purge)

    # -- users ---------------------------------------------------------------------------

    async def put_user(self, user: User) -> None:
        ha1 = encode_ha1(user.ha1)
        await self._call(lambda conn: conn.execute(_SQL_PUT_USER, user.domain, user.name, ha1))

    async def get_user(self, name: str, domain: str) -> User | None:
        ha1 = await self._call(lambda conn: conn.fetchval(_SQL_GET_USER, domain, name))
        return None if ha1 is None else User(name, domain, decode_ha1(ha1))

    async def delete_user(self, name: str, domain: str) -> bool:
        status = await self._call(lambda conn: conn.execute(_SQL_DELETE_USER, domain, name))
        return bool(status != "DELETE 0")

    async def users(self, domain: str | None = None) -> list[User]:
        if domain is None:
            rows = await self._call(lambda conn: conn.fetch(_SQL_USERS))
        else:
            rows = await self._call(lambda conn: conn.fetch(_SQL_USERS_OF, domain))
        return [User(row[1], row[0], decode_ha1(row[2])) for row in rows]

    # -- nonce counts --------------------------------------------------------------------

    async def use_nonce_count(self, nonce: str, nc: int, expires_at: float) -> bool:
        used = await self._call(lambda conn: conn.fetchval(_SQL_NONCE, nonce, nc, expires_at))
        return used is not None

    # -- secrets -------------------------------------------------------------------------

    async def secret(self, name: str) -> bytes:
        async def get_or_make(conn: Any) -> bytes:
            # Two statements: under READ COMMITTED the SELECT sees the row another
            # node inserted while this INSERT waited on it.
            await conn.execute(_SQL_PUT_SECRET, name, secrets.token_bytes(32))
            return bytes(await conn.fetchval(_SQL_GET_SECRET, name))

        return await self._call(get_or_make)
