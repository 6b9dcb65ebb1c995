"""What an m-line says about its RTP transport: ptime and maxptime, ``a=rtcp``
(RFC 3605) and RTP/RTCP multiplexing (RFC 5761) as offered and answered."""

from __future__ import annotations

import pytest

from sipwire.sdp import OfferAnswer, RtpParameters, SessionDescription, parse_sdp, rtp_parameters


def peer(*lines: str) -> SessionDescription:
    head = ["v=0", "o=- 7 7 IN IP4 198.51.100.9", "s=-", "c=IN IP4 198.51.100.9", "t=0 0"]
    body = ["m=audio 5004 RTP/AVP 0 101", "a=rtpmap:101 telephone-event/8000", *lines]
    return parse_sdp("\r\n".join([*head, *body]) + "\r\n")


def test_an_offer_with_rtcp_mux_is_answered_with_it_when_we_multiplex() -> None:
    ours = OfferAnswer("192.0.2.1", 4000, rtcp_mux=True)
    answer = ours.receive_offer(peer("a=rtcp-mux"))
    assert answer.media[0].has("rtcp-mux")
    agreed = rtp_parameters(ours.local_description, ours.remote_description, 0)
    assert agreed.rtcp_mux


def test_rtcp_mux_is_not_agreed_when_either_side_lacks_it() -> None:
    plain = OfferAnswer("192.0.2.1", 4000)
    answer = plain.receive_offer(peer("a=rtcp-mux"))
    assert not answer.media[0].has("rtcp-mux")
    assert not rtp_parameters(plain.local_description, plain.remote_description, 0).rtcp_mux
    muxing = OfferAnswer("192.0.2.1", 4000, rtcp_mux=True)
    answer = muxing.receive_offer(peer())
    assert not answer.media[0].has("rtcp-mux")  # §5.1.1: only when offered
    assert not rtp_parameters(muxing.local_description, muxing.remote_description, 0).rtcp_mux


def test_our_offer_carries_rtcp_mux_and_the_answer_decides() -> None:
    ours = OfferAnswer("192.0.2.1", 4000, rtcp_mux=True)
    offer = ours.create_offer()
    assert offer.media[0].has("rtcp-mux")
    ours.receive_answer(peer())
    assert not rtp_parameters(ours.local_description, ours.remote_description, 0).rtcp_mux


def test_ptime_maxptime_and_the_rtcp_port_and_address() -> None:
    ours = OfferAnswer("192.0.2.1", 4000)
    ours.receive_offer(peer("a=ptime:30", "a=maxptime:60.0", "a=rtcp:6001 IN IP4 198.51.100.77"))
    agreed = rtp_parameters(ours.local_description, ours.remote_description, 0)
    assert agreed == RtpParameters(
        ptime=30, maxptime=60, rtcp_port=6001, rtcp_address="198.51.100.77", rtcp_mux=False
    )


@pytest.mark.parametrize(
    "line", ["a=ptime:abc", "a=ptime:0", "a=ptime:-20", "a=rtcp:0", "a=rtcp:70000", "a=rtcp:"]
)
def test_malformed_values_are_taken_as_absent(line: str) -> None:
    ours = OfferAnswer("192.0.2.1", 4000)
    ours.receive_offer(peer(line))
    agreed = rtp_parameters(ours.local_description, ours.remote_description, 0)
    assert agreed.ptime is None and agreed.rtcp_port is None


def test_nothing_is_known_before_the_peer_described_anything() -> None:
    assert rtp_parameters(None, None, 0) == RtpParameters()
    assert rtp_parameters(None, peer(), 3) == RtpParameters()
