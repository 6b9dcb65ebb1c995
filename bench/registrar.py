"""Registrations per second with digest authentication and SQLite persistence:
``sipwire serve`` and kamailio doing the same work, side by side in one run.

One registration is sipp's REGISTER scenario with a fresh nonce every time
(``tests/interop/scenarios/uac_register_users.xml``): REGISTER, 401 with a new
challenge, REGISTER with the MD5 digest (sipp knows no other), 200 once the
binding is written. 1,000 users take turns (sipp's injection file), each
refreshing its one binding.

The two servers do the same work:

- the user's HA1 is read from SQLite for each authenticated REGISTER (sipwire's
  users table; kamailio's auth_db on a ``subscriber`` table holding HA1s, the
  schema from Debian's kamailio-sqlite-modules), never a plain password;
- a replayed nonce-count is refused (sipwire's store; kamailio's
  ``nonce_count``);
- the binding is written through to SQLite before the 200 (sipwire's store;
  kamailio's usrloc with ``db_mode=1``), both databases in WAL mode with
  ``synchronous=FULL`` (kamailio's db_sqlite cannot set anything else; sipwire
  gets ``?synchronous=FULL`` in its store URL, so both fsync each commit).

kamailio runs ``bench/kamailio-registrar.cfg`` with one worker: with more, its
SQLite writers fail with "database is locked" (db_sqlite sets no busy
timeout). Both servers are pinned to CPU 0 and sipp to CPU 1 (taskset).

As ``bench/calls.py`` does, a rate counts only when it held with 0 failed
registrations (and sipp kept the offered rate) for a long step: short search
steps (``--search-seconds``) up a ladder of rates until one fails, then
confirmation steps (``--seconds``, 100 by default: 3x Timer J, the 32 s that
a server transaction of a REGISTER over UDP holds its state after the answer)
from the highest clean rate downwards until one holds. Each step starts the
server afresh on a copy of the same database. During sipwire's confirmation
step py-spy (when installed) samples it and the functions with the most own
time are printed: where its CPU goes.

At the end, the command of the run and a table: each server's sustained rate,
the rate sipp achieved at it, the length of the step and its failed
registrations (0), then sipwire's rate divided by kamailio's. The exit status
is 1 when a server held no rate at all. ``--quick`` (a smoke test of the
harness, under a minute: two low rates, short steps, no profile) gives no
figure to publish.

    .venv-bench/bin/python bench/registrar.py [--quick] [--seconds 100] [--users 1000]
        [--only sipwire|kamailio] [--sipwire-synchronous NORMAL]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
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
SCENARIO = ROOT / "tests" / "interop" / "scenarios" / "uac_register_users.xml"
KAMAILIO_CFG = Path(__file__).with_name("kamailio-registrar.cfg")
KAMAILIO_SCHEMA = Path("/usr/share/kamailio/db_sqlite")
DOMAIN = "localhost"
"""The users' domain and digest realm (sipwire serves localhost by default)."""
EXPIRES = 3600
SERVER_CPU = 0
SIPP_CPU = 1
LADDER = (
    *(200, 400, 600, 700, 800, 900, 1000, 1100, 1200, 1300, 1400, 1500),
    *(1600, 1800, 2000, 2250, 2500, 3000, 3500, 4000),
)


def _load(name: str, path: Path) -> ModuleType:
    """A module by path: ``bench/calls.py`` (its profiler), ``tests/interop/sipp.py``."""
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


# -- the data both servers start from -------------------------------------------------------


def user_names(count: int) -> list[tuple[str, str]]:
    return [(f"u{i:05d}", f"pw-{i:05d}-{uuid.uuid4().hex[:8]}") for i in range(count)]


def write_injection_file(path: Path, users: list[tuple[str, str]]) -> None:
    """sipp's users: field0 the user, field1 its credentials as sipp's keyword."""
    lines = ["SEQUENTIAL"]
    lines += [f"{name};[authentication username={name} password={pw}]" for name, pw in users]
    path.write_text("\n".join(lines) + "\n")


def make_sipwire_db(path: Path, users: list[tuple[str, str]]) -> None:
    """sipwire's store with the users (HA1s per algorithm), as ``sipwire user add`` makes them."""

    async def fill() -> None:
        store = open_store(f"sqlite:{path}")
        await store.open()
        try:
            for name, password in users:
                await store.put_user(make_user(name, DOMAIN, password))
        finally:
            await store.close()

    asyncio.run(fill())


