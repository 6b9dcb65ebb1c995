"""sipp's built-in ``uac`` scenario against ``sipwire answer`` on loopback.

500 calls at 50 calls/s over UDP and over TCP with no failed call, and over
UDP again with sipp dropping 10 % of the packets (-lost 10): retransmissions
must still complete every call.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop.sipp import SIPP, answer_server, free_port, run_sipp

pytestmark = pytest.mark.skipif(SIPP is None, reason="sipp not installed (Debian: sip-tester)")

CALLS = 500
RATE = 50


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_sipp_uac_500_calls(transport: str, tmp_path: Path) -> None:
    port = free_port()
    with answer_server(f"{transport}:127.0.0.1:{port}"):
        result = run_sipp(
            f"127.0.0.1:{port}",
            tmp_path,
            calls=CALLS,
            rate=RATE,
            transport="u1" if transport == "udp" else "t1",
        )
    assert result.failed == 0, result.stderr
    assert result.successful == CALLS, (result.stats, result.stderr)
    assert result.returncode == 0, result.stderr


def test_sipp_uac_with_10_percent_loss(tmp_path: Path) -> None:
    port = free_port()
    with answer_server(f"udp:127.0.0.1:{port}"):
        result = run_sipp(
            f"127.0.0.1:{port}",
            tmp_path,
            calls=CALLS,
            rate=RATE,
            extra=("-lost", "10"),
            timeout=150.0,
        )
    assert result.failed == 0, (result.stats, result.stderr)
    assert result.successful == CALLS, (result.stats, result.stderr)
    # Loss happened and was repaired by retransmissions.
    assert int(result.stats.get("Retransmissions(C)", "0")) > 0
    assert result.returncode == 0, result.stderr


def test_malformed_datagram_gets_400_on_the_wire() -> None:
    import socket

    port = free_port()
    bad = (
        b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKbad1\r\n"
        b"Max-Forwards: 70\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\n"
        b"Call-ID: bad1\r\nCSeq: 99999999999 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
    with (
        answer_server(f"udp:127.0.0.1:{port}"),
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock,
    ):
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        # rport: the answer comes back to this socket, not to the Via's port 9.
        sock.sendto(bad.replace(b"z9hG4bKbad1", b"z9hG4bKbad1;rport"), ("127.0.0.1", port))
        data, _ = sock.recvfrom(65536)
    assert data.startswith(b"SIP/2.0 400 ")
    assert b"CSeq: 99999999999 OPTIONS\r\n" in data
