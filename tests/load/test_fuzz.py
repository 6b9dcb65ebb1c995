"""``sipwire answer`` under mutated SIP over UDP and TCP (a bounded ``tests.load.fuzz`` run).

100,000 mutated datagrams and 2,000 TCP framings with a fixed seed
(``SIPWIRE_FUZZ_SEED`` overrides it), in a private network namespace. The
server must answer every health check, log no traceback or ERROR record and
exit 0 on SIGTERM. On failure the inputs are under the printed
/tmp/sipwire-fuzz-SEED-TIME directory (``problem-N.jsonl``, ``last-batch.jsonl``);
``python -m tests.load.fuzz --replay FILE`` sends them again. ``make fuzz``
runs the long version (10^6 datagrams, 10^4 framings, a random seed).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.load.server import REPO

DATAGRAMS = 100_000
FRAMINGS = 2_000
SEED = int(os.environ.get("SIPWIRE_FUZZ_SEED", "20261130"))
NO_NETNS = 3


@pytest.mark.timeout(330)
def test_fuzz_udp_and_tcp(tmp_path: Path) -> None:
    out = Path(f"/tmp/sipwire-fuzz-{SEED}-{int(time.time())}")
    result_file = tmp_path / "result.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.load.fuzz",
            "--datagrams",
            str(DATAGRAMS),
            "--tcp",
            str(FRAMINGS),
            "--seed",
            str(SEED),
            "--out",
            str(out),
            "--json",
            str(result_file),
            "--max-seconds",
            "240",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    print(proc.stdout[-6000:])
    if proc.returncode == NO_NETNS:
        # The fuzzed Contacts, Routes and maddr values must not reach a real network.
        pytest.skip(f"no private network namespace for the fuzzer: {proc.stderr.strip()}")
    assert result_file.exists(), f"the fuzzer crashed ({proc.returncode}):\n{proc.stderr[-3000:]}"
    result = json.loads(result_file.read_text())
    report = f"{proc.stdout[-6000:]}\ninputs and log: {out}"
    assert result["alive"], report
    assert result["failure"] == "", report
    assert result["health_failures"] == 0, report
    assert result["tcp_health_failures"] == 0, report
    assert result["datagrams"] == DATAGRAMS, f"ran out of time:\n{report}"
    assert result["framings"] == FRAMINGS, f"ran out of time:\n{report}"
    assert result["problem_lines"] == 0, report
    assert result["exit_status"] == 0, report
    assert proc.returncode == 0, report
    shutil.rmtree(out, ignore_errors=True)
