"""``sipwire register`` with digest authentication against a sipp registrar scenario.

The scenario (``scenarios/uas_register_auth.xml``) challenges with 401 and
checks the retried REGISTER's Authorization with sipp's ``verifyauth``.
The auth username (``1001``) differs from the AOR's user (``alice``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.interop.sipp import SIPP, _last_stats, free_port

pytestmark = [
    pytest.mark.skipif(SIPP is None, reason="sipp not installed (Debian: sip-tester)"),
    pytest.mark.timeout(60),
]

SCENARIO = Path(__file__).parent / "scenarios" / "uas_register_auth.xml"


def _register(tmp_path: Path, password: str) -> tuple[subprocess.CompletedProcess[bytes], int]:
    assert SIPP is not None
    port = free_port()
    sipp = subprocess.Popen(
        [
            SIPP, "-sf", str(SCENARIO), "-i", "127.0.0.1", "-p", str(port), "-m", "1",
            "-key", "auth_user", "1001", "-key", "auth_password", "secret",
            "-key", "realm", "sipwire.test", "-nostdin", "-timeout", "20s",
            "-trace_stat", "-stf", str(tmp_path / "stats.csv"), "-fd", "1",
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=dict(os.environ, TERM="dumb"),
    )  # fmt: skip
    try:
        done = subprocess.run(
            [
                sys.executable, "-m", "sipwire.cli.main", "register",
                f"sip:alice@127.0.0.1:{port}", "--registrar", f"sip:127.0.0.1:{port}",
                "--user", "1001", "--password", password, "--expires", "600",
                "--timeout", "5",
            ],
            capture_output=True,
            timeout=40,
            check=False,
        )  # fmt: skip
    finally:
        try:
            sipp.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            sipp.kill()
            sipp.communicate()
    return done, sipp.returncode


def test_register_with_digest_auth_verified_by_sipp(tmp_path: Path) -> None:
    done, sipp_code = _register(tmp_path, "secret")
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()
    assert out.startswith("registered sip:alice@127.0.0.1:"), out
    assert " for 600 s " in out
    stats = _last_stats(tmp_path / "stats.csv")
    assert stats.get("SuccessfulCall(C)") == "1", stats
    assert sipp_code == 0


def test_register_with_wrong_password_fails_with_403(tmp_path: Path) -> None:
    done, sipp_code = _register(tmp_path, "wrong")
    assert done.returncode == 1
    assert done.stderr.decode().strip().endswith("403 Forbidden")
    stats = _last_stats(tmp_path / "stats.csv")
    assert stats.get("FailedCall(C)") == "1", stats
    assert sipp_code != 0
