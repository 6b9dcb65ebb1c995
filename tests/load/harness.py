"""Load and attack harness for ``sipwire answer`` (test helper).

- :func:`start_answer` runs ``sipwire answer`` as a subprocess pinned to
  :data:`SERVER_CPU`, its log (stderr) in a file, and yields an
  :class:`AnswerServer`: RSS from ``/proc/PID/status``, :meth:`~AnswerServer.stop`
  (SIGTERM, exit status within 10 s), :meth:`~AnswerServer.problems`.
- :func:`log_problems` lists the lines of a log that show a bug: tracebacks,
  "never retrieved", RecursionError, records at ERROR level or above.
- :class:`UdpUac` is a small non-blocking UDP user agent client bound to a
  chosen ``127.0.0.x``: OPTIONS probes and calls (INVITE, ACK, BYE) with
  RFC 3261 retransmissions, each recorded as a :class:`ProbeResult`.
  :func:`options_ok` and :func:`tcp_options_ok` are the health checks.
- ``python -m tests.load.harness flood ...`` is the INVITE flooder of
  ``test_flood.py`` (run it with ``--help``).

Everything talks to 127.0.0.0/8 only, and every loop has a deadline.

``SIPWIRE_LOAD_SRC=/path/to/src`` makes the server run that source tree
instead of the installed one, e.g. a commit exported with ``git archive``
(build its C accelerator with ``setup.py build_ext --inplace``) while the
working tree is being edited.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import re
import secrets
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "LOAD_CPU",
    "REPO",
    "SERVER_CPU",
    "AnswerServer",
    "LogWatcher",
    "ProblemBlock",
    "ProbeResult",
    "SipMessage",
    "UdpUac",
    "build_request",
    "calls_ok",
    "flood_main",
    "free_port",
    "is_problem",
    "log_problem_blocks",
    "log_problems",
    "options_ok",
    "parse_sip",
    "pin",
    "read_rss_kib",
    "sdp_offer",
    "start_answer",
    "summarize_blocks",
    "tcp_options_ok",
]

SERVER_CPU = 0
"""The CPU ``sipwire answer`` is pinned to."""
LOAD_CPU = 1
"""The CPU load generators (sipp, flooder, fuzzer, probes) are pinned to."""

REPO = Path(__file__).resolve().parents[2]
T1 = 0.5
T2 = 4.0


def pin(cpu: int) -> list[str]:
    """``taskset -c CPU`` as a command prefix, or nothing when it cannot apply."""
    if shutil.which("taskset") is None or cpu >= (os.cpu_count() or 1):
        return []
    return ["taskset", "-c", str(cpu)]


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


# ---------------------------------------------------------------- the server


def read_rss_kib(pid: int) -> int:
    """VmRSS of ``pid`` in KiB (0 when the process is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(r"^VmRSS:\s+(\d+)\s+kB", text, re.MULTILINE)
    return int(match.group(1)) if match else 0


_LEVEL = re.compile(rb"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ \S+ (ERROR|CRITICAL) ")
_MARKERS = (
    b"Traceback",
    b"never retrieved",
    b"RecursionError",
    b"Exception ignored",
    b"Fatal Python error",
)


def is_problem(line: bytes) -> bool:
    """Whether one log line shows a bug (see :func:`log_problems`)."""
    return any(marker in line for marker in _MARKERS) or _LEVEL.match(line) is not None


def log_problems(path: Path) -> list[str]:
    """The lines of a ``sipwire answer -v`` log that show a bug.

    A line counts when it contains "Traceback", "never retrieved",
    "RecursionError", "Exception ignored" or "Fatal Python error", or when it
    is a log record at ERROR or CRITICAL level (``log.exception`` and
    asyncio's "Exception in callback" are ERROR). The log can be large (an
    INFO line per dropped datagram): it is read line by line.
    """
    found: list[str] = []
    with path.open("rb") as f:
        for line in f:
            if is_problem(line):
                found.append(line.rstrip(b"\r\n").decode("utf-8", "replace"))
    return found


_RECORD = re.compile(rb"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ |listening on |answered \d+ calls)")
"""A log record, or one of the lines ``sipwire answer`` prints itself: the end of a traceback."""
_NUMBERS = re.compile(r"0x[0-9a-fA-F]+|\d+")


@dataclass
class ProblemBlock:
    """One problem in a log: the ERROR record or bare line, and its traceback."""

    lines: list[str]

    @property
    def exception(self) -> str:
        """The last unindented line of the traceback (``ValueError: ...``)."""
        for line in reversed(self.lines[1:]):
            if line and not line[0].isspace() and not line.startswith("Traceback"):
                return line[:300]
        return self.lines[0][:300]

    @property
    def where(self) -> str:
        """The innermost ``File ..., line N, in f`` of the traceback."""
        for line in reversed(self.lines):
            if line.lstrip().startswith("File "):
                return line.strip()[:300]
        return ""

    @property
    def signature(self) -> str:
        return _NUMBERS.sub("N", f"{self.exception.split(':')[0]} @ {self.where}")

    def brief(self) -> str:
        head = self.lines[0][:200]
        return f"{head}\n    {self.where}\n    {self.exception}"


class LogWatcher:
    """Reads what a log gained since the last call, as lines or as problem blocks."""

    CHUNK = 8 << 20

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self._partial = b""
        self._open: list[str] | None = None

    def new_lines(self) -> list[bytes]:
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read(self.CHUNK)
        self.offset += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()
        return lines

    def new_problems(self) -> list[str]:
        return [
            line.rstrip(b"\r").decode("utf-8", "replace")
            for line in self.new_lines()
            if is_problem(line)
        ]

    def new_blocks(self, *, final: bool = False) -> list[ProblemBlock]:
        """Problem blocks completed since the last call (``final``: also the one still open).

        A block starts at a problem line (see :func:`is_problem`) and takes the
        lines that follow it up to the next log record; a traceback of
        thousands of lines (recursion) keeps its first 10 and last 30 lines.
        """
        done: list[ProblemBlock] = []
        while True:
            lines = self.new_lines()
            for raw in lines:
                record = _RECORD.match(raw) is not None
                if record and self._open is not None:
                    done.append(ProblemBlock(self._open))
                    self._open = None
                if self._open is not None:
                    self._open.append(raw.rstrip(b"\r").decode("utf-8", "replace")[:500])
                    if len(self._open) > 80:
                        del self._open[10:-30]
                elif is_problem(raw):
                    self._open = [raw.rstrip(b"\r").decode("utf-8", "replace")[:500]]
            if not final or not lines:
                break
        if final and self._open is not None:
            done.append(ProblemBlock(self._open))
            self._open = None
        return done


def log_problem_blocks(path: Path) -> list[ProblemBlock]:
    """Every problem block of a log (see :meth:`LogWatcher.new_blocks`)."""
    return LogWatcher(path).new_blocks(final=True)


def summarize_blocks(blocks: Sequence[ProblemBlock], limit: int = 10) -> str:
    """Distinct problems by signature, most frequent first, with a count each."""
    groups: dict[str, list[ProblemBlock]] = {}
    for block in blocks:
        groups.setdefault(block.signature, []).append(block)
    ordered = sorted(groups.values(), key=len, reverse=True)
    out = [f"{len(blocks)} problem blocks, {len(groups)} distinct"]
    for group in ordered[:limit]:
        out.append(f"  {len(group)} x {group[0].brief()}")
    return "\n".join(out)


@dataclass
class AnswerServer:
    """A running ``sipwire answer`` (UDP and/or TCP on 127.0.0.1:``port``)."""

    proc: subprocess.Popen[bytes]
    log_path: Path
    port: int
    host: str = "127.0.0.1"
    started: float = 0.0

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def rss_kib(self) -> int:
        return read_rss_kib(self.proc.pid)

    def problems(self) -> list[str]:
        return log_problems(self.log_path)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then the exit status; None when it did not exit in ``timeout`` (then killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def log_tail(self, lines: int = 30) -> str:
        try:
            with self.log_path.open("rb") as f:
                f.seek(max(0, self.log_path.stat().st_size - 20000))
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def start_answer(
    log_path: Path,
    *,
    port: int | None = None,
    transports: Sequence[str] = ("udp", "tcp"),
    cpu: int = SERVER_CPU,
    extra: Sequence[str] = (),
    startup_timeout: float = 20.0,
) -> Iterator[AnswerServer]:
    """Run ``sipwire answer -v`` pinned to ``cpu``; kill it on exit if still running.

    The test stops it itself with :meth:`AnswerServer.stop` to check the exit status.
    """
    port = port or free_port()
    args = [*pin(cpu), sys.executable, "-m", "sipwire.cli.main", "answer"]
    for transport in transports:
        args += ["--listen", f"{transport}:127.0.0.1:{port}"]
    args += ["-v", *extra]
    env = dict(os.environ, PYTHONFAULTHANDLER="1")
    other_src = os.environ.get("SIPWIRE_LOAD_SRC")
    if other_src:  # test another tree, e.g. an exported commit (see the module docstring)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [other_src, env.get("PYTHONPATH")]))
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            cwd=REPO,
            env=env,
        )
    server = AnswerServer(proc, log_path, port, started=time.monotonic())
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            text = log_path.read_bytes()
            if text.count(b"listening on") >= len(transports):
                break
            if proc.poll() is not None:
                raise RuntimeError(f"sipwire answer exited ({proc.returncode}):\n{text.decode()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"sipwire answer did not start in time:\n{text.decode()}")
            time.sleep(0.05)
        yield server
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------- SIP messages


def sdp_offer(ip: str, port: int = 40000, session: int = 1) -> bytes:
    return (
        "v=0\r\n"
        f"o=- {session} 1 IN IP4 {ip}\r\n"
        "s=-\r\n"
        f"c=IN IP4 {ip}\r\n"
        "t=0 0\r\n"
        f"m=audio {port} RTP/AVP 0 8 101\r\n"
        "a=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:8 PCMA/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n"
        "a=fmtp:101 0-15\r\n"
        "a=sendrecv\r\n"
    ).encode()


def build_request(
    method: str,
    uri: str,
    *,
    via_host: str,
    via_port: int,
    branch: str,
    call_id: str,
    from_tag: str,
    to_tag: str | None = None,
    cseq: int = 1,
    cseq_method: str | None = None,
    transport: str = "UDP",
    contact: bool = False,
    body: bytes = b"",
    content_type: str = "application/sdp",
    extra: Sequence[tuple[str, str]] = (),
) -> bytes:
    """A well-formed request (rport asked for, so answers come back to the sending socket)."""
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: SIP/2.0/{transport} {via_host}:{via_port};branch={branch};rport",
        "Max-Forwards: 70",
        f"From: <sip:probe@{via_host}>;tag={from_tag}",
        f"To: <{uri}>" + (f";tag={to_tag}" if to_tag else ""),
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {cseq_method or method}",
    ]
    if contact:
        lines.append(f"Contact: <sip:probe@{via_host}:{via_port}>")
    lines += [f"{name}: {value}" for name, value in extra]
    if body:
        lines.append(f"Content-Type: {content_type}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


_COMPACT = {
    "i": "call-id",
    "t": "to",
    "f": "from",
    "v": "via",
    "m": "contact",
    "l": "content-length",
    "c": "content-type",
}
_BRANCH = re.compile(r"branch=([^;,\s]+)", re.IGNORECASE)
_TAG = re.compile(r";\s*tag=([^;,\s>]+)", re.IGNORECASE)
_URI = re.compile(r"<([^>]+)>")


@dataclass
class SipMessage:
    """Just enough of a message for the test clients (headers by lower-case long name)."""

    first: str
    headers: dict[str, list[str]]

    @property
    def status(self) -> int | None:
        parts = self.first.split(" ", 2)
        if parts[0] == "SIP/2.0" and len(parts) > 1 and parts[1].isdigit():
            return int(parts[1])
        return None

    def header(self, name: str) -> str:
        values = self.headers.get(name)
        return values[0] if values else ""

    @property
    def branch(self) -> str:
        match = _BRANCH.search(self.header("via"))
        return match.group(1) if match else ""

    @property
    def to_tag(self) -> str:
        match = _TAG.search(self.header("to"))
        return match.group(1) if match else ""

    @property
    def call_id(self) -> str:
        return self.header("call-id").strip()

    @property
    def cseq_method(self) -> str:
        parts = self.header("cseq").split()
        return parts[1] if len(parts) > 1 else ""

    @property
    def contact_uri(self) -> str:
        match = _URI.search(self.header("contact"))
        return match.group(1) if match else ""


def parse_sip(data: bytes) -> SipMessage | None:
    """First line and headers of a message, or None when there is no first line."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    lines = head.split("\r\n")
    if not lines or not lines[0]:
        return None
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            continue
        key = name.strip().lower()
        headers.setdefault(_COMPACT.get(key, key), []).append(value.strip())
    return SipMessage(lines[0], headers)


# ---------------------------------------------------------------- a UDP UAC


@dataclass
class ProbeResult:
    """One OPTIONS or one call of a :class:`UdpUac`, in ``time.monotonic()`` seconds."""

    kind: str
    """"options" or "call"."""
    sent: float
    answered: float | None = None
    """When the 200 (OPTIONS) or the 200 to the INVITE arrived (within the window)."""
    status: int | None = None
    """The first final status received."""
    completed: float | None = None
    """Calls: when the 200 to the BYE arrived."""

    @property
    def ok(self) -> bool:
        if self.answered is None:
            return False
        return self.kind == "options" or self.completed is not None

    @property
    def done_at(self) -> float | None:
        return self.answered if self.kind == "options" else self.completed


@dataclass
class _Txn:
    data: bytes
    deadline: float
    next_send: float
    interval: float
    invite: bool
    on_response: Callable[[SipMessage, float], None]
    provisional: bool = False


@dataclass
class UdpUac:
    """A non-blocking UDP UAC on ``source`` (a 127.0.0.x) towards ``target``.

    :meth:`options` and :meth:`call` start a probe; :meth:`poll` sends,
    retransmits (Timer A/E) and reads until a given time. A probe is answered
    when its 200 arrives within ``window`` seconds of the first send.
    """

    source: str
    target: tuple[str, int]
    window: float = 2.0
    results: list[ProbeResult] = field(default_factory=list)
    requests_received: int = 0
    stray_responses: int = 0

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind((self.source, 0))
        self.sock.setblocking(False)
        self.port = int(self.sock.getsockname()[1])
        self._prefix = secrets.token_hex(4)
        self._counter = itertools.count(1)
        self._txns: dict[str, _Txn] = {}
        # Branch of a finished INVITE -> the ACK to send again when its final response repeats.
        self._acks: dict[str, bytes] = {}
        self.uri = f"sip:answer@{self.target[0]}:{self.target[1]}"

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> UdpUac:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ids(self) -> tuple[str, str, str]:
        n = next(self._counter)
        return f"z9hG4bK{self._prefix}b{n}", f"{self._prefix}-{n}@{self.source}", f"t{n}"

    def _send(self, data: bytes) -> None:
        with contextlib.suppress(BlockingIOError, ConnectionRefusedError):
            self.sock.sendto(data, self.target)

    def _start(
        self,
        branch: str,
        data: bytes,
        now: float,
        invite: bool,
        on_response: Callable[[SipMessage, float], None],
    ) -> None:
        self._txns[branch] = _Txn(data, now + self.window, now + T1, T1, invite, on_response)
        self._send(data)

    def _request(
        self,
        method: str,
        branch: str,
        call_id: str,
        tag: str,
        *,
        uri: str | None = None,
        to_tag: str | None = None,
        cseq: int = 1,
        contact: bool = False,
        body: bytes = b"",
    ) -> bytes:
        return build_request(
            method,
            uri or self.uri,
            via_host=self.source,
            via_port=self.port,
            branch=branch,
            call_id=call_id,
            from_tag=tag,
            to_tag=to_tag,
            cseq=cseq,
            contact=contact,
            body=body,
        )

    def options(self, now: float) -> ProbeResult:
        result = ProbeResult("options", now)
        self.results.append(result)
        branch, call_id, tag = self._ids()

        def on_response(msg: SipMessage, t: float) -> None:
            status = msg.status or 0
            if status >= 200:
                result.status = status
                if status == 200:
                    result.answered = t
                self._txns.pop(branch, None)

        self._start(branch, self._request("OPTIONS", branch, call_id, tag), now, False, on_response)
        return result

    def call(self, now: float) -> ProbeResult:
        """INVITE with SDP; on 200: ACK, then BYE; answered/completed as they come."""
        result = ProbeResult("call", now)
        self.results.append(result)
        branch, call_id, tag = self._ids()
        invite = self._request(
            "INVITE", branch, call_id, tag, contact=True, body=sdp_offer(self.source)
        )

        def on_bye(msg: SipMessage, t: float) -> None:
            if (msg.status or 0) >= 200:
                if msg.status == 200 and t <= result.sent + 2 * self.window:
                    result.completed = t
                self._txns.pop(bye_branch, None)

        bye_branch = branch + "bye"

        def on_invite(msg: SipMessage, t: float) -> None:
            status = msg.status or 0
            txn = self._txns.get(branch)
            if status < 200:
                if txn is not None:
                    txn.provisional = True
                return
            if txn is None:  # a repeated final response: repeat the ACK
                ack = self._acks.get(branch)
                if ack is not None:
                    self._send(ack)
                return
            del self._txns[branch]
            result.status = status
            to_tag = msg.to_tag
            if 200 <= status < 300:
                result.answered = t
                target = msg.contact_uri or self.uri
                ack = self._request(
                    "ACK", branch + "ack", call_id, tag, uri=target, to_tag=to_tag, cseq=1
                )
                bye = self._request(
                    "BYE", bye_branch, call_id, tag, uri=target, to_tag=to_tag, cseq=2
                )
                self._send(ack)
                self._start(bye_branch, bye, t, False, on_bye)
            else:  # §17.1.1.3: the ACK of a non-2xx final response reuses the branch
                ack = self._request("ACK", branch, call_id, tag, to_tag=to_tag, cseq=1)
                self._send(ack)
            self._acks[branch] = ack
            if len(self._acks) > 5000:
                self._acks.pop(next(iter(self._acks)))

        self._start(branch, invite, now, True, on_invite)
        return result

    def pending(self) -> int:
        return len(self._txns)

    def poll(self, until: float, *, until_idle: bool = False) -> None:
        """Send, retransmit and read until ``until`` (monotonic), or no probe is pending."""
        while True:
            now = time.monotonic()
            self._timers(now)
            if now >= until or (until_idle and not self._txns):
                return
            wake = until
            for txn in self._txns.values():
                wake = min(wake, txn.deadline, txn.next_send if not txn.provisional else wake)
            ready, _, _ = select.select([self.sock], [], [], max(0.0, wake - now))
            if ready:
                self._read()

    def run_until_idle(self, limit: float) -> None:
        self.poll(limit, until_idle=True)

    def _read(self) -> None:
        for _ in range(1000):
            try:
                data, _ = self.sock.recvfrom(65536)
            except (BlockingIOError, ConnectionRefusedError):
                return
            msg = parse_sip(data)
            if msg is None:
                continue
            if msg.status is None:
                self.requests_received += 1
                continue
            branch = msg.branch
            txn = self._txns.get(branch)
            if txn is not None:
                txn.on_response(msg, time.monotonic())
            elif branch in self._acks:
                self._send(self._acks[branch])
            else:
                self.stray_responses += 1

    def _timers(self, now: float) -> None:
        for branch, txn in list(self._txns.items()):
            if now >= txn.deadline:
                del self._txns[branch]
            elif not txn.provisional and now >= txn.next_send:
                self._send(txn.data)
                txn.interval = txn.interval * 2 if txn.invite else min(txn.interval * 2, T2)
                txn.next_send = now + txn.interval


def options_ok(
    port: int, *, source: str = "127.0.0.3", host: str = "127.0.0.1", timeout: float = 2.0
) -> float | None:
    """Health check: an OPTIONS from ``source`` answered 200 within ``timeout``: its latency."""
    with UdpUac(source, (host, port), window=timeout) as uac:
        result = uac.options(time.monotonic())
        uac.run_until_idle(time.monotonic() + timeout + 0.5)
    return None if result.answered is None else result.answered - result.sent


def calls_ok(port: int, count: int, *, source: str = "127.0.0.3", window: float = 2.0) -> int:
    """``count`` calls one after another from ``source``; how many completed."""
    ok = 0
    with UdpUac(source, ("127.0.0.1", port), window=window) as uac:
        for _ in range(count):
            result = uac.call(time.monotonic())
            uac.run_until_idle(time.monotonic() + 2 * window + 1)
            ok += result.ok
    return ok


def tcp_options_ok(
    port: int, *, source: str = "127.0.0.4", host: str = "127.0.0.1", timeout: float = 5.0
) -> bool:
    """Health check over a fresh TCP connection: OPTIONS answered 200 within ``timeout``.

    The connection is closed with a reset (SO_LINGER 0) so that thousands of
    checks leave no TIME_WAIT behind.
    """
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_BIND_ADDRESS_NO_PORT, 1)
        sock.bind((source, 0))
        sock.settimeout(timeout)
        try:
            sock.connect((host, port))
            local_port = int(sock.getsockname()[1])
            branch = "z9hG4bKtcp" + secrets.token_hex(6)
            request = build_request(
                "OPTIONS",
                f"sip:answer@{host}:{port};transport=tcp",
                via_host=source,
                via_port=local_port,
                branch=branch,
                call_id=secrets.token_hex(8) + "@" + source,
                from_tag=secrets.token_hex(4),
                transport="TCP",
            )
            sock.sendall(request)
            data = b""
            while b"\r\n\r\n" not in data:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                sock.settimeout(remaining)
                chunk = sock.recv(65536)
                if not chunk:
                    return False
                data += chunk
        except OSError:
            return False
    msg = parse_sip(data)
    return msg is not None and msg.status == 200 and msg.branch == branch


# ---------------------------------------------------------------- the INVITE flooder


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


def flood_main(argv: Sequence[str] | None = None) -> int:
    """Send never-ACKed INVITEs at a fixed rate, then keep reading what comes back.

    Prints JSON lines on stdout: ``{"event": "start", "t": ...}``,
    ``{"event": "end", ...}`` when sending stops, and ``{"event": "stats", ...}``
    when it exits: after ``--linger`` seconds, or earlier when stdin closes.
    Times are ``time.monotonic()``, which is system-wide on Linux.
    """
    parser = argparse.ArgumentParser(prog="python -m tests.load.harness flood")
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
    with contextlib.suppress(OSError, AttributeError):
        if args.cpu < (os.cpu_count() or 1):
            os.sched_setaffinity(0, {args.cpu})
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


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["flood"]:
        return flood_main(argv[1:])
    print("usage: python -m tests.load.harness flood --help", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
