"""Running ``sipwire answer`` for the load tests (test helper).

- :func:`start_answer` runs ``sipwire answer`` as a subprocess pinned to
  :data:`SERVER_CPU`, its log (stderr) in a file, and yields an
  :class:`AnswerServer`: RSS from ``/proc/PID/status``, :meth:`~AnswerServer.stop`
  (SIGTERM, exit status within 10 s), :meth:`~AnswerServer.problems` (see
  :mod:`tests.load.logscan`).
- :func:`pin` and :func:`pin_self` keep the server and the load generators
  on separate CPUs.

Everything talks to 127.0.0.0/8 only, and every loop has a deadline.

``SIPWIRE_LOAD_SRC=/path/to/src`` makes the server run that source tree
instead of the installed one, e.g. a commit exported with ``git archive``
(build its C accelerator with ``setup.py build_ext --inplace``) while the
working tree is being edited.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.interop.sipp import free_port
from tests.load.logscan import log_problems

__all__ = [
    "LOAD_CPU",
    "REPO",
    "SERVER_CPU",
    "AnswerServer",
    "free_port",
    "pin",
    "pin_self",
    "read_rss_kib",
    "start_answer",
]

SERVER_CPU = 0
"""The CPU ``sipwire answer`` is pinned to."""
LOAD_CPU = 1
"""The CPU load generators (sipp, flooder, fuzzer, probes) are pinned to."""

REPO = Path(__file__).resolve().parents[2]


def pin(cpu: int) -> list[str]:
    """``taskset -c CPU`` as a command prefix, or nothing when it cannot apply."""
    if shutil.which("taskset") is None or cpu >= (os.cpu_count() or 1):
        return []
    return ["taskset", "-c", str(cpu)]


def pin_self(cpu: int) -> None:
    """Pin this process (and what it starts from now on) to ``cpu``, when there is one."""
    with contextlib.suppress(OSError, AttributeError):
        if cpu < (os.cpu_count() or 1):
            os.sched_setaffinity(0, {cpu})


def read_rss_kib(pid: int) -> int:
    """VmRSS of ``pid`` in KiB (0 when the process is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(r"^VmRSS:\s+(\d+)\s+kB", text, re.MULTILINE)
    return int(match.group(1)) if match else 0


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
