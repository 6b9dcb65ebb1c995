"""Micro-benchmark: the location store's share of a REGISTER, in µs per cycle.

One cycle is what the registrar asks of its store for an authenticated REGISTER:
``use_nonce_count`` (the digest replay check), ``bindings(aor)`` (the AOR's
current bindings, for the §10.3 checks) and ``apply(aor, upsert one binding)``.
5,000 cycles over 500 AORs (each refreshes its binding ten times), run first
one at a time (the latency a REGISTER waits) and then from several tasks at
once (what a busy registrar gets through). Each is run ``--repeat`` times on a
fresh namespace and the best run is printed (the others are noise from
whatever else the machine does).

redis-server and PostgreSQL are started on loopback as the tests do
(``tests/store/servers.py``: Redis without persistence unless
``--redis-aof``, PostgreSQL with ``fsync=off`` unless ``--pg-fsync``), or
given with ``--redis URL`` / ``--postgres URL``. SQLite writes a file in a
temporary directory (WAL, ``synchronous=NORMAL`` unless ``--sqlite-sync FULL``).

    .venv/bin/python bench/store.py [--cycles 5000] [--concurrency 16] [--repeat 3]
        [--backend sqlite redis postgres] [--loop asyncio|uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.store.servers

from sipwire.registrar.model import Binding, BindingChange
from sipwire.store import LocationStore, open_store
from tests.store.servers import PostgresServer, RedisServer

AORS = 500


def register(n: int, round_: int, phase: str, now: float) -> tuple[str, BindingChange, str]:
    """The AOR, change and nonce of the ``round_``-th REGISTER of phone ``n``."""
    aor = f"sip:user{n}@example.com"
    binding = Binding(
        aor=aor,
        contact=f"<sip:user{n}@198.51.100.{n % 250}:5060;transport=tcp>;expires=3600",
        key=f"sip:user{n}@198.51.100.{n % 250}:5060;transport=tcp",
        expires_at=now + 3600,
        call_id=f"{n:08x}-reg@198.51.100.{n % 250}",
        cseq=round_,
        transport="tcp",
        source=f"198.51.100.{n % 250}:{40000 + n}",
        local="203.0.113.1:5060",
        node="bench",
        flow=n,
        user_agent="bench/1.0",
        registered_at=now,
    )
    return aor, BindingChange(upsert=(binding,)), f"{phase}-nonce-{n}"


async def cycle(store: LocationStore, n: int, round_: int, phase: str, now: float) -> None:
    aor, change, nonce = register(n, round_, phase, now)
    if not await store.use_nonce_count(nonce, round_, now + 300):
        raise AssertionError(f"nc {round_} of {nonce} refused")
    await store.bindings(aor, now)
    result = await store.apply(aor, change, now)
    if len(result) != 1:
        raise AssertionError(f"{aor}: {len(result)} bindings")


async def measure(url: str, cycles: int, concurrency: int) -> tuple[float, float]:
    """µs per cycle: one at a time, then ``concurrency`` tasks at once."""
    store = open_store(url)
    await store.open()
    try:
        now = time.time()
        for i in range(200):  # warm up: connections, prepared statements, scripts
            await cycle(store, i % AORS, i // AORS + 1, "warm", now)
        started = time.perf_counter()
        for i in range(cycles):
            await cycle(store, i % AORS, i // AORS + 1, "seq", now)
        sequential = (time.perf_counter() - started) / cycles * 1e6

        # Each task owns some phones: one phone's REGISTERs stay in order, as they do.
        per_task = cycles // concurrency

        async def worker(k: int) -> None:
            phones = range(k, AORS, concurrency)
            for j in range(per_task):
                await cycle(store, phones[j % len(phones)], j // len(phones) + 1, "par", now)

        started = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        concurrent = (time.perf_counter() - started) / (per_task * concurrency) * 1e6
        return sequential, concurrent
    finally:
        await store.close()


@contextlib.contextmanager
def servers(args: argparse.Namespace) -> Iterator[dict[str, Callable[[], str]]]:
    """URL makers per backend (a fresh namespace each), starting servers as needed."""
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sipwire-bench-")))
        urls: dict[str, Callable[[], str]] = {
            "sqlite": lambda: f"sqlite://{tmp / uuid.uuid4().hex}.db?synchronous={args.sqlite_sync}"
        }
        if "redis" in args.backend:
            if args.redis:
                urls["redis"] = lambda: f"{args.redis}?prefix=bench{uuid.uuid4().hex[:8]}:"
            else:
                redis = stack.enter_context(RedisServer(persistent=args.redis_aof))
                urls["redis"] = lambda: redis.url(prefix=f"bench{uuid.uuid4().hex[:8]}:")
        if "postgres" in args.backend:
            if args.postgres:
                urls["postgres"] = lambda: f"{args.postgres}?schema=bench{uuid.uuid4().hex[:8]}"
            else:
                postgres = stack.enter_context(PostgresServer(fsync=args.pg_fsync))
                urls["postgres"] = lambda: postgres.url(schema=f"bench{uuid.uuid4().hex[:8]}")
        yield urls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3, help="runs per backend; the best counts")
    parser.add_argument(
        "--backend",
        nargs="+",
        default=["sqlite", "redis", "postgres"],
        choices=["sqlite", "redis", "postgres"],
    )
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--sqlite-sync", choices=["NORMAL", "FULL"], default="NORMAL")
    parser.add_argument("--redis", metavar="URL", help="an existing Redis (a key prefix is added)")
    parser.add_argument("--redis-aof", action="store_true", help="appendonly, appendfsync always")
    parser.add_argument("--postgres", metavar="URL", help="an existing PostgreSQL")
    parser.add_argument("--pg-fsync", action="store_true", help="start PostgreSQL with fsync=on")
    args = parser.parse_args()

    if args.loop == "uvloop":
        import uvloop

        run: Callable[..., tuple[float, float]] = uvloop.run
    else:
        run = asyncio.run

    settings = {
        "sqlite": f"WAL, synchronous={args.sqlite_sync}",
        "redis": "external"
        if args.redis
        else ("AOF always" if args.redis_aof else "no persistence"),
        "postgres": "external" if args.postgres else f"fsync={'on' if args.pg_fsync else 'off'}",
    }
    print(
        f"{args.cycles} cycles (use_nonce_count + bindings + apply), {args.loop} loop, "
        f"best of {args.repeat}"
    )
    print(f"{'backend':<10} {'settings':<22} {'sequential':>16} {f'{args.concurrency} tasks':>16}")
    with servers(args) as urls:
        for name in args.backend:
            runs = [
                run(measure(urls[name](), args.cycles, args.concurrency))
                for _ in range(args.repeat)
            ]
            sequential = min(r[0] for r in runs)
            concurrent = min(r[1] for r in runs)
            print(
                f"{name:<10} {settings[name]:<22} "
                f"{sequential:9.0f} µs/cycle {concurrent:9.0f} µs/cycle"
                f"   ({1e6 / sequential:,.0f} and {1e6 / concurrent:,.0f} REGISTERs/s)"
            )


if __name__ == "__main__":
    main()
