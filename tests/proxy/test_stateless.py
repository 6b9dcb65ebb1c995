"""The stateless proxy of §16.11 on the fake network: one target, branches that survive
retransmission, responses routed by Via alone, its own answers without transactions."""

from __future__ import annotations

from sipwire.core.media import StaticMedia
from sipwire.core.session import CallState
from sipwire.message import Request
from tests.core.uanet import OFFER, Packet
from tests.proxy.proxynet import ProxyNet, ProxyNode, binding

BOB = "sip:bob@example.com"


def _setup(**policy: object) -> tuple[ProxyNet, ProxyNode]:
    net = ProxyNet()
    proxy = net.add_proxy(stateless=True, **policy)
    return net, proxy


def _bind(proxy: ProxyNode, port: int, q: float | None = None) -> None:
    contact = f"<sip:bob@127.0.0.1:{port}>"
    proxy.register(BOB, binding(BOB, contact, q=q, source=f"127.0.0.1:{port}"))


def test_a_call_through_the_stateless_proxy() -> None:
    net, proxy = _setup()
    callee = net.peer(
        5081, lambda r: [(0.0, 180), (0.1, 200)] if r.method == "INVITE" else [(0.0, 200)]
    )
    _bind(proxy, 5081)
    carol = net.ua("carol", 5070, domain="elsewhere.org")
    call = carol.core.invite(BOB, StaticMedia(OFFER), net.now)
    carol.pump()
    net.step(1)
    assert call.state is CallState.CONFIRMED
    # no 100 Trying of its own (§16.11), the 180 and 200 relayed by Via
    assert [r.status for r in proxy.responses_to(5070)] == [180, 200]
    assert all(len(r.via) == 1 for r in proxy.responses_to(5070))
    invite, ack = callee.requests[0], callee.requests[1]
    assert ack.method == "ACK" and ack.via[0].port == 5060  # through the Record-Route
    assert invite.headers.get_all("Record-Route") == ["<sip:127.0.0.1:5060;lr>"]
    call.bye(net.now)
    carol.pump()
    net.step(1)
    assert call.state is CallState.TERMINATED and callee.methods()[-1] == "BYE"
    assert proxy.layer.next_timer() is None and len(proxy.layer) == 0  # no transactions


def test_a_retransmission_is_forwarded_again_with_the_same_branch() -> None:
    net, proxy = _setup()
    callee = net.peer(5081, lambda r: [(5.0, 200)] if r.method == "INVITE" else [])
    _bind(proxy, 5081)
    carol = net.ua("carol", 5070, domain="elsewhere.org")
    carol.core.invite(BOB, StaticMedia(OFFER), net.now)
    carol.pump()
    net.step(2)  # Timer A: the caller retransmitted at 0.5 s and 1.5 s
    invites = [r for r in callee.requests if r.method == "INVITE"]
    assert len(invites) == 3
    assert len({r.via[0].branch for r in invites}) == 1
    assert len({bytes(r) for r in invites}) == 1  # the very same request each time


def test_cancel_and_the_ack_of_a_non_2xx_share_the_invites_branch_and_target() -> None:
    net, proxy = _setup()
    callee = net.peer(5081, lambda r: [(0.0, 180)] if r.method == "INVITE" else [])
    other = net.peer(5082, [200])
    _bind(proxy, 5081, q=1.0)
    _bind(proxy, 5082, q=0.5)  # never chosen: one target only, the highest q
    carol = net.ua("carol", 5070, domain="elsewhere.org")
    call = carol.core.invite(BOB, StaticMedia(OFFER), net.now)
    carol.pump()
    net.step(0.5)
    call.cancel(net.now)
    carol.pump()
    net.step(1)
    assert other.requests == []
    assert callee.methods() == ["INVITE", "CANCEL", "ACK"]
    branches = {r.method: r.via[0].branch for r in callee.requests}
    assert branches["CANCEL"] == branches["INVITE"] == branches["ACK"]
    # the peer's 487 was ACKed by the caller (end to end through the stateless proxy)
    assert call.state is CallState.TERMINATED


def test_own_answers_go_without_a_transaction() -> None:
    net, proxy = _setup()
    carol = net.ua("carol", 5070, domain="elsewhere.org")
    call = carol.core.invite(BOB, StaticMedia(OFFER), net.now)  # no binding: 480
    carol.pump()
    net.step(1)
    assert call.state is CallState.TERMINATED
    assert [r.status for r in proxy.responses_to(5070)] == [480]
    # the caller's ACK for the 480 is the proxy's to absorb: nothing goes anywhere
    acks = [r for r in proxy.received if isinstance(r, Request) and r.method == "ACK"]
    assert len(acks) == 1 and [m for m, _ in proxy.sent if isinstance(m, Request)] == []


