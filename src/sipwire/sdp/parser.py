"""``parse_sdp``: text or bytes to a :class:`SessionDescription` (RFC 8866 §5, §9).

Strict where a mistake changes the meaning: ``v=0`` comes first, there is
one ``o=`` line, ``m=``, ``c=``, ``o=``, ``t=`` and ``b=`` lines have their
shape and their numbers are numbers. Lenient where real peers are sloppy:
bare LF line ends, trailing white space, blank lines, a missing ``s=`` or
``t=`` line, known lines out of order inside a section, unknown type letters
(kept as :class:`ExtraLine`).
"""

from __future__ import annotations

import re
from typing import Final

from sipwire.sdp.session import (
    Attribute,
    Bandwidth,
    Connection,
    ExtraLine,
    MediaDescription,
    Origin,
    SdpError,
    SessionDescription,
    Timing,
)

__all__ = ["parse_sdp"]

_BLANKS: Final = re.compile(r"[ \t]+")
MAX_PORT: Final = 65535
_MAX_INT_DIGITS: Final = 20  # 64-bit values: sess-version, times, bandwidths
_SESSION_SINGLE: Final = frozenset("siuczk")
_MEDIA_SINGLE: Final = frozenset("ick")
# The order in which the serializer lays out the groups of lines of a section.
_SESSION_ORDER: Final = "vosiuepcbtzka"
_MEDIA_ORDER: Final = "micbka"


def _fields(value: str) -> list[str]:
    return [f for f in _BLANKS.split(value) if f]


def _number(text: str, what: str, line: int, max_digits: int = _MAX_INT_DIGITS) -> int:
    if not (0 < len(text) <= max_digits and text.isascii() and text.isdigit()):
        raise SdpError(f"{what} is not a number: {text[:40]!r}", line=line)
    return int(text)


def _origin(value: str, line: int) -> Origin:
    parts = _fields(value)
    if len(parts) < 6:
        raise SdpError("o= line needs 6 fields", line=line)
    # A user name with spaces is a common mistake: keep every leading field in it.
    username = " ".join(parts[:-5])
    sess_id, sess_version, nettype, addrtype, address = parts[-5:]
    return Origin(
        username, sess_id, _number(sess_version, "sess-version", line), nettype, addrtype, address
    )


def _connection(value: str, line: int) -> Connection:
    parts = _fields(value)
    if len(parts) != 3:
        raise SdpError("c= line needs 3 fields", line=line)
    return Connection(*parts)


def _bandwidth(value: str, line: int) -> Bandwidth:
    bwtype, sep, amount = value.partition(":")
    if not sep or not bwtype:
        raise SdpError("b= line is not <bwtype>:<bandwidth>", line=line)
    return Bandwidth(bwtype, _number(amount, "bandwidth", line))


def _timing(value: str, line: int) -> Timing:
    parts = _fields(value)
    if len(parts) != 2:
        raise SdpError("t= line needs 2 fields", line=line)
    return Timing(_number(parts[0], "start-time", line), _number(parts[1], "stop-time", line))


def _attribute(value: str, line: int) -> Attribute:
    name, sep, rest = value.partition(":")
    if not name:
        raise SdpError("a= line without an attribute name", line=line)
    return Attribute(name, rest if sep else None)


def _media(value: str, line: int) -> MediaDescription:
    parts = _fields(value)
    if len(parts) < 3:
        raise SdpError("m= line needs <media> <port> <proto> <fmt> ...", line=line)
    media, port_text, proto, *formats = parts
    port_text, slash, count_text = port_text.partition("/")
    port = _number(port_text, "port", line, 5)
    if port > MAX_PORT:
        raise SdpError(f"port {port} out of range", line=line)
    count = _number(count_text, "number of ports", line, 5) if slash else None
    if not formats and port != 0:
        raise SdpError("m= line without formats", line=line)
    return MediaDescription(media, port, proto, formats, port_count=count)


