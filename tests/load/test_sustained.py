"""Sustained load: 16,000 sipp calls at 400 calls/s against ``sipwire answer`` over UDP.

16,000 calls is more than the old 10,000-session cap: sessions must be freed
as calls end, not pile up. The server runs on CPU 0, sipp on CPU 1. Every
call must succeed, the server must still answer OPTIONS afterwards, its log
must show no traceback or ERROR record, and SIGTERM must end it with status 0.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.interop.sipp import SIPP, run_sipp
from tests.load.server import LOAD_CPU, start_answer
from tests.load.uac import options_ok

RATE = 400
SECONDS = 40
CALLS = RATE * SECONDS


@pytest.mark.timeout(180)
def test_sustained_400_cps_for_40_s(tmp_path: Path) -> None:
    if SIPP is None:
        pytest.skip("sipp not installed (Debian: sip-tester)")
    log = tmp_path / "answer.log"
    with start_answer(log, transports=("udp",)) as server:
        rss_before = server.rss_kib()
        started = time.monotonic()
        result = run_sipp(
            f"127.0.0.1:{server.port}",
            tmp_path,
            calls=CALLS,
            rate=RATE,
            timeout=120.0,
            cpu=LOAD_CPU,
        )
        elapsed = time.monotonic() - started
        rss_after = server.rss_kib()
        alive = server.alive()
        latency = options_ok(server.port, source="127.0.0.3", timeout=2.0) if alive else None
        status = server.stop()
    problems = server.problems()
    stats = result.stats
    summary = (
        f"sustained: {result.successful} ok / {result.failed} failed of {CALLS} "
        f"in {elapsed:.1f} s (sipp rc {result.returncode}); "
        f"retransmissions {stats.get('Retransmissions(C)')}, "
        f"unexpected messages {stats.get('UnexpectedMessage(C)')}, "
        f"RSS {rss_before} -> {rss_after} KiB; OPTIONS after: {latency}; "
        f"exit {status}; {len(problems)} log problems"
    )
    print("\n" + summary)
    detail = f"{summary}\nsipp stderr (end):\n{result.stderr[-800:]}"
    assert alive, f"server died:\n{server.log_tail()}"
    assert result.failed == 0, detail
    assert result.successful == CALLS, detail
    assert latency is not None, f"no 200 to OPTIONS after the run:\n{server.log_tail()}"
    assert problems == [], "\n".join(problems[:40])
    assert status == 0, f"exit status {status} after SIGTERM:\n{server.log_tail()}"