def test_stateless_challenge_then_success_without_nonce_counts() -> None:
    net, proxy = _setup()
    proxy.add_user("alice", "secret")
    net.peer(5081, [200])
    _bind(proxy, 5081)
    alice = net.ua("alice", 5070, password="secret")
    call = alice.core.invite(BOB, StaticMedia(OFFER), net.now)
    alice.pump()
    net.step(1)
    assert [r.status for r in proxy.responses_to(5070)][:1] == [407]
    assert call.state is CallState.CONFIRMED
    assert proxy.nonce_counts == {}  # a retransmission would look like a replay


def test_a_response_not_for_us_is_discarded() -> None:
    net, proxy = _setup()
    net.transmit(
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.8:5000;branch=z9hG4bKx\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bKy\r\nFrom: <sip:a@b>;tag=1\r\n"
        b"To: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n",
        ("127.0.0.8", 5000),
        ("127.0.0.1", 5060),
    )
    net.step(0.5)
    assert proxy.sent == []


def test_loops_are_caught_statelessly() -> None:
    net, proxy = _setup(trusted={"127.0.0.1"})
    # bob's binding is the proxy itself: the request comes straight back unchanged
    proxy.register(BOB, binding(BOB, "<sip:bob@example.com>", source=""))
    net.dns["example.com"] = []
    sender = net.peer(5090, [])
    seen: list[Packet] = []

    def record(packet: Packet) -> bool:
        seen.append(packet)
        return True

    net.intercept = record
    data = (
        "MESSAGE sip:127.0.0.1:5060 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bKl1\r\nMax-Forwards: 70\r\n"
        "From: <sip:carol@elsewhere.org>;tag=c\r\nTo: <sip:x@example.com>\r\n"
        "Call-ID: l1\r\nCSeq: 1 MESSAGE\r\n\r\n"
    )
    sent = data.replace("MESSAGE sip:127.0.0.1:5060", "MESSAGE sip:x@127.0.0.1:5060")
    net.transmit(sent.encode(), ("127.0.0.1", 5090), ("127.0.0.1", 5060))
    net.step(1)
    hops = [p for p in seen if p.src[1] == 5060 and p.dst[1] == 5060]
    # sip:x@<us> with one domain is the local user x: no binding, 480, and no loop
    assert hops == [] and [r.status for r in sender.responses] == [480]


def test_the_ack_of_its_own_challenge_goes_nowhere() -> None:
    """The ACK of a 407 the proxy made names a registered user: it is still the proxy's
    own to absorb (its To tag is the one derived from the INVITE), not the callee's."""
    net, proxy = _setup()
    proxy.add_user("alice", "secret")
    callee = net.peer(5081, [200])
    _bind(proxy, 5081)
    alice = net.ua("alice", 5070, password="secret")
    call = alice.core.invite(BOB, StaticMedia(OFFER), net.now)
    alice.pump()
    net.step(1)
    assert call.state is CallState.CONFIRMED
    # the INVITE with credentials, then the ACK of the 200: no ACK of the 407
    assert callee.methods() == ["INVITE", "ACK"]
    assert "Proxy-Authorization" not in bytes(callee.requests[0]).decode()


def test_an_ack_whose_contact_looks_like_a_local_user_is_routed_by_its_route() -> None:
    """Where a domain of the proxy is also the address of the phones (127.0.0.1), the ACK
    of a 2xx (Request-URI: the callee's Contact) looks like one for a user of that
    domain; with no such user it follows its Route instead of being dropped."""
    net, proxy = _setup(domains=("example.com", "127.0.0.1"))
    callee = net.peer(5081, lambda r: [(0.0, 200)])
    _bind(proxy, 5081)
    carol = net.ua("carol", 5070, domain="elsewhere.org")
    call = carol.core.invite(BOB, StaticMedia(OFFER), net.now)
    carol.pump()
    net.step(1)
    assert call.state is CallState.CONFIRMED
    assert callee.methods() == ["INVITE", "ACK"]
    assert proxy.lookups == [BOB, "sip:peer@127.0.0.1"]  # the Contact as an AOR: none
