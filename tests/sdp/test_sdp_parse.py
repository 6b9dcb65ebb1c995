"""SDP syntax (RFC 8866): parsing the RFC examples, serializing, lenient and strict input."""

from __future__ import annotations

import pytest

from sipwire.errors import ParseError
from sipwire.sdp import (
    Attribute,
    Bandwidth,
    Connection,
    Direction,
    ExtraLine,
    MediaDescription,
    Origin,
    RtpMap,
    SdpError,
    SessionDescription,
    Timing,
    parse_rtpmap,
    parse_sdp,
)


def crlf(text: str) -> str:
    return text.replace("\n", "\r\n")


# RFC 3264 §10.1: the offer and the answer of the basic exchange.
RFC3264_OFFER = crlf(
    """v=0
o=alice 2890844526 2890844526 IN IP4 host.anywhere.com
s=
c=IN IP4 host.anywhere.com
t=0 0
m=audio 49170 RTP/AVP 0
a=rtpmap:0 PCMU/8000
m=video 51372 RTP/AVP 31
a=rtpmap:31 H261/90000
m=video 53000 RTP/AVP 32
a=rtpmap:32 MPV/90000
"""
)

RFC3264_ANSWER = crlf(
    """v=0
o=bob 2890844730 2890844730 IN IP4 host.example.com
s=
c=IN IP4 host.example.com
t=0 0
m=audio 49920 RTP/AVP 0
a=rtpmap:0 PCMU/8000
m=video 0 RTP/AVP 31
m=video 53000 RTP/AVP 32
a=rtpmap:32 MPV/90000
"""
)

# RFC 4317 §2.1: audio and video, dynamic payload type for iLBC.
RFC4317_OFFER = crlf(
    """v=0
o=alice 2890844526 2890844526 IN IP4 host.atlanta.example.com
s=
c=IN IP4 host.atlanta.example.com
t=0 0
m=audio 49170 RTP/AVP 0 8 97
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:97 iLBC/8000
m=video 51372 RTP/AVP 31 32
a=rtpmap:31 H261/90000
a=rtpmap:32 MPV/90000
"""
)

# RFC 4317 §3.1: Bob puts Alice on hold.
RFC4317_HOLD = crlf(
    """v=0
o=bob 2808844564 2808844565 IN IP4 host.biloxi.example.com
s=
c=IN IP4 host.biloxi.example.com
t=0 0
m=audio 49170 RTP/AVP 0 97
a=rtpmap:0 PCMU/8000
a=rtpmap:97 iLBC/8000
a=sendonly
"""
)

# RFC 8866 §5: the example session description, with every session-level field.
RFC8866_EXAMPLE = crlf(
    """v=0
o=jdoe 3724394400 3724394405 IN IP4 198.51.100.1
s=Call to John Smith
i=SDP Offer #1
u=http://www.jdoe.example.com/home.html
e=Jane Doe <jane@jdoe.example.com>
p=+1 617 555-6011
c=IN IP4 198.51.100.1
t=0 0
m=audio 49170 RTP/AVP 0
m=audio 49180 RTP/AVP 0
m=video 51372 RTP/AVP 99
c=IN IP6 2001:db8::2
a=rtpmap:99 h263-1998/90000
"""
)


# -- the RFC examples ------------------------------------------------------------


def test_rfc3264_offer_fields() -> None:
    sd = parse_sdp(RFC3264_OFFER)
    assert sd.version == 0
    assert sd.origin == Origin("alice", "2890844526", 2890844526, "IN", "IP4", "host.anywhere.com")
    assert sd.session_name == ""
    assert sd.connection == Connection("IN", "IP4", "host.anywhere.com")
    assert sd.times == [Timing(0, 0)]
    assert [(m.media, m.port, m.proto, m.formats) for m in sd.media] == [
        ("audio", 49170, "RTP/AVP", ["0"]),
        ("video", 51372, "RTP/AVP", ["31"]),
        ("video", 53000, "RTP/AVP", ["32"]),
    ]
    assert sd.media[1].rtpmap() == {"31": RtpMap("H261", 90000, 1)}
    assert sd.media[0].attributes == [Attribute("rtpmap", "0 PCMU/8000")]


