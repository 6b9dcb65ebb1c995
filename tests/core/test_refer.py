"""Call transfer (REFER, RFC 3515; Replaces, RFC 3891) among alice, bob and carol."""

from __future__ import annotations

from sipwire.core.events import (
    CallReplaced,
    IncomingCall,
    TransferProgress,
    TransferRequested,
)
from sipwire.core.media import StaticMedia
from sipwire.core.refer import Replaces, Transfers, install
from sipwire.core.session import CallState, InviteSession
from sipwire.core.sipfrag import parse_status_line, status_line
from sipwire.message import Request, Response
from tests.core.uanet import OFFER, Net, Node, target_of


def _trio() -> tuple[Net, Node, Node, Node, Transfers, Transfers, Transfers]:
    net = Net()
    alice, bob, carol = net.add("alice", 5060), net.add("bob", 5070), net.add("carol", 5080)
    return net, alice, bob, carol, install(alice.core), install(bob.core), install(carol.core)


def _incoming(node: Node) -> InviteSession:
    calls = [e for e in node.events if isinstance(e, IncomingCall)]
    assert calls, "no incoming call"
    return calls[-1].session


def _call(net: Net, caller: Node, callee: Node) -> tuple[InviteSession, InviteSession]:
    uac = caller.core.invite(callee.uri, StaticMedia(OFFER), net.now)
    caller.pump()
    net.step(0.1)
    uas = _incoming(callee)
    uas.answer(net.now)
    callee.pump()
    net.step(0.1)
    assert uac.state is CallState.CONFIRMED and uas.state is CallState.CONFIRMED
    return uac, uas


def _requests(node: Node, method: str) -> list[Request]:
    return [m for m in node.sent if isinstance(m, Request) and m.method == method]


def _responses(node: Node, method: str) -> list[Response]:
    return [m for m in node.sent if isinstance(m, Response) and m.cseq.method == method]


def _progress(node: Node) -> list[tuple[int, bool]]:
    return [(e.status, e.done) for e in node.events if isinstance(e, TransferProgress)]


def test_sipfrag_and_replaces_syntax() -> None:
    assert status_line(100) == b"SIP/2.0 100 Trying\r\n"
    assert parse_status_line(b"SIP/2.0 486 Busy Here\r\nVia: x\r\n") == (486, "Busy Here")
    assert parse_status_line(b"garbage") is None
    rep = Replaces.parse("abc@host;from-tag=f1;to-tag=t1;early-only")
    assert rep == Replaces("abc@host", "t1", "f1", early_only=True)
    assert str(rep) == "abc@host;to-tag=t1;from-tag=f1;early-only"


def test_blind_transfer() -> None:
    net, alice, bob, carol, _ta, tb, _tc = _trio()
    caller, callee = _call(net, alice, bob)
    transfer = tb.transfer(callee, carol.uri, net.now)
    bob.pump()
    net.step(0.2)
    refer = _requests(bob, "REFER")[0]
    assert refer.refer_to is not None and str(refer.refer_to.uri) == carol.uri
    assert refer.headers.get("Referred-By") == "<sip:bob@127.0.0.1:5070>" and refer.contact
    assert [r.status for r in _responses(alice, "REFER")] == [202]
    (asked,) = [e for e in alice.events if isinstance(e, TransferRequested)]
    assert asked.session is caller and asked.replaces is None
    new_call = asked.transfer.call
    assert new_call is not None and new_call.state is not CallState.TERMINATED
    invite = _requests(alice, "INVITE")[-1]
    assert str(invite.uri) == carol.uri
    assert invite.headers.get("Referred-By") == "<sip:bob@127.0.0.1:5070>"
    # carol answers the transferred call
    _incoming(carol).answer(net.now)
    carol.pump()
    net.step(0.5)
    assert new_call.state is CallState.CONFIRMED
    notifies = _requests(alice, "NOTIFY")
    assert [n.body for n in notifies] == [b"SIP/2.0 100 Trying\r\n", b"SIP/2.0 200 OK\r\n"]
    assert {n.headers.get("Event") for n in notifies} == {f"refer;id={refer.cseq.seq}"}
    assert notifies[0].headers.get("Content-Type") == "message/sipfrag;version=2.0"
    assert notifies[0].headers.get("Subscription-State") == "active;expires=60"
    assert notifies[1].headers.get("Subscription-State") == "terminated;reason=noresource"
    assert _progress(bob) == [(100, False), (200, True)]
    assert transfer.done and transfer.status == 200 and tb.outgoing == []
    # alice hangs up on bob once carol answered
    assert "BYE" in alice.sent_methods()
    assert caller.state is CallState.TERMINATED and callee.state is CallState.TERMINATED
    assert callee.end_reason == "BYE received"


