"""tshark decodes a capture of sipp calls to ``sipwire answer`` without malformed packets."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.interop.sipp import SIPP, answer_server, free_port, run_sipp

TSHARK = shutil.which("tshark")
pytestmark = pytest.mark.skipif(
    SIPP is None or TSHARK is None, reason="needs sipp and tshark (Debian: sip-tester, tshark)"
)


def test_capture_has_no_malformed_sip(tmp_path: Path) -> None:
    assert TSHARK is not None
    port = free_port()
    capture = tmp_path / "calls.pcapng"
    dumper = subprocess.Popen(
        [TSHARK, "-i", "lo", "-f", f"udp port {port}", "-w", str(capture), "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        time.sleep(1.5)  # tshark needs a moment before it captures
        if dumper.poll() is not None:
            err = dumper.stderr.read().decode(errors="replace") if dumper.stderr else ""
            pytest.skip(f"tshark cannot capture on lo here: {err.strip()[:200]}")
        with answer_server(f"udp:127.0.0.1:{port}"):
            result = run_sipp(f"127.0.0.1:{port}", tmp_path, calls=20, rate=20)
        assert result.successful == 20
        time.sleep(1.0)
    finally:
        dumper.send_signal(signal.SIGINT)
        dumper.wait(timeout=20)
        if dumper.stderr is not None:
            dumper.stderr.close()
    decoded = subprocess.run(
        [
            TSHARK,
            "-r",
            str(capture),
            "-d",
            f"udp.port=={port},sip",
            "-T",
            "fields",
            "-e",
            "sip.Status-Code",
            "-e",
            "sip.Method",
            "-e",
            "_ws.malformed",
            "-e",
            "_ws.expert",
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    rows = [line.split("\t") for line in decoded.stdout.decode().splitlines() if line.strip()]
    statuses = [r[0] for r in rows if r and r[0]]
    methods = [r[1] for r in rows if len(r) > 1 and r[1]]
    # Each call: INVITE, ACK, BYE from sipp; 180, 200, 200 from sipwire.
    assert statuses.count("200") >= 40 and statuses.count("180") >= 20
    assert methods.count("INVITE") >= 20
    malformed = [r for r in rows if len(r) > 2 and r[2]]
    assert malformed == []