@pytest.mark.parametrize("text", [RFC3264_OFFER, RFC3264_ANSWER, RFC4317_OFFER, RFC4317_HOLD])
def test_rfc_examples_serialize_byte_identically(text: str) -> None:
    sd = parse_sdp(text.encode())
    assert bytes(sd) == text.encode()
    assert str(sd) == text
    assert parse_sdp(bytes(sd)) == sd


def test_rfc3264_answer_rejected_stream_has_port_zero_and_no_attributes() -> None:
    sd = parse_sdp(RFC3264_ANSWER)
    rejected = sd.media[1]
    assert (rejected.port, rejected.formats, rejected.attributes) == (0, ["31"], [])


def test_rfc4317_dynamic_payload_type() -> None:
    audio = parse_sdp(RFC4317_OFFER).media[0]
    assert audio.rtpmap() == {
        "0": RtpMap("PCMU", 8000),
        "8": RtpMap("PCMA", 8000),
        "97": RtpMap("iLBC", 8000),
    }
    assert audio.fmtp(97) is None


def test_rfc4317_hold_direction() -> None:
    sd = parse_sdp(RFC4317_HOLD)
    assert sd.origin.sess_version == 2808844565
    assert sd.media[0].direction is Direction.SENDONLY
    assert sd.effective_direction(sd.media[0]) is Direction.SENDONLY


def test_rfc8866_example() -> None:
    sd = parse_sdp(RFC8866_EXAMPLE)
    assert sd.session_name == "Call to John Smith"
    assert sd.information == "SDP Offer #1"
    assert sd.uri == "http://www.jdoe.example.com/home.html"
    assert sd.emails == ["Jane Doe <jane@jdoe.example.com>"]
    assert sd.phones == ["+1 617 555-6011"]
    video = sd.media[2]
    assert video.connection == Connection("IN", "IP6", "2001:db8::2")
    assert sd.connection_for(video) == Connection("IN", "IP6", "2001:db8::2")
    assert sd.connection_for(sd.media[0]) == Connection("IN", "IP4", "198.51.100.1")
    assert video.rtpmap()["99"] == RtpMap("h263-1998", 90000, 1)
    assert str(sd) == RFC8866_EXAMPLE


def test_timing_repeat_zone_key_bandwidth_and_multicast() -> None:
    text = crlf(
        """v=0
o=mhandley 2890844526 2890842807 IN IP4 126.16.64.4
s=SDP Seminar
c=IN IP4 224.2.17.12/127/2
b=CT:384
t=3034423619 3042462419
r=604800 3600 0 90000
r=7d 1h 0 25h
t=3042462419 3042462419
z=2882844526 -1h 2898848070 0
k=prompt
a=recvonly
m=audio 49170/2 RTP/AVP 0
i=main audio
b=AS:64
k=clear:secret
"""
    )
    sd = parse_sdp(text)
    assert sd.connection is not None
    assert sd.connection.address == "224.2.17.12/127/2"
    assert sd.connection.host == "224.2.17.12"
    assert sd.bandwidths == [Bandwidth("CT", 384)]
    assert sd.times == [
        Timing(3034423619, 3042462419, ["604800 3600 0 90000", "7d 1h 0 25h"]),
        Timing(3042462419, 3042462419),
    ]
    assert sd.zone == "2882844526 -1h 2898848070 0"
    assert sd.key == "prompt"
    audio = sd.media[0]
    assert (audio.port, audio.port_count) == (49170, 2)
    assert audio.information == "main audio"
    assert audio.bandwidths == [Bandwidth("AS", 64)]
    assert audio.key == "clear:secret"
    # session-level a=recvonly is inherited by a media section without its own.
    assert audio.explicit_direction is None
    assert audio.direction is Direction.SENDRECV
    assert sd.direction is Direction.RECVONLY
    assert sd.effective_direction(audio) is Direction.RECVONLY
    assert str(sd) == text


# -- serializing -------------------------------------------------------------------


