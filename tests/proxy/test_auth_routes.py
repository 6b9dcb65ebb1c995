"""Who may use the proxy (407, 403, no open relay), where requests go (location service,
static routes with failover, the hook), and 480 / 404 for users without bindings."""

from __future__ import annotations

from sipwire.auth.digest import DigestAccount, DigestClient
from sipwire.core.events import RequestCompleted
from sipwire.core.media import StaticMedia
from sipwire.core.session import CallState
from sipwire.message import Request
from sipwire.proxy import Local, Relay, Respond, RouteContext, RoutingTable
from sipwire.transport.address import Target
from tests.core.uanet import OFFER, Node, Packet
from tests.proxy.proxynet import DOMAIN, Peer, ProxyNet, ProxyNode, binding

BOB = "sip:bob@example.com"


def _setup(table: RoutingTable | None = None, **policy: object) -> tuple[ProxyNet, ProxyNode]:
    net = ProxyNet()
    proxy = net.add_proxy(table=table, **policy)
    proxy.add_user("alice", "secret")
    proxy.add_user("bob", "bobpw")
    return net, proxy


def _bind_peer(net: ProxyNet, proxy: ProxyNode, port: int, statuses: list[int]) -> Peer:
    peer = net.peer(port, statuses)
    contact = f"<sip:bob@127.0.0.1:{port}>"
    proxy.register(BOB, binding(BOB, contact, source=f"127.0.0.1:{port}"))
    return peer


def _completed(node: Node) -> list[tuple[str, int]]:
    return [
        (e.request.method, e.response.status)
        for e in node.events
        if isinstance(e, RequestCompleted)
    ]


def test_a_local_caller_is_challenged_with_407_then_proxied() -> None:
    net, proxy = _setup()
    peer = _bind_peer(net, proxy, 5081, [200])
    alice = net.ua("alice", 5070, password="secret")
    call = alice.core.invite(BOB, StaticMedia(OFFER), net.now)
    alice.pump()
    net.step(1)
    challenge = [r for r in proxy.responses_to(5070) if r.status == 407]
    assert len(challenge) == 1
    offered = challenge[0].proxy_authenticate
    assert [(c.realm, c.algorithm) for c in offered] == [
        (DOMAIN, "SHA-256"),
        (DOMAIN, "MD5"),
    ]
    assert call.state is CallState.CONFIRMED
    invite = peer.requests[0]
    # our credentials were used up here, not passed on
    assert "proxy-authorization" not in invite.headers
    assert len(proxy.nonce_counts) == 1


def test_a_wrong_password_is_challenged_again_and_the_caller_gives_up() -> None:
    net, proxy = _setup()
    peer = _bind_peer(net, proxy, 5081, [200])
    alice = net.ua("alice", 5070, password="wrong")
    call = alice.core.invite(BOB, StaticMedia(OFFER), net.now)
    alice.pump()
    net.step(2)
    assert [r.status for r in proxy.responses_to(5070) if r.status >= 200] == [407, 407]
    assert call.state is CallState.TERMINATED
    assert peer.requests == []


def test_an_authenticated_user_may_not_speak_for_another() -> None:
    net, proxy = _setup()
    _bind_peer(net, proxy, 5081, [200])
    # the digest is alice's, the From says bob
    mallory = net.ua("bob", 5070, password="secret")
    mallory.core.sender.auth = DigestClient([DigestAccount("alice", "secret")], lambda: "cn")
    mallory.core.invite(BOB, StaticMedia(OFFER), net.now)
    mallory.pump()
    net.step(1)
    statuses = [r.status for r in proxy.responses_to(5070) if r.status >= 200]
    assert statuses == [407, 403]


