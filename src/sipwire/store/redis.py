"""The location store on Redis (``redis.asyncio``), for several registrar nodes.

Layout (every key starts with the prefix, ``sipwire:`` unless the URL says
``?prefix=...``; several deployments or test runs can share one database)::

    {prefix}b:{aor}    hash    binding key → the binding as compact JSON
    {prefix}e:{aor}    zset    binding key → expires_at
    {prefix}aors       zset    aor → its latest expires_at        (for aors())
    {prefix}exp        zset    "{aor}\\0{key}" → expires_at        (for purge())
    {prefix}u:{domain} hash    user name → HA1s as JSON
    {prefix}domains    set     domains that have (or had) users
    {prefix}n:{nonce}  string  highest nc used with the nonce, with a TTL
    {prefix}s:{name}   string  a secret (hex), made by the first node that asks

``apply`` is one Lua script (EVALSHA, loaded on first use): it removes, upserts,
prunes the AOR's expired bindings, sets the TTL of the AOR's two keys to its
latest expiry (so Redis deletes an AOR whose bindings all expired by itself)
and returns the remaining bindings, atomically. TTLs are relative
(``expires_at - now``), so a node's clock and the Redis server's need not agree.
``purge`` walks ``exp`` (also a script) to delete bindings that expired on
AORs that still have live ones, and to drop index entries of AORs Redis
already expired. ``use_nonce_count`` is a compare-and-set script.

Scripts build the ``b:``/``e:`` key names of other AORs in ``purge``, so this
works on one Redis server (with replicas or Sentinel), not on Redis Cluster.

Durability is the server's: ``apply`` returns once Redis acknowledged the
script. Redis without persistence loses everything when it restarts; with
``appendonly yes`` and ``appendfsync always`` an acknowledged apply survives
even ``kill -9`` of the server (``everysec`` may lose the last second).

Failures: a refused or lost connection, or no answer within ``timeout``
(default 1 s, ``?timeout=`` in the URL), raises
:class:`StoreUnavailable`, as do a server that is loading its data, is a
read-only replica, or is out of memory. A broken pooled connection (Redis
restarted) is retried once on a fresh one.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from collections.abc import Sequence
from typing import Any, Final

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import (
    ConnectionError as RedisConnectionError,
)
from redis.exceptions import (
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
)
from redis.exceptions import (
    TimeoutError as RedisTimeoutError,
)

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

__all__ = ["RedisStore"]

DEFAULT_PREFIX: Final = "sipwire:"

# KEYS: b:{aor}, e:{aor}, aors, exp. ARGV: aor, now, remove_all (0/1), number of keys to
# remove, those keys, then (key, expires_at, json) per upsert. Returns the AOR's bindings.
_APPLY: Final = """
local hash, zset, index, expiry = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local aor, now = ARGV[1], tonumber(ARGV[2])
local function drop(keys)
  for _, key in ipairs(keys) do
    redis.call('HDEL', hash, key)
    redis.call('ZREM', zset, key)
    redis.call('ZREM', expiry, aor .. '\\0' .. key)
  end
end
if ARGV[3] == '1' then drop(redis.call('ZRANGE', zset, 0, -1)) end
local n = tonumber(ARGV[4])
drop({unpack(ARGV, 5, 4 + n)})
for i = 5 + n, #ARGV, 3 do
  local key, expires_at = ARGV[i], ARGV[i + 1]
  redis.call('HSET', hash, key, ARGV[i + 2])
  redis.call('ZADD', zset, expires_at, key)
  redis.call('ZADD', expiry, expires_at, aor .. '\\0' .. key)
end
drop(redis.call('ZRANGEBYSCORE', zset, '-inf', now))
local last = redis.call('ZRANGE', zset, -1, -1, 'WITHSCORES')
if #last == 0 then
  redis.call('DEL', hash, zset)
  redis.call('ZREM', index, aor)
  return {}
