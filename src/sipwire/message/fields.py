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
    Params,
    format_params,
    int_param,
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

MAX_UINT32: Final = 2**32 - 1
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
        seq = int(m.group(1))
        if seq > MAX_UINT32:
            raise ParseError("CSeq number exceeds 2**32-1")
        return cls(seq, m.group(2))

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
        rseq, cseq = int(m.group(1)), int(m.group(2))
        if rseq > MAX_UINT32 or cseq > MAX_UINT32:
            raise ParseError("RAck number exceeds 2**32-1")
        return cls(rseq, cseq, m.group(3))

    def __str__(self) -> str:
        return f"{self.rseq} {self.cseq} {self.method}"


def parse_rack(values: list[str]) -> RAck | None:
    text = _single(values, "RAck")
    return None if text is None else RAck.parse(text)


def parse_int(values: list[str], name: str, maximum: int = MAX_UINT32) -> int | None:
    """A header whose value is 1*DIGIT; leading zeros allowed; above ``maximum`` is an error."""
    text = _single(values, name)
    if text is None:
        return None
    text = text.strip()
    if not text.isdigit() or not text.isascii():
        raise ParseError(f"malformed {name}: {text!r}")
    value = int(text)
    if value > maximum:
        raise ParseError(f"{name} out of range: {text}")
    return value


def parse_delta_seconds(values: list[str], name: str) -> int | None:
    """Expires / Min-Expires: delta-seconds; values above 2**32-1 are capped (§20.19)."""
    text = _single(values, name)
    if text is None:
        return None
    text = text.strip()
    if not text.isdigit() or not text.isascii():
        raise ParseError(f"malformed {name}: {text!r}")
    return min(int(text), MAX_UINT32)


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
        return int_param(self.params.get("expires"))

    @property
    def reason(self) -> str | None:
        return self.params.get("reason")

    @property
    def retry_after(self) -> int | None:
        return int_param(self.params.get("retry-after"))


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
        return int_param(self.params.get("cause"))

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
