"""Round trips: a WebRTC offer byte for byte, and hypothesis properties over
random input (only SdpError escapes) and generated session descriptions."""

from __future__ import annotations

import string
from typing import Literal

from hypothesis import example, given, settings
from hypothesis import strategies as st

from sipwire.sdp import (
    Attribute,
    Bandwidth,
    Connection,
    MediaDescription,
    Origin,
    SdpError,
    SessionDescription,
    Timing,
    parse_sdp,
)

WEBRTC_OFFER = (
    "v=0\r\n"
    "o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "t=0 0\r\n"
    "a=group:BUNDLE 0 1\r\n"
    "a=extmap-allow-mixed\r\n"
    "a=msid-semantic: WMS stream1\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=rtcp:9 IN IP4 0.0.0.0\r\n"
    "a=candidate:1467250027 1 udp 2122260223 192.168.0.196 46243 typ host generation 0\r\n"
    "a=ice-ufrag:Oyef\r\n"
    "a=ice-pwd:7yL3Vj1BxWUZEGNhZ9ZvT/ep\r\n"
    "a=ice-options:trickle\r\n"
    "a=fingerprint:sha-256 49:66:12:17:0D:1C:91:AE:57:4C:C6:36:DD:D5:97:D2:7D:62:C9:9A:"
    "7F:B9:A3:F6:DB:7C:4C:B3:C6:C6:DE:C2\r\n"
    "a=setup:actpass\r\n"
    "a=mid:0\r\n"
    "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"
    "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n"
    "a=sendrecv\r\n"
    "a=msid:stream1 track1\r\n"
    "a=rtcp-mux\r\n"
    "a=rtpmap:111 opus/48000/2\r\n"
    "a=rtcp-fb:111 transport-cc\r\n"
    "a=fmtp:111 minptime=10;useinbandfec=1\r\n"
    "a=rtpmap:63 red/48000/2\r\n"
    "a=fmtp:63 111/111\r\n"
    "a=rtpmap:9 G722/8000\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:13 CN/8000\r\n"
    "a=rtpmap:110 telephone-event/48000\r\n"
    "a=rtpmap:126 telephone-event/8000\r\n"
    "a=ssrc:3570614608 cname:4TOk42mSjXCkVIa6\r\n"
    "a=ssrc:3570614608 msid:stream1 track1\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "b=AS:2500\r\n"
    "a=rtcp:9 IN IP4 0.0.0.0\r\n"
    "a=ice-ufrag:Oyef\r\n"
    "a=ice-pwd:7yL3Vj1BxWUZEGNhZ9ZvT/ep\r\n"
    "a=ice-options:trickle\r\n"
    "a=fingerprint:sha-256 49:66:12:17:0D:1C:91:AE:57:4C:C6:36:DD:D5:97:D2:7D:62:C9:9A:"
    "7F:B9:A3:F6:DB:7C:4C:B3:C6:C6:DE:C2\r\n"
    "a=setup:actpass\r\n"
    "a=mid:1\r\n"
    "a=extmap:14 urn:ietf:params:rtp-hdrext:toffset\r\n"
    "a=sendrecv\r\n"
    "a=rtcp-mux\r\n"
    "a=rtcp-rsize\r\n"
    "a=rtpmap:96 VP8/90000\r\n"
    "a=rtcp-fb:96 goog-remb\r\n"
    "a=rtcp-fb:96 ccm fir\r\n"
    "a=rtcp-fb:96 nack\r\n"
    "a=rtcp-fb:96 nack pli\r\n"
    "a=rtpmap:97 rtx/90000\r\n"
    "a=fmtp:97 apt=96\r\n"
    "a=rtpmap:102 H264/90000\r\n"
    "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n"
    "a=rtpmap:103 rtx/90000\r\n"
    "a=fmtp:103 apt=102\r\n"
    "a=ssrc-group:FID 2231627014 632943048\r\n"
    "a=ssrc:2231627014 cname:4TOk42mSjXCkVIa6\r\n"
    "a=ssrc:632943048 cname:4TOk42mSjXCkVIa6\r\n"
)


