"""An INVITE flood that is never ACKed must not take the service down for others.

Timeline (``time.monotonic()``, shared by every process on Linux):

- warm-up: 300 calls and a few OPTIONS, then the RSS baseline;
- a probe (127.0.0.3, a thread of this process pinned to CPU 1) sends an
  OPTIONS every 100 ms and places a call (INVITE, ACK, BYE) every 200 ms,
  each with RFC 3261 retransmissions, from 3 s before the flood until 15 s
  after it; an OPTIONS counts when its 200 arrives within 2 s, a call when the
  200 to its INVITE arrives within 2 s and the 200 to its BYE too;
- the flooder (127.0.0.2, its own process on CPU 1) sends distinct INVITEs
  (own Call-ID, branch, From tag, ~560 bytes with SDP) at 5,000/s for 10 s
  and never ACKs them, then keeps reading what the server sends back;
- the RSS is sampled every 0.5 s until 60 s after the flood.

Asserted: every probe before the flood succeeds (the harness works); at least
90 % of the OPTIONS and of the calls during the flood succeed; after the flood
both an OPTIONS and a call succeed within 5 s, and every probe sent from 5 s
after the flood on succeeds; the RSS 60 s after the flood is at most twice the
baseline; the log has no problem; SIGTERM ends the server with status 0.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.load.server import LOAD_CPU, REPO, pin, start_answer
from tests.load.uac import ProbeResult, UdpUac, calls_ok, options_ok

FLOOD_RATE = 5000
FLOOD_SECONDS = 10.0
PRE_SECONDS = 3.0
POST_PROBE_SECONDS = 15.0
RSS_AFTER = 60.0
OPTIONS_INTERVAL = 0.1
CALL_INTERVAL = 0.2
WINDOW = 2.0
RECOVERY = 5.0


class Prober(threading.Thread):
    """OPTIONS every 100 ms and a call every 200 ms from 127.0.0.3 until stopped."""

    def __init__(self, port: int) -> None:
        super().__init__(name="prober", daemon=True)
        self.uac = UdpUac("127.0.0.3", ("127.0.0.1", port), window=WINDOW)
        self.stopping = threading.Event()

    def run(self) -> None:
        uac = self.uac
        next_options = next_call = time.monotonic()
        while not self.stopping.is_set():
            now = time.monotonic()
            if now >= next_options:
                uac.options(now)
                next_options += OPTIONS_INTERVAL
            if now >= next_call:
                uac.call(now)
                next_call += CALL_INTERVAL
            uac.poll(min(next_options, next_call))
        uac.run_until_idle(time.monotonic() + 2 * WINDOW + 1)
        uac.close()


@dataclass
class Flooder:
    """The flooder subprocess and the JSON events it printed."""

    proc: subprocess.Popen[str]
    events: dict[str, dict[str, object]] = field(default_factory=dict)
    ready: threading.Condition = field(default_factory=threading.Condition)

    def read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            with self.ready:
                self.events[str(event["event"])] = event
                self.ready.notify_all()

    def wait_for(self, name: str, timeout: float) -> dict[str, object]:
        with self.ready:
            if not self.ready.wait_for(lambda: name in self.events, timeout):
                raise AssertionError(f"flooder sent no {name!r} event in {timeout} s")
            return self.events[name]


def _ratio(results: list[ProbeResult]) -> float:
    return sum(r.ok for r in results) / len(results) if results else 0.0


def _number(event: dict[str, object], key: str) -> float:
    value = event[key]
    assert isinstance(value, int | float)
    return float(value)


@pytest.mark.timeout(180)
def test_invite_flood_leaves_service_for_others(tmp_path: Path) -> None:
    log = tmp_path / "answer.log"
    own_cpus = os.sched_getaffinity(0)
    if (os.cpu_count() or 1) > LOAD_CPU:
        os.sched_setaffinity(0, {LOAD_CPU})  # this thread and the threads it starts
    try:
        with start_answer(log) as server:
            # Warm-up, then the baseline.
            assert calls_ok(server.port, 300, source="127.0.0.3") == 300, server.log_tail()
            for _ in range(5):
                assert options_ok(server.port, source="127.0.0.3") is not None
            time.sleep(1.0)
            baseline = max(server.rss_kib() for _ in range(3))

            prober = Prober(server.port)
            prober.start()
            time.sleep(PRE_SECONDS)
            flooder = Flooder(
                subprocess.Popen(
                    [
                        *pin(LOAD_CPU),
                        sys.executable,
                        "-m",
                        "tests.load.flooder",
                        "--target",
                        f"127.0.0.1:{server.port}",
                        "--bind",
                        "127.0.0.2",
                        "--rate",
                        str(FLOOD_RATE),
                        "--seconds",
                        str(FLOOD_SECONDS),
                        "--linger",
                        str(RSS_AFTER + 30),
                        "--stop-on-eof",
                    ],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    cwd=REPO,
                )
            )
            reader = threading.Thread(target=flooder.read, daemon=True)
            reader.start()
            try:
                start = _number(flooder.wait_for("start", 20), "t")
                rss_samples: list[tuple[float, int]] = []
                end_event: dict[str, object] | None = None
                deadline = time.monotonic() + FLOOD_SECONDS * 3 + RSS_AFTER + 30
                while time.monotonic() < deadline:
                    rss_samples.append((time.monotonic(), server.rss_kib()))
                    if end_event is None and "end" in flooder.events:
                        end_event = flooder.events["end"]
                    if end_event is not None:
                        end = _number(end_event, "t")
                        if prober.is_alive() and time.monotonic() >= end + POST_PROBE_SECONDS:
                            prober.stopping.set()
                        if time.monotonic() >= end + RSS_AFTER:
                            break
                    time.sleep(0.5)
                assert end_event is not None, "the flooder never finished sending"
                rss_after = server.rss_kib()
            finally:
                prober.stopping.set()
                prober.join(timeout=15)
                assert flooder.proc.stdin is not None
                flooder.proc.stdin.close()
                try:
                    flooder.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    flooder.proc.kill()
                    flooder.proc.wait()
                reader.join(timeout=5)
            stats = flooder.events.get("stats", {})
            alive = server.alive()
            final_check = options_ok(server.port, source="127.0.0.3") if alive else None
            status = server.stop()
        problems = server.problems()
    finally:
        os.sched_setaffinity(0, own_cpus)

    end = _number(end_event, "t")
    results = prober.uac.results
    pre = [r for r in results if r.sent < start]
    during = [r for r in results if start <= r.sent < end]
    after = [r for r in results if r.sent >= end]
    late = [r for r in after if r.sent >= end + RECOVERY]

    def kinds(rs: list[ProbeResult], kind: str) -> list[ProbeResult]:
        return [r for r in rs if r.kind == kind]

    first_opt = next((r for r in kinds(after, "options") if r.ok), None)
    first_call = next((r for r in kinds(after, "call") if r.ok), None)
    recovery: float | None = None
    if first_opt is not None and first_call is not None:
        done = [first_opt.done_at, first_call.done_at]
        recovery = max(t for t in done if t is not None) - end
    # The moment from which every probe succeeded (None: the last one failed).
    failed_after = [r.sent for r in after if not r.ok]
    steady_from = (max(failed_after) - end) if failed_after else 0.0
    peak = max((rss for _, rss in rss_samples), default=0)
    statuses = stats.get("statuses", {})
    sent_bytes = _number(stats, "sent_bytes") if stats else 0.0
    received_bytes = _number(stats, "received_bytes") if stats else 0.0
    shown_recovery = "never" if recovery is None else f"{recovery:.2f}"
    achieved = _number(end_event, "achieved_rate")
    failed_by_status: dict[str, int] = {}
    for r in during + after:
        if not r.ok:
            key = f"{r.kind} {r.status or 'no final'}" + ("" if r.answered is None else " (BYE)")
            failed_by_status[key] = failed_by_status.get(key, 0) + 1
    report = "\n".join(
        [
            f"flood: {end_event.get('sent')} INVITEs in {end - start:.1f} s "
            f"({achieved:.0f}/s achieved, {end_event.get('send_errors')} send errors)",
            f"  flooder got back: {stats.get('received_datagrams')} datagrams, "
            f"statuses {statuses}, {stats.get('received_requests')} requests (BYE...)",
            f"  amplification: {received_bytes / 1e6:.1f} MB back for {sent_bytes / 1e6:.1f} MB "
            f"sent (x{received_bytes / max(sent_bytes, 1):.2f})",
            f"probe before: options {_ratio(kinds(pre, 'options')):.0%} of "
            f"{len(kinds(pre, 'options'))}, calls {_ratio(kinds(pre, 'call')):.0%} of "
            f"{len(kinds(pre, 'call'))}",
            f"probe during: options {_ratio(kinds(during, 'options')):.0%} of "
            f"{len(kinds(during, 'options'))}, calls answered "
            f"{sum(r.answered is not None for r in kinds(during, 'call'))}, completed "
            f"{sum(r.ok for r in kinds(during, 'call'))} of {len(kinds(during, 'call'))}",
            f"probe after:  options {_ratio(kinds(after, 'options')):.0%} of "
            f"{len(kinds(after, 'options'))}, calls {_ratio(kinds(after, 'call')):.0%} of "
            f"{len(kinds(after, 'call'))}; from +{RECOVERY:.0f} s: {_ratio(late):.0%} of "
            f"{len(late)}",
            f"failed probes (during and after) by final status: {failed_by_status}",
            f"recovery: first OPTIONS+call both ok {shown_recovery} s after the flood; "
            f"every probe ok from +{steady_from:.2f} s",
            f"RSS KiB: baseline {baseline}, peak {peak}, {RSS_AFTER:.0f} s after {rss_after} "
            f"(x{rss_after / max(baseline, 1):.2f})",
            f"server: alive {alive}, OPTIONS at the end {final_check}, exit {status}, "
            f"{len(problems)} log problem lines",
        ]
    )
    print("\n" + report)
    assert alive, f"{report}\nserver died:\n{server.log_tail()}"
    assert achieved >= FLOOD_RATE / 2, f"the flooder could not flood:\n{report}"
    assert _ratio(pre) == 1.0, f"probes failed before the flood (harness broken?):\n{report}"
    assert _ratio(kinds(during, "options")) >= 0.9, report
    assert _ratio(kinds(during, "call")) >= 0.9, report
    assert recovery is not None and recovery <= RECOVERY, report
    assert len(late) >= 40 and _ratio(late) == 1.0, report
    assert rss_after <= 2 * baseline, report
    assert final_check is not None, report
    assert problems == [], report + "\n" + "\n".join(problems[:40])
    assert status == 0, f"{report}\nexit status {status}:\n{server.log_tail()}"
