"""Answering requests that do not parse (RFC 3261 §8.2, §16.3, §18.3).

A request that fails ``parse_message`` still deserves its 400 (or 505, 513)
when the peer can be told: this module scans the raw head leniently for the
headers a response must copy (§8.2.6.2) and builds that response from them,
byte for byte. When there is no usable top Via the response cannot be
routed, and the caller drops the request instead.

§8.2.6.2: "the UAS MUST add a tag to the To header field in the response"
(unless the request's To already has one). The tag is derived from the raw
top Via branch, Call-ID and From, so every retransmission of the broken
request gets the same tag without the server keeping anything.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

from sipwire.errors import ParseError
from sipwire.message.headers import canonical_key
from sipwire.message.message import Response
from sipwire.message.reasons import reason_phrase
from sipwire.message.via import Via

__all__ = ["error_response"]

_COPIED: Final = ("via", "from", "to", "call-id", "cseq")
_MAX_HEAD: Final = 16384
_QUOTED: Final = re.compile(r'"(?:[^"\\]|\\.)*"?')
_BRACKETED: Final = re.compile(r"<[^>]*>?")
_TAG_PARAM: Final = re.compile(r";\s*tag\s*=", re.IGNORECASE)


def error_response(data: bytes, error: ParseError) -> Response | None:
    """The response to a request that raised ``error``, or None when it cannot be sent.

    None for responses (never answered), for heads without a parseable top
    Via, and for heads missing the headers a response needs.
    """
    head = data[:_MAX_HEAD].split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    lines = head.replace("\r\n ", " ").replace("\r\n\t", " ").split("\r\n")
    start = lines[0].lstrip("\r\n")
    if not start or start.startswith("SIP/"):
        return None
    found: dict[str, list[tuple[str, str]]] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            continue
        key = canonical_key(name.strip())
        if key in _COPIED:
            found.setdefault(key, []).append((name.strip(), value.strip()))
    if any(key not in found for key in _COPIED):
        return None
    try:
        top = Via.parse(found["via"][0][1].split(",")[0])
    except ParseError:
        return None  # no way to route the answer (§18.2.2)
    to_name, to_value = found["to"][0]
    if not _has_tag(to_value):
        tag = _derived_tag(top.branch or "", found["call-id"][0][1], found["from"][0][1])
        found["to"][0] = (to_name, f"{to_value};tag={tag}")
    items = [(key, name, value) for key in _COPIED for name, value in found[key]]
    response = Response(error.status)
    response.headers._items = items
    reason = "".join(c if c.isprintable() else " " for c in error.reason)[:120]
    response.reason = f"{reason_phrase(error.status)} - {reason}" if reason else response.reason
    return response


def _has_tag(value: str) -> bool:
    """Whether a raw To value carries a ``tag`` header parameter (outside the
    display name's quotes and the URI's angle brackets, where it would be
    part of the name or a URI parameter)."""
    outside = _BRACKETED.sub("", _QUOTED.sub("", value))
    return _TAG_PARAM.search(outside) is not None


def _derived_tag(branch: str, call_id: str, from_value: str) -> str:
    """A To tag that is a function of the request's transaction: the same for
    every retransmission, different between requests (§8.2.6.2, §19.3)."""
    seed = "\x00".join((branch, call_id, from_value)).encode("utf-8", "surrogateescape")
    return hashlib.blake2s(seed, digest_size=8).hexdigest()
