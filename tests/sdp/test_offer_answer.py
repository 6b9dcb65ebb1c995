"""RFC 3264 offer/answer: codec choice, rejected streams, directions, hold,
session versions, answer validation and the exchange's state machine."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipwire.sdp import (
    G722,
    H264,
    OPUS,
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    VP8,
    Codec,
    Direction,
    GlareError,
    OfferAnswer,
    OfferAnswerError,
    OfferAnswerState,
    SdpError,
    SessionDescription,
    media_codecs,
    parse_sdp,
)


def sdp(*lines: str, origin: str = "- 100 100 IN IP4 198.51.100.9") -> SessionDescription:
    """A peer's SDP: standard session lines, then ``lines``."""
    head = ["v=0", f"o={origin}", "s=-", "c=IN IP4 198.51.100.9", "t=0 0"]
    return parse_sdp("\r\n".join([*head, *lines]) + "\r\n")


def alice(**kwargs: Any) -> OfferAnswer:
    """Our side: 192.0.2.1, audio on 4000, session id and version 1000."""
    options: dict[str, Any] = {"session_id": 1000, "username": "alice", **kwargs}
    return OfferAnswer("192.0.2.1", 4000, **options)


def media_lines(sd: SessionDescription) -> list[str]:
    return [line for line in sd.lines() if line.startswith(("m=", "a="))]


# -- offers ---------------------------------------------------------------------


def test_initial_offer() -> None:
    oa = alice(video_port=4002, audio_codecs=[OPUS, PCMU, PCMA, TELEPHONE_EVENT])
    offer = oa.create_offer()
    assert oa.state is OfferAnswerState.OFFER_SENT
    assert str(offer) == (
        "v=0\r\n"
        "o=alice 1000 1000 IN IP4 192.0.2.1\r\n"
        "s=sipwire\r\n"
        "c=IN IP4 192.0.2.1\r\n"
        "t=0 0\r\n"
        "m=audio 4000 RTP/AVP 111 0 8 101\r\n"
        "a=rtpmap:111 opus/48000/2\r\n"
        "a=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:8 PCMA/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n"
        "a=fmtp:111 minptime=10;useinbandfec=1\r\n"
        "a=fmtp:101 0-16\r\n"
        "a=sendrecv\r\n"
        "m=video 4002 RTP/AVP 102 96\r\n"
        "a=rtpmap:102 H264/90000\r\n"
        "a=rtpmap:96 VP8/90000\r\n"
        "a=fmtp:102 profile-level-id=42e01f;packetization-mode=1\r\n"
        "a=sendrecv\r\n"
    )
    assert parse_sdp(bytes(offer)) == offer


def test_offer_picks_free_dynamic_payload_types() -> None:
    custom = Codec("speex", 16000)
    clash = Codec("iLBC", 8000, payload_type=101)  # wants telephone-event's number
    offer = alice(audio_codecs=[PCMU, TELEPHONE_EVENT, custom, clash]).create_offer()
    assert offer.media[0].formats == ["0", "101", "96", "97"]
    assert offer.media[0].rtpmap()["97"].encoding_name == "iLBC"


def test_ipv6_address() -> None:
    offer = OfferAnswer("2001:db8::5", 4000).create_offer()
    assert str(offer.origin).endswith("IN IP6 2001:db8::5")
    assert str(offer.connection) == "IN IP6 2001:db8::5"


def test_configuration_errors() -> None:
    with pytest.raises(ValueError, match="besides telephone-event"):
        OfferAnswer("192.0.2.1", 4000, audio_codecs=[TELEPHONE_EVENT])
    with pytest.raises(ValueError, match="out of range"):
        OfferAnswer("192.0.2.1", 70000)


# -- answers: codecs --------------------------------------------------------------


