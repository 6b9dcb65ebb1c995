"""The UAS core (§8.2, §13.3, §15.2, §9.2) over the transaction layer, with a manual clock.

Requests come as text from a fake peer; an auto-answering application rings
and answers every IncomingCall (after ``ring_time``), as ``sipwire answer``.
"""

from __future__ import annotations

from typing import Any

from sipwire.core.client import Listener
from sipwire.core.config import UAConfig
from sipwire.core.events import CallStateChanged, IncomingCall
from sipwire.core.media import StaticMedia
from sipwire.core.session import CallState, InviteSession
from sipwire.core.ua import UserAgentCore
from sipwire.dialog.ids import CountingIds
from sipwire.message import Address, Request, Response, parse_message
from sipwire.transaction.events import Event, SendRequest, SendResponse
from sipwire.transaction.layer import TransactionLayer
from sipwire.transport.address import Source
from sipwire.transport.routing import stamp_via
from tests.core.uanet import OFFER

SOURCE = Source("udp", "192.0.2.20", 5070, "192.0.2.10", 5080)


class Harness:
    def __init__(
        self,
        ring_time: float = 0.0,
        *,
        layer: TransactionLayer | None = None,
        **options: Any,
    ) -> None:
        self.layer = layer if layer is not None else TransactionLayer()
        config = UAConfig(aor=Address.parse("sip:sipwire@192.0.2.10"), **options)
        self.tu = UserAgentCore(
            self.layer, config, CountingIds("tag"), media_factory=lambda: StaticMedia(OFFER)
        )
        self.tu.set_listeners({"udp": Listener("udp", "192.0.2.10", 5080)})
        self.ring_time = ring_time
        self.now = 0.0
        self.sent: list[tuple[float, Response]] = []
        self.requests: list[Request] = []
        self.sessions: list[InviteSession] = []

    @property
    def dialogs(self) -> int:
        return len(self.tu._dialogs)

    def answered(self) -> int:
        return sum(1 for s in self.sessions if s.final is not None and s.final.status == 200)

    def completed(self) -> int:
        return sum(1 for s in self.sessions if s.end_reason == "BYE received")

    def pump(self) -> None:
        while (event := self.layer.next_event()) is not None:
            self._dispatch(event)

    def _dispatch(self, event: Event) -> None:
        if isinstance(event, SendResponse):
            self.sent.append((self.now, event.response))
        elif isinstance(event, SendRequest):
            self.requests.append(event.request)
        else:
            self.tu.handle(event, self.now)
        for ua_event in self.tu.events():
            if isinstance(ua_event, IncomingCall):
                self._auto_answer(ua_event.session)

    def _auto_answer(self, session: InviteSession) -> None:
        self.sessions.append(session)
        session.ring(self.now)
        if self.ring_time > 0:

            def later(now: float) -> None:
                session.answer(now)
                self.pump()

            self.tu.timers.schedule(self.now + self.ring_time, later)
        else:
            session.answer(self.now)

    def receive(self, text: str, source: Source = SOURCE) -> None:
        message = parse_message(text.encode())
        if isinstance(message, Request):
            stamp_via(message, source)
        self.layer.receive(message, source, self.now)
        self.pump()

    def advance(self, until: float) -> None:
        while True:
            deadlines = [d for d in (self.layer.next_timer(), self.tu.next_timer()) if d]
            if not deadlines or min(deadlines) > until:
                break
            self.now = min(deadlines)
            self.layer.handle_timer(self.now)
            self.tu.handle_timer(self.now)
            self.pump()
        self.now = until

    def statuses(self) -> list[int]:
        return [r.status for _, r in self.sent]


def request(
    method: str,
    *,
    branch: str = "z9hG4bK1",
    to_tag: str | None = None,
    cseq: int = 1,
    extra: str = "",
    call_id: str = "c1@example.com",
) -> str:
    to = "<sip:sipwire@192.0.2.10>" + (f";tag={to_tag}" if to_tag else "")
    return (
        f"{method} sip:sipwire@192.0.2.10:5080 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.20:5070;branch={branch}\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:alice@example.com>;tag=a1\r\n"
        f"To: {to}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {method}\r\n"
        "Contact: <sip:alice@192.0.2.20:5070>\r\n"
        f"{extra}"
        "Content-Length: 0\r\n\r\n"
    )


def test_options_gets_200_with_allow_accept_supported() -> None:
    h = Harness()
    h.receive(request("OPTIONS"))
    ((_, ok),) = h.sent
    assert ok.status == 200
    assert ok.allow[:5] == ["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS"]
    assert {"PRACK", "UPDATE", "INFO", "MESSAGE", "SUBSCRIBE", "NOTIFY", "REFER"} <= set(ok.allow)
    assert [str(a.mime) for a in ok.accept] == ["application/sdp", "text/plain"]
    assert {"100rel", "timer", "replaces"} <= set(ok.supported)
    assert "supported" in ok.headers and ok.to.tag is not None


def test_invite_ringing_then_200_with_sdp_and_contact() -> None:
    h = Harness()
    h.receive(request("INVITE"))
    assert h.statuses() == [180, 200]
    ringing, ok = h.sent[0][1], h.sent[1][1]
    assert ringing.to.tag == ok.to.tag == "tag1"
    assert ok.content_type is not None and ok.content_type.mime == "application/sdp"
    assert ok.body.startswith(b"v=0\r\n") and b"m=audio" in ok.body
    (contact,) = ok.contact
    assert str(contact.uri) == "sip:sipwire@192.0.2.10:5080"
    # no offer in the INVITE: the 200 carries ours (RFC 3264 §4)
    assert ok.body == OFFER


