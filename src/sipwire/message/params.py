"""Header parameters, quoted strings and comma-separated header values.

Parameter names are case-insensitive (RFC 3261 §7.3.1) and are stored
lower-cased; values keep their case. A parameter without a value
(``;lr``) maps to ``None``.
"""

from __future__ import annotations

import re
from typing import Final

from sipwire.errors import ParseError
from sipwire.message import grammar

__all__ = [
    "MAX_UINT32",
    "format_params",
    "int_param",
    "parse_digits",
    "parse_params",
    "quote",
    "split_values",
    "unquote",
]

Params = dict[str, str | None]

_PARAM_RE = grammar.PARAM_RE
_PARAMS_PLAIN_RE = grammar.PARAMS_PLAIN_RE
_QUOTED_PAIR_RE = re.compile(r"\\(.)", re.S)
_TOKEN_FULL_RE: Final = re.compile(grammar.TOKEN)


# Parameters with no blanks and no quotes, as one regex group (validated by the match).
PLAIN_PARAMS: Final = rf"((?:;[{grammar.TOKEN_CHARS}]+(?:=[^;,\s\"]+)?)*)"


MAX_UINT32: Final = 2**32 - 1
"""The largest delta-seconds and sequence number RFC 3261 allows (§20.16, §20.19)."""

# More significant digits than this exceed every maximum below 10**18.
_MAX_DIGITS: Final = 18


def _shown(text: str) -> str:
    """``text`` shortened for an error reason: a peer's 5,000 digits are not repeated."""
    return text if len(text) <= 24 else f"{text[:20]}...({len(text)} characters)"


def parse_digits(text: str, name: str, maximum: int = MAX_UINT32, *, clamp: bool = False) -> int:
    """The value of ``text``, which must be 1*DIGIT (ASCII; leading zeros allowed).

    Every integer a peer writes (CSeq, Max-Forwards, Content-Length, RSeq,
    RAck, Expires, ports, numeric parameters) is read through here, so its
    cost is bounded however many digits it has: only the significant digits
    are converted, and only when there are few enough of them to fit under
    ``maximum`` (which must be below 10**18). Python's ``int()`` never sees
    more than 18 digits, far from its 4,300-digit limit.

    Raises ParseError (status 400) naming ``name`` when ``text`` is not
    digits, or when the value exceeds ``maximum`` and ``clamp`` is false.
    With ``clamp`` a larger value reads as ``maximum``: delta-seconds above
    2**32-1 are capped (RFC 3261 §20.19), however long.
    """
    if not (text and text.isascii() and text.isdigit()):
        raise ParseError(f"malformed {name}: {_shown(text)!r}")
    if len(text) > _MAX_DIGITS:
        text = text.lstrip("0") or "0"
    if len(text) <= _MAX_DIGITS:
        value = int(text)
        if value <= maximum:
            return value
    if clamp:
        return maximum
    raise ParseError(f"{name} out of range: {_shown(text)} (at most {maximum})")


def int_param(
    value: str | None, name: str = "parameter", maximum: int = MAX_UINT32, *, clamp: bool = True
) -> int | None:
    """A parameter value that must be 1*DIGIT (ASCII), as an int; anything else is None.

    Digits above ``maximum`` read as ``maximum`` (delta-seconds, the default)
    or, without ``clamp``, raise ParseError: see :func:`parse_digits`.
    """
    if value and value.isascii() and value.isdigit():
        return parse_digits(value, name, maximum, clamp=clamp)
    return None


def split_plain_params(text: str) -> Params:
    """Split ``;a=1;b`` that a PLAIN_PARAMS group already validated."""
    params: Params = {}
    for item in text[1:].split(";"):
        name, eq, value = item.partition("=")
        params[name.lower()] = value if eq else None
    return params


def parse_params(text: str, what: str = "parameter") -> Params:
    """Parse ``;name=value;flag`` into a dict; ``text`` is empty or starts with ';'.

    Raises ParseError on an empty name (``;;``), a stray character or an
    unterminated quoted string. Quoted values keep their quotes so that they
    serialise unchanged; use :func:`unquote` to read them.
    """
    if not text:
        return {}
    if _PARAMS_PLAIN_RE.fullmatch(text) is not None:
        return split_plain_params(text)
    params: Params = {}
    pos = 0
    end = len(text.rstrip(" \t"))
    while pos < end:
        m = _PARAM_RE.match(text, pos)
        if m is None or m.end() == pos:
            raise ParseError(f"malformed {what} list: {text!r}")
        params[m.group(1).lower()] = m.group(2)
        pos = m.end()
    return params


def format_params(params: Params) -> str:
    """Serialise a parameter dict as ``;name=value;flag``."""
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


def unquote(value: str) -> str:
    """Remove the quotes and quoted-pairs of a quoted-string; other values pass through."""
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        inner = value[1:-1]
        return _QUOTED_PAIR_RE.sub(r"\1", inner) if "\\" in inner else inner
    return value


_MUST_ESCAPE_RE = re.compile(r'["\\\x00-\x08\x0b\x0c\x0e-\x1f\x7f]')


def quote(value: str) -> str:
    """Make a quoted-string of ``value``.

    Quotes, backslashes and control characters become quoted-pairs; CR and
    LF, which no quoted-string can carry, become spaces.
    """
    if "\r" in value or "\n" in value:
        value = value.replace("\r", " ").replace("\n", " ")
    return '"' + _MUST_ESCAPE_RE.sub(lambda m: "\\" + m.group(), value) + '"'


def quote_if_needed(value: str) -> str:
    """Return ``value`` as a token when it is one, else as a quoted-string."""
    return value if _TOKEN_FULL_RE.fullmatch(value) else quote(value)


# One element of a comma-separated list: runs of anything but a comma, with
# quoted strings and <...> URIs taken whole (they may contain commas).
_ELEMENT_RE = re.compile(r'(?:[^,"<]+|"(?:[^"\\]|\\.)*"|<[^>]*>)+', re.S)


def split_values(text: str, what: str = "header") -> list[str]:
    """Split a header value at the commas that separate list elements (RFC 3261 §7.3.1).

    Commas inside quoted strings and angle brackets do not split. Empty
    elements (``a,,b``) are a syntax error for the headers that use this.
    """
    if "," not in text:
        stripped = text.strip()
        if not stripped:
            raise ParseError(f"empty {what} value")
        return [stripped]
    parts: list[str] = []
    pos = 0
    n = len(text)
    while True:
        m = _ELEMENT_RE.match(text, pos)
        element = m.group().strip() if m else ""
        if not element:
            raise ParseError(f"empty element in {what} list: {text!r}")
        parts.append(element)
        pos = m.end() if m else pos
        if pos >= n:
            return parts
        if text[pos] != ",":
            raise ParseError(f"unbalanced quote or bracket in {what}: {text!r}")
        pos += 1
