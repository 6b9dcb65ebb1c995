"""``sipwire answer`` interrupted with a call up hangs it up before it exits (issue 11).

sipp calls ``sipwire answer`` (scenarios/uac_call_wait_bye.xml), ACKs the 200 and
waits for a BYE; the test sends SIGINT (then, in a second run, SIGTERM) to the
server as soon as the call is up. sipp succeeds only if the BYE reaches it, and
nothing but the server process can send that BYE. The exit status is 0, or 130
for SIGINT (the convention of shells, which the CLI may adopt): both are accepted.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.interop.sipp import SIPP, answer_server, free_port

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(SIPP is None, reason="sipp is not installed (Debian: sip-tester)"),
]

SCENARIO = Path(__file__).with_name("scenarios") / "uac_call_wait_bye.xml"


def _wait_for(path: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in {path}")


@pytest.mark.parametrize(("sig", "codes"), [(signal.SIGINT, (0, 130)), (signal.SIGTERM, (0,))])
def test_interrupted_answer_sends_bye_before_exiting(
    sig: signal.Signals, codes: tuple[int, ...], tmp_path: Path
) -> None:
    assert SIPP is not None
    port = free_port()
    messages = tmp_path / "messages.log"
    with answer_server(f"udp:127.0.0.1:{port}") as server:
        sipp = subprocess.Popen(
            [
                SIPP,
                "-sf",
                str(SCENARIO),
                f"127.0.0.1:{port}",
                "-i",
                "127.0.0.1",
                "-p",
                str(free_port()),
                "-m",
                "1",
                "-nostdin",
                "-timeout",
                "40s",
                "-timeout_error",
                "-trace_msg",
                "-message_file",
                str(messages),
            ],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=dict(os.environ, TERM="dumb"),
        )
        try:
            _wait_for(messages, "ACK sip:", 20)  # the call is up
            time.sleep(0.2)  # the ACK reaches the server
            server.send_signal(sig)
            status = server.wait(timeout=20)
            sipp_status = sipp.wait(timeout=40)
        finally:
            if sipp.poll() is None:
                sipp.kill()
                sipp.wait()
        assert sipp.stderr is not None
        errors = sipp.stderr.read().decode(errors="replace")
        sipp.stderr.close()
    log = messages.read_text(errors="replace")
    assert re.search(r"message received \[\d+\] bytes :\s+BYE sip:", log), log[-3000:]
    assert sipp_status == 0, errors[-2000:] + log[-3000:]
    assert status in codes
