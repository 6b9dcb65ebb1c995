"""Calls per second that ``sipwire answer`` sustains under sipp's ``uac`` scenario.

The server runs on one core, sipp on the other (taskset). A figure counts
only when it held for a long step with 0 failed calls: a capacity leak hides
in short steps (a call holds transaction state for 64*T1 = 32 s after it
ends, so a step must outlast that several times over).

Two phases per server, sipwire then sipp's own ``uas`` (the ceiling of the
harness) in the same run:

1. search: short steps (``--search-seconds``) up a ladder of rates until one
   fails, to find the neighbourhood;
2. confirm: long steps (``--seconds``, 100 s by default, 3x the longest
   timer) from the highest clean search rate downwards until one holds with
   0 failed calls. That rate is the published figure.

During sipwire's confirmation step, py-spy (when installed) samples the
server for ``--profile-seconds`` and the functions with the most own time
are printed: where the CPU goes.

    .venv-bench/bin/python bench/calls.py [--quick] [--seconds 100] [--max-rate 8000]
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
from collections import Counter
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
NEW_OFFER = Path(__file__).resolve().parent / "scenarios" / "uac_new_offer_per_call.xml"
"""A uac whose SDP offer differs every call, as real user agents' offers do (the
built-in uac sends the same bytes every call, which sipwire's SDP memo answers cheaply)."""
LADDER = (500, 750, 1000, 1250, 1500, 1750, 2000, 2500, 3000, 4000, 5000, 6000, 7000, 8000)


