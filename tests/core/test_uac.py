"""The UAC core on a fake network: digest retries, REGISTER, 3xx, RFC 3263 failover."""

from __future__ import annotations

from sipwire.auth.digest import DigestAccount, DigestClient
from sipwire.auth.server import make_challenge, verify
from sipwire.core.events import (
    CallStateChanged,
    IncomingCall,
    RegistrationChanged,
    RequestCompleted,
)
from sipwire.core.media import StaticMedia
from sipwire.core.register import RegistrationState
from sipwire.core.session import CallState
from sipwire.message import Request, Response
from sipwire.transport.address import Target
from tests.core.uanet import OFFER, Net

REALM = "sipwire.test"


def _client(user: str = "1001", password: str = "secret") -> DigestClient:
    counter = iter(range(1, 1000))
    return DigestClient([DigestAccount(user, password)], lambda: f"cn{next(counter)}")


def _registrar(
    *, password: str = "secret", min_expires: int = 0, grant: int | None = None
) -> tuple[list[str], object]:
    """A registrar handler: 401 without (valid) credentials, 423 below min_expires."""
    nonces: list[str] = []

    def handle(request: Request) -> list[Response]:
        if request.method != "REGISTER":
            return [request.reply(405, to_tag="reg")]
        creds = request.authorization
        if not creds or not verify(creds[0], method="REGISTER", password=password):
            nonces.append(f"n{len(nonces) + 1}")
            challenge = make_challenge(REALM, nonces[-1], qop="auth")
            return [request.reply(401, headers=[("WWW-Authenticate", challenge)], to_tag="reg")]
        expires = request.expires if request.expires is not None else 3600
        if 0 < expires < min_expires:
            return [request.reply(423, headers=[("Min-Expires", str(min_expires))], to_tag="reg")]
        granted = min(expires, grant) if grant is not None else expires
        contact = request.headers.get("Contact") or ""
        headers = [] if expires == 0 else [("Contact", f"{contact};expires={granted}")]
        return [request.reply(200, headers=headers, to_tag="reg")]

    return nonces, handle


def test_register_with_auth_username_differing_from_aor_and_refresh() -> None:
    net = Net()
    alice = net.add("alice", 5060, auth=_client("1001"))
    _, handler = _registrar(grant=120)
    registrar = net.script(5090, handler)  # type: ignore[arg-type]
    registration = alice.core.register("sip:127.0.0.1:5090", net.now, expires=3600)
    alice.pump()
    net.step(1)
    assert registration.state is RegistrationState.REGISTERED
    assert registration.granted == 120
    first = registrar.requests[1]
    assert first.authorization[0].params["username"] == "1001"
    assert first.from_.uri.user == "alice"  # type: ignore[union-attr]
    assert [r.cseq.seq for r in registrar.requests] == [1, 2]
    assert len({r.call_id for r in registrar.requests}) == 1
    # refresh 30 s before expiry, with the cached credentials (no new 401)
    net.run(89)
    assert len(registrar.requests) == 2
    net.run(91)
    assert len(registrar.requests) == 3
    assert registrar.requests[2].cseq.seq == 3 and registrar.requests[2].authorization
    assert registration.state is RegistrationState.REGISTERED
    changes = [e for e in alice.events if isinstance(e, RegistrationChanged)]
    assert [e.response.status for e in changes if e.response] == [200, 200]


def test_register_423_retries_with_min_expires_then_unregisters() -> None:
    net = Net()
    alice = net.add("alice", 5060, auth=_client())
    _, handler = _registrar(min_expires=1800)
    registrar = net.script(5090, handler)  # type: ignore[arg-type]
    registration = alice.core.register("sip:127.0.0.1:5090", net.now, expires=60)
    alice.pump()
    net.step(1)
    assert registration.state is RegistrationState.REGISTERED
    assert registration.expires == 1800 and registration.granted == 1800
    assert [r.expires for r in registrar.requests][-1] == 1800
    registration.unregister(net.now)
    alice.pump()
    net.step(1)
    assert registration.state is RegistrationState.UNREGISTERED
    assert registrar.requests[-1].expires == 0
    assert registrar.requests[-1].headers.get("Contact") == registrar.requests[1].headers.get(
        "Contact"
    )


def test_wrong_password_gives_up_after_one_retry() -> None:
    net = Net()
    alice = net.add("alice", 5060, auth=_client(password="wrong"))
    nonces, handler = _registrar()
    registrar = net.script(5090, handler)  # type: ignore[arg-type]
    registration = alice.core.register("sip:127.0.0.1:5090", net.now)
    alice.pump()
    net.step(1)
    assert registration.state is RegistrationState.FAILED
    assert registration.last_response is not None and registration.last_response.status == 401
    assert registrar.methods() == ["REGISTER", "REGISTER"] and len(nonces) == 2