def make_kamailio_db(path: Path, users: list[tuple[str, str]]) -> None:
    """kamailio's database from Debian's schema: version, subscriber (HA1s only), location."""
    import sqlite3

    db = sqlite3.connect(path)
    try:
        for part in ("standard", "auth_db", "usrloc"):
            db.executescript((KAMAILIO_SCHEMA / f"{part}-create.sql").read_text())
        rows = []
        for name, password in users:
            ha1 = hashlib.md5(f"{name}:{DOMAIN}:{password}".encode()).hexdigest()
            ha1b = hashlib.md5(f"{name}@{DOMAIN}:{DOMAIN}:{password}".encode()).hexdigest()
            rows.append((name, DOMAIN, "", ha1, ha1b))
        db.executemany(
            "INSERT INTO subscriber (username, domain, password, ha1, ha1b) VALUES (?,?,?,?,?)",
            rows,
        )
        db.execute("PRAGMA journal_mode=WAL")
        db.commit()
    finally:
        db.close()


def copy_db(source: Path, target: Path) -> None:
    """A database file with its WAL and shared-memory files, if any."""
    for suffix in ("", "-wal", "-shm"):
        origin = Path(f"{source}{suffix}")
        if origin.exists():
            shutil.copyfile(origin, f"{target}{suffix}")


# -- the servers ---------------------------------------------------------------------------


@dataclass
class Setup:
    workdir: Path
    users: int
    sipwire_db: Path
    kamailio_db: Path | None
    injection: Path
    sipwire_synchronous: str


