"""sipwire registering with kamailio (Debian package, auth module) and calling through it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from sipwire import CallState, RequestFailed, UserAgent
from tests.interop.baresip import BARESIP, Baresip
from tests.interop.kamailio import KAMAILIO, Kamailio, SipUser

pytestmark = [
    pytest.mark.skipif(KAMAILIO is None, reason="kamailio not installed"),
    pytest.mark.timeout(90),
]

REALM = "sipwire.test"


def _register_cli(kam: Kamailio, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "sipwire.cli.main", "register", *args, "--timeout", "5"],
        capture_output=True,
        timeout=40,
        check=False,
    )


def test_sipwire_register_with_auth_user_other_than_aor(tmp_path: Path) -> None:
    users = [SipUser("alice", "a-secret", auth_user="1001")]
    with Kamailio(tmp_path / "kam", users, realm=REALM) as kam:
        done = _register_cli(
            kam, kam.aor("alice"), "--user", "1001", "--password", "a-secret", "--expires", "300"
        )
        assert done.returncode == 0, done.stderr.decode()
        out = done.stdout.decode()
        assert out.startswith(f"registered {kam.aor('alice')} at sip:{kam.address} for 300 s")
        bindings = kam.wait_binding("alice")
        assert len(bindings) == 1 and bindings[0].startswith("sip:alice@127.0.0.1:")
        assert bindings[0] in out  # the CLI prints the bindings kamailio returned
        wrong = _register_cli(kam, kam.aor("alice"), "--user", "1001", "--password", "nope")
        assert wrong.returncode == 1
        assert wrong.stderr.decode().strip().endswith("403 Forbidden")


@pytest.mark.skipif(BARESIP is None, reason="baresip not installed (Debian: baresip-core)")
@pytest.mark.asyncio
async def test_calls_and_messages_through_kamailio(tmp_path: Path) -> None:
    users = [SipUser("alice", "a-secret"), SipUser("bob", "b-secret")]
    with Kamailio(tmp_path / "kam", users, realm=REALM) as kam:
        async with UserAgent(
            kam.aor("alice"), password="a-secret", listen=["udp:127.0.0.1:0"]
        ) as ua:
            registration = await ua.register(kam.uri, expires=120)
            assert registration.granted == 120
            bindings = await asyncio.to_thread(kam.wait_binding, "alice")
            assert bindings[0].startswith("sip:alice@127.0.0.1:")
            with Baresip(
                tmp_path / "bob",
                user="bob",
                registrar=kam.address,
                password="b-secret",
                auto_answer=True,
                contacts=[kam.aor("alice")],
            ) as bob:
                await asyncio.to_thread(bob.wait_registered)
                # sipwire → kamailio → baresip: INVITE record-routed, BYE along the route set
                call = await ua.call(kam.aor("bob"), timeout=10)
                assert call.state is CallState.CONFIRMED
                dialog = call.session.dialog
                assert dialog is not None and dialog.route_set
                assert dialog.route_set[0].uri.port == kam.port  # type: ignore[union-attr]
                await asyncio.to_thread(bob.wait_event, "CALL_ESTABLISHED")
                await call.hangup()
                assert call.end_status == 200
                await asyncio.to_thread(bob.wait_event, "CALL_CLOSED")
                # baresip → kamailio → sipwire
                answered: asyncio.Queue[object] = asyncio.Queue()

                @ua.on_call
                async def pick_up(incoming: object) -> None:
                    from sipwire import Call

                    assert isinstance(incoming, Call)
                    await incoming.answer()
                    await answered.put(incoming)

                bob.dial(kam.aor("alice"))
                await asyncio.to_thread(bob.wait_event, "CALL_ESTABLISHED")
                theirs = await asyncio.wait_for(answered.get(), 10)
                bob.hangup()
                await theirs.wait_ended(10)  # type: ignore[attr-defined]
                # MESSAGE both ways through the proxy
                inbox = ua.messages()
                await ua.message(kam.aor("bob"), "via kamailio, from sipwire")
                await asyncio.to_thread(bob.wait_message, "via kamailio, from sipwire")
                bob.message(kam.aor("alice"), "via kamailio, from baresip")
                request = await asyncio.wait_for(inbox.__anext__(), 10)
                assert request.body == b"via kamailio, from baresip"
            await ua.unregister(registration)
            assert await asyncio.to_thread(kam.bindings, "alice") == []


@pytest.mark.asyncio
async def test_register_refused_raises_request_failed(tmp_path: Path) -> None:
    with Kamailio(tmp_path / "kam", {"alice": "right"}, realm=REALM) as kam:
        async with UserAgent(kam.aor("alice"), password="wrong") as ua:
            with pytest.raises(RequestFailed) as failure:
                await ua.register(kam.uri)
            assert failure.value.status == 403


@pytest.mark.skipif(BARESIP is None, reason="baresip not installed (Debian: baresip-core)")
def test_sipwire_call_answers_the_proxy_407(tmp_path: Path) -> None:
    """kamailio challenges the INVITE (407); `sipwire call` retries with credentials."""
    users = [SipUser("alice", "a-secret", auth_user="1001"), SipUser("bob", "b-secret")]
    with (
        Kamailio(tmp_path / "kam", users, realm=REALM, call_auth=True) as kam,
        Baresip(
            tmp_path / "bob",
            user="bob",
            registrar=kam.address,
            password="b-secret",
            auto_answer=True,
        ) as bob,
    ):
        bob.wait_registered()
        done = subprocess.run(
            [
                sys.executable, "-m", "sipwire.cli.main", "call", kam.aor("bob"),
                "--from", kam.aor("alice"), "--user", "1001", "--password", "a-secret",
                "--duration", "0.5", "--timeout", "10", "--trace",
            ],
            capture_output=True,
            timeout=60,
            check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()[-3000:]
        assert "answered in" in done.stdout.decode()
        trace = done.stderr.decode()
        assert "SIP/2.0 407" in trace and "Proxy-Authorization: Digest" in trace
        bob.wait_event("CALL_ESTABLISHED")
        bob.wait_event("CALL_CLOSED")
