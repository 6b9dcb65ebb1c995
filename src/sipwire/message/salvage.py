"""Answering requests that do not parse (RFC 3261 §8.2, §16.3, §18.3).

A request that fails ``parse_message`` still deserves its 400 (or 505, 513)
when the peer can be told: this module scans the raw head leniently for the
headers a response must copy (§8.2.6.2) and builds that response from them,
byte for byte. When there is no usable top Via the response cannot be
routed, and the caller drops the request instead.
"""

from __future__ import annotations

from typing import Final

from sipwire.errors import ParseError
from sipwire.message.headers import canonical_key
from sipwire.message.message import Response
from sipwire.message.reasons import reason_phrase
from sipwire.message.via import Via

__all__ = ["error_response"]

_COPIED: Final = ("via", "from", "to", "call-id", "cseq")
_MAX_HEAD: Final = 16384


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
        Via.parse(found["via"][0][1].split(",")[0])
    except ParseError:
        return None  # no way to route the answer (§18.2.2)
    items = [(key, name, value) for key in _COPIED for name, value in found[key]]
    response = Response(error.status)
    response.headers._items = items
    reason = "".join(c if c.isprintable() else " " for c in error.reason)[:120]
    response.reason = f"{reason_phrase(error.status)} - {reason}" if reason else response.reason
    return response
