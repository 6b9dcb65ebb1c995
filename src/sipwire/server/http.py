"""A minimal HTTP/1.1 responder on its own port: ``/metrics`` and ``/health``.

No framework: one request per connection (``Connection: close``), which is
all Prometheus and load-balancer health checks need.

- ``GET /metrics``: the Prometheus text exposition (``metrics.py``);
- ``GET /health``: 200 ``ok`` when the store answers ``ping()`` within the
  timeout, 503 otherwise;
- ``HEAD`` of either: the same without the body; another method on them
  405; any other path 404.

Bounded: at most ``max_connections`` connections at once (more are closed at
once), a request head of at most ``max_request`` bytes (else 431), and
``timeout`` seconds to send it (else the connection is closed). Request
bodies are not read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from sipwire.server.metrics import Metrics

__all__ = ["HttpServer"]

log = logging.getLogger("sipwire.http")

_REASONS: Final = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}
_METRICS_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
_TEXT: Final = "text/plain; charset=utf-8"


class HttpServer:
    """Serves /metrics from ``metrics`` and /health from ``health()`` (True: healthy)."""

    def __init__(
        self,
        metrics: Metrics,
        health: Callable[[], Awaitable[bool]],
        *,
        max_connections: int = 32,
        max_request: int = 8192,
        timeout: float = 5.0,
    ) -> None:
        self.metrics = metrics
        self.health = health
        self.max_connections = max_connections
        self.max_request = max_request
        self.timeout = timeout
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()
        self.address: tuple[str, int] | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen on ``host:port`` (0: a free port); return the bound address."""
        self._server = await asyncio.start_server(
            self._accepted, host, port, limit=self.max_request, reuse_address=True
        )
        sockname = self._server.sockets[0].getsockname()
        self.address = (str(sockname[0]), int(sockname[1]))
        return self.address

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for task in list(self._clients):
            task.cancel()
        if self._clients:
            await asyncio.wait(list(self._clients), timeout=2.0)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0):
                await server.wait_closed()

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._clients) >= self.max_connections:
            writer.transport.abort()
            return
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, TimeoutError, asyncio.CancelledError):
            writer.transport.abort()  # a peer that does not read: no waiting for it
        except Exception:
            log.exception("HTTP request failed")
        finally:
            self._clients.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                head = await reader.readuntil(b"\r\n\r\n")
        except TimeoutError:
            return
        except asyncio.IncompleteReadError:
            return  # closed before a whole head
        except asyncio.LimitOverrunError:
            await self._send(writer, 431, b"request too large\n")
            return
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            await self._send(writer, 400, b"bad request\n")
            return
        method, target = parts[0], parts[1]
        path = target.split("?", 1)[0]
        if path not in ("/metrics", "/health"):
            await self._send(writer, 404, b"not found\n", head_only=method == "HEAD")
            return
        if method not in ("GET", "HEAD"):
            await self._send(writer, 405, b"use GET\n", extra=(("Allow", "GET, HEAD"),))
            return
        head_only = method == "HEAD"
        if path == "/metrics":
            await self._send(writer, 200, self.metrics.render(), _METRICS_TYPE, head_only=head_only)
            return
        try:
            healthy = await asyncio.wait_for(self.health(), self.timeout)
        except TimeoutError:
            healthy = False
        if healthy:
            await self._send(writer, 200, b"ok\n", head_only=head_only)
        else:
            await self._send(writer, 503, b"store unavailable\n", head_only=head_only)

    async def _send(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        content_type: str = _TEXT,
        *,
        head_only: bool = False,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> None:
        lines = [
            f"HTTP/1.1 {status} {_REASONS[status]}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
            "Cache-Control: no-store",
            "Connection: close",
            *(f"{name}: {value}" for name, value in extra),
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if not head_only:
            writer.write(body)
        async with asyncio.timeout(self.timeout):
            await writer.drain()
