"""Typed views of the smaller headers: CSeq, RAck, integers, option tags,
media types, Event, Subscription-State, Reason, Timestamp.

Each ``parse_*`` function takes the list of raw lines of one header (as
``Headers.typed`` passes them) and returns the typed value, raising
ParseError when the header is malformed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from sipwire.errors import ParseError
from sipwire.message import grammar
from sipwire.message.params import (
    MAX_UINT32,
    Params,
    format_params,
    int_param,
    parse_digits,
    parse_params,
    split_values,
    unquote,
)

__all__ = [
    "CSeq",
    "Event",
    "MediaType",
    "RAck",
    "Reason",
    "SubscriptionState",
    "Timestamp",
]

_CSEQ_RE: Final = re.compile(rf"[ \t]*([0-9]+)[ \t]+({grammar.TOKEN})[ \t]*")
_RACK_RE: Final = re.compile(rf"[ \t]*([0-9]+)[ \t]+([0-9]+)[ \t]+({grammar.TOKEN})[ \t]*")
_TOKEN_RE: Final = re.compile(grammar.TOKEN)
_MEDIA_RE: Final = re.compile(rf"[ \t]*({grammar.TOKEN})[ \t]*/[ \t]*({grammar.TOKEN})[ \t]*")
_HEAD_TOKEN_RE: Final = re.compile(rf"[ \t]*({grammar.TOKEN})[ \t]*")
_TIMESTAMP_RE: Final = re.compile(
    r"[ \t]*([0-9]+(?:\.[0-9]*)?)(?:[ \t]+([0-9]+(?:\.[0-9]*)?))?[ \t]*"
)


def _single(values: list[str], name: str) -> str | None:
    if not values:
        return None
    if len(values) > 1:
        raise ParseError(f"more than one {name} header")
    return values[0]


class CSeq(NamedTuple):
    """``CSeq: 4711 INVITE`` (§20.16): sequence number and method."""

    seq: int
    method: str

    @classmethod
    def parse(cls, text: str) -> CSeq:
        m = _CSEQ_RE.fullmatch(text)
        if m is None:
            raise ParseError(f"malformed CSeq: {text!r}")
        return cls(parse_digits(m.group(1), "CSeq number"), m.group(2))

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


def parse_cseq(values: list[str]) -> CSeq | None:
    text = _single(values, "CSeq")
    return None if text is None else CSeq.parse(text)


@dataclass(frozen=True, slots=True)
class RAck:
    """``RAck: 776656 1 INVITE`` (RFC 3262 §7.2): RSeq, CSeq number, method."""

    rseq: int
    cseq: int
    method: str

    @classmethod
    def parse(cls, text: str) -> RAck:
        m = _RACK_RE.fullmatch(text)
        if m is None:
            raise ParseError(f"malformed RAck: {text!r}")
        rseq = parse_digits(m.group(1), "RAck response-num")
        return cls(rseq, parse_digits(m.group(2), "RAck CSeq number"), m.group(3))

    def __str__(self) -> str:
        return f"{self.rseq} {self.cseq} {self.method}"


def parse_rack(values: list[str]) -> RAck | None:
    text = _single(values, "RAck")
    return None if text is None else RAck.parse(text)


def parse_int(values: list[str], name: str, maximum: int = MAX_UINT32) -> int | None:
    """A header whose value is 1*DIGIT; leading zeros allowed; above ``maximum`` is an error.

    Max-Forwards (at most 255, §20.22), Content-Length and RSeq (2**32-1,
    RFC 3262 §7.1); ParseError (400) otherwise, however long the digits.
    """
    text = _single(values, name)
    if text is None:
        return None
    return parse_digits(text.strip(), name, maximum)


def parse_delta_seconds(values: list[str], name: str) -> int | None:
    """Expires / Min-Expires: delta-seconds; values above 2**32-1 are capped (§20.19).

    The cap holds for any number of digits; anything but digits is a ParseError.
    """
    text = _single(values, name)
    if text is None:
        return None
    return parse_digits(text.strip(), name, clamp=True)


def parse_tokens(values: list[str], name: str) -> list[str]:
    """Comma-separated tokens (Allow, Supported, Require, Unsupported ...); empty allowed."""
    out: list[str] = []
    for value in values:
        if not value.strip():
            continue
        for item in split_values(value, name):
            if _TOKEN_RE.fullmatch(item) is None:
                raise ParseError(f"malformed {name} value: {item!r}")
            out.append(item)
    return out


@dataclass(frozen=True, slots=True)
class MediaType:
    """``application/sdp;charset=utf-8`` (Content-Type, Accept; §20.15)."""

    type: str
    subtype: str
    params: Params = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def parse(cls, text: str) -> MediaType:
        m = _MEDIA_RE.match(text)
        if m is None:
            raise ParseError(f"malformed media type: {text!r}")
        rest = text[m.end() :].strip()
        params = parse_params(rest, "media parameter") if rest else {}
        return cls(m.group(1).lower(), m.group(2).lower(), params)

    @property
    def mime(self) -> str:
        """``type/subtype`` in lower case."""
        return f"{self.type}/{self.subtype}"

    def matches(self, other: MediaType) -> bool:
        """True when ``other`` falls under this range (``*/*``, ``application/*``)."""
        if self.type == "*":
            return True
        return self.type == other.type and self.subtype in ("*", other.subtype)

    def __str__(self) -> str:
        return f"{self.type}/{self.subtype}{format_params(self.params)}"


def parse_content_type(values: list[str]) -> MediaType | None:
    text = _single(values, "Content-Type")
    return None if text is None else MediaType.parse(text)


def parse_accept(values: list[str]) -> list[MediaType]:
    out: list[MediaType] = []
    for value in values:
        if value.strip():
            out.extend(MediaType.parse(v) for v in split_values(value, "Accept"))
    return out


@dataclass(frozen=True, slots=True)
class _TokenWithParams:
    value: str
    params: Params = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def _parse(cls, text: str, name: str) -> tuple[str, Params]:
        m = _HEAD_TOKEN_RE.match(text)
        if m is None:
            raise ParseError(f"malformed {name}: {text!r}")
        rest = text[m.end() :].strip()
        return m.group(1), (parse_params(rest, name) if rest else {})

    def __str__(self) -> str:
        return f"{self.value}{format_params(self.params)}"


@dataclass(frozen=True, slots=True)
class Event(_TokenWithParams):
    """``Event: presence;id=7`` (RFC 6665 §8.2.1)."""

    @classmethod
    def parse(cls, text: str) -> Event:
        value, params = cls._parse(text, "Event")
        return cls(value, params)

    @property
    def package(self) -> str:
        return self.value

    @property
    def id(self) -> str | None:
        return self.params.get("id")


def parse_event(values: list[str]) -> Event | None:
    text = _single(values, "Event")
    return None if text is None else Event.parse(text)


@dataclass(frozen=True, slots=True)
class SubscriptionState(_TokenWithParams):
    """``Subscription-State: active;expires=600`` (RFC 6665 §8.2.3)."""

    @classmethod
    def parse(cls, text: str) -> SubscriptionState:
        value, params = cls._parse(text, "Subscription-State")
        return cls(value.lower(), params)

    @property
    def state(self) -> str:
        """``active``, ``pending``, ``terminated`` or an extension value."""
        return self.value

    @property
    def expires(self) -> int | None:
        """The ``expires`` parameter in seconds, capped at 2**32-1 (RFC 6665 §8.2.3)."""
        return int_param(self.params.get("expires"), "expires parameter")

    @property
    def reason(self) -> str | None:
        return self.params.get("reason")

    @property
    def retry_after(self) -> int | None:
        """The ``retry-after`` parameter in seconds, capped at 2**32-1."""
        return int_param(self.params.get("retry-after"), "retry-after parameter")


def parse_subscription_state(values: list[str]) -> SubscriptionState | None:
    text = _single(values, "Subscription-State")
    return None if text is None else SubscriptionState.parse(text)


@dataclass(frozen=True, slots=True)
class Reason:
    """``Reason: Q.850;cause=16;text="Terminated"`` (RFC 3326)."""

    protocol: str
    params: Params = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def parse(cls, text: str) -> Reason:
        m = _HEAD_TOKEN_RE.match(text)
        if m is None:
            raise ParseError(f"malformed Reason: {text!r}")
        rest = text[m.end() :].strip()
        return cls(m.group(1), parse_params(rest, "Reason") if rest else {})

    @property
    def cause(self) -> int | None:
        """The ``cause`` parameter (RFC 3326 §2); ParseError above 2**32-1."""
        return int_param(self.params.get("cause"), "Reason cause", clamp=False)

    @property
    def text(self) -> str | None:
        value = self.params.get("text")
        return None if value is None else unquote(value)

    def __str__(self) -> str:
        return f"{self.protocol}{format_params(self.params)}"


def parse_reasons(values: list[str]) -> list[Reason]:
    return [Reason.parse(v) for value in values for v in split_values(value, "Reason")]


@dataclass(frozen=True, slots=True)
class Timestamp:
    """``Timestamp: 54.2 0.5`` (§20.38): the client's time and an optional delay."""

    value: str
    delay: str | None = None

    @classmethod
    def parse(cls, text: str) -> Timestamp:
        m = _TIMESTAMP_RE.fullmatch(text)
        if m is None:
            raise ParseError(f"malformed Timestamp: {text!r}")
        return cls(m.group(1), m.group(2))

    def __str__(self) -> str:
        return self.value if self.delay is None else f"{self.value} {self.delay}"


def parse_timestamp(values: list[str]) -> Timestamp | None:
    text = _single(values, "Timestamp")
    return None if text is None else Timestamp.parse(text)
