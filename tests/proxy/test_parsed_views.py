"""The parsed views a forwarded copy takes over stay what parsing its text gives, the
remembered next hops are those computed afresh, and a binding heard from another
address is reached through its flow."""

from __future__ import annotations

from sipwire.message import Via, parse_message
from sipwire.message.message import Request, Response
from sipwire.proxy.branch import add_via, copy_request, prepare, strip_top_via
from sipwire.proxy.targets import DirectHops, binding_candidate
from sipwire.registrar.model import Binding
from sipwire.transport.rfc3263 import Locator

INVITE = (
    b"INVITE sip:bob@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-a, SIP/2.0/TCP 192.0.2.9;branch=z9hG4bK-b\r\n"
    b"Route: <sip:192.0.2.7;lr>\r\n"
    b"From: <sip:alice@example.com>;tag=1\r\n"
    b"To: <sip:bob@example.com>\r\n"
    b"Call-ID: c1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
)


def reparsed(message: Request | Response) -> Request | Response:
    return parse_message(bytes(message))


def test_a_copy_with_our_via_reads_as_its_text() -> None:
    request = parse_message(INVITE)
    assert isinstance(request, Request)
    request.route  # noqa: B018  (views parsed before the copy)
    copy, _ = prepare(request)
    add_via(copy, Via("UDP", "192.0.2.5", 5060, {"branch": "z9hG4bKours"}))
    fresh = reparsed(copy)
    assert copy.via == fresh.via
    assert copy.route == fresh.route
    assert copy.max_forwards == fresh.max_forwards == 69
    assert copy.from_ == fresh.from_ and copy.cseq == fresh.cseq
    assert len(request.via) == 2  # the original keeps its own
    other = copy_request(request)
    other.via.append(Via("UDP", "x", None))
    assert len(request.via) == 2  # lists are not shared


def test_a_response_without_its_top_via_reads_as_its_text() -> None:
    request = parse_message(INVITE)
    assert isinstance(request, Request)
    response = request.reply(180)
    assert len(response.via) == 2
    strip_top_via(response)
    assert response.via == reparsed(response).via
    assert [v.branch for v in response.via] == ["z9hG4bK-b"]


def test_direct_hops_are_those_the_locator_finds() -> None:
    hops = DirectHops(("udp", "tcp", "tls"))
    for text in ("sip:192.0.2.1:5070;transport=TCP", "sips:192.0.2.1", "sip:[2001:db8::1]"):
        uri = parse_message(INVITE.replace(b"sip:bob@example.com SIP", text.encode() + b" SIP"))
        assert isinstance(uri, Request)
        hop = uri.uri
        expected = Locator(hop, None, transports=("udp", "tcp", "tls")).targets()  # type: ignore[arg-type]
        assert hops.targets(hop, lambda: None) == expected  # type: ignore[arg-type,return-value]
        assert hops.targets(hop, lambda: None) == expected  # type: ignore[arg-type,return-value]
    named = parse_message(INVITE)
    assert isinstance(named, Request)
    assert hops.targets(named.uri, lambda: None) is None  # type: ignore[arg-type,return-value]


def test_a_binding_heard_from_another_address_is_reached_by_its_flow() -> None:
    def binding(source: str) -> Binding:
        return Binding(
            aor="sip:bob@example.com",
            contact="<sip:bob@192.0.2.4:5060>",
            key="k",
            expires_at=1e12,
            call_id="c",
            cseq=1,
            source=source,
        )

    direct = binding_candidate(binding("192.0.2.4:5060"), None)  # type: ignore[arg-type]
    natted = binding_candidate(binding("198.51.100.1:4000"), None)  # type: ignore[arg-type]
    assert direct is not None and direct.destination is None
    assert natted is not None and natted.destination is not None
    assert natted.destination.port == 4000
    assert binding_candidate(binding("192.0.2.4:5060"), None) == direct  # type: ignore[arg-type]
