"""The fuzzer's UDP driver (see :mod:`tests.load.fuzz`).

Datagrams go out round-robin from :data:`FUZZ_SOURCES` addresses in windows
of at most :data:`WINDOW_DATAGRAMS` datagrams / :data:`WINDOW_BYTES`, each
window followed by an OPTIONS "sync" ping from another socket; the previous
window's ping must be answered before the next window goes out. Every
:data:`HEALTH_EVERY` datagrams an OPTIONS from :data:`HEALTH_HOST` must be
answered. 80 % of the 2xx to INVITEs are ACKed, and their dialogs go to the
:class:`~tests.load.mutate.Mutator` for in-dialog requests.
"""

from __future__ import annotations

import collections
import contextlib
import random
import select
import socket
import time

from tests.load.corpus import seed_corpus
from tests.load.fuzz_problems import ProblemTracker
from tests.load.fuzz_report import FuzzResult, Input
from tests.load.mutate import FUZZ_HOST, Mutator
from tests.load.netns import udp_rcvbuf_errors
from tests.load.server import AnswerServer
from tests.load.sipmsg import SipMessage, build_request, parse_sip
from tests.load.uac import options_ok

__all__ = ["UdpFuzzer"]

WINDOW_DATAGRAMS = 32
WINDOW_BYTES = 48 * 1024
HEALTH_EVERY = 10_000
PING_TIMEOUT = 5.0
FUZZ_SOURCES = 32
"""UDP fuzz sources: FUZZ_HOST and 127.0.2.1-31."""
PING_HOST = "127.0.0.6"
HEALTH_HOST = "127.0.0.3"
SYNC_LOST = "a sync OPTIONS got no 200 within 5 s"


