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
from functools import lru_cache
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
# Attribute(name, value) without the Python-level NamedTuple __new__ (one per a= line).
_new_tuple: Final = tuple.__new__
_CACHED_TEXT: Final = 64
"""Values up to this long are remembered by the caches below (which keeps them small)."""
# Stands in for the o= line until it is read (parse_sdp fails if it never is).
_NO_ORIGIN: Final = Origin("-", "0", 0, "IN", "IP4", "0.0.0.0")


def _fields(value: str) -> list[str]:
    """The fields of a value split at runs of spaces and tabs, empty ones dropped."""
    parts = _BLANKS.split(value) if "\t" in value else value.split(" ")
    if "" in parts:
        return [f for f in parts if f]
    return parts


def _number(text: str, what: str, line: int, max_digits: int = _MAX_INT_DIGITS) -> int:
    if not (0 < len(text) <= max_digits and text.isascii() and text.isdigit()):
        raise SdpError(f"{what} is not a number: {text[:40]!r}", line=line)
    return int(text)


def _origin(value: str, line: int) -> Origin:
    parts = _fields(value)
    if len(parts) < 6:
        raise SdpError("o= line needs 6 fields", line=line)
    # A user name with spaces is a common mistake: keep every leading field in it.
    username = parts[0] if len(parts) == 6 else " ".join(parts[:-5])
    sess_id, sess_version, nettype, addrtype, address = parts[-5:]
    return Origin(
        username, sess_id, _number(sess_version, "sess-version", line), nettype, addrtype, address
    )


def _connection(value: str, line: int) -> Connection:
    conn = _cached_connection(value) if len(value) <= _CACHED_TEXT else _connection_of(value)
    if conn is None:
        raise SdpError("c= line needs 3 fields", line=line)
    return conn


def _connection_of(value: str) -> Connection | None:
    parts = _fields(value)
    return Connection(*parts) if len(parts) == 3 else None


# The same few c= lines come again and again; a Connection is immutable, so share it.
_cached_connection: Final = lru_cache(maxsize=256)(_connection_of)


def _bandwidth(value: str, line: int) -> Bandwidth:
    bwtype, sep, amount = value.partition(":")
    if not sep or not bwtype:
        raise SdpError("b= line is not <bwtype>:<bandwidth>", line=line)
    return Bandwidth(bwtype, _number(amount, "bandwidth", line))


def _timing(value: str, line: int) -> Timing:
    parts = _fields(value)
    if len(parts) != 2:
        raise SdpError("t= line needs 2 fields", line=line)
    return Timing(_number(parts[0], "start-time", line), _number(parts[1], "stop-time", line), [])


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
    """Counts the known lines of one section, to anchor the extra lines read in it.

    ``a=`` lines are not counted one by one (they are most of the lines):
    their count is the length of the section's ``attributes``, and the
    parser only sets ``last`` for them.
    """

    __slots__ = ("attributes", "counts", "extras", "last")

    def __init__(self, first: str, attributes: list[Attribute]) -> None:
        self.counts = {first: 1}
        self.last = first
        self.attributes = attributes
        self.extras: list[ExtraLine] = []

    def known(self, group: str) -> None:
        """A known line other than ``a=``."""
        self.counts[group] = self.counts.get(group, 0) + 1
        self.last = group

    def extra(self, letter: str, value: str) -> None:
        """Keep a line the model has no room for, after the last known line."""
        last = self.last
        count = len(self.attributes) if last == "a" else self.counts[last]
        self.extras.append(ExtraLine(letter, value, last, count))

    def surplus(self, letter: str, value: str) -> None:
        """Keep a second copy of a single-valued line right after the first one.

        Anchoring it to the first (rather than to the line it followed) means
        a re-parse of the output takes the same line as the field's value.
        """
        self.extras.append(ExtraLine(letter, value, letter, 1))

    def in_output_order(self, order: str) -> list[ExtraLine]:
        """The extra lines in the order the serializer writes them back."""
        if not self.extras:
            return []
        return sorted(self.extras, key=lambda e: (order.find(e.after), e.position))


