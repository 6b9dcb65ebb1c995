"""Connection exhaustion on loopback: per-source limit, first-message and idle timeouts,
kept flows, eviction, resets before the peer's address is known, synchronous sends.

The stream (TCP) and WebSocket paths are both driven through TransportLayer.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import socket
import struct
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from sipwire.aio.connections import ConnectionTable
from sipwire.aio.transport import TransportConfig, TransportLayer
from sipwire.aio.transport_base import Connection
from sipwire.errors import ParseError
from sipwire.message import Request, Response
from sipwire.transport.address import Source, Target
from tests.aio.test_transport import TIMEOUT, Inbox, layer, options, read_eof, wait_until

pytestmark = [pytest.mark.timeout(60)]

STREAM_AND_WS = ["tcp", "ws"]
OTHER_SOURCE = "127.0.0.2"  # Linux routes all of 127/8 to loopback


def _other_source_works() -> bool:
    try:
        with socket.socket() as sock:
            sock.bind((OTHER_SOURCE, 0))
    except OSError:
        return False
    return True


# -- clients ---------------------------------------------------------------------------------


class Client:
    """A raw TCP or a WebSocket client, as a peer would drive it."""

    def __init__(
        self,
        transport: str,
        reader: asyncio.StreamReader | None = None,
        writer: asyncio.StreamWriter | None = None,
        ws: ClientConnection | None = None,
    ) -> None:
        self.transport = transport
        self.reader = reader
        self.writer = writer
        self.ws = ws
        self._sending: set[asyncio.Task[None]] = set()

    def send(self, data: bytes) -> None:
        if self.writer is not None:
            self.writer.write(data)
        else:
            assert self.ws is not None
            task = asyncio.get_running_loop().create_task(self._ws_send(data))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _ws_send(self, data: bytes) -> None:
        assert self.ws is not None
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(data)

    async def wait_closed(self, timeout: float = TIMEOUT) -> None:
        """Until the server closes the connection (anything it sent is discarded)."""
        if self.reader is not None:
            await asyncio.wait_for(self.reader.read(), timeout)
        else:
            assert self.ws is not None
            await asyncio.wait_for(self.ws.wait_closed(), timeout)

    def is_open(self) -> bool:
        if self.reader is not None:
            return not self.reader.at_eof()
        assert self.ws is not None
        return self.ws.close_code is None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        elif self.ws is not None:
            self.ws.transport.abort()


async def connect(
    transport: str, address: tuple[str, int], local_host: str | None = None
) -> Client:
    """Open a client connection; raises InvalidStatus when a WebSocket handshake is refused."""
    local_addr = (local_host, 0) if local_host else None
    if transport == "tcp":
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(*address, local_addr=local_addr), TIMEOUT
        )
        return Client(transport, reader, writer)
    ws = await asyncio.wait_for(
        ws_connect(
            f"ws://{address[0]}:{address[1]}/",
            subprotocols=[Subprotocol("sip")],
            proxy=None,
            local_addr=local_addr,
        ),
        TIMEOUT,
    )
    return Client(transport, ws=ws)


@asynccontextmanager
async def clients() -> AsyncIterator[list[Client]]:
    opened: list[Client] = []
    try:
        yield opened
    finally:
        for client in opened:
            await client.close()


# -- (a) per-source limit ----------------------------------------------------------------------


@pytest.mark.skipif(not _other_source_works(), reason=f"cannot bind {OTHER_SOURCE}")
@pytest.mark.parametrize("transport", STREAM_AND_WS)
@pytest.mark.asyncio
async def test_per_source_limit_refuses_that_source_only(
    transport: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sipwire.transport")
    inbox = Inbox()
    config = TransportConfig(max_connections_per_source=3, first_message_timeout=30.0)
    async with layer(inbox, config) as server, clients() as opened:
        address = await server.listen(transport, "127.0.0.1", 0)
        for _ in range(3):
            opened.append(await connect(transport, address))
        await wait_until(lambda: server.connection_count == 3)

        for _ in range(2):  # the fourth and fifth from 127.0.0.1 are refused at once
            if transport == "ws":
                with pytest.raises(InvalidStatus) as info:
                    await connect(transport, address)
                assert info.value.response.status_code == 503
            else:
                refused = await connect(transport, address)
                opened.append(refused)
                await refused.wait_closed()
        assert server.connection_count == 3
        assert any("max_connections_per_source" in r.getMessage() for r in caplog.records)

        # Another address still gets in, and its message through.
        other = await connect(transport, address, local_host=OTHER_SOURCE)
        opened.append(other)
        other.send(bytes(options(1, transport)))
        message, source = await inbox.get()
        assert message.call_id == "call-1" and source.host == OTHER_SOURCE
        assert server.connection_count == 4

        # Connections this side opens are not counted against a source.
        async with layer(Inbox()) as peer:
            peer_address = await peer.listen(transport, "127.0.0.1", 0)
            sent = await server.send(bytes(options(2, transport)), Target(transport, *peer_address))
            assert sent.host == "127.0.0.1" and server.connection_count == 5


# -- (b) first-message timeout -------------------------------------------------------------------


@pytest.mark.parametrize("transport", STREAM_AND_WS)
@pytest.mark.asyncio
async def test_silent_connection_closed_after_first_message_timeout(transport: str) -> None:
    inbox = Inbox()
    config = TransportConfig(first_message_timeout=0.5)
    async with layer(inbox, config) as server, clients() as opened:
        address = await server.listen(transport, "127.0.0.1", 0)
        started = time.monotonic()
        silent = await connect(transport, address)
        pinging = await connect(transport, address)  # keep-alives are not a first message
        talking = await connect(transport, address)
        opened += [silent, pinging, talking]
        talking.send(bytes(options(1, transport)))
        await inbox.get()

        async def ping() -> None:
            while True:
                pinging.send(b"\r\n\r\n")
                await asyncio.sleep(0.1)

        pinger = asyncio.get_running_loop().create_task(ping())
        try:
            await silent.wait_closed()
            await pinging.wait_closed()
        finally:
            pinger.cancel()
        assert 0.4 <= time.monotonic() - started < 3.0
        await asyncio.sleep(0.3)
        assert talking.is_open() and server.connection_count == 1


# -- (c) keep-alives hold only kept flows ------------------------------------------------------


@pytest.mark.parametrize("transport", STREAM_AND_WS)
@pytest.mark.asyncio
async def test_keepalives_hold_only_kept_flows(transport: str) -> None:
    inbox = Inbox()
    config = TransportConfig(idle_timeout=1.0, keepalive_idle_timeout=0.8)
    kept: list[bool] = []

    def on_message(message: Request | Response, source: Source) -> None:
        inbox.on_message(message, source)
        if message.call_id == "call-keep":  # a registrar accepting a REGISTER (RFC 5626)
            assert source.flow is not None
            loop_time = asyncio.get_running_loop().time()
            kept.append(server.keep_flow(source.flow, loop_time + 60.0))

    server = TransportLayer(on_message, on_error=inbox.on_error, config=config)
    async with AsyncExitStack() as stack:
        stack.push_async_callback(server.close)
        opened = await stack.enter_async_context(clients())
        address = await server.listen(transport, "127.0.0.1", 0)
        plain = await connect(transport, address)
        keeper = await connect(transport, address)
        opened += [plain, keeper]
        plain.send(bytes(options(1, transport)).replace(b"call-1", b"call-plain"))
        keeper.send(bytes(options(2, transport)).replace(b"call-2", b"call-keep"))
        received = [await inbox.get(), await inbox.get()]
        keeper_flow = next(src.flow for msg, src in received if msg.call_id == "call-keep")
        assert kept == [True]
        assert not server.keep_flow(10_000, 0.0)  # no such flow
        started = time.monotonic()

        pinging = {id(plain): plain, id(keeper): keeper}

        async def ping() -> None:
            while True:
                for client in list(pinging.values()):
                    client.send(b"\r\n\r\n")
                await asyncio.sleep(0.2)

        pinger = asyncio.get_running_loop().create_task(ping())
        try:
            if transport == "tcp":
                assert keeper.reader is not None  # pings are answered
                assert await asyncio.wait_for(keeper.reader.readexactly(2), TIMEOUT) == b"\r\n"
            await plain.wait_closed()  # pings every 0.2 s do not hold it
            assert 0.6 <= time.monotonic() - started < 3.0
            await asyncio.sleep(0.6)  # 1.6 s: past idle_timeout, the kept flow is still open
            assert keeper.is_open() and server.connection_count == 1
            del pinging[id(keeper)]
            stopped = time.monotonic()
            await keeper.wait_closed()  # without pings, keepalive_idle_timeout closes it
            assert time.monotonic() - stopped < 3.0
        finally:
            pinger.cancel()
        await wait_until(lambda: server.connection_count == 0)
        assert keeper_flow is not None and server.connection(keeper_flow) is None


# -- (d) eviction when max_connections is reached ----------------------------------------------


@pytest.mark.parametrize("transport", STREAM_AND_WS)
@pytest.mark.asyncio
async def test_full_table_evicts_a_silent_connection(
    transport: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sipwire.transport")
    inbox = Inbox()
    config = TransportConfig(max_connections=3, first_message_timeout=30.0)
    async with layer(inbox, config) as server, clients() as opened:
        address = await server.listen(transport, "127.0.0.1", 0)
        for _ in range(3):
            opened.append(await connect(transport, address))
            await wait_until(lambda: server.connection_count == len(opened))
        newcomer = await connect(transport, address)
        opened.append(newcomer)
        newcomer.send(bytes(options(1, transport)))
        message, _ = await inbox.get()
        assert message.call_id == "call-1"
        await opened[0].wait_closed()  # the oldest silent one made room
        assert all(client.is_open() for client in opened[1:])
        assert server.connection_count == 3
        assert any("evicted" in r.getMessage() for r in caplog.records)


@pytest.mark.asyncio
async def test_eviction_prefers_idle_longest_and_spares_kept_flows() -> None:
    inbox = Inbox()
    config = TransportConfig(max_connections=3, eviction_min_idle=0.5, first_message_timeout=30.0)
    async with layer(inbox, config) as server, clients() as opened:
        address = await server.listen("tcp", "127.0.0.1", 0)
        flows: list[int] = []
        for n in range(3):  # a: kept, b, c
            opened.append(await connect("tcp", address))
            opened[-1].send(bytes(options(n, "tcp")))
            _, source = await inbox.get()
            assert source.flow is not None
            flows.append(source.flow)
        a, b, c = opened
        assert server.keep_flow(flows[0], asyncio.get_running_loop().time() + 60.0)
        await asyncio.sleep(0.6)
        b.send(bytes(options(10, "tcp")))  # b is in use again; c is idle longest
        await inbox.get()

        d = await connect("tcp", address)
        opened.append(d)
        d.send(bytes(options(11, "tcp")))
        assert (await inbox.get())[0].call_id == "call-11"
        await c.wait_closed()
        assert a.is_open() and b.is_open()

        # Nothing idle enough and the kept flow spared: the newcomer is refused.
        e = await connect("tcp", address)
        opened.append(e)
        await e.wait_closed()
        assert a.is_open() and b.is_open() and d.is_open()
        assert server.connection_count == 3


# -- (e) reset before the peer's address is known ------------------------------------------------


class _ResetSocket(socket.socket):
    """An accepted socket whose peer is gone: getpeername fails (ENOTCONN)."""

    def getpeername(self) -> tuple[str, int]:
        raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")


def _reset_now(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the peer gets a RST instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.mark.parametrize("transport", STREAM_AND_WS)
@pytest.mark.asyncio
async def test_reset_before_peer_address_is_closed_quietly(
    transport: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO)
    inbox = Inbox()
    async with layer(inbox, TransportConfig(first_message_timeout=30.0)) as server:
        address = await server.listen(transport, "127.0.0.1", 0)

        # Real resets: right after connecting, and in the middle of a WebSocket handshake.
        for n in range(6):
            sock = socket.create_connection(address)
            if n % 2:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
            _reset_now(sock)
        await asyncio.sleep(0.2)

        # A reset the kernel reports as an accepted connection without a peer address
        # (what BSD and macOS do; on Linux a TLS transport can lose it the same way).
        real_accept = socket.socket.accept
        broken: list[object] = []

        def accept(self: socket.socket) -> tuple[socket.socket, object]:
            conn, peer = real_accept(self)
            if broken or self.getsockname()[:2] != address:
                return conn, peer
            broken.append(peer)
            reset = _ResetSocket(conn.family, conn.type, conn.proto, fileno=conn.detach())
            return reset, None

        monkeypatch.setattr(socket.socket, "accept", accept)
        victim = socket.create_connection(address)
        victim.setblocking(False)
        if transport == "tcp":
            reader, writer = await asyncio.open_connection(sock=victim)
            writer.write(bytes(options(1, transport)))
            with contextlib.suppress(ConnectionResetError):  # aborted: RST or FIN
                assert await read_eof(reader) == b""
            writer.close()
        else:
            try:
                async with ws_connect(
                    f"ws://{address[0]}:{address[1]}/",
                    sock=victim,
                    subprotocols=[Subprotocol("sip")],
                    proxy=None,
                ) as ws:
                    await ws.send(bytes(options(1, transport)))
                    await asyncio.wait_for(ws.wait_closed(), TIMEOUT)
            except InvalidStatus as exc:
                assert exc.response.status_code == 503
        monkeypatch.undo()
        assert broken
        await wait_until(lambda: server.connection_count == 0)
        await asyncio.sleep(0.1)
        assert inbox.messages.empty() and inbox.errors.empty()
        assert any("peer address unknown" in r.getMessage() for r in caplog.records)
    gc.collect()  # "Task exception was never retrieved" is logged when a task is collected
    await asyncio.sleep(0)
    errors = [
        r
        for r in caplog.records
        if r.levelno >= logging.ERROR or (r.exc_info and r.name.startswith("sipwire"))
    ]
    assert not errors, [r.getMessage() for r in errors]


# -- (f) synchronous send on a connection ---------------------------------------------------------


BAD_REQUEST = b"SIP/2.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n"


@pytest.mark.asyncio
async def test_send_nowait_writes_on_the_flow_at_once() -> None:
    results: list[Source | None] = []

    def on_message(message: Request | Response, source: Source) -> None:
        assert isinstance(message, Request)
        results.append(
            server.send_nowait(bytes(message.reply(200)), source.as_target(), flow=source.flow)
        )

    def on_error(data: bytes, error: ParseError, source: Source) -> None:
        # The connection is closed right after this returns (the framing is lost):
        # the 400 queued now must still reach the peer.
        results.append(server.send_nowait(BAD_REQUEST, source.as_target(), flow=source.flow))

    server = TransportLayer(on_message, on_error=on_error)
    try:
        address = await server.listen("tcp", "127.0.0.1", 0)
        ws_address = await server.listen("ws", "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(*address)
        writer.write(bytes(options(1, "tcp")))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        assert head.startswith(b"SIP/2.0 200 ")
        sent = results.pop()
        assert sent is not None and sent.flow is not None and sent.transport == "tcp"
        flow = sent.flow
        # Not a flow of that transport, or no such flow: the caller must await send().
        assert server.send_nowait(b"x", Target("tls", *address), flow=flow) is None
        assert server.send_nowait(b"x", Target("tcp", *address), flow=flow + 1000) is None

        # A message without Content-Length breaks the framing: 400, then the close.
        writer.write(bytes(options(2, "tcp")).replace(b"Content-Length: 0\r\n", b""))
        assert await read_eof(reader) == BAD_REQUEST
        assert results.pop() is not None
        writer.close()
        await wait_until(lambda: server.connection_count == 0)
        assert server.send_nowait(b"x", Target("tcp", *address), flow=flow) is None

        # WebSocket has no synchronous send: None, as for any connection before.
        async with ws_connect(
            f"ws://{ws_address[0]}:{ws_address[1]}/", subprotocols=[Subprotocol("sip")], proxy=None
        ) as ws:
            await ws.send(bytes(options(3, "ws")))
            await wait_until(lambda: bool(results))
            assert results.pop() is None
    finally:
        await server.close()


# -- the table on a manual clock ----------------------------------------------------------------


class _Conn(Connection):
    async def send(self, data: bytes) -> None:
        raise NotImplementedError

    async def run(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        self.closed = True


class _Sink:
    def __init__(self, table: ConnectionTable) -> None:
        self.table = table

    def deliver(self, message: Request | Response, source: Source) -> None:
        pass

    def report_error(self, data: bytes, error: ParseError, source: Source) -> None:
        pass

    def connection_used(self, conn: Connection) -> None:
        self.table.used(conn)


def test_table_eviction_order_and_keep_expiry() -> None:
    config = TransportConfig(max_connections=3, eviction_min_idle=1.0)
    table = ConnectionTable(config)
    sink = _Sink(table)

    def incoming(flow: int, host: str, now: float) -> _Conn:
        conn = _Conn(
            sink,
            config,
            "tcp",
            flow,
            (host, 5000 + flow),
            ("10.0.0.1", 5060),
            client=False,
            now=now,
        )
        table.add(conn)
        return conn

    a, b = incoming(1, "192.0.2.1", 0.0), incoming(2, "192.0.2.1", 0.0)
    outgoing = _Conn(
        sink, config, "tcp", 3, ("192.0.2.1", 5060), ("10.0.0.1", 40000), client=True, now=0.0
    )
    table.add(outgoing)
    assert table.from_source("192.0.2.1") == 2 and len(table) == 3
    a.message_seen(0.5, read=True)
    b.message_seen(0.7, read=True)
    assert table.candidate(1.0) is None  # both used within eviction_min_idle; never outgoing
    assert table.keep(a.flow, 10.0, now=1.0)
    assert table.candidate(2.0) is b  # a is kept
    b.message_seen(2.0, read=True)
    assert table.candidate(2.5) is None
    assert table.make_room(0, 3.5, "newcomer") and b.closed  # b idle 1.5 s: evicted
    assert table.from_source("192.0.2.1") == 1 and table.get(b.flow) is None
    c = incoming(4, "192.0.2.2", 3.5)
    assert table.candidate(3.5) is c  # never delivered a message: first to go
    c.message_seen(3.6, read=True)
    assert table.candidate(5.0) is c and not table.make_room(1, 4.0, "newcomer")
    assert table.candidate(11.0) is a  # the keep ran out at 10 and a has been quiet since 0.5
    table.remove(a)
    table.remove(a)  # twice is harmless
    assert table.from_source("192.0.2.1") == 0 and len(table) == 2
