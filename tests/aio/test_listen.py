"""Listen addresses: TRANSPORT:HOST:PORT, and what a wildcard bind advertises."""

from __future__ import annotations

import ipaddress

import pytest

from sipwire.aio.listen import ListenSpec, advertised_host, parse_listen


def test_parse_listen_forms() -> None:
    assert parse_listen("udp:127.0.0.1:5060") == ListenSpec("udp", "127.0.0.1", 5060)
    assert parse_listen("TLS:[::1]:5061") == ListenSpec("tls", "::1", 5061)
    assert str(ListenSpec("tcp", "::1", 0)) == "tcp:[::1]:0"


@pytest.mark.parametrize(
    "text",
    ["udp", "sctp:127.0.0.1:5060", "udp:127.0.0.1", "udp:[::1:5060", "udp::5060", "udp:h:70000"],
)
def test_parse_listen_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_listen(text)


def test_wildcard_listener_advertises_a_real_address() -> None:
    assert advertised_host("127.0.0.1") == "127.0.0.1"
    chosen = ipaddress.ip_address(advertised_host("0.0.0.0"))
    assert chosen.version == 4 and not chosen.is_unspecified