def test_serialize_built_description_in_rfc_order() -> None:
    sd = SessionDescription(
        origin=Origin("-", "42", 7, "IN", "IP4", "192.0.2.1"),
        session_name="call",
        connection=Connection.for_address("192.0.2.1"),
        attributes=[Attribute("tool", "sipwire")],
        media=[
            MediaDescription(
                "audio",
                5004,
                "RTP/AVP",
                ["0", "101"],
                attributes=[Attribute("rtpmap", "101 telephone-event/8000"), Attribute("sendrecv")],
            )
        ],
    )
    assert bytes(sd) == (
        b"v=0\r\no=- 42 7 IN IP4 192.0.2.1\r\ns=call\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
        b"a=tool:sipwire\r\nm=audio 5004 RTP/AVP 0 101\r\n"
        b"a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
    )
    assert parse_sdp(bytes(sd)) == sd


def test_connection_for_ipv6() -> None:
    assert Connection.for_address("2001:db8::1") == Connection("IN", "IP6", "2001:db8::1")
    assert str(Connection.for_address("198.51.100.7")) == "IN IP4 198.51.100.7"


def test_known_lines_out_of_order_are_serialized_in_rfc_order() -> None:
    # RFC 7728's examples put t= before c=; a= before c= in media is also seen in the wild.
    sd = parse_sdp(
        "v=0\no=a 1 1 IN IP4 h\ns=-\nt=0 0\nc=IN IP4 h\nm=audio 1 RTP/AVP 0\na=x\nc=IN IP4 g\n"
    )
    assert str(sd) == crlf(
        "v=0\no=a 1 1 IN IP4 h\ns=-\nc=IN IP4 h\nt=0 0\nm=audio 1 RTP/AVP 0\nc=IN IP4 g\na=x\n"
    )


# -- attribute helpers -------------------------------------------------------------


def test_attribute_helpers() -> None:
    md = parse_sdp(
        crlf(
            """v=0
o=- 1 1 IN IP4 h
s=-
t=0 0
m=audio 1 RTP/AVP 0 96 111
a=rtpmap:96 telephone-event/8000
a=rtpmap:111 opus/48000/2
a=fmtp:96 0-16
a=fmtp:111 minptime=10; useinbandfec=1
a=rtcp-mux
a=ptime:20
a=ssrc:1 cname:x
a=ssrc:1 msid:y
a=rtpmap:bogus
"""
        )
    ).media[0]
    assert md.get("ptime") == "20"
    assert md.get("rtcp-mux") is None and md.has("rtcp-mux")
    assert md.get("nothing") is None and not md.has("nothing")
    assert md.get_all("ssrc") == ["1 cname:x", "1 msid:y"]
    assert md.get_all("rtcp-mux") == [""]
    # the malformed rtpmap is skipped, and static PT 0 has no rtpmap line
    assert md.rtpmap() == {
        "96": RtpMap("telephone-event", 8000, 1),
        "111": RtpMap("opus", 48000, 2),
    }
    assert md.fmtp("96") == "0-16"
    assert md.fmtp(111) == "minptime=10; useinbandfec=1"
    assert md.fmtp(0) is None
    assert md.remove("ssrc") == 2
    md.add("sendonly")
    assert md.direction is Direction.SENDONLY
    md.direction = Direction.INACTIVE
    assert md.attributes[-1] == Attribute("inactive")
    assert [a for a in md.attributes if a.name in {"sendonly", "inactive"}] == [
        Attribute("inactive")
    ]


def test_direction_setter_keeps_position_and_last_direction_wins() -> None:
    sd = parse_sdp("v=0\no=- 1 1 IN IP4 h\ns=-\nt=0 0\na=a\na=sendonly\na=b\na=recvonly\n")
    assert sd.direction is Direction.RECVONLY
    sd.direction = Direction.SENDRECV
    assert sd.attributes == [Attribute("a"), Attribute("sendrecv"), Attribute("b")]


def test_direction_algebra() -> None:
    assert Direction.SENDONLY.reversed() is Direction.RECVONLY
    assert Direction.INACTIVE.reversed() is Direction.INACTIVE
    assert Direction.SENDRECV.intersect(Direction.RECVONLY) is Direction.RECVONLY
    assert Direction.SENDONLY.intersect(Direction.RECVONLY) is Direction.INACTIVE
    assert Direction.from_flags(True, True) is Direction.SENDRECV


