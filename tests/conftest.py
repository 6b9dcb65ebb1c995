"""Fixtures shared by the test directories: the database servers of the store tests
(``tests/store/servers.py``), used by the store suite and by the registrar server's."""

from tests.store.servers import postgres_server, redis_server

__all__ = ["postgres_server", "redis_server"]
