"""sipp calls sipp through the proxy of ``sipwire serve``: 500 calls, 0 failed, UDP and TCP.

The callee registers as ``bob`` with digest (``scenarios/uac_register_contact.xml``,
from the port it then listens on: its Contact is its own address), then runs
``scenarios/uas_answer_record_route.xml`` (sipp's uas, copying Record-Route);
the caller runs ``scenarios/uac_call_record_route.xml`` at 100 calls/s:
INVITE to ``sip:bob@localhost`` through the real ``sipwire serve``
(offering MD5 only: sipp knows no other algorithm), 180, 200 with the
proxy's Record-Route, then ACK and BYE along the route set. The caller's
From is another operator's domain, whose callers reach our users without
authentication (no challenge for sipp to answer).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.interop.peerproc import pick_port
from tests.interop.sipp import SIPP
from tests.interop.sipp_peer import SippServer, run_sipp_client
from tests.server.helpers import SIPWIRE, serve_process

pytestmark = [
    pytest.mark.skipif(SIPP is None, reason="sipp not installed (Debian: sip-tester)"),
    pytest.mark.timeout(180),
]

CALLS = 500
RATE = 100
PASSWORD = "pw-bob-x7"


def add_user(data: Path, user: str, password: str) -> None:
    done = subprocess.run(
        [*SIPWIRE, "user", "add", user, "--password", "-", "--data", str(data)],
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("transport", ["u1", "t1"], ids=["udp", "tcp"])
def test_sipp_calls_a_registered_sipp_through_the_proxy(tmp_path: Path, transport: str) -> None:
    data = tmp_path / "data"
    add_user(data, "bob", PASSWORD)
    port = pick_port()
    callee_port = pick_port(avoid=(port,))
    with serve_process(
        tmp_path,
        "--data",
        str(data),
        "--algorithm",
        "MD5",
        "--listen",
        f"tcp:127.0.0.1:{port}",
        port=port,
    ) as server:
        proxy = f"127.0.0.1:{server.port}"
        registered = run_sipp_client(
            "uac_register_contact.xml",
            proxy,
            tmp_path / "register",
            transport=transport,
            service="bob",
            auth_user="bob",
            auth_password=PASSWORD,
            keys={"domain": "localhost", "expires": "600"},
            extra=("-p", str(callee_port)),
            timeout=20,
        )
        assert (registered.returncode, registered.successful) == (0, 1), registered.stderr
        with SippServer(
            tmp_path / "callee",
            "uas_answer_record_route.xml",
            port=callee_port,
            transport=transport,
            calls=CALLS,
            timeout=90,
        ) as callee:
            caller = run_sipp_client(
                "uac_call_record_route.xml",
                proxy,
                tmp_path / "caller",
                calls=CALLS,
                transport=transport,
                service="bob",
                keys={"domain": "localhost", "caller_domain": "caller.example"},
                extra=("-r", str(RATE), "-d", "0"),
                timeout=60,
            )
            answered = callee.wait()
        assert caller.returncode == 0, caller.stderr
        assert (caller.successful, caller.failed) == (CALLS, 0), caller.stats
        assert (answered.successful, answered.failed) == (CALLS, 0), answered.stats
        assert server.stop() == 0
    stopped = server.err().strip().splitlines()[-1]
    assert stopped == f"stopped after answering 2 REGISTER requests and {CALLS} calls"
