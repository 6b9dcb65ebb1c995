"""INVITE sessions between two user-agent cores on a fake network and a manual clock."""

from __future__ import annotations

from typing import Any

from sipwire.core.events import (
    CallStateChanged,
    IncomingCall,
    InDialogRequest,
    MediaChanged,
    RequestCompleted,
)
from sipwire.core.media import StaticMedia
from sipwire.core.session import CallState, InviteSession
from sipwire.message import Request, Response
from tests.core.uanet import ANSWER, OFFER, Net, Node, Packet


def _pair(**config: Any) -> tuple[Net, Node, Node]:
    net = Net()
    alice = net.add("alice", 5060, **config)
    bob = net.add("bob", 5070, **config)
    return net, alice, bob


def _incoming(node: Node) -> InviteSession:
    calls = node.events_of(IncomingCall)
    assert calls, "no incoming call"
    event = calls[-1]
    assert isinstance(event, IncomingCall)
    return event.session


def _states(node: Node) -> list[CallState]:
    return [e.state for e in node.events if isinstance(e, CallStateChanged)]


def _ringing(net: Net, alice: Node, bob: Node) -> tuple[InviteSession, InviteSession]:
    """alice INVITEs bob, bob rings: both sessions in the early state."""
    caller = alice.core.invite(bob.uri, StaticMedia(OFFER), net.now)
    alice.pump()
    net.step(0.1)
    callee = _incoming(bob)
    callee.ring(net.now)
    bob.pump()
    net.step(0.1)
    return caller, callee


def _call(net: Net, alice: Node, bob: Node) -> tuple[InviteSession, InviteSession]:
    caller, callee = _ringing(net, alice, bob)
    callee.answer(net.now)
    bob.pump()
    net.step(0.1)
    return caller, callee


def test_basic_call_offer_answer_and_bye() -> None:
    net, alice, bob = _pair()
    caller, callee = _call(net, alice, bob)
    assert caller.state is CallState.CONFIRMED
    assert callee.state is CallState.CONFIRMED
    assert _states(alice) == [CallState.EARLY, CallState.CONFIRMED]
    assert _states(bob) == [CallState.EARLY, CallState.ACCEPTED, CallState.CONFIRMED]
    # offer in the INVITE, answer in the 200
    assert bob.media[0].remote == OFFER
    assert isinstance(caller.media, StaticMedia) and caller.media.remote == ANSWER
    assert alice.events_of(MediaChanged) and bob.events_of(MediaChanged)
    # the dialog ids mirror each other
    assert caller.dialog is not None and callee.dialog is not None
    assert caller.dialog.local_tag == callee.dialog.remote_tag
    assert caller.dialog.remote_tag == callee.dialog.local_tag
    assert caller.dialog.remote_target.port == 5070  # type: ignore[union-attr]
    # the 2xx was ACKed once and not retransmitted
    assert alice.sent_methods().count("ACK") == 1
    assert bob.sent_methods().count("200") == 1
    caller.bye(net.now)
    alice.pump()
    net.step(1)
    assert callee.state is CallState.TERMINATED and callee.end_reason == "BYE received"
    assert caller.state is CallState.TERMINATED
    done = [e for e in alice.events if isinstance(e, RequestCompleted)]
    assert [(e.request.method, e.response.status) for e in done] == [("BYE", 200)]


def test_uas_retransmits_2xx_until_ack_then_byes_a_verified_peer() -> None:
    net, alice, bob = _pair()
    # drop every ACK: bob retransmits the 200 at T1, 2T1 ... T2, then BYEs at 64*T1
    net.intercept = lambda p: not p.data.startswith(b"ACK ")
    caller, callee = _call(net, alice, bob)
    # alice's INFO carries bob's tag: bob's 2xx did reach alice's address.
    caller.send_in_dialog("INFO", net.now)
    alice.pump()
    net.step(40)
    oks = [m for m in bob.sent if isinstance(m, Response) and m.status == 200]
    invite_oks = [m for m in oks if m.cseq.method == "INVITE"]
    assert len(invite_oks) == 11  # 0, .5, 1.5, 3.5, 7.5, 11.5 ... 31.5
    assert "BYE" in bob.sent_methods()
    assert callee.state is CallState.TERMINATED
    assert caller.state is CallState.TERMINATED  # alice got the BYE


