"""SDES: the ``a=crypto`` attribute of RFC 4568 (SDP Security Descriptions).

An offer lists one ``a=crypto`` line per crypto suite it can do, each with a
``tag`` and the offerer's master key and salt for what *it* sends::

    a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4
              ^ tag ^ crypto-suite      ^ key-params (key-method "inline": key||salt, base64)

The answerer picks one line it supports (:func:`choose_crypto`), and answers
with the same tag and suite and its own key (:func:`answer_crypto`). Each side
then protects what it sends with its own key and unprotects what it receives
with the peer's (RFC 4568 §6.1): two keys per stream, one per direction.

What sipwire accepts in a line (:func:`usable`): a suite of :data:`SUITES`,
exactly one inline key of the suite's length, no MKI (§9.2: its use is the
offerer's choice; a line with an MKI is passed over, as is one with several
keys), any lifetime (keys are replaced on re-INVITE long before 2^31
packets), and of the session parameters only ``WSH`` (a window size hint,
§6.3.7): a line asking for ``UNENCRYPTED_SRTP``, ``UNAUTHENTICATED_SRTP``,
``KDR``, ``FEC_ORDER`` or ``FEC_KEY`` is passed over too, since it asks for
less protection or for what libsrtp's profiles do not express.

Nothing here reads a clock or a random source: new keys come in as bytes.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from sipwire.sdp.session import Attribute, SdpError

__all__ = [
    "SUITES",
    "CryptoAttribute",
    "CryptoSuite",
    "answer_crypto",
    "choose_crypto",
    "crypto_attributes",
    "offer_crypto",
    "parse_crypto",
    "usable",
]


@dataclass(frozen=True, slots=True)
class CryptoSuite:
    """A crypto suite: its SDP name and the lengths of its master key and salt."""

    name: str
    key_length: int
    salt_length: int

    @property
    def key_salt_length(self) -> int:
        """Bytes of the ``inline`` key-salt: the master key, then the master salt."""
        return self.key_length + self.salt_length


SUITES: Final[dict[str, CryptoSuite]] = {
    suite.name: suite
    for suite in (
        CryptoSuite("AES_CM_128_HMAC_SHA1_80", 16, 14),  # RFC 4568 §6.2.1
        CryptoSuite("AES_CM_128_HMAC_SHA1_32", 16, 14),  # RFC 4568 §6.2.2
        CryptoSuite("AEAD_AES_128_GCM", 16, 12),  # RFC 7714 §14.2
        CryptoSuite("AEAD_AES_256_GCM", 32, 12),  # RFC 7714 §14.2
    )
}
"""The suites sipwire can protect a stream with (those of libsrtp's profiles)."""

_LINE: Final = re.compile(r"^([0-9]{1,9})[ \t]+([A-Za-z0-9_]+)[ \t]+(\S+)((?:[ \t]+\S+)*)[ \t]*$")
_MKI: Final = re.compile(r"^([0-9]{1,10}):([0-9]{1,3})$")
_LIFETIME: Final = re.compile(r"^(?:2\^([0-9]{1,2})|([0-9]{1,20}))$")
_ACCEPTED_SESSION_PARAMS: Final = ("WSH=",)


@dataclass(frozen=True, slots=True)
class CryptoAttribute:
    """One ``a=crypto`` line (RFC 4568 §9.1)."""

    tag: int
    suite: str
    """The crypto-suite as written (``AES_CM_128_HMAC_SHA1_80`` ...)."""
    key_salt: bytes
    """The (first) inline master key followed by the master salt."""
    lifetime: int | None = None
    """Packets the key may protect (``|2^20`` is 1,048,576), or None."""
    mki: tuple[int, int] | None = None
    """(MKI value, MKI length in bytes), or None."""
    more_keys: int = 0
    """How many further ``inline:`` keys the line carries (sipwire uses none)."""
    session_params: tuple[str, ...] = ()

    def value(self) -> str:
        """The attribute's value, what follows ``a=crypto:``."""
        key = base64.b64encode(self.key_salt).decode("ascii")
        if self.lifetime is not None:
            key += f"|{_format_lifetime(self.lifetime)}"
        if self.mki is not None:
            key += f"|{self.mki[0]}:{self.mki[1]}"
        return " ".join((str(self.tag), self.suite, f"inline:{key}", *self.session_params))

    def attribute(self) -> Attribute:
        """This line as an SDP attribute, to append to a media description."""
        return Attribute("crypto", self.value())

    def __repr__(self) -> str:  # keys stay out of logs and tracebacks
        hidden = f"<{len(self.key_salt)} bytes>"
        return f"CryptoAttribute(tag={self.tag}, suite={self.suite!r}, key_salt={hidden})"


def parse_crypto(value: str) -> CryptoAttribute:
    """The ``a=crypto`` line whose value (after ``crypto:``) is ``value``.

    Raises :class:`SdpError` for a line that does not follow RFC 4568 §9.1's
    grammar (a bad tag, no ``inline:`` key, a key that is not base64, a bad
    lifetime or MKI). A well-formed line with a suite or parameters sipwire
    does not do is returned all the same: :func:`usable` says.
    """
    match = _LINE.match(value)
    if match is None:
        raise SdpError(f"a=crypto: not 'tag suite key-params': {value[:80]!r}")
    tag, suite, key_params, rest = match.groups()
    keys = key_params.split(";")
    first = _parse_key(keys[0])
    for other in keys[1:]:
        _parse_key(other)
    key_salt, lifetime, mki = first
    return CryptoAttribute(
        tag=int(tag),
        suite=suite,
        key_salt=key_salt,
        lifetime=lifetime,
        mki=mki,
        more_keys=len(keys) - 1,
        session_params=tuple(rest.split()),
    )


def _parse_key(text: str) -> tuple[bytes, int | None, tuple[int, int] | None]:
    """``inline:<key||salt>[|lifetime][|MKI:length]`` (RFC 4568 §9.2)."""
    method, _, info = text.partition(":")
    if method.lower() != "inline" or not info:
        raise SdpError(f"a=crypto: key method {method!r} is not inline")
    fields = info.split("|")
    if len(fields) > 3:
        raise SdpError("a=crypto: too many '|' in the key")
    encoded = fields[0]
    try:
        key_salt = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise SdpError("a=crypto: the inline key is not base64") from None
    lifetime: int | None = None
    mki: tuple[int, int] | None = None
    for field in fields[1:]:
        if ":" in field:
            found = _MKI.match(field)
            if found is None or mki is not None or not 1 <= int(found[2]) <= 128:
                raise SdpError(f"a=crypto: bad MKI {field!r}")
            mki = (int(found[1]), int(found[2]))
        else:
            found = _LIFETIME.match(field)
            if found is None or lifetime is not None or mki is not None:
                raise SdpError(f"a=crypto: bad key lifetime {field!r}")
            lifetime = 2 ** int(found[1]) if found[1] is not None else int(found[2])
    return key_salt, lifetime, mki


def _format_lifetime(lifetime: int) -> str:
    if lifetime > 0 and lifetime & (lifetime - 1) == 0:
        return f"2^{lifetime.bit_length() - 1}"
    return str(lifetime)


def crypto_attributes(values: Iterable[str]) -> list[CryptoAttribute]:
    """The well-formed lines among ``values`` (a media description's
    ``get_all("crypto")``), in the offerer's order of preference; malformed
    ones are left out (§7.1.2: the answerer ignores what it cannot parse)."""
    found: list[CryptoAttribute] = []
    for value in values:
        try:
            found.append(parse_crypto(value))
        except SdpError:
            continue
    return found


def usable(line: CryptoAttribute, suites: Sequence[str] = tuple(SUITES)) -> bool:
    """Whether sipwire can protect a stream as ``line`` says (module docstring)."""
    suite = SUITES.get(line.suite)
    return (
        suite is not None
        and line.suite in suites
        and len(line.key_salt) == suite.key_salt_length
        and line.mki is None
        and line.more_keys == 0
        and all(param.startswith(_ACCEPTED_SESSION_PARAMS) for param in line.session_params)
    )


def choose_crypto(
    offered: Sequence[CryptoAttribute], suites: Sequence[str] = tuple(SUITES)
) -> CryptoAttribute | None:
    """The offered line to answer (§7.1.2): the first, in the offerer's order,
    that is :func:`usable` with one of ``suites``; None if none is."""
    for line in offered:
        if usable(line, suites):
            return line
    return None


def answer_crypto(chosen: CryptoAttribute, key_salt: bytes) -> CryptoAttribute:
    """The answer's line for the offered ``chosen``: same tag and suite, our key
    (``key_salt``: fresh random bytes of the suite's length)."""
    _check_length(chosen.suite, key_salt)
    return CryptoAttribute(tag=chosen.tag, suite=chosen.suite, key_salt=key_salt)


def offer_crypto(keys: Sequence[tuple[str, bytes]]) -> list[CryptoAttribute]:
    """An offer's lines, tags 1, 2, ...: one per (suite, our key-salt for it), in
    our order of preference."""
    lines = []
    for tag, (suite, key_salt) in enumerate(keys, start=1):
        _check_length(suite, key_salt)
        lines.append(CryptoAttribute(tag=tag, suite=suite, key_salt=key_salt))
    return lines


def _check_length(suite: str, key_salt: bytes) -> None:
    known = SUITES.get(suite)
    if known is None:
        raise ValueError(f"unknown crypto suite {suite!r}")
    if len(key_salt) != known.key_salt_length:
        raise ValueError(f"{suite} needs {known.key_salt_length} bytes of key and salt")