def test_transfer_target_busy_keeps_the_call() -> None:
    net, alice, bob, carol, _ta, tb, _tc = _trio()
    caller, callee = _call(net, alice, bob)
    transfer = tb.transfer(callee, carol.uri, net.now)
    bob.pump()
    net.step(0.2)
    _incoming(carol).reject(net.now, 486)
    carol.pump()
    net.step(0.5)
    assert _progress(bob) == [(100, False), (486, True)]
    assert transfer.done and transfer.reason == "Busy Here"
    assert caller.state is CallState.CONFIRMED and callee.state is CallState.CONFIRMED


def test_norefersub_suppresses_the_notifies() -> None:
    net, alice, bob, carol, _ta, tb, _tc = _trio()
    _caller, callee = _call(net, alice, bob)
    tb.transfer(callee, carol.uri, net.now, norefersub=True)
    bob.pump()
    net.step(0.2)
    (accepted,) = _responses(alice, "REFER")
    assert accepted.status == 202 and accepted.headers.get("Refer-Sub") == "false"
    assert _progress(bob) == [(202, True)]
    assert _requests(alice, "INVITE")[-1].uri == _incoming(carol).request.uri
    _incoming(carol).answer(net.now)
    carol.pump()
    net.step(0.5)
    assert _requests(alice, "NOTIFY") == []


def test_attended_transfer_replaces_the_consultation_call() -> None:
    net, alice, bob, carol, _ta, tb, _tc = _trio()
    a_to_b, b_from_a = _call(net, alice, bob)  # the call to transfer
    b_to_c, c_from_b = _call(net, bob, carol)  # bob's consultation call with carol
    assert b_to_c.dialog is not None and c_from_b.dialog is not None
    transfer = tb.attended_transfer(b_from_a, b_to_c, net.now)
    bob.pump()
    net.step(1)
    refer_to = _requests(bob, "REFER")[0].headers.get("Refer-To") or ""
    escaped = (
        f"?Replaces={b_to_c.call_id}%3Bto-tag%3D{c_from_b.local_tag}"
        f"%3Bfrom-tag%3D{b_to_c.local_tag}>"
    )
    assert refer_to.startswith("<sip:carol@127.0.0.1:5080") and refer_to.endswith(escaped)
    (asked,) = [e for e in alice.events if isinstance(e, TransferRequested)]
    assert asked.replaces == Replaces(b_to_c.call_id, c_from_b.local_tag, b_to_c.local_tag)
    invite = _requests(alice, "INVITE")[-1]
    assert invite.headers.get("Replaces") == str(asked.replaces)
    assert invite.uri.headers == []  # type: ignore[union-attr]
    # carol took the new call without ringing, and ended the consultation call
    (replaced,) = [e for e in carol.events if isinstance(e, CallReplaced)]
    assert replaced.old is c_from_b and replaced.new.state is CallState.CONFIRMED
    assert c_from_b.state is CallState.TERMINATED and "BYE" in carol.sent_methods()
    assert b_to_c.state is CallState.TERMINATED and b_to_c.end_reason == "BYE received"
    new_call = asked.transfer.call
    assert new_call is not None and new_call.state is CallState.CONFIRMED
    assert new_call.dialog is not None and replaced.new.dialog is not None
    assert new_call.dialog.remote_tag == replaced.new.dialog.local_tag
    # the REFER's subscription reported success; alice left bob
    assert _progress(bob) == [(100, False), (200, True)] and transfer.done
    assert a_to_b.state is CallState.TERMINATED and b_from_a.state is CallState.TERMINATED


