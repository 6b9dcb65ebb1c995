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

    async def send(self, data: bytes) -> None:
        if self.closed or self._writer.is_closing():
            raise TransportError(f"{self!r} is closed")
        if not self._buffer_room(len(data)):
            log.warning("%r: peer does not read, write buffer full; closing", self)
            self.abort()
            raise TransportError(f"{self!r}: write buffer full")
        self._writer.write(data)
        self.last_activity = asyncio.get_running_loop().time()
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

    async def run(self) -> None:
        """The read loop: frame, deliver, answer pings, enforce the limits."""
        config = self.config
        parser = StreamParser(config.max_message_size, client=self.client)
        loop = asyncio.get_running_loop()
        partial_since: float | None = None  # when the message now buffered began
        try:
            while True:
                now = loop.time()
                idle_deadline = self.last_activity + config.idle_timeout
                deadline = idle_deadline
                if partial_since is not None:
                    deadline = min(deadline, partial_since + config.message_timeout)
                if now >= deadline:
                    if now < idle_deadline:
                        log.warning(
                            "%r: partial message held %.1fs (%d bytes); closing",
                            self,
                            config.message_timeout,
                            parser.buffered,
                        )
                    else:
                        log.info("%r: idle for %.1fs; closing", self, config.idle_timeout)
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
                self.last_activity = now
                completed = False
                for item in parser.feed(chunk):
                    if isinstance(item, Request | Response):
                        completed = True
                        self.sink.deliver(item, self.source)
                    elif isinstance(item, KeepAlivePing):
                        # RFC 5626 §3.5.1: a double CRLF ping is answered by a CRLF pong.
                        if not self._buffer_room(len(_PONG)):
                            log.warning("%r: pong not sent, write buffer full; closing", self)
                            return
                        self._writer.write(_PONG)
                    elif isinstance(item, KeepAlivePong):
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