def test_2xx_never_acked_by_an_unverified_peer_ends_without_bye() -> None:
    """Over UDP the INVITE's source may be forged: without any sign that the peer
    receives what we send (ACK, a request with our tag), no BYE goes to it."""
    net, alice, bob = _pair()
    net.intercept = lambda p: not p.data.startswith(b"ACK ")
    _caller, callee = _call(net, alice, bob)
    net.step(40)
    invite_oks = [
        m
        for m in bob.sent
        if isinstance(m, Response) and m.status == 200 and m.cseq.method == "INVITE"
    ]
    assert len(invite_oks) == 11
    assert "BYE" not in bob.sent_methods()
    assert callee.state is CallState.TERMINATED
    assert callee.end_status == 408 and callee.end_reason == "no ACK"
    assert bob.core.sessions == []


def test_reinvite_hold_and_resume() -> None:
    net, alice, bob = _pair()
    caller, callee = _call(net, alice, bob)
    caller.hold(net.now)
    alice.pump()
    net.step(1)
    assert isinstance(caller.media, StaticMedia) and caller.media.on_hold
    done = [e for e in alice.events if isinstance(e, RequestCompleted)]
    assert [(e.request.method, e.response.status) for e in done] == [("INVITE", 200)]
    assert alice.sent_methods().count("ACK") == 2
    assert bob.media[0].remote == OFFER  # the re-offer reached bob
    assert caller.dialog is not None and caller.dialog.local_seq == 2
    callee.resume(net.now)
    bob.pump()
    net.step(1)
    assert callee.dialog is not None and callee.dialog.local_seq == 1
    assert caller.dialog.remote_seq == 1
    assert caller.state is CallState.CONFIRMED and callee.state is CallState.CONFIRMED


def test_reinvite_glare_491_and_retry_after_random_wait() -> None:
    net, alice, bob = _pair()
    caller, callee = _call(net, alice, bob)
    alice.core.ids.randoms = [0.5]  # type: ignore[attr-defined]
    bob.core.ids.randoms = [0.5, 0.5]  # type: ignore[attr-defined]
    start = net.now
    caller.reinvite(net.now)
    callee.reinvite(net.now)
    alice.pump()
    bob.pump()
    net.step(0.05)
    finals = [
        m.status
        for m in alice.sent + bob.sent
        if isinstance(m, Response) and m.cseq.method == "INVITE" and m.status >= 200
    ]
    assert finals.count(491) == 2
    # alice owns the Call-ID: 2.1 + 1.9*0.5 = 3.05 s; bob waits 2*0.5 = 1 s
    net.run(start + 0.9)
    assert bob.sent_methods().count("INVITE") == 1
    net.run(start + 1.2)
    assert bob.sent_methods().count("INVITE") == 2
    net.run(start + 3.0)
    assert alice.sent_methods().count("INVITE") == 2
    net.run(start + 4.0)
    assert alice.sent_methods().count("INVITE") == 3
    alice_done = [e.response.status for e in alice.events if isinstance(e, RequestCompleted)]
    bob_done = [e.response.status for e in bob.events if isinstance(e, RequestCompleted)]
    assert alice_done == [200] and bob_done == [200]
    assert caller.state is CallState.CONFIRMED and callee.state is CallState.CONFIRMED


