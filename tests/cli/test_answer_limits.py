"""``sipwire answer --source-rate-limit``: a pike-like limit per source address."""

from __future__ import annotations

import socket
import time

import pytest

from tests.interop.sipp import answer_server, free_port

pytestmark = pytest.mark.timeout(60)


def _options(n: int, port: int) -> bytes:
    return (
        f"OPTIONS sip:ua@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-rl-{n}\r\n"
        f"From: <sip:probe@127.0.0.1>;tag=rl{n}\r\n"
        "To: <sip:ua@127.0.0.1>\r\n"
        f"Call-ID: rl-{n}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def _answered(server_port: int, count: int) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        for n in range(count):
            sock.sendto(_options(n, port), ("127.0.0.1", server_port))
        sock.settimeout(1.0)
        answered = 0
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            answered += data.startswith(b"SIP/2.0 200")
        return answered


@pytest.mark.parametrize(("limit", "low", "high"), [(None, 50, 50), ("5", 5, 15)])
def test_source_rate_limit(limit: str | None, low: int, high: int) -> None:
    port = free_port()
    extra = ("--source-rate-limit", limit) if limit else ()
    with answer_server(f"udp:127.0.0.1:{port}", extra=extra):
        answered = _answered(port, 50)
    assert low <= answered <= high
