"""Capacity counts live work: ended calls free their slot, floods are shed fairly.

A UAS core over a transaction layer on a manual clock (the ``Harness`` of
``test_uas``); peers are request texts from chosen source addresses.
"""

from __future__ import annotations

from sipwire.core.session import CallState
from sipwire.transaction.admission import Admission, AdmissionConfig
from sipwire.transaction.layer import TransactionLayer
from sipwire.transport.address import Source
from tests.core.test_uas import Harness, request

ATTACKER = Source("udp", "192.0.2.66", 5060, "192.0.2.10", 5080)
FRIEND = Source("udp", "192.0.2.77", 5060, "192.0.2.10", 5080)


def _invite(n: int, host: str = "192.0.2.20", extra: str = "") -> str:
    text = request("INVITE", branch=f"z9hG4bKi{n}", call_id=f"call-{n}", extra=extra)
    return text.replace("192.0.2.20:5070", f"{host}:5060")


def _call(h: Harness, n: int) -> int:
    """A whole call (INVITE, ACK, BYE); returns the status of the INVITE's final response."""
    h.sent.clear()
    h.receive(_invite(n))
    final = [r for _, r in h.sent if r.status >= 200 and r.cseq.method == "INVITE"]
    if final[0].status != 200:
        return final[0].status
    tag = final[0].to.tag or ""
    ack = request("ACK", branch=f"z9hG4bKa{n}", to_tag=tag, call_id=f"call-{n}")
    h.receive(ack.replace("192.0.2.20:5070", "192.0.2.20:5060"))
    bye = request("BYE", branch=f"z9hG4bKb{n}", to_tag=tag, cseq=2, call_id=f"call-{n}")
    h.receive(bye.replace("192.0.2.20:5070", "192.0.2.20:5060"))
    return 200


def test_an_ended_call_frees_its_slot_at_once() -> None:
    """Calls far beyond max_sessions, one after another, within one 64*T1: all answered."""
    h = Harness(max_sessions=5)
    statuses = []
    for n in range(50):
        statuses.append(_call(h, n))
        h.advance(h.now + 0.01)
    assert statuses == [200] * 50
    assert h.completed() == 50
    assert h.tu.sessions == []
    assert h.layer.admission.holdings == 0


def test_live_sessions_are_still_capped() -> None:
    h = Harness(max_sessions=3)
    for n in range(5):
        h.receive(_invite(n))  # never ACKed, never ended
    finals = [r.status for _, r in h.sent if r.status >= 200]
    assert finals == [200, 200, 200, 503, 503]
    busy = [r for _, r in h.sent if r.status == 503]
    assert all(r.headers.get("Retry-After") and r.to.tag for r in busy)


def test_malformed_headers_get_400_before_any_provisional() -> None:
    for header in (
        "Allow: INVITE, ,,;\r\n",
        "Supported: 100rel, @\r\n",
        "Record-Route: <sip:proxy.example.com;lr\r\n",
        "Contact: <sip:alice@192.0.2.20:5070\r\n",
        "Require: \x01\r\n",
        "Content-Type: not a type\r\n",
    ):
        h = Harness()
        h.receive(_invite(1, extra=header))
        statuses = h.statuses()
        assert statuses and statuses[0] == 400, (header, statuses)
        assert h.tu.sessions == [] and h.sessions == []
        assert h.sent[0][1].to.tag is not None


def test_a_header_that_breaks_while_answering_still_gets_a_final_response() -> None:
    """Even a header only read when answering (here: made unreadable after the INVITE
    was accepted) ends in a final response, never in a call that rings forever."""
    h = Harness(ring_time=1.0)
    h.receive(_invite(1))
    (session,) = h.sessions
    assert h.statuses() == [180]
    session.request.headers.set("Allow", "INVITE, ,,;")  # read by the 2xx (peer_allow)
    session.request.headers.set("Supported", "@@")
    h.advance(2.0)
    assert h.statuses()[-1] >= 400
    assert session.state is CallState.TERMINATED
    assert h.tu.sessions == []


