"""Other clients against the real ``sipwire serve``: baresip and ``sipwire register``.

baresip (a softphone, Debian ``baresip-core``) registers with digest
authentication, and the server has the binding in its store. The server offers
MD5 alone (``--algorithm MD5``): baresip 1.0.0 (libre) fails the registration
("Function not implemented") at any WWW-Authenticate whose algorithm is not
MD5, where RFC 8760 §2.4 has a client pick the first challenge it supports.

``sipwire register`` (the client command, in a subprocess) succeeds with the
right password and, with a wrong one, gives up after the server's second 401
with exit status 1 and one line naming it.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest

from sipwire.store import Binding, open_store
from tests.interop.baresip import BARESIP, Baresip
from tests.server.helpers import SIPWIRE, serve_process

pytestmark = pytest.mark.timeout(60)

needs_baresip = pytest.mark.skipif(
    BARESIP is None, reason="baresip not installed (Debian: baresip-core)"
)


def sipwire(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SIPWIRE, *args], input=stdin, capture_output=True, text=True, timeout=40, check=False
    )


async def stored(data: Path, aor: str) -> list[Binding]:
    store = open_store(f"sqlite:{data / 'sipwire.db'}")
    await store.open()
    try:
        return await store.bindings(aor, time.time())
    finally:
        await store.close()


@needs_baresip
def test_baresip_registers_with_digest(tmp_path: Path) -> None:
    """baresip's AOR is sip:alice@127.0.0.1:PORT: the domain 127.0.0.1 (an address the
    server listens on, so served by default), and the realm with it."""
    data = tmp_path / "data"
    added = sipwire(
        "user", "add", "alice", "--password", "-", "--domain", "127.0.0.1", "--data", str(data),
        stdin="b4resip-secret\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    with serve_process(tmp_path, "--data", str(data), "--algorithm", "MD5", "-v") as server:
        with Baresip(
            tmp_path / "alice",
            user="alice",
            registrar=f"127.0.0.1:{server.port}",
            password="b4resip-secret",
            regint=600,
        ) as alice:
            event = alice.wait_registered()
            assert event.param.startswith("200"), event
            [binding] = asyncio.run(stored(data, "sip:alice@127.0.0.1"))
            assert f"@127.0.0.1:{alice.port}" in binding.contact, binding
            assert binding.source == f"127.0.0.1:{alice.port}"
            assert binding.transport == "udp"
            trace = alice.output()
            assert "SIP/2.0 401 Unauthorized" in trace
            assert 'qop="auth"' in trace and 'username="alice"' in trace
            assert "algorithm=MD5" in trace
        # baresip unregisters when it stops (before the server does).
        assert asyncio.run(stored(data, "sip:alice@127.0.0.1")) == []
    log = server.err()
    assert "aor=sip:alice@127.0.0.1 " in log and "outcome=registered status=200" in log
    assert "outcome=unregistered status=200" in log
    assert "Traceback" not in log


def test_sipwire_register_right_and_wrong_password(tmp_path: Path) -> None:
    data = tmp_path / "data"
    added = sipwire("user", "add", "bob", "--password", "right-pw", "--data", str(data))
    assert added.returncode == 0, added.stderr
    with serve_process(tmp_path, "--data", str(data)) as server:
        target = f"sip:127.0.0.1:{server.port}"
        common = ("--proxy", target, "--timeout", "10", "--expires", "600")
        ok = sipwire("register", "sip:bob@localhost", "--password", "right-pw", *common)
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout.startswith("registered sip:bob@localhost at "), ok.stdout
        assert " for 600 s" in ok.stdout
        [binding] = asyncio.run(stored(data, "sip:bob@localhost"))

        wrong = sipwire("register", "sip:bob@localhost", "--password", "wrong-pw", *common)
        assert wrong.returncode == 1, (wrong.stdout, wrong.stderr)
        assert "Traceback" not in wrong.stderr
        [line] = wrong.stderr.strip().splitlines()
        assert line.startswith("Error: ") and ("401" in line or "403" in line), line
        # The wrong password changed nothing.
        assert asyncio.run(stored(data, "sip:bob@localhost")) == [binding]
