"""SdpMedia: the INVITE session's view of sipwire.sdp offer/answer."""

from __future__ import annotations

import pytest

from sipwire.core.media import MediaError
from sipwire.core.sdp_media import MediaConfig, SdpMedia, codecs_by_name
from sipwire.sdp import Direction, parse_sdp


def _pair() -> tuple[SdpMedia, SdpMedia]:
    alice = SdpMedia(
        MediaConfig(codecs=("PCMA", "PCMU", "telephone-event")),
        address="127.0.0.1",
        audio_port=20000,
    )
    bob = SdpMedia(
        MediaConfig(codecs=("PCMU", "telephone-event")), address="127.0.0.2", audio_port=30000
    )
    return alice, bob


def test_offer_answer_picks_common_codec_and_addresses() -> None:
    alice, bob = _pair()
    answer = bob.receive_offer(alice.create_offer())
    alice.receive_answer(answer)
    stream = alice.negotiated[0]
    assert stream.codec is not None and stream.codec.name.upper() == "PCMU"
    assert stream.remote_address == "127.0.0.2" and stream.remote_port == 30000
    assert stream.telephone_event == 101
    assert bob.remote is not None and alice.remote == answer


def test_hold_resume_and_a_rejected_offer() -> None:
    alice, bob = _pair()
    alice.receive_answer(bob.receive_offer(alice.create_offer()))
    hold = alice.hold()
    assert parse_sdp(hold).media[0].direction is Direction.SENDONLY
    alice.offer_rejected()  # e.g. 491: the offer never took effect
    again = alice.hold()  # may offer again at once
    answer = parse_sdp(bob.receive_offer(again))
    assert answer.media[0].direction is Direction.RECVONLY
    alice.receive_answer(bytes(answer))
    assert alice.on_hold
    resume = alice.resume()
    assert parse_sdp(resume).media[0].direction is Direction.SENDRECV


def test_unacceptable_offer_is_488() -> None:
    _, bob = _pair()
    video_only = (
        b"v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        b"m=video 4000 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n"
    )
    with pytest.raises(MediaError) as failure:
        bob.receive_offer(video_only)
    assert failure.value.status == 488
    with pytest.raises(MediaError):
        bob.receive_offer(b"not sdp at all")


def test_unknown_codec_name_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown codec"):
        codecs_by_name(("PCMU", "nonsense"))


def test_description_copy_is_equal_and_independent() -> None:
    text = (
        b"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\ni=info\r\nu=http://x\r\ne=a@b\r\np=+1\r\n"
        b"c=IN IP4 127.0.0.1\r\nb=AS:64\r\nt=0 0\r\nr=7d 1h 0 25h\r\nz=0 0\r\nk=prompt\r\n"
        b"a=group:BUNDLE 0\r\nx=unknown\r\nm=audio 4000 RTP/AVP 0 101\r\ni=voice\r\n"
        b"c=IN IP4 127.0.0.2\r\nb=TIAS:64000\r\nk=prompt\r\na=rtpmap:101 telephone-event/8000\r\n"
        b"a=sendonly\r\n"
    )
    sd = parse_sdp(text)
    dup = sd.copy()
    assert dup == sd and bytes(dup) == bytes(sd) == text
    dup.media[0].formats.append("8")
    dup.times[0].repeats.append("1d 1h 0")
    dup.attributes.clear()
    assert bytes(sd) == text
