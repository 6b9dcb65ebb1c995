"""The stateful forking proxy on a fake network: forking, best response, Timer C, CANCEL.

The caller is a user-agent core of another domain (calls to our users need no
authentication), the callees scripted peers or user-agent cores registered
for ``sip:bob@example.com``.
"""

from __future__ import annotations

from sipwire.core.events import CallStateChanged, IncomingCall
from sipwire.core.media import StaticMedia
from sipwire.core.session import CallState, InviteSession
from sipwire.message import Request, Response
from sipwire.proxy.branch import loop_part
from sipwire.registrar.model import Binding
from tests.core.uanet import OFFER, Node
from tests.proxy.proxynet import ProxyNet, ProxyNode, binding

BOB = "sip:bob@example.com"


def _setup(**policy: object) -> tuple[ProxyNet, ProxyNode, Node]:
    net = ProxyNet()
    proxy = net.add_proxy(**policy)
    alice = net.ua("alice", 5070, domain="elsewhere.org")
    return net, proxy, alice


def _bind(proxy: ProxyNode, port: int, q: float | None = None, at: float = 0.0) -> None:
    contact = f"<sip:bob@127.0.0.1:{port}>"
    proxy.register(BOB, binding(BOB, contact, q=q, source=f"127.0.0.1:{port}", registered_at=at))


def _call(net: ProxyNet, alice: Node) -> InviteSession:
    session = alice.core.invite(BOB, StaticMedia(OFFER), net.now)
    alice.pump()
    return session


def _finals(proxy: ProxyNode, port: int) -> list[int]:
    return [r.status for r in proxy.responses_to(port) if r.status >= 200]


def _statuses(proxy: ProxyNode, port: int) -> list[int]:
    return [r.status for r in proxy.responses_to(port)]


def test_parallel_fork_486_and_404_gives_486_and_acks_hop_by_hop() -> None:
    net, proxy, alice = _setup()
    busy = net.peer(5081, [486])
    nobody = net.peer(5082, [404])
    _bind(proxy, 5081)
    _bind(proxy, 5082)
    session = _call(net, alice)
    net.step(1)
    # both targets got the INVITE at once (one q group), each on its own branch
    first, second = busy.requests[0], nobody.requests[0]
    assert first.method == second.method == "INVITE"
    assert first.via[0].branch != second.via[0].branch
    assert loop_part(first.via[0].branch) == loop_part(second.via[0].branch)
    # §16.7 step 6: 4xx class, 486 and 404: either may be chosen; the first kept is 486
    assert _statuses(proxy, 5070) == [100, 486]
    assert session.state is CallState.TERMINATED
    # the non-2xx finals were ACKed by the proxy, each to its branch (hop by hop)
    assert busy.methods() == ["INVITE", "ACK"] and nobody.methods() == ["INVITE", "ACK"]
    assert busy.requests[1].via[0].branch == first.via[0].branch
    # alice's ACK for the 486 ended in the proxy's server transaction
    assert [r.method for r in proxy.received if isinstance(r, Request)] == ["INVITE", "ACK"]
    assert [(a.method, a.status, a.forwarded) for a in proxy.answered] == [("INVITE", 486, True)]


def test_no_binding_gives_480_and_a_503_alone_becomes_500() -> None:
    net, proxy, alice = _setup()
    net.peer(5081, [503])
    _call(net, alice)
    net.step(1)
    # no binding: §16.5 "If the target set remains empty ... SHOULD be the 480"
    assert _finals(proxy, 5070) == [480]
    _bind(proxy, 5081)
    _call(net, alice)
    net.step(1)
    # §16.7 step 6: "If the only response that was received is a 503, the proxy SHOULD
    # generate a 500"
    assert _finals(proxy, 5070) == [480, 500]


def test_another_5xx_is_preferred_to_a_503() -> None:
    net, proxy, alice = _setup()
    net.peer(5081, [503])
    net.peer(5082, [502])
    _bind(proxy, 5081)
    _bind(proxy, 5082)
    _call(net, alice)
    net.step(1)
    assert _finals(proxy, 5070) == [502]


