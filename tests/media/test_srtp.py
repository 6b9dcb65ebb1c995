"""SRTP/SRTCP through libsrtp: both directions, every suite, tampering, replay, ROC."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipwire.media.errors import MediaError
from sipwire.media.rtcp import ReceiverReport, serialize_rtcp
from sipwire.media.rtp import RtpPacket
from sipwire.media.srtp import PROFILES, SrtpStream

KEY_SALT = {
    "AES_CM_128_HMAC_SHA1_80": 30,
    "AES_CM_128_HMAC_SHA1_32": 30,
    "AEAD_AES_128_GCM": 28,
    "AEAD_AES_256_GCM": 44,
}
TAG = {
    "AES_CM_128_HMAC_SHA1_80": 10,
    "AES_CM_128_HMAC_SHA1_32": 4,
    "AEAD_AES_128_GCM": 16,
    "AEAD_AES_256_GCM": 16,
}


def key(label: str, length: int) -> bytes:
    return hashlib.sha512(label.encode()).digest()[:length]


def pair(suite: str) -> tuple[SrtpStream, SrtpStream]:
    """Two ends of one stream: each protects with its key, unprotects with the other's."""
    a_key, b_key = key("a", KEY_SALT[suite]), key("b", KEY_SALT[suite])
    return SrtpStream(suite, a_key, b_key), SrtpStream(suite, b_key, a_key)


def rtp(seq: int, payload: bytes = b"\x55" * 160, ssrc: int = 0x1234) -> bytes:
    return bytes(RtpPacket(0, seq & 0xFFFF, seq * 160 & 0xFFFFFFFF, ssrc, payload))


@pytest.mark.parametrize("suite", sorted(PROFILES))
def test_round_trip_both_directions(suite: str) -> None:
    a, b = pair(suite)
    for seq in range(5):
        sent = rtp(seq)
        wire = a.protect(sent)
        assert wire is not None and wire != sent
        assert len(wire) == len(sent) + TAG[suite]
        assert sent[12:] not in wire  # the payload is encrypted
        assert b.unprotect(wire) == sent
        back = rtp(seq, b"\x22" * 160, ssrc=0x9999)
        reply = b.protect(back)
        assert reply is not None and a.unprotect(reply) == back
    report = serialize_rtcp([ReceiverReport(ssrc=0x1234)])
    wire = a.protect_rtcp(report)
    assert wire is not None and b.unprotect_rtcp(wire) == report
    assert (a.counters.protected, b.counters.unprotected) == (6, 6)


def test_the_wrong_key_is_an_auth_failure_not_an_exception() -> None:
    a, _ = pair("AES_CM_128_HMAC_SHA1_80")
    stranger = SrtpStream("AES_CM_128_HMAC_SHA1_80", key("x", 30), key("y", 30))
    wire = a.protect(rtp(1))
    assert wire is not None
    assert stranger.unprotect(wire) is None
    assert stranger.counters.auth_failures == 1


@pytest.mark.parametrize("suite", ["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"])
def test_tampered_packet_counted_and_dropped(suite: str) -> None:
    a, b = pair(suite)
    wire = a.protect(rtp(7))
    assert wire is not None
    tampered = bytearray(wire)
    tampered[20] ^= 0x01  # one bit of the encrypted payload
    assert b.unprotect(bytes(tampered)) is None
    assert b.counters.auth_failures == 1
    assert b.unprotect(wire) == rtp(7)  # the genuine packet still passes


def test_replayed_packet_dropped_and_counted() -> None:
    a, b = pair("AES_CM_128_HMAC_SHA1_80")
    wires = [a.protect(rtp(seq)) for seq in range(300)]
    assert all(w is not None for w in wires)
    for wire in wires[:200]:
        assert wire is not None and b.unprotect(wire) is not None
    assert b.unprotect(wires[150] or b"") is None  # inside the replay list
    assert b.unprotect(wires[10] or b"") is None  # older than the list
    assert b.counters.replays == 2
    for wire in wires[200:]:
        assert wire is not None and b.unprotect(wire) is not None
    assert b.counters.unprotected == 300


def test_rollover_counter_across_sequence_wrap() -> None:
    """RFC 3711 §3.3.1: past 65535 the ROC counts up on both sides."""
    a, b = pair("AES_CM_128_HMAC_SHA1_32")
    start = 65536 - 100
    for seq in range(start, start + 300):  # 16-bit numbers wrap to 0 inside
        sent = rtp(seq)
        wire = a.protect(sent)
        assert wire is not None and b.unprotect(wire) == sent, seq
    assert b.counters.unprotected == 300
    assert b.counters.replays == b.counters.auth_failures == 0


def test_garbage_is_malformed_and_short_is_not_fatal() -> None:
    _, b = pair("AES_CM_128_HMAC_SHA1_80")
    assert b.unprotect(b"") is None
    assert b.unprotect(b"\x80" * 5) is None
    assert b.unprotect_rtcp(b"\x81\xc9\x00") is None
    assert b.counters.unprotected == 0
    assert b.counters.malformed + b.counters.auth_failures == 3


def test_oversized_packet_counted_as_send_failure() -> None:
    a, _ = pair("AES_CM_128_HMAC_SHA1_80")
    assert a.protect(rtp(1, b"\x00" * 1600)) is None
    assert a.counters.send_failures == 1


def test_key_length_and_suite_checked() -> None:
    with pytest.raises(MediaError, match="needs 30"):
        SrtpStream("AES_CM_128_HMAC_SHA1_80", b"\x00" * 29, b"\x00" * 30)
    with pytest.raises(MediaError, match="needs 30"):
        SrtpStream("AES_CM_128_HMAC_SHA1_80", b"\x00" * 30, b"\x00" * 31)
    with pytest.raises(MediaError, match="crypto suite"):
        SrtpStream("F8_128_HMAC_SHA1_80", b"\x00" * 30, b"\x00" * 30)


def test_repr_hides_keys() -> None:
    a, _ = pair("AES_CM_128_HMAC_SHA1_80")
    assert key("a", 30).hex() not in repr(a)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=1600))
def test_random_bytes_never_raise(data: bytes) -> None:
    _, b = pair("AES_CM_128_HMAC_SHA1_80")
    assert b.unprotect(data) is None
    assert b.unprotect_rtcp(data) is None


def test_a_rekeyed_stream_carries_the_counters_on() -> None:
    suite = "AES_CM_128_HMAC_SHA1_80"
    a, b = pair(suite)
    wire = a.protect(rtp(1))
    assert wire is not None and b.unprotect(wire) is not None
    new_a, new_b = key("a2", KEY_SALT[suite]), key("b2", KEY_SALT[suite])
    rekeyed = SrtpStream(suite, new_b, new_a, counters=b.counters)
    assert rekeyed.unprotect(wire) is None  # the old key's packet fails under the new key
    fresh = SrtpStream(suite, new_a, new_b).protect(rtp(2))
    assert fresh is not None and rekeyed.unprotect(fresh) is not None
    assert rekeyed.counters is b.counters
    assert (b.counters.unprotected, b.counters.auth_failures) == (2, 1)
