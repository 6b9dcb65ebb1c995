"""Calls per second that ``sipwire answer`` sustains under sipp's ``uac`` scenario.

The server runs on one core, sipp on the other (taskset). The rate steps up
until a step has a failed call (or sipp cannot keep the rate); the highest
clean step is reported, next to sipp's own ``uas`` scenario measured the
same way as the ceiling of the harness.

    .venv/bin/python bench/calls.py [--quick] [--seconds 5] [--max-rate 8000]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType


def _load_sipp_helper() -> ModuleType:
    """tests/interop/sipp.py, loaded by path (a package named "tests" may be installed)."""
    path = Path(__file__).resolve().parents[1] / "tests" / "interop" / "sipp.py"
    spec = importlib.util.spec_from_file_location("sipwire_bench_sipp", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


_sipp = _load_sipp_helper()
SIPP = _sipp.SIPP
free_port = _sipp.free_port
run_sipp = _sipp.run_sipp

SERVER_CPU = 0
SIPP_CPU = 1


@contextmanager
def server(kind: str, port: int) -> Iterator[None]:
    """Start the server under test pinned to SERVER_CPU."""
    pin = ["taskset", "-c", str(SERVER_CPU)] if shutil.which("taskset") else []
    if kind == "sipwire":
        args = [
            *pin,
            sys.executable,
            "-m",
            "sipwire.cli.main",
            "answer",
            "--listen",
            f"udp:127.0.0.1:{port}",
        ]
    else:
        assert SIPP is not None
        args = [*pin, SIPP, "-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-nostdin"]
    proc = subprocess.Popen(
        args,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, TERM="dumb"),
    )
    time.sleep(1.5)
    try:
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def step(kind: str, rate: int, seconds: float) -> tuple[bool, float]:
    """One step at ``rate`` for ``seconds``: (clean, achieved calls/s)."""
    port = free_port()
    calls = max(int(rate * seconds), 1)
    with server(kind, port), tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        result = run_sipp(
            f"127.0.0.1:{port}",
            Path(tmp),
            calls=calls,
            rate=rate,
            timeout=seconds * 4 + 30,
            cpu=SIPP_CPU,
            extra=(),
        )
        elapsed = time.monotonic() - started
    achieved = result.successful / elapsed if elapsed > 0 else 0.0
    clean = result.failed == 0 and result.successful == calls and result.returncode == 0
    # sipp must also have kept the offered rate (else the harness, not the server, limits).
    clean = clean and achieved >= 0.8 * rate
    return clean, achieved


def highest_clean_rate(kind: str, rates: list[int], seconds: float) -> int:
    best = 0
    for rate in rates:
        clean, achieved = step(kind, rate, seconds)
        print(
            f"  {kind:8} rate {rate:5d}/s  achieved {achieved:7.0f}/s  "
            f"{'ok' if clean else 'FAILED'}",
            flush=True,
        )
        if not clean:
            break
        best = rate
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each step")
    parser.add_argument("--quick", action="store_true", help="short steps, coarse rates")
    parser.add_argument("--max-rate", type=int, default=8000)
    parser.add_argument("--skip-sipp-uas", action="store_true")
    args = parser.parse_args()
    if SIPP is None:
        print("sipp is not installed (Debian package sip-tester); skipping the call benchmark")
        return 0
    seconds = 2.0 if args.quick else args.seconds
    rates = [
        r
        for r in (
            100,
            250,
            500,
            750,
            1000,
            1250,
            1500,
            2000,
            2500,
            3000,
            4000,
            5000,
            6000,
            7000,
            8000,
        )
        if r <= args.max_rate
    ]
    print(
        f"calls/s under sipp uac (server on CPU {SERVER_CPU}, sipp on CPU {SIPP_CPU}, "
        f"{seconds:.0f} s per step, 0 failed calls required)"
    )
    sipwire_best = highest_clean_rate("sipwire", rates, seconds)
    uas_best = 0
    if not args.skip_sipp_uas:
        uas_best = highest_clean_rate("sipp-uas", rates, seconds)
    print(f"sipwire answer: {sipwire_best} calls/s")
    if uas_best:
        print(
            f"sipp uas:       {uas_best} calls/s   (sipwire / sipp uas = "
            f"{sipwire_best / uas_best:.2f})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
