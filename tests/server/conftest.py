"""Fixtures of the server tests: a ``sipwire serve`` in-process on free loopback ports.

``store_url`` is SQLite in the test's directory unless a test parametrizes
it (``indirect=True``) with ``"redis"`` or ``"postgres"``: then a fresh key
prefix or schema on the session's database server (``tests/conftest.py``).
``start_server(**settings)`` starts a :class:`Server` with UDP and TCP on
free ports, HTTP on a free port, and the users of ``helpers.PASSWORDS``;
every server it started is closed after the test.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from sipwire.server.serve import Server
from tests.server.helpers import PASSWORDS, Running, StartServer, make_config
from tests.store.servers import PostgresServer, RedisServer


def url_for(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A clean namespace on the ``kind`` backend."""
    tag = f"t{uuid.uuid4().hex[:12]}"
    if kind == "sqlite":
        return f"sqlite:{tmp_path / 'data' / 'sipwire.db'}"
    if kind == "redis":
        redis: RedisServer = request.getfixturevalue("redis_server")
        return redis.url(prefix=f"{tag}:")
    postgres: PostgresServer = request.getfixturevalue("postgres_server")
    return postgres.url(schema=tag)


@pytest.fixture
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    kind = getattr(request, "param", "sqlite")
    return url_for(kind, request, tmp_path)


@pytest_asyncio.fixture
async def start_server(tmp_path: Path, store_url: str) -> AsyncIterator[StartServer]:
    servers: list[Server] = []

    async def start(**settings: Any) -> Running:
        (tmp_path / "data").mkdir(exist_ok=True)
        config = make_config(tmp_path, settings.pop("store", store_url), **settings)
        server = Server(config)
        await server.start()
        servers.append(server)
        running = Running(server)
        for name, password in PASSWORDS.items():
            await running.add_user(name, password)
        return running

    try:
        yield start
    finally:
        for server in servers:
            await server.close()


@pytest_asyncio.fixture
async def running(start_server: StartServer) -> Running:
    """A server with the default test settings."""
    return await start_server()
