"""SIP messages for the load-test clients (test helper).

:func:`build_request` writes a well-formed request, :func:`sdp_offer` an SDP
offer; :func:`parse_sip` reads just enough of a message (first line and
headers) into a :class:`SipMessage`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["SipMessage", "build_request", "parse_sip", "sdp_offer"]


def sdp_offer(ip: str, port: int = 40000, session: int = 1) -> bytes:
    return (
        "v=0\r\n"
        f"o=- {session} 1 IN IP4 {ip}\r\n"
        "s=-\r\n"
        f"c=IN IP4 {ip}\r\n"
        "t=0 0\r\n"
        f"m=audio {port} RTP/AVP 0 8 101\r\n"
        "a=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:8 PCMA/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n"
        "a=fmtp:101 0-15\r\n"
        "a=sendrecv\r\n"
    ).encode()


def build_request(
    method: str,
    uri: str,
    *,
    via_host: str,
    via_port: int,
    branch: str,
    call_id: str,
    from_tag: str,
    to_tag: str | None = None,
    cseq: int = 1,
    cseq_method: str | None = None,
    transport: str = "UDP",
    contact: bool = False,
    body: bytes = b"",
    content_type: str = "application/sdp",
    extra: Sequence[tuple[str, str]] = (),
) -> bytes:
    """A well-formed request (rport asked for, so answers come back to the sending socket)."""
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: SIP/2.0/{transport} {via_host}:{via_port};branch={branch};rport",
        "Max-Forwards: 70",
        f"From: <sip:probe@{via_host}>;tag={from_tag}",
        f"To: <{uri}>" + (f";tag={to_tag}" if to_tag else ""),
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {cseq_method or method}",
    ]
    if contact:
        lines.append(f"Contact: <sip:probe@{via_host}:{via_port}>")
    lines += [f"{name}: {value}" for name, value in extra]
    if body:
        lines.append(f"Content-Type: {content_type}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


_COMPACT = {
    "i": "call-id",
    "t": "to",
    "f": "from",
    "v": "via",
    "m": "contact",
    "l": "content-length",
    "c": "content-type",
}
_BRANCH = re.compile(r"branch=([^;,\s]+)", re.IGNORECASE)
_TAG = re.compile(r";\s*tag=([^;,\s>]+)", re.IGNORECASE)
_URI = re.compile(r"<([^>]+)>")


@dataclass
class SipMessage:
    """Just enough of a message for the test clients (headers by lower-case long name)."""

    first: str
    headers: dict[str, list[str]]

    @property
    def status(self) -> int | None:
        parts = self.first.split(" ", 2)
        if parts[0] == "SIP/2.0" and len(parts) > 1 and parts[1].isdigit():
            return int(parts[1])
        return None

    def header(self, name: str) -> str:
        values = self.headers.get(name)
        return values[0] if values else ""

    @property
    def branch(self) -> str:
        match = _BRANCH.search(self.header("via"))
        return match.group(1) if match else ""

    @property
    def from_tag(self) -> str:
        match = _TAG.search(self.header("from"))
        return match.group(1) if match else ""

    @property
    def to_tag(self) -> str:
        match = _TAG.search(self.header("to"))
        return match.group(1) if match else ""

    @property
    def call_id(self) -> str:
        return self.header("call-id").strip()

    @property
    def cseq_method(self) -> str:
        parts = self.header("cseq").split()
        return parts[1] if len(parts) > 1 else ""

    @property
    def contact_uri(self) -> str:
        match = _URI.search(self.header("contact"))
        return match.group(1) if match else ""


def parse_sip(data: bytes) -> SipMessage | None:
    """First line and headers of a message, or None when there is no first line."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    lines = head.split("\r\n")
    if not lines or not lines[0]:
        return None
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            continue
        key = name.strip().lower()
        headers.setdefault(_COMPACT.get(key, key), []).append(value.strip())
    return SipMessage(lines[0], headers)
