"""Codecs: the ready-made table, static payload types (RFC 3551) and rtpmap parsing."""

from __future__ import annotations

import pytest

from sipwire.sdp import (
    G722,
    H264,
    KNOWN_CODECS,
    OPUS,
    PCMA,
    PCMU,
    STATIC_PAYLOAD_TYPES,
    TELEPHONE_EVENT,
    VP8,
    VP9,
    Codec,
    SdpError,
    codec_from_rtpmap,
    fmtp_params,
    media_codecs,
    parse_sdp,
)


def test_ready_made_codecs() -> None:
    assert (PCMU.name, PCMU.clock_rate, PCMU.channels, PCMU.payload_type) == ("PCMU", 8000, 1, 0)
    assert (PCMA.payload_type, G722.payload_type) == (8, 9)
    assert G722.clock_rate == 8000  # RFC 3551 §4.5.2: signalled as 8000 though it samples at 16k
    assert TELEPHONE_EVENT.rtpmap == "telephone-event/8000"
    assert TELEPHONE_EVENT.payload_type == 101
    assert OPUS.rtpmap == "opus/48000/2"
    assert OPUS.payload_type == 111
    assert H264.rtpmap == "H264/90000"
    assert H264.fmtp == "profile-level-id=42e01f;packetization-mode=1"
    assert (VP8.rtpmap, VP9.rtpmap) == ("VP8/90000", "VP9/90000")
    assert KNOWN_CODECS["opus"] is OPUS
    assert KNOWN_CODECS["telephone-event"] is TELEPHONE_EVENT
    assert KNOWN_CODECS["h264"] is H264
    assert str(PCMU) == "PCMU/8000"


def test_static_payload_types() -> None:
    assert STATIC_PAYLOAD_TYPES[0].key == ("pcmu", 8000, 1)
    assert STATIC_PAYLOAD_TYPES[9].key == ("g722", 8000, 1)
    assert STATIC_PAYLOAD_TYPES[10].key == ("l16", 44100, 2)
    assert STATIC_PAYLOAD_TYPES[34].rtpmap == "H263/90000"
    assert 96 not in STATIC_PAYLOAD_TYPES
    assert all(pt == c.payload_type for pt, c in STATIC_PAYLOAD_TYPES.items())


def test_matching_is_case_insensitive_and_needs_clock_rate_and_channels() -> None:
    assert Codec("pcmu", 8000).matches(PCMU)
    assert not Codec("PCMU", 16000).matches(PCMU)
    assert not Codec("opus", 48000, 1).matches(OPUS)
    assert Codec("OPUS", 48000, 2, payload_type=109).matches(OPUS)
    assert Codec("telephone-event", 8000).is_telephone_event
    assert not Codec("telephone-event", 48000).matches(TELEPHONE_EVENT)


def test_h264_matches_only_the_same_packetization_mode() -> None:
    mode0 = Codec("H264", 90000, fmtp="profile-level-id=42e01f")
    mode1 = Codec("h264", 90000, fmtp="profile-level-id=640c1f; packetization-mode=1")
    assert mode1.matches(H264)
    assert not mode0.matches(H264)
    assert mode0.matches(Codec("H264", 90000, fmtp="packetization-mode=0"))


def test_codec_from_rtpmap() -> None:
    assert codec_from_rtpmap("96 telephone-event/8000", "0-15") == Codec(
        "telephone-event", 8000, 1, "0-15", 96
    )
    assert codec_from_rtpmap("111 opus/48000/2") == Codec("opus", 48000, 2, None, 111)
    for bad in ("128 x/8000", "x PCMU/8000", "96 PCMU", "96", "-1 a/1"):
        with pytest.raises(SdpError):
            codec_from_rtpmap(bad)


def test_fmtp_params() -> None:
    assert fmtp_params("profile-level-id=42e01f; Packetization-Mode=1;;flag") == {
        "profile-level-id": "42e01f",
        "packetization-mode": "1",
        "flag": "",
    }
    assert fmtp_params(None) == {}


def test_media_codecs_resolves_static_types_and_skips_unknown_formats() -> None:
    md = parse_sdp(
        "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\n"
        "m=audio 4000 RTP/AVP 0 18 97 101 99 x 300\r\n"
        "a=rtpmap:97 iLBC/8000\r\n"
        "a=fmtp:97 mode=30\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n"
        "a=fmtp:18 annexb=no\r\n"
    ).media[0]
    assert media_codecs(md) == [
        Codec("PCMU", 8000, 1, None, 0),
        Codec("G729", 8000, 1, "annexb=no", 18),
        Codec("iLBC", 8000, 1, "mode=30", 97),
        Codec("telephone-event", 8000, 1, None, 101),
    ]


def test_with_payload_type() -> None:
    moved = TELEPHONE_EVENT.with_payload_type(96)
    assert (moved.payload_type, moved.fmtp) == (96, "0-16")
    assert TELEPHONE_EVENT.with_payload_type(96, "0-15").fmtp == "0-15"
