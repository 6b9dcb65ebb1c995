"""TransportLayer on loopback: UDP, TCP, TLS, WS and WSS, IPv4 and IPv6, and the limits.

RFC 3261 §18, RFC 5626 (keep-alives), RFC 7118 (WebSocket).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from sipwire.aio.transport import TransportConfig, TransportError, TransportLayer
from sipwire.errors import ParseError, SipError
from sipwire.message import Request, Response
from sipwire.transport.address import Source, Target
from sipwire.transport.routing import response_target, stamp_via
from tests.aio.certs import Pki, make_pki

TIMEOUT = 5.0


def _ipv6_works() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


HOSTS = [
    "127.0.0.1",
    pytest.param("::1", marks=pytest.mark.skipif(not _ipv6_works(), reason="no IPv6 loopback")),
]
TRANSPORTS = ["udp", "tcp", "tls", "ws", "wss"]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


class Inbox:
    """Collects what a TransportLayer delivers."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[tuple[Request | Response, Source]] = asyncio.Queue()
        self.errors: asyncio.Queue[tuple[bytes, ParseError, Source]] = asyncio.Queue()

    def on_message(self, message: Request | Response, source: Source) -> None:
        self.messages.put_nowait((message, source))

    def on_error(self, data: bytes, error: ParseError, source: Source) -> None:
        self.errors.put_nowait((data, error, source))

    async def get(self) -> tuple[Request | Response, Source]:
        return await asyncio.wait_for(self.messages.get(), TIMEOUT)

    async def error(self) -> tuple[bytes, ParseError, Source]:
        return await asyncio.wait_for(self.errors.get(), TIMEOUT)


@asynccontextmanager
async def layer(
    inbox: Inbox, config: TransportConfig | None = None
) -> AsyncIterator[TransportLayer]:
    transport_layer = TransportLayer(inbox.on_message, on_error=inbox.on_error, config=config)
    try:
        yield transport_layer
    finally:
        await asyncio.wait_for(transport_layer.close(), TIMEOUT)


def hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def options(n: int, transport: str, host: str = "127.0.0.1", port: int = 5060) -> Request:
    return Request(
        "OPTIONS",
        "sip:bob@example.com",
        headers=[
            ("Via", f"SIP/2.0/{transport.upper()} {hostport(host, port)};rport;branch=z9hG4bK{n}"),
            ("Max-Forwards", 70),
            ("From", "<sip:alice@example.com>;tag=a"),
            ("To", "<sip:bob@example.com>"),
            ("Call-ID", f"call-{n}"),
            ("CSeq", f"{n} OPTIONS"),
        ],
    )