def test_a_replayed_nonce_count_is_challenged() -> None:
    net, proxy = _setup()
    _bind_peer(net, proxy, 5081, [200])
    alice = net.ua("alice", 5070, password="secret")
    wire: list[bytes] = []

    def record(packet: Packet) -> bool:
        wire.append(packet.data)
        return True

    net.intercept = record
    alice.core.request("MESSAGE", BOB, net.now, body=b"one")
    alice.pump()
    net.step(1)
    assert _completed(alice) == [("MESSAGE", 200)]
    retried = [d for d in wire if d.startswith(b"MESSAGE") and b"Proxy-Authorization" in d]
    assert len(retried) == 1
    # the same credentials (same nonce, same nc) on a new transaction
    replay = retried[0].replace(b"CSeq: 2 MESSAGE", b"CSeq: 9 MESSAGE")
    replay = replay.replace(b"branch=z9hG4bK", b"branch=z9hG4bKreplay")
    net.transmit(replay, ("127.0.0.1", 5070), ("127.0.0.1", 5060))
    net.step(1)
    last = [r for r in proxy.responses_to(5070) if r.cseq.seq == 9]
    assert [r.status for r in last] == [407]


def test_outside_callers_reach_local_users_without_authentication() -> None:
    net, proxy = _setup()
    _bind_peer(net, proxy, 5081, [200])
    carol = net.ua("carol", 5070, domain="elsewhere.org")
    call = carol.core.invite(BOB, StaticMedia(OFFER), net.now)
    carol.pump()
    net.step(1)
    assert call.state is CallState.CONFIRMED
    assert not [r for r in proxy.responses_to(5070) if r.status == 407]


def test_no_open_relay_from_outside_to_a_foreign_domain() -> None:
    net, proxy = _setup()
    foreign = net.peer(5095, [200])
    net.dns["foreign.example"] = [Target("udp", "127.0.0.1", 5095)]
    carol = net.ua("carol", 5070, domain="elsewhere.org")
    call = carol.core.invite("sip:dave@foreign.example", StaticMedia(OFFER), net.now)
    carol.pump()
    carol.core.request("MESSAGE", "sip:dave@foreign.example", net.now, body=b"x")
    carol.pump()
    net.step(1)
    assert call.state is CallState.TERMINATED
    assert sorted(r.status for r in proxy.responses_to(5070) if r.status >= 200) == [403, 403]
    assert foreign.requests == []


def test_a_local_user_is_relayed_to_a_foreign_domain_after_authenticating() -> None:
    net, _ = _setup()
    foreign = net.peer(5095, [200])
    net.dns["foreign.example"] = [Target("udp", "127.0.0.1", 5095)]
    alice = net.ua("alice", 5070, password="secret")
    call = alice.core.invite("sip:dave@foreign.example", StaticMedia(OFFER), net.now)
    alice.pump()
    net.step(1)
    assert call.state is CallState.CONFIRMED
    assert str(foreign.requests[0].uri) == "sip:dave@foreign.example"


def test_a_trusted_source_is_neither_challenged_nor_refused() -> None:
    net, _ = _setup(trusted={"127.0.0.7"})
    foreign = net.peer(5095, [200])
    net.dns["foreign.example"] = [Target("udp", "127.0.0.1", 5095)]
    trunk = net.ua("trunk", 5070, host="127.0.0.7", domain="elsewhere.org")
    call = trunk.core.invite("sip:dave@foreign.example", StaticMedia(OFFER), net.now)
    trunk.pump()
    net.step(1)
    assert call.state is CallState.CONFIRMED and len(foreign.requests) == 2  # INVITE, ACK


def test_480_for_a_user_without_binding_and_404_only_for_an_authenticated_colleague() -> None:
    net, _ = _setup()
    carol = net.ua("carol", 5070, domain="elsewhere.org")
    carol.core.request("MESSAGE", BOB, net.now, body=b"x")  # bob exists, no binding
    carol.pump()
    carol.core.request("MESSAGE", "sip:nobody@example.com", net.now, body=b"x")
    carol.pump()
    net.step(1)
    # outside: the same 480 for a known user and an unknown one
    assert sorted(s for _, s in _completed(carol)) == [480, 480]
    alice = net.ua("alice", 5071, password="secret")
    alice.core.request("MESSAGE", BOB, net.now, body=b"x")
    alice.pump()
    net.step(1)
    alice.core.request("MESSAGE", "sip:nobody@example.com", net.now, body=b"x")
    alice.pump()
    net.step(1)
    # a user of the domain, authenticated: 480 for bob, 404 for nobody
    assert _completed(alice) == [("MESSAGE", 480), ("MESSAGE", 404)]