def test_a_source_holding_more_than_its_share_is_shed_statelessly() -> None:
    """INVITEs from one address that never ACKs fill its share; another address still
    gets through, and the shed INVITEs cost no transaction and no session."""
    admission = Admission(AdmissionConfig(max_holdings=20, shed_fraction=0.5))
    h = Harness(layer=TransactionLayer(admission=admission))
    h.receive(_invite(0, host=FRIEND.host), FRIEND)
    for n in range(1, 40):
        h.receive(_invite(n, host=ATTACKER.host), ATTACKER)
    held = admission.source_holdings(ATTACKER.host)
    assert 9 <= held <= 11  # about half of max_holdings, then over its fair share
    transactions = len(h.layer)
    shed = [r for _, r in h.sent if r.status == 503]
    assert len(shed) == 39 - held and admission.stats.shed_holdings == len(shed)
    h.receive(_invite(99, host=FRIEND.host), FRIEND)
    assert [r.status for _, r in h.sent][-1] == 200  # the other source is served
    h.receive(_invite(100, host=ATTACKER.host), ATTACKER)
    assert [r.status for _, r in h.sent][-1] == 503
    assert len(h.layer) == transactions + 1  # only the friend's INVITE made a transaction
    # The attacker's calls time out (no ACK within 64*T1) and free the holdings.
    h.advance(h.now + 40)
    assert admission.source_holdings(ATTACKER.host) == 0
    h.receive(_invite(101, host=ATTACKER.host), ATTACKER)
    assert [r.status for _, r in h.sent][-1] == 200


def test_overload_sheds_the_heaviest_source_only() -> None:
    admission = Admission(AdmissionConfig())
    h = Harness(layer=TransactionLayer(admission=admission))
    for n in range(30):
        h.receive(_invite(n, host=ATTACKER.host), ATTACKER)
        h.now += 0.001
    h.receive(_invite(500, host=FRIEND.host), FRIEND)
    admission.set_overloaded(True, h.now)
    h.sent.clear()
    h.receive(_invite(30, host=ATTACKER.host), ATTACKER)
    h.receive(_invite(501, host=FRIEND.host), FRIEND)
    assert [r.status for _, r in h.sent if r.status >= 200] == [503, 200]
    assert admission.stats.shed_overload == 1
    # One source alone is never throttled by overload: nobody to be fair to.
    alone = Admission(AdmissionConfig())
    solo = Harness(layer=TransactionLayer(admission=alone))
    for n in range(30):
        solo.receive(_invite(n, host=ATTACKER.host), ATTACKER)
    alone.set_overloaded(True, solo.now)
    solo.receive(_invite(31, host=ATTACKER.host), ATTACKER)
    assert solo.statuses()[-1] == 200


def test_per_source_rate_limit_drops_beyond_the_limit() -> None:
    admission = Admission(AdmissionConfig(source_rate_limit=10.0))
    h = Harness(layer=TransactionLayer(admission=admission))
    for n in range(100):  # 100 INVITEs within 1 s from one address
        h.receive(_invite(n, host=ATTACKER.host), ATTACKER)
        h.now += 0.01
    answered = len([r for _, r in h.sent if r.status == 200])
    assert 10 <= answered <= 25 and admission.stats.dropped_rate_limit == 100 - answered
    h.receive(_invite(1000, host=FRIEND.host), FRIEND)
    assert h.statuses()[-1] == 200


def test_bye_to_a_contact_with_an_unknown_transport_fails_locally() -> None:
    """The BYE cannot be routed (transport=foo): it fails with 503 inside the core,
    the session ends, and nothing escapes into the timer path."""
    h = Harness()
    h.receive(
        _invite(1, extra="").replace(
            "Contact: <sip:alice@192.0.2.20:5060>",
            "Contact: <sip:alice@192.0.2.20:5060;transport=foo>",
        )
    )
    (session,) = h.sessions
    tag = session.local_tag
    ack = request("ACK", branch="z9hG4bKack1", to_tag=tag, call_id="call-1")
    h.receive(ack.replace("192.0.2.20:5070", "192.0.2.20:5060"))
    assert session.state is CallState.CONFIRMED
    creq = session.bye(h.now)
    h.pump()
    assert creq is not None and creq.final is not None and creq.final.status == 503
    assert session.state is CallState.TERMINATED
    assert h.requests == []  # nothing could be sent


