"""Calls per second through a proxy: ``sipwire serve`` and kamailio side by side in one run,
stateful and stateless.

The call is sipp to sipp through the proxy, with the callee found in the
location service (the scenarios of ``tests/interop/scenarios``):

    caller (uac_call_record_route.xml) -> proxy -> callee (uas_answer_record_route.xml)
    INVITE sip:bob@localhost, 180, 200 (Record-Route), ACK, BYE, 200

The callee first registers as bob with digest (``uac_register_contact.xml``,
from the port it then listens on). The caller's From is another operator's
domain: neither proxy challenges it. Both proxies Record-Route, look bob up
in their location service (sipwire: its SQLite store; kamailio: usrloc in
memory, ``bench/kamailio-proxy.cfg``) and relay with transactions
(sipwire's stateful proxy; kamailio's ``tm``) or without (``sipwire serve
--stateless``; kamailio's ``forward()``). One worker each. The proxy is
pinned to CPU 0, both sipps to CPU 1 (taskset).

As ``bench/calls.py`` does, a rate counts only when it held with 0 failed
calls (and the caller kept the offered rate): short search steps
(``--search-seconds``) up a ladder of rates until one fails, then
confirmation steps (``--seconds``, 100 by default) from the highest clean
rate downwards until one holds. Each step starts the proxy afresh. During
sipwire's stateful confirmation step py-spy (when installed) samples it and
the functions with the most own time are printed.

At the end, the command of the run and a table per mode: each proxy's
sustained calls/s, the rate achieved, the CPU time the proxy used per call,
and sipwire's rate divided by kamailio's. ``--quick`` (a smoke test of the
harness: two low rates, short steps) gives no figure to publish.

    .venv-bench/bin/python bench/proxy.py [--quick] [--seconds 100]
        [--only sipwire|kamailio] [--mode stateful|stateless]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import importlib.util
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from sipwire.registrar.authenticate import make_user
from sipwire.store import open_store

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "tests" / "interop" / "scenarios"
KAMAILIO_CFG = Path(__file__).with_name("kamailio-proxy.cfg")
DOMAIN = "localhost"
CALLEE = "bob"
PASSWORD = "bench-b0b-pw"
SERVER_CPU = 0
SIPP_CPU = 1
LADDER = (100, 200, 300, 400, 500, 600, 700, 800, 1000, 1200, 1500, 1750, 2000, 2500, 3000)


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


_calls = _load("sipwire_bench_calls", Path(__file__).with_name("calls.py"))
SIPP = _calls.SIPP
free_port = _calls.free_port
profiled = _calls.profiled


def _which(name: str) -> str | None:
    found = shutil.which(name)
    if found is None and Path("/usr/sbin", name).exists():
        found = f"/usr/sbin/{name}"
    return found


KAMAILIO = _which("kamailio")


def _pin(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") else []


def make_sipwire_db(path: Path) -> None:
    async def fill() -> None:
        store = open_store(f"sqlite:{path}")
        await store.open()
        try:
            await store.put_user(make_user(CALLEE, DOMAIN, PASSWORD))
        finally:
            await store.close()

    asyncio.run(fill())


def _answers(port: int, timeout: float = 0.3) -> bool:
    """One OPTIONS over UDP: True when the server answers anything."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(timeout)
        local = sock.getsockname()[1]
        request = (
            f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK{uuid.uuid4().hex};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:probe@127.0.0.1>;tag={uuid.uuid4().hex[:8]}\r\n"
            f"To: <sip:127.0.0.1:{port}>\r\n"
            f"Call-ID: {uuid.uuid4().hex}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        )
        try:
            sock.sendto(request.encode(), ("127.0.0.1", port))
            return sock.recvfrom(65536)[0].startswith(b"SIP/2.0 ")
        except OSError:
            return False


@contextmanager
def proxy(
    kind: str, mode: str, db: Path, port: int, stepdir: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """The proxy under test on CPU 0, ready to answer."""
    stepdir.mkdir(parents=True)
    if kind == "sipwire":
        copy = stepdir / "sipwire.db"
        shutil.copyfile(db, copy)
        args = [
            *_pin(SERVER_CPU),
            sys.executable,
            *("-m", "sipwire.cli.main", "serve"),
            *("--listen", f"udp:127.0.0.1:{port}", "--http", "off", "--data", str(stepdir)),
            *("--store", f"sqlite:{copy}", "--algorithm", "MD5"),
            *(("--stateless",) if mode == "stateless" else ()),
        ]
    else:
        assert KAMAILIO is not None
        args = [
            *_pin(SERVER_CPU),
            KAMAILIO,
            *("-DD", "-E", "-f", str(KAMAILIO_CFG), "-l", f"udp:127.0.0.1:{port}"),
            *("-Y", str(stepdir), "-w", str(stepdir), "-m", "512", "-M", "8"),
            *("-A", f'PASSWORD="{PASSWORD}"', "-A", "CHILDREN=1"),
            *(("-A", "STATELESS") if mode == "stateless" else ()),
        ]
    log = (stepdir / "server.log").open("wb")
    proc = subprocess.Popen(
        args,
        cwd=stepdir,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(os.environ, TERM="dumb"),
        start_new_session=True,  # kamailio's workers are in its process group
    )
    try:
        deadline = time.monotonic() + 30
        while not _answers(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                text = (stepdir / "server.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{kind} did not start:\n{text}")
            time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=15)
        if proc.poll() is None or kind == "kamailio":
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of ``pid`` and its children alive (kamailio's workers are
    its children) from /proc, in seconds."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    with suppress(OSError):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    for one in pids:
        with suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{one}/stat").read_text().rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _stats(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    with path.open(newline="") as f:
        rows = list(csv.reader(f, delimiter=";"))
    return dict(zip(rows[0], rows[-1], strict=False)) if len(rows) >= 2 else {}


def _sipp_seconds(stats: dict[str, str]) -> float | None:
    try:
        start = float(stats["StartTime"].split("\t")[-1])
        end = float(stats["CurrentTime"].split("\t")[-1])
    except (KeyError, ValueError):
        return None
    return end - start if end > start else None


def _sipp(scenario: str, *args: str) -> list[str]:
    assert SIPP is not None
    return [*_pin(SIPP_CPU), SIPP, "-sf", str(SCENARIOS / scenario), "-i", "127.0.0.1", *args]


@dataclass
class StepResult:
    clean: bool
    achieved: float
    successful: int
    failed: int
    cpu_ms: float
    top: list[str]


def step(
    kind: str, mode: str, db: Path, workdir: Path, rate: int, seconds: float, profile: float = 0.0
) -> StepResult:
    """``rate`` calls/s for ``seconds`` through a fresh ``kind`` proxy in ``mode``."""
    port, callee_port, caller_port = free_port(), free_port(), free_port()
    calls = max(int(rate * seconds), 1)
    stepdir = Path(tempfile.mkdtemp(prefix=f"{kind}-{mode}-{rate}-", dir=workdir))
    common = ("-nostdin", "-t", "u1", "-timeout_error")
    limit = seconds * 2 + 60
    with proxy(kind, mode, db, port, stepdir / "proxy") as proc:
        registered = subprocess.run(
            _sipp(
                "uac_register_contact.xml",
                f"127.0.0.1:{port}",
                *("-p", str(callee_port), "-m", "1", "-s", CALLEE),
                *("-au", CALLEE, "-ap", PASSWORD, "-key", "domain", DOMAIN),
                *("-key", "expires", "3600", "-timeout", "10s", *common),
            ),
            cwd=stepdir,
            capture_output=True,
            timeout=30,
            check=False,
        )
        if registered.returncode != 0:
            raise RuntimeError(
                f"the callee could not register at {kind}: {registered.stdout[-500:]!r}"
            )
        callee = subprocess.Popen(
            _sipp(
                "uas_answer_record_route.xml",
                *("-p", str(callee_port), "-m", str(calls), "-timeout", f"{int(limit)}s"),
                *common,
                *("-trace_stat", "-stf", str(stepdir / "callee.csv")),
            ),
            cwd=stepdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=dict(os.environ, TERM="dumb"),
        )
        try:
            time.sleep(0.5)  # the callee's socket bound
            cpu_before = _cpu_seconds(proc.pid)
            with profiled(proc, profile, min(seconds / 2, 20.0)) as top:
                started = time.monotonic()
                done = subprocess.run(
                    _sipp(
                        "uac_call_record_route.xml",
                        f"127.0.0.1:{port}",
                        *("-p", str(caller_port), "-s", CALLEE, "-key", "domain", DOMAIN),
                        *("-key", "caller_domain", "caller.example", "-d", "0"),
                        *("-m", str(calls), "-r", str(rate), "-timeout", f"{int(limit)}s"),
                        *common,
                        *("-trace_stat", "-stf", str(stepdir / "caller.csv"), "-fd", "1"),
                    ),
                    cwd=stepdir,
                    capture_output=True,
                    timeout=limit + 60,
                    env=dict(os.environ, TERM="dumb"),
                    check=False,
                )
                elapsed = time.monotonic() - started
            cpu = _cpu_seconds(proc.pid) - cpu_before
        finally:
            with suppress(subprocess.TimeoutExpired):
                callee.wait(timeout=15)
            if callee.poll() is None:
                callee.kill()
                callee.wait()
    stats = _stats(stepdir / "caller.csv")
    answered = _stats(stepdir / "callee.csv")
    successful = int(stats.get("SuccessfulCall(C)", "0") or 0)
    failed = int(stats.get("FailedCall(C)", "0") or 0)
    failed += int(answered.get("FailedCall(C)", "0") or 0)
    elapsed = _sipp_seconds(stats) or elapsed
    achieved = successful / elapsed if elapsed > 0 else 0.0
    clean = done.returncode == 0 and failed == 0 and successful == calls
    clean = clean and achieved >= 0.9 * rate
    cpu_ms = 1000 * cpu / successful if successful else 0.0
    if clean:
        shutil.rmtree(stepdir, ignore_errors=True)
    return StepResult(clean, achieved, successful, failed, cpu_ms, top)


def sustained_rate(
    kind: str,
    mode: str,
    db: Path,
    workdir: Path,
    rates: list[int],
    search: float,
    seconds: float,
    profile: float,
) -> tuple[int, StepResult | None]:
    clean_rates: list[int] = []
    for rate in rates:
        result = step(kind, mode, db, workdir, rate, search)
        _report(kind, mode, "search", rate, search, result)
        if not result.clean:
            break
        clean_rates.append(rate)
    for rate in reversed(clean_rates):
        result = step(kind, mode, db, workdir, rate, seconds, profile)
        _report(kind, mode, "confirm", rate, seconds, result)
        if result.clean:
            return rate, result
    return 0, None


def _report(
    kind: str, mode: str, phase: str, rate: int, seconds: float, result: StepResult
) -> None:
    print(
        f"  {kind:8} {mode:9} {phase:7} {rate:5d}/s x {seconds:3.0f} s  achieved "
        f"{result.achieved:7.0f}/s  failed {result.failed:6d}  cpu {result.cpu_ms:5.2f} ms/call  "
        f"{'ok' if result.clean else 'FAILED'}",
        flush=True,
    )


def kamailio_version() -> str:
    assert KAMAILIO is not None
    try:
        out = subprocess.run(
            [KAMAILIO, "-v"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "kamailio"
    words = out.split()
    return f"kamailio {words[2]}" if len(words) > 2 and words[1] == "kamailio" else "kamailio"


def command_line() -> str:
    python = Path(sys.executable)
    with suppress(ValueError):
        python = python.relative_to(ROOT)
    script = Path(sys.argv[0]).resolve()
    with suppress(ValueError):
        script = script.relative_to(ROOT)
    return shlex.join([str(python), str(script), *sys.argv[1:]])


def print_table(
    names: dict[str, str],
    best: dict[tuple[str, str], tuple[int, StepResult | None]],
    seconds: float,
) -> None:
    rows = [("proxy", "mode", "calls/s", "achieved/s", "CPU ms/call", "held for", "failed")]
    for (kind, mode), (rate, result) in best.items():
        if result is None:
            rows.append((names[kind], mode, str(rate), "-", "-", "none held", "-"))
        else:
            rows.append(
                (
                    names[kind],
                    mode,
                    str(rate),
                    f"{result.achieved:.0f}",
                    f"{result.cpu_ms:.2f}",
                    f"{seconds:.0f} s",
                    str(result.failed),
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [c.rjust(w) for c, w in zip(row[2:], widths[2:], strict=True)]
        print("| " + " | ".join(cells) + " |")
        if index == 0:
            print(
                "|"
                + "|".join("-" * (w + 1) + (":" if i > 1 else "-") for i, w in enumerate(widths))
                + "|"
            )
    for mode in ("stateful", "stateless"):
        sipwire = best.get(("sipwire", mode), (0, None))[0]
        kamailio = best.get(("kamailio", mode), (0, None))[0]
        if sipwire and kamailio:
            print(f"{mode}: sipwire / kamailio = {sipwire / kamailio:.2f}   (target: 0.50 or more)")


def main() -> int:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--seconds", type=float, default=100.0, help="length of a confirm step")
    parser.add_argument("--search-seconds", type=float, default=10.0)
    parser.add_argument("--profile-seconds", type=float, default=20.0)
    parser.add_argument(
        "--quick", action="store_true", help="two low rates, short steps: a smoke test only"
    )
    parser.add_argument("--max-rate", type=int, default=LADDER[-1])
    parser.add_argument("--only", choices=("sipwire", "kamailio"))
    parser.add_argument("--mode", choices=("stateful", "stateless"))
    args = parser.parse_args()
    if SIPP is None:
        print("sipp is not installed (Debian package sip-tester); skipping the proxy benchmark")
        return 0
    kinds = ["sipwire", "kamailio"] if args.only is None else [args.only]
    if "kamailio" in kinds and KAMAILIO is None:
        print("kamailio is not installed: sipwire alone")
        kinds.remove("kamailio")
    modes = ["stateful", "stateless"] if args.mode is None else [args.mode]
    seconds, search = (4.0, 2.0) if args.quick else (args.seconds, args.search_seconds)
    rates = [r for r in LADDER if r <= args.max_rate]
    if args.quick:
        rates, args.profile_seconds = rates[:2], 0.0
    print(
        f"calls/s through a record-routing proxy with a location lookup (sipp -> proxy -> "
        f"registered sipp: INVITE, 180, 200, ACK, BYE, 200); proxy on CPU {SERVER_CPU}, "
        f"sipps on CPU {SIPP_CPU}: search steps of {search:.0f} s, then confirm steps of "
        f"{seconds:.0f} s with 0 failed calls",
        flush=True,
    )
    best: dict[tuple[str, str], tuple[int, StepResult | None]] = {}
    with tempfile.TemporaryDirectory(prefix="sipwire-bench-proxy-") as tmp:
        workdir = Path(tmp)
        db = workdir / "sipwire.db"
        make_sipwire_db(db)
        for mode in modes:
            for kind in kinds:
                profile = args.profile_seconds if (kind, mode) == ("sipwire", "stateful") else 0.0
                best[(kind, mode)] = sustained_rate(
                    kind, mode, db, workdir, rates, search, seconds, profile
                )
    names = {"sipwire": "sipwire serve"}
    if "kamailio" in kinds:
        names["kamailio"] = kamailio_version()
    print()
    print(f"$ {command_line()}")
    print_table(names, best, seconds)
    stateful = best.get(("sipwire", "stateful"), (0, None))[1]
    if stateful is not None and stateful.top:
        print("where sipwire serve's CPU goes (stateful, at that rate):")
        print("\n".join(stateful.top))
    return 0 if all(result is not None for _, result in best.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