def test_answer_intersects_in_local_order_with_offerers_payload_types() -> None:
    oa = alice(audio_codecs=[PCMA, G722, PCMU, TELEPHONE_EVENT])
    offer = sdp(
        "m=audio 49170 RTP/AVP 0 9 8 97 96",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:9 G722/8000",
        "a=rtpmap:97 iLBC/8000",
        "a=rtpmap:96 telephone-event/8000",
        "a=fmtp:96 0-15",
        "a=ptime:20",
    )
    answer = oa.receive_offer(offer)
    assert oa.state is OfferAnswerState.STABLE
    assert media_lines(answer) == [
        "m=audio 4000 RTP/AVP 8 9 0 96",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:9 G722/8000",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:96 telephone-event/8000",
        "a=fmtp:96 0-15",
        "a=sendrecv",
    ]
    (stream,) = oa.negotiated
    assert stream.codec == Codec("PCMA", 8000, payload_type=8)
    assert stream.telephone_event == 96
    assert (stream.remote_address, stream.remote_port, stream.local_port) == (
        "198.51.100.9",
        49170,
        4000,
    )
    assert stream.direction is Direction.SENDRECV
    assert not stream.rejected
    assert [c.payload_type for c in stream.codecs] == [8, 9, 0, 96]


def test_dynamic_payload_types_are_the_offerers() -> None:
    oa = alice(audio_codecs=[OPUS, PCMU, TELEPHONE_EVENT])
    offer = sdp(
        "m=audio 5000 RTP/AVP 109 0 100",
        "a=rtpmap:109 OPUS/48000/2",
        "a=fmtp:109 useinbandfec=1",
        "a=rtpmap:100 telephone-event/8000",
    )
    answer = oa.receive_offer(offer)
    assert answer.media[0].formats == ["109", "0", "100"]
    assert answer.media[0].fmtp(109) == "useinbandfec=1"
    assert answer.media[0].fmtp(100) is None  # the offer had none
    stream = oa.negotiated[0]
    assert stream.codec is not None and stream.codec.payload_type == 109
    assert stream.telephone_event == 100


def test_telephone_event_only_when_both_have_it() -> None:
    offer = sdp("m=audio 5000 RTP/AVP 0 96", "a=rtpmap:96 telephone-event/8000")
    oa = alice(audio_codecs=[PCMU])
    assert oa.receive_offer(offer).media[0].formats == ["0"]
    assert oa.negotiated[0].telephone_event is None
    oa = alice(audio_codecs=[PCMU, TELEPHONE_EVENT])
    assert oa.receive_offer(sdp("m=audio 5000 RTP/AVP 0")).media[0].formats == ["0"]
    assert oa.negotiated[0].telephone_event is None


def test_single_codec_answer() -> None:
    oa = alice(single_codec=True)
    offer = sdp("m=audio 5000 RTP/AVP 8 0 101", "a=rtpmap:101 telephone-event/8000")
    assert oa.receive_offer(offer).media[0].formats == ["0", "101"]


def test_video_h264_fmtp_copied_from_offer() -> None:
    oa = alice(video_port=4002, video_codecs=[VP8, H264])
    offer = sdp(
        "m=audio 5000 RTP/AVP 0",
        "m=video 5002 RTP/AVP 126 97 98",
        "a=rtpmap:126 H264/90000",
        "a=fmtp:126 profile-level-id=42801f;packetization-mode=0",
        "a=rtpmap:97 H264/90000",
        "a=fmtp:97 profile-level-id=42e01f;packetization-mode=1;max-br=5000",
        "a=rtpmap:98 VP9/90000",
    )
    answer = oa.receive_offer(offer)
    video = answer.media[1]
    # VP8 is not offered; H264 matches only the packetization-mode 1 entry.
    assert media_lines(answer)[3:] == [
        "m=video 4002 RTP/AVP 97",
        "a=rtpmap:97 H264/90000",
        "a=fmtp:97 profile-level-id=42e01f;packetization-mode=1;max-br=5000",
        "a=sendrecv",
    ]
    assert video.port == 4002
    stream = oa.negotiated[1]
    assert stream.codec == Codec(
        "H264", 90000, 1, "profile-level-id=42e01f;packetization-mode=1;max-br=5000", 97
    )
    assert stream.remote_port == 5002


def test_static_payload_type_without_rtpmap() -> None:
    oa = alice()
    answer = oa.receive_offer(sdp("m=audio 5000 RTP/AVP 18 8"))
    assert answer.media[0].formats == ["8"]
    assert answer.media[0].rtpmap()["8"].encoding_name == "PCMA"


# -- answers: rejected streams ------------------------------------------------------


