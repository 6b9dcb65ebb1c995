"""SUBSCRIBE/NOTIFY (RFC 6665) between user-agent cores on the fake network."""

from __future__ import annotations

from sipwire.core.client import ClientRequest
from sipwire.core.events import NotifyReceived, SubscriptionStateChanged
from sipwire.core.subscription import (
    SubscribeAnswer,
    Subscription,
    Subscriptions,
    SubState,
    install,
)
from sipwire.dialog.dialog import DialogState
from sipwire.message import Request, Response
from tests.core.uanet import Net, Node, Packet

PIDF = "application/pidf+xml"


def _setup(
    answer: SubscribeAnswer | None = None,
) -> tuple[Net, Node, Node, Subscriptions, Subscriptions]:
    net = Net()
    alice, bob = net.add("alice", 5060), net.add("bob", 5070)
    subs_a, subs_b = install(alice.core), install(bob.core)
    subs_b.serve(
        "presence", lambda _sub, _req: answer or SubscribeAnswer(body=b"open"), content_type=PIDF
    )
    return net, alice, bob, subs_a, subs_b


def _requests(node: Node, method: str) -> list[Request]:
    return [m for m in node.sent if isinstance(m, Request) and m.method == method]


def _responses(node: Node, method: str) -> list[Response]:
    return [m for m in node.sent if isinstance(m, Response) and m.cseq.method == method]


def _notified(node: Node) -> list[NotifyReceived]:
    return [e for e in node.events if isinstance(e, NotifyReceived)]


def _states(node: Node, sub: Subscription) -> list[SubState]:
    return [
        e.state
        for e in node.events
        if isinstance(e, SubscriptionStateChanged) and e.subscription is sub
    ]


def test_subscribe_notify_refresh_and_unsubscribe() -> None:
    net, alice, bob, subs_a, subs_b = _setup()
    sub = subs_a.subscribe(bob.uri, "presence", net.now, expires=120, accept=PIDF)
    alice.pump()
    net.step(0.5)
    subscribe = _requests(alice, "SUBSCRIBE")[0]
    assert subscribe.headers.get("Event") == "presence"
    assert subscribe.expires == 120 and subscribe.headers.get("Accept") == PIDF
    assert subscribe.contact and subscribe.contact[0].uri.port == 5060  # type: ignore[union-attr]
    ok = _responses(bob, "SUBSCRIBE")[0]
    assert ok.status == 200 and ok.expires == 120 and ok.contact
    # the immediate NOTIFY (§4.2.1.2) with the state the application gave
    notify = _requests(bob, "NOTIFY")[0]
    assert notify.headers.get("Subscription-State") == "active;expires=120"
    assert notify.body == b"open" and notify.headers.get("Content-Type") == PIDF
    assert [r.status for r in _responses(alice, "NOTIFY")] == [200]
    assert [e.request.body for e in _notified(alice)] == [b"open"]
    assert sub.state is SubState.ACTIVE and sub.dialog is not None
    assert _states(alice, sub) == [SubState.ACTIVE]
    (server,) = subs_b.subscriptions
    assert server.state is SubState.ACTIVE and not server.is_subscriber
    assert server.dialog is not None and server.dialog.remote_tag == sub.dialog.local_tag

    # granted 120 s at 0.02: the refresh goes 30 s early, at 90.02, inside the dialog
    net.run(90.0)
    assert len(_requests(alice, "SUBSCRIBE")) == 1
    net.run(90.5)
    refresh = _requests(alice, "SUBSCRIBE")[1]
    assert refresh.to.tag == sub.dialog.remote_tag and refresh.cseq.seq == 2
    assert refresh.expires == 120
    assert len(_requests(bob, "NOTIFY")) == 2  # every accepted SUBSCRIBE gets a NOTIFY
    assert server.expires_at is not None and server.expires_at > 200

    # a change of state
    subs_b.notify(server, b"closed", net.now)
    bob.pump()
    net.step(0.5)
    assert _notified(alice)[-1].request.body == b"closed"

    # unsubscribe: Expires 0, then the final NOTIFY ends both sides
    sub.unsubscribe(net.now)
    alice.pump()
    net.step(0.5)
    assert _requests(alice, "SUBSCRIBE")[-1].expires == 0
    final = _requests(bob, "NOTIFY")[-1]
    assert final.headers.get("Subscription-State") == "terminated;reason=timeout"
    assert sub.state is SubState.TERMINATED and server.state is SubState.TERMINATED
    assert sub.dialog.state is DialogState.TERMINATED
    assert _states(alice, sub) == [SubState.ACTIVE, SubState.TERMINATED]
    assert subs_a.subscriptions == [] and subs_b.subscriptions == []
    # no refresh after the end
    net.step(300)
    assert len(_requests(alice, "SUBSCRIBE")) == 3