def test_invite_challenged_by_proxy_407() -> None:
    net = Net()
    alice = net.add("alice", 5060, auth=_client())
    bob = net.add("bob", 5070)
    seen: list[Request] = []

    def proxy(request: Request) -> list[Response]:
        seen.append(request)
        if request.method == "INVITE" and not request.proxy_authorization:
            challenge = make_challenge("proxy.test", "pn1", algorithm="SHA-256")
            return [request.reply(407, headers=[("Proxy-Authenticate", challenge)], to_tag="px")]
        return [request.reply(503, to_tag="px")]

    net.script(5090, proxy)
    # the 407 comes from the first target; the retry goes to the same target: here bob,
    # reached directly (a stand-in for the proxy relaying the authorized INVITE)
    net.dns["example.test"] = [Target("udp", "127.0.0.1", 5090), Target("udp", "127.0.0.1", 5070)]
    session = alice.core.invite("sip:bob@example.test", StaticMedia(OFFER), net.now)
    alice.pump()
    net.step(1)
    assert seen[0].method == "INVITE"
    ack = seen[1]
    assert ack.method == "ACK" and ack.cseq.seq == 1  # the 407 is ACKed by the transaction
    retry = seen[2]
    assert retry.cseq.seq == 2
    creds = retry.proxy_authorization[0]
    assert creds.params["algorithm"] == "SHA-256" and creds.params["username"] == "1001"
    # the proxy answers the authorized INVITE with 503: failover to bob
    net.step(1)
    assert bob.events_of(IncomingCall), "no failover to bob after the proxy's 503"
    assert session.state is CallState.PROCEEDING  # bob's 100 Trying
    assert bob.received and isinstance(bob.received[0], Request)
    assert bob.received[0].proxy_authorization  # credentials stay on the retried request


def test_3xx_redirect_to_contact() -> None:
    net = Net()
    alice = net.add("alice", 5060)
    bob = net.add("bob", 5070)

    def redirect(request: Request) -> list[Response]:
        if request.method == "ACK":
            return []
        moved = [("Contact", "<sip:bob@127.0.0.1:5070>;q=0.9")]
        return [request.reply(302, headers=moved, to_tag="rd")]

    net.script(5090, redirect)
    session = alice.core.invite("sip:old@127.0.0.1:5090", StaticMedia(OFFER), net.now)
    alice.pump()
    net.step(0.5)
    incoming = bob.events
    assert incoming, "the INVITE was not redirected to bob"
    call = bob.core.sessions[0]
    call.answer(net.now)
    bob.pump()
    net.step(1)
    assert session.state is CallState.CONFIRMED
    assert str(session.invite.request.uri) == "sip:bob@127.0.0.1:5070"  # type: ignore[union-attr]
    assert session.invite.request.cseq.seq == 2  # type: ignore[union-attr]


def test_503_and_timeout_fail_over_to_next_target() -> None:
    net = Net()
    alice = net.add("alice", 5060)
    bob = net.add("bob", 5070)
    failing = net.script(5090, lambda r: [] if r.method == "ACK" else [r.reply(503, to_tag="x")])
    # 5091 answers nothing at all: Timer F (32 s) sends the request on
    net.dns["example.test"] = [
        Target("udp", "127.0.0.1", 5091),
        Target("udp", "127.0.0.1", 5090),
        Target("udp", "127.0.0.1", 5070),
    ]
    creq = alice.core.request("OPTIONS", "sip:bob@example.test", net.now)
    alice.pump()
    net.step(31)
    assert creq.final is None
    net.step(2)
    done = [e for e in alice.events if isinstance(e, RequestCompleted)]
    assert [(e.request.method, e.response.status) for e in done] == [("OPTIONS", 200)]
    assert creq.target == Target("udp", "127.0.0.1", 5070)
    first = failing.requests[0].via[0].branch
    last = bob.received[0].via[0].branch
    assert first != last  # a new transaction (branch) for each target


def test_every_target_failing_gives_503() -> None:
    net = Net()
    alice = net.add("alice", 5060)
    net.script(5090, lambda r: [r.reply(503, to_tag="x")])
    net.dns["example.test"] = [Target("udp", "127.0.0.1", 5090)]
    session = alice.core.invite("sip:bob@example.test", StaticMedia(OFFER), net.now)
    alice.pump()
    net.step(1)
    states = [e for e in alice.events if isinstance(e, CallStateChanged)]
    assert states[-1].state is CallState.TERMINATED and session.end_status == 503
    net.dns["nowhere.test"] = []
    creq = alice.core.request("MESSAGE", "sip:bob@nowhere.test", net.now, body=b"hi")
    alice.pump()
    assert creq.final is not None and creq.final.status == 503


def test_large_request_goes_over_tcp_when_we_listen_on_tcp() -> None:
    from sipwire.core.client import Listener

    net = Net()
    alice = net.add("alice", 5060)
    alice.core.set_listeners(
        {"udp": Listener("udp", "127.0.0.1", 5060), "tcp": Listener("tcp", "127.0.0.1", 5060)}
    )
    alice.core.request("MESSAGE", "sip:bob@127.0.0.1:5070", net.now, body=b"x" * 1400)
    alice.core.request("MESSAGE", "sip:bob@127.0.0.1:5070", net.now, body=b"small")
    transports = []
    while (event := alice.layer.next_event()) is not None:
        transports.append((event.target.transport, event.request.via[0].transport))  # type: ignore[attr-defined]
    assert transports == [("tcp", "TCP"), ("udp", "UDP")]