def test_parse_rtpmap() -> None:
    assert parse_rtpmap("111 opus/48000/2") == ("111", RtpMap("opus", 48000, 2))
    assert parse_rtpmap("96 VP8/90000") == ("96", RtpMap("VP8", 90000, 1))
    for bad in ("96", "96 VP8", "96 VP8/x", "96 /8000", "96 a/1/2/3", "96 a/1/x"):
        with pytest.raises(SdpError):
            parse_rtpmap(bad)


# -- leniency ---------------------------------------------------------------------


def test_bare_lf_trailing_whitespace_and_blank_lines() -> None:
    sd = parse_sdp(
        "\ufeffv=0  \no=- 1 1 IN IP4 h \t\ns=x\nt=0 0\n\nm=audio 1 RTP/AVP 0 \na=sendrecv \n\n"
    )
    assert sd.origin.address == "h"
    assert sd.media[0].formats == ["0"]
    assert sd.media[0].attributes == [Attribute("sendrecv")]
    assert str(sd).count("\r\n") == 6


def test_missing_s_and_t_lines_get_defaults() -> None:
    sd = parse_sdp("v=0\r\no=- 1 1 IN IP4 h\r\nm=audio 1 RTP/AVP 0\r\n")
    assert sd.session_name == "-"
    assert sd.times == [Timing(0, 0)]
    assert str(sd) == crlf("v=0\no=- 1 1 IN IP4 h\ns=-\nt=0 0\nm=audio 1 RTP/AVP 0\n")


def test_session_name_keeps_its_space() -> None:
    assert parse_sdp("v=0\no=- 1 1 IN IP4 h\ns= \nt=0 0\n").session_name == " "
    assert parse_sdp("v=0\no=- 1 1 IN IP4 h\ns=\nt=0 0\n").session_name == ""


def test_username_with_spaces_is_kept_whole() -> None:
    sd = parse_sdp("v=0\no=Some UA 5 6 IN IP4 h\ns=-\nt=0 0\n")
    assert sd.origin.username == "Some UA"
    assert (sd.origin.sess_id, sd.origin.sess_version) == ("5", 6)


def test_rejected_m_line_without_formats_is_accepted() -> None:
    sd = parse_sdp("v=0\no=- 1 1 IN IP4 h\ns=-\nt=0 0\nm=video 0 RTP/AVP\n")
    assert (sd.media[0].port, sd.media[0].formats) == (0, [])


def test_non_utf8_bytes_survive() -> None:
    raw = b"v=0\r\no=- 1 1 IN IP4 h\r\ns=caf\xe9\r\nt=0 0\r\n"
    sd = parse_sdp(raw)
    assert bytes(sd) == raw


def test_unknown_and_surplus_lines_are_kept_in_place() -> None:
    text = crlf(
        """v=0
o=- 1 1 IN IP4 h
x=after origin
s=-
t=0 0
y=after timing
a=one
w=between attributes
a=two
m=audio 1 RTP/AVP 0
c=IN IP4 224.2.1.1/127
c=IN IP4 224.2.1.2/127
a=three
s=misplaced
"""
    )
    sd = parse_sdp(text)
    assert sd.extra_lines == [
        ExtraLine("x", "after origin", "o", 1),
        ExtraLine("y", "after timing", "t", 1),
        ExtraLine("w", "between attributes", "a", 1),
    ]
    assert sd.attributes == [Attribute("one"), Attribute("two")]
    audio = sd.media[0]
    assert audio.connection == Connection("IN", "IP4", "224.2.1.1/127")
    assert audio.extra_lines == [
        ExtraLine("c", "IN IP4 224.2.1.2/127", "c", 1),
        ExtraLine("s", "misplaced", "a", 1),
    ]
    assert str(sd) == text
    assert parse_sdp(str(sd)) == sd