def test_pending_then_active() -> None:
    net, alice, bob, subs_a, subs_b = _setup(SubscribeAnswer(status=202, state="pending"))
    sub = subs_a.subscribe(bob.uri, "presence", net.now, expires=600)
    alice.pump()
    net.step(0.5)
    assert _responses(bob, "SUBSCRIBE")[0].status == 202
    assert _requests(bob, "NOTIFY")[0].headers.get("Subscription-State") == "pending;expires=600"
    assert sub.state is SubState.PENDING
    subs_b.notify(subs_b.subscriptions[0], b"open", net.now, state="active")
    bob.pump()
    net.step(0.5)
    assert sub.state is SubState.ACTIVE
    assert _states(alice, sub) == [SubState.PENDING, SubState.ACTIVE]


def test_notifier_expiry_sends_timeout_notify() -> None:
    net, alice, bob, subs_a, subs_b = _setup()
    sub = subs_a.subscribe(bob.uri, "presence", net.now, expires=120)
    alice.pump()
    net.step(1)
    (server,) = subs_b.subscriptions
    net.intercept = lambda p: not p.data.startswith(b"SUBSCRIBE ")  # refreshes are lost
    net.run(119.9)
    assert sub.state is SubState.ACTIVE
    net.run(121)
    final = _requests(bob, "NOTIFY")[-1]
    assert final.headers.get("Subscription-State") == "terminated;reason=timeout"
    assert server.state is SubState.TERMINATED and server.reason == "timeout"
    assert sub.state is SubState.TERMINATED and sub.reason == "timeout"
    # one refresh tried at 90 s (and retransmitted)
    assert {r.cseq.seq for r in _requests(alice, "SUBSCRIBE")} == {1, 2}


def test_subscriber_expires_locally_without_notify() -> None:
    net, alice, bob, subs_a, _subs_b = _setup()
    sub = subs_a.subscribe(bob.uri, "presence", net.now, expires=120)
    alice.pump()
    net.step(1)
    net.intercept = lambda p: False  # the notifier is gone
    net.run(121)
    assert sub.state is SubState.ACTIVE  # a grace of 4*T1 for the notifier's NOTIFY
    net.run(123)
    assert sub.state is SubState.TERMINATED and sub.reason == "timeout"
    assert len(_notified(alice)) == 1
    assert subs_a.subscriptions == []


def test_notify_before_200_creates_the_dialog() -> None:
    net, alice, bob, subs_a, _subs_b = _setup()

    def hold_200(packet: Packet) -> bool:
        if packet.data.startswith(b"SIP/2.0 200") and b" SUBSCRIBE\r\n" in packet.data:
            packet.at += 0.5
        return True

    net.intercept = hold_200
    sub = subs_a.subscribe(bob.uri, "presence", net.now, expires=300)
    alice.pump()
    net.step(0.1)
    assert sub.response is None  # the 200 is still on its way
    assert sub.dialog is not None and sub.state is SubState.ACTIVE
    assert [r.status for r in _responses(alice, "NOTIFY")] == [200]
    assert sub.dialog.remote_tag == _requests(bob, "NOTIFY")[0].from_.tag
    net.step(1)
    assert sub.response is not None and sub.response.status == 200
    assert sub.forks == [sub] and subs_a.subscriptions == [sub]
    assert sub.dialog.remote_tag == sub.response.to.tag
    lines = net.first_lines()
    assert lines.index("NOTIFY sip:alice@127.0.0.1:5060 SIP/2.0") < lines.index("SIP/2.0 200 OK")


