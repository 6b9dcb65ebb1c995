"""How many simultaneous calls one ``sipwire answer --echo`` process echoes with
< 1 % of packets lost or late, and its CPU per packet: plain G.711, SRTP G.711
and Opus in one run, next to a plain UDP echo in C.

    .venv-bench/bin/python bench/media_echo.py                 # all three modes
    .venv-bench/bin/python bench/media_echo.py --mode srtp --calls 100,200
    .venv-bench/bin/python bench/media_echo.py --quick         # 5 calls for 3 s: a check

The server runs pinned to CPU 0. The load generator, this process, pins
itself to CPU 1: for each step it places N calls with sipwire's UserAgent
(signalling only; its SDP from ``SdpMedia``, one codec, RTP and RTCP on one
port), then sends 50 RTP packets a second per call from raw sockets and
times the echoes. The modes (``--mode``, all three by default):

``g711``
    ``sipwire answer --echo``, PCMU. Each packet carries a number in µ-law
    codes that decode and re-encode to themselves. A packet is *lost* when no
    echo carries its number, *late* when the echo comes more than ``--late``
    ms after the packet left (the echo path holds it in a jitter buffer for
    20-60 ms).
``srtp``
    The same over SDES-SRTP, AES_CM_128_HMAC_SHA1_80: ``sipwire answer --echo
    --srtp required --srtp-insecure-signalling`` (the keys travel in the SDP
    over UDP, which is what the opt-in is for; loopback only). The generator
    protects each packet with its offered key and unprotects the echoes with
    the key of the server's answer (``sipwire.media.srtp.SrtpStream``, keys
    as the negotiator read them from the ``a=crypto`` lines); lost and late
    as for ``g711``. An echo that fails authentication counts as lost.
``opus``
    ``sipwire answer --echo --codecs opus``: the server decodes each packet
    with libopus and encodes what it plays back. Opus is lossy, so no number
    survives; the generator sends a 1 kHz tone encoded once before the run
    (one second of packets, reused). The server sends Opus silence (about
    20 bytes a packet) whenever it has nothing to echo, while its echoed
    tone is 60-110 bytes a packet. So an echo *counts* when its payload is
    at least ``TONE_BYTES`` (48); the k-th counted echo of a call answers the
    call's k-th packet, and is *late* when it comes more than ``--late`` ms
    after that packet left. *Lost* is the packets without a counted echo
    (the server dropped one, or had nothing to play at a packet time, or
    the echo never came back) plus the frames the server made up by
    concealment (the ``concealed N`` of its end-of-call statistics lines):
    a packet that reached it late, or never, is concealed with Opus PLC,
    and the concealed audio comes back as tone, so the echo count alone
    would not see it. Limits: Opus' look-ahead puts the end of the last
    tone packet into the first silence packet after it, which then counts;
    so can the first silence packet after a gap in the echo. A step can
    thus hide 0-2 missing packets a call (0.2 % of a 20 s step).

After the load of each step the generator sends filler (µ-law silence, Opus
silence: never matched to anything) while the last echoes come back and
until the calls have ended, so the server's jitter buffer never runs dry
and conceals nothing at the end of a step.

The server's CPU time (``/proc/PID/stat``) divided by the RTP packets it
received and sent (filler included) is its cost per packet. The same
generator against a plain UDP echo written in C (``bench/udp_echo.c``, no
SIP: each call's socket sends to it directly; G.711 packets) is the floor.
Steps of N calls go up a ladder (``--calls`` for G.711 and SRTP,
``--opus-calls`` for Opus) and stop at the first N over 1 % lost or late; a
mode sustains the last N before it. Two more columns, for every mode:
``srv lost``, the share of our packets the server's RTCP reported lost
(the last SR/RR report block about each call: cumulative lost over
extended highest sequence + 1; reports come every ~5 s), and
``concealed``, the frames the server concealed per packet sent; only Opus
counts the latter in ``lost`` (a G.711 packet lost, late or concealed has
no numbered echo already). The run ends with its command and a table of
calls sustained and µs per packet for each mode and the C floor; the exit
status is 1 when a mode held no step or was skipped (Opus without PyAV).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import secrets
import shlex
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sipwire import MediaConfig, UserAgent, tone
from sipwire.core.sdp_media import SdpMedia
from sipwire.media.errors import MediaError, MediaFormatError
from sipwire.media.rtcp import ReceiverReport, SenderReport, is_rtcp, parse_rtcp
from sipwire.media.srtp import SrtpStream

SERVER_CPU = 0
GENERATOR_CPU = 1
PTIME = 0.02
PAYLOAD = 160
_NIBBLE = 0x10  # µ-law codes 0x10-0x1F survive decode + encode unchanged
_HEADER = struct.Struct("!BBHII")
_FILLER = bytes([0xFF]) * PAYLOAD  # µ-law silence
SUITE = "AES_CM_128_HMAC_SHA1_80"
OPUS_CLOCK = 48000
TONE_BYTES = 48
"""An Opus echo of at least this many payload bytes carries the tone (silence: ~21)."""
MODES = ("g711", "srtp", "opus")
TITLES = {
    "g711": "G.711 (PCMU)",
    "srtp": "SRTP G.711 (AES_CM_128_HMAC_SHA1_80)",
    "opus": "Opus (48 kHz, 32 kbit/s)",
    "c": "C udp echo (floor)",
}


def _pin(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") else []


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


def _opus_tone() -> tuple[list[bytes], bytes]:
    """One second of a 1 kHz tone in 20 ms Opus packets (20 whole periods a packet,
    so the second loops without a click), and a packet of silence, encoded once:
    the generator reuses them."""
    from sipwire.media.wideband import OPUS

    encoder = OPUS.encoder()
    samples = tone(1000.0, 1.0, rate=OPUS_CLOCK, level=0.5).astype(np.int16)
    frame = int(OPUS_CLOCK * PTIME)
    packets = [encoder.encode(samples[i : i + frame]) for i in range(0, len(samples), frame)]
    silent = OPUS.encoder()
    silence = [silent.encode(np.zeros(frame, np.int16)) for _ in range(10)][-1]
    return packets, silence


@dataclass
class Stream:
    """One call's media as the generator sees it."""

    sock: socket.socket
    address: tuple[str, int]
    payload_type: int
    ssrc: int
    srtp: SrtpStream | None = None
    sequence: int = 0
    sent_at: list[float] = field(default_factory=list)
    """Opus: when each packet left (the k-th tone echo answers the k-th)."""
    tone_echoes: int = 0
    server_lost: int = 0
    server_expected: int = 0
    """From the last report block of the server's RTCP about this stream."""