def test_a_reliable_provisional_stops_when_the_connection_fails() -> None:
    """RFC 3262 retransmissions of a 18x over a connection that then fails: the
    transaction ends (§17.2.4), the call ends, no response is forced through."""
    tcp = Source("tcp", "192.0.2.20", 40000, "192.0.2.10", 5080, flow=3)
    h = Harness(ring_time=10.0)
    h.receive(_invite(1, extra="Require: 100rel\r\n"), tcp)
    (session,) = h.sessions
    assert h.statuses() == [180] and h.sent[0][1].headers.get("RSeq")
    assert session.server is not None
    h.layer.transport_error(session.server, h.now)  # the peer closed the connection
    h.pump()
    h.advance(h.now + 40)  # the 18x timer and the answer timer would fire here
    assert session.state is CallState.TERMINATED and session.end_status == 503
    assert h.statuses() == [180]
    assert h.tu.sessions == [] and h.layer.admission.holdings == 0


def test_session_refresh_after_an_offer_the_ack_never_answered() -> None:
    """INVITE without SDP: our offer goes in the 200 and the ACK brings no answer.
    The offer is void, so the session refresh (we are the refresher) can go out."""
    from sipwire.core.sdp_media import MediaConfig, SdpMedia

    h = Harness()
    h.tu.media_factory = lambda: SdpMedia(MediaConfig(), address="192.0.2.10", audio_port=20000)
    h.receive(_invite(1, extra="Supported: timer\r\nSession-Expires: 90;refresher=uas\r\n"))
    (session,) = h.sessions
    ok = next(r for _, r in h.sent if r.status == 200)
    assert ok.body  # our offer
    ack = request("ACK", branch="z9hG4bKack1", to_tag=session.local_tag, call_id="call-1")
    h.receive(ack.replace("192.0.2.20:5070", "192.0.2.20:5060"))
    h.advance(h.now + 50)  # refresh at half the interval
    assert {r.method for r in h.requests} == {"INVITE"}  # the re-INVITE and its retransmissions
    assert len({r.via[0].branch for r in h.requests}) == 1
    assert h.requests[0].body  # a new offer


def test_what_calls_leave_behind_is_swept_by_the_clock() -> None:
    """Tombstones and merged-request memories expire after 64*T1 even when no further
    call comes to sweep them (a flood's leftovers must not outlive it)."""
    h = Harness()
    for n in range(20):
        assert _call(h, n) == 200
    assert len(h.tu._tombstones) == 20 and len(h.tu._recent) == 20
    h.advance(h.now + 40)
    assert not h.tu._tombstones and not h.tu._recent and not h.tu._ended
    assert h.tu.next_timer() is None  # and the sweep does not keep itself alive


def test_a_source_that_never_acks_is_capped_but_one_that_acks_is_not() -> None:
    admission = Admission(AdmissionConfig(max_unverified_per_source=5))
    h = Harness(layer=TransactionLayer(admission=admission))
    for n in range(8):  # never ACKed: the 2xx waits, nothing shows the source is real
        h.receive(_invite(n, host=ATTACKER.host), ATTACKER)
    finals = [r.status for _, r in h.sent if r.status >= 200]
    assert finals == [200] * 5 + [503] * 3 and admission.stats.shed_unverified == 3
    # calls that are ACKed (and hung up) from another address never count
    for n in range(100, 120):
        assert _call(h, n) == 200
    assert admission.source_holdings(ATTACKER.host) == 5
    h.advance(h.now + 40)  # the unACKed calls end: the source may try again
    h.receive(_invite(9, host=ATTACKER.host), ATTACKER)
    assert h.statuses()[-1] == 200


def test_a_source_whose_calls_are_acked_may_hold_more_unacked_ones() -> None:
    """A busy trunk's ACKs queue up when the server lags: a source that keeps
    showing itself may hold unACKed calls in proportion to its rate."""
    admission = Admission(AdmissionConfig(max_unverified_per_source=5))
    h = Harness(layer=TransactionLayer(admission=admission))
    for n in range(20):  # twenty calls, ACKed and ended, from 192.0.2.20
        assert _call(h, n) == 200
    h.sent.clear()
    for n in range(100, 110):  # then ten whose ACKs have not come yet
        h.receive(_invite(n))
    assert [r.status for _, r in h.sent if r.status >= 200] == [200] * 10
    assert admission.stats.shed_unverified == 0
