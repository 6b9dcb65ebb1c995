"""Fixtures of the store tests: the database servers (see ``servers.py``)."""

from tests.store.servers import postgres_server, redis_server

__all__ = ["postgres_server", "redis_server"]