def test_message_subscribe_refer_and_options_to_a_user_are_proxied() -> None:
    net, proxy = _setup()
    peer = _bind_peer(net, proxy, 5081, [200])
    alice = net.ua("alice", 5070, password="secret")
    now = net.now
    alice.core.request("MESSAGE", BOB, now, body=b"hello")
    alice.core.request("SUBSCRIBE", BOB, now, headers=[("Event", "presence"), ("Expires", "60")])
    alice.core.request("REFER", BOB, now, headers=[("Refer-To", "<sip:carol@example.com>")])
    alice.core.request("OPTIONS", BOB, now)
    alice.pump()
    net.step(2)
    got = sorted(peer.methods())
    assert got == ["MESSAGE", "OPTIONS", "REFER", "SUBSCRIBE"]
    assert sorted(_completed(alice)) == [
        ("MESSAGE", 200),
        ("OPTIONS", 200),
        ("REFER", 200),
        ("SUBSCRIBE", 200),
    ]
    # MESSAGE and SUBSCRIBE were challenged; REFER and OPTIONS towards a local user not
    challenged = {r.cseq.method for r in proxy.responses_to(5070) if r.status == 407}
    assert challenged == {"MESSAGE", "SUBSCRIBE"}
    # SUBSCRIBE and REFER may create dialogs: record-routed
    by_method = {r.method: r for r in peer.requests}
    assert "record-route" in by_method["SUBSCRIBE"].headers
    assert "record-route" not in by_method["MESSAGE"].headers


def test_options_to_the_proxy_itself_is_answered() -> None:
    net, _ = _setup()
    carol = net.ua("carol", 5070, domain="elsewhere.org", outbound=False)
    carol.core.request("OPTIONS", "sip:127.0.0.1:5060", net.now)
    carol.pump()
    net.step(1)
    assert _completed(carol) == [("OPTIONS", 200)]


TABLE = """
domains = ["example.com"]

[[routes]]
name = "pstn"
prefixes = ["+49", "0049"]
gateways = ["sip:gw1.carrier.test", "sip:gw2.carrier.test"]

[[routes]]
name = "premium"
prefixes = ["+49900"]
respond = 403

[[routes]]
name = "partner"
domains = ["partner.test"]
gateways = ["sip:sbc.partner.test"]
rewrite = "none"
"""


def _pstn(first: list[int], second: list[int]) -> tuple[ProxyNet, ProxyNode, Node, Peer, Peer]:
    net, proxy = _setup(RoutingTable.from_toml(TABLE))
    gw1 = net.peer(5091, first)
    gw2 = net.peer(5092, second)
    net.dns["gw1.carrier.test"] = [Target("udp", "127.0.0.1", 5091)]
    net.dns["gw2.carrier.test"] = [Target("udp", "127.0.0.1", 5092)]
    alice = net.ua("alice", 5070, password="secret")
    return net, proxy, alice, gw1, gw2


def test_static_route_by_prefix_fails_over_to_the_second_gateway_on_503() -> None:
    net, proxy, alice, gw1, gw2 = _pstn([503], [200])
    call = alice.core.invite("sip:+4930123@example.com", StaticMedia(OFFER), net.now)
    alice.pump()
    net.step(1)
    assert gw1.methods() == ["INVITE", "ACK"]
    assert [str(r.uri) for r in gw1.requests][:1] == ["sip:+4930123@gw1.carrier.test"]
    assert [str(r.uri) for r in gw2.requests][:1] == ["sip:+4930123@gw2.carrier.test"]
    assert call.state is CallState.CONFIRMED
    assert proxy.lookups == []  # the prefix won over the local domain


