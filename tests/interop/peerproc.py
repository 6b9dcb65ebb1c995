"""Running a real SIP peer (baresip, kamailio) as a child process, for interop tests.

A :class:`PeerProcess` starts one program with its stdout and stderr going to a
log file, lets a test wait (bounded in time) for a regular expression in that
log, and stops the program by its own PID: SIGTERM first, SIGKILL after a
timeout. The program runs in a session of its own, so the last resort
(``killpg``) reaches the children it forked (kamailio's workers) and nothing
else.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import IO, TypeVar

__all__ = [
    "ADDRESS_IN_USE",
    "ANSI_ESCAPE",
    "PeerProcess",
    "PeerProcessError",
    "ephemeral_port_range",
    "pick_port",
    "port_bound",
    "wait_until",
]

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# How baresip, kamailio and sipp report a port taken between pick_port() and their bind.
ADDRESS_IN_USE = re.compile(r"Address already in use|[Uu]nable to bind", re.MULTILINE)
_PICK_LOW = 20000

T = TypeVar("T")


def ephemeral_port_range() -> tuple[int, int]:
    """The kernel's range for automatically assigned local ports (Linux; a default elsewhere)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _free_on_loopback(port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def pick_port(*, span: int = 1, avoid: Collection[int] = ()) -> int:
    """A port P free for both UDP and TCP on 127.0.0.1, for a peer to listen on.

    ``span``: P to P + span - 1 are all free (baresip, for one, listens on its
    SIP port and, for TLS, on the next one). ``avoid``: ports that must not be
    among them, because another program of the test is about to bind them
    (two ports picked in a row are both free until either program binds one).

    Chosen at random below the kernel's ephemeral range (20000 up to it), so
    that no socket bound to port 0 or connecting out (there are many while
    other tests run) can take it before the peer binds it. Falls back to a
    kernel-assigned port when that range is too small.
    """
    low, _ = ephemeral_port_range()
    rng = random.SystemRandom()
    avoided = set(avoid)

    def usable(port: int) -> bool:
        ports = range(port, port + span)
        return avoided.isdisjoint(ports) and all(map(_free_on_loopback, ports))

    if low - span - _PICK_LOW >= 1000:
        for _ in range(200):
            port = rng.randint(_PICK_LOW, low - span)
            if usable(port):
                return port
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port + span <= 65536 and usable(port):
            return port
    raise PeerProcessError("no free port on 127.0.0.1")


def port_bound(port: int, *, tcp: bool, host: str = "127.0.0.1", pid: int | None = None) -> bool:
    """Whether a socket is bound to ``host:port`` (listening, for TCP); with ``pid``, one of its.

    Reads /proc/net/udp or /proc/net/tcp (Linux), so it never binds the port
    itself and cannot race the program that is about to.
    """
    table = Path("/proc/net/tcp" if tcp else "/proc/net/udp")
    packed = socket.inet_aton(host)
    wanted = {
        f"{int.from_bytes(packed, 'little'):08X}:{port:04X}",
        f"00000000:{port:04X}",
    }
    inodes: set[str] = set()
    for line in table.read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) > 9 and fields[1] in wanted and (not tcp or fields[3] == "0A"):
            inodes.add(fields[9])
    if pid is None or not inodes:
        return bool(inodes)
    links = {f"socket:[{inode}]" for inode in inodes}
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(fd) in links:
                return True
        except OSError:
            continue
    return False


class PeerProcessError(RuntimeError):
    """A peer did not start, exited early, or did not do what was awaited in time."""