def test_cancel_before_answer() -> None:
    net, alice, bob = _pair()
    caller, callee = _ringing(net, alice, bob)
    caller.cancel(net.now)
    alice.pump()
    net.step(1)
    assert callee.state is CallState.TERMINATED and callee.end_status == 487
    assert caller.state is CallState.TERMINATED and caller.end_status == 487
    assert "CANCEL" in alice.sent_methods() and "ACK" in alice.sent_methods()


def test_cancel_before_any_provisional_waits_for_one() -> None:
    net, alice, bob = _pair()
    # hold back every response from bob for a while: no 100 or 180 reaches alice
    net.intercept = lambda p: not (p.src[1] == 5070 and p.at < 0.3)
    caller = alice.core.invite(bob.uri, StaticMedia(OFFER), net.now)
    alice.pump()
    caller.cancel(net.now)
    alice.pump()
    assert "CANCEL" not in alice.sent_methods()  # §9.1: not before a provisional
    net.step(0.1)
    callee = _incoming(bob)
    net.intercept = None
    callee.ring(net.now)
    bob.pump()
    net.step(1)
    assert "CANCEL" in alice.sent_methods()
    assert caller.state is CallState.TERMINATED and callee.end_status == 487


def test_cancel_crossing_200_acks_then_byes() -> None:
    net, alice, bob = _pair()
    caller, callee = _ringing(net, alice, bob)
    # both act at the same instant: the 200 and the CANCEL cross on the wire
    callee.answer(net.now)
    caller.cancel(net.now)
    bob.pump()
    alice.pump()
    net.step(2)
    methods = alice.sent_methods()
    assert methods.index("CANCEL") < methods.index("ACK") < methods.index("BYE")
    assert caller.state is CallState.TERMINATED and caller.end_status == 487
    assert callee.state is CallState.TERMINATED and callee.end_reason == "BYE received"


def test_forked_2xx_acked_and_byed() -> None:
    """Two UAS answer the same INVITE (as behind a forking proxy): the first wins."""
    net, alice, bob = _pair()
    carol = net.add("carol", 5080)

    # A "forking proxy" in the network: copy alice's INVITE to carol too.
    def fork(packet: Packet) -> bool:
        if packet.dst[1] == 5070 and packet.data.startswith(b"INVITE "):
            net.inflight.append(
                Packet(packet.at, packet.seq, packet.data, packet.src, ("127.0.0.1", 5080))
            )
        return True

    net.intercept = fork
    caller = alice.core.invite(bob.uri, StaticMedia(OFFER), net.now)
    alice.pump()
    net.step(0.1)
    net.intercept = None
    b, c = _incoming(bob), _incoming(carol)
    b.ring(net.now)
    c.ring(net.now)
    bob.pump()
    carol.pump()
    net.step(0.1)
    assert len(caller.early) == 2  # one early dialog per fork
    b.answer(net.now)
    bob.pump()
    net.step(0.05)
    c.answer(net.now)
    carol.pump()
    net.step(2)
    assert caller.state is CallState.CONFIRMED
    assert caller.dialog is not None and caller.dialog.remote_tag == b.local_tag
    assert b.state is CallState.CONFIRMED
    assert c.state is CallState.TERMINATED and c.end_reason == "BYE received"
    assert alice.sent_methods().count("ACK") == 2
    assert alice.sent_methods().count("BYE") == 1


def test_prack_for_reliable_provisional() -> None:
    net, alice, bob = _pair(reliable_provisional=True)
    caller = alice.core.invite(bob.uri, StaticMedia(OFFER), net.now)
    alice.pump()
    net.step(0.1)
    callee = _incoming(bob)
    callee.ring(net.now)
    bob.pump()
    callee.answer(net.now)  # must wait for the PRACK (RFC 3262 §3)
    bob.pump()
    assert "200" not in bob.sent_methods()
    net.step(0.5)
    ringing = [m for m in bob.sent if isinstance(m, Response) and m.status == 180]
    assert ringing and ringing[0].rseq is not None and "100rel" in ringing[0].require
    assert ringing[0].body == ANSWER  # the answer went in the reliable 18x
    assert alice.sent_methods().count("PRACK") == 1
    assert caller.state is CallState.CONFIRMED and callee.state is CallState.CONFIRMED
    assert len(ringing) == 1  # PRACK arrived before T1: no retransmission