def test_webrtc_offer_round_trips_byte_identically() -> None:
    sd = parse_sdp(WEBRTC_OFFER.encode())
    assert bytes(sd) == WEBRTC_OFFER.encode()
    assert parse_sdp(bytes(sd)) == sd
    assert sd.get("group") == "BUNDLE 0 1"
    assert sd.get("msid-semantic") == " WMS stream1"
    audio, video = sd.media
    assert audio.proto == "UDP/TLS/RTP/SAVPF"
    assert audio.get("ice-ufrag") == "Oyef"
    assert (
        audio.get(
            "fingerprint",
        )
        is not None
    )
    assert audio.get_all("extmap")[0] == "1 urn:ietf:params:rtp-hdrext:ssrc-audio-level"
    assert audio.rtpmap()["110"].clock_rate == 48000
    assert video.bandwidths == [Bandwidth("AS", 2500)]
    assert video.get_all("rtcp-fb") == ["96 goog-remb", "96 ccm fir", "96 nack", "96 nack pli"]
    assert video.fmtp(102) == (
        "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f"
    )
    # the order of the attribute lines, including the unknown ones, is kept
    names = [a.name for a in audio.attributes]
    assert names[:4] == ["rtcp", "candidate", "ice-ufrag", "ice-pwd"]
    assert names[-2:] == ["ssrc", "ssrc"]


def test_webrtc_offer_with_bare_lf_serializes_with_crlf() -> None:
    sd = parse_sdp(WEBRTC_OFFER.replace("\r\n", "\n"))
    assert str(sd) == WEBRTC_OFFER


# -- random input: SdpError or a description that round-trips -------------------------

_LINE_TYPES = st.one_of(
    st.sampled_from(list("siuepcbtrzkamxy")),
    st.sampled_from(["v", "o", "", " ", "V", "=", "\r"]),
)
_VALUES = st.one_of(
    st.sampled_from(["0", "- 1 1 IN IP4 h", "", " ", "x ", "\t", "a b"]), st.text(max_size=20)
)
_VALID_LINES = st.sampled_from(
    [
        ("s", " "),
        ("s", "x\t"),
        ("i", "info "),
        ("u", "http://x"),
        ("e", "a@b"),
        ("p", "+1"),
        ("c", "IN IP4 1.2.3.4/127"),
        ("c", "IN  IP6\t::1"),
        ("b", "AS:64"),
        ("t", "0 0"),
        ("r", "7d 1h 0 25h"),
        ("z", "0 -1h"),
        ("k", "prompt"),
        ("a", "rtpmap:96 opus/48000/2"),
        ("a", "sendonly"),
        ("a", "fmtp:96 x=y "),
        ("m", "audio 49170 RTP/AVP 0 8"),
        ("m", "video 0/2 RTP/AVP"),
        ("x", "unknown"),
        ("y", ""),
    ]
)
# Mostly lines that fit their type, so that a fair share of the documents parse.
_LINES = st.one_of(_VALID_LINES, _VALID_LINES, _VALID_LINES, st.tuples(_LINE_TYPES, _VALUES))
_SDPISH = st.lists(_LINES, max_size=15).map(
    lambda lines: "v=0\r\no=- 1 1 IN IP4 h\r\n" + "".join(f"{t}={v}\n" for t, v in lines)
)


def _parse_or_sdp_error(data: bytes | str) -> SessionDescription | None:
    try:
        return parse_sdp(data)
    except SdpError as exc:
        assert exc.reason
        return None


@settings(max_examples=300)
@given(st.binary(max_size=300))
@example(b"v=0\r\no=- 1 1 IN IP4 h\r\ns=\xff\xfe\r\n")
def test_random_bytes_raise_only_sdp_error(data: bytes) -> None:
    sd = _parse_or_sdp_error(data)
    if sd is not None:
        assert parse_sdp(bytes(sd)) == sd