class UdpFuzzer:
    """Sends mutated datagrams to one server, in windows, with sync pings and health checks."""

    def __init__(self, server: AnswerServer, result: FuzzResult, seed: int) -> None:
        self.server = server
        self.result = result
        self.target = ("127.0.0.1", server.port)
        # Datagrams go out round-robin from FUZZ_SOURCES addresses: a busy server sheds new
        # dialogs from a source above its fair share, and one source would be shed at once.
        self.fuzz_socks: list[socket.socket] = []
        for n in range(FUZZ_SOURCES):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            sock.bind((FUZZ_HOST if n == 0 else f"127.0.2.{n}", 0))
            sock.setblocking(False)
            self.fuzz_socks.append(sock)
        self.fuzz = self.fuzz_socks[0]
        self.ping = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.ping.bind((PING_HOST, 0))
        self.ping.setblocking(False)
        self.ping_port = int(self.ping.getsockname()[1])
        self.ping_count = 0
        self.answered: set[str] = set()
        """Branches of the pings answered 200 and not waited for yet."""
        self.mutator = Mutator(
            random.Random(seed),
            seed_corpus(),
            host=FUZZ_HOST,
            port=int(self.fuzz.getsockname()[1]),
            server=f"127.0.0.1:{server.port}",
            tag=f"s{seed:x}-",
        )
        self.ack_rng = random.Random(seed * 7919 + 2)
        self.acks_sent = 0

    def close(self) -> None:
        for sock in self.fuzz_socks:
            sock.close()
        self.ping.close()

    def _drain(self, sock: socket.socket) -> None:
        result = self.result
        for _ in range(5000):
            try:
                data = sock.recv(65536)
            except (BlockingIOError, ConnectionRefusedError):
                return
            if data.startswith(b"SIP/2.0 "):
                code = data[8:11].decode("ascii", "replace")
                key = code[0] + "xx" if code[:1].isdigit() else "?"
                result.responses[key] = result.responses.get(key, 0) + 1
                if code == "200" and b" INVITE\r\n" in data:
                    msg = parse_sip(data)
                    if msg is not None and msg.to_tag:
                        self.mutator.dialogs.append(
                            (msg.call_id.encode(), msg.from_tag.encode(), msg.to_tag.encode())
                        )
                        result.dialogs_seen += 1
                        if self.ack_rng.random() < 0.8:  # as a UAC would; the rest time out
                            self._ack(msg)
            else:
                result.requests_from_server += 1

    def _ack(self, response: SipMessage) -> None:
        """ACK a 2xx to an INVITE, from the response's own From, To, Call-ID and CSeq."""
        self.acks_sent += 1
        seq = (response.header("cseq").split() or ["1"])[0]
        uri = response.contact_uri or f"sip:answer@127.0.0.1:{self.target[1]}"
        ack = (
            f"ACK {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {FUZZ_HOST}:{self.mutator.port};branch=z9hG4bKack{self.acks_sent}"
            ";rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: {response.header('from')}\r\n"
            f"To: {response.header('to')}\r\n"
            f"Call-ID: {response.call_id}\r\n"
            f"CSeq: {seq} ACK\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        with contextlib.suppress(OSError):
            self.fuzz.sendto(ack.encode("utf-8", "surrogateescape"), self.target)

    def _ping_request(self) -> tuple[bytes, str]:
        self.ping_count += 1
        branch = f"z9hG4bKping{self.ping_count}"
        data = build_request(
            "OPTIONS",
            f"sip:answer@127.0.0.1:{self.target[1]}",
            via_host=PING_HOST,
            via_port=self.ping_port,
            branch=branch,
            call_id=f"ping{self.ping_count}@fuzz",
            from_tag="ping",
        )
        return data, branch

    def send_ping(self) -> tuple[bytes, str, float]:
        data, branch = self._ping_request()
        with contextlib.suppress(BlockingIOError, ConnectionRefusedError):
            self.ping.sendto(data, self.target)
        return data, branch, time.monotonic()

    def wait_ping(self, ping: tuple[bytes, str, float], timeout: float = PING_TIMEOUT) -> bool:
        """Wait for the 200 to ``ping`` (retransmitted every 0.5 s), draining the fuzz socket."""
        data, branch, sent = ping
        deadline = sent + timeout
        retransmit = sent + 0.5
        if branch in self.answered:  # read while waiting for the ping before
            self.answered.discard(branch)
            return True
        while True:
            now = time.monotonic()
            if now >= deadline:
                return False
            if now >= retransmit:
                self.result.ping_retransmissions += 1
                with contextlib.suppress(BlockingIOError, ConnectionRefusedError):
                    self.ping.sendto(data, self.target)
                retransmit = now + 0.5
            ready, _, _ = select.select(
                [self.ping, *self.fuzz_socks], [], [], max(0.0, min(deadline, retransmit) - now)
            )
            for sock in ready:
                if sock is not self.ping:
                    self._drain(sock)
            if self.ping in ready:
                while True:
                    try:
                        answer = self.ping.recv(65536)
                    except (BlockingIOError, ConnectionRefusedError):
                        break
                    if answer.startswith(b"SIP/2.0 200"):
                        msg = parse_sip(answer)
                        if msg is not None:
                            self.answered.add(msg.branch)
            if branch in self.answered:
                self.answered.discard(branch)
                return True

    def run(self, count: int, *, stop_at: float, problems: ProblemTracker) -> None:
        """Send ``count`` datagrams (or until ``stop_at``); stop at the first failure."""
        result = self.result
        mutator = self.mutator
        batch: list[Input] = []  # since the last health check
        windows: collections.deque[list[Input]] = collections.deque(maxlen=3)
        previous: tuple[bytes, str, float] | None = None
        drops_before = udp_rcvbuf_errors()
        started = time.monotonic()
        sent = 0
        next_health = HEALTH_EVERY
        try:
            while sent < count and time.monotonic() < stop_at:
                window: list[Input] = []
                size = 0
                while sent < count and len(window) < WINDOW_DATAGRAMS and size < WINDOW_BYTES:
                    data, applied = mutator.next()
                    item = Input("udp", sent, data, applied)
                    sock = self.fuzz_socks[sent % FUZZ_SOURCES]
                    try:
                        sock.sendto(data, self.target)
                    except BlockingIOError:
                        self._drain(sock)
                    except OSError as exc:  # EMSGSIZE and the like: not sent, not counted
                        item.mutations.append(f"not sent: {exc.strerror}")
                    window.append(item)
                    size += len(data)
                    sent += 1
                    result.datagram_bytes += len(data)
                result.datagrams = sent
                result.windows += 1
                batch.extend(window)
                windows.append(window)
                ping = self.send_ping()
                if previous is not None and not self.wait_ping(previous):
                    self._fail(SYNC_LOST, batch)
                    return
                previous = ping
                suspects = [item for window in reversed(windows) for item in window]
                if problems.after(suspects, "udp"):
                    return
                if sent >= next_health or sent >= count:
                    next_health += HEALTH_EVERY
                    if not self.wait_ping(ping):
                        self._fail(SYNC_LOST, batch)
                        return
                    previous = None
                    result.health_checks += 1
                    if not self.server.alive():
                        result.alive = False
                        self._fail("the server died", batch)
                        return
                    if options_ok(self.server.port, source=HEALTH_HOST, timeout=5.0) is None:
                        result.health_failures += 1
                        self._fail("health check: OPTIONS from 127.0.0.3 unanswered", batch)
                        return
                    result.rss_peak_kib = max(result.rss_peak_kib, self.server.rss_kib())
                    if problems.after(suspects, "udp"):
                        return
                    batch = []
            if previous is not None and not self.wait_ping(previous):
                self._fail(SYNC_LOST, batch)
        finally:
            result.udp_seconds = time.monotonic() - started
            result.kernel_drops = udp_rcvbuf_errors() - drops_before

    def _fail(self, why: str, batch: list[Input]) -> None:
        self.result.fail(why, alive=self.server.alive(), inputs=batch)

    def replay(self, item: Input) -> bool:
        """Send one datagram again; whether the sync ping after it was answered."""
        with contextlib.suppress(OSError):
            self.fuzz.sendto(item.data, self.target)
        return self.wait_ping(self.send_ping())