def test_video_rejected_when_not_configured() -> None:
    oa = alice()
    answer = oa.receive_offer(
        sdp("m=audio 5000 RTP/AVP 0", "m=video 5002 RTP/AVP 31 32", "a=rtpmap:31 H261/90000")
    )
    assert len(answer.media) == 2
    video = answer.media[1]
    assert (video.media, video.port, video.proto, video.formats) == (
        "video",
        0,
        "RTP/AVP",
        ["31", "32"],
    )
    assert video.attributes == []
    assert oa.negotiated[1].rejected and oa.negotiated[1].codec is None
    assert oa.negotiated[1].local_port == 0


@pytest.mark.parametrize(
    "m_lines",
    [
        ("m=audio 5000 RTP/AVP 97", "a=rtpmap:97 iLBC/8000"),  # no common codec
        ("m=audio 5000 RTP/AVP 96", "a=rtpmap:96 telephone-event/8000"),  # only DTMF
        ("m=audio 5000 RTP/SAVP 0", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x"),
        ("m=audio 0 RTP/AVP 0",),  # disabled in the offer
        ("m=application 5000 udp wb",),
        ("m=image 5000 udptl t38",),
    ],
)
def test_stream_rejected_with_port_zero(m_lines: tuple[str, ...]) -> None:
    oa = alice()
    offer = sdp(*m_lines)
    answer = oa.receive_offer(offer)
    assert answer.media[0].port == 0
    assert answer.media[0].formats == offer.media[0].formats
    assert answer.media[0].proto == offer.media[0].proto
    assert oa.negotiated[0].rejected


def test_second_audio_stream_rejected_order_kept() -> None:
    oa = alice()
    offer = sdp(
        "m=audio 5000 RTP/AVP 97",
        "a=rtpmap:97 iLBC/8000",
        "m=audio 5002 RTP/AVP 0",
        "m=audio 5004 RTP/AVP 8",
        "m=message 5006 TCP/MSRP *",
    )
    answer = oa.receive_offer(offer)
    assert [(m.media, m.port, m.formats) for m in answer.media] == [
        ("audio", 0, ["97"]),
        ("audio", 4000, ["0"]),
        ("audio", 0, ["8"]),
        ("message", 0, ["*"]),
    ]


# -- answers: directions --------------------------------------------------------------


@pytest.mark.parametrize(
    ("offered", "answered"),
    [
        ("sendrecv", Direction.SENDRECV),
        ("sendonly", Direction.RECVONLY),
        ("recvonly", Direction.SENDONLY),
        ("inactive", Direction.INACTIVE),
    ],
)
def test_answer_direction(offered: str, answered: Direction) -> None:
    oa = alice()
    answer = oa.receive_offer(sdp("m=audio 5000 RTP/AVP 0", f"a={offered}"))
    assert answer.media[0].direction is answered
    assert oa.negotiated[0].direction is answered


def test_answer_direction_limited_by_local_direction() -> None:
    oa = alice(direction=Direction.RECVONLY)
    assert oa.receive_offer(sdp("m=audio 5000 RTP/AVP 0")).media[0].direction is (
        Direction.RECVONLY
    )
    oa = alice(direction=Direction.RECVONLY)
    assert oa.receive_offer(sdp("m=audio 5000 RTP/AVP 0", "a=recvonly")).media[0].direction is (
        Direction.INACTIVE
    )


def test_session_level_direction_is_inherited() -> None:
    oa = alice()
    offer = sdp("a=sendonly", "m=audio 5000 RTP/AVP 0")
    assert oa.receive_offer(offer).media[0].direction is Direction.RECVONLY


def test_zero_address_offer_means_the_peer_receives_nothing() -> None:
    oa = alice()
    offer = parse_sdp(
        "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n"
    )
    assert oa.receive_offer(offer).media[0].direction is Direction.RECVONLY


# -- our offer, their answer ------------------------------------------------------------


def test_receive_answer() -> None:
    oa = alice(video_port=4002)
    oa.create_offer()
    result = oa.receive_answer(
        sdp(
            "m=audio 6000 RTP/AVP 8 101",
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-15",
            "a=recvonly",
            "m=video 0 RTP/AVP 102",
        )
    )
    assert oa.state is OfferAnswerState.STABLE
    audio, video = result
    assert audio.codec == Codec("PCMA", 8000, payload_type=8)
    assert audio.telephone_event == 101
    assert audio.codecs[1].fmtp == "0-15"  # the answer's fmtp for what we send
    assert audio.direction is Direction.SENDONLY  # they only receive
    assert (audio.local_port, audio.remote_address, audio.remote_port) == (
        4000,
        "198.51.100.9",
        6000,
    )
    assert video.rejected and video.local_port == 0
    assert oa.negotiated == result
    assert oa.remote_description is not None
    assert oa.local_description is not None
    assert oa.local_description.media[0].port == 4000


def test_answer_without_rtpmap_uses_our_mapping() -> None:
    oa = alice(audio_codecs=[PCMU, TELEPHONE_EVENT])
    oa.create_offer()
    (stream,) = oa.receive_answer(sdp("m=audio 6000 RTP/AVP 101 0"))
    assert stream.codec is not None and stream.codec.payload_type == 0
    assert stream.telephone_event == 101


@pytest.mark.parametrize(
    ("m_lines", "reason"),
    [
        ((), "answer has 0 m-lines, the offer 1"),
        (("m=audio 6000 RTP/AVP 0", "m=video 0 RTP/AVP 31"), "answer has 2 m-lines"),
        (("m=video 6000 RTP/AVP 0",), "answered as video RTP/AVP"),
        (("m=audio 6000 RTP/SAVP 0",), "answered as audio RTP/SAVP"),
        (("m=audio 6000 RTP/AVP 0 18",), "payload types 18 not offered"),
        (("m=audio 6000 RTP/AVP 101",), "no codec in common"),
        (("m=audio 6000 RTP/AVP 101", "a=rtpmap:101 iLBC/8000"), "payload type 101 offered"),
    ],
)
def test_answer_validation(m_lines: tuple[str, ...], reason: str) -> None:
    oa = alice()
    oa.create_offer()
    with pytest.raises(SdpError) as info:
        oa.receive_answer(sdp(*m_lines))
    assert reason in info.value.reason
    assert info.value.status == 488
    assert oa.state is OfferAnswerState.OFFER_SENT  # still waiting for a usable answer
    assert oa.negotiated == []


def test_answer_may_not_accept_a_disabled_stream() -> None:
    oa = alice()
    oa.receive_offer(sdp("m=audio 5000 RTP/AVP 0", "m=video 5002 RTP/AVP 31"))
    reoffer = oa.create_offer()
    assert reoffer.media[1].port == 0
    with pytest.raises(SdpError, match="offer disabled"):
        oa.receive_answer(sdp("m=audio 5000 RTP/AVP 0", "m=video 5002 RTP/AVP 31"))


def test_same_answer_twice_is_early_media_then_final() -> None:
    oa = alice()
    oa.create_offer()
    answer = sdp("m=audio 6000 RTP/AVP 0")
    first = oa.receive_answer(answer)  # in a reliable 183
    assert oa.receive_answer(sdp("m=audio 6000 RTP/AVP 0")) == first  # repeated in the 200
    with pytest.raises(OfferAnswerError):
        oa.receive_answer(sdp("m=audio 6002 RTP/AVP 0"))


def test_two_negotiators_agree() -> None:
    caller = alice(video_port=4002, audio_codecs=[OPUS, PCMA, PCMU, TELEPHONE_EVENT])
    callee = OfferAnswer(
        "198.51.100.20",
        7000,
        video_port=7002,
        audio_codecs=[PCMU, OPUS, TELEPHONE_EVENT],
        video_codecs=[VP8],
    )
    answer = callee.receive_offer(parse_sdp(bytes(caller.create_offer())))
    caller.receive_answer(parse_sdp(bytes(answer)))
    ours, theirs = caller.negotiated, callee.negotiated
    assert [s.codec.name if s.codec else None for s in ours] == ["PCMU", "VP8"]
    assert [s.codec.name if s.codec else None for s in theirs] == ["PCMU", "VP8"]
    assert (ours[0].remote_address, ours[0].remote_port) == ("198.51.100.20", 7000)
    assert (theirs[1].remote_address, theirs[1].remote_port) == ("192.0.2.1", 4002)
    assert ours[0].telephone_event == theirs[0].telephone_event == 101


# -- hold and resume ------------------------------------------------------------------


def answer_as_peer(offer: SessionDescription, peer_direction: Direction) -> SessionDescription:
    """The peer's answer: same codec, direction limited by the peer's own wish."""
    direction = peer_direction.intersect(offer.media[0].direction.reversed())
    return sdp("m=audio 6000 RTP/AVP 0", f"a={direction.value}", origin="- 7 7 IN IP4 h")


def test_we_hold_and_resume() -> None:
    oa = alice()
    oa.receive_offer(sdp("m=audio 5000 RTP/AVP 0"))
    held = oa.hold()
    assert oa.on_hold
    assert held.media[0].direction is Direction.SENDONLY
    oa.receive_answer(answer_as_peer(held, Direction.SENDRECV))
    assert oa.negotiated[0].direction is Direction.SENDONLY
    resumed = oa.resume()
    assert not oa.on_hold
    assert resumed.media[0].direction is Direction.SENDRECV
    oa.receive_answer(answer_as_peer(resumed, Direction.SENDRECV))
    assert oa.negotiated[0].direction is Direction.SENDRECV


def test_peer_holds_us_and_we_hold_too() -> None:
    oa = alice()
    oa.receive_offer(sdp("m=audio 5000 RTP/AVP 0"))
    # The peer holds us: our answer is recvonly.
    answer = oa.receive_offer(sdp("m=audio 5000 RTP/AVP 0", "a=sendonly"))
    assert answer.media[0].direction is Direction.RECVONLY
    assert oa.negotiated[0].direction is Direction.RECVONLY
    # We hold as well: the stream was recvonly, so it becomes inactive (§8.4).
    held = oa.hold()
    assert held.media[0].direction is Direction.INACTIVE
    oa.receive_answer(answer_as_peer(held, Direction.SENDONLY))
    assert oa.negotiated[0].direction is Direction.INACTIVE
    # While we hold, a re-offer from the peer taking us off hold gets sendonly.
    answer = oa.receive_offer(sdp("m=audio 5000 RTP/AVP 0", "a=sendrecv"))
    assert answer.media[0].direction is Direction.SENDONLY
    # We resume while the peer... is no longer holding: sendrecv both ways.
    resumed = oa.resume()
    assert resumed.media[0].direction is Direction.SENDRECV
    oa.receive_answer(answer_as_peer(resumed, Direction.SENDRECV))
    assert oa.negotiated[0].direction is Direction.SENDRECV


def test_resume_while_peer_still_holds_us() -> None:
    oa = alice()
    oa.create_offer()
    oa.receive_answer(sdp("m=audio 6000 RTP/AVP 0"))
    oa.receive_offer(sdp("m=audio 6000 RTP/AVP 0", "a=sendonly"))  # the peer holds us
    assert oa.hold().media[0].direction is Direction.INACTIVE
    oa.cancel_offer()  # the hold re-INVITE got 491
    assert oa.state is OfferAnswerState.STABLE
    resumed = oa.resume()
    assert resumed.media[0].direction is Direction.SENDRECV
    oa.receive_answer(answer_as_peer(resumed, Direction.SENDONLY))
    assert oa.negotiated[0].direction is Direction.RECVONLY


# -- re-offers and session versions (RFC 3264 §8) ----------------------------------------


def test_sess_version_increments_only_on_change() -> None:
    oa = alice()
    offer = oa.create_offer()
    assert offer.origin.sess_version == 1000
    oa.receive_answer(sdp("m=audio 6000 RTP/AVP 0"))
    same = oa.create_offer()  # session refresh: nothing changed
    assert same.origin.sess_version == 1000
    assert same == offer
    oa.receive_answer(sdp("m=audio 6000 RTP/AVP 0"))
    held = oa.hold()
    assert held.origin.sess_version == 1001
    oa.receive_answer(sdp("m=audio 6000 RTP/AVP 0", "a=recvonly"))
    # The peer re-offers without a=fmtp for 101: our answer drops ours, a change.
    answer = oa.receive_offer(
        sdp("m=audio 6000 RTP/AVP 0 8 101", "a=rtpmap:101 telephone-event/8000")
    )
    assert answer.media[0].direction is Direction.SENDONLY
    assert answer.media[0].fmtp(101) is None
    assert answer.origin.sess_version == 1002
    # The same re-offer again (a session refresh): our answer is unchanged, so is the version.
    again = oa.receive_offer(
        sdp("m=audio 6000 RTP/AVP 0 8 101", "a=rtpmap:101 telephone-event/8000")
    )
    assert again.origin.sess_version == 1002
    assert oa.resume().origin.sess_version == 1003
    assert oa.session_version == 1003


def test_cancelled_offer_still_counts_for_the_version() -> None:
    oa = alice()
    oa.create_offer()
    oa.receive_answer(sdp("m=audio 6000 RTP/AVP 0"))
    assert oa.hold().origin.sess_version == 1001
    oa.cancel_offer()
    # The peer may have seen 1001: the next different SDP goes on from there.
    assert oa.resume().origin.sess_version == 1002


def test_explicit_initial_session_version() -> None:
    offer = alice(session_id=77, session_version=3).create_offer()
    assert (offer.origin.sess_id, offer.origin.sess_version) == ("77", 3)


def test_reoffer_keeps_m_line_order_count_and_payload_types() -> None:
    oa = alice(audio_codecs=[PCMU, TELEPHONE_EVENT])
    oa.receive_offer(
        sdp(
            "m=video 5002 RTP/AVP 31",
            "m=audio 5000 RTP/AVP 0 96",
            "a=rtpmap:96 telephone-event/8000",
            "m=application 5004 udp wb",
        )
    )
    reoffer = oa.create_offer()
    assert [(m.media, m.port, m.proto, m.formats) for m in reoffer.media] == [
        ("video", 0, "RTP/AVP", ["31"]),
        ("audio", 4000, "RTP/AVP", ["0", "96"]),  # telephone-event stays on 96, not 101
        ("application", 0, "udp", ["wb"]),
    ]
    assert reoffer.media[1].rtpmap()["96"].encoding_name == "telephone-event"


def test_reoffer_with_fewer_m_lines_is_refused() -> None:
    oa = alice()
    oa.receive_offer(sdp("m=audio 5000 RTP/AVP 0", "m=video 5002 RTP/AVP 31"))
    with pytest.raises(SdpError, match="offer has 1 m-lines, the session 2"):
        oa.receive_offer(sdp("m=audio 5000 RTP/AVP 0"))
    assert oa.state is OfferAnswerState.STABLE


def test_peer_reoffer_changes_address_and_codec() -> None:
    oa = alice()
    oa.receive_offer(sdp("m=audio 5000 RTP/AVP 0 8"))
    assert oa.negotiated[0].codec == PCMU
    oa.receive_offer(
        parse_sdp(
            "v=0\r\no=- 100 101 IN IP4 h\r\ns=-\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\n"
            "m=audio 5100 RTP/AVP 8\r\n"
        )
    )
    stream = oa.negotiated[0]
    assert (stream.remote_address, stream.remote_port) == ("203.0.113.5", 5100)
    assert stream.codec == PCMA


# -- the exchange's states ---------------------------------------------------------------


def test_glare_second_offer_while_ours_is_outstanding() -> None:
    oa = alice()
    oa.create_offer()
    with pytest.raises(GlareError) as info:
        oa.receive_offer(sdp("m=audio 5000 RTP/AVP 0"))
    assert info.value.status == 491
    assert oa.state is OfferAnswerState.OFFER_SENT


def test_out_of_order_calls() -> None:
    oa = alice()
    with pytest.raises(OfferAnswerError, match="answer received in state idle"):
        oa.receive_answer(sdp("m=audio 5000 RTP/AVP 0"))
    with pytest.raises(OfferAnswerError, match="no offer to answer"):
        oa.create_answer()
    with pytest.raises(OfferAnswerError, match="no offer outstanding"):
        oa.cancel_offer()
    with pytest.raises(OfferAnswerError, match="no offer to reject"):
        oa.reject_offer()
    oa.create_offer()
    with pytest.raises(OfferAnswerError, match="already outstanding") as info:
        oa.create_offer()
    assert info.value.status == 491
    with pytest.raises(OfferAnswerError):
        oa.hold()
    assert not oa.on_hold


def test_two_step_answer_and_reject() -> None:
    oa = alice()
    oa.set_remote_offer(sdp("m=audio 5000 RTP/AVP 0"))
    assert oa.state is OfferAnswerState.OFFER_RECEIVED
    with pytest.raises(OfferAnswerError) as info:
        oa.set_remote_offer(sdp("m=audio 5000 RTP/AVP 0"))
    assert info.value.status == 500
    with pytest.raises(OfferAnswerError, match="answer the peer's offer"):
        oa.create_offer()
    oa.reject_offer()  # the INVITE got 488
    assert oa.state is OfferAnswerState.IDLE
    oa.set_remote_offer(sdp("m=audio 5000 RTP/AVP 0"))
    answer = oa.create_answer()
    assert oa.state is OfferAnswerState.STABLE
    assert answer.media[0].formats == ["0"]
    assert oa.local_description == answer


def test_offer_in_2xx_answer_in_ack() -> None:
    # INVITE without a body: the UAS offers in the 200, the UAC answers in the ACK.
    uac = alice()
    answer = uac.receive_offer(sdp("m=audio 5000 RTP/AVP 8 0"))
    assert answer.media[0].formats == ["0", "8"]
    assert uac.state is OfferAnswerState.STABLE


# -- any offer gets a well-formed answer ----------------------------------------------------

_RTPMAPS = st.sampled_from(
    [
        "PCMU/8000",
        "pcma/8000",
        "telephone-event/8000",
        "telephone-event/48000",
        "opus/48000/2",
        "iLBC/8000",
        "H264/90000",
        "VP8/90000",
        "G722/8000",
        "bogus",
    ]
)


@st.composite
def _offers(draw: st.DrawFn) -> SessionDescription:
    lines: list[str] = []
    for _ in range(draw(st.integers(0, 4))):
        media = draw(st.sampled_from(["audio", "video", "application"]))
        proto = draw(st.sampled_from(["RTP/AVP", "RTP/AVP", "RTP/SAVP"]))
        pts = draw(st.lists(st.integers(0, 127), min_size=1, max_size=5, unique=True))
        port = draw(st.sampled_from([0, 5000, 6000]))
        lines.append(f"m={media} {port} {proto} {' '.join(map(str, pts))}")
        lines.extend(f"a=rtpmap:{pt} {draw(_RTPMAPS)}" for pt in pts if draw(st.booleans()))
        lines.append(f"a={draw(st.sampled_from(list(Direction))).value}")
    return sdp(*lines)


@settings(max_examples=200)
@given(_offers())
def test_any_offer_gets_an_answer_that_fits_it(offer: SessionDescription) -> None:
    oa = alice(video_port=4002, audio_codecs=[OPUS, PCMU, PCMA, TELEPHONE_EVENT])
    answer = oa.receive_offer(offer)
    assert len(answer.media) == len(offer.media) == len(oa.negotiated)
    offered_codecs = [{c.payload_type: c.key for c in media_codecs(m)} for m in offer.media]
    for om, am, stream, offered in zip(
        offer.media, answer.media, oa.negotiated, offered_codecs, strict=True
    ):
        assert (am.media, am.proto) == (om.media, om.proto)
        if am.port == 0:
            assert am.formats == om.formats and stream.rejected
            continue
        assert om.port != 0 and om.proto == "RTP/AVP" and om.media in {"audio", "video"}
        assert set(am.formats) <= set(om.formats)
        for codec in media_codecs(am):
            assert offered[codec.payload_type] == codec.key
        assert stream.codec is not None and str(stream.codec.payload_type) == am.formats[0]
        assert am.direction is offer.effective_direction(om).reversed()
    assert parse_sdp(bytes(answer)) == answer
    if not answer.media:
        return  # nothing to keep: a re-offer would add our streams (§8.1)
    # the session goes on with a re-offer of the same shape (§8)
    reoffer = oa.create_offer()
    assert [(m.media, m.port == 0) for m in reoffer.media] == [
        (m.media, m.port == 0) for m in answer.media
    ]