@settings(max_examples=300)
@given(st.text(max_size=300))
def test_random_text_raises_only_sdp_error(text: str) -> None:
    sd = _parse_or_sdp_error(text)
    if sd is not None:
        assert parse_sdp(str(sd)) == sd


@settings(max_examples=1000)
@given(_SDPISH)
@example("v=0\r\no=- 1 1 IN IP4 h\r\nx=1\r\nr=2\r\nt=0 0\r\nr=3\r\nm=a 0 p\r\ns=x\r\n")
def test_sdp_like_text_parses_to_a_fixed_point(text: str) -> None:
    """Whatever parses serializes to text that parses to the same description."""
    sd = _parse_or_sdp_error(text)
    if sd is not None:
        again = parse_sdp(bytes(sd))
        assert again == sd
        assert bytes(again) == bytes(sd)


# -- generated descriptions round-trip ----------------------------------------------

_TOKEN = st.text(
    alphabet=string.ascii_letters + string.digits + "-./+_*~!#$%&'^`{|}", min_size=1, max_size=12
)
_NAME = st.text(alphabet=string.ascii_letters + string.digits + "-_.", min_size=1, max_size=12)
# Any text but line ends, NUL and lone surrogates (which UTF-8 cannot carry).
_NO_SURROGATES: tuple[Literal["Cs"], ...] = ("Cs",)
_LINE_TEXT = st.text(
    alphabet=st.characters(exclude_characters="\r\n\x00", exclude_categories=_NO_SURROGATES),
    max_size=20,
)
# Values lose trailing white space in parsing; the session name alone keeps it.
_FREE = _LINE_TEXT.filter(lambda s: not s.endswith((" ", "\t")))
_INT64 = st.integers(min_value=0, max_value=2**63 - 1)

_attributes = st.lists(st.builds(Attribute, _NAME, st.none() | _FREE), max_size=5)
_connection = st.builds(Connection, _TOKEN, _TOKEN, _TOKEN)
_bandwidths = st.lists(st.builds(Bandwidth, _NAME, _INT64), max_size=2)


@st.composite
def _media(draw: st.DrawFn) -> MediaDescription:
    return MediaDescription(
        draw(_NAME),
        draw(st.integers(0, 65535)),
        draw(_TOKEN),
        draw(st.lists(_TOKEN, min_size=1, max_size=5)),
        port_count=draw(st.none() | st.integers(0, 99999)),
        information=draw(st.none() | _FREE),
        connection=draw(st.none() | _connection),
        bandwidths=draw(_bandwidths),
        key=draw(st.none() | _FREE),
        attributes=draw(_attributes),
    )


@st.composite
def _sessions(draw: st.DrawFn) -> SessionDescription:
    return SessionDescription(
        origin=Origin(
            draw(_TOKEN), draw(_TOKEN), draw(_INT64), draw(_TOKEN), draw(_TOKEN), draw(_TOKEN)
        ),
        session_name=draw(_LINE_TEXT),
        information=draw(st.none() | _FREE),
        uri=draw(st.none() | _FREE),
        emails=draw(st.lists(_FREE, max_size=2)),
        phones=draw(st.lists(_FREE, max_size=2)),
        connection=draw(st.none() | _connection),
        bandwidths=draw(_bandwidths),
        times=draw(
            st.lists(
                st.builds(Timing, _INT64, _INT64, st.lists(_FREE, max_size=2)),
                min_size=1,
                max_size=3,
            )
        ),
        zone=draw(st.none() | _FREE),
        key=draw(st.none() | _FREE),
        attributes=draw(_attributes),
        media=draw(st.lists(_media(), max_size=3)),
    )


@settings(max_examples=300)
@given(_sessions())
def test_generated_sessions_round_trip(sd: SessionDescription) -> None:
    assert parse_sdp(bytes(sd)) == sd
    assert parse_sdp(str(sd)) == sd
    assert parse_sdp(str(sd).replace("\r\n", "\n")) == sd
