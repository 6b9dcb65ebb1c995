"""Mutation fuzzer for ``sipwire answer`` over UDP and TCP.

    python -m tests.load.fuzz --datagrams 1000000 --tcp 10000 --seed 7
    python -m tests.load.fuzz --replay /tmp/sipwire-fuzz-.../problem-1.jsonl

It starts ``sipwire answer -v`` (UDP and TCP on 127.0.0.1, pinned to CPU 0;
the fuzzer pins itself to CPU 1) and sends it mutated messages. The seeds of
the mutations are messages built here (requests of every method, in and out
of dialogs, and responses) and the RFC 4475 / RFC 5118 torture messages,
read at run time from ``--torture`` (default /work/shared/torture, or
$SIPWIRE_TORTURE). Mutations: bit flips, byte insertion and deletion,
duplicated and removed headers, huge or odd numbers (5,000 digits,
negative, Unicode digits) in CSeq / Content-Length / Max-Forwards / Expires
and the like, overlong lines, random Unicode and invalid UTF-8, truncation,
CRLF / LF / CR mixing, compact and long header names, spliced messages,
broken request lines, parameters and SDP bodies; 1 to 4 of them stacked.

UDP: datagrams go out round-robin from 32 source addresses (a busy server
sheds new dialogs from a source above its fair share) in windows of at most
32 datagrams / 48 KiB, each window followed by an OPTIONS "sync" ping from
another socket; the fuzzer waits for the previous window's ping before
sending the next window, so the server's socket buffer is not simply
overflowing (kernel drops are counted from /proc/net/snmp and reported).
Every 10,000 datagrams a health check (a fresh OPTIONS from 127.0.0.3) must
get its 200 within 5 s. 80 % of the 2xx to INVITEs are ACKed, as a UAC
would; the dialogs are remembered, and in-dialog requests (ACK, BYE,
re-INVITE, UPDATE, PRACK, INFO, REFER, NOTIFY...) are fuzzed with their real
tags.

TCP: each framing is a connection carrying 1 to 4 mutated messages (with
bad Content-Length values, keep-alive CRLFs and oversized headers among the
mutations), written in pieces split at random points, then half-closed,
closed, reset or left open (up to 64 at a time); every framing is followed by
a health check: OPTIONS on a fresh connection must get its 200 within 5 s.

After every window (and framing) the fuzzer reads what the server's log
gained. A new traceback or ERROR record is attributed to the inputs in flight;
they are replayed one by one to find the culprit, and the inputs are written
to ``problem-N.jsonl`` under the output directory (``--out``, default
/tmp/sipwire-fuzz-SEED-TIME). When a health check fails, the last batch of
inputs is written to ``last-batch.jsonl``. Every run prints its seed; the
inputs are a function of the seed, except in-dialog requests, whose tags come
from the server.

Isolation: the fuzzer moves itself (and so the server it starts) into a
private network namespace that has only ``lo``: fuzzed Contact,
Record-Route and Via maddr values would otherwise make the server send BYEs,
DNS queries and responses off loopback. Without the privilege to do that it
exits with status 3, unless ``--host-network`` is given.

Exit status: 0 when the server stayed alive, answered every health check,
logged no problem and exited 0 on SIGTERM; 1 otherwise; 3 as above.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tests.load.fuzz_problems import ProblemTracker
from tests.load.fuzz_report import FuzzResult, Input, read_inputs
from tests.load.fuzz_tcp import TcpFuzzer
from tests.load.fuzz_udp import UdpFuzzer
from tests.load.logscan import log_problems
from tests.load.netns import enter_private_netns
from tests.load.server import LOAD_CPU, AnswerServer, pin_self, start_answer

__all__ = ["Campaign", "main", "replay", "run"]


class Campaign:
    """Drives one server: UDP windows, TCP framings, problem attribution."""

    def __init__(self, server: AnswerServer, result: FuzzResult, out_dir: Path, seed: int) -> None:
        self.udp = UdpFuzzer(server, result, seed)
        self.tcp = TcpFuzzer(server, result, self.udp.mutator, seed)
        self.problems = ProblemTracker(server, result, out_dir, self.replay)

    def replay(self, item: Input, *, tcp_timeout: float = 2.0) -> bool:
        """Send one input again; whether the health check after it was answered."""
        if item.transport == "udp":
            return self.udp.replay(item)
        return self.tcp.replay(item, timeout=tcp_timeout)

    def close(self) -> None:
        self.udp.close()
        self.tcp.close()


def run(
    datagrams: int,
    framings: int,
    seed: int,
    out_dir: Path,
    *,
    max_seconds: float = 3600.0,
) -> FuzzResult:
    """Start a server, fuzz it over UDP then TCP, stop it; the result."""
    out_dir.mkdir(parents=True, exist_ok=True)
    result = FuzzResult(seed, str(out_dir))
    stop_at = time.monotonic() + max_seconds
    with start_answer(out_dir / "answer.log") as server:
        result.rss_start_kib = server.rss_kib()
        campaign = Campaign(server, result, out_dir, seed)
        try:
            if datagrams:
                campaign.udp.run(datagrams, stop_at=stop_at, problems=campaign.problems)
            if framings and server.alive() and not result.failure:
                campaign.tcp.run(framings, stop_at=stop_at, problems=campaign.problems)
        finally:
            campaign.close()
        result.rss_end_kib = server.rss_kib()
        result.rss_peak_kib = max(result.rss_peak_kib, result.rss_end_kib, result.rss_start_kib)
        result.alive = result.alive and server.alive()
        result.exit_status = server.stop()
    # What the log says after the last check (and at shutdown) has no input to blame.
    time.sleep(0.1)
    for block in campaign.problems.watch.new_blocks(final=True):
        campaign.problems.record(block, [], "after the last check / shutdown", isolate=False)
    result.problem_lines = len(log_problems(server.log_path))
    return result


def replay(path: Path, out_dir: Path) -> int:
    """Send the inputs of a problem / batch file to a fresh server, one at a time."""
    inputs = read_inputs(path)
    result = FuzzResult(0, str(out_dir))
    with start_answer(out_dir / "answer.log") as server:
        campaign = Campaign(server, result, out_dir, 0)
        try:
            for item in inputs:
                answered = campaign.replay(item, tcp_timeout=5.0)
                time.sleep(0.05)
                found = campaign.problems.watch.new_blocks(final=True)
                print(
                    f"{item.transport} #{item.index} {item.mutations}: "
                    f"{'answered' if answered else 'NO ANSWER'}, {len(found)} problems"
                )
                for block in found:
                    print("  | " + block.brief().replace("\n", "\n  | "))
        finally:
            campaign.close()
        status = server.stop()
    print(f"server exit status {status}; log {out_dir / 'answer.log'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.load.fuzz", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--datagrams", type=int, default=100_000)
    parser.add_argument("--tcp", type=int, default=2_000, help="TCP framings")
    parser.add_argument("--seed", type=int, default=None, help="default: random (printed)")
    parser.add_argument("--out", type=Path, default=None, help="output directory")
    parser.add_argument("--json", type=Path, default=None, help="write the result here")
    parser.add_argument("--max-seconds", type=float, default=3600.0)
    parser.add_argument("--replay", type=Path, default=None, help="a .jsonl written by a run")
    parser.add_argument(
        "--keep-log", action="store_true", help="keep the server log of a clean run too"
    )
    parser.add_argument(
        "--host-network",
        action="store_true",
        help="run without a private network namespace (fuzzed Contacts, Routes and "
        "maddr can then make the server send off loopback)",
    )
    args = parser.parse_args(argv)
    why = enter_private_netns()
    if why is not None and not args.host_network:
        print(f"fuzz: no private network namespace ({why}); see --host-network", file=sys.stderr)
        return 3
    pin_self(LOAD_CPU)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    out_dir = args.out or Path(f"/tmp/sipwire-fuzz-{seed}-{int(time.time())}")
    if args.replay is not None:
        return replay(args.replay, out_dir)
    print(
        f"fuzz: seed {seed}, {args.datagrams} datagrams, {args.tcp} TCP framings, "
        f"output {out_dir} (reproduce: --seed {seed})",
        flush=True,
    )
    result = run(args.datagrams, args.tcp, seed, out_dir, max_seconds=args.max_seconds)
    print(result.summary(), flush=True)
    payload = dict(result.__dict__, ok=result.ok)
    if args.json is not None:
        args.json.write_text(json.dumps(payload, indent=1))
    (out_dir / "result.json").write_text(json.dumps(payload, indent=1))
    if result.ok and not args.keep_log:
        (out_dir / "answer.log").unlink(missing_ok=True)  # ~1 KB per datagram
    elif not result.ok:
        print(f"fuzz: FAILED; inputs and log under {out_dir}", flush=True)
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
