"""The ports the baresip harness gives baresip: its SIP port, the next one (where
baresip listens for TLS) and ctrl_tcp's never meet, and a ctrl_tcp that could
not listen is caught at start (baresip logs it and carries on: the harness
would talk to whatever holds the port, "ctrl_tcp connection closed")."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop.baresip import BARESIP, Baresip
from tests.interop.peerproc import PeerProcessError

pytestmark = [
    pytest.mark.skipif(BARESIP is None, reason="baresip not installed (Debian: baresip-core)"),
    pytest.mark.timeout(60),
]


def test_ctrl_port_is_clear_of_the_sip_and_tls_ports(tmp_path: Path) -> None:
    for index in range(50):
        peer = Baresip(tmp_path / f"p{index}", user="p")
        assert peer.ctrl_port not in (peer.port, peer.port + 1)


def test_a_ctrl_port_given_on_the_tls_port_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ctrl_port"):
        Baresip(tmp_path / "p", user="p", port=21000, ctrl_port=21001)


def test_ctrl_tcp_that_could_not_listen_fails_the_start(tmp_path: Path) -> None:
    """ctrl_tcp on baresip's own TLS port, the ports fixed: no retry, a clear error."""
    peer = Baresip(tmp_path / "p", user="p")
    peer.ctrl_port = peer.port + 1
    peer._pick_ports = False
    with pytest.raises(PeerProcessError, match="ctrl_tcp does not listen") as failed:
        peer.start()
    assert "Address already in use" in str(failed.value)


def test_ctrl_tcp_that_could_not_listen_is_started_again_on_new_ports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same collision with ports the harness picked: it picks new ones and works."""
    failures: list[str] = []
    check = Baresip._check_ctrl_listening

    def checked(self: Baresip) -> None:
        try:
            check(self)
        except PeerProcessError as exc:
            failures.append(str(exc))
            raise

    monkeypatch.setattr(Baresip, "_check_ctrl_listening", checked)
    peer = Baresip(tmp_path / "p", user="p")
    peer.ctrl_port = peer.port + 1
    with peer:
        assert peer.ctrl_port not in (peer.port, peer.port + 1)
        peer.command("uanew", "<sip:q@127.0.0.1>;regint=0")  # ctrl_tcp answers
    [failure] = failures
    assert "Address already in use" in failure
