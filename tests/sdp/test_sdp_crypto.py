"""RFC 4568 a=crypto lines: parse, format, choose, answer."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipwire.sdp.crypto import (
    SUITES,
    CryptoAttribute,
    answer_crypto,
    choose_crypto,
    crypto_attributes,
    offer_crypto,
    parse_crypto,
    usable,
)
from sipwire.sdp.session import SdpError

# RFC 4568 §4's example offer line.
RFC_LINE = "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4"
KEY30 = bytes(range(30))


def test_rfc_example_parses() -> None:
    line = parse_crypto(RFC_LINE)
    assert (line.tag, line.suite, line.lifetime, line.mki) == (
        1,
        "AES_CM_128_HMAC_SHA1_80",
        2**20,
        (1, 4),
    )
    assert line.key_salt == base64.b64decode("PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR")
    assert len(line.key_salt) == 30
    assert line.value() == RFC_LINE  # round trip, lifetime written as 2^20
    assert not usable(line)  # an MKI: passed over


def test_plain_line_round_trip_and_usable() -> None:
    line = CryptoAttribute(tag=3, suite="AES_CM_128_HMAC_SHA1_32", key_salt=KEY30)
    value = line.value()
    assert value == "3 AES_CM_128_HMAC_SHA1_32 inline:" + base64.b64encode(KEY30).decode()
    assert parse_crypto(value) == line
    assert usable(line)
    assert line.attribute().name == "crypto"


def test_gcm_key_with_padding_and_without() -> None:
    key = bytes(range(28))
    encoded = base64.b64encode(key).decode()
    assert encoded.endswith("=")
    for text in (encoded, encoded.rstrip("=")):
        line = parse_crypto(f"1 AEAD_AES_128_GCM inline:{text}")
        assert line.key_salt == key and usable(line)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "x AES_CM_128_HMAC_SHA1_80 inline:" + base64.b64encode(KEY30).decode(),
        "1234567890 AES_CM_128_HMAC_SHA1_80 inline:AAAA",  # a tag of 10 digits
        "1 AES_CM_128_HMAC_SHA1_80",
        "1 AES_CM_128_HMAC_SHA1_80 uri:http://example.com/key",
        "1 AES_CM_128_HMAC_SHA1_80 inline:***",
        "1 AES_CM_128_HMAC_SHA1_80 inline:AAAA|2^x",
        "1 AES_CM_128_HMAC_SHA1_80 inline:AAAA|1:0",
        "1 AES_CM_128_HMAC_SHA1_80 inline:AAAA|1:200",
        "1 AES_CM_128_HMAC_SHA1_80 inline:AAAA|1:4|2^20",  # MKI before lifetime
        "1 AES_CM_128_HMAC_SHA1_80 inline:AAAA|1|2|3",
    ],
)
def test_malformed_lines_raise_sdp_error(value: str) -> None:
    with pytest.raises(SdpError):
        parse_crypto(value)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("1 AES_CM_128_HMAC_SHA1_80 inline:{k}", True),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:{k}|2^31", True),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:{k} WSH=128", True),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:{k} UNENCRYPTED_SRTP", False),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:{k} UNAUTHENTICATED_SRTP", False),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:{k} KDR=10", False),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:{k};inline:{k}", False),
        ("1 F8_128_HMAC_SHA1_80 inline:{k}", False),
        ("1 AES_256_CM_HMAC_SHA1_80 inline:{k}", False),
        ("1 AEAD_AES_128_GCM inline:{k}", False),  # 30 bytes where 28 are due
    ],
)
def test_usable(value: str, ok: bool) -> None:
    line = parse_crypto(value.format(k=base64.b64encode(KEY30).decode()))
    assert usable(line) is ok


def test_choose_takes_offerers_first_usable_line_in_our_suites() -> None:
    k = base64.b64encode(KEY30).decode()
    offered = crypto_attributes(
        [
            f"1 AES_CM_128_HMAC_SHA1_80 inline:{k} UNENCRYPTED_SRTCP",
            "garbage",
            f"2 AES_CM_128_HMAC_SHA1_32 inline:{k}",
            f"3 AES_CM_128_HMAC_SHA1_80 inline:{k}",
        ]
    )
    assert [line.tag for line in offered] == [1, 2, 3]  # the garbage line is ignored
    chosen = choose_crypto(offered)
    assert chosen is not None and chosen.tag == 2
    only_80 = choose_crypto(offered, suites=("AES_CM_128_HMAC_SHA1_80",))
    assert only_80 is not None and only_80.tag == 3
    assert choose_crypto(offered, suites=("AEAD_AES_128_GCM",)) is None
    assert choose_crypto([]) is None


def test_answer_keeps_tag_and_suite_with_our_key() -> None:
    offered = parse_crypto("7 AES_CM_128_HMAC_SHA1_32 inline:" + base64.b64encode(KEY30).decode())
    ours = bytes(reversed(KEY30))
    answer = answer_crypto(offered, ours)
    assert (answer.tag, answer.suite, answer.key_salt) == (7, offered.suite, ours)
    with pytest.raises(ValueError, match="30 bytes"):
        answer_crypto(offered, ours[:16])


def test_offer_numbers_tags_from_one() -> None:
    lines = offer_crypto([("AES_CM_128_HMAC_SHA1_80", KEY30), ("AEAD_AES_256_GCM", bytes(44))])
    assert [(line.tag, line.suite) for line in lines] == [
        (1, "AES_CM_128_HMAC_SHA1_80"),
        (2, "AEAD_AES_256_GCM"),
    ]
    assert all(usable(line) for line in lines)
    with pytest.raises(ValueError, match="unknown crypto suite"):
        offer_crypto([("NULL", b"")])


def test_repr_hides_the_key() -> None:
    line = CryptoAttribute(tag=1, suite="AES_CM_128_HMAC_SHA1_80", key_salt=KEY30)
    assert base64.b64encode(KEY30).decode() not in repr(line)
    assert KEY30.hex() not in repr(line)


def test_suite_lengths() -> None:
    assert {name: s.key_salt_length for name, s in SUITES.items()} == {
        "AES_CM_128_HMAC_SHA1_80": 30,
        "AES_CM_128_HMAC_SHA1_32": 30,
        "AEAD_AES_128_GCM": 28,
        "AEAD_AES_256_GCM": 44,
    }


@given(st.text(max_size=200))
def test_random_text_raises_only_sdp_error(value: str) -> None:
    try:
        line = parse_crypto(value)
    except SdpError:
        return
    assert parse_crypto(line.value()).key_salt == line.key_salt
