"""Hostile headers never make the user-agent core raise (Hypothesis).

Requests and responses that parse but carry odd Contact, Record-Route, RAck,
RSeq, Require, Session-Expires, Min-SE, Min-Expires, Refer-To, Replaces,
Event, Subscription-State or bodies are fed to cores that are calling,
ringing or in a call. Whatever happens, ``UserAgentCore.handle`` returns, and a
request that reached a server transaction gets an answer.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipwire.core import refer, subscription
from sipwire.core.media import StaticMedia
from sipwire.errors import ParseError
from sipwire.message import Request, Response, parse_message
from sipwire.transport.address import Source
from tests.core.uanet import OFFER, Net, Node

ODD = [
    "",
    " ",
    "<>",
    "<sip:>",
    "sip:",
    "<sip:a@[::1>",
    "<sip:bob@127.0.0.1:99999>",
    "garbage;;;",
    "1",
    "-1",
    "99999999999999999999",
    "1 2",
    "1 1 INVITE",
    "x y z",
    "100rel, ,,",
    "0;refresher=nobody",
    "90;refresher=uac",
    "active;expires=abc",
    "terminated;reason=timeout;retry-after=x",
    "<sip:carol@127.0.0.1:5080?Replaces=a%3Bto-tag%3Db%3Bfrom-tag%3Dc>",
    "call;to-tag=;from-tag=",
    "presence;id=",
    '"unterminated',
    "\u00e9\u00e8",
]
HEADERS = [
    "Contact",
    "Record-Route",
    "RAck",
    "RSeq",
    "Require",
    "Supported",
    "Session-Expires",
    "Min-SE",
    "Min-Expires",
    "Expires",
    "Refer-To",
    "Replaces",
    "Event",
    "Subscription-State",
    "Allow",
    "Content-Type",
    "Reason",
    "WWW-Authenticate",
    "Proxy-Authenticate",
]

extra_headers = st.lists(
    st.tuples(st.sampled_from(HEADERS), st.sampled_from(ODD) | st.text(max_size=30)),
    max_size=4,
)
bodies = st.sampled_from([b"", OFFER, b"v=0\r\n", b"\x00\xff", b"m=audio x RTP/AVP 0\r\n"])


def _lines(headers: list[tuple[str, str]]) -> str:
    return "".join(f"{name}: {value}\r\n" for name, value in headers if "\r" not in value)


def _parse(text: bytes) -> Request | Response | None:
    try:
        return parse_message(text)
    except ParseError:
        return None


def _nodes() -> tuple[Net, Node, Node]:
    net = Net()
    alice = net.add("alice", 5060, reliable_provisional=True)
    bob = net.add("bob", 5070)
    for node in (alice, bob):
        subscription.install(node.core)
        refer.install(node.core)
    return net, alice, bob


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=st.sampled_from(
        ["INVITE", "BYE", "PRACK", "UPDATE", "INFO", "REFER", "NOTIFY", "SUBSCRIBE", "MESSAGE"]
    ),
    in_dialog=st.booleans(),
    headers=extra_headers,
    body=bodies,
)
def test_odd_requests_are_answered_not_raised(
    method: str, in_dialog: bool, headers: list[tuple[str, str]], body: bytes
) -> None:
    net, alice, bob = _nodes()
    session = alice.core.invite(bob.uri, StaticMedia(OFFER), net.now)
    alice.pump()
    net.step(0.1)
    to_tag = ""
    if in_dialog:
        incoming = bob.core.sessions[0]
        incoming.answer(net.now)
        bob.pump()
        net.step(0.5)
        assert session.dialog is not None
        to_tag = f";tag={session.dialog.local_tag}"
        from_tag = session.dialog.remote_tag
        call_id = session.call_id
    else:
        from_tag, call_id = "x1", "fuzz-call"
    text = (
        f"{method} sip:alice@127.0.0.1:5060 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKfuzz\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:bob@127.0.0.1:5070>;tag={from_tag}\r\n"
        f"To: <sip:alice@127.0.0.1:5060>{to_tag}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: 7 {method}\r\n"
        f"{_lines(headers)}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    message = _parse(text)
    if not isinstance(message, Request):
        return
    source = Source("udp", "127.0.0.1", 5070, "127.0.0.1", 5060)
    alice.layer.receive(message, source, net.now)
    alice.pump()  # must not raise
    net.step(70)  # and neither may anything that follows from it
    answered = [
        m
        for m in alice.sent
        if isinstance(m, Response) and m.cseq.seq == 7 and m.call_id == call_id
    ]
    assert answered, f"no answer to {method}"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    status=st.sampled_from([180, 183, 200, 202, 302, 401, 407, 422, 423, 481, 491, 503, 603]),
    headers=extra_headers,
    body=bodies,
    tagged=st.booleans(),
)
def test_odd_responses_never_raise(
    status: int, headers: list[tuple[str, str]], body: bytes, tagged: bool
) -> None:
    net, alice, bob = _nodes()
    net.intercept = lambda packet: packet.dst[1] != 5070  # bob never hears: we answer instead
    alice.core.invite(bob.uri, StaticMedia(OFFER), net.now)
    alice.pump()
    invite = next(m for m in alice.sent if isinstance(m, Request))
    head = invite.reply(status, to_tag="fz" if tagged else None)
    lines = bytes(head).split(b"\r\n\r\n", 1)[0].decode()
    lines = lines.replace("Content-Length: 0\r\n", "").replace("\r\nContent-Length: 0", "")
    text = (lines + "\r\n" + _lines(headers) + f"Content-Length: {len(body)}\r\n\r\n").encode()
    message = _parse(text + body)
    if not isinstance(message, Response):
        return
    alice.layer.receive(message, Source("udp", "127.0.0.1", 5070), net.now)
    alice.pump()  # must not raise
    net.step(70)


@pytest.mark.parametrize("value", ["<sip:a@[::1>", "1 x INVITE", "garbage;;;"])
def test_malformed_contact_in_invite_gets_400(value: str) -> None:
    net, alice, _ = _nodes()
    text = (
        "INVITE sip:alice@127.0.0.1:5060 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKbad\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:bob@127.0.0.1>;tag=b\r\nTo: <sip:alice@127.0.0.1>\r\n"
        f"Call-ID: bad\r\nCSeq: 1 INVITE\r\nContact: {value}\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    message = parse_message(text)
    alice.layer.receive(message, Source("udp", "127.0.0.1", 5070), net.now)
    alice.pump()
    finals = [m.status for m in alice.sent if isinstance(m, Response)]
    assert finals and finals[-1] == 400