def test_6xx_cancels_the_pending_branches_and_stops_the_next_group() -> None:
    net, proxy, alice = _setup()
    declines = net.peer(5081, lambda r: [(0.0, 180), (0.5, 603)] if r.method == "INVITE" else [])
    rings = net.peer(5082, lambda r: [(0.0, 180)] if r.method == "INVITE" else [])
    later = net.peer(5083, [200])
    _bind(proxy, 5081, q=1.0)
    _bind(proxy, 5082, q=1.0)
    _bind(proxy, 5083, q=0.5)
    session = _call(net, alice)
    net.step(2)
    # the 603 made the proxy CANCEL the ringing branch; its 487 ended it; then the 603
    # went upstream (§16.7 step 5: not forwarded at once, but chosen as best)
    assert rings.methods() == ["INVITE", "CANCEL", "ACK"]
    assert declines.methods() == ["INVITE", "ACK"]
    assert later.requests == []  # "it MUST NOT create any new branches"
    assert _statuses(proxy, 5070) == [100, 180, 180, 603]
    assert session.state is CallState.TERMINATED


def test_401_and_407_challenges_are_merged_into_one_response() -> None:
    net, proxy, alice = _setup()
    uas = net.peer(5081, [401])
    uas.extra[401] = [("WWW-Authenticate", 'Digest realm="uas.example", nonce="n1", qop="auth"')]
    other = net.peer(5082, [407])
    other.extra[407] = [("Proxy-Authenticate", 'Digest realm="edge.example", nonce="n2"')]
    _bind(proxy, 5081)
    _bind(proxy, 5082)
    _call(net, alice)
    net.step(1)
    final = [r for r in proxy.responses_to(5070) if r.status >= 200]
    assert [r.status for r in final] == [407]
    merged = final[0]
    # §16.7 step 7: every WWW-Authenticate and Proxy-Authenticate of the 401s and 407s
    assert [c.realm for c in merged.www_authenticate] == ["uas.example"]
    assert [c.realm for c in merged.proxy_authenticate] == ["edge.example"]


def test_sequential_fork_by_q_tries_the_lower_q_after_the_higher_failed() -> None:
    net, proxy, alice = _setup()
    first = net.peer(5081, lambda r: [(0.0, 180), (1.0, 480)] if r.method == "INVITE" else [])
    second = net.peer(5082, [200])
    third = net.peer(5083, [486])
    _bind(proxy, 5083, q=0.1)
    _bind(proxy, 5082, q=0.5)
    _bind(proxy, 5081, q=0.9)
    session = _call(net, alice)
    net.step(0.5)
    assert first.methods() == ["INVITE"] and second.requests == [] and third.requests == []
    net.step(2)
    # the q=0.5 group started only when the q=0.9 group ended with 480 ...
    assert second.methods() == ["INVITE", "ACK"]
    arrival = [t for t, hop, line in net.trace if hop == "5060->5082" and line.startswith("INVITE")]
    assert arrival and arrival[0] > 1.0
    # ... answered 200, so the q=0.1 target was never tried
    assert third.requests == []
    assert session.state is CallState.CONFIRMED
    assert _finals(proxy, 5070) == [200]


def test_parallel_forking_ignores_q_when_configured() -> None:
    net, proxy, alice = _setup(forking="parallel")
    a = net.peer(5081, [486])
    b = net.peer(5082, [486])
    _bind(proxy, 5081, q=1.0)
    _bind(proxy, 5082, q=0.1)
    _call(net, alice)
    net.step(0.5)
    sent = [t for t, hop, line in net.trace if line.startswith("INVITE") and hop[:4] == "5060"]
    assert len(sent) == 2 and sent[0] == sent[1]
    assert a.methods()[0] == b.methods()[0] == "INVITE"


def test_timer_c_cancels_a_ringing_branch_and_ends_it_with_408() -> None:
    net, proxy, alice = _setup(timer_c=181.0)
    rings = net.peer(5081, lambda r: [(0.0, 180)] if r.method == "INVITE" else [])
    _bind(proxy, 5081)
    _call(net, alice)
    net.step(100)
    assert rings.methods() == ["INVITE"]
    assert _statuses(proxy, 5070) == [100, 180]
    # a provisional restarts Timer C (§16.7 step 2): it fires 181 s after the 180
    net.run(180.9)
    assert rings.methods() == ["INVITE"]
    net.run(182)
    # §16.8: the branch had a provisional: CANCEL; it ends as if it received 408
    assert rings.methods()[:2] == ["INVITE", "CANCEL"]
    assert _finals(proxy, 5070) == [408]
    assert proxy.answered[-1].status == 408


