"""Parsing SIP messages from bytes: one datagram, or a stream of them (RFC 3261 §7, §18.3).

``parse_message`` validates the start line and the headers every element
relies on (Via, From, To, Call-ID, CSeq, Max-Forwards, Content-Length) and
leaves the rest to lazy typed views. ``StreamParser`` frames messages on a
TCP/TLS/WebSocket byte stream by Content-Length and recognises RFC 5626
keep-alives.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from sipwire.errors import ParseError
from sipwire.message import address as _address
from sipwire.message import fields as _fields
from sipwire.message import grammar
from sipwire.message.headers import _KEY_CACHE, Headers, canonical_key
from sipwire.message.message import Request, Response
from sipwire.message.params import parse_digits
from sipwire.message.uri import SIP_URI_BODY, parse_uri, sip_uri_from_groups
from sipwire.message.via import parse_via_list

__all__ = [
    "MAX_MESSAGE_SIZE",
    "KeepAlivePing",
    "KeepAlivePong",
    "StreamError",
    "StreamParser",
    "parse_message",
]

MAX_MESSAGE_SIZE: Final = 65536
"""Default upper bound of a message on a stream (head and body), in bytes."""

_REQUEST_LINE_RE = grammar.REQUEST_LINE_RE
_STATUS_LINE_RE = grammar.STATUS_LINE_RE
_CALL_ID_RE = grammar.CALL_ID_RE
_SIP_REQUEST_LINE_RE: Final = re.compile(
    rf"({grammar.TOKEN}) ([Ss][Ii][Pp][Ss]?):{SIP_URI_BODY} SIP/2\.0"
)
_FOLD_RE = grammar.FOLD_RE
# The optional C accelerator (sipwire/message/_speedups.c); SIPWIRE_PURE_PYTHON=1 disables it.
_fast_parse: Callable[[bytes], Request | Response | None] | None = None
if not os.environ.get("SIPWIRE_PURE_PYTHON"):
    try:
        import sipwire.message._speedups as _speedups
    except ImportError:  # not built: the pure-Python parser does all the work
        pass
    else:
        _fast_parse = _speedups.parse

# Headers that must appear at most once (§20: "MUST NOT contain more than one"
# for these; two Content-Lengths leave framing undefined, RFC 4475 mcl01).
_TRACKED: Final = frozenset(
    {"via", "call-id", "cseq", "from", "to", "max-forwards", "content-length"}
)
_REQUIRED: Final = ("from", "to", "call-id", "cseq")
_TOKEN_RE: Final = re.compile(grammar.TOKEN)


def _bad_header(line: str) -> ParseError:
    shown = line if len(line) <= 60 else line[:57] + "..."
    return ParseError(f"malformed header line: {shown!r}")


def _new_key(name: str) -> str:
    """Canonical key of a header name not seen before; validates it as a token."""
    stripped = name.rstrip(" \t")
    if _TOKEN_RE.fullmatch(stripped) is None:
        raise _bad_header(name)
    return canonical_key(name) if stripped == name else canonical_key(stripped)


def _split_head(data: bytes, start: int) -> tuple[list[str], int]:
    """Find the end of the header section; return its unfolded lines and the body offset."""
    end = data.find(b"\r\n\r\n", start)
    if end >= 0:
        head = data[start:end].decode("utf-8", "surrogateescape")
        body_start = end + 4
        if "\r\n " in head or "\r\n\t" in head:
            head = _FOLD_RE.sub(" ", head)
        lines = head.split("\r\n")
        if head.count("\n") != len(lines) - 1 or head.count("\r") != len(lines) - 1:
            raise ParseError("bare CR or LF in the header section")
        return lines, body_start
    end = data.find(b"\n\n", start)
    if end < 0:
        raise ParseError("no empty line after the header section")
    # Bare-LF line endings: tolerated on input (RFC 3261 §7.5 asks for CRLF).
    head = data[start:end].decode("utf-8", "surrogateescape").replace("\r\n", "\n")
    if "\r" in head:
        raise ParseError("bare CR in the header section")
    if "\n " in head or "\n\t" in head:
        head = _FOLD_RE.sub(" ", head)
    return head.split("\n"), end + 2


def _skip_leading_crlf(data: bytes) -> int:
    start = 0
    while data.startswith(b"\r\n", start) or data.startswith(b"\n", start):
        start += 2 if data[start] == 13 else 1
    return start


def parse_message(data: bytes, *, max_size: int | None = None) -> Request | Response:
    """Parse one complete message, e.g. a UDP datagram.

    The body is framed by Content-Length; octets after it are discarded
    (§18.3). Without a Content-Length the body is the rest of ``data``, as
    on UDP. Raises ParseError whose ``status`` is the response a server
    should send (400, or 513 when ``data`` is larger than ``max_size``).

    When the optional C accelerator is built, it parses the common forms of
    messages and hands everything else (and every error) to the Python
    implementation below, which defines the behaviour.
    """
    if max_size is not None and len(data) > max_size:
        raise ParseError(f"message of {len(data)} bytes exceeds {max_size}", 513)
    if _fast_parse is not None:
        message = _fast_parse(data)
        if message is not None:
            return message
    return parse_message_py(data)


def parse_message_py(data: bytes) -> Request | Response:
    """The pure-Python parser: the reference for the accelerator, and its fallback."""
    start = _skip_leading_crlf(data) if data[:1] in (b"\r", b"\n") else 0
    lines, body_start = _split_head(data, start)

    # Header lines: name HCOLON value. Known spellings hit the key cache.
    items: list[tuple[str, str, str]] = []
    append = items.append
    found: dict[str, str] = {}
    vias: list[str] = []
    key_cache = _KEY_CACHE
    tracked = _TRACKED
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            raise _bad_header(line)
        key = key_cache.get(name)
        if key is None:
            key = _new_key(name)
        value = value.strip(" \t")
        append((key, name, value))
        if key in tracked:
            if key == "via":
                vias.append(value)
            elif key in found:
                raise ParseError(f"duplicate {key} header")
            else:
                found[key] = value
    headers = Headers._from_parsed(items)

    start_line = lines[0]
    message: Request | Response
    if start_line.startswith("SIP/"):
        m = _STATUS_LINE_RE.fullmatch(start_line)
        if m is None:
            raise ParseError(f"malformed status line: {start_line[:80]!r}")
        response = Response.__new__(Response)
        response.version, status, response.reason = m.groups()
        # Status-Code = 3DIGIT, 100 to 699 (§7.2, §21), as Response() insists.
        response.status = parse_digits(status, "status code", 699)
        if response.status < 100:
            raise ParseError(f"status code out of range: {status}")
        message = response
    else:
        request = Request.__new__(Request)
        fast = _SIP_REQUEST_LINE_RE.fullmatch(start_line)
        if fast is not None:
            # Method SP sip-URI SP SIP/2.0, parsed in one match.
            request.method, scheme, *groups = fast.groups()
            request._uri = sip_uri_from_groups(scheme.lower(), *groups)
            request._uri_text = start_line[fast.start(2) : -8]  # up to " SIP/2.0"
            request.version = "SIP/2.0"
        else:
            m = _REQUEST_LINE_RE.fullmatch(start_line)
            if m is None:
                raise ParseError(f"malformed request line: {start_line[:80]!r}")
            request.method, uri_text, request.version = m.groups()
            request._uri = parse_uri(uri_text)
            request._uri_text = uri_text
        message = request
    message.headers = headers

    # The headers every element needs are parsed now, into the typed cache.
    if not vias:
        raise ParseError("missing Via header")
    for key in _REQUIRED:
        if key not in found:
            raise ParseError(f"missing {key} header")
    cache = headers._cache
    cache["via"] = parse_via_list(vias)
    cache["from"] = _address.parse_address(found["from"], what="From")
    cache["to"] = _address.parse_address(found["to"], what="To")
    call_id = found["call-id"]
    if _CALL_ID_RE.fullmatch(call_id) is None:
        raise ParseError(f"malformed Call-ID: {call_id!r}")
    cache["call-id"] = call_id
    cache["cseq"] = _fields.CSeq.parse(found["cseq"])
    max_forwards = found.get("max-forwards")
    cache["max-forwards"] = (
        None if max_forwards is None else _fields.parse_int([max_forwards], "Max-Forwards", 255)
    )
    content_length = found.get("content-length")
    if content_length is None:
        cache["content-length"] = None
        message.body = data[body_start:]
    else:
        length = _fields.parse_int([content_length], "Content-Length")
        assert length is not None
        cache["content-length"] = length
        if body_start + length > len(data):
            raise ParseError(
                f"Content-Length {length} exceeds the {len(data) - body_start} body octets present"
            )
        message.body = data[body_start : body_start + length]
    return message


# -- streams ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeepAlivePing:
    """A double CRLF between messages (RFC 5626 §3.5.1); answer with a single CRLF."""


@dataclass(frozen=True, slots=True)
class KeepAlivePong:
    """A single CRLF between messages: the answer to our ping."""


@dataclass(frozen=True, slots=True)
class StreamError:
    """A message on the stream could not be used.

    When ``fatal`` the framing is lost (no or bad Content-Length, message
    too large) and the connection must be closed; otherwise the message was
    skipped and the stream goes on. ``data`` holds the offending bytes (at
    most the head) so a server can try to answer ``error.status``.
    """

    error: ParseError
    fatal: bool
    data: bytes = b""


StreamItem = Request | Response | KeepAlivePing | KeepAlivePong | StreamError

_CONTENT_LENGTH_RE: Final = re.compile(
    rb"(?:^|\n)(?:content-length|l)[ \t]*:[ \t]*(?:\r?\n[ \t]+)?([^\r\n]*)", re.I
)


class StreamParser:
    """Incremental framing of SIP messages on a byte stream (§18.3).

    ``feed()`` takes any chunk of bytes and returns the items completed by
    it: messages, keep-alives, and errors. Content-Length is mandatory on
    streams. A message larger than ``max_size`` (or a header section that
    grows past it without ending) is a fatal error, so a peer cannot make
    the parser buffer without bound. After a fatal error the parser
    ignores further input.

    RFC 5626 keep-alives: a double CRLF between messages is a ping, a single
    CRLF a pong.
    """

    def __init__(self, max_size: int = MAX_MESSAGE_SIZE, *, client: bool = False) -> None:
        self.max_size = max_size
        self.client = client
        """True on a connection this side opened: RFC 5626 clients send pings and
        wait for pongs, so a CRLF that ends the input is reported as a pong at
        once. A server waits for what follows, since it may be half a ping."""
        self._buffer = bytearray()
        self._scanned = 0  # how far the search for CRLFCRLF has looked
        self.failed = False

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the rest of a message."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[StreamItem]:
        if self.failed:
            return []
        buffer = self._buffer
        out: list[StreamItem] = []
        buffer += data
        while buffer:
            if buffer[0] in (13, 10):
                if buffer.startswith(b"\r\n\r\n"):
                    del buffer[:4]
                    out.append(KeepAlivePing())
                    continue
                if buffer == b"\r\n" and not self.client:
                    break  # half a ping, or a pong nobody waits for: wait for more
                if buffer == b"\r\n" or (buffer.startswith(b"\r\n") and buffer[2] not in (13, 10)):
                    del buffer[:2]
                    out.append(KeepAlivePong())
                    continue
                if len(buffer) < 4 and b"\r\n\r\n".startswith(bytes(buffer)):
                    break  # the rest of a ping may follow
                del buffer[:1]  # a stray LF or CR between messages
                continue
            end = buffer.find(b"\r\n\r\n", max(0, self._scanned - 3))
            if end < 0:
                self._scanned = len(buffer)
                if len(buffer) > self.max_size:
                    out.append(self._fail(ParseError("header section too large", 513)))
                break
            head = bytes(buffer[:end])
            body_start = end + 4
            length = self._content_length(head)
            if isinstance(length, ParseError):
                out.append(self._fail(length, head))
                break
            total = body_start + length
            if total > self.max_size:
                out.append(self._fail(ParseError(f"message of {total} bytes too large", 513), head))
                break
            if len(buffer) < total:
                self._scanned = end
                break
            raw = bytes(buffer[:total])
            del buffer[:total]
            self._scanned = 0
            try:
                out.append(parse_message(raw))
            except ParseError as exc:
                out.append(StreamError(exc, False, head))
        return out

    def _fail(self, error: ParseError, head: bytes = b"") -> StreamError:
        self.failed = True
        self._buffer.clear()
        return StreamError(error, True, head)

    @staticmethod
    def _content_length(head: bytes) -> int | ParseError:
        values = _CONTENT_LENGTH_RE.findall(head)
        if not values:
            return ParseError("Content-Length is required on stream transports")
        texts = {v.strip() for v in values}
        if len(texts) != 1:
            return ParseError("conflicting Content-Length headers")
        try:
            return parse_digits(texts.pop().decode("latin-1"), "Content-Length")
        except ParseError as exc:
            return exc
