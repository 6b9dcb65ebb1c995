"""The INVITE flooder of ``test_flood.py``: ``python -m tests.load.flooder --help``.

It sends distinct INVITEs that it never ACKs at a fixed rate from one
127.0.0.x socket, then keeps reading what the server sends back, and reports
on stdout as JSON lines.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import select
import socket
import sys
import time
from collections.abc import Sequence

from tests.load.server import LOAD_CPU, pin_self
from tests.load.sipmsg import build_request, sdp_offer

__all__ = ["main"]


def _flood_datagrams(count: int, host: str, port: int, target: str, seed: str) -> list[bytes]:
    """``count`` distinct INVITEs (~500 bytes with SDP): own Call-ID, branch and From tag each."""
    body = sdp_offer(host)
    template = build_request(
        "INVITE",
        f"sip:answer@{target}",
        via_host=host,
        via_port=port,
        branch="z9hG4bK@BRANCH@",
        call_id="@CALLID@",
        from_tag="@TAG@",
        contact=True,
        body=body,
        extra=[("User-Agent", "sipwire-flooder")],
    )
    head, _, rest = template.partition(b"@BRANCH@")
    mid, _, rest = rest.partition(b"@TAG@")
    mid2, _, tail = rest.partition(b"@CALLID@")
    out = []
    for n in range(count):
        key = f"{seed}{n:07d}".encode()
        out.append(b"".join((head, key, mid, key, mid2, key, b"@flood", tail)))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Send never-ACKed INVITEs at a fixed rate, then keep reading what comes back.

    Prints JSON lines on stdout: ``{"event": "start", "t": ...}``,
    ``{"event": "end", ...}`` when sending stops, and ``{"event": "stats", ...}``
    when it exits: after ``--linger`` seconds, or earlier when stdin closes.
    Times are ``time.monotonic()``, which is system-wide on Linux.
    """
    parser = argparse.ArgumentParser(prog="python -m tests.load.flooder")
    parser.add_argument("--target", required=True, help="HOST:PORT (127.0.0.0/8 only)")
    parser.add_argument("--bind", default="127.0.0.2")
    parser.add_argument("--rate", type=int, default=5000, help="INVITEs per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--linger", type=float, default=90.0, help="max seconds read after")
    parser.add_argument(
        "--stop-on-eof", action="store_true", help="stop lingering when stdin closes"
    )
    parser.add_argument("--cpu", type=int, default=LOAD_CPU)
    args = parser.parse_args(argv)
    host, _, port_text = args.target.rpartition(":")
    if not host.startswith("127.") or not args.bind.startswith("127."):
        parser.error("loopback addresses only")
    pin_self(args.cpu)
    target = (host, int(port_text))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
    sock.bind((args.bind, 0))
    sock.setblocking(False)
    own_port = int(sock.getsockname()[1])
    total = int(args.rate * args.seconds)
    datagrams = _flood_datagrams(
        total, args.bind, own_port, args.target, secrets.token_hex(3) + "-"
    )
    statuses: dict[str, int] = {}
    received = {"datagrams": 0, "bytes": 0, "requests": 0}
    stdin_open = bool(args.stop_on_eof)

    def emit(obj: dict[str, object]) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    def drain() -> None:
        for _ in range(10000):
            try:
                data = sock.recv(65536)
            except (BlockingIOError, ConnectionRefusedError):
                return
            received["datagrams"] += 1
            received["bytes"] += len(data)
            if data.startswith(b"SIP/2.0 "):
                code = data[8:11].decode("ascii", "replace")
                statuses[code] = statuses.get(code, 0) + 1
            else:
                received["requests"] += 1

    sent = sent_bytes = send_errors = 0
    start = time.monotonic()
    emit({"event": "start", "t": start, "port": own_port, "planned": total})
    while sent < total:
        now = time.monotonic()
        due = min(total, int((now - start) * args.rate) + 1)
        while sent < due:
            data = datagrams[sent]
            try:
                sock.sendto(data, target)
                sent_bytes += len(data)
            except (BlockingIOError, ConnectionRefusedError):
                send_errors += 1
            sent += 1
        drain()
        if now - start > args.seconds * 3:  # cannot keep up at all: stop anyway
            break
        time.sleep(0.0005)
    end = time.monotonic()
    emit(
        {
            "event": "end",
            "t": end,
            "sent": sent,
            "sent_bytes": sent_bytes,
            "send_errors": send_errors,
            "achieved_rate": sent / max(end - start, 1e-9),
        }
    )
    del datagrams
    linger_until = end + args.linger
    while time.monotonic() < linger_until:
        watch = [sock.fileno()]
        if stdin_open:
            watch.append(sys.stdin.fileno())
        ready, _, _ = select.select(watch, [], [], 0.2)
        if sock.fileno() in ready:
            drain()
        if stdin_open and sys.stdin.fileno() in ready and not os.read(sys.stdin.fileno(), 4096):
            break
    drain()
    emit(
        {
            "event": "stats",
            "t": time.monotonic(),
            "sent": sent,
            "sent_bytes": sent_bytes,
            "send_errors": send_errors,
            "received_datagrams": received["datagrams"],
            "received_bytes": received["bytes"],
            "received_requests": received["requests"],
            "statuses": statuses,
        }
    )
    sock.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