@dataclass
class Step:
    target: str
    calls: int
    sent: int = 0
    echoed: int = 0
    """Echoes that answered a packet of ours (numbered, or a tone echo for Opus)."""
    received: int = 0
    """RTP packets received from the server (silence, echoes, failures)."""
    late: int = 0
    filler: int = 0
    """Filler packets sent while the last echoes came back (in the CPU window)."""
    server_loss: float | None = None
    """Share of our packets the server's RTCP says it lost (None: no report yet)."""
    concealed: int | None = None
    """Frames the server made up by concealment (its end-of-call lines; None: C echo)."""
    count_concealed: bool = False
    """Whether concealed frames count as lost (Opus: they come back as tone)."""
    p50: float = 0.0
    p99: float = 0.0
    cpu: float = 0.0
    """Server CPU seconds during the measurement."""
    seconds: float = 0.0

    @property
    def lost_share(self) -> float:
        sent = max(self.sent, 1)
        missing = self.sent - self.echoed
        if self.count_concealed:
            missing += self.concealed or 0
        return missing / sent

    @property
    def bad_share(self) -> float:
        return self.lost_share + self.late / self.sent if self.sent else 1.0

    @property
    def per_packet(self) -> float:
        packets = self.sent + self.filler + self.received
        return self.cpu / packets * 1e6 if packets else 0.0

    def row(self) -> str:
        sent = max(self.sent, 1)
        server = "-" if self.server_loss is None else f"{self.server_loss:.2%}"
        made_up = "-" if self.concealed is None else f"{self.concealed / sent:.2%}"
        return (
            f"{self.target:<16} {self.calls:>6} {self.sent:>9} {self.lost_share:>7.2%} "
            f"{self.late / sent:>7.2%} {server:>8} {made_up:>9} {self.p50:>8.1f} {self.p99:>8.1f} "
            f"{self.cpu / max(self.seconds, 1e-9):>7.0%} {self.per_packet:>9.1f}"
        )


HEADER = (
    f"{'server':<16} {'calls':>6} {'packets':>9} {'lost':>7} {'late':>7} {'srv lost':>8} "
    f"{'concealed':>9} "
    f"{'p50 ms':>8} {'p99 ms':>8} {'CPU':>7} {'µs/pkt':>9}"
)