@contextmanager
def server(kind: str, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """Start the server under test pinned to SERVER_CPU."""
    pin = ["taskset", "-c", str(SERVER_CPU)] if shutil.which("taskset") else []
    if kind.startswith("sipwire"):
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
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def profiled(proc: subprocess.Popen[bytes], seconds: float, delay: float) -> Iterator[list[str]]:
    """py-spy samples ``proc`` for ``seconds`` after ``delay``; yields the top lines."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    out: list[str] = []
    if not Path(spy).exists() or seconds <= 0:
        yield out
        return
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "profile.txt"
        cmd = (
            f"sleep {delay}; exec {spy} record --pid {proc.pid} --duration {int(seconds)} "
            f"--rate 200 --format raw --output {raw} --nonblocking"
        )
        spy_proc = subprocess.Popen(
            ["sh", "-c", cmd], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            yield out
        finally:
            try:
                spy_proc.wait(timeout=seconds + delay + 30)
            except subprocess.TimeoutExpired:
                spy_proc.kill()
            if raw.exists():
                out.extend(_top_functions(raw.read_text()))


def _frame_name(frame: str) -> str:
    """``function (path/file.py:123)`` -> ``function file.py`` (lines of one function merged)."""
    name, _, where = frame.partition(" (")
    return f"{name} {where.rsplit('/', 1)[-1].split(':')[0].rstrip(')')}"


def _top_functions(raw: str, count: int = 25) -> list[str]:
    """Own time and total time per function from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in raw.splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        hits = int(n)
        samples += hits
        frames = [_frame_name(f) for f in stack.split(";")]
        own[frames[-1]] += hits
        for frame in set(frames):
            total[frame] += hits
    if not samples:
        return []
    lines = [f"  {'own':>6} {'total':>6}  function (py-spy, {samples} samples)"]
    for frame, hits in own.most_common(count):
        lines.append(
            f"  {100 * hits / samples:5.1f}% {100 * total[frame] / samples:5.1f}%  {frame}"
        )
    return lines


def step(
    kind: str, rate: int, seconds: float, profile: float = 0.0
) -> tuple[bool, float, int, list[str]]:
    """One step at ``rate`` for ``seconds``: (clean, achieved calls/s, failed, profile)."""
    port = free_port()
    calls = max(int(rate * seconds), 1)
    delay = min(seconds / 2, 20.0)
    with (
        server(kind, port) as proc,
        tempfile.TemporaryDirectory() as tmp,
        profiled(proc, profile, delay) as top,
    ):
        started = time.monotonic()
        result = run_sipp(
            f"127.0.0.1:{port}",
            Path(tmp),
            calls=calls,
            rate=rate,
            timeout=seconds * 2 + 60,
            cpu=SIPP_CPU,
            extra=(),
            scenario=NEW_OFFER if kind == "sipwire-new-offer" else None,
        )
        elapsed = time.monotonic() - started
    achieved = result.successful / elapsed if elapsed > 0 else 0.0
    clean = result.failed == 0 and result.successful == calls and result.returncode == 0
    # sipp must also have kept the offered rate (else the harness, not the server, limits).
    clean = clean and achieved >= 0.9 * rate
    return clean, achieved, result.failed, top


def _report(
    kind: str, phase: str, rate: int, seconds: float, outcome: tuple[bool, float, int]
) -> None:
    clean, achieved, failed = outcome
    print(
        f"  {kind:8} {phase:7} {rate:5d}/s x {seconds:3.0f} s  achieved {achieved:7.0f}/s  "
        f"failed {failed:6d}  {'ok' if clean else 'FAILED'}",
        flush=True,
    )


def sustained_rate(
    kind: str, rates: list[int], search_seconds: float, seconds: float, profile: float
) -> tuple[int, list[str]]:
    """The highest rate of ``rates`` that holds for ``seconds`` with 0 failed calls."""
    clean_rates: list[int] = []
    for rate in rates:
        clean, achieved, failed, _ = step(kind, rate, search_seconds)
        _report(kind, "search", rate, search_seconds, (clean, achieved, failed))
        if not clean:
            break
        clean_rates.append(rate)
    for rate in reversed(clean_rates):
        clean, achieved, failed, top = step(kind, rate, seconds, profile)
        _report(kind, "confirm", rate, seconds, (clean, achieved, failed))
        if clean:
            return rate, top
    return 0, []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=100.0, help="length of a confirm step")
    parser.add_argument("--search-seconds", type=float, default=10.0)
    parser.add_argument("--profile-seconds", type=float, default=20.0)
    parser.add_argument("--quick", action="store_true", help="short steps (a smoke test only)")
    parser.add_argument("--max-rate", type=int, default=8000)
    parser.add_argument("--skip-sipp-uas", action="store_true")
    args = parser.parse_args()
    if SIPP is None:
        print("sipp is not installed (Debian package sip-tester); skipping the call benchmark")
        return 0
    seconds, search = (5.0, 2.0) if args.quick else (args.seconds, args.search_seconds)
    rates = [r for r in LADDER if r <= args.max_rate]
    print(
        f"calls/s under sipp uac (server on CPU {SERVER_CPU}, sipp on CPU {SIPP_CPU}): search "
        f"steps of {search:.0f} s, then confirm steps of {seconds:.0f} s with 0 failed calls"
    )
    sipwire_best, top = sustained_rate("sipwire", rates, search, seconds, args.profile_seconds)
    varied_best, _ = sustained_rate("sipwire-new-offer", rates, search, seconds, 0.0)
    uas_best = 0
    if not args.skip_sipp_uas:
        uas_best, _ = sustained_rate("sipp-uas", rates, search, seconds, 0.0)
    print(f"sipwire answer: {sipwire_best} calls/s sustained for {seconds:.0f} s, 0 failed")
    print(
        f"  with a new SDP offer every call: {varied_best} calls/s "
        "(the built-in uac repeats one offer, which sipwire answers from its memo)"
    )
    if uas_best:
        print(
            f"sipp uas:       {uas_best} calls/s sustained for {seconds:.0f} s   "
            f"(sipwire / sipp uas = {sipwire_best / uas_best:.2f}, "
            f"new offers: {varied_best / uas_best:.2f})"
        )
    if top:
        print("where sipwire answer's CPU goes at that rate:")
        print("\n".join(top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
