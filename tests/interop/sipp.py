"""Running sipp and ``sipwire answer`` side by side on loopback (test helper)."""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SIPP = shutil.which("sipp")


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
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


@contextlib.contextmanager
def answer_server(*listen: str, extra: tuple[str, ...] = ()) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``sipwire answer`` with the given --listen specs; stop it (SIGTERM) afterwards."""
    args = [sys.executable, "-m", "sipwire.cli.main", "answer"]
    for spec in listen:
        args += ["--listen", spec]
    args += list(extra)
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        assert proc.stderr is not None
        seen = 0
        deadline = time.monotonic() + 20
        while seen < len(listen):
            line = proc.stderr.readline()
            if not line:
                raise RuntimeError(f"sipwire answer exited early ({proc.wait()})")
            if line.startswith(b"listening on"):
                seen += 1
            if time.monotonic() > deadline:
                raise RuntimeError("sipwire answer did not start in time")
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


@dataclass
class SippResult:
    returncode: int
    successful: int
    failed: int
    stats: dict[str, str]
    stderr: str


def run_sipp(
    target: str,
    workdir: Path,
    *,
    calls: int,
    rate: int,
    transport: str = "u1",
    extra: tuple[str, ...] = (),
    timeout: float = 120.0,
    cpu: int | None = None,
    scenario: Path | None = None,
) -> SippResult:
    """Run sipp's built-in ``uac`` scenario (or the ``scenario`` file) against ``target``
    and read its statistics."""
    assert SIPP is not None
    stat_file = workdir / "uac_stats.csv"
    args = [
        SIPP,
        *(("-sf", str(scenario)) if scenario is not None else ("-sn", "uac")),
        target,
        "-i",
        "127.0.0.1",
        "-p",
        str(free_port()),
        "-t",
        transport,
        "-m",
        str(calls),
        "-r",
        str(rate),
        "-nostdin",
        "-timeout",
        f"{int(timeout)}s",
        "-timeout_error",
        "-trace_stat",
        "-stf",
        str(stat_file),
        "-fd",
        "1",
        *extra,
    ]
    if cpu is not None and shutil.which("taskset"):
        args = ["taskset", "-c", str(cpu), *args]
    env = dict(os.environ, TERM="dumb")
    proc = subprocess.run(
        args,
        cwd=workdir,
        capture_output=True,
        timeout=timeout + 30,
        env=env,
        check=False,
    )
    stats = _last_stats(stat_file)
    return SippResult(
        proc.returncode,
        int(stats.get("SuccessfulCall(C)", "0")),
        int(stats.get("FailedCall(C)", "0")),
        stats,
        proc.stderr.decode(errors="replace")[-2000:],
    )


def _last_stats(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    with path.open(newline="") as f:
        rows = list(csv.reader(f, delimiter=";"))
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0], rows[-1], strict=False))
