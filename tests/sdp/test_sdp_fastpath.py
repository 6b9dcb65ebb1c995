"""The SDP answer path, fast paths included, gives the bytes it gave before them.

``sipwire answer`` parses an offer, negotiates and serializes an answer for
every call, so that path has fast paths: a one-loop parser, a serializer
that skips the extra-line layout when there is nothing to interleave,
remembered codecs and ``c=``/``o=`` lines, and no copies of descriptions
nobody else sees. The expected values below were produced by the code as
it was before those went in; the last tests compare each fast path with
the general code it stands in for.
"""

from __future__ import annotations

import pytest

from sipwire.core.media import MediaError
from sipwire.core.sdp_media import MediaConfig, SdpMedia
from sipwire.sdp import (
    STATIC_PAYLOAD_TYPES,
    Attribute,
    Bandwidth,
    Codec,
    Connection,
    Direction,
    ExtraLine,
    MediaDescription,
    OfferAnswer,
    Origin,
    SdpError,
    SessionDescription,
    Timing,
    media_codecs,
    parse_sdp,
)
from sipwire.sdp.session import _interleave

OFFERS: dict[str, bytes] = {
    "sipp": (
        b"v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
        b"t=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    ),
    "baresip": (
        b"v=0\r\no=- 1830297478 3402127219 IN IP4 192.168.1.20\r\ns=baresip 3.10.1\r\n"
        b"c=IN IP4 192.168.1.20\r\nt=0 0\r\na=tool:baresip 3.10.1\r\n"
        b"m=audio 10064 RTP/AVP 111 9 0 8 101\r\nb=AS:128\r\na=rtpmap:111 opus/48000/2\r\n"
        b"a=fmtp:111 stereo=1;sprop-stereo=1\r\na=rtpmap:9 G722/8000\r\n"
        b"a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
        b"a=fmtp:101 0-15\r\na=rtcp-mux\r\na=ssrc:1928421355 cname:4a1b3c2d-e5f6\r\n"
        b"a=label:1\r\na=sendrecv\r\na=ptime:20\r\n"
    ),
    "linphone": (
        b"v=0\r\no=bob 2404 1379 IN IP4 192.168.0.12\r\ns=Talk\r\nc=IN IP4 192.168.0.12\r\n"
        b"b=AS:380\r\nt=0 0\r\n"
        b"a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitter,TTL\r\n"
        b"m=audio 7078 RTP/AVP 96 97 98 0 8 18 101 99 100\r\na=rtpmap:96 opus/48000/2\r\n"
        b"a=fmtp:96 useinbandfec=1\r\na=rtpmap:97 speex/16000\r\na=fmtp:97 vbr=on\r\n"
        b"a=rtpmap:98 speex/8000\r\na=fmtp:98 vbr=on\r\na=fmtp:18 annexb=yes\r\n"
        b"a=rtpmap:101 telephone-event/48000\r\na=rtpmap:99 telephone-event/16000\r\n"
        b"a=rtpmap:100 telephone-event/8000\r\na=rtcp-fb:* trr-int 1000\r\n"
        b"m=video 9078 RTP/AVP 96 97\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:97 H264/90000\r\n"
        b"a=fmtp:97 profile-level-id=42801F;packetization-mode=1\r\n"
    ),
    "hold_sendonly": (
        b"v=0\r\no=alice 1 2 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
        b"m=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
        b"a=fmtp:101 0-16\r\na=sendonly\r\n"
    ),
    "hold_old_style": (
        b"v=0\r\no=alice 1 3 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
        b"a=inactive\r\nm=audio 4000 RTP/AVP 0\r\n"
    ),
    "recvonly_media_over_session": (
        b"v=0\r\no=alice 1 3 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
        b"a=sendonly\r\nm=audio 4000 RTP/AVP 0\r\na=recvonly\r\n"
    ),
    "savp_then_avp": (
        b"v=0\r\no=- 7 7 IN IP4 10.0.0.2\r\ns=-\r\nt=0 0\r\nm=audio 5000 RTP/SAVP 0\r\n"
        b"c=IN IP4 10.0.0.2\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x\r\n"
        b"m=audio 5002 RTP/AVP 0 8\r\nc=IN IP4 10.0.0.3\r\n"
    ),
    "two_audio": (
        b"v=0\r\no=- 7 7 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\n"
        b"m=audio 5000 RTP/AVP 8\r\nm=audio 5002 RTP/AVP 0\r\nm=audio 0 RTP/AVP 0\r\n"
    ),
    "t38_only": (
        b"v=0\r\no=- 7 7 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\n"
        b"m=image 6000 udptl t38\r\na=T38FaxVersion:0\r\n"
    ),
    "dynamic_pcmu": (
        b"v=0\r\no=- 9 9 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\n"
        b"m=audio 5004 RTP/AVP 98 96 101\r\na=rtpmap:98 pcmu/8000\r\na=rtpmap:96 G722/8000\r\n"
        b"a=rtpmap:101 TELEPHONE-EVENT/8000\r\na=fmtp:101 0-16\r\na=fmtp:98 foo=bar\r\n"
        b"a=fmtp:98 second=ignored\r\na=rtpmap:98 PCMA/8000\r\n"
    ),
    "sloppy": (
        b"v=0\no=a b 1 1 IN IP4 10.0.0.5 \ns=sloppy \n\nc=IN\tIP4  10.0.0.5\nt=0 0\nx=unknown\n"
        b"m=audio  4002 RTP/AVP\t0  8\ny=media extra\na=rtpmap:8 PCMA/8000 \n"
        b"c=IN IP4 10.0.0.6\n"
    ),
    "ipv6": (
        b"v=0\r\no=- 5 5 IN IP6 2001:db8::1\r\ns=-\r\nc=IN IP6 2001:db8::1\r\nt=0 0\r\n"
        b"m=audio 4000 RTP/AVP 9 0 13\r\n"
    ),
}

CONFIGS: dict[str, MediaConfig] = {
    "default": MediaConfig(),
    "pcma_first": MediaConfig(codecs=("PCMA", "PCMU", "telephone-event")),
    "video": MediaConfig(
        codecs=("opus", "G722", "PCMU", "telephone-event"), video_codecs=("H264", "VP8")
    ),
}

# What follows the session-level lines of each answer (or the MediaError).
ANSWERS: dict[tuple[str, str], tuple[str, ...] | str] = {
    ("default", "sipp"): (
        "m=audio 20000 RTP/AVP 0",
        "a=rtpmap:0 PCMU/8000",
        "a=sendrecv",
    ),
    ("default", "baresip"): (
        "m=audio 20000 RTP/AVP 0 8 9 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:9 G722/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15",
        "a=sendrecv",
    ),
    ("default", "linphone"): (
        "m=audio 20000 RTP/AVP 0 8 100",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:100 telephone-event/8000",
        "a=sendrecv",
        "m=video 0 RTP/AVP 96 97",
    ),
    ("default", "hold_sendonly"): (
        "m=audio 20000 RTP/AVP 0 8 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=recvonly",
    ),
    ("default", "hold_old_style"): (
        "m=audio 20000 RTP/AVP 0",
        "a=rtpmap:0 PCMU/8000",
        "a=inactive",
    ),
    ("default", "recvonly_media_over_session"): (
        "m=audio 20000 RTP/AVP 0",
        "a=rtpmap:0 PCMU/8000",
        "a=sendonly",
    ),
    ("default", "savp_then_avp"): (
        "m=audio 0 RTP/SAVP 0",
        "m=audio 20000 RTP/AVP 0 8",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=sendrecv",
    ),
    ("default", "two_audio"): (
        "m=audio 20000 RTP/AVP 8",
        "a=rtpmap:8 PCMA/8000",
        "a=sendrecv",
        "m=audio 0 RTP/AVP 0",
        "m=audio 0 RTP/AVP 0",
    ),
    ("default", "t38_only"): "488 no acceptable stream in the offer",
    ("default", "dynamic_pcmu"): (
        "m=audio 20000 RTP/AVP 98 96 101",
        "a=rtpmap:98 pcmu/8000",
        "a=rtpmap:96 G722/8000",
        "a=rtpmap:101 TELEPHONE-EVENT/8000",
        "a=fmtp:98 foo=bar",
        "a=fmtp:101 0-16",
        "a=sendrecv",
    ),
    ("default", "sloppy"): (
        "m=audio 20000 RTP/AVP 0 8",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=sendrecv",
    ),
    ("default", "ipv6"): (
        "m=audio 20000 RTP/AVP 0 9",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:9 G722/8000",
        "a=sendrecv",
    ),
    ("pcma_first", "baresip"): (
        "m=audio 20000 RTP/AVP 8 0 101",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15",
        "a=sendrecv",
    ),
    ("pcma_first", "dynamic_pcmu"): (
        "m=audio 20000 RTP/AVP 98 101",
        "a=rtpmap:98 pcmu/8000",
        "a=rtpmap:101 TELEPHONE-EVENT/8000",
        "a=fmtp:98 foo=bar",
        "a=fmtp:101 0-16",
        "a=sendrecv",
    ),
    ("video", "baresip"): (
        "m=audio 20000 RTP/AVP 111 9 0 101",
        "a=rtpmap:111 opus/48000/2",
        "a=rtpmap:9 G722/8000",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:111 stereo=1;sprop-stereo=1",
        "a=fmtp:101 0-15",
        "a=sendrecv",
    ),
    ("video", "linphone"): (
        "m=audio 20000 RTP/AVP 96 0 100",
        "a=rtpmap:96 opus/48000/2",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:100 telephone-event/8000",
        "a=fmtp:96 useinbandfec=1",
        "a=sendrecv",
        "m=video 30000 RTP/AVP 97 96",
        "a=rtpmap:97 H264/90000",
        "a=rtpmap:96 VP8/90000",
        "a=fmtp:97 profile-level-id=42801F;packetization-mode=1",
        "a=sendrecv",
    ),
    ("video", "hold_sendonly"): (
        "m=audio 20000 RTP/AVP 0 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=recvonly",
    ),
    ("video", "savp_then_avp"): (
        "m=audio 0 RTP/SAVP 0",
        "m=audio 20000 RTP/AVP 0",
        "a=rtpmap:0 PCMU/8000",
        "a=sendrecv",
    ),
    ("video", "two_audio"): (
        "m=audio 0 RTP/AVP 8",
        "m=audio 20000 RTP/AVP 0",
        "a=rtpmap:0 PCMU/8000",
        "a=sendrecv",
        "m=audio 0 RTP/AVP 0",
    ),
    ("video", "t38_only"): "488 no acceptable stream in the offer",
    ("video", "dynamic_pcmu"): (
        "m=audio 20000 RTP/AVP 96 98 101",
        "a=rtpmap:96 G722/8000",
        "a=rtpmap:98 pcmu/8000",
        "a=rtpmap:101 TELEPHONE-EVENT/8000",
        "a=fmtp:98 foo=bar",
        "a=fmtp:101 0-16",
        "a=sendrecv",
    ),
    ("video", "ipv6"): (
        "m=audio 20000 RTP/AVP 9 0",
        "a=rtpmap:9 G722/8000",
        "a=rtpmap:0 PCMU/8000",
        "a=sendrecv",
    ),
}

HEAD = "v=0\r\no=sipwire 77 {} IN IP4 192.0.2.10\r\ns=sipwire\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"


def _media(config: str = "default") -> SdpMedia:
    return SdpMedia(
        CONFIGS[config], address="192.0.2.10", audio_port=20000, video_port=30000, session_id=77
    )


def _text(media_lines: tuple[str, ...], version: int = 77) -> bytes:
    return (HEAD.format(version) + "".join(line + "\r\n" for line in media_lines)).encode()


@pytest.mark.parametrize(("config", "offer"), list(ANSWERS))
def test_answer_is_byte_identical(config: str, offer: str) -> None:
    expected = ANSWERS[config, offer]
    media = _media(config)
    if isinstance(expected, str):
        with pytest.raises(MediaError) as failure:
            media.receive_offer(OFFERS[offer])
        assert f"{failure.value.status} {failure.value.reason}" == expected
    else:
        assert media.receive_offer(OFFERS[offer]) == _text(expected)
        assert media.remote == OFFERS[offer]


# One call: the same offer again (same version), holds, a resume (RFC 3264 §8):
# the answers of ANSWERS["default", offer], at these session versions.
REOFFERS = [
    ("baresip", 77),
    ("baresip", 77),
    ("hold_sendonly", 78),
    ("hold_old_style", 79),
    ("sipp", 80),
]

OUR_OFFERS = [
    (
        b"v=0\r\no=sipwire 77 81 IN IP4 192.0.2.10\r\ns=sipwire\r\nc=IN IP4 192.0.2.10\r\n"
        b"t=0 0\r\nm=audio 20000 RTP/AVP 0 8 9 101\r\na=rtpmap:0 PCMU/8000\r\n"
        b"a=rtpmap:8 PCMA/8000\r\na=rtpmap:9 G722/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
        b"a=fmtp:101 0-16\r\na=sendrecv\r\n"
    ),
    (
        b"v=0\r\no=sipwire 77 82 IN IP4 192.0.2.10\r\ns=sipwire\r\nc=IN IP4 192.0.2.10\r\n"
        b"t=0 0\r\nm=audio 20000 RTP/AVP 0 8 9 101\r\na=rtpmap:0 PCMU/8000\r\n"
        b"a=rtpmap:8 PCMA/8000\r\na=rtpmap:9 G722/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
        b"a=fmtp:101 0-16\r\na=sendonly\r\n"
    ),
]


def test_reoffers_keep_the_session_version_rules() -> None:
    media = _media()
    for offer, version in REOFFERS:
        expected = ANSWERS["default", offer]
        assert isinstance(expected, tuple)
        assert media.receive_offer(OFFERS[offer]) == _text(expected, version)
        assert media.negotiator.session_version == version
    assert media.create_offer() == OUR_OFFERS[0]
    media.receive_answer(OFFERS["sipp"].replace(b"2353687637", b"2353687638"))
    assert media.hold() == OUR_OFFERS[1]


# Extra lines anchored where they were read, surplus single lines, bare LF, blank
# lines, trailing white space, a BOM, bytes that are not UTF-8; and the errors.
PARSE_CASES: list[tuple[bytes, bytes | str]] = [
    (
        (
            b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nx=first\r\nc=IN IP4 1.2.3.4\r\n"
            b"c=IN IP4 5.6.7.8\r\nt=0 0\r\nr=7d 1h 0 25h\r\ny=after r\r\na=one\r\nq=after a\r\n"
            b"a=two\r\ns=again\r\nm=audio 1 RTP/AVP 0\r\nw=after m\r\na=x\r\ni=late info\r\n"
        ),
        (
            b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nx=first\r\ns=again\r\nc=IN IP4 1.2.3.4\r\n"
            b"c=IN IP4 5.6.7.8\r\nt=0 0\r\nr=7d 1h 0 25h\r\ny=after r\r\na=one\r\nq=after a\r\n"
            b"a=two\r\nm=audio 1 RTP/AVP 0\r\nw=after m\r\ni=late info\r\na=x\r\n"
        ),
    ),
    (
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\nv=0\r\n",
        "400 line 6: v= line after the first line",
    ),
    (
        (
            b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\nz=media z\r\n"
            b"a=rtpmap:0 PCMU/8000\r\nk=prompt\r\nk=again\r\ni=info\r\nc=IN IP4 1.1.1.1\r\n"
            b"b=AS:1\r\ni=twice\r\nm=video 0 RTP/AVP 96\r\nu=in media\r\n"
        ),
        (
            b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\nz=media z\r\n"
            b"i=info\r\ni=twice\r\nc=IN IP4 1.1.1.1\r\nb=AS:1\r\nk=prompt\r\nk=again\r\n"
            b"a=rtpmap:0 PCMU/8000\r\nm=video 0 RTP/AVP 96\r\nu=in media\r\n"
        ),
    ),
    (
        (
            b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\n"
            b"a=bad\rline\r\n"
        ),
        "400 line 6: CR without LF inside a line",
    ),
    (
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\r\ns=-\nt=0 0\r\n\r\n  \r\nm=audio 1/2 RTP/AVP 0\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 1/2 RTP/AVP 0\r\n",
    ),
    (
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\nA=upper\r\n",
        "400 line 6: not a <type>=<value> line: 'A=upper'",
    ),
    (
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\na=:novalue\r\n",
        "400 line 6: a= line without an attribute name",
    ),
    (
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nr=1 2 3\r\no=- 2 2 IN IP4 1.1.1.1\r\n",
        "400 line 6: more than one o= line",
    ),
    (
        (
            b"\xef\xbb\xbfv=0\r\no=caf\xc3\xa9 \xff 1 IN IP4 1.2.3.4\r\ns= \t\r\nt=0 0\r\n"
            b"a=recvonly\r\n"
        ),
        b"v=0\r\no=caf\xc3\xa9 \xff 1 IN IP4 1.2.3.4\r\ns= \t\r\nt=0 0\r\na=recvonly\r\n",
    ),
    (
        b"v=0\r\ns=no origin\r\n",
        "400 missing o= line",
    ),
    (
        b"s=-\r\nv=0\r\n",
        "400 line 1: session description does not start with v=",
    ),
    (
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4\r\n",
        "400 line 3: c= line needs 3 fields",
    ),
    (
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 70000 RTP/AVP 0\r\n",
        "400 line 3: port 70000 out of range",
    ),
]


@pytest.mark.parametrize(("data", "expected"), PARSE_CASES)
def test_parse_is_unchanged(data: bytes, expected: bytes | str) -> None:
    if isinstance(expected, str):
        with pytest.raises(SdpError) as failure:
            parse_sdp(data)
        assert f"{failure.value.status} {failure.value.reason}" == expected
    else:
        sd = parse_sdp(data)
        assert bytes(sd) == expected
        assert parse_sdp(data.decode("utf-8", "surrogateescape")) == sd
        assert parse_sdp(bytearray(data)) == sd


def _descriptions() -> list[SessionDescription]:
    found = [parse_sdp(body) for body in OFFERS.values()]
    found += [parse_sdp(d) for d, e in PARSE_CASES if isinstance(e, bytes)]
    every_field = MediaDescription(
        "audio",
        4000,
        "RTP/AVP",
        ["0", "101"],
        port_count=2,
        information="voice",
        connection=Connection("IN", "IP4", "224.2.1.1/127/3"),
        bandwidths=[Bandwidth("AS", 64), Bandwidth("TIAS", 64000)],
        key="prompt",
        attributes=[Attribute("rtpmap", "101 telephone-event/8000"), Attribute("sendonly")],
    )
    found.append(
        SessionDescription(
            origin=Origin("-", "1", 2, "IN", "IP4", "192.0.2.1"),
            information="info",
            uri="http://example.com",
            emails=["a@example.com", "b@example.com"],
            phones=["+1 555"],
            connection=Connection("IN", "IP4", "192.0.2.1"),
            bandwidths=[Bandwidth("CT", 128)],
            times=[Timing(1, 2, ["7d 1h 0 25h", "1d 1h 0"]), Timing(3, 4)],
            zone="2882844526 -1h",
            key="clear:x",
            attributes=[Attribute("group", "BUNDLE 0"), Attribute("recvonly")],
            media=[every_field, MediaDescription("video", 0, "RTP/AVP", ["96"])],
        )
    )
    return found


def test_fast_layout_is_the_general_layout() -> None:
    for sd in _descriptions():
        for with_extras in (False, True):
            if with_extras:  # the general path, also with lines to interleave
                sd.extra_lines = [ExtraLine("x", "1", "o", 1), ExtraLine("y", "2")]
                for md in sd.media:
                    md.extra_lines = [ExtraLine("z", "3", "m", 1)]
            else:
                sd.extra_lines = []
                for md in sd.media:
                    md.extra_lines = []
            expected = _interleave(sd._groups(), sd.extra_lines)
            for md in sd.media:
                expected += _interleave(md._groups(), md.extra_lines)
                assert md.lines() == _interleave(md._groups(), md.extra_lines)
                assert str(md) == "".join(line + "\r\n" for line in md.lines())
            assert sd.lines() == expected
            assert str(sd) == "".join(line + "\r\n" for line in expected)
            assert bytes(sd) == str(sd).encode("utf-8", "surrogateescape")


def _reference_codecs(md: MediaDescription) -> list[Codec]:
    """media_codecs as it was defined: MediaDescription.rtpmap() and .fmtp() per format."""
    rtpmap = md.rtpmap()
    result: list[Codec] = []
    for fmt in md.formats:
        if not (fmt.isascii() and fmt.isdigit() and len(fmt) <= 3 and int(fmt) <= 127):
            continue
        entry = rtpmap.get(fmt)
        if entry is not None:
            codec = Codec(entry.encoding_name, entry.clock_rate, entry.channels, md.fmtp(fmt))
            result.append(codec.with_payload_type(int(fmt)))
        elif int(fmt) in STATIC_PAYLOAD_TYPES:
            result.append(STATIC_PAYLOAD_TYPES[int(fmt)].with_payload_type(int(fmt), md.fmtp(fmt)))
    return result


def test_media_codecs_match_rtpmap_and_fmtp() -> None:
    odd = MediaDescription(
        "audio",
        1,
        "RTP/AVP",
        ["0", "8", "96", "97", "98", "200", "x", "13"],
        attributes=[
            Attribute("rtpmap", "96 bad"),
            Attribute("rtpmap", "96 opus/48000/2"),
            Attribute("rtpmap", "96 ignored/8000"),
            Attribute("rtpmap"),
            Attribute("fmtp"),
            Attribute("fmtp", "0 first"),
            Attribute("fmtp", "0 second"),
            Attribute("fmtp", "8"),
            Attribute("rtpmap", "97 " + "x" * 100 + "/8000"),
            Attribute("fmtp", "97 " + "y" * 100),
            Attribute("rtpmap", "98 speex/16000"),
        ],
    )
    for md in [odd] + [md for sd in _descriptions() for md in sd.media]:
        for _ in range(2):  # the second time from the caches
            codecs = media_codecs(md)
            assert codecs == _reference_codecs(md)
            codecs.clear()  # the list is the caller's


def test_direction_tables_follow_the_flags() -> None:
    for a in Direction:
        assert a.reversed() is Direction.from_flags(a.receives, a.sends)
        for b in Direction:
            expected = Direction.from_flags(a.sends and b.sends, a.receives and b.receives)
            assert a.intersect(b) is expected


def test_answer_without_copies_is_the_same_answer() -> None:
    for body in OFFERS.values():
        copied = OfferAnswer("192.0.2.1", 4000, session_id=5)
        owned = OfferAnswer("192.0.2.1", 4000, session_id=5)
        offer = parse_sdp(body)
        try:
            answer = copied.receive_offer(offer)
        except SdpError:
            continue
        assert offer == parse_sdp(body)  # the caller's offer is left alone
        assert owned.receive_offer(parse_sdp(body), copy=False) == answer
        assert owned.negotiated == copied.negotiated
        assert owned.local_description == copied.local_description
        assert owned.remote_description == copied.remote_description
        answer.media[0].port = 1  # a copy: the negotiator's is untouched
        assert copied.local_description is not None
        assert copied.local_description.media[0].port != 1


def test_shared_immutable_pieces_do_not_leak_between_calls() -> None:
    first = parse_sdp(OFFERS["baresip"])
    second = parse_sdp(OFFERS["baresip"])
    assert first == second and first.media[0] is not second.media[0]
    first.media[0].attributes.clear()
    first.media[0].formats.append("7")
    assert bytes(second) == OFFERS["baresip"]
    one, two = _media(), _media()
    answer = one.receive_offer(OFFERS["baresip"])
    one.negotiator.address = "192.0.2.99"  # our address may change between offers
    one.negotiator.session_id = 78
    assert two.receive_offer(OFFERS["baresip"]) == answer
    assert b"o=sipwire 78 78 IN IP4 192.0.2.99\r\n" in one.create_offer()