def test_forked_subscribe_gives_one_subscription_per_notifier() -> None:
    net, alice, bob, subs_a, _subs_b = _setup()
    carol = net.add("carol", 5080)
    install(carol.core).serve("presence", lambda _s, _r: SubscribeAnswer(body=b"carol"))

    def fork(packet: Packet) -> bool:
        if packet.dst[1] == 5070 and packet.data.startswith(b"SUBSCRIBE "):
            copy = Packet(packet.at, packet.seq, packet.data, packet.src, ("127.0.0.1", 5080))
            net.inflight.append(copy)
        return True

    net.intercept = fork
    sub = subs_a.subscribe(bob.uri, "presence", net.now, expires=300)
    alice.pump()
    net.step(1)
    net.intercept = None
    assert len(sub.forks) == 2 and sub in sub.forks
    assert all(s.state is SubState.ACTIVE for s in sub.forks)
    assert subs_a.subscriptions == sub.forks
    tags = {s.dialog.remote_tag for s in sub.forks if s.dialog is not None}
    assert len(tags) == 2
    bodies = sorted(e.request.body for e in _notified(alice))
    assert bodies == [b"carol", b"open"]
    assert {e.subscription for e in _notified(alice)} == set(sub.forks)
    assert [r.status for r in _responses(alice, "NOTIFY")] == [200, 200]
    for s in list(sub.forks):
        s.unsubscribe(net.now)
    alice.pump()
    net.step(1)
    assert all(s.state is SubState.TERMINATED for s in sub.forks)
    assert subs_a.subscriptions == []


def test_unknown_event_489_and_rejection() -> None:
    net, alice, bob, subs_a, subs_b = _setup()
    sub = subs_a.subscribe(bob.uri, "dialog", net.now)
    alice.pump()
    net.step(0.5)
    refused = _responses(bob, "SUBSCRIBE")[0]
    assert refused.status == 489 and refused.headers.get("Allow-Events") == "presence"
    assert sub.state is SubState.TERMINATED
    assert sub.response is not None and sub.response.status == 489
    changes = [e for e in alice.events if isinstance(e, SubscriptionStateChanged)]
    assert [(e.state, e.response.status if e.response else None) for e in changes] == [
        (SubState.TERMINATED, 489)
    ]
    subs_b.serve("reg", lambda _s, _r: SubscribeAnswer(status=403))
    other = subs_a.subscribe(bob.uri, "reg", net.now)
    alice.pump()
    net.step(0.5)
    assert other.state is SubState.TERMINATED and other.response is not None
    assert other.response.status == 403
    assert subs_b.subscriptions == [] and subs_a.subscriptions == []
    assert "NOTIFY" not in bob.sent_methods()


def test_too_brief_expiry_423_then_retry() -> None:
    net, alice, bob, subs_a, _subs_b = _setup()
    sub = subs_a.subscribe(bob.uri, "presence", net.now, expires=10)
    alice.pump()
    net.step(0.5)
    assert [r.status for r in _responses(bob, "SUBSCRIBE")] == [423, 200]
    assert _responses(bob, "SUBSCRIBE")[0].headers.get("Min-Expires") == "60"
    retry = _requests(alice, "SUBSCRIBE")[1]
    assert retry.expires == 60 and retry.cseq.seq == 2 and retry.to.tag is None
    assert sub.state is SubState.ACTIVE and sub.expires == 60


def test_notify_for_ended_subscription_gets_481() -> None:
    net, alice, bob, subs_a, subs_b = _setup()
    sub = subs_a.subscribe(bob.uri, "presence", net.now, expires=300)
    alice.pump()
    net.step(0.5)
    (server,) = subs_b.subscriptions
    sub.unsubscribe(net.now)
    alice.pump()
    net.step(0.5)
    assert server.dialog is not None
    stray = server.dialog.create_request(
        "NOTIFY", headers=[("Event", "presence"), ("Subscription-State", "active;expires=60")]
    )
    bob.core.sender.send(ClientRequest(stray, bob.core, dialog=server.dialog), net.now)
    bob.pump()
    net.step(0.5)
    assert [r.status for r in _responses(alice, "NOTIFY")] == [200, 200, 481]
    # and NOTIFYs out of any dialog are the core's 481
    bob.core.request(
        "NOTIFY",
        alice.uri,
        net.now,
        headers=[("Event", "presence"), ("Subscription-State", "active")],
    )
    bob.pump()
    net.step(0.5)
    assert _responses(alice, "NOTIFY")[-1].status == 481


def test_fetch_with_expires_0() -> None:
    net, alice, bob, subs_a, subs_b = _setup()
    sub = subs_a.subscribe(bob.uri, "presence", net.now, expires=0)
    alice.pump()
    net.step(0.5)
    assert _responses(bob, "SUBSCRIBE")[0].expires == 0
    (notify,) = _requests(bob, "NOTIFY")
    assert notify.headers.get("Subscription-State") == "terminated;reason=timeout"
    assert notify.body == b"open"
    assert [e.request.body for e in _notified(alice)] == [b"open"]
    assert sub.state is SubState.TERMINATED and sub.reason == "timeout"
    assert subs_a.subscriptions == [] and subs_b.subscriptions == []