def _session_line(
    sd: SessionDescription, section: _Section, letter: str, value: str, line: int
) -> None:
    """A session-level line other than ``a=``, ``o=``, ``m=`` and ``v=``."""
    group = letter
    if letter in _SESSION_SINGLE and letter in section.counts:
        section.surplus(letter, value)
        return
    if letter == "s":
        sd.session_name = value
    elif letter == "c":
        sd.connection = _connection(value, line)
    elif letter == "t":
        sd.times.append(_timing(value, line))
    elif letter == "i":
        sd.information = value
    elif letter == "u":
        sd.uri = value
    elif letter == "z":
        sd.zone = value
    elif letter == "k":
        sd.key = value
    elif letter == "e":
        sd.emails.append(value)
    elif letter == "p":
        sd.phones.append(value)
    elif letter == "b":
        sd.bandwidths.append(_bandwidth(value, line))
    elif letter == "r":
        if not sd.times:
            raise SdpError("r= line before any t= line", line=line)
        sd.times[-1].repeats.append(value)
        group = "t"
    else:
        section.extra(letter, value)
        return
    section.known(group)


def _media_line(
    md: MediaDescription, section: _Section, letter: str, value: str, line: int
) -> None:
    """A media-level line other than ``a=``."""
    if letter in _MEDIA_SINGLE and letter in section.counts:
        section.surplus(letter, value)
        return
    if letter == "c":
        md.connection = _connection(value, line)
    elif letter == "b":
        md.bandwidths.append(_bandwidth(value, line))
    elif letter == "i":
        md.information = value
    elif letter == "k":
        md.key = value
    else:
        section.extra(letter, value)
        return
    section.known(letter)


def parse_sdp(data: bytes | bytearray | memoryview | str) -> SessionDescription:
    """Parse a session description; raise :class:`SdpError` (with a reason) if malformed.

    Bytes are decoded as UTF-8; bytes that are not UTF-8 are kept (as lone
    surrogates) so that ``bytes()`` gives them back unchanged.
    """
    if isinstance(data, str):
        text = data
    elif isinstance(data, bytes):
        text = data.decode("utf-8", "surrogateescape")
    else:
        text = bytes(data).decode("utf-8", "surrogateescape")
    text = text.removeprefix("\ufeff")
    if "\x00" in text:
        raise SdpError("NUL character in session description")
    sd: SessionDescription | None = None
    origin: Origin | None = None
    attributes: list[Attribute] = []
    session = section = _Section("v", attributes)
    md: MediaDescription | None = None
    crlf = text.count("\r\n")
    # Every line end a CRLF, or every one a bare LF: no CR left in any line.
    clean = crlf == text.count("\r") and crlf == text.count("\n")
    lines = text.split("\r\n") if clean else text.split("\n")
    clean = clean or "\r" not in text
    for number, line in enumerate(lines, 1):
        if not clean:
            line = line.rstrip("\r")
            if "\r" in line:
                raise SdpError("CR without LF inside a line", line=number)
        letter = line[:1]
        if line[1:2] != "=" or not ("a" <= letter <= "z"):
            if not line.strip(" \t"):
                continue
            raise SdpError(f"not a <type>=<value> line: {line[:40]!r}", line=number)
        # Trailing white space is dropped, except from the free-text s= ("s= " is valid).
        value = line[2:] if letter == "s" else line[2:].rstrip(" \t")
        if letter == "a" and sd is not None:
            name, sep, rest = value.partition(":")
            if not name:
                raise SdpError("a= line without an attribute name", line=number)
            attributes.append(_new_tuple(Attribute, (name, rest if sep else None)))
            section.last = "a"
        elif sd is None:
            if letter != "v":
                raise SdpError("session description does not start with v=", line=number)
            if value != "0":
                raise SdpError(f"unsupported SDP version {value[:10]!r}", line=number)
            sd = SessionDescription(origin=_NO_ORIGIN, times=[], attributes=attributes)
        elif letter == "m":
            if md is not None:
                md.extra_lines = section.in_output_order(_MEDIA_ORDER)
            md = _media(value, number)
            sd.media.append(md)
            attributes = md.attributes
            section = _Section("m", attributes)
        elif letter == "v":
            raise SdpError("v= line after the first line", line=number)
        elif letter == "o":
            if origin is not None:
                raise SdpError("more than one o= line", line=number)
            if md is not None:
                raise SdpError("o= line inside a media description", line=number)
            origin = _origin(value, number)
            section.known("o")
        elif md is None:
            _session_line(sd, section, letter, value, number)
        else:
            _media_line(md, section, letter, value, number)
    if sd is None:
        raise SdpError("empty session description")
    if md is not None:
        md.extra_lines = section.in_output_order(_MEDIA_ORDER)
    if origin is None:
        raise SdpError("missing o= line")
    sd.origin = origin
    if not sd.times:
        sd.times = [Timing()]
    sd.extra_lines = session.in_output_order(_SESSION_ORDER)
    return sd