def test_a_silent_target_times_out_as_408_and_the_next_group_is_tried() -> None:
    net, proxy, alice = _setup(timer_c=181.0)
    silent = net.peer(5081, lambda r: [])
    net.intercept = lambda p: not (p.dst[1] == 5081 and p.data.startswith(b"INVITE"))
    answers = net.peer(5082, [200])
    _bind(proxy, 5081, q=1.0)
    _bind(proxy, 5082, q=0.5)
    session = _call(net, alice)
    net.step(60)
    # Timer B (32 s) gave up on the silent target first: as 408, so the next group went
    assert silent.requests == []
    assert answers.methods() == ["INVITE", "ACK"]
    assert session.state is CallState.CONFIRMED


def test_timer_c_is_not_restarted_by_100_trying() -> None:
    net, proxy, alice = _setup(timer_c=181.0)
    trying = net.peer(5081, lambda r: [(0.0, 100)] if r.method == "INVITE" else [])
    _bind(proxy, 5081)
    _call(net, alice)
    net.run(180.5)
    assert trying.methods() == ["INVITE"]  # a 100 stopped Timers A and B, not Timer C
    net.run(182)
    assert trying.methods()[:2] == ["INVITE", "CANCEL"]
    assert _finals(proxy, 5070) == [408]


def test_cancel_from_the_caller_reaches_every_branch_and_gets_487() -> None:
    net, proxy, alice = _setup()
    bob = net.ua("bob", 5081)
    net.peer(5082, lambda r: [(0.0, 180)] if r.method == "INVITE" else [])
    _bind(proxy, 5081)
    _bind(proxy, 5082)
    session = _call(net, alice)
    net.step(0.3)
    incoming = bob.events_of(IncomingCall)
    assert incoming
    callee = incoming[0]
    assert isinstance(callee, IncomingCall)
    callee.session.ring(net.now)
    bob.pump()
    net.step(0.3)
    session.cancel(net.now)
    alice.pump()
    net.step(1)
    # 200 to the CANCEL at once, a CANCEL to each branch, 487 upstream once they ended
    cancels = [r for r in proxy.responses_to(5070) if r.cseq.method == "CANCEL"]
    assert [r.status for r in cancels] == [200]
    assert proxy.requests_to(5081, "CANCEL") and proxy.requests_to(5082, "CANCEL")
    assert callee.session.state is CallState.TERMINATED
    assert [r.status for r in proxy.responses_to(5070) if r.cseq.method == "INVITE"][-1] == 487
    assert session.state is CallState.TERMINATED
    assert all(c.final_sent for c in proxy.stateful.contexts)


def test_cancel_while_the_location_service_is_asked_gets_487_without_any_branch() -> None:
    net, proxy, alice = _setup()
    callee = net.peer(5081, [200])
    _bind(proxy, 5081)
    proxy.hold_lookups = True
    session = _call(net, alice)
    net.step(0.1)
    assert proxy.lookups == [BOB]
    session.cancel(net.now)
    alice.pump()
    net.step(0.1)
    proxy.release_lookups()  # the late answer is ignored
    net.step(1)
    assert callee.requests == []
    assert [r.status for r in proxy.responses_to(5070) if r.cseq.method == "INVITE"] == [100, 487]


def test_a_cancelled_branch_without_provisional_gets_its_cancel_when_one_arrives() -> None:
    net, proxy, alice = _setup()
    slow = net.peer(5081, lambda r: [(1.0, 180)] if r.method == "INVITE" else [])
    _bind(proxy, 5081)
    session = _call(net, alice)
    net.step(0.2)
    session.cancel(net.now)
    alice.pump()
    net.step(0.2)
    # no provisional yet: no CANCEL (§9.1), but the caller is answered 487 already
    assert slow.methods() == ["INVITE"]
    assert [r.status for r in proxy.responses_to(5070) if r.cseq.method == "INVITE"] == [100, 487]
    net.step(1.5)
    # the 180 came at 1.0 s: the CANCEL went then
    assert "CANCEL" in slow.methods()


