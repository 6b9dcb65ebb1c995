"""How many simultaneous G.711 calls one ``sipwire answer --echo`` process echoes
with < 1 % of packets lost or late, and its CPU per packet.

    .venv/bin/python bench/media_echo.py [--calls 100,200,300,400] [--seconds 20]
    .venv/bin/python bench/media_echo.py --quick        # 5 calls for 3 s: a check

The server runs pinned to CPU 0. The load generator, this process, pins
itself to CPU 1: for each step it places N calls with sipwire (PCMU only,
so the echo has no DTMF to think about), then sends 50 RTP packets a second
per call, each carrying a number (in µ-law codes that decode and re-encode
to themselves), and times the echoes. A packet is *lost* when its echo
never comes, *late* when it comes more than ``--late`` ms after it left
(the echo path holds it in a jitter buffer for 20-60 ms). The server's CPU
time (``/proc/PID/stat``) divided by the packets it received and sent is
its cost per packet. The same generator against a plain UDP echo written
in C (``bench/udp_echo.c``, no SIP: each call's socket sends to it
directly) is the floor. Steps stop at the first N over 1 % lost or late.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sipwire import MediaConfig, UserAgent
from sipwire.core.sdp_media import SdpMedia

SERVER_CPU = 0
GENERATOR_CPU = 1
PTIME = 0.02
PAYLOAD = 160
_NIBBLE = 0x10  # µ-law codes 0x10-0x1F survive decode + encode unchanged
_HEADER = struct.Struct("!BBHII")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pin(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") else []


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _mark(number: int) -> bytes:
    return bytes(_NIBBLE | ((number >> shift) & 0xF) for shift in range(28, -4, -4))


def _unmark(payload: bytes) -> int | None:
    if len(payload) < 8:
        return None
    number = 0
    for octet in payload[:8]:
        if octet & 0xF0 != _NIBBLE:
            return None
        number = (number << 4) | (octet & 0xF)
    return number


@dataclass
class Step:
    target: str
    calls: int
    sent: int = 0
    echoed: int = 0
    late: int = 0
    p50: float = 0.0
    p99: float = 0.0
    cpu: float = 0.0
    """Server CPU seconds during the measurement."""
    seconds: float = 0.0

    @property
    def lost(self) -> int:
        return self.sent - self.echoed

    @property
    def bad_share(self) -> float:
        return (self.lost + self.late) / self.sent if self.sent else 1.0

    def row(self) -> str:
        per_packet = self.cpu / (self.sent + self.echoed) * 1e6 if self.sent else 0.0
        sent = max(self.sent, 1)
        return (
            f"{self.target:<16} {self.calls:>6} {self.sent:>9} {self.lost / sent:>7.2%} "
            f"{self.late / sent:>7.2%} {self.p50:>8.1f} {self.p99:>8.1f} "
            f"{self.cpu / self.seconds:>7.0%} {per_packet:>9.1f}"
        )


HEADER = (
    f"{'server':<16} {'calls':>6} {'packets':>9} {'lost':>7} {'late':>7} "
    f"{'p50 ms':>8} {'p99 ms':>8} {'CPU':>7} {'µs/pkt':>9}"
)


class Generator:
    """N streams: a socket each, 50 packets a second, echoes timed."""

    def __init__(self, targets: list[tuple[socket.socket, tuple[str, int]]], late: float) -> None:
        self.targets = targets
        self.late = late
        self.sent_at: dict[int, float] = {}
        self.latencies: list[float] = []
        self.late_count = 0
        self.echoed = 0
        self.sent = 0

    def _readable(self, sock: socket.socket) -> None:
        now = time.perf_counter()
        for _ in range(64):
            try:
                data = sock.recv(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue
            number = _unmark(data[12:])
            if number is None:
                continue
            sent = self.sent_at.pop(number, None)
            if sent is None:
                continue
            latency = now - sent
            self.echoed += 1
            self.latencies.append(latency)
            if latency > self.late:
                self.late_count += 1

    async def run(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        for sock, _ in self.targets:
            loop.add_reader(sock.fileno(), self._readable, sock)
        count = len(self.targets)
        groups = 10  # spread the calls over the packet time
        filler = bytes([0xFF]) * (PAYLOAD - 8)
        seqs = [0] * count
        number = 0
        start = loop.time()
        slot = 0
        try:
            while loop.time() - start < seconds:
                due = start + slot * PTIME / groups
                await asyncio.sleep(max(0.0, due - loop.time()))
                group = slot % groups
                stamp = (slot // groups) * PAYLOAD
                for index in range(group, count, groups):
                    sock, address = self.targets[index]
                    header = _HEADER.pack(0x80, 0, seqs[index] & 0xFFFF, stamp, 0x1000 + index)
                    seqs[index] += 1
                    number += 1
                    self.sent_at[number] = time.perf_counter()
                    with contextlib.suppress(OSError):
                        sock.sendto(header + _mark(number) + filler, address)
                    self.sent += 1
                slot += 1
            await asyncio.sleep(max(0.5, self.late * 2))  # the last echoes
        finally:
            for sock, _ in self.targets:
                loop.remove_reader(sock.fileno())


@contextlib.contextmanager
def _process(args: list[str]) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        if proc.poll() is not None:
            raise RuntimeError(f"{args[0]} exited with {proc.returncode}")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _measure(
    proc: subprocess.Popen[bytes], step: Step, generator: Generator, seconds: float
) -> Step:
    cpu = _cpu_seconds(proc.pid)
    started = time.perf_counter()
    await generator.run(seconds)
    step.seconds = time.perf_counter() - started
    step.cpu = _cpu_seconds(proc.pid) - cpu
    step.sent, step.echoed, step.late = generator.sent, generator.echoed, generator.late_count
    if generator.latencies:
        ordered = sorted(generator.latencies)
        step.p50 = statistics.median(ordered) * 1000
        step.p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    return step


async def sipwire_step(calls: int, seconds: float, late: float) -> Step:
    port = _free_port()
    args = [*_pin(SERVER_CPU), sys.executable, "-m", "sipwire.cli.main", "answer", "--echo"]
    args += ["--listen", f"udp:127.0.0.1:{port}"]
    with _process(args) as proc:
        sockets: list[socket.socket] = []
        medias: list[SdpMedia] = []
        config = MediaConfig(codecs=("PCMU",))

        def media() -> SdpMedia:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", 0))
            sock.setblocking(False)
            sockets.append(sock)
            made = SdpMedia(config, address="127.0.0.1", audio_port=sock.getsockname()[1])
            medias.append(made)
            return made

        ua = UserAgent("sip:load@127.0.0.1", media_factory=media, session_expires=None)
        async with ua:
            placed = []
            for start in range(0, calls, 50):  # 50 INVITEs at a time
                batch = [
                    ua.call(f"sip:echo@127.0.0.1:{port}", timeout=30)
                    for _ in range(start, min(calls, start + 50))
                ]
                placed += await asyncio.gather(*batch)
            targets = []
            for sock, made in zip(sockets, medias, strict=True):
                stream = made.negotiated[0]
                assert stream.remote_address is not None
                targets.append((sock, (stream.remote_address, stream.remote_port)))
            await asyncio.sleep(0.5)
            step = await _measure(
                proc, Step("sipwire answer", calls), Generator(targets, late), seconds
            )
            await asyncio.gather(*(call.hangup() for call in placed))
        for sock in sockets:
            sock.close()
    return step


async def c_echo_step(binary: Path, calls: int, seconds: float, late: float) -> Step:
    port = _free_port()
    with _process([*_pin(SERVER_CPU), str(binary), str(port)]) as proc:
        sockets = []
        for _ in range(calls):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", 0))
            sock.setblocking(False)
            sockets.append(sock)
        targets = [(sock, ("127.0.0.1", port)) for sock in sockets]
        step = await _measure(proc, Step("C udp echo", calls), Generator(targets, late), seconds)
        for sock in sockets:
            sock.close()
    return step


def _compile(directory: Path) -> Path | None:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    binary = directory / "udp_echo"
    source = Path(__file__).with_name("udp_echo.c")
    subprocess.run([compiler, "-O2", "-o", str(binary), str(source)], check=True)
    return binary


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--calls", default="100,200,300,400,500", help="steps of simultaneous calls"
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of load per step")
    parser.add_argument("--late", type=float, default=250.0, help="ms after which an echo is late")
    parser.add_argument(
        "--quick", action="store_true", help="5 calls for 3 s: check the bench runs"
    )
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > GENERATOR_CPU:
        os.sched_setaffinity(0, {GENERATOR_CPU})
    ladder = [5] if args.quick else [int(n) for n in args.calls.split(",")]
    seconds = 3.0 if args.quick else args.seconds
    late = args.late / 1000
    print(HEADER, flush=True)
    best = 0
    for calls in ladder:
        step = await sipwire_step(calls, seconds, late)
        print(step.row(), flush=True)
        if step.bad_share >= 0.01:
            break
        best = calls
    with tempfile.TemporaryDirectory() as tmp:
        binary = _compile(Path(tmp))
        if binary is not None:
            for calls in ladder[-1:] if args.quick else ladder:
                print((await c_echo_step(binary, calls, seconds, late)).row(), flush=True)
    print(f"sipwire answer --echo: {best} simultaneous G.711 calls with < 1 % lost or late")


if __name__ == "__main__":
    asyncio.run(main())
