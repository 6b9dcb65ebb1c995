"""§16.3 validation and §16.4 / §16.6 route processing, on the fake network and alone:
483, 420, 482 for a loop and a spiral that passes, the strict-router examples of
§16.12.1.2, Record-Route (doubled on a transport change), Path, flows."""

from __future__ import annotations

import hashlib

from sipwire.core.events import IncomingCall
from sipwire.core.media import StaticMedia
from sipwire.core.session import CallState
from sipwire.message import Request, Response, SipUri, parse_message
from sipwire.proxy import Interface, ProxyPolicy
from sipwire.proxy.branch import prepare
from sipwire.proxy.routing import FlowToken, preprocess
from sipwire.transport.address import Source, Target
from tests.core.uanet import OFFER
from tests.proxy.proxynet import ProxyNet, binding

BOB = "sip:bob@example.com"


def _raw(
    method: str,
    uri: str,
    *,
    port: int = 5090,
    mf: int | None = 70,
    extra: tuple[tuple[str, str], ...] = (),
    branch: str = "z9hG4bKraw1",
) -> bytes:
    lines = [f"{method} {uri} SIP/2.0", f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch={branch}"]
    if mf is not None:
        lines.append(f"Max-Forwards: {mf}")
    lines += [
        "From: <sip:carol@elsewhere.org>;tag=c1",
        f"To: <{uri}>",
        "Call-ID: raw-1",
        f"CSeq: 1 {method}",
    ]
    lines += [f"{name}: {value}" for name, value in extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _inject(net: ProxyNet, data: bytes, port: int = 5090) -> None:
    net.transmit(data, ("127.0.0.1", port), ("127.0.0.1", 5060))
    net.step(0.5)


# -- §16.3 ---------------------------------------------------------------------------


def test_max_forwards_zero_gets_483_but_options_is_answered() -> None:
    net = ProxyNet()
    proxy = net.add_proxy()
    sender = net.peer(5090, [])
    proxy.register(BOB, binding(BOB, "<sip:bob@127.0.0.1:5081>", source="127.0.0.1:5081"))
    _inject(net, _raw("INVITE", BOB, mf=0))
    assert [r.status for r in sender.responses] == [483]
    _inject(net, _raw("OPTIONS", BOB, mf=0, branch="z9hG4bKraw2"))
    options = next(r for r in sender.responses if r.cseq.method == "OPTIONS")
    assert options.status == 200 and "INVITE" in (options.headers.get("Allow") or "")
    # at 1 the request still goes, with 0
    callee = net.peer(5081, [200])
    _inject(net, _raw("MESSAGE", BOB, mf=1, branch="z9hG4bKraw3"))
    assert callee.requests and callee.requests[0].max_forwards == 0
    # none at all: the proxy adds 70 (§16.6 step 3)
    _inject(net, _raw("MESSAGE", BOB, mf=None, branch="z9hG4bKraw4"))
    assert callee.requests[-1].max_forwards == 70


def test_unknown_proxy_require_gets_420_with_unsupported() -> None:
    net = ProxyNet()
    proxy = net.add_proxy(extensions={"sec-agree"})
    sender = net.peer(5090, [])
    proxy.register(BOB, binding(BOB, "<sip:bob@127.0.0.1:5081>", source="127.0.0.1:5081"))
    net.peer(5081, [200])
    _inject(net, _raw("MESSAGE", BOB, extra=(("Proxy-Require", "foo, sec-agree"),)))
    response = sender.responses[-1]
    assert response.status == 420 and response.headers.get("Unsupported") == "foo"
    _inject(net, _raw("MESSAGE", BOB, extra=(("Proxy-Require", "sec-agree"),), branch="z9b2"))
    assert sender.responses[-1].status == 200
    _inject(net, _raw("MESSAGE", "http://example.com/x", branch="z9hG4bKraw5"))
    assert sender.responses[-1].status == 416


class Bouncer:
    """A minimal stateless proxy: every request goes back to our proxy with the
    Request-URI ``rewrite``; responses follow their Via."""

    def __init__(self, net: ProxyNet, host: str, port: int, rewrite: str) -> None:
        self.net = net
        self.host, self.port = host, port
        self.rewrite = rewrite
        self.requests: list[Request] = []

    def deliver(self, data: bytes, src: tuple[str, int]) -> None:
        message = parse_message(data)
        if isinstance(message, Request):
            self.requests.append(message)
            message.uri = self.rewrite
            seed = (message.via[0].branch or "").encode()
            branch = "z9hG4bKb" + hashlib.sha256(seed).hexdigest()[:10]
            message.headers.prepend("Via", f"SIP/2.0/UDP {self.host}:{self.port};branch={branch}")
            self.net.transmit(bytes(message), (self.host, self.port), ("127.0.0.1", 5060))
            return
        message.headers.pop_first_value("via")
        nxt = message.via[0]
        dst = (nxt.received or nxt.host, nxt.rport or nxt.port or 5060)
        self.net.transmit(bytes(message), (self.host, self.port), dst)

    def next_timer(self) -> float | None:
        return None

    def fire(self) -> None:
        pass


def _loop_setup(rewrite: str) -> tuple[ProxyNet, Bouncer]:
    net = ProxyNet()
    proxy = net.add_proxy(trusted={"127.0.0.9"})
    bouncer = Bouncer(net, "127.0.0.9", 5099, rewrite)
    net.attach(("127.0.0.9", 5099), bouncer)
    # bob's only binding is the bouncer, which sends the request back to us
    proxy.register(BOB, binding(BOB, "<sip:bob@127.0.0.9:5099>", source="127.0.0.9:5099"))
    return net, bouncer


def test_a_loop_is_caught_with_482() -> None:
    net, bouncer = _loop_setup(BOB)
    sender = net.peer(5090, [])
    _inject(net, _raw("MESSAGE", BOB))
    net.step(1)
    # the request came back unchanged (same Request-URI, tags, Call-ID, CSeq, previous
    # hop): §16.3 item 4, a loop; the 482 went back through the bouncer to the caller
    assert len(bouncer.requests) == 1
    assert [r.status for r in sender.responses] == [482]


def test_a_spiral_passes() -> None:
    net, _ = _loop_setup("sip:carol@example.com")
    proxy = net.proxy
    carol = net.peer(5083, [200])
    proxy.register(
        "sip:carol@example.com",
        binding("sip:carol@example.com", "<sip:carol@127.0.0.1:5083>", source="127.0.0.1:5083"),
    )
    sender = net.peer(5090, [])
    _inject(net, _raw("MESSAGE", BOB))
    net.step(1)
    # back with another Request-URI: a spiral; it went on to carol's binding
    assert len(carol.requests) == 1
    message = carol.requests[0]
    ours = [v for v in message.via if v.host == "127.0.0.1" and v.port == 5060]
    assert len(ours) == 2 and ours[0].branch != ours[1].branch
    assert [r.status for r in sender.responses] == [200]


# -- §16.4 and the strict-router examples of §16.12.1.2 -------------------------------


def _policy(name: str) -> ProxyPolicy:
    return ProxyPolicy(interfaces=(Interface("udp", "192.0.2.4", 5060),), aliases={name})


def _source() -> Source:
    return Source("udp", "192.0.2.99", 5060, "192.0.2.4", 5060)


def test_p4_removes_its_route_and_reformats_for_the_strict_router_p3() -> None:
    bye = Request(
        "BYE",
        "sip:caller@u1.example.com",
        [
            ("Via", "SIP/2.0/UDP u2.domain.com;branch=z9hG4bK1"),
            ("Route", "<sip:p4.domain.com;lr>"),
            ("Route", "<sip:p3.middle.com>"),
            ("Route", "<sip:p2.example.com;lr>"),
            ("Route", "<sip:p1.example.com;lr>"),
            ("From", "<sip:callee@domain.com>;tag=b"),
            ("To", "<sip:caller@example.com>;tag=a"),
            ("Call-ID", "c"),
            ("CSeq", "2 BYE"),
            ("Max-Forwards", "70"),
        ],
    )
    info = preprocess(bye, _source(), _policy("p4.domain.com"), frozenset())
    assert info.removed == 1 and not info.strict
    copy, strict = prepare(bye)
    # "BYE sip:p3.middle.com SIP/2.0 / Route: <sip:p2.example.com;lr> /
    #  Route: <sip:p1.example.com;lr> / Route: <sip:caller@u1.example.com>"
    assert strict
    assert str(copy.uri) == "sip:p3.middle.com"
    assert [str(a.uri) for a in copy.route] == [
        "sip:p2.example.com;lr",
        "sip:p1.example.com;lr",
        "sip:caller@u1.example.com",
    ]


def test_p2_restores_the_request_uri_a_strict_router_replaced() -> None:
    bye = Request(
        "BYE",
        "sip:p2.example.com;lr",
        [
            ("Via", "SIP/2.0/UDP p3.middle.com;branch=z9hG4bK2"),
            ("Route", "<sip:p1.example.com;lr>"),
            ("Route", "<sip:caller@u1.example.com>"),
            ("From", "<sip:callee@domain.com>;tag=b"),
            ("To", "<sip:caller@example.com>;tag=a"),
            ("Call-ID", "c"),
            ("CSeq", "2 BYE"),
        ],
    )
    info = preprocess(bye, _source(), _policy("p2.example.com"), frozenset())
    # "BYE sip:caller@u1.example.com SIP/2.0 / Route: <sip:p1.example.com;lr>"
    assert info.strict and info.removed == 0
    assert str(bye.uri) == "sip:caller@u1.example.com"
    assert [str(a.uri) for a in bye.route] == ["sip:p1.example.com;lr"]
    copy, strict = prepare(bye)
    assert not strict and str(copy.route[0].uri) == "sip:p1.example.com;lr"


def test_a_strict_router_upstream_reaches_the_callee_through_the_proxy() -> None:
    net = ProxyNet()
    net.add_proxy()
    callee = net.peer(5081, [200])
    # the BYE as a strict router sends it: our Record-Route URI as Request-URI, the
    # remote target last in Route
    data = _raw(
        "BYE",
        "sip:127.0.0.1:5060;lr",
        extra=(("Route", "<sip:bob@127.0.0.1:5081>"), ("To", "<sip:bob@example.com>;tag=b")),
    )
    data = data.replace(b"To: <sip:127.0.0.1:5060;lr>\r\n", b"")
    sender = net.peer(5090, [])
    _inject(net, data)
    assert [str(r.uri) for r in callee.requests] == ["sip:bob@127.0.0.1:5081"]
    assert "route" not in callee.requests[0].headers
    assert [r.status for r in sender.responses] == [200]


def test_in_dialog_request_not_routed_through_us_gets_404() -> None:
    net = ProxyNet()
    net.add_proxy()
    sender = net.peer(5090, [])
    data = _raw("BYE", "sip:bob@127.0.0.1:5081", extra=(("To", "<sip:bob@x>;tag=b"),))
    _inject(net, data.replace(b"To: <sip:bob@127.0.0.1:5081>\r\n", b""))
    assert [r.status for r in sender.responses] == [404]


def test_double_record_route_when_the_call_changes_transport() -> None:
    net = ProxyNet()
    proxy = net.add_proxy()
    alice = net.ua("alice", 5070, domain="elsewhere.org")
    bob = net.ua("bob", 5080, host="127.0.0.4", tcp=True)
    contact = "<sip:bob@127.0.0.4:5080;transport=tcp>"
    proxy.register(BOB, binding(BOB, contact, transport="tcp", source="127.0.0.4:5080"))
    call = alice.core.invite(BOB, StaticMedia(OFFER), net.now)
    alice.pump()
    net.step(0.5)
    incoming = bob.events_of(IncomingCall)[0]
    assert isinstance(incoming, IncomingCall)
    invite = incoming.request
    # RFC 5658: UDP in, TCP out: two values with r2=on, the one facing bob on top
    assert invite.headers.get_all("Record-Route") == [
        "<sip:127.0.0.1:5060;transport=tcp;r2=on;lr>",
        "<sip:127.0.0.1:5060;r2=on;lr>",
    ]
    assert invite.via[0].transport == "TCP"
    incoming.session.answer(net.now)
    bob.pump()
    net.step(0.5)
    assert call.state is CallState.CONFIRMED
    # the ACK and a BYE from alice (UDP) reach bob over TCP through both values
    call.bye(net.now)
    alice.pump()
    net.step(0.5)
    assert incoming.session.state is CallState.TERMINATED
    byes = proxy.requests_to(5080, "BYE")
    assert len(byes) == 1 and "route" not in byes[0].headers
    tcp_sent = [t for m, t in proxy.sent if isinstance(m, Request) and t.port == 5080]
    assert {t.transport for t in tcp_sent} == {"tcp"}
    # and bob's BYE of a second call comes back over UDP to alice
    call2 = alice.core.invite(BOB, StaticMedia(OFFER), net.now)
    alice.pump()
    net.step(0.5)
    second = bob.events_of(IncomingCall)[1]
    assert isinstance(second, IncomingCall)
    second.session.answer(net.now)
    bob.pump()
    net.step(0.5)
    second.session.hangup(net.now)
    bob.pump()
    net.step(0.5)
    assert call2.state is CallState.TERMINATED
    to_alice = [t for m, t in proxy.sent if isinstance(m, Request) and t.port == 5070]
    assert to_alice and {t.transport for t in to_alice} == {"udp"}


def test_single_record_route_without_transport_change() -> None:
    net = ProxyNet()
    proxy = net.add_proxy()
    alice = net.ua("alice", 5070, domain="elsewhere.org")
    callee = net.peer(5081, [200])
    proxy.register(BOB, binding(BOB, "<sip:bob@127.0.0.1:5081>", source="127.0.0.1:5081"))
    alice.core.invite(BOB, StaticMedia(OFFER), net.now)
    alice.pump()
    net.step(0.5)
    assert callee.requests[0].headers.get_all("Record-Route") == ["<sip:127.0.0.1:5060;lr>"]
    # a MESSAGE creates no dialog: no Record-Route (§16.6 step 4)
    alice.core.request("MESSAGE", BOB, net.now, body=b"hi")
    alice.pump()
    net.step(0.5)
    message = next(r for r in callee.requests if r.method == "MESSAGE")
    assert "record-route" not in message.headers


def test_path_of_a_binding_becomes_the_route() -> None:
    net = ProxyNet()
    proxy = net.add_proxy()
    edge = net.peer(5066, [200], host="127.0.0.6")
    net.dns["edge.example"] = [Target("udp", "127.0.0.6", 5066)]
    proxy.register(
        BOB,
        binding(
            BOB,
            "<sip:bob@10.0.0.8:5060>",
            source="127.0.0.6:5066",
            path=("<sip:edge.example;lr>",),
        ),
    )
    sender = net.peer(5090, [])
    _inject(net, _raw("MESSAGE", BOB))
    # RFC 3327 §5.3: the Path as Route, the Contact as Request-URI, sent to the edge
    assert len(edge.requests) == 1
    forwarded = edge.requests[0]
    assert str(forwarded.uri) == "sip:bob@10.0.0.8:5060"
    assert [str(a.uri) for a in forwarded.route] == ["sip:edge.example;lr"]
    assert [r.status for r in sender.responses] == [200]


def test_a_binding_behind_nat_is_reached_at_its_source_and_in_dialog_through_a_token() -> None:
    net = ProxyNet()
    proxy = net.add_proxy(flow_secret=b"s" * 32)
    alice = net.ua("alice", 5070, domain="elsewhere.org")
    phone = net.peer(5081, [200], host="127.0.0.4")
    phone.contact = "<sip:bob@192.168.1.20:5060>"
    proxy.register(
        BOB, binding(BOB, "<sip:bob@192.168.1.20:5060>", source="127.0.0.4:5081", flow=None)
    )
    call = alice.core.invite(BOB, StaticMedia(OFFER), net.now)
    alice.pump()
    net.step(0.5)
    # the Contact is a private address: the INVITE went where the REGISTER came from
    invite = phone.requests[0]
    assert str(invite.uri) == "sip:bob@192.168.1.20:5060"
    rr = invite.record_route[0].uri
    assert isinstance(rr, SipUri) and rr.user is not None
    token = FlowToken.decode(rr.user, b"s" * 32)
    assert token is not None and (token.host, token.port) == ("127.0.0.4", 5081)
    assert call.state is CallState.CONFIRMED
    # the ACK and the BYE name the private Contact, yet reach the phone (the token)
    call.bye(net.now)
    alice.pump()
    net.step(0.5)
    assert phone.methods() == ["INVITE", "ACK", "BYE"]
    assert call.state is CallState.TERMINATED


def test_a_tcp_binding_with_another_contact_port_goes_on_its_flow() -> None:
    net = ProxyNet()
    proxy = net.add_proxy()
    phone = net.peer(40000, [200], host="127.0.0.4", tcp=True)
    proxy.register(
        BOB,
        binding(
            BOB,
            "<sip:bob@127.0.0.4:5080;transport=tcp>",
            transport="tcp",
            source="127.0.0.4:40000",
            flow=7,
        ),
    )
    sender = net.peer(5090, [])
    _inject(net, _raw("MESSAGE", BOB))
    assert len(phone.requests) == 1 and [r.status for r in sender.responses] == [200]
    assert proxy.stateful.flow_for(Target("tcp", "127.0.0.4", 40000)) == 7


def test_response_with_foreign_top_via_is_dropped() -> None:
    net = ProxyNet()
    proxy = net.add_proxy()
    response = Response(
        200,
        headers=[
            ("Via", "SIP/2.0/UDP 127.0.0.8:5000;branch=z9hG4bKx"),
            ("Via", "SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bKy"),
            ("From", "<sip:a@b>;tag=1"),
            ("To", "<sip:c@d>;tag=2"),
            ("Call-ID", "x"),
            ("CSeq", "1 INVITE"),
        ],
    )
    net.transmit(bytes(response), ("127.0.0.8", 5000), ("127.0.0.1", 5060))
    net.step(0.5)
    assert proxy.sent == []
