"""The fuzzer's TCP driver (see :mod:`tests.load.fuzz`).

Each framing is a connection from one of 250 127.0.1.x addresses carrying 1
to 4 mutated messages (bad Content-Length values, keep-alive CRLFs and
oversized headers among the mutations), written in pieces split at random
points, then half-closed, closed, reset or left open (up to 64 at a time).
Every framing is followed by a health check: OPTIONS on a fresh connection
from :data:`TCP_HEALTH_HOST` must get its 200 within 5 s.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import random
import socket
import struct
import time

from tests.load.fuzz_problems import ProblemTracker
from tests.load.fuzz_report import FuzzResult, Input
from tests.load.mutate import MUTATIONS, Mutator
from tests.load.server import AnswerServer
from tests.load.uac import tcp_options_ok

__all__ = ["TcpFuzzer"]

TCP_HEALTH_HOST = "127.0.0.4"
_, content_length = MUTATIONS["content_length"]


class TcpFuzzer:
    """Sends mutated TCP framings to one server, each followed by a health check."""

    def __init__(
        self, server: AnswerServer, result: FuzzResult, mutator: Mutator, seed: int
    ) -> None:
        self.server = server
        self.result = result
        self.mutator = mutator
        self.target = ("127.0.0.1", server.port)
        self.rng = random.Random(seed * 7919 + 1)
        self.held: collections.deque[socket.socket] = collections.deque()
        self.sources = [f"127.0.1.{n}" for n in range(1, 251)]

    def close(self) -> None:
        while self.held:
            self.held.popleft().close()

    def framing(self, index: int) -> Input:
        """The next framing (numbered ``index``): 1 to 4 messages, written in pieces."""
        rng = self.rng
        mutator = self.mutator
        parts: list[bytes] = []
        applied: list[str] = []
        for _ in range(rng.choice([1, 1, 2, 3, 4])):
            r = rng.random()
            if r < 0.1:
                parts.append(b"\r\n" * rng.randint(1, 3))  # keep-alives
                applied.append("crlf")
                continue
            base = mutator.base(rng).replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP")
            if r < 0.25:
                parts.append(base)
                applied.append("valid")
                continue
            data, names = mutator.next()
            data = data.replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP")
            if rng.random() < 0.2:
                data = content_length(rng, data, mutator)
                names.append("content_length")
            if rng.random() < 0.03:
                data = data.replace(b"\r\n", b"\r\nX-Pad: " + b"p" * 70000 + b"\r\n", 1)
                names.append("oversized")
            parts.append(data)
            applied.append("+".join(names))
        stream = b"".join(parts)
        cuts = sorted(rng.randrange(len(stream) + 1) for _ in range(rng.choice([0, 1, 2, 5, 20])))
        chunks = [b - a for a, b in itertools.pairwise([0, *cuts, len(stream)]) if b > a]
        close = rng.choices(["shutdown", "close", "reset", "hold"], [40, 35, 15, 10])[0]
        return Input("tcp", index, stream, applied, chunks, close)

    def send(self, item: Input, *, keep: bool) -> None:
        """One framing on a fresh connection (``keep``: a "hold" framing stays open)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((self.sources[item.index % len(self.sources)], 0))
            sock.settimeout(2.0)
            sock.connect(self.target)
            at = 0
            for n, size in enumerate(item.chunks):
                sock.sendall(item.data[at : at + size])
                at += size
                if n and n % 4 == 0:
                    time.sleep(0.0005)  # now and then let the server read a piece alone
            if item.close == "hold" and keep:
                self.held.append(sock)
                if len(self.held) > 64:
                    self.held.popleft().close()
                return
            if item.close == "reset":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif item.close == "shutdown":
                sock.shutdown(socket.SHUT_WR)
                sock.settimeout(0.01)
                with contextlib.suppress(OSError):
                    while sock.recv(65536):
                        pass
        except OSError:
            pass
        sock.close()

    def run(self, count: int, *, stop_at: float, problems: ProblemTracker) -> None:
        """Send ``count`` framings (or until ``stop_at``); stop at the first failure."""
        result = self.result
        started = time.monotonic()
        recent: collections.deque[Input] = collections.deque(maxlen=8)
        try:
            for index in range(count):
                if time.monotonic() >= stop_at:
                    break
                item = self.framing(index)
                recent.append(item)
                self.send(item, keep=True)
                result.framings += 1
                result.tcp_bytes += len(item.data)
                result.tcp_health_checks += 1
                if not tcp_options_ok(self.server.port, source=TCP_HEALTH_HOST, timeout=5.0):
                    result.tcp_health_failures += 1
                    why = "TCP health check: no 200 on a fresh connection within 5 s"
                    result.fail(why, alive=self.server.alive(), inputs=list(recent))
                    return
                if problems.after([item, *reversed(recent)][:4], "tcp"):
                    return
                if index % 500 == 0:
                    result.rss_peak_kib = max(result.rss_peak_kib, self.server.rss_kib())
        finally:
            result.tcp_seconds = time.monotonic() - started

    def replay(self, item: Input, *, timeout: float) -> bool:
        """Send one framing again; whether a health check after it was answered."""
        self.send(item, keep=False)
        return tcp_options_ok(self.server.port, source=TCP_HEALTH_HOST, timeout=timeout)