def test_surplus_single_valued_lines_follow_the_first() -> None:
    sd = parse_sdp("v=0\no=- 1 1 IN IP4 h\ns=a\ni=1\nt=0 0\ni=2\ns=b\n")
    assert (sd.session_name, sd.information) == ("a", "1")
    assert sd.extra_lines == [ExtraLine("s", "b", "s", 1), ExtraLine("i", "2", "i", 1)]
    assert str(sd) == crlf("v=0\no=- 1 1 IN IP4 h\ns=a\ns=b\ni=1\ni=2\nt=0 0\n")
    assert parse_sdp(str(sd)) == sd


def test_extra_line_without_anchor_goes_to_section_end() -> None:
    sd = parse_sdp("v=0\no=- 1 1 IN IP4 h\ns=-\nt=0 0\na=x\n")
    sd.extra_lines.append(ExtraLine("y", "1"))
    assert str(sd).endswith("a=x\r\ny=1\r\n")


# -- malformed input ----------------------------------------------------------------

HEAD = "v=0\no=- 1 1 IN IP4 h\ns=-\nt=0 0\n"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("\r\n\r\n", "empty"),
        ("hello world", "not a <type>=<value> line"),
        ("o=- 1 1 IN IP4 h\nv=0\n", "does not start with v="),
        ("v=1\no=- 1 1 IN IP4 h\n", "unsupported SDP version"),
        ("V=0\n", "not a <type>=<value> line"),
        (" v=0\n", "not a <type>=<value> line"),
        ("v=0\ns=-\nt=0 0\n", "missing o= line"),
        ("v=0\no=- 1 IN IP4 h\n", "o= line needs 6 fields"),
        ("v=0\no=- 1 x IN IP4 h\n", "sess-version is not a number"),
        ("v=0\no=- 1 " + "9" * 30 + " IN IP4 h\n", "sess-version is not a number"),
        (HEAD + "o=- 1 1 IN IP4 h\n", "more than one o= line"),
        (HEAD + "v=0\n", "v= line after the first line"),
        (HEAD + "c=IN IP4\n", "c= line needs 3 fields"),
        (HEAD + "b=AS64\n", "b= line is not <bwtype>:<bandwidth>"),
        (HEAD + "b=AS:lots\n", "bandwidth is not a number"),
        ("v=0\no=- 1 1 IN IP4 h\nt=now 0\n", "start-time is not a number"),
        ("v=0\no=- 1 1 IN IP4 h\nt=0\n", "t= line needs 2 fields"),
        ("v=0\no=- 1 1 IN IP4 h\nr=7d 1h 0\nt=0 0\n", "r= line before any t= line"),
        (HEAD + "a=\n", "a= line without an attribute name"),
        (HEAD + "a=:x\n", "a= line without an attribute name"),
        (HEAD + "m=audio\n", "m= line needs"),
        (HEAD + "m=audio 49170 RTP/AVP\n", "m= line without formats"),
        (HEAD + "m=audio port RTP/AVP 0\n", "port is not a number"),
        (HEAD + "m=audio -1 RTP/AVP 0\n", "port is not a number"),
        (HEAD + "m=audio 70000 RTP/AVP 0\n", "port 70000 out of range"),
        (HEAD + "m=audio 4000/ RTP/AVP 0\n", "number of ports is not a number"),
        (HEAD + "m=audio \u0664\u0660\u0660\u0660 RTP/AVP 0\n", "port is not a number"),
        (HEAD + "m=audio 1 RTP/AVP 0\no=- 1 1 IN IP4 h\n", "more than one o= line"),
        (HEAD + "a=x\ry\n", "CR without LF"),
        (HEAD + "a=x\x00\n", "NUL"),
        (HEAD + "ab\n", "not a <type>=<value> line"),
    ],
)
def test_malformed(text: str, reason: str) -> None:
    with pytest.raises(SdpError) as info:
        parse_sdp(text)
    assert reason in info.value.reason
    assert isinstance(info.value, ParseError)
    assert info.value.status == 400


def test_error_names_the_line() -> None:
    with pytest.raises(SdpError) as info:
        parse_sdp(HEAD + "m=audio x RTP/AVP 0\n")
    assert info.value.line == 5
    assert info.value.reason.startswith("line 5: port is not a number")