def test_replaces_without_matching_dialog_481_and_early_only_486() -> None:
    net, alice, bob, carol, _ta, _tb, _tc = _trio()
    bogus = alice.core.invite(
        carol.uri,
        StaticMedia(OFFER),
        net.now,
        headers=[("Replaces", "nope@x;to-tag=a;from-tag=b")],
    )
    alice.pump()
    net.step(0.5)
    assert bogus.state is CallState.TERMINATED and bogus.end_status == 481
    assert not [e for e in carol.events if isinstance(e, IncomingCall)]
    # a confirmed dialog may not be replaced when the INVITE says early-only
    _caller, callee = _call(net, alice, bob)
    assert callee.dialog is not None
    rep = Replaces(callee.call_id, callee.dialog.local_tag, callee.dialog.remote_tag, True)
    late = carol.core.invite(bob.uri, StaticMedia(OFFER), net.now, headers=[("Replaces", str(rep))])
    carol.pump()
    net.step(0.5)
    assert late.end_status == 486 and callee.state is CallState.CONFIRMED
    # once the call is over it cannot be replaced either: 603
    callee.bye(net.now)
    bob.pump()
    net.step(0.5)
    ended = Replaces(callee.call_id, callee.dialog.local_tag, callee.dialog.remote_tag)
    gone = carol.core.invite(
        bob.uri, StaticMedia(OFFER), net.now, headers=[("Replaces", str(ended))]
    )
    carol.pump()
    net.step(0.5)
    assert gone.end_status == 603


def test_refer_and_notify_without_a_matching_dialog_get_481() -> None:
    net, alice, bob, carol, _ta, _tb, _tc = _trio()
    caller, _callee = _call(net, alice, bob)
    assert caller.dialog is not None
    # a REFER for a dialog alice does not know
    stray = caller.dialog.create_request("REFER", headers=[("Refer-To", f"<{carol.uri}>")])
    stray.headers.set("To", str(caller.dialog.remote_uri.with_tag("nope")))
    stray.headers.prepend("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKstray")
    alice.layer.send_request(stray, target_of(bob), net.now)
    alice.pump()
    net.step(0.5)
    assert [r.status for r in _responses(bob, "REFER")] == [481]
    # a NOTIFY for a refer subscription bob never asked for
    caller.send_in_dialog(
        "NOTIFY",
        net.now,
        headers=[("Event", "refer;id=99"), ("Subscription-State", "active;expires=60")],
        body=status_line(100),
        content_type="message/sipfrag;version=2.0",
    )
    alice.pump()
    net.step(0.5)
    assert [r.status for r in _responses(bob, "NOTIFY")] == [481]
    assert _progress(bob) == []


def test_transferee_may_decline() -> None:
    net = Net()
    alice, bob, carol = net.add("alice", 5060), net.add("bob", 5070), net.add("carol", 5080)
    ta, tb = install(alice.core, auto_accept=False), install(bob.core)
    caller, callee = _call(net, alice, bob)
    tb.transfer(callee, carol.uri, net.now)
    bob.pump()
    net.step(0.2)
    (asked,) = [e for e in alice.events if isinstance(e, TransferRequested)]
    assert asked.transfer.call is None and not carol.received
    ta.decline(asked.transfer, net.now)
    alice.pump()
    net.step(0.2)
    assert _progress(bob) == [(100, False), (603, True)]
    assert caller.state is CallState.CONFIRMED and callee.state is CallState.CONFIRMED
