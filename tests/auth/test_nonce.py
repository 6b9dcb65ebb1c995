"""Stateless nonces (RFC 7616 §3.3): valid, stale, forged; nonce-count parsing."""

from __future__ import annotations

import base64
import itertools

import pytest

from sipwire.auth.nonce import NONCE_LENGTH, NonceIssuer, NonceState, parse_nc

SECRET = b"k" * 32
NOW = 1_700_000_000.0
REALM = "biloxi.com"


def test_fresh_nonce_is_valid_until_its_lifetime() -> None:
    issuer = NonceIssuer(SECRET, lifetime=300)
    nonce = issuer.issue(NOW, REALM)
    assert len(nonce) == NONCE_LENGTH
    assert issuer.check(nonce, NOW, REALM) is NonceState.VALID
    assert issuer.check(nonce, NOW + 300, REALM) is NonceState.VALID
    assert issuer.check(nonce, NOW + 300.5, REALM) is NonceState.STALE
    assert issuer.issued_at(nonce) == NOW
    assert issuer.expires_at(nonce) == NOW + 300


def test_nonce_from_the_future_beyond_clock_skew_is_stale() -> None:
    issuer = NonceIssuer(SECRET, clock_skew=30)
    nonce = issuer.issue(NOW + 20, REALM)
    assert issuer.check(nonce, NOW, REALM) is NonceState.VALID
    assert issuer.check(issuer.issue(NOW + 31, REALM), NOW, REALM) is NonceState.STALE


def test_another_issuer_with_the_same_secret_accepts_it() -> None:
    nonce = NonceIssuer(SECRET).issue(NOW, REALM)
    assert NonceIssuer(SECRET).check(nonce, NOW + 1, REALM) is NonceState.VALID


def test_nonces_are_unique_even_at_the_same_instant() -> None:
    issuer = NonceIssuer(SECRET)
    nonces = {issuer.issue(NOW, REALM) for _ in range(100)}
    assert len(nonces) == 100


def test_new_salt_supplies_the_unique_part() -> None:
    counter = itertools.count()
    issuer = NonceIssuer(SECRET, new_salt=lambda: next(counter).to_bytes(8, "big"))
    first, second = issuer.issue(NOW, REALM), issuer.issue(NOW, REALM)
    assert first != second
    assert issuer.check(second, NOW, REALM) is NonceState.VALID
    with pytest.raises(ValueError):
        NonceIssuer(SECRET, new_salt=lambda: b"short").issue(NOW, REALM)


def _flip(nonce: str, index: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(nonce + "="))
    raw[index] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


@pytest.mark.parametrize("index", [0, 7, 8, 15, 16, 31])  # timestamp, unique part, MAC
def test_any_changed_bit_makes_it_invalid(index: int) -> None:
    issuer = NonceIssuer(SECRET)
    nonce = issuer.issue(NOW, REALM)
    assert issuer.check(_flip(nonce, index), NOW, REALM) is NonceState.INVALID


def test_forged_or_foreign_nonces_are_invalid() -> None:
    issuer = NonceIssuer(SECRET)
    nonce = issuer.issue(NOW, REALM)
    assert issuer.check(nonce, NOW, "atlanta.com") is NonceState.INVALID
    assert NonceIssuer(b"x" * 32).check(nonce, NOW, REALM) is NonceState.INVALID
    # A forged nonce stays invalid when old: it is never reported as stale.
    assert NonceIssuer(b"x" * 32).check(nonce, NOW + 10**6, REALM) is NonceState.INVALID


@pytest.mark.parametrize(
    "nonce",
    ["", "abc", "84f1c1ae6cbe5ua9", "=" * NONCE_LENGTH, "é" * NONCE_LENGTH, "A" * 44],
)
def test_malformed_nonces_are_invalid(nonce: str) -> None:
    issuer = NonceIssuer(SECRET)
    assert issuer.check(nonce, NOW, REALM) is NonceState.INVALID
    assert issuer.expires_at(nonce) is None


def test_each_nonce_has_one_spelling() -> None:
    issuer = NonceIssuer(SECRET)
    nonce = issuer.issue(NOW, REALM)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(nonce[-1])
    # The last character carries 4 bits of data and 2 spare ones.
    other = nonce[:-1] + alphabet[last ^ 0x01]
    assert issuer.check(other, NOW, REALM) is NonceState.INVALID


def test_bad_configuration() -> None:
    with pytest.raises(ValueError):
        NonceIssuer(b"short")
    with pytest.raises(ValueError):
        NonceIssuer(SECRET, lifetime=0)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("00000001", 1),
        ("0000000a", 10),
        ("0000000A", 10),
        ("ffffffff", 2**32 - 1),
        ("00000000", None),  # counting starts at 1
        ("1", None),
        ("000000001", None),
        ("0000000g", None),
        (" 0000001", None),
        (None, None),
    ],
)
def test_parse_nc(text: str | None, value: int | None) -> None:
    assert parse_nc(text) == value
