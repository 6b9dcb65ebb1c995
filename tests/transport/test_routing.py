"""Response routing and transport choice: RFC 3261 §18.1.1, §18.2.1, §18.2.2; RFC 3581."""

from __future__ import annotations

import pytest

from sipwire.message import Request, Via, parse_message
from sipwire.transport.address import Source, Target
from sipwire.transport.routing import (
    choose_transport,
    fallback_target,
    response_target,
    stamp_via,
    strip_brackets,
)


def request(via: str, second_via: str | None = None, *, compact: bool = False) -> Request:
    vias = f"Via: {via}\r\n" if not compact else f"v: {via}\r\n"
    if second_via is not None:
        vias += f"Via: {second_via}\r\n"
    raw = (
        "OPTIONS sip:bob@example.com SIP/2.0\r\n"
        f"{vias}"
        "From: <sip:a@example.com>;tag=1\r\n"
        "To: <sip:b@example.com>\r\n"
        "Call-ID: c1\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    message = parse_message(raw)
    assert isinstance(message, Request)
    return message


UDP_SOURCE = Source("udp", "192.0.2.4", 5070, "192.0.2.1", 5060)


# -- stamp_via: §18.2.1 -----------------------------------------------------------


def test_stamp_via_same_address_leaves_header_untouched() -> None:
    req = request("SIP/2.0/UDP 192.0.2.4:5070;branch=z9hG4bK1")
    before = bytes(req)
    via = stamp_via(req, UDP_SOURCE)
    assert via.received is None
    assert bytes(req) == before


def test_stamp_via_adds_received_when_address_differs() -> None:
    req = request("SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK1")
    via = stamp_via(req, UDP_SOURCE)
    assert via.received == "192.0.2.4"
    assert req.via[0].received == "192.0.2.4"
    assert b"Via: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK1;received=192.0.2.4\r\n" in bytes(req)


def test_stamp_via_always_adds_received_for_host_name() -> None:
    req = request("SIP/2.0/UDP pc33.example.com;branch=z9hG4bK1")
    stamp_via(req, UDP_SOURCE)
    assert req.via[0].received == "192.0.2.4"
    assert req.via[0].host == "pc33.example.com"


def test_stamp_via_fills_rport_and_received_rfc3581() -> None:
    # RFC 3581 §4: received is added even though the address matches.
    req = request("SIP/2.0/UDP 192.0.2.4:5060;rport;branch=z9hG4bK1")
    stamp_via(req, UDP_SOURCE)
    top = req.via[0]
    assert top.rport == 5070
    assert top.received == "192.0.2.4"
    assert b";rport=5070;branch=z9hG4bK1;received=192.0.2.4" in bytes(req)


def test_stamp_via_only_touches_the_top_value() -> None:
    req = request("SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1, SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK0")
    stamp_via(req, UDP_SOURCE)
    assert [v.received for v in req.via] == ["192.0.2.4", None]
    assert [v.branch for v in req.via] == ["z9hG4bK1", "z9hG4bK0"]
    # Round trip: the stamped request parses back the same.
    again = parse_message(bytes(req))
    assert [str(v) for v in again.via] == [str(v) for v in req.via]


def test_stamp_via_compact_form_and_second_line() -> None:
    req = request(
        "SIP/2.0/TCP 10.0.0.1;branch=z9hG4bK1", "SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK0", compact=True
    )
    stamp_via(req, Source("tcp", "192.0.2.4", 40000, flow=3))
    assert len(req.via) == 2
    assert req.via[0].received == "192.0.2.4"
    assert req.via[1].received is None


def test_stamp_via_ipv6_compares_by_value() -> None:
    source = Source("udp", "2001:db8::1", 5060)
    same = request("SIP/2.0/UDP [2001:db8:0:0::1]:5060;branch=z9hG4bK1")
    stamp_via(same, source)
    assert same.via[0].received is None
    other = request("SIP/2.0/UDP [2001:db8::2]:5060;branch=z9hG4bK1")
    stamp_via(other, source)
    assert other.via[0].received == "2001:db8::1"


# -- response_target: §18.2.2 ---------------------------------------------------


def test_response_reliable_reuses_the_connection() -> None:
    source = Source("tcp", "192.0.2.4", 40000, "192.0.2.1", 5060, flow=7)
    via = Via.parse("SIP/2.0/TCP client.example.com:5060;branch=z9hG4bK1;received=192.0.2.4")
    target, reuse = response_target(via, source)
    assert reuse is True
    assert target == Target("tcp", "192.0.2.4", 40000)


@pytest.mark.parametrize("transport", ["TLS", "WS", "WSS"])
def test_response_other_reliable_transports_reuse(transport: str) -> None:
    source = Source(transport.lower(), "::1", 40000, flow=1)
    via = Via.parse(f"SIP/2.0/{transport} df7jal23ls0d.invalid;branch=z9hG4bK1")
    target, reuse = response_target(via, source)
    assert reuse
    assert target == Target(transport.lower(), "::1", 40000)


def test_response_maddr() -> None:
    via = Via.parse("SIP/2.0/UDP 10.0.0.1:5070;maddr=239.255.255.1;ttl=1;branch=z9hG4bK1")
    assert response_target(via, UDP_SOURCE) == (Target("udp", "239.255.255.1", 5070), False)
    no_port = Via.parse("SIP/2.0/UDP 10.0.0.1;maddr=[ff02::1];branch=z9hG4bK1")
    assert response_target(no_port, UDP_SOURCE) == (Target("udp", "ff02::1", 5060), False)


def test_response_received_with_sent_by_port() -> None:
    via = Via.parse("SIP/2.0/UDP 10.0.0.1:5080;branch=z9hG4bK1;received=192.0.2.4")
    assert response_target(via, UDP_SOURCE) == (Target("udp", "192.0.2.4", 5080), False)


def test_response_received_default_port() -> None:
    via = Via.parse("SIP/2.0/UDP host.example.com;branch=z9hG4bK1;received=192.0.2.4")
    assert response_target(via, UDP_SOURCE) == (Target("udp", "192.0.2.4", 5060), False)


def test_response_rport_value_rfc3581() -> None:
    via = Via.parse("SIP/2.0/UDP 10.0.0.1:5060;rport=5070;received=192.0.2.4;branch=z9hG4bK1")
    assert response_target(via, UDP_SOURCE) == (Target("udp", "192.0.2.4", 5070), False)


def test_response_without_received_goes_to_source_host_sent_by_port() -> None:
    via = Via.parse("SIP/2.0/UDP 192.0.2.4:5090;branch=z9hG4bK1")
    assert response_target(via, UDP_SOURCE) == (Target("udp", "192.0.2.4", 5090), False)


def test_response_valueless_rport_uses_source_port() -> None:
    via = Via.parse("SIP/2.0/UDP 192.0.2.4;rport;branch=z9hG4bK1")
    assert response_target(via, UDP_SOURCE) == (Target("udp", "192.0.2.4", 5070), False)


def test_response_ipv6_received_has_no_brackets() -> None:
    source = Source("udp", "2001:db8::9", 5062)
    req = request("SIP/2.0/UDP [2001:db8::1]:5062;rport;branch=z9hG4bK1")
    via = stamp_via(req, source)
    assert response_target(via, source) == (Target("udp", "2001:db8::9", 5062), False)


def test_stamp_then_route_round_trip() -> None:
    req = request("SIP/2.0/UDP 10.0.0.1:5060;rport;branch=z9hG4bK1")
    stamp_via(req, UDP_SOURCE)
    response = req.reply(200)
    assert response_target(response.via[0], UDP_SOURCE) == (
        Target("udp", "192.0.2.4", 5070),
        False,
    )


def test_fallback_target() -> None:
    """§18.2.2 fallback: the connection's own address and transport, sent-by's port."""
    tcp = Source("tcp", "192.0.2.4", 40000, flow=3)
    via = Via.parse("SIP/2.0/TCP client.example.com:5070;branch=z9hG4bK1;received=192.0.2.4")
    assert fallback_target(via, tcp) == Target("tcp", "192.0.2.4", 5070)
    tls = Via.parse("SIP/2.0/TLS [2001:db8::1];branch=z9hG4bK1")
    assert fallback_target(tls, Source("tls", "2001:db8::1", 40000, flow=4)) == Target(
        "tls", "2001:db8::1", 5061
    )
    host = Via.parse("SIP/2.0/TCP client.example.com;branch=z9hG4bK1")
    assert fallback_target(host, tcp) == Target("tcp", "192.0.2.4", 5060)


# -- reflection: nothing in the request steers its response elsewhere ------------------------


def test_stamp_via_replaces_a_received_the_client_wrote() -> None:
    req = request("SIP/2.0/UDP 192.0.2.4:5070;received=198.51.100.7;branch=z9hG4bK1")
    via = stamp_via(req, UDP_SOURCE)
    assert via.received == "192.0.2.4"
    assert response_target(via, UDP_SOURCE) == (Target("udp", "192.0.2.4", 5070), False)


def test_stamp_via_replaces_an_rport_value_the_client_wrote() -> None:
    req = request("SIP/2.0/UDP 192.0.2.4:5070;rport=9;branch=z9hG4bK1")
    via = stamp_via(req, UDP_SOURCE)
    assert via.rport == 5070 and via.received == "192.0.2.4"


def test_unicast_maddr_is_ignored_unless_configured() -> None:
    via = Via.parse("SIP/2.0/UDP 192.0.2.4:5070;maddr=198.51.100.7;branch=z9hG4bK1")
    assert response_target(via, UDP_SOURCE) == (Target("udp", "192.0.2.4", 5070), False)
    assert response_target(via, UDP_SOURCE, honour_maddr=True) == (
        Target("udp", "198.51.100.7", 5070),
        False,
    )


def test_a_request_over_tcp_is_answered_on_its_connection_whatever_its_via_says() -> None:
    source = Source("tcp", "192.0.2.4", 40000, "192.0.2.1", 5060, flow=9)
    via = Via.parse("SIP/2.0/UDP 198.51.100.7:5060;maddr=198.51.100.7;branch=z9hG4bK1")
    assert response_target(via, source) == (Target("tcp", "192.0.2.4", 40000), True)
    assert fallback_target(via, source) == Target("tcp", "192.0.2.4", 5060)


def test_a_received_without_stamping_never_redirects_a_udp_response() -> None:
    via = Via.parse("SIP/2.0/UDP 10.0.0.1:5080;branch=z9hG4bK1;received=198.51.100.7")
    assert response_target(via, UDP_SOURCE) == (Target("udp", "192.0.2.4", 5080), False)


def test_strip_brackets() -> None:
    assert strip_brackets("[::1]") == "::1"
    assert strip_brackets("::1") == "::1"
    assert strip_brackets("example.com") == "example.com"


# -- choose_transport: §18.1.1 ------------------------------------------------------


def test_choose_transport_small_udp_stays_udp() -> None:
    assert choose_transport(1300, "udp") == "udp"
    assert choose_transport(500, "UDP") == "udp"


def test_choose_transport_large_udp_goes_tcp() -> None:
    assert choose_transport(1301, "udp") == "tcp"
    assert choose_transport(9000, "UDP") == "tcp"


def test_choose_transport_uses_path_mtu() -> None:
    assert choose_transport(1301, "udp", path_mtu=9000) == "udp"
    assert choose_transport(8801, "udp", path_mtu=9000) == "tcp"
    assert choose_transport(400, "udp", path_mtu=576) == "tcp"


@pytest.mark.parametrize("transport", ["tcp", "tls", "ws", "wss"])
def test_choose_transport_keeps_reliable(transport: str) -> None:
    assert choose_transport(100_000, transport) == transport
