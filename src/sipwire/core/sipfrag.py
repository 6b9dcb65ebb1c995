"""``message/sipfrag`` bodies (RFC 3420) as the NOTIFYs of a REFER carry them.

RFC 3515 §2.4.5: each NOTIFY of the implicit ``refer`` subscription holds at
least the status line of the latest response the referenced request got,
``SIP/2.0 200 OK``.
"""

from __future__ import annotations

import re
from typing import Final

from sipwire.message.reasons import reason_phrase

__all__ = ["SIPFRAG", "parse_status_line", "status_line"]

SIPFRAG: Final = "message/sipfrag;version=2.0"
"""The Content-Type of a REFER's NOTIFY (RFC 3515 §2.4.5)."""

_STATUS_RE: Final = re.compile(r"SIP/2\.0[ \t]+([1-6][0-9]{2})(?:[ \t]+([^\r\n]*))?")


def status_line(status: int, reason: str | None = None) -> bytes:
    """A sipfrag holding just a status line: ``SIP/2.0 100 Trying\\r\\n``."""
    text = reason_phrase(status) if reason is None else reason
    return f"SIP/2.0 {status} {text}\r\n".encode()


def parse_status_line(body: bytes) -> tuple[int, str] | None:
    """The status code and reason of a sipfrag's first line, None when it has none."""
    first = body.decode("utf-8", "replace").lstrip("\r\n").split("\n", 1)[0].rstrip("\r")
    m = _STATUS_RE.fullmatch(first.strip())
    if m is None:
        return None
    return int(m.group(1)), (m.group(2) or "").strip()