async def wait_until(predicate: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def raw_connect(
    address: tuple[str, int],
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.wait_for(asyncio.open_connection(*address), TIMEOUT)


async def read_eof(reader: asyncio.StreamReader) -> bytes:
    """Read until the server closes; return what it sent."""
    return await asyncio.wait_for(reader.read(), TIMEOUT)


# -- every transport, both families ---------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_request_and_response(transport: str, host: str, pki: Pki) -> None:
    server_inbox, client_inbox = Inbox(), Inbox()
    server_config = TransportConfig(tls_server_context=pki.server_context())
    client_config = TransportConfig(tls_client_context=pki.client_context())
    async with (
        layer(server_inbox, server_config) as server,
        layer(client_inbox, client_config) as client,
    ):
        bound = await server.listen(transport, host, 0)
        assert bound[0] == host and bound[1] > 0
        client_port = 0
        if transport == "udp":
            client_port = (await client.listen("udp", host, 0))[1]

        request = options(1, transport, host, client_port or 5060)
        sent = await client.send(bytes(request), Target(transport, host, bound[1]))
        assert sent.transport == transport
        assert (sent.host, sent.port) == bound

        received, source = await server_inbox.get()
        assert isinstance(received, Request)
        assert received.call_id == "call-1" and received.method == "OPTIONS"
        assert source.transport == transport and source.host == host
        assert (source.local_host, source.local_port) == bound

        # The response goes where §18.2.2 says: the same connection on streams.
        stamp_via(received, source)
        target, reuse = response_target(received.via[0], source)
        assert reuse == (transport != "udp")
        back = await server.send(
            bytes(received.reply(200)), target, flow=source.flow if reuse else None
        )

        response, response_source = await client_inbox.get()
        assert isinstance(response, Response) and response.status == 200
        assert response.call_id == "call-1"
        if transport == "udp":
            assert source.flow is None
            assert (response_source.host, response_source.port) == bound  # from the listening port
            assert (source.host, source.port) == (host, client_port)
        else:
            assert source.flow is not None and back.flow == source.flow
            assert response_source.flow == sent.flow
            assert server.connection_count == 1 and client.connection_count == 1

            # A second request reuses the connection.
            await client.send(bytes(options(2, transport, host)), Target(transport, host, bound[1]))
            again, again_source = await server_inbox.get()
            assert again.call_id == "call-2" and again_source.flow == source.flow
            assert client.connection_count == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("transport", ["tls", "wss"])
async def test_unknown_ca_is_refused(transport: str, pki: Pki, tmp_path: Path) -> None:
    other = make_pki(tmp_path / "other", ca_name="some other CA")
    server_inbox, client_inbox = Inbox(), Inbox()
    async with (
        layer(server_inbox, TransportConfig(tls_server_context=pki.server_context())) as server,
        layer(client_inbox, TransportConfig(tls_client_context=other.client_context())) as client,
    ):
        host, port = await server.listen(transport, "127.0.0.1", 0)
        with pytest.raises(TransportError) as info:
            await client.send(bytes(options(1, transport)), Target(transport, host, port))
        assert info.value.status == 503
        assert isinstance(info.value, SipError)
        assert client.connection_count == 0
        assert server_inbox.messages.empty()


@pytest.mark.asyncio
async def test_tls_hostname_is_checked(pki: Pki) -> None:
    async with (
        layer(Inbox(), TransportConfig(tls_server_context=pki.server_context())) as server,
        layer(Inbox(), TransportConfig(tls_client_context=pki.client_context())) as client,
    ):
        host, port = await server.listen("tls", "127.0.0.1", 0)
        # The certificate names localhost, not sip.example.com.
        with pytest.raises(TransportError):
            await client.send(
                bytes(options(1, "tls")), Target("tls", host, port), server_name="sip.example.com"
            )
        await client.send(
            bytes(options(2, "tls")), Target("tls", host, port), server_name="localhost"
        )


@pytest.mark.asyncio
@pytest.mark.parametrize("transport", ["tcp", "ws"])
async def test_connection_refused(transport: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        async with layer(Inbox()) as client:
            with pytest.raises(TransportError):
                await client.send(
                    bytes(options(1, transport)), Target(transport, "127.0.0.1", port)
                )


@pytest.mark.asyncio
async def test_listen_tls_without_context_fails() -> None:
    async with layer(Inbox()) as server:
        with pytest.raises(TransportError):
            await server.listen("tls", "127.0.0.1", 0)


# -- stream framing (TCP) -----------------------------------------------------------------


@pytest.mark.asyncio
async def test_tcp_message_in_small_writes_is_reassembled() -> None:
    inbox = Inbox()
    async with layer(inbox) as server:
        address = await server.listen("tcp", "127.0.0.1", 0)
        _reader, writer = await raw_connect(address)
        data = bytes(options(1, "tcp"))
        for i in range(0, len(data), 7):
            writer.write(data[i : i + 7])
            await writer.drain()
            await asyncio.sleep(0.001)
        message, source = await inbox.get()
        assert isinstance(message, Request) and message.call_id == "call-1"
        assert source.flow is not None
        writer.close()


@pytest.mark.asyncio
async def test_tcp_two_messages_in_one_segment() -> None:
    inbox = Inbox()
    async with layer(inbox) as server:
        address = await server.listen("tcp", "127.0.0.1", 0)
        _, writer = await raw_connect(address)
        writer.write(bytes(options(1, "tcp")) + bytes(options(2, "tcp")))
        first, source1 = await inbox.get()
        second, source2 = await inbox.get()
        assert [first.call_id, second.call_id] == ["call-1", "call-2"]
        assert source1.flow == source2.flow
        writer.close()


@pytest.mark.asyncio
async def test_tcp_ping_is_answered_with_pong() -> None:
    async with layer(Inbox()) as server:
        address = await server.listen("tcp", "127.0.0.1", 0)
        reader, writer = await raw_connect(address)
        writer.write(b"\r\n\r\n")  # RFC 5626 §3.5.1 ping
        assert await asyncio.wait_for(reader.readexactly(2), TIMEOUT) == b"\r\n"
        writer.close()


@pytest.mark.asyncio
async def test_tcp_bad_message_is_skipped_connection_survives() -> None:
    inbox = Inbox()
    async with layer(inbox) as server:
        address = await server.listen("tcp", "127.0.0.1", 0)
        _, writer = await raw_connect(address)
        bad = b"OPTIONS sip:bob@example.com SIP/2.0\r\nVia: nonsense\r\nContent-Length: 0\r\n\r\n"
        writer.write(bad + bytes(options(2, "tcp")))
        data, error, _ = await inbox.error()
        assert data.startswith(b"OPTIONS") and error.status == 400
        message, _ = await inbox.get()
        assert message.call_id == "call-2"
        writer.close()


@pytest.mark.asyncio
async def test_tcp_missing_content_length_closes() -> None:
    inbox = Inbox()
    async with layer(inbox) as server:
        address = await server.listen("tcp", "127.0.0.1", 0)
        reader, writer = await raw_connect(address)
        raw = bytes(options(1, "tcp")).replace(b"Content-Length: 0\r\n", b"")
        writer.write(raw)
        _, error, _ = await inbox.error()
        assert "Content-Length" in error.reason
        assert await read_eof(reader) == b""
        await wait_until(lambda: server.connection_count == 0)
        writer.close()


@pytest.mark.asyncio
async def test_tcp_oversize_message_closes_connection() -> None:
    inbox = Inbox()
    async with layer(inbox, TransportConfig(max_message_size=1024)) as server:
        address = await server.listen("tcp", "127.0.0.1", 0)
        reader, writer = await raw_connect(address)
        big = options(1, "tcp")
        big.body = b"x" * 5000
        writer.write(bytes(big))
        _, error, _ = await inbox.error()
        assert error.status == 513
        assert await read_eof(reader) == b""
        assert inbox.messages.empty()
        writer.close()


@pytest.mark.asyncio
async def test_tcp_endless_header_closes_connection() -> None:
    inbox = Inbox()
    async with layer(inbox, TransportConfig(max_message_size=1024)) as server:
        address = await server.listen("tcp", "127.0.0.1", 0)
        reader, writer = await raw_connect(address)
        writer.write(b"OPTIONS sip:bob@example.com SIP/2.0\r\n" + b"X-Junk: aaaaaaaa\r\n" * 200)
        _, error, _ = await inbox.error()
        assert error.status == 513
        assert await read_eof(reader) == b""
        writer.close()


@pytest.mark.asyncio
async def test_slowloris_client_is_disconnected() -> None:
    inbox = Inbox()
    config = TransportConfig(message_timeout=0.5)
    async with layer(inbox, config) as server:
        address = await server.listen("tcp", "127.0.0.1", 0)
        reader, writer = await raw_connect(address)
        started = time.monotonic()
        writer.write(b"OPTIONS sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/TCP ")
        await asyncio.sleep(0.2)
        writer.write(b"h")  # a trickle of bytes does not reset the message timer
        assert await read_eof(reader) == b""
        elapsed = time.monotonic() - started
        assert 0.4 <= elapsed < 3.0
        assert inbox.messages.empty()
        writer.close()


@pytest.mark.asyncio
async def test_complete_messages_reset_the_message_timer() -> None:
    inbox = Inbox()
    async with layer(inbox, TransportConfig(message_timeout=0.5)) as server:
        address = await server.listen("tcp", "127.0.0.1", 0)
        _reader, writer = await raw_connect(address)
        for n in range(4):  # 1.2 s of traffic, but no message is ever pending for 0.5 s
            writer.write(bytes(options(n, "tcp")))
            await inbox.get()
            await asyncio.sleep(0.3)
        assert server.connection_count == 1
        writer.close()


@pytest.mark.asyncio
async def test_idle_connections_are_closed() -> None:
    server_inbox = Inbox()
    config = TransportConfig(idle_timeout=0.5)
    async with layer(server_inbox, config) as server, layer(Inbox(), config) as client:
        address = await server.listen("tcp", "127.0.0.1", 0)
        # A raw connection that never says anything ...
        reader, writer = await raw_connect(address)
        # ... and one the other layer opened and used once.
        await client.send(bytes(options(1, "tcp")), Target("tcp", *address))
        await server_inbox.get()
        assert client.connection_count == 1
        assert await read_eof(reader) == b""
        await wait_until(lambda: server.connection_count == 0 and client.connection_count == 0)
        writer.close()


@pytest.mark.asyncio
async def test_max_connections_is_enforced() -> None:
    inbox = Inbox()
    # Connections in use (a message within eviction_min_idle) are not evicted for newcomers.
    config = TransportConfig(max_connections=2, eviction_min_idle=60.0)
    async with layer(inbox, config) as server:
        address = await server.listen("tcp", "127.0.0.1", 0)
        first = await raw_connect(address)
        second = await raw_connect(address)
        for n, (_, writer) in enumerate((first, second)):
            writer.write(bytes(options(n, "tcp")))
            await inbox.get()
        assert server.connection_count == 2
        third_reader, third_writer = await raw_connect(address)
        assert await read_eof(third_reader) == b""  # refused at once
        assert server.connection_count == 2
        # The first two still work.
        first[1].write(bytes(options(1, "tcp")))
        assert (await inbox.get())[0].call_id == "call-1"
        # Outgoing connections count too.
        async with layer(Inbox()) as other:
            other_address = await other.listen("tcp", "127.0.0.1", 0)
            with pytest.raises(TransportError):
                await server.send(bytes(options(2, "tcp")), Target("tcp", *other_address))
        for _, writer in (first, second, (third_reader, third_writer)):
            writer.close()


@pytest.mark.asyncio
async def test_ws_max_connections_refuses_handshake() -> None:
    inbox = Inbox()
    config = TransportConfig(max_connections=1, eviction_min_idle=60.0)
    async with layer(inbox, config) as server:
        host, port = await server.listen("ws", "127.0.0.1", 0)
        async with ws_connect(
            f"ws://{host}:{port}/", subprotocols=[Subprotocol("sip")], proxy=None
        ) as ws:
            await ws.send(bytes(options(1, "ws")))  # in use: not evicted for a newcomer
            await inbox.get()
            with pytest.raises(InvalidStatus) as info:
                await ws_connect(
                    f"ws://{host}:{port}/", subprotocols=[Subprotocol("sip")], proxy=None
                )
            assert info.value.response.status_code == 503


@pytest.mark.asyncio
async def test_pending_flow_that_closed_falls_back_to_new_connection() -> None:
    server_inbox, client_inbox = Inbox(), Inbox()
    async with layer(server_inbox) as server, layer(client_inbox) as client:
        address = await server.listen("tcp", "127.0.0.1", 0)
        client_address = await client.listen("tcp", "127.0.0.1", 0)
        await client.send(bytes(options(1, "tcp")), Target("tcp", *address))
        _, source = await server_inbox.get()
        assert source.flow is not None
        # An unknown flow is ignored: the target decides.
        sent = await server.send(
            bytes(options(2, "tcp")), Target("tcp", *client_address), flow=source.flow + 1000
        )
        assert sent.flow != source.flow
        message, _ = await client_inbox.get()
        assert message.call_id == "call-2"


# -- WebSocket specifics (RFC 7118) ---------------------------------------------------------


@pytest.mark.asyncio
async def test_ws_text_and_binary_messages() -> None:
    inbox = Inbox()
    async with layer(inbox) as server:
        host, port = await server.listen("ws", "127.0.0.1", 0)
        async with ws_connect(
            f"ws://{host}:{port}/", subprotocols=[Subprotocol("sip")], proxy=None
        ) as ws:
            assert ws.subprotocol == "sip"
            await ws.send(bytes(options(1, "ws")).decode())  # text frame
            await ws.send(bytes(options(2, "ws")))  # binary frame
            first, _ = await inbox.get()
            second, _ = await inbox.get()
            assert [first.call_id, second.call_id] == ["call-1", "call-2"]
            await ws.send(b"garbage")
            _, error, _ = await inbox.error()
            assert error.status == 400
            # One bad WebSocket message does not close the connection.
            await ws.send(bytes(options(3, "ws")))
            assert (await inbox.get())[0].call_id == "call-3"


@pytest.mark.asyncio
async def test_ws_without_sip_subprotocol_is_refused() -> None:
    async with layer(Inbox()) as server:
        host, port = await server.listen("ws", "127.0.0.1", 0)
        with pytest.raises(InvalidStatus) as info:
            await ws_connect(f"ws://{host}:{port}/", proxy=None)
        assert info.value.response.status_code == 400


@pytest.mark.asyncio
async def test_ws_oversize_message_closes() -> None:
    async with layer(Inbox(), TransportConfig(max_message_size=1024)) as server:
        host, port = await server.listen("ws", "127.0.0.1", 0)
        async with ws_connect(
            f"ws://{host}:{port}/", subprotocols=[Subprotocol("sip")], proxy=None
        ) as ws:
            await ws.send(b"x" * 5000)
            await asyncio.wait_for(ws.wait_closed(), TIMEOUT)
            assert ws.close_code == 1009
        await wait_until(lambda: server.connection_count == 0)


# -- UDP specifics ---------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("host", HOSTS)
async def test_udp_garbage_datagram_calls_on_error_only(host: str) -> None:
    inbox = Inbox()
    async with layer(inbox) as server:
        address = await server.listen("udp", host, 0)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"\r\n\r\n", address)  # keep-alive: ignored
            sock.sendto(b"this is not SIP\r\n\r\n", address)
            data, error, source = await inbox.error()
            assert data == b"this is not SIP\r\n\r\n"
            assert error.status == 400
            assert (source.host, source.port) == (host, sock.getsockname()[1])
        await asyncio.sleep(0.2)
        assert inbox.messages.empty() and inbox.errors.empty()


@pytest.mark.asyncio
async def test_udp_oversize_datagram_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    inbox = Inbox()
    async with layer(inbox, TransportConfig(max_message_size=1024)) as server:
        address = await server.listen("udp", "127.0.0.1", 0)
        big = options(1, "udp")
        big.body = b"x" * 2000
        with (
            caplog.at_level(logging.WARNING, logger="sipwire.transport"),
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock,
        ):
            sock.sendto(bytes(big), address)
            sock.sendto(bytes(options(2, "udp")), address)
            message, _ = await inbox.get()
        assert message.call_id == "call-2"
        assert inbox.errors.empty() and inbox.messages.empty()
        assert any("exceeds" in record.getMessage() for record in caplog.records)


@pytest.mark.asyncio
async def test_udp_send_without_listener_opens_ephemeral_socket() -> None:
    server_inbox, client_inbox = Inbox(), Inbox()
    async with layer(server_inbox) as server, layer(client_inbox) as client:
        address = await server.listen("udp", "127.0.0.1", 0)
        sent = await client.send(bytes(options(1, "udp")), Target("udp", *address))
        assert sent.local_port != 0
        _, source = await server_inbox.get()
        assert source.port == sent.local_port
        await server.send(bytes(options(2, "udp")), source.as_target())
        assert (await client_inbox.get())[0].call_id == "call-2"


@pytest.mark.asyncio
async def test_closed_layer_refuses_to_send() -> None:
    async with layer(Inbox()) as client:
        await client.close()
        with pytest.raises(TransportError):
            await client.send(b"x", Target("udp", "127.0.0.1", 5060))
