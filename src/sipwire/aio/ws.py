"""SIP over WebSocket (RFC 7118): subprotocol ``sip``, one SIP message per WebSocket message."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable
from typing import Final, TypedDict

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.connection import Connection as WsProtocolConnection
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.http11 import Request as HttpRequest
from websockets.http11 import Response as HttpResponse
from websockets.typing import Subprotocol

from sipwire.aio.transport_base import (
    Connection,
    Sink,
    TransportConfig,
    TransportError,
    address_pair,
    is_keepalive,
    log,
)
from sipwire.errors import ParseError
from sipwire.message import parse_message

__all__ = ["SUBPROTOCOL", "WsConnection", "open_ws", "serve_ws"]

SUBPROTOCOL: Final = Subprotocol("sip")
"""RFC 7118 §4.1: the WebSocket subprotocol of SIP."""

_CLOSE_TIMEOUT: Final = 2.0

WsHandler = Callable[[ServerConnection], Awaitable[None]]
"""Runs for each accepted WebSocket connection; the connection closes when it returns."""
AcceptCheck = Callable[[tuple[str, int]], bool]
"""Asked with the peer's (host, port) before a WebSocket handshake completes:
False refuses it (HTTP 503). The address is ("", 0) when the peer is gone."""


class WsConnection(Connection):
    """A WebSocket connection carrying SIP (RFC 7118 §5)."""

    def __init__(
        self,
        sink: Sink,
        config: TransportConfig,
        transport: str,
        flow: int,
        ws: WsProtocolConnection,
        *,
        client: bool,
        now: float,
    ) -> None:
        super().__init__(
            sink,
            config,
            transport,
            flow,
            address_pair(ws.remote_address),
            address_pair(ws.local_address),
            client=client,
            now=now,
        )
        self.ws = ws

    async def send(self, data: bytes) -> None:
        if self.closed:
            raise TransportError(f"{self!r} is closed")
        # RFC 7118 §5: text or binary frames; text when the message is valid UTF-8.
        try:
            data.decode("utf-8")
            text = True
        except UnicodeDecodeError:
            text = False
        now = asyncio.get_running_loop().time()
        if is_keepalive(data):
            self.keepalive_seen(now)
        else:
            self.message_seen(now, read=False)
        try:
            async with asyncio.timeout(self.config.write_timeout):
                await self.ws.send(data, text=text)
        except TimeoutError:
            log.warning("%r: write not drained in %.1fs; closing", self, self.config.write_timeout)
            self.abort()
            raise TransportError(f"{self!r}: write timed out") from None
        except (ConnectionClosed, OSError) as exc:
            raise TransportError(f"{self!r}: {exc}") from exc

    async def run(self) -> None:
        """The read loop: one SIP message per WebSocket message (RFC 7118 §5)."""
        config = self.config
        loop = asyncio.get_running_loop()
        try:
            while True:
                now = loop.time()
                deadline, why = self.deadline(now)
                if now >= deadline:
                    log.info("%r: %s; closing", self, why)
                    return
                try:
                    async with asyncio.timeout(deadline - now):
                        received = await self.ws.recv()
                except TimeoutError:
                    continue  # recv() is cancel-safe; the deadline is checked again
                now = loop.time()
                data = received.encode("utf-8") if isinstance(received, str) else received
                if is_keepalive(data):
                    self.keepalive_seen(now)  # counts only where keep-alives count
                    continue
                try:
                    message = parse_message(data, max_size=config.max_message_size)
                except ParseError as exc:
                    # Framing is the WebSocket's, so the connection survives a bad message.
                    log.info("%r: message skipped: %s", self, exc.reason)
                    self.sink.report_error(data, exc, self.source)
                    continue
                self.message_seen(now, read=True)
                self.sink.deliver(message, self.source)
        except ConnectionClosed as exc:
            if (exc.rcvd is not None and exc.rcvd.code == 1009) or (
                exc.sent is not None and exc.sent.code == 1009
            ):
                log.warning(
                    "%r: message larger than %d bytes; closed", self, config.max_message_size
                )
            else:
                log.debug("%r: closed: %s", self, exc)
        finally:
            await self.close()

    async def close(self) -> None:
        """Close with the WebSocket closing handshake, bounded in time."""
        if self.closed:
            return
        self.closed = True
        try:
            async with asyncio.timeout(_CLOSE_TIMEOUT):
                await self.ws.close()
        except (TimeoutError, OSError, ConnectionClosed):
            self.ws.transport.abort()

    def abort(self) -> None:
        self.closed = True
        self.ws.transport.abort()


async def serve_ws(
    handler: WsHandler,
    host: str,
    port: int,
    config: TransportConfig,
    *,
    secure: bool,
    accept: AcceptCheck,
) -> Server:
    """Listen for SIP over WebSocket; ``handler`` runs for each accepted connection.

    Clients must offer the ``sip`` subprotocol (RFC 7118 §4.1), else the
    handshake fails with HTTP 400. ``accept`` is asked before each handshake
    completes, with the peer's address; when it returns False the client gets
    HTTP 503.
    """
    context: ssl.SSLContext | None = None
    if secure:
        context = config.tls_server_context
        if context is None:
            raise TransportError("wss needs TransportConfig.tls_server_context", 500)

    def process_request(connection: ServerConnection, request: HttpRequest) -> HttpResponse | None:
        if accept(address_pair(connection.remote_address)):
            return None
        return connection.respond(503, "Too many connections\n")

    return await serve(
        handler,
        host,
        port,
        subprotocols=[SUBPROTOCOL],
        process_request=process_request,
        server_header=None,
        ssl=context,
        max_size=config.max_message_size,
        max_queue=4,
        write_limit=min(config.write_buffer_size, 65536),
        compression=None,
        ping_interval=None,
        close_timeout=_CLOSE_TIMEOUT,
        open_timeout=config.connect_timeout,
    )


class _ClientOptions(TypedDict):
    subprotocols: list[Subprotocol]
    proxy: None
    user_agent_header: None
    max_size: int
    max_queue: int
    write_limit: int
    compression: None
    ping_interval: None
    close_timeout: float
    open_timeout: float


def _client_options(config: TransportConfig) -> _ClientOptions:
    return {
        "subprotocols": [SUBPROTOCOL],
        "proxy": None,  # never through an HTTP proxy from the environment
        "user_agent_header": None,
        "max_size": config.max_message_size,
        "max_queue": 4,
        "write_limit": min(config.write_buffer_size, 65536),
        "compression": None,
        "ping_interval": None,
        "close_timeout": _CLOSE_TIMEOUT,
        "open_timeout": config.connect_timeout,
    }


async def open_ws(
    host: str,
    port: int,
    config: TransportConfig,
    *,
    secure: bool,
    client_context: ssl.SSLContext | None,
    server_name: str | None,
) -> ClientConnection:
    """Open a WebSocket to ``host:port`` path ``/`` with subprotocol ``sip``."""
    hostport = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    uri = f"{'wss' if secure else 'ws'}://{hostport}/"
    try:
        if secure:
            ws = await connect(
                uri,
                ssl=client_context,
                server_hostname=server_name or host,
                **_client_options(config),
            )
        else:
            ws = await connect(uri, **_client_options(config))
    except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
        raise TransportError(f"cannot open {uri}: {exc}") from exc
    if ws.subprotocol != SUBPROTOCOL:
        # RFC 7118 §4.1: without the sip subprotocol the server does not speak SIP here.
        with contextlib.suppress(Exception):
            await ws.close()
        raise TransportError(f"{uri}: server did not accept the sip subprotocol")
    return ws