end
local ttl = string.format('%d', math.ceil((tonumber(last[2]) - now) * 1000))
redis.call('PEXPIRE', hash, ttl)
redis.call('PEXPIRE', zset, ttl)
redis.call('ZADD', index, last[2], aor)
return redis.call('HVALS', hash)
"""

# KEYS: aors, exp. ARGV: now, prefix, batch size. Deletes up to a batch of expired
# bindings; returns how many index entries it removed.
_PURGE: Final = """
local index, expiry = KEYS[1], KEYS[2]
local now, prefix = ARGV[1], ARGV[2]
local members = redis.call('ZRANGEBYSCORE', expiry, '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local touched = {}
for _, member in ipairs(members) do
  local cut = string.find(member, '\\0', 1, true)
  local aor, key = string.sub(member, 1, cut - 1), string.sub(member, cut + 1)
  redis.call('HDEL', prefix .. 'b:' .. aor, key)
  redis.call('ZREM', prefix .. 'e:' .. aor, key)
  redis.call('ZREM', expiry, member)
  touched[aor] = true
end
for aor in pairs(touched) do
  if redis.call('ZCARD', prefix .. 'e:' .. aor) == 0 then
    redis.call('DEL', prefix .. 'b:' .. aor)
    redis.call('ZREM', index, aor)
  end
end
redis.call('ZREMRANGEBYSCORE', index, '-inf', now)
return #members
"""

# KEYS: n:{nonce}. ARGV: nc, TTL in ms. 1 when nc is greater than every nc seen, else 0.
_NONCE: Final = """
local seen = redis.call('GET', KEYS[1])
if seen and tonumber(seen) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

_PURGE_BATCH = 1000


def _unavailable_response(exc: ResponseError) -> bool:
    """Errors with which a server refuses work it would do another time."""
    if isinstance(exc, OutOfMemoryError | ReadOnlyError):
        return True
    return str(exc).startswith(("LOADING", "MISCONF", "MASTERDOWN", "BUSY", "TRYAGAIN"))


class RedisStore(LocationStore):
    """Bindings, users and nonce counts in Redis (see the module docstring).

    Args:
        url: ``redis://[user:password@]host:port/db`` or ``rediss://...``, with
            redis-py's query options (``max_connections`` ...), ``prefix``
            (default ``sipwire:``) and ``timeout``.
        timeout: seconds a call may take (connecting included) before
            StoreUnavailable; ``?timeout=`` in the URL overrides it.
    """

    def __init__(self, url: str, *, prefix: str | None = None, timeout: float = 1.0) -> None:
        self.url = redact(url)
        self._client_url, options = pop_query(url, ["prefix", "timeout"])
        self.prefix = prefix if prefix is not None else options.get("prefix", DEFAULT_PREFIX)
        self.timeout = float(options.get("timeout", timeout))
        self._redis: Redis | None = None
        self._scripts: dict[str, AsyncScript] = {}
        self._aors_key = f"{self.prefix}aors"
        self._exp_key = f"{self.prefix}exp"
        self._domains_key = f"{self.prefix}domains"

    def __repr__(self) -> str:
        return f"RedisStore({self.url!r}, prefix={self.prefix!r})"

    # -- lifecycle ---------------------------------------------------------------------

    async def open(self) -> None:
        if self._redis is not None:
            return
        client = Redis.from_url(
            self._client_url,
            decode_responses=True,
            # Reads are bounded by _guard's asyncio.timeout, cheaper than redis-py's
            # per-read socket_timeout (a task per read and per write).
            socket_timeout=None,
            socket_connect_timeout=self.timeout,
            # One immediate retry on a fresh connection: after a Redis restart every
            # pooled connection is dead, the retry finds the server (or fails fast).
            retry=Retry(NoBackoff(), 1, (RedisConnectionError,)),
        )
        self._redis = client
        self._scripts = {
            "apply": client.register_script(_APPLY),
            "purge": client.register_script(_PURGE),
            "nonce": client.register_script(_NONCE),
        }
        try:
            await self._guard(client.ping())
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        client, self._redis = self._redis, None
        if client is not None:
            await client.aclose()

    async def ping(self) -> bool:
        try:
            await self._guard(self._client().ping())
        except StoreUnavailable:
            return False
        return True

    def _client(self) -> Redis:
        if self._redis is None:
            raise RuntimeError("RedisStore is not open")
        return self._redis

    async def _script(self, name: str, keys: Sequence[str], args: Sequence[str | float]) -> Any:
        """Run one of the Lua scripts (EVALSHA; loaded again if Redis forgot it)."""
        client = self._client()
        return await self._guard(self._scripts[name](keys=keys, args=args, client=client))

    async def _guard(self, awaitable: Any) -> Any:
        """Await a Redis call, turning "Redis is not there" into StoreUnavailable."""
        try:
            async with asyncio.timeout(self.timeout):
                return await awaitable
        except (TimeoutError, RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise StoreUnavailable(f"redis {self.url}: {exc or type(exc).__name__}") from exc
        except ResponseError as exc:
            if _unavailable_response(exc):
                raise StoreUnavailable(f"redis {self.url}: {exc}") from exc
            raise

    # -- bindings ------------------------------------------------------------------------

    async def bindings(self, aor: str, now: float) -> list[Binding]:
        values = await self._guard(self._client().hvals(f"{self.prefix}b:{aor}"))
        found = [decode_binding(aor, value) for value in values]
        return [b for b in found if b.expires_at > now]

    async def apply(self, aor: str, change: BindingChange, now: float) -> list[Binding]:
        args: list[str | float] = [
            aor,
            repr(float(now)),
            1 if change.remove_all else 0,
            len(change.remove),
            *change.remove,
        ]
        for binding in latest_upserts(aor, change):
            args += (binding.key, repr(float(binding.expires_at)), encode_binding(binding))
        keys = [f"{self.prefix}b:{aor}", f"{self.prefix}e:{aor}", self._aors_key, self._exp_key]
        values = await self._script("apply", keys, args)
        return [decode_binding(aor, value) for value in values]

    async def aors(self, now: float, limit: int = 1000) -> list[str]:
        found = await self._guard(
            self._client().zrangebyscore(self._aors_key, f"({now!r}", "+inf", 0, limit)
        )
        return list(found)

    async def purge(self, now: float) -> int:
        removed = 0
        keys = [self._aors_key, self._exp_key]
        args: list[str | float] = [repr(float(now)), self.prefix, _PURGE_BATCH]
        while True:
            count = int(await self._script("purge", keys, args))
            removed += count
            if count < _PURGE_BATCH:
                return removed

    # -- users ---------------------------------------------------------------------------

    async def put_user(self, user: User) -> None:
        async with self._client().pipeline(transaction=True) as pipe:
            pipe.hset(f"{self.prefix}u:{user.domain}", user.name, encode_ha1(user.ha1))
            pipe.sadd(self._domains_key, user.domain)
            await self._guard(pipe.execute())

    async def get_user(self, name: str, domain: str) -> User | None:
        ha1 = await self._guard(self._client().hget(f"{self.prefix}u:{domain}", name))
        return None if ha1 is None else User(name, domain, decode_ha1(ha1))

    async def delete_user(self, name: str, domain: str) -> bool:
        removed = await self._guard(self._client().hdel(f"{self.prefix}u:{domain}", name))
        return int(removed) > 0

    async def users(self, domain: str | None = None) -> list[User]:
        client = self._client()
        if domain is None:
            domains = sorted(await self._guard(client.smembers(self._domains_key)))
        else:
            domains = [domain]
        async with client.pipeline(transaction=False) as pipe:
            for name in domains:
                pipe.hgetall(f"{self.prefix}u:{name}")
            tables = await self._guard(pipe.execute())
        return [
            User(name, dom, decode_ha1(ha1))
            for dom, table in zip(domains, tables, strict=True)
            for name, ha1 in sorted(table.items())
        ]

    # -- nonce counts --------------------------------------------------------------------

    async def use_nonce_count(self, nonce: str, nc: int, expires_at: float) -> bool:
        # The record lives until the nonce expires (by this node's clock), at least 1 s.
        ttl_ms = max(1000, math.ceil((expires_at - time.time()) * 1000))
        used = await self._script("nonce", [f"{self.prefix}n:{nonce}"], [nc, ttl_ms])
        return int(used) == 1

    # -- secrets -------------------------------------------------------------------------

    async def secret(self, name: str) -> bytes:
        key = f"{self.prefix}s:{name}"
        client = self._client()
        # SET NX: the first node to ask makes it; everyone reads the same one.
        await self._guard(client.set(key, secrets.token_hex(32), nx=True))
        value = await self._guard(client.get(key))
        if value is None:
            raise StoreUnavailable(f"redis {self.url}: secret {name!r} vanished")
        return bytes.fromhex(value)