def test_two_2xx_from_two_branches_are_both_forwarded() -> None:
    net, proxy, alice = _setup()
    a = net.peer(5081, [200])
    b = net.peer(5082, lambda r: [(0.05, 200)] if r.method == "INVITE" else [(0.0, 200)])
    _bind(proxy, 5081)
    _bind(proxy, 5082)
    session = _call(net, alice)
    net.step(2)
    oks = [r for r in proxy.responses_to(5070) if r.status == 200 and r.cseq.method == "INVITE"]
    assert sorted(r.to.tag or "" for r in oks) == ["peer5081", "peer5082"]
    # the caller takes the first and ACKs both; the second gets a BYE (§13.2.2.4)
    assert session.state is CallState.CONFIRMED
    assert a.methods() == ["INVITE", "ACK"]
    assert b.methods() == ["INVITE", "ACK", "BYE"]


def test_ack_for_2xx_is_routed_end_to_end_through_the_record_route() -> None:
    net, proxy, alice = _setup()
    bob = net.ua("bob", 5081)
    _bind(proxy, 5081)
    session = _call(net, alice)
    net.step(0.3)
    callee = bob.events_of(IncomingCall)[0]
    assert isinstance(callee, IncomingCall)
    callee.session.answer(net.now)
    bob.pump()
    net.step(0.5)
    assert session.state is CallState.CONFIRMED and callee.session.state is CallState.CONFIRMED
    acks = [r for r in bob.received if isinstance(r, Request) and r.method == "ACK"]
    assert len(acks) == 1
    ack = acks[0]
    # it came through the proxy (its Via on top, a branch of its own) with the caller's
    # Via below: forwarded statelessly, not generated by the proxy
    assert ack.via[0].port == 5060 and ack.via[1].port == 5070
    invite = next(r for r in bob.received if isinstance(r, Request) and r.method == "INVITE")
    assert ack.via[0].branch != invite.via[0].branch
    assert "route" not in ack.headers  # our Route value removed
    # and the BYE the other way, through the proxy as well
    callee.session.hangup(net.now)
    bob.pump()
    net.step(1)
    assert session.state is CallState.TERMINATED
    bye = [r for r in alice.received if isinstance(r, Request) and r.method == "BYE"]
    assert bye and bye[0].via[0].port == 5060
    states = [e.state for e in alice.events if isinstance(e, CallStateChanged)]
    assert states[-1] is CallState.TERMINATED


def test_a_late_2xx_after_the_transaction_ended_is_forwarded_statelessly() -> None:
    net, proxy, alice = _setup()
    peer = net.peer(5081, [200])
    _bind(proxy, 5081)
    _call(net, alice)
    net.step(40)  # the client transaction's Timer M is over
    invite = peer.requests[0]
    late = invite.reply(200, headers=[("Contact", f"<{peer.uri}>")], to_tag=peer.tag)
    net.transmit(bytes(late), (peer.host, peer.port), (proxy.host, proxy.port))
    before = len(proxy.responses_to(5070))
    net.step(1)
    forwarded = proxy.responses_to(5070)[before:]
    assert [r.status for r in forwarded] == [200]
    assert isinstance(forwarded[0], Response) and len(forwarded[0].via) == 1


def test_3xx_is_forwarded_upstream_without_recursion() -> None:
    net, proxy, alice = _setup()
    mover = net.peer(5081, [302])
    mover.extra[302] = [("Contact", "<sip:bob@127.0.0.1:5082>")]
    target = net.peer(5082, [200])
    _bind(proxy, 5081)
    _call(net, alice)
    net.step(1)
    # the 302 went upstream; the caller follows it (§8.1.3.4) through its outbound proxy,
    # which does not relay an outside caller to an address that is none of its users
    assert _finals(proxy, 5070) == [302, 403]
    assert target.requests == []


def test_3xx_recursion_adds_the_contacts_to_the_target_set() -> None:
    net, proxy, alice = _setup(max_redirects=2)
    mover = net.peer(5081, [302])
    mover.extra[302] = [
        ("Contact", "<sip:bob@127.0.0.1:5082>"),
        ("Contact", "<sip:bob@127.0.0.1:5081>"),  # tried already: not again (§16.5)
    ]
    target = net.peer(5082, [200])
    _bind(proxy, 5081)
    session = _call(net, alice)
    net.step(1)
    assert session.state is CallState.CONFIRMED
    assert [r.method for r in proxy.requests_to(5082)][:1] == ["INVITE"]
    assert len(proxy.requests_to(5081, "INVITE")) == 1
    assert _finals(proxy, 5070) == [200]
    assert target.requests[0].via[1].port == 5070  # forwarded by us, not sent by alice