def test_no_failover_on_a_busy_gateway() -> None:
    net, proxy, alice, _, gw2 = _pstn([486], [200])
    call = alice.core.invite("sip:+4930123@example.com", StaticMedia(OFFER), net.now)
    alice.pump()
    net.step(1)
    assert gw2.requests == []
    assert call.state is CallState.TERMINATED
    assert [r.status for r in proxy.responses_to(5070) if r.status >= 200][-1] == 486


def test_failover_when_the_first_gateway_never_answers() -> None:
    net, _, alice, _, _ = _pstn([], [200])
    net.intercept = lambda p: p.dst[1] != 5091
    call = alice.core.invite("sip:+4930123@example.com", StaticMedia(OFFER), net.now)
    alice.pump()
    net.step(40)  # Timer B: 408 from the first gateway's branch
    assert call.state is CallState.CONFIRMED


def test_a_longer_prefix_wins_and_a_route_may_answer_itself() -> None:
    net, proxy, alice, gw1, _ = _pstn([200], [200])
    call = alice.core.invite("sip:+49900123@example.com", StaticMedia(OFFER), net.now)
    alice.pump()
    net.step(1)
    assert call.state is CallState.TERMINATED
    assert [r.status for r in proxy.responses_to(5070) if r.status >= 200][-1] == 403
    assert gw1.requests == []


def test_a_domain_route_without_rewrite_pushes_the_gateway_as_route() -> None:
    net, _, alice, _, _ = _pstn([200], [200])
    sbc = net.peer(5093, [200])
    net.dns["sbc.partner.test"] = [Target("udp", "127.0.0.1", 5093)]
    alice.core.request("MESSAGE", "sip:erin@partner.test", net.now, body=b"x")
    alice.pump()
    net.step(1)
    message = sbc.requests[0]
    assert str(message.uri) == "sip:erin@partner.test"
    assert [str(a.uri) for a in message.route] == ["sip:sbc.partner.test;lr"]


def test_the_routing_hook_decides_first() -> None:
    seen: list[RouteContext] = []

    def hook(request: Request, ctx: RouteContext) -> Local | Relay | Respond | None:
        seen.append(ctx)
        user = getattr(request.uri, "user", None) or ""
        if str(request.from_.uri) == "sip:spam@elsewhere.org":
            return Respond(603, "Declined")
        if user.startswith("0") and not user.startswith("00"):
            return Relay(["sip:gw1.carrier.test"], strip=1, prepend="+4930")
        if user == "support":
            return Local("sip:bob@example.com")
        return None

    net, proxy = _setup(RoutingTable.from_toml(TABLE, hook=hook))
    gw = net.peer(5091, [200])
    net.dns["gw1.carrier.test"] = [Target("udp", "127.0.0.1", 5091)]
    _bind_peer(net, proxy, 5081, [200])
    alice = net.ua("alice", 5070, password="secret")
    spam = net.ua("spam", 5071, domain="elsewhere.org")
    spam.core.request("MESSAGE", BOB, net.now, body=b"buy")
    spam.pump()
    alice.core.request("MESSAGE", "sip:0123456@example.com", net.now, body=b"x")
    alice.core.request("MESSAGE", "sip:support@example.com", net.now, body=b"x")
    alice.pump()
    net.step(2)
    assert _completed(spam) == [("MESSAGE", 603)]
    assert [str(r.uri) for r in gw.requests] == ["sip:+4930123456@gw1.carrier.test"]
    assert ("MESSAGE", 200) in _completed(alice)
    assert proxy.lookups == [BOB]
    assert seen and seen[0].wall_time == seen[0].now


def test_a_broken_hook_answers_500() -> None:
    def hook(request: Request, ctx: RouteContext) -> None:
        raise RuntimeError("bug")

    net, _ = _setup(RoutingTable(domains=frozenset({DOMAIN}), hook=hook))
    carol = net.ua("carol", 5070, domain="elsewhere.org")
    carol.core.request("MESSAGE", BOB, net.now, body=b"x")
    carol.pump()
    net.step(1)
    assert _completed(carol) == [("MESSAGE", 500)]
