"""The pure pieces of the proxy on their own: branches and loops, flow tokens, the best
response, target sets, the routing table, the policy, authorization, Timer C's queue."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sipwire.dialog.ids import CountingIds
from sipwire.message import Request, Response, SipUri
from sipwire.proxy import Interface, Local, ProxyPolicy, Relay, Respond, RoutingTable
from sipwire.proxy.authz import Accept, Forbid, NeedAuth, authorize, consume_credentials
from sipwire.proxy.branch import (
    build_cancel,
    is_loop,
    loop_hash,
    loop_part,
    prepare,
    stateful_branch,
    stateless_branch,
)
from sipwire.proxy.responses import choose_best
from sipwire.proxy.routes import Challenge, RouteContext, StaticRoute
from sipwire.proxy.routing import FlowToken, record_route_value
from sipwire.proxy.targets import location_plan, needs_flow, relay_plan
from sipwire.proxy.validate import check
from sipwire.timerheap import TimerHeap as Timers
from sipwire.transaction.client import build_ack
from sipwire.transport.address import Source
from tests.proxy.proxynet import binding

POLICY = ProxyPolicy(interfaces=(Interface("udp", "192.0.2.1", 5060),), aliases={"proxy.test"})


def _invite(**extra: str) -> Request:
    headers = [
        ("Via", "SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bKcaller"),
        ("Max-Forwards", "70"),
        ("From", "<sip:alice@example.com>;tag=a1"),
        ("To", "<sip:bob@example.com>"),
        ("Call-ID", "c1"),
        ("CSeq", "1 INVITE"),
        ("Proxy-Authorization", 'Digest username="alice", realm="example.com", nonce="n"'),
    ]
    headers += list(extra.items())
    return Request("INVITE", "sip:bob@example.com", headers)


# -- branches and loops ----------------------------------------------------------------


def test_the_stateless_branch_is_the_same_for_retransmission_cancel_and_non_2xx_ack() -> None:
    invite = _invite()
    loop = loop_hash(invite, invite.via[0])
    branch = stateless_branch(invite, loop)
    assert branch.startswith("z9hG4bK") and loop_part(branch) == loop
    assert stateless_branch(_invite(), loop_hash(_invite(), invite.via[0])) == branch
    cancel = build_cancel(invite)
    assert stateless_branch(cancel, loop_hash(cancel, cancel.via[0])) == branch
    ack = build_ack(invite, invite.reply(486, to_tag="b1"))
    assert stateless_branch(ack, loop_hash(ack, ack.via[0])) == branch
    # another transaction: another branch; the stateful branch is unique per call
    other = _invite()
    other.headers.set("Via", "SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bKother")
    assert stateless_branch(other, loop_hash(other, other.via[0])) != branch
    ids = CountingIds("p")
    assert stateful_branch(loop, ids) != stateful_branch(loop, ids)


def test_a_request_back_unchanged_is_a_loop_and_a_new_request_uri_a_spiral() -> None:
    invite = _invite()
    branch = stateful_branch(loop_hash(invite, invite.via[0]), CountingIds("p"))
    looped = _invite()
    looped.headers.prepend("Via", f"SIP/2.0/UDP 192.0.2.1:5060;branch={branch}")
    looped.headers.prepend("Via", "SIP/2.0/UDP 198.51.100.3;branch=z9hG4bKnext")
    assert is_loop(looped, [1])
    assert check(looped, POLICY) is not None and check(looped, POLICY).status == 482  # type: ignore[union-attr]
    spiral = Request("INVITE", "sip:carol@example.com", looped.headers.copy())
    assert not is_loop(spiral, [1])
    assert check(spiral, POLICY) is None


def test_prepare_copies_decrements_and_pushes_routes() -> None:
    invite = _invite(Route="<sip:proxy.test;lr>")
    copy, strict = prepare(
        invite,
        "sip:bob@192.0.2.9;method=INVITE?subject=x",
        routes=("<sip:edge.test;lr>",),
        add_headers=(("X-Tag", "1"),),
        remove_headers=("Proxy-Authorization",),
    )
    assert not strict
    assert str(copy.uri) == "sip:bob@192.0.2.9"  # §16.6 step 2: no method, no headers
    assert copy.max_forwards == 69 and invite.max_forwards == 70
    assert copy.headers.get_all("Route") == ["<sip:edge.test;lr>", "<sip:proxy.test;lr>"]
    assert copy.headers.get("X-Tag") == "1" and "proxy-authorization" not in copy.headers
    assert copy.body == invite.body and "proxy-authorization" in invite.headers


def test_consume_credentials_keeps_other_realms() -> None:
    invite = _invite()
    invite.headers.add("Proxy-Authorization", 'Digest username="a", realm="other.test", nonce="m"')
    consume_credentials(invite, "example.com")
    assert [c.realm for c in invite.proxy_authorization] == ["other.test"]


# -- flow tokens and Record-Route --------------------------------------------------------


def test_flow_tokens_round_trip_and_refuse_tampering() -> None:
    token = FlowToken("tcp", "192.0.2.44", 40123, 17, "node-a")
    text = token.encode(b"k" * 32)
    assert FlowToken.decode(text, b"k" * 32) == token
    assert FlowToken.decode(text, b"j" * 32) is None
    assert FlowToken.decode(text[:-2] + "aa", b"k" * 32) is None
    assert FlowToken.decode("alice", b"k" * 32) is None
    assert token.matches(Source("tcp", "192.0.2.44", 40123))
    assert not token.matches(Source("udp", "192.0.2.44", 40123))


def test_record_route_values() -> None:
    assert record_route_value(Interface("udp", "192.0.2.1", 5060)) == "<sip:192.0.2.1:5060;lr>"
    assert (
        record_route_value(Interface("ws", "2001:db8::1", 8080), r2=True)
        == "<sip:[2001:db8::1]:8080;transport=ws;r2=on;lr>"
    )
    tls = Interface("tls", "192.0.2.1", 5061)
    assert record_route_value(tls, secure=True) == "<sips:192.0.2.1:5061;lr>"


# -- the best response --------------------------------------------------------------------


def _responses(*statuses: int) -> list[Response]:
    invite = _invite()
    return [invite.reply(s, to_tag=f"t{s}") for s in statuses]


@pytest.mark.parametrize(
    ("statuses", "best"),
    [
        ((), 408),
        ((486, 404), 486),
        ((404, 486), 404),
        ((503,), 500),
        ((503, 502), 502),
        ((500, 486), 486),
        ((302, 404), 302),
        ((486, 603, 404), 603),
        ((404, 415, 486), 415),
        ((401, 407, 486), 407),
    ],
)
def test_choose_best(statuses: tuple[int, ...], best: int) -> None:
    assert choose_best(_responses(*statuses), _invite(), cancelled=False).status == best


def test_choose_best_after_cancel_is_487_unless_6xx() -> None:
    assert choose_best(_responses(486), _invite(), cancelled=True).status == 487
    assert choose_best(_responses(486, 600), _invite(), cancelled=True).status == 600


# -- target sets ----------------------------------------------------------------------------


def test_location_plan_groups_by_q_and_counts_a_missing_q_as_one() -> None:
    aor = "sip:bob@example.com"
    bindings = [
        binding(aor, "<sip:bob@192.0.2.10>", q=0.5),
        binding(aor, "<sip:bob@192.0.2.11>"),
        binding(aor, "<sip:bob@192.0.2.12>", q=1.0),
        binding(aor, "<sip:bob@192.0.2.13>", q=0.1),
        binding(aor, "<sip:bob@192.0.2.10>", q=0.2),  # the same URI again: once only
    ]
    plan = location_plan(bindings, POLICY, 0.0)
    groups = [[str(c.uri) for c in g.candidates] for g in plan.groups]
    assert groups == [
        ["sip:bob@192.0.2.11", "sip:bob@192.0.2.12"],
        ["sip:bob@192.0.2.10"],
        ["sip:bob@192.0.2.13"],
    ]
    expired = binding(aor, "<sip:bob@192.0.2.14>")
    assert location_plan([expired], POLICY, 4000.0).empty


def test_needs_flow() -> None:
    aor = "sip:bob@example.com"

    def flow(contact: str, **kw: object) -> bool:
        b = binding(aor, contact, **kw)  # type: ignore[arg-type]
        uri = SipUri.parse(contact.strip("<>"))
        return needs_flow(b, uri)

    assert not flow("<sip:bob@192.0.2.10:5060>", source="192.0.2.10:5060")
    assert flow("<sip:bob@10.0.0.5:5060>", source="192.0.2.10:33000")  # NAT
    assert flow(
        "<sip:bob@192.0.2.10:5062;transport=tcp>", source="192.0.2.10:40000", transport="tcp"
    )
    assert flow(
        "<sip:bob@df7jal23ls0d.invalid;transport=ws>", source="192.0.2.3:5555", transport="ws"
    )
    assert flow("<sip:bob@192.0.2.10:5060>", source="192.0.2.10:5060", reg_id=1)
    assert not flow("<sip:bob@phone.example>", source="192.0.2.10:5060")
    assert not flow("<sip:bob@10.0.0.5>", source="192.0.2.10:5060", path=("<sip:e;lr>",))


def test_relay_plan_rewrites_the_host_or_pushes_a_route() -> None:
    request = Request("INVITE", "tel:+49-30-123", [("Via", "SIP/2.0/UDP a;branch=z9hG4bK1")])
    plan = relay_plan(Relay(["sip:gw1.test", "sip:gw2.test;transport=tcp"]), request)
    assert [[str(c.uri) for c in g.candidates] for g in plan.groups] == [
        ["sip:+4930123@gw1.test;user=phone"],
        ["sip:+4930123@gw2.test;transport=tcp;user=phone"],
    ]
    assert all(g.advance_on == frozenset({408, 503}) for g in plan.groups)
    sip = Request("INVITE", "sip:0301234@example.com", [("Via", "SIP/2.0/UDP a;branch=z9hG4bK1")])
    plan = relay_plan(Relay(["sip:sbc.test"], rewrite="none", strip=1, prepend="+4930"), sip)
    candidate = plan.groups[0].candidates[0]
    assert str(candidate.uri) == "sip:+4930301234@example.com"
    assert candidate.routes == ("<sip:sbc.test;lr>",)
    plan = relay_plan(Relay(), sip)
    assert plan.groups[0].candidates[0].uri is None  # where the request points


# -- the routing table ----------------------------------------------------------------------


def _ctx() -> RouteContext:
    return RouteContext(Source("udp", "192.0.2.7", 5060), 0.0, 0.0, frozenset({"example.com"}))


def test_routing_table_order() -> None:
    table = RoutingTable.from_mapping(
        {
            "domains": ["Example.COM"],
            "routes": [
                {"name": "pstn", "prefixes": ["+49"], "gateways": ["sip:gw.test"]},
                {"name": "de-mobile", "prefixes": ["+4917"], "respond": 403},
                {"name": "partner", "domains": ["partner.test"], "gateways": ["sip:sbc.test"]},
            ],
            "default": {"gateways": ["sip:upstream.test"]},
        }
    )

    def decide(uri: str) -> object:
        return table.decide(Request("INVITE", uri), _ctx())

    assert decide("sip:bob@example.com") == Local("sip:bob@example.com")
    assert decide("sips:Bob@EXAMPLE.com;user=phone") == Local("sip:Bob@example.com")
    assert isinstance(decide("sip:+4930@example.com"), Relay)
    assert decide("tel:+49-171-1234") == Respond(403)
    partner = decide("sip:x@partner.test")
    assert isinstance(partner, Relay) and partner.name == "partner"
    default = decide("sip:x@elsewhere.test")
    assert isinstance(default, Relay) and list(default.targets) == ["sip:upstream.test"]
    bare = RoutingTable(domains=frozenset({"example.com"}))
    assert bare.decide(Request("INVITE", "sip:x@elsewhere.test"), _ctx()) == Relay()
    assert bare.decide(Request("INVITE", "tel:+1555"), _ctx()) == Respond(404, "No route")


@pytest.mark.parametrize(
    "data",
    [
        {"domain": ["x"]},
        {"routes": [{"name": "r", "prefixes": ["1"]}]},
        {"routes": [{"gateways": ["tel:+1"]}]},
        {"routes": [{"gateways": ["sip:a"], "rewrite": "all"}]},
        {"routes": [{"gateways": ["sip:a"], "colour": "red"}]},
        {"routes": [{"respond": 200}]},
    ],
)
def test_routing_table_rejects_malformed_data(data: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RoutingTable.from_mapping(data)


def test_static_route_needs_gateways_or_a_response() -> None:
    assert StaticRoute(respond=404).decision() == Respond(404)


# -- policy, authorization ------------------------------------------------------------------


def test_policy_recognises_itself() -> None:
    policy = ProxyPolicy(
        interfaces=(Interface("udp", "192.0.2.1", 5060), Interface("tls", "192.0.2.1", 5061)),
        aliases={"Proxy.Test"},
    )
    assert policy.is_us(SipUri("192.0.2.1"))
    assert policy.is_us(SipUri("192.0.2.1", port=5061, params={"transport": "tls"}))
    assert not policy.is_us(SipUri("192.0.2.1", port=5070))
    assert policy.is_us(SipUri("proxy.test"))
    assert policy.is_us(SipUri("example.com"), frozenset({"example.com"}))
    with pytest.raises(ValueError):
        ProxyPolicy(interfaces=(Interface("udp", "192.0.2.1", 5060),), timer_c=180)
    with pytest.raises(ValueError):
        ProxyPolicy(interfaces=())


@pytest.mark.parametrize(
    ("method", "from_domain", "decision", "verdict"),
    [
        ("INVITE", "example.com", Local(), NeedAuth("example.com")),
        ("MESSAGE", "example.com", Local(), NeedAuth("example.com")),
        ("SUBSCRIBE", "example.com", Local(), NeedAuth("example.com")),
        ("OPTIONS", "example.com", Local(), Accept()),
        ("INVITE", "elsewhere.org", Local(), Accept()),
        ("OPTIONS", "example.com", Relay(), NeedAuth("example.com")),
        ("INVITE", "elsewhere.org", Relay(), Forbid("Relaying denied")),
        ("CANCEL", "example.com", Relay(), Accept()),
        ("CANCEL", "elsewhere.org", Relay(), Forbid("Relaying denied")),
        ("INVITE", "example.com", Challenge(), NeedAuth("example.com")),
        ("INVITE", "elsewhere.org", Respond(404), Accept()),
    ],
)
def test_authorize(method: str, from_domain: str, decision: object, verdict: object) -> None:
    request = Request(method, "sip:x@y", [("From", f"<sip:alice@{from_domain}>;tag=1")])
    got = authorize(
        request,
        Source("udp", "192.0.2.7", 5060),
        decision,  # type: ignore[arg-type]
        domains=frozenset({"example.com"}),
        policy=POLICY,
    )
    assert got == verdict


# -- Timer C's queue ---------------------------------------------------------------------------


def test_timers_fire_in_order_and_sweep_cancelled_entries() -> None:
    timers = Timers()
    fired: list[int] = []

    def callback(i: int) -> Callable[[float], None]:
        return lambda now: fired.append(i)

    handles = [timers.schedule(float(i), callback(i)) for i in range(1000)]
    for handle in handles[10:]:
        handle.cancel()
    assert len(timers) == 10 and len(timers._heap) < 1000  # rebuilt without the cancelled
    assert timers.next_deadline() == 0.0
    timers.fire(5.0)
    assert fired == [0, 1, 2, 3, 4, 5]
    assert timers.next_deadline() == 6.0