def test_reliable_provisional_retransmitted_until_prack() -> None:
    net, alice, bob = _pair(reliable_provisional=True)
    drop = {"n": 0}

    def lose_first_two_prack(packet: Packet) -> bool:
        if packet.data.startswith(b"PRACK ") and drop["n"] < 2:
            drop["n"] += 1
            return False
        return True

    net.intercept = lose_first_two_prack
    caller = alice.core.invite(bob.uri, StaticMedia(OFFER), net.now)
    alice.pump()
    net.step(0.1)
    callee = _incoming(bob)
    callee.ring(net.now)
    bob.pump()
    net.step(5)
    ringing = [m for m in bob.sent if isinstance(m, Response) and m.status == 180]
    # 18x at 0, T1: the PRACK for the first is lost; the retransmission is not PRACKed again
    # (same RSeq), so alice's PRACK retransmits through its own transaction instead.
    assert len(ringing) >= 2
    assert len({m.rseq for m in ringing}) == 1
    assert callee.reliable_unacked() is False
    assert caller.state is CallState.EARLY


def test_session_timer_refresh_and_expiry() -> None:
    net, alice, bob = _pair(session_expires=120, min_se=90)
    caller, callee = _call(net, alice, bob)
    # alice supports timer: bob makes her the refresher (refresher=uac)
    assert caller.session_interval == 120 and caller.we_refresh
    assert callee.session_interval == 120 and not callee.we_refresh
    net.step(61)  # refresh at 60 s, with UPDATE (bob allows it)
    assert alice.sent_methods().count("UPDATE") == 1
    net.step(61)
    assert alice.sent_methods().count("UPDATE") == 2
    assert callee.state is CallState.CONFIRMED
    # now alice stops refreshing: bob BYEs at 120 - 32 = 88 s after the last refresh
    net.intercept = lambda p: not p.data.startswith(b"UPDATE ")
    net.step(100)
    assert "BYE" in bob.sent_methods()
    assert callee.state is CallState.TERMINATED and caller.state is CallState.TERMINATED


def test_session_interval_too_small_422_then_retry() -> None:
    net = Net()
    alice = net.add("alice", 5060, session_expires=60, min_se=30)
    bob = net.add("bob", 5070, min_se=90)
    caller = alice.core.invite(bob.uri, StaticMedia(OFFER), net.now)
    alice.pump()
    net.step(0.1)
    assert "422" in bob.sent_methods()
    callee = _incoming(bob)
    callee.answer(net.now)
    bob.pump()
    net.step(0.5)
    assert caller.state is CallState.CONFIRMED
    invites = [m for m in alice.sent if isinstance(m, Request) and m.method == "INVITE"]
    assert invites[-1].headers.get("Session-Expires") == "90"
    assert invites[-1].cseq.seq == 2


def test_info_and_message_inside_dialog() -> None:
    net, alice, bob = _pair()
    caller, _callee = _call(net, alice, bob)
    caller.send_in_dialog(
        "INFO", net.now, body=b"Signal=5\r\n", content_type="application/dtmf-relay"
    )
    alice.pump()
    net.step(0.5)
    got = [e for e in bob.events if isinstance(e, InDialogRequest)]
    assert [e.request.method for e in got] == ["INFO"]
    assert got[0].request.body == b"Signal=5\r\n"


