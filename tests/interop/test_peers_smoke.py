"""The interop harnesses work: real peers talking to each other, without sipwire.

sipp (sip-tester), baresip (baresip-core) and kamailio are started on
127.0.0.1 with free ports; each test skips when a program it needs is missing.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.interop.baresip import BARESIP, Baresip, BaresipError, BaresipEvent
from tests.interop.kamailio import KAMAILIO, KAMCMD, Kamailio, SipUser
from tests.interop.sipp import SIPP
from tests.interop.sipp_peer import SippServer, run_sipp_client

needs_sipp = pytest.mark.skipif(SIPP is None, reason="sipp not installed (Debian: sip-tester)")
needs_baresip = pytest.mark.skipif(
    BARESIP is None, reason="baresip not installed (Debian: baresip-core)"
)
needs_kamailio = pytest.mark.skipif(
    KAMAILIO is None or KAMCMD is None, reason="kamailio not installed (Debian: kamailio)"
)

REALM = "sipwire.test"


# ---------------------------------------------------------------- sipp <-> sipp


@needs_sipp
@pytest.mark.timeout(60)
@pytest.mark.parametrize(("password", "ok"), [("secret", True), ("wrong", False)])
def test_sipp_register_auth_scenarios(password: str, ok: bool, tmp_path: Path) -> None:
    keys = {"auth_user": "alice", "auth_password": "secret", "realm": REALM}
    with SippServer(tmp_path / "uas", "uas_register_auth.xml", keys=keys, timeout=20) as server:
        client = run_sipp_client(
            "uac_register_auth.xml",
            server.address,
            tmp_path / "uac",
            service="alice",
            auth_user="alice",
            auth_password=password,
            timeout=20,
        )
        result = server.wait(timeout=25)
    if ok:
        assert result.returncode == 0, result.stderr
        assert (result.successful, result.failed) == (1, 0), result.stats
        assert client.returncode == 0, client.stderr
        assert client.successful == 1, client.stats
    else:
        assert result.returncode == 1, result.stderr
        assert (result.successful, result.failed) == (0, 1), result.stats
        assert client.returncode == 1, client.stderr
        assert client.failed == 1, client.stats


# ---------------------------------------------------------------- kamailio


@needs_sipp
@needs_kamailio
@pytest.mark.timeout(60)
def test_kamailio_challenges_and_checks_register(tmp_path: Path) -> None:
    users = [SipUser("alice", "secret", auth_user="1001"), SipUser("bob", "pw-bob")]
    with Kamailio(tmp_path / "kam", users, realm=REALM) as kam:
        good = run_sipp_client(
            "uac_register_auth.xml",
            kam.address,
            tmp_path / "good",
            service="alice",
            auth_user="1001",
            auth_password="secret",
            timeout=15,
        )
        assert good.returncode == 0, good.stderr
        bindings = kam.wait_binding("alice")
        assert len(bindings) == 1 and bindings[0].startswith("sip:alice@127.0.0.1:")

        wrong = run_sipp_client(
            "uac_register_auth.xml",
            kam.address,
            tmp_path / "wrong",
            service="bob",
            auth_user="bob",
            auth_password="not-it",
            timeout=15,
        )
        assert wrong.returncode == 1, wrong.stderr
        # alice's credentials do not register bob.
        stolen = run_sipp_client(
            "uac_register_auth.xml",
            kam.address,
            tmp_path / "stolen",
            service="bob",
            auth_user="1001",
            auth_password="secret",
            timeout=15,
        )
        assert stolen.returncode == 1, stolen.stderr
        assert kam.bindings("bob") == []
    log = kam.output()
    assert "REGISTER alice: ok" in log
    assert "REGISTER bob: bad credentials" in log


@needs_baresip
@needs_kamailio
@pytest.mark.timeout(60)
def test_baresip_registers_with_kamailio(tmp_path: Path) -> None:
    users = [SipUser("alice", "secret", auth_user="1001")]
    with (
        Kamailio(tmp_path / "kam", users, realm=REALM) as kam,
        Baresip(
            tmp_path / "alice",
            user="alice",
            registrar=kam.address,
            auth_user="1001",
            password="secret",
            regint=120,
        ) as alice,
    ):
        event = alice.wait_registered()
        assert event.accountaor == kam.aor("alice")
        assert event.param.startswith("200")
        bindings = kam.wait_binding("alice")
        assert len(bindings) == 1
        assert f"@127.0.0.1:{alice.port}" in bindings[0]
        # The challenge asked for qop=auth, and baresip answered with it.
        trace = alice.output()
        assert 'qop="auth"' in trace
        assert 'username="1001"' in trace


@needs_baresip
@needs_kamailio
@pytest.mark.timeout(60)
def test_baresip_with_wrong_password_is_refused(tmp_path: Path) -> None:
    with (
        Kamailio(tmp_path / "kam", {"carol": "right"}, realm=REALM) as kam,
        Baresip(tmp_path / "carol", user="carol", registrar=kam.address, password="wrong") as carol,
    ):
        with pytest.raises(BaresipError, match="403"):
            carol.wait_registered()
        assert kam.bindings("carol") == []


# ---------------------------------------------------------------- baresip


@needs_sipp
@needs_baresip
@pytest.mark.timeout(60)
def test_baresip_calls_sipp_uas(tmp_path: Path) -> None:
    with (
        SippServer(tmp_path / "uas", "uas", timeout=30) as uas,
        Baresip(tmp_path / "bob", user="bob") as bob,
    ):
        bob.dial(uas.uri())
        established = bob.wait_event("CALL_ESTABLISHED")
        assert established.peeruri == uas.uri()
        assert established.direction == "outgoing"
        bob.hangup()
        bob.wait_event("CALL_CLOSED")
        result = uas.wait(timeout=20)
    assert result.returncode == 0, result.stderr
    assert (result.successful, result.failed) == (1, 0), result.stats


@needs_baresip
@pytest.mark.timeout(60)
def test_baresip_call_answered_by_hand(tmp_path: Path) -> None:
    with (
        Baresip(tmp_path / "alice", user="alice") as alice,
        Baresip(tmp_path / "bob", user="bob", auto_answer=False) as bob,
    ):
        alice.dial(bob.sip_uri)
        incoming = bob.wait_event("CALL_INCOMING")
        assert incoming.peeruri == alice.aor
        bob.answer()
        bob.wait_event("CALL_ESTABLISHED")
        alice.wait_event("CALL_ESTABLISHED")
        bob.hangup()
        alice.wait_event("CALL_CLOSED")
        bob.wait_event("CALL_CLOSED")


@needs_baresip
@pytest.mark.timeout(60)
def test_baresip_message_peer_to_peer(tmp_path: Path) -> None:
    with (
        Baresip(tmp_path / "bob", user="bob") as bob,
        Baresip(tmp_path / "carol", user="carol", contacts=[bob.sip_uri]) as carol,
    ):
        carol.message(bob.sip_uri, "hello from carol")
        received = bob.wait_message("hello from carol")
        assert received.peer == carol.aor
        # A target not given up front works too (the contact module is reloaded).
        bob.message(carol.sip_uri, "hi carol")
        assert carol.wait_message("hi carol").peer == bob.aor
        carol.message(bob.sip_uri, "second")
        bob.wait_message("second")
        assert [m.text for m in bob.received_messages()] == ["hello from carol", "second"]


@needs_baresip
@needs_kamailio
@pytest.mark.timeout(60)
def test_baresip_calls_and_messages_baresip_via_kamailio(tmp_path: Path) -> None:
    users = [SipUser("alice", "a-secret"), SipUser("bob", "b-secret")]
    with Kamailio(tmp_path / "kam", users, realm=REALM) as kam:
        with (
            Baresip(
                tmp_path / "alice", user="alice", registrar=kam.address, password="a-secret"
            ) as alice,
            Baresip(
                tmp_path / "bob",
                user="bob",
                registrar=kam.address,
                password="b-secret",
                transport="tcp",
                auto_answer=True,
            ) as bob,
        ):
            alice.wait_registered()
            bob.wait_registered()
            assert "transport=tcp" in kam.wait_binding("bob")[0]

            alice.message(kam.aor("bob"), "through the proxy")
            assert bob.wait_message("through the proxy").peer == kam.aor("alice")

            alice.dial(kam.aor("bob"))

            def established_with_alice(event: BaresipEvent) -> bool:
                return event.type == "CALL_ESTABLISHED" and event.peeruri == kam.aor("alice")

            alice.wait_event("CALL_ESTABLISHED")
            bob.wait_event(established_with_alice)
            alice.hangup()
            alice.wait_event("CALL_CLOSED")
            bob.wait_event("CALL_CLOSED")
        assert "INVITE for bob relayed" in kam.output()


@needs_baresip
@needs_kamailio
@pytest.mark.timeout(60)
def test_kamailio_call_auth_with_auth_user_other_than_aor(tmp_path: Path) -> None:
    users = [SipUser("alice", "a-secret", auth_user="1001"), SipUser("bob", "b-secret")]
    with (
        Kamailio(tmp_path / "kam", users, realm=REALM, call_auth=True) as kam,
        Baresip(
            tmp_path / "alice",
            user="alice",
            registrar=kam.address,
            auth_user="1001",
            password="a-secret",
        ) as alice,
        Baresip(
            tmp_path / "bob",
            user="bob",
            registrar=kam.address,
            password="b-secret",
            auto_answer=True,
        ) as bob,
    ):
        alice.wait_registered()
        bob.wait_registered()
        alice.dial(kam.aor("bob"))
        alice.wait_event("CALL_ESTABLISHED")
        bob.wait_event("CALL_ESTABLISHED")
        alice.hangup()
        bob.wait_event("CALL_CLOSED")
        # The INVITE was challenged (407) and retried with alice's credentials.
        trace = alice.output()
        assert "SIP/2.0 407 Proxy Authentication Required" in trace
        assert re.search(r'^Proxy-Authorization: Digest username="1001"', trace, re.M)