def test_recursion_is_bounded() -> None:
    net, proxy, alice = _setup(max_redirects=1)
    first = net.peer(5081, [302])
    first.extra[302] = [("Contact", "<sip:bob@127.0.0.1:5082>")]
    second = net.peer(5082, [302])
    second.extra[302] = [("Contact", "<sip:bob@127.0.0.1:5083>")]
    third = net.peer(5083, [200])
    _bind(proxy, 5081)
    _call(net, alice)
    net.step(1)
    # one Contact taken (5082), whose own 302 then went upstream, Contact and all
    assert second.methods() == ["INVITE", "ACK"]
    assert third.requests == []
    final = next(r for r in proxy.responses_to(5070) if r.status >= 200)
    assert final.status == 302 and str(final.contact[0].uri) == "sip:bob@127.0.0.1:5083"


def test_a_location_service_that_never_answers_gets_503_after_the_edge_timeout() -> None:
    net, proxy, alice = _setup(edge_timeout=5.0)
    _bind(proxy, 5081)
    proxy.hold_lookups = True
    _call(net, alice)
    net.step(4.9)
    assert _statuses(proxy, 5070) == [100]
    net.step(0.2)
    final = [r for r in proxy.responses_to(5070) if r.status >= 200]
    assert [r.status for r in final] == [503] and final[0].headers.get("Retry-After") == "5"
    proxy.release_lookups()  # too late: ignored
    net.step(1)
    assert [r.status for r in proxy.responses_to(5070) if r.status >= 200] == [503]


def test_a_cancel_matching_nothing_gets_481() -> None:
    net, _, _ = _setup()
    sender = net.peer(5090, [])
    cancel = (
        "CANCEL sip:bob@example.com SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bKnothing\r\nMax-Forwards: 70\r\n"
        "From: <sip:carol@elsewhere.org>;tag=c\r\nTo: <sip:bob@example.com>\r\n"
        "Call-ID: n1\r\nCSeq: 1 CANCEL\r\n\r\n"
    )
    net.transmit(cancel.encode(), ("127.0.0.1", 5090), ("127.0.0.1", 5060))
    net.step(0.5)
    assert [r.status for r in sender.responses] == [481]


def test_a_failing_location_service_gets_the_call_503() -> None:
    """The edge answers None when the store failed (not: no binding): 503, not 480."""
    net, proxy, alice = _setup()
    callee = net.peer(5081, [200])
    _bind(proxy, 5081)
    proxy.hold_lookups = True
    _call(net, alice)
    net.step(0.1)
    [held] = proxy.held
    proxy.held = []
    proxy.stateful.targets_found(held.ticket, None, net.now)
    proxy.pump()
    net.step(1)
    assert callee.requests == []
    [response] = [r for r in proxy.responses_to(5070) if r.status >= 200]
    assert response.status == 503 and response.headers.get("Retry-After") == "5"


def test_known_bindings_are_used_without_a_lookup_and_none_still_asks() -> None:
    net, proxy, alice = _setup()
    callee = net.peer(5081, [200])
    known: dict[str, list[Binding]] = {
        BOB: [binding(BOB, "<sip:bob@127.0.0.1:5081>", source="127.0.0.1:5081")]
    }
    asked: list[str] = []

    def from_memory(aor: str) -> list[Binding] | None:
        asked.append(aor)
        return known.get(aor)

    proxy.stateful.pipeline.known_bindings = from_memory
    _call(net, alice)
    net.step(1)
    assert asked == [BOB]
    assert proxy.lookups == []  # no LookupTargets went out
    assert callee.methods()[0] == "INVITE"
    assert _finals(proxy, 5070) == [200]
    assert len(proxy.stateful.timers) == 0  # no backstop timer waits for the edge
    # Not known: the question goes to the edge as before (here: no binding, 480).
    known.clear()
    _call(net, alice)
    net.step(1)
    assert asked == [BOB, BOB]
    assert proxy.lookups == [BOB]
    assert _finals(proxy, 5070) == [200, 480]
