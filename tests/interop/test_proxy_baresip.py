"""Two baresip softphones register with digest to ``sipwire serve`` and call each other
through its proxy: answer, hold, BYE, and a MESSAGE.

baresip's AOR is ``sip:USER@127.0.0.1:PORT`` (the server's address: the domain
127.0.0.1, served by default), so the users are added in domain 127.0.0.1. The
server offers MD5 alone (``--algorithm MD5``): baresip 1.0.0 answers no other
digest algorithm. A call and a MESSAGE from a user of the domain are challenged
(407) and baresip answers with its ``auth_pass``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.interop.baresip import BARESIP, Baresip
from tests.server.helpers import SIPWIRE, serve_process

pytestmark = [
    pytest.mark.skipif(BARESIP is None, reason="baresip not installed (Debian: baresip-core)"),
    pytest.mark.timeout(90),
]

PASSWORDS = {"alice": "al1ce-pw", "bob": "b0b-pw"}


def add_user(data: Path, user: str) -> None:
    command = [*SIPWIRE, "user", "add", user, "--password", "-", "--domain", "127.0.0.1"]
    added = subprocess.run(
        [*command, "--data", str(data)],
        input=PASSWORDS[user] + "\n",
        capture_output=True,
        text=True,
        timeout=40,
        check=False,
    )
    assert added.returncode == 0, added.stderr


def test_two_baresips_call_and_message_through_the_proxy(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for user in PASSWORDS:
        add_user(data, user)
    with serve_process(tmp_path, "--data", str(data), "--algorithm", "MD5", "-v") as server:
        registrar = f"127.0.0.1:{server.port}"
        bob_aor = f"sip:bob@{registrar}"
        with (
            Baresip(
                tmp_path / "alice",
                user="alice",
                registrar=registrar,
                password=PASSWORDS["alice"],
                contacts=[bob_aor],
            ) as alice,
            Baresip(
                tmp_path / "bob",
                user="bob",
                registrar=registrar,
                password=PASSWORDS["bob"],
                auto_answer=True,
            ) as bob,
        ):
            assert alice.wait_registered().param.startswith("200")
            assert bob.wait_registered().param.startswith("200")

            alice.dial(bob_aor)
            alice.wait_event("CALL_ESTABLISHED", timeout=15)
            bob.wait_event("CALL_ESTABLISHED", timeout=15)
            assert "SIP/2.0 407 Proxy Authentication Required" in alice.output()
            assert f"Record-Route: <sip:127.0.0.1:{server.port};lr>" in bob.output()

            alice.command("hold")
            bob.wait_output(r"a=sendonly", timeout=10)

            bob.hangup()  # the BYE goes bob -> proxy -> alice
            alice.wait_event("CALL_CLOSED", timeout=10)
            bob.wait_event("CALL_CLOSED", timeout=10)

            alice.message(bob_aor, "hello through sipwire")
            received = bob.wait_message("hello through sipwire", timeout=10)
            assert "alice" in received.peer
    log = server.err()
    assert "Traceback" not in log