def wait_until(
    probe: Callable[[], T | None],
    timeout: float,
    *,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Call ``probe`` until it returns something other than None; raise after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def start_retrying(
    start_once: Callable[[float], None],
    *,
    timeout: float,
    output: Callable[[], str],
    reset: Callable[[], None],
    repick: Callable[[], None] | None,
    attempts: int = 3,
) -> None:
    """Run ``start_once(deadline)``; when it fails because a port was taken before the
    peer bound it ("Address already in use" in ``output()``), ``reset()``, ``repick()``
    new ports and try again. ``repick`` None: the ports were given, so no retry."""
    deadline = time.monotonic() + timeout
    for attempt in range(attempts):
        try:
            start_once(deadline)
            return
        except PeerProcessError:
            in_use = ADDRESS_IN_USE.search(output()) is not None
            reset()
            if not (in_use and repick is not None and attempt < attempts - 1):
                raise
            repick()


class PeerProcess:
    """One child process, its output in ``log_path``, stopped by its PID."""

    def __init__(
        self,
        args: Sequence[str],
        log_path: Path,
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        stdin_pipe: bool = False,
    ) -> None:
        self.args = list(args)
        self.log_path = log_path
        self.cwd = cwd
        self.env = dict(env) if env is not None else None
        self.stdin_pipe = stdin_pipe
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        """The PID of the program (it leads its own session and process group)."""
        if self._proc is None:
            raise PeerProcessError("not started")
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        """The exit status once the program has exited, else None."""
        return None if self._proc is None else self._proc.poll()

    def running(self) -> bool:
        """Whether the program was started and has not exited."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the program; its stdout and stderr go to ``log_path``."""
        if self._proc is not None:
            raise PeerProcessError("already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self._proc = subprocess.Popen(
            self.args,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.PIPE if self.stdin_pipe else subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self, timeout: float = 5.0, *, term_signals: int = 1) -> int | None:
        """Stop the program and return its exit status (None if it was never started).

        Sends SIGTERM ``term_signals`` times (baresip takes a second one as "now"),
        spreading ``timeout`` over them, then SIGKILLs the program's process group
        (the program and the workers it forked) if it is still there.
        """
        proc = self._proc
        if proc is None:
            return None
        try:
            if proc.poll() is None:
                share = timeout / max(term_signals, 1)
                for _ in range(max(term_signals, 1)):
                    try:
                        proc.send_signal(signal.SIGTERM)
                    except ProcessLookupError:
                        break
                    try:
                        proc.wait(timeout=share)
                        break
                    except subprocess.TimeoutExpired:
                        continue
            if proc.poll() is None:
                # Not yet reaped, so its PID (= its process group) is still its own.
                self._kill_group(proc.pid)
                proc.wait(timeout=5)
        finally:
            if proc.stdin is not None:
                proc.stdin.close()
            if self._log is not None:
                self._log.close()
                self._log = None
        return proc.returncode

    @staticmethod
    def _kill_group(pgid: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)

    # ------------------------------------------------------------------ output

    def output(self) -> str:
        """Everything the program printed so far: colour codes removed, newlines as ``\\n``."""
        try:
            raw = self.log_path.read_bytes()
        except FileNotFoundError:
            return ""
        text = ANSI_ESCAPE.sub("", raw.decode("utf-8", errors="replace"))
        # baresip starts some lines with a bare CR (a terminal's "column 0").
        return text.replace("\r\n", "\n").replace("\r", "\n")

    def tail(self, chars: int = 3000) -> str:
        """The end of the output, for error messages."""
        return self.output()[-chars:]

    def wait_output(
        self,
        pattern: str | re.Pattern[str],
        timeout: float = 10.0,
        *,
        start: int = 0,
        flags: int = re.MULTILINE,
    ) -> re.Match[str]:
        """Wait until ``pattern`` matches the output from character ``start`` on.

        Raises :class:`PeerProcessError` if the program exits without printing it,
        :class:`TimeoutError` after ``timeout`` seconds.
        """
        regex = re.compile(pattern, flags) if isinstance(pattern, str) else pattern

        def probe() -> re.Match[str] | None:
            match = regex.search(self.output(), start)
            if match is None and not self.running():
                match = regex.search(self.output(), start)
                if match is None:
                    raise PeerProcessError(
                        f"{self.args[0]} exited ({self.returncode}) before printing "
                        f"{regex.pattern!r}; output ends with:\n{self.tail()}"
                    )
            return match

        try:
            return wait_until(probe, timeout, what=f"{regex.pattern!r} in {self.log_path}")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; output ends with:\n{self.tail()}") from None
