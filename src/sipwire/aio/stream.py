"""SIP over TCP and TLS connections (RFC 3261 §18.3, RFC 5626 keep-alives)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

from sipwire.aio.transport_base import (
    Connection,
    Sink,
    TransportConfig,
    TransportError,
    address_pair,
    is_keepalive,
    log,
)
from sipwire.message import (
    KeepAlivePing,
    KeepAlivePong,
    Request,
    Response,
    StreamError,
    StreamParser,
)
from sipwire.transport.address import Source

__all__ = ["READ_CHUNK", "StreamConnection"]

READ_CHUNK: Final = 65536
"""Bytes read from a stream at a time; also the StreamReader's buffer limit,
so asyncio stops reading the socket when the read loop falls behind."""

_PONG: Final = b"\r\n"


class StreamConnection(Connection):
    """A TCP or TLS connection carrying SIP framed by Content-Length (§18.3)."""

    def __init__(
        self,
        sink: Sink,
        config: TransportConfig,
        transport: str,
        flow: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        client: bool,
        now: float,
    ) -> None:
        super().__init__(
            sink,
            config,
            transport,
            flow,
            address_pair(writer.get_extra_info("peername")),
            address_pair(writer.get_extra_info("sockname")),
            client=client,
            now=now,
        )
        self._reader = reader
        self._writer = writer

    def _buffer_room(self, size: int) -> bool:
        return self._writer.transport.get_write_buffer_size() + size <= (
            self.config.write_buffer_size
        )

    def _written(self, data: bytes) -> None:
        now = asyncio.get_running_loop().time()
        if is_keepalive(data):
            self.keepalive_seen(now)
        else:
            self.message_seen(now, read=False)

    async def send(self, data: bytes) -> None:
        if self.closed or self._writer.is_closing():
            raise TransportError(f"{self!r} is closed")
        if not self._buffer_room(len(data)):
            log.warning("%r: peer does not read, write buffer full; closing", self)
            self.abort()
            raise TransportError(f"{self!r}: write buffer full")
        self._writer.write(data)
        self._written(data)
        try:
            async with asyncio.timeout(self.config.write_timeout):
                await self._writer.drain()
        except TimeoutError:
            log.warning("%r: write not drained in %.1fs; closing", self, self.config.write_timeout)
            self.abort()
            raise TransportError(f"{self!r}: write timed out") from None
        except OSError as exc:
            self.abort()
            raise TransportError(f"{self!r}: {exc}") from exc

    def send_nowait(self, data: bytes) -> Source | None:
        """Queue ``data`` in the write buffer when it has room; None otherwise.

        The bytes leave as soon as the socket takes them, and a graceful
        :meth:`close` still sends them: an answer queued while the read loop
        closes the connection (a 400 for a message that broke the framing)
        goes out before the FIN.
        """
        if self.closed or self._writer.is_closing() or not self._buffer_room(len(data)):
            return None
        self._writer.write(data)
        self._written(data)
        return self.source

    async def run(self) -> None:
        """The read loop: frame, deliver, answer pings, enforce the limits.

        On a fatal framing error the sink hears of it (``report_error``) before
        the connection is closed, so an answer it queues with
        :meth:`send_nowait` is flushed by the graceful close.
        """
        config = self.config
        parser = StreamParser(config.max_message_size, client=self.client)
        loop = asyncio.get_running_loop()
        partial_since: float | None = None  # when the message now buffered began
        try:
            while True:
                now = loop.time()
                deadline, why = self.deadline(now, partial_since)
                if now >= deadline:
                    if partial_since is not None:
                        log.warning("%r: %s (%d bytes); closing", self, why, parser.buffered)
                    else:
                        log.info("%r: %s; closing", self, why)
                    return
                try:
                    async with asyncio.timeout(deadline - now):
                        chunk = await self._reader.read(READ_CHUNK)
                except TimeoutError:
                    continue  # the deadlines are checked again at the top
                if not chunk:
                    log.debug("%r: closed by peer", self)
                    return
                now = loop.time()
                completed = False
                for item in parser.feed(chunk):
                    if isinstance(item, Request | Response):
                        completed = True
                        self.message_seen(now, read=True)
                        self.sink.deliver(item, self.source)
                    elif isinstance(item, KeepAlivePing):
                        # RFC 5626 §3.5.1: a double CRLF ping is answered by a CRLF pong.
                        # Only where keep-alives count does it keep the connection open.
                        self.keepalive_seen(now)
                        if not self._buffer_room(len(_PONG)):
                            log.warning("%r: pong not sent, write buffer full; closing", self)
                            return
                        self._writer.write(_PONG)
                    elif isinstance(item, KeepAlivePong):
                        self.keepalive_seen(now)
                        log.debug("%r: keep-alive pong", self)
                    elif isinstance(item, StreamError):
                        completed = True
                        self.sink.report_error(item.data, item.error, self.source)
                        if item.fatal:
                            log.warning("%r: %s; closing", self, item.error.reason)
                            return
                        log.info("%r: message skipped: %s", self, item.error.reason)
                if not parser.buffered:
                    partial_since = None
                elif completed or partial_since is None:
                    partial_since = now
        except OSError as exc:
            log.info("%r: %s", self, exc)
        finally:
            self.close()

    def close(self) -> None:
        """Close gracefully: flush what is buffered, then close (TLS close_notify)."""
        if not self.closed:
            self.closed = True
            with contextlib.suppress(Exception):
                self._writer.close()

    def abort(self) -> None:
        self.closed = True
        self._writer.transport.abort()