class Generator:
    """N streams: a socket each, 50 packets a second, echoes counted and timed."""

    def __init__(
        self,
        streams: list[Stream],
        late: float,
        opus: list[bytes] | None = None,
        opus_silence: bytes = b"",
    ) -> None:
        self.streams = streams
        self.late = late
        self.opus = opus
        self.sent_at: dict[int, float] = {}
        self.latencies: list[float] = []
        self.late_count = 0
        self.echoed = 0
        self.received = 0
        self.sent = 0
        self.failures = 0
        """Echoes that did not unprotect (SRTP)."""
        self.filler_sent = 0
        self.silence = opus_silence
        self._start: float | None = None
        self._slot = 0
        self._number = 0

    def _rtcp(self, stream: Stream, data: bytes) -> None:
        if stream.srtp is not None:
            plain = stream.srtp.unprotect_rtcp(data)
            if plain is None:
                return
            data = plain
        with contextlib.suppress(MediaFormatError):
            for packet in parse_rtcp(data, strict=False):
                if isinstance(packet, SenderReport | ReceiverReport):
                    for block in packet.reports:
                        if block.ssrc == stream.ssrc:
                            stream.server_lost = max(0, block.cumulative_lost)
                            stream.server_expected = block.highest_sequence + 1  # ours start at 0

    def _readable(self, stream: Stream) -> None:
        now = time.perf_counter()
        sock = stream.sock
        for _ in range(64):
            try:
                data = sock.recv(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue
            if is_rtcp(data):
                self._rtcp(stream, data)
                continue
            self.received += 1
            if stream.srtp is not None:
                plain = stream.srtp.unprotect(data)
                if plain is None:
                    self.failures += 1
                    continue
                data = plain
            if self.opus is not None:
                if len(data) - 12 < TONE_BYTES or stream.tone_echoes >= len(stream.sent_at):
                    continue
                sent = stream.sent_at[stream.tone_echoes]
                stream.tone_echoes += 1
            else:
                number = _unmark(data[12:])
                if number is None:
                    continue
                found = self.sent_at.pop(number, None)
                if found is None:
                    continue
                sent = found
            latency = now - sent
            self.echoed += 1
            self.latencies.append(latency)
            if latency > self.late:
                self.late_count += 1

    def _packet(self, stream: Stream, stamp: int, number: int | None) -> bytes:
        """The next packet of ``stream``: numbered or tone (``number`` None: filler,
        µ-law 0xFF or Opus silence, which no echo is matched to)."""
        header = _HEADER.pack(
            0x80, stream.payload_type, stream.sequence & 0xFFFF, stamp, stream.ssrc
        )
        if self.opus is not None:
            payload = self.opus[stream.sequence % len(self.opus)] if number else self.silence
        else:
            payload = _FILLER if number is None else _mark(number) + _FILLER[8:]
        stream.sequence += 1
        packet = header + payload
        if stream.srtp is not None:
            protected = stream.srtp.protect(packet)
            return b"" if protected is None else protected
        return packet

    async def _send(self, seconds: float, *, measured: bool) -> None:
        """50 packets a second per stream for ``seconds``, the streams spread over
        the packet time; the clock carries on from the last call."""
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        start, count, groups = self._start, len(self.streams), 10
        increment = int(OPUS_CLOCK * PTIME) if self.opus is not None else PAYLOAD
        until = loop.time() + seconds
        while loop.time() < until:
            slot = self._slot
            await asyncio.sleep(max(0.0, start + slot * PTIME / groups - loop.time()))
            stamp = (slot // groups) * increment
            for index in range(slot % groups, count, groups):
                stream = self.streams[index]
                number = None
                if measured:
                    self._number += 1
                    number = self._number
                packet = self._packet(stream, stamp, number)
                now = time.perf_counter()
                if measured and self.opus is not None:
                    stream.sent_at.append(now)
                elif number is not None:
                    self.sent_at[number] = now
                with contextlib.suppress(OSError):
                    stream.sock.sendto(packet, stream.address)
                if measured:
                    self.sent += 1
                else:
                    self.filler_sent += 1
            self._slot = slot + 1

    async def run(self, seconds: float) -> None:
        """The measurement: ``seconds`` of packets, then filler while the last
        echoes come back (so the server's jitter buffer never runs dry)."""
        loop = asyncio.get_running_loop()
        for stream in self.streams:
            # What the server sent while the calls were set up (its silence) would
            # otherwise be read first, thousands of datagrams per socket, while the
            # packets the measurement sends wait: a stall of the load, not of the server.
            with contextlib.suppress(OSError):
                while stream.sock.recv(2048):
                    pass
            loop.add_reader(stream.sock.fileno(), self._readable, stream)
        try:
            await self._send(seconds, measured=True)
            await self._send(max(0.5, self.late * 2), measured=False)
        finally:
            for stream in self.streams:
                loop.remove_reader(stream.sock.fileno())

    async def keep_alive(self) -> None:
        """Filler until cancelled: until the calls end, nothing is concealed."""
        await self._send(float("inf"), measured=False)


@contextlib.contextmanager
def _process(args: list[str], stdout: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    with contextlib.ExitStack() as files:
        out = files.enter_context(stdout.open("wb")) if stdout else subprocess.DEVNULL
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        if proc.poll() is not None:
            raise RuntimeError(f"{shlex.join(args)} exited with {proc.returncode}")
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
    step.received, step.filler = generator.received, generator.filler_sent
    reported = [s for s in generator.streams if s.server_expected > 0]
    if reported:
        expected = sum(s.server_expected for s in reported)
        step.server_loss = sum(s.server_lost for s in reported) / expected
    if generator.latencies:
        ordered = sorted(generator.latencies)
        step.p50 = statistics.median(ordered) * 1000
        step.p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    return step


def _server_args(mode: str, port: int) -> list[str]:
    args = [*_pin(SERVER_CPU), sys.executable, "-m", "sipwire.cli.main", "answer", "--echo"]
    args += ["--listen", f"udp:127.0.0.1:{port}"]
    if mode == "srtp":
        args += ["--srtp", "required", "--srtp-insecure-signalling"]
    elif mode == "opus":
        args += ["--codecs", "opus"]
    return args


def _offer_config(mode: str) -> MediaConfig:
    if mode == "srtp":
        return MediaConfig(
            codecs=("PCMU",),
            rtcp_mux=True,
            srtp="required",
            srtp_suites=(SUITE,),
            srtp_insecure_signalling=True,
        )
    return MediaConfig(codecs=("opus",) if mode == "opus" else ("PCMU",), rtcp_mux=True)


_CONCEALED = re.compile(rb"^media .* concealed ([0-9]+)", re.MULTILINE)


def _concealed(lines: Path, calls: int) -> int | None:
    """The frames the server concealed over the calls: its end-of-call statistics lines
    (None when they did not all come within 10 s)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = _CONCEALED.findall(lines.read_bytes())
        if len(found) >= calls:
            return sum(int(n) for n in found)
        time.sleep(0.05)
    return None


async def sipwire_step(
    mode: str,
    calls: int,
    seconds: float,
    late: float,
    opus: tuple[list[bytes], bytes] | None,
    directory: Path,
) -> Step:
    port = _free_port()
    lines = directory / f"answer-{mode}-{calls}.out"
    with _process(_server_args(mode, port), lines) as proc:
        sockets: list[socket.socket] = []
        medias: list[SdpMedia] = []
        config = _offer_config(mode)
        keys = secrets.token_bytes if mode == "srtp" else None

        def media() -> SdpMedia:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", 0))
            sock.setblocking(False)
            sockets.append(sock)
            made = SdpMedia(
                config, address="127.0.0.1", audio_port=sock.getsockname()[1], key_source=keys
            )
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
            streams = []
            for index, (sock, made) in enumerate(zip(sockets, medias, strict=True)):
                agreed = made.negotiated[0]
                assert agreed.remote_address is not None and agreed.codec is not None
                assert agreed.codec.payload_type is not None
                if mode == "srtp" and agreed.srtp is None:
                    raise RuntimeError("the server answered without SRTP")
                srtp = None
                if agreed.srtp is not None:
                    srtp = SrtpStream(
                        agreed.srtp.suite, agreed.srtp.local_key, agreed.srtp.remote_key
                    )
                address = (agreed.remote_address, agreed.remote_port)
                streams.append(
                    Stream(sock, address, agreed.codec.payload_type, 0x1000 + index, srtp)
                )
            await asyncio.sleep(0.5)
            step = Step(f"sipwire {mode}", calls, count_concealed=mode == "opus")
            tone_packets, silence = opus or (None, b"")
            generator = Generator(streams, late, tone_packets, silence)
            await _measure(proc, step, generator, seconds)
            keep_alive = asyncio.ensure_future(generator.keep_alive())
            try:
                await asyncio.gather(*(call.hangup() for call in placed))
            finally:
                keep_alive.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keep_alive
        for sock in sockets:
            sock.close()
        step.concealed = await asyncio.to_thread(_concealed, lines, calls)
        if step.concealed is None and step.count_concealed:
            raise RuntimeError(f"sipwire answer printed no statistics for every call: {lines}")
    return step


async def c_echo_step(binary: Path, calls: int, seconds: float, late: float) -> Step:
    port = _free_port()
    with _process([*_pin(SERVER_CPU), str(binary), str(port)]) as proc:
        streams = []
        for index in range(calls):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", 0))
            sock.setblocking(False)
            streams.append(Stream(sock, ("127.0.0.1", port), 0, 0x1000 + index))
        step = await _measure(
            proc, Step("C udp echo", calls), Generator(streams, late, None), seconds
        )
        for stream in streams:
            stream.sock.close()
    return step


def _compile(directory: Path) -> Path | None:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    binary = directory / "udp_echo"
    source = Path(__file__).with_name("udp_echo.c")
    subprocess.run([compiler, "-O2", "-o", str(binary), str(source)], check=True)
    return binary


@dataclass
class Result:
    """What one server sustained on its ladder."""

    title: str
    sustained: int = 0
    step: Step | None = None
    """The step the µs per packet is read from: the last sustained, else the first."""
    note: str = ""

    def take(self, step: Step) -> bool:
        """Record ``step``; whether the ladder goes on."""
        if step.bad_share >= 0.01:
            self.step = self.step or step
            return False
        self.sustained, self.step = step.calls, step
        return True

    def row(self) -> str:
        per_packet = f"{self.step.per_packet:.1f}" if self.step is not None else "-"
        sustained = str(self.sustained) if self.step is not None else "-"
        return f"| {self.title:<38} | {sustained:>15} | {per_packet:>11} | {self.note} |"


def _ladder(text: str) -> list[int]:
    steps = [int(n) for n in text.split(",") if n.strip()]
    if not steps or min(steps) < 1:
        raise SystemExit(f"a ladder of calls is positive numbers: {text!r}")
    return steps


def _modes(text: str) -> list[str]:
    modes = [m.strip().lower() for m in text.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        raise SystemExit(f"--mode: {', '.join(unknown) or 'none'}; known: {', '.join(MODES)}")
    return modes


async def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--mode", default=",".join(MODES), help="g711, srtp, opus: comma-separated")
    parser.add_argument(
        "--calls", default="100,200,300,400,500", help="steps of calls, G.711 and SRTP"
    )
    parser.add_argument("--opus-calls", default="10,20,30,40,60,80", help="steps of Opus calls")
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of load per step")
    parser.add_argument("--late", type=float, default=250.0, help="ms after which an echo is late")
    parser.add_argument(
        "--quick", action="store_true", help="5 calls for 3 s a mode: check the bench runs"
    )
    args = parser.parse_args()
    modes = _modes(args.mode)
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > GENERATOR_CPU:
        os.sched_setaffinity(0, {GENERATOR_CPU})
    ladders = {"opus": _ladder(args.opus_calls)}
    ladders["g711"] = ladders["srtp"] = _ladder(args.calls)
    if args.quick:
        ladders = {mode: [5] for mode in MODES}
    seconds = 3.0 if args.quick else args.seconds
    late = args.late / 1000
    print(HEADER, flush=True)
    results = []
    floor = Result(TITLES["c"])
    with tempfile.TemporaryDirectory() as tmp:
        for mode in modes:
            result = Result(TITLES[mode])
            results.append(result)
            opus = None
            if mode == "opus":
                try:
                    opus = _opus_tone()
                except (ImportError, MediaError) as exc:  # no PyAV: the other modes run
                    result.note = f"skipped: {exc}"
                    print(f"sipwire opus: skipped: {exc}", flush=True)
                    continue
            for calls in ladders[mode]:
                step = await sipwire_step(mode, calls, seconds, late, opus, Path(tmp))
                print(step.row(), flush=True)
                if not result.take(step):
                    break
            else:
                result.note = "every step held: the ladder may go higher"
        binary = _compile(Path(tmp))
        if binary is None:
            floor.note = "skipped: no C compiler"
        else:
            ladder = ladders["g711"]
            for calls in ladder[-1:] if args.quick else ladder:
                step = await c_echo_step(binary, calls, seconds, late)
                print(step.row(), flush=True)
                if not floor.take(step):
                    break
    print()
    print("$ " + shlex.join([os.path.relpath(sys.executable), *sys.argv]))
    print(f"| {'server (sipwire answer --echo)':<38} | calls sustained | µs / packet | note |")
    print(f"|{'-' * 40}|{'-' * 16}:|{'-' * 12}:|------|")
    for result in [*results, floor]:
        print(result.row())
    print(
        f"calls with < 1 % of packets lost or late (late: > {args.late:g} ms), "
        f"{seconds:g} s a step; µs of server CPU per RTP packet received or sent"
    )
    return 0 if all(r.sustained > 0 for r in results) else 1  # skipped or none held


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