def _answers(port: int, timeout: float = 0.3) -> bool:
    """One OPTIONS over UDP: True when the server answers anything."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(timeout)
        local = sock.getsockname()[1]
        tag = uuid.uuid4().hex[:8]
        request = (
            f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK{uuid.uuid4().hex};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:probe@127.0.0.1>;tag={tag}\r\nTo: <sip:127.0.0.1:{port}>\r\n"
            f"Call-ID: {uuid.uuid4().hex}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        )
        try:
            sock.sendto(request.encode(), ("127.0.0.1", port))
            return sock.recvfrom(65536)[0].startswith(b"SIP/2.0 ")
        except OSError:
            return False


@contextmanager
def server(kind: str, setup: Setup, port: int, stepdir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The server under test on CPU 0, on a fresh copy of its database, ready to answer."""
    stepdir.mkdir(parents=True)
    if kind == "sipwire":
        db = stepdir / "sipwire.db"
        copy_db(setup.sipwire_db, db)
        args = [
            *_pin(SERVER_CPU),
            sys.executable,
            "-m",
            "sipwire.cli.main",
            "serve",
            *("--listen", f"udp:127.0.0.1:{port}", "--http", "off", "--data", str(stepdir)),
            *("--store", f"sqlite:{db}?synchronous={setup.sipwire_synchronous}"),
            *("--algorithm", "MD5"),
        ]
    else:
        assert KAMAILIO is not None and setup.kamailio_db is not None
        db = stepdir / "kamailio.db"
        copy_db(setup.kamailio_db, db)
        args = [
            *_pin(SERVER_CPU),
            KAMAILIO,
            *("-DD", "-E", "-f", str(KAMAILIO_CFG), "-l", f"udp:127.0.0.1:{port}"),
            *("-Y", str(stepdir), "-w", str(stepdir), "-m", "64", "-M", "8"),
            *("-A", f'DBURL="sqlite:///{db}"', "-A", f'DBJOURNAL="{db}=WAL;"'),
            *("-A", f'REALM="{DOMAIN}"', "-A", "CHILDREN=1"),
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


# -- one step ------------------------------------------------------------------------------


@dataclass
class StepResult:
    clean: bool
    achieved: float
    successful: int
    failed: int
    retransmissions: int
    top: list[str]


def _stats(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    with path.open(newline="") as f:
        rows = list(csv.reader(f, delimiter=";"))
    return dict(zip(rows[0], rows[-1], strict=False)) if len(rows) >= 2 else {}


def _sipp_seconds(stats: dict[str, str]) -> float | None:
    """Seconds from sipp's start to its last statistics line: StartTime and CurrentTime
    are "DATE<tab>TIME<tab>EPOCH"."""
    try:
        start = float(stats["StartTime"].split("\t")[-1])
        end = float(stats["CurrentTime"].split("\t")[-1])
    except (KeyError, ValueError):
        return None
    return end - start if end > start else None


def step(kind: str, setup: Setup, rate: int, seconds: float, profile: float = 0.0) -> StepResult:
    """``rate`` registrations/s for ``seconds`` against a fresh ``kind`` server."""
    assert SIPP is not None
    port = free_port()
    calls = max(int(rate * seconds), 1)
    stepdir = Path(tempfile.mkdtemp(prefix=f"{kind}-{rate}-", dir=setup.workdir))
    stat_file = stepdir / "sipp_stats.csv"
    with (
        server(kind, setup, port, stepdir / "server") as proc,
        profiled(proc, profile, min(seconds / 2, 20.0)) as top,
    ):
        args = [
            *_pin(SIPP_CPU),
            SIPP,
            *("-sf", str(SCENARIO), f"127.0.0.1:{port}", "-i", "127.0.0.1"),
            *("-p", str(free_port()), "-t", "u1", "-inf", str(setup.injection)),
            *("-key", "domain", DOMAIN, "-key", "expires", str(EXPIRES)),
            *("-m", str(calls), "-r", str(rate), "-nostdin"),
            *("-timeout", f"{int(seconds * 2 + 60)}s", "-timeout_error"),
            *("-trace_stat", "-stf", str(stat_file), "-fd", "1"),
        ]
        started = time.monotonic()
        done = subprocess.run(
            args,
            cwd=stepdir,
            capture_output=True,
            timeout=seconds * 2 + 120,
            env=dict(os.environ, TERM="dumb"),
            check=False,
        )
        elapsed = time.monotonic() - started
    stats = _stats(stat_file)
    successful = int(stats.get("SuccessfulCall(C)", "0") or 0)
    failed = int(stats.get("FailedCall(C)", "0") or 0)
    retransmissions = int(stats.get("Retransmissions(C)", "0") or 0)
    # sipp's own clock (its start to its last statistics line) leaves out the time it
    # takes to start, which weighs on short steps.
    elapsed = _sipp_seconds(stats) or elapsed
    achieved = successful / elapsed if elapsed > 0 else 0.0
    clean = done.returncode == 0 and failed == 0 and successful == calls
    # sipp must also have kept the offered rate (else the server only held a lower one).
    clean = clean and achieved >= 0.9 * rate
    if clean:
        shutil.rmtree(stepdir, ignore_errors=True)
    return StepResult(clean, achieved, successful, failed, retransmissions, top)


def _report(kind: str, phase: str, rate: int, seconds: float, result: StepResult) -> None:
    print(
        f"  {kind:8} {phase:7} {rate:5d}/s x {seconds:3.0f} s  achieved {result.achieved:7.0f}/s"
        f"  failed {result.failed:6d}  retransmitted {result.retransmissions:7d}  "
        f"{'ok' if result.clean else 'FAILED'}",
        flush=True,
    )


def sustained_rate(
    kind: str,
    setup: Setup,
    rates: list[int],
    search_seconds: float,
    seconds: float,
    profile: float,
) -> tuple[int, StepResult | None]:
    """The highest rate of ``rates`` that holds for ``seconds`` with 0 failed registrations,
    and that confirmation step's result (0 and None: none held)."""
    clean_rates: list[int] = []
    for rate in rates:
        result = step(kind, setup, rate, search_seconds)
        _report(kind, "search", rate, search_seconds, result)
        if not result.clean:
            break
        clean_rates.append(rate)
    for rate in reversed(clean_rates):
        result = step(kind, setup, rate, seconds, profile)
        _report(kind, "confirm", rate, seconds, result)
        if result.clean:
            return rate, result
    return 0, None


def kamailio_version() -> str:
    """``kamailio 5.6.3`` (from ``kamailio -v``), or ``kamailio``."""
    assert KAMAILIO is not None
    try:
        out = subprocess.run(
            [KAMAILIO, "-v"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "kamailio"
    words = out.split()
    # "version: kamailio 5.6.3 (x86_64/linux)"
    return f"kamailio {words[2]}" if len(words) > 2 and words[1] == "kamailio" else "kamailio"


def command_line() -> str:
    """This run's command, as typed from the repository's root."""
    python = Path(sys.executable)
    with suppress(ValueError):
        python = python.relative_to(ROOT)
    script = Path(sys.argv[0]).resolve()
    with suppress(ValueError):
        script = script.relative_to(ROOT)
    return shlex.join([str(python), str(script), *sys.argv[1:]])


def print_table(
    names: dict[str, str], best: dict[str, tuple[int, StepResult | None]], seconds: float
) -> None:
    """The sustained rates side by side, and sipwire's share of kamailio's."""
    rows = [("server", "registrations/s", "achieved/s", "held for", "failed")]
    for kind, (rate, result) in best.items():
        achieved = f"{result.achieved:.0f}" if result is not None else "-"
        failed = str(result.failed) if result is not None else "-"
        held = f"{seconds:.0f} s" if result is not None else "none held"
        rows.append((names[kind], str(rate), achieved, held, failed))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        cells = [
            row[0].ljust(widths[0]),
            *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)),
        ]
        print("| " + " | ".join(cells) + " |")
        if index == 0:
            print(
                "|"
                + "|".join("-" * (w + 1) + (":" if i else "-") for i, w in enumerate(widths))
                + "|"
            )
    sipwire, kamailio = best.get("sipwire", (0, None))[0], best.get("kamailio", (0, None))[0]
    if sipwire and kamailio:
        print(f"sipwire / kamailio = {sipwire / kamailio:.2f}   (target: 0.50 or more)")


def main() -> int:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--seconds", type=float, default=100.0, help="length of a confirm step")
    parser.add_argument("--search-seconds", type=float, default=10.0)
    parser.add_argument("--profile-seconds", type=float, default=20.0)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument(
        "--quick", action="store_true", help="two low rates, short steps: a smoke test only"
    )
    parser.add_argument("--max-rate", type=int, default=LADDER[-1])
    parser.add_argument("--only", choices=("sipwire", "kamailio"))
    parser.add_argument(
        "--sipwire-synchronous",
        choices=("NORMAL", "FULL"),
        default="FULL",
        help="sipwire's SQLite synchronous (FULL: kamailio's; NORMAL: sipwire's default)",
    )
    args = parser.parse_args()
    if SIPP is None:
        print("sipp is not installed (Debian package sip-tester); skipping the registrar benchmark")
        return 0
    kinds = ["sipwire", "kamailio"] if args.only is None else [args.only]
    if "kamailio" in kinds and (KAMAILIO is None or not KAMAILIO_SCHEMA.is_dir()):
        print("kamailio or kamailio-sqlite-modules is not installed: sipwire alone")
        kinds.remove("kamailio")
    seconds, search = (5.0, 2.0) if args.quick else (args.seconds, args.search_seconds)
    rates = [r for r in LADDER if r <= args.max_rate]
    if args.quick:
        # Two low rates of the ladder, no profile: that every part works, not a figure.
        rates, args.profile_seconds = rates[:2], 0.0
    with tempfile.TemporaryDirectory(prefix="sipwire-bench-registrar-") as tmp:
        workdir = Path(tmp)
        users = user_names(args.users)
        injection = workdir / "users.csv"
        write_injection_file(injection, users)
        sipwire_db = workdir / "sipwire.db"
        make_sipwire_db(sipwire_db, users)
        kamailio_db = None
        if "kamailio" in kinds:
            kamailio_db = workdir / "kamailio.db"
            make_kamailio_db(kamailio_db, users)
        setup = Setup(
            workdir, args.users, sipwire_db, kamailio_db, injection, args.sipwire_synchronous
        )
        print(
            f"registrations/s (REGISTER, 401, REGISTER with an MD5 digest, 200) for "
            f"{args.users} users, bindings written through to SQLite (WAL, sipwire "
            f"synchronous={args.sipwire_synchronous}, kamailio FULL); servers on CPU "
            f"{SERVER_CPU}, sipp on CPU {SIPP_CPU}: search steps of {search:.0f} s, then "
            f"confirm steps of {seconds:.0f} s with 0 failed registrations",
            flush=True,
        )
        best: dict[str, tuple[int, StepResult | None]] = {}
        for kind in kinds:
            profile = args.profile_seconds if kind == "sipwire" else 0.0
            best[kind] = sustained_rate(kind, setup, rates, search, seconds, profile)
    names = {"sipwire": "sipwire serve"}
    if "kamailio" in kinds:
        names["kamailio"] = kamailio_version()
    print()
    print(f"$ {command_line()}")
    print_table(names, best, seconds)
    sipwire_result = best.get("sipwire", (0, None))[1]
    if sipwire_result is not None and sipwire_result.top:
        print("where sipwire serve's CPU goes at that rate:")
        print("\n".join(sipwire_result.top))
    return 0 if all(result is not None for _, result in best.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
