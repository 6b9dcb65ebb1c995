"""Run the real ``sipwire`` command in subprocesses: one-shot commands and a ``sipwire answer``.

``sipwire(*args)`` runs a command to its end; ``Answerer`` starts ``sipwire
answer`` with its output in files (readable while it runs) and stops it on
exit; ``wait_for`` polls such a file for a text.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SIPWIRE", "Answerer", "answerer", "one_line", "sipwire", "wait_for"]

SIPWIRE = [sys.executable, "-m", "sipwire.cli.main"]


def sipwire(*args: str, timeout: float = 40) -> subprocess.CompletedProcess[str]:
    """Run ``sipwire ARGS`` to its end; output as text."""
    return subprocess.run(
        [*SIPWIRE, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def one_line(stderr: str) -> str:
    """The only line of ``stderr``: fails when there is none, several, or a traceback."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def wait_for(path: Path, text: str, timeout: float = 20) -> str:
    """Poll ``path`` until it holds ``text``; return its content."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = path.read_text(errors="replace") if path.exists() else ""
        if text in content:
            return content
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in {path}:\n{content}")


@dataclass
class Answerer:
    """A running ``sipwire answer``: its process and where its output goes."""

    proc: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def err(self) -> str:
        """What it wrote on standard error so far (log lines, traces)."""
        return self.stderr.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        """Send ``sig`` and wait for the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


@contextmanager
def answerer(directory: Path, *listen: str, extra: tuple[str, ...] = ()) -> Iterator[Answerer]:
    """``sipwire answer --listen L ... EXTRA`` until every listener is up; SIGTERM after."""
    directory.mkdir(parents=True, exist_ok=True)
    stdout, stderr = directory / "answer.out", directory / "answer.err"
    args = [*SIPWIRE, "answer"]
    for spec in listen:
        args += ["--listen", spec]
    with stdout.open("wb") as out, stderr.open("wb") as err:
        proc = subprocess.Popen([*args, *extra], stdout=out, stderr=err)
    server = Answerer(proc, stdout, stderr)
    try:
        deadline = time.monotonic() + 20
        while server.err().count("listening on") < len(listen):
            if proc.poll() is not None:
                raise RuntimeError(f"sipwire answer exited ({proc.returncode}):\n{server.err()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"sipwire answer did not start:\n{server.err()}")
            time.sleep(0.05)
        yield server
    finally:
        if proc.poll() is None:
            server.stop()