def test_unknown_dialog_gets_481_and_lower_cseq_500() -> None:
    net, alice, bob = _pair()
    caller, _callee = _call(net, alice, bob)
    assert caller.dialog is not None
    stray = caller.dialog.create_request("INFO")
    stray.headers.set("To", str(caller.dialog.remote_uri.with_tag("nope")))
    stray.headers.prepend("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKstray")
    alice.layer.send_request(stray, bob_target(bob), net.now)
    alice.pump()
    net.step(0.5)
    assert "481" in bob.sent_methods()
    old = caller.dialog.create_request("INFO", seq=1)
    old.headers.prepend("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKold")
    alice.layer.send_request(old, bob_target(bob), net.now)
    alice.pump()
    net.step(0.5)
    assert "500" in bob.sent_methods()


def bob_target(bob: Node):  # type: ignore[no-untyped-def]
    from tests.core.uanet import target_of

    return target_of(bob)


def test_early_media_answer_in_183_repeated_in_200() -> None:
    net, alice, bob = _pair()
    caller = alice.core.invite(bob.uri, StaticMedia(OFFER), net.now)
    alice.pump()
    net.step(0.1)
    callee = _incoming(bob)
    callee.ring(net.now, status=183, early_media=True)
    bob.pump()
    net.step(0.1)
    progress = [m for m in bob.sent if isinstance(m, Response) and m.status == 183]
    assert progress and progress[0].body == ANSWER
    assert caller.state is CallState.EARLY
    assert isinstance(caller.media, StaticMedia) and caller.media.remote == ANSWER
    assert not caller.oa_pending_local  # the answer arrived with the 183
    callee.answer(net.now)
    bob.pump()
    net.step(0.5)
    ok = next(m for m in bob.sent if isinstance(m, Response) and m.status == 200)
    assert ok.body == ANSWER  # the 2xx repeats the unreliable 18x's answer
    assert caller.state is CallState.CONFIRMED and callee.state is CallState.CONFIRMED


def test_reason_header_on_cancel_and_bye() -> None:
    net, alice, bob = _pair()
    caller, callee = _ringing(net, alice, bob)
    caller.hangup(net.now, reason='SIP;cause=200;text="Call completed elsewhere"')
    alice.pump()
    net.step(0.5)
    assert callee.state is CallState.TERMINATED
    assert [(r.protocol, r.cause) for r in callee.remote_reasons] == [("SIP", 200)]
    caller, callee = _call(net, alice, bob)
    callee.hangup(net.now, reason='Q.850;cause=16;text="Normal call clearing"')
    bob.pump()
    net.step(0.5)
    assert caller.state is CallState.TERMINATED
    assert [(r.protocol, r.cause) for r in caller.remote_reasons] == [("Q.850", 16)]


def test_session_refresh_with_reinvite_when_update_not_allowed() -> None:
    from sipwire.core.config import ALLOW

    net = Net()
    no_update = tuple(m for m in ALLOW if m != "UPDATE")
    alice = net.add("alice", 5060, session_expires=100, min_se=90)
    bob = net.add("bob", 5070, session_expires=100, min_se=90, allow=no_update)
    caller, callee = _call(net, alice, bob)
    assert caller.we_refresh and "UPDATE" not in caller.peer_allow
    net.step(51)  # refresh at interval / 2 with a re-INVITE carrying the same offer
    invites = [m for m in alice.sent if isinstance(m, Request) and m.method == "INVITE"]
    assert len(invites) == 2 and invites[1].to.tag is not None
    assert invites[1].headers.get("Session-Expires") == "100;refresher=uac"
    assert alice.sent_methods().count("ACK") == 2
    assert callee.state is CallState.CONFIRMED and caller.state is CallState.CONFIRMED


def test_481_to_reinvite_ends_the_call() -> None:
    net, alice, bob = _pair()
    caller, callee = _call(net, alice, bob)
    assert callee.dialog is not None
    bob.core.unbind_dialog(callee.dialog)  # bob forgets the dialog: he will answer 481
    caller.reinvite(net.now)
    alice.pump()
    net.step(1)
    assert "481" in bob.sent_methods()
    assert caller.state is CallState.TERMINATED and caller.end_status == 481