def test_2xx_retransmitted_until_ack() -> None:
    h = Harness()
    h.receive(request("INVITE"))
    h.advance(3.6)
    # §13.3.1.4: T1, 2*T1, 4*T1 ... after the first 200 at 0.
    assert [(t, r.status) for t, r in h.sent if r.status == 200] == [
        (0.0, 200),
        (0.5, 200),
        (1.5, 200),
        (3.5, 200),
    ]
    h.receive(request("ACK", branch="z9hG4bK2", to_tag="tag1"))
    h.advance(40.0)
    assert len([r for _, r in h.sent if r.status == 200]) == 4
    assert h.dialogs == 1 and h.sessions[0].state is CallState.CONFIRMED


def test_2xx_retransmission_gives_up_after_64_t1() -> None:
    h = Harness()
    h.receive(request("INVITE"))
    h.advance(100.0)
    times = [t for t, r in h.sent if r.status == 200]
    assert times == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert h.dialogs == 0
    # §13.3.1.4 asks for a BYE, but over UDP nothing showed the caller is really at the
    # INVITE's source address (no ACK, no request with our tag): the call just ends.
    assert h.requests == []
    assert h.sessions[0].state is CallState.TERMINATED and h.sessions[0].end_status == 408
    assert h.tu.sessions == []


def test_bye_ends_the_dialog_and_unknown_bye_gets_481() -> None:
    h = Harness()
    h.receive(request("INVITE"))
    h.receive(request("ACK", branch="z9hG4bK2", to_tag="tag1"))
    h.receive(request("BYE", branch="z9hG4bK3", to_tag="tag1", cseq=2))
    assert h.statuses()[-1] == 200 and h.dialogs == 0
    assert h.answered() == 1 and h.completed() == 1
    h.receive(request("BYE", branch="z9hG4bK4", to_tag="tag1", cseq=3))
    assert h.statuses()[-1] == 481


def test_cancel_before_answer_gives_200_and_487() -> None:
    h = Harness(ring_time=5.0)
    h.receive(request("INVITE"))
    assert h.statuses() == [180]
    h.receive(request("CANCEL"))
    assert sorted(h.statuses()) == [180, 200, 487]
    cancel_ok = next(r for _, r in h.sent if r.status == 200)
    assert cancel_ok.cseq.method == "CANCEL"
    h.receive(request("ACK", to_tag="tag1"))  # the ACK for the 487 ends Timer G
    h.advance(10.0)  # and no 200 for the INVITE after the ring time
    assert sorted(h.statuses()) == [180, 200, 487]


def test_ring_time_delays_the_200() -> None:
    h = Harness(ring_time=2.0)
    h.receive(request("INVITE"))
    h.advance(1.9)
    assert h.statuses() == [180]
    h.advance(2.0)
    assert h.statuses() == [180, 200]


def test_cancel_without_invite_gets_481() -> None:
    h = Harness()
    h.receive(request("CANCEL"))
    assert h.statuses() == [481]


def test_unknown_and_unsupported_methods() -> None:
    h = Harness()
    h.receive(request("FOO", branch="z9hG4bKa"))
    h.receive(request("PUBLISH", branch="z9hG4bKb"))
    h.receive(request("MESSAGE", branch="z9hG4bKc"))
    assert h.statuses() == [501, 405, 200]
    assert all(r.headers.get("Allow") for _, r in h.sent[:2])
    assert [e.text for e in h.tu.events() if hasattr(e, "text")] == []  # drained by pump


def test_unsupported_require_gets_420() -> None:
    h = Harness()
    h.receive(request("INVITE", extra="Require: 100rel-never\r\n"))
    ((_, rejection),) = h.sent
    assert rejection.status == 420 and rejection.unsupported == ["100rel-never"]


def test_in_dialog_request_for_unknown_dialog_gets_481() -> None:
    h = Harness()
    h.receive(request("INVITE", to_tag="nope"))
    assert h.statuses() == [481]


def test_reinvite_keeps_the_session() -> None:
    h = Harness()
    h.receive(request("INVITE"))
    h.receive(request("ACK", branch="z9hG4bK2", to_tag="tag1"))
    first_ok = h.sent[1][1]
    h.receive(request("INVITE", branch="z9hG4bK5", to_tag="tag1", cseq=2))
    reinvite_ok = h.sent[-1][1]
    assert reinvite_ok.status == 200 and reinvite_ok.body == first_ok.body
    assert h.sessions[0].state is CallState.CONFIRMED
    states = [e for e in h.tu.events() if isinstance(e, CallStateChanged)]
    assert states == []  # the re-INVITE changed no call state


def test_retransmitted_invite_does_not_make_a_second_dialog() -> None:
    h = Harness()
    h.receive(request("INVITE"))
    h.receive(request("INVITE"))
    assert h.dialogs == 1 and len(h.sessions) == 1


def test_parsed_request_type() -> None:
    message = parse_message(request("OPTIONS").encode())
    assert isinstance(message, Request)