class _Section:
    """Counts the known lines of one section, to anchor the extra lines read in it."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.last = ""
        self.extras: list[ExtraLine] = []

    def known(self, group: str) -> None:
        self.counts[group] = self.counts.get(group, 0) + 1
        self.last = group

    def extra(self, letter: str, value: str) -> None:
        """Keep a line the model has no room for, after the last known line."""
        self.extras.append(ExtraLine(letter, value, self.last, self.counts.get(self.last, 0)))

    def surplus(self, letter: str, value: str) -> None:
        """Keep a second copy of a single-valued line right after the first one.

        Anchoring it to the first (rather than to the line it followed) means
        a re-parse of the output takes the same line as the field's value.
        """
        self.extras.append(ExtraLine(letter, value, letter, 1))

    def in_output_order(self, order: str) -> list[ExtraLine]:
        """The extra lines in the order the serializer writes them back."""
        return sorted(self.extras, key=lambda e: (order.find(e.after), e.position))


class _Parser:
    def __init__(self) -> None:
        self.origin: Origin | None = None
        self.sd = SessionDescription(origin=Origin("-", "0", 0, "IN", "IP4", "0.0.0.0"))
        self.sd.times = []
        self.session_name: str | None = None
        self.session = _Section()
        self.section = self.session
        self.current: MediaDescription | None = None

    def feed(self, letter: str, value: str, line: int) -> None:
        if letter == "v":
            raise SdpError("v= line after the first line", line=line)
        if letter == "o":
            if self.origin is not None:
                raise SdpError("more than one o= line", line=line)
            if self.current is not None:
                raise SdpError("o= line inside a media description", line=line)
            self.origin = _origin(value, line)
            self.section.known("o")
        elif letter == "m":
            self.current = _media(value, line)
            self.sd.media.append(self.current)
            self.section = _Section()
            self.section.known("m")
        elif self.current is None:
            self._session_line(letter, value, line)
        else:
            self._media_line(self.current, letter, value, line)

    def _session_line(self, letter: str, value: str, line: int) -> None:
        sd = self.sd
        group = letter
        if letter in _SESSION_SINGLE and letter in self.section.counts:
            self.section.surplus(letter, value)
            return
        if letter == "s":
            self.session_name = value
        elif letter == "i":
            sd.information = value
        elif letter == "u":
            sd.uri = value
        elif letter == "z":
            sd.zone = value
        elif letter == "k":
            sd.key = value
        elif letter == "c":
            sd.connection = _connection(value, line)
        elif letter == "e":
            sd.emails.append(value)
        elif letter == "p":
            sd.phones.append(value)
        elif letter == "b":
            sd.bandwidths.append(_bandwidth(value, line))
        elif letter == "t":
            sd.times.append(_timing(value, line))
        elif letter == "r":
            if not sd.times:
                raise SdpError("r= line before any t= line", line=line)
            sd.times[-1].repeats.append(value)
            group = "t"
        elif letter == "a":
            sd.attributes.append(_attribute(value, line))
        else:
            self.section.extra(letter, value)
            return
        self.section.known(group)

    def _media_line(self, md: MediaDescription, letter: str, value: str, line: int) -> None:
        if letter in _MEDIA_SINGLE and letter in self.section.counts:
            self.section.surplus(letter, value)
            return
        if letter == "i":
            md.information = value
        elif letter == "c":
            md.connection = _connection(value, line)
        elif letter == "k":
            md.key = value
        elif letter == "b":
            md.bandwidths.append(_bandwidth(value, line))
        elif letter == "a":
            md.attributes.append(_attribute(value, line))
        else:
            self.section.extra(letter, value)
            return
        self.section.known(letter)

    def close_section(self) -> None:
        if self.current is not None:
            self.current.extra_lines = self.section.in_output_order(_MEDIA_ORDER)

    def finish(self) -> SessionDescription:
        self.close_section()
        if self.origin is None:
            raise SdpError("missing o= line")
        sd = self.sd
        sd.origin = self.origin
        sd.session_name = "-" if self.session_name is None else self.session_name
        if not sd.times:
            sd.times = [Timing()]
        sd.extra_lines = self.session.in_output_order(_SESSION_ORDER)
        return sd


def parse_sdp(data: bytes | bytearray | memoryview | str) -> SessionDescription:
    """Parse a session description; raise :class:`SdpError` (with a reason) if malformed.

    Bytes are decoded as UTF-8; bytes that are not UTF-8 are kept (as lone
    surrogates) so that ``bytes()`` gives them back unchanged.
    """
    if isinstance(data, str):
        text = data
    else:
        text = bytes(data).decode("utf-8", "surrogateescape")
    text = text.removeprefix("\ufeff")
    if "\x00" in text:
        raise SdpError("NUL character in session description")
    parser: _Parser | None = None
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.rstrip("\r")
        if "\r" in line:
            raise SdpError("CR without LF inside a line", line=number)
        if not line.strip(" \t"):
            continue
        letter = line[0]
        if len(line) < 2 or line[1] != "=" or not ("a" <= letter <= "z"):
            raise SdpError(f"not a <type>=<value> line: {line[:40]!r}", line=number)
        # Trailing white space is dropped, except from the free-text s= ("s= " is valid).
        value = line[2:] if letter == "s" else line[2:].rstrip(" \t")
        if parser is None:
            if letter != "v":
                raise SdpError("session description does not start with v=", line=number)
            if value != "0":
                raise SdpError(f"unsupported SDP version {value[:10]!r}", line=number)
            parser = _Parser()
            parser.session.known("v")
            continue
        if letter == "m":
            parser.close_section()
        parser.feed(letter, value, number)
    if parser is None:
        raise SdpError("empty session description")
    return parser.finish()
