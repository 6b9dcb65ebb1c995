"""The SDP data model (RFC 8866 §5) and its serializer.

A :class:`SessionDescription` holds the session-level fields and a list of
:class:`MediaDescription`; both keep their ``a=`` lines as an ordered list of
:class:`Attribute`, so attributes this module knows nothing about survive a
parse and a serialize in their place. Lines the model has no field for (an
unknown type letter, a second ``c=`` in a media section ...) are kept as
:class:`ExtraLine` together with the position they were read at.

``str(sd)`` gives the text with CRLF line ends in the order of RFC 8866 §5;
``bytes(sd)`` the same in UTF-8.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import KW_ONLY, dataclass, field
from enum import StrEnum
from typing import Final, NamedTuple

from sipwire.errors import ParseError

__all__ = [
    "Attribute",
    "Bandwidth",
    "Connection",
    "Direction",
    "ExtraLine",
    "MediaDescription",
    "Origin",
    "RtpMap",
    "SdpError",
    "SessionDescription",
    "Timing",
    "parse_rtpmap",
]

_DIRECTIONS: Final = frozenset({"sendrecv", "sendonly", "recvonly", "inactive"})


class SdpError(ParseError):
    """A session description that is malformed or cannot be accepted.

    ``status`` is the SIP response that answers a request carrying it: 400
    for a body that does not parse, 488 (Not Acceptable Here) for one that
    parses but cannot be negotiated.
    """

    def __init__(self, reason: str, status: int = 400, line: int | None = None) -> None:
        if line is not None:
            reason = f"line {line}: {reason}"
        super().__init__(reason, status)
        self.line = line
        """1-based number of the offending line, when one is to blame."""


class Direction(StrEnum):
    """The direction attributes of RFC 8866 §6.7 / RFC 3264 §5.1."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @property
    def sends(self) -> bool:
        """Whether the side that declares this direction sends media."""
        return self in _SENDS

    @property
    def receives(self) -> bool:
        """Whether the side that declares this direction receives media."""
        return self in _RECEIVES

    @classmethod
    def from_flags(cls, sends: bool, receives: bool) -> Direction:
        """The direction for a side that sends and/or receives."""
        if sends:
            return cls.SENDRECV if receives else cls.SENDONLY
        return cls.RECVONLY if receives else cls.INACTIVE

    def reversed(self) -> Direction:
        """The same stream seen from the other side (sendonly <-> recvonly)."""
        return _REVERSED[self]

    def intersect(self, other: Direction) -> Direction:
        """The direction allowed by both ``self`` and ``other`` (same side)."""
        return _INTERSECT[self, other]


# Lookup tables for the Direction methods (offer/answer asks them for every m-line).
_SENDS: Final = frozenset({Direction.SENDRECV, Direction.SENDONLY})
_RECEIVES: Final = frozenset({Direction.SENDRECV, Direction.RECVONLY})
_BY_NAME: Final[dict[str, Direction]] = {d.value: d for d in Direction}
_REVERSED: Final[dict[Direction, Direction]] = {
    d: Direction.from_flags(d in _RECEIVES, d in _SENDS) for d in Direction
}
_INTERSECT: Final[dict[tuple[Direction, Direction], Direction]] = {
    (a, b): Direction.from_flags(a in _SENDS and b in _SENDS, a in _RECEIVES and b in _RECEIVES)
    for a in Direction
    for b in Direction
}


class Attribute(NamedTuple):
    """One ``a=<name>[:<value>]`` line (RFC 8866 §5.13).

    ``value`` is None for a property attribute (``a=sendrecv``) and the text
    after the first colon otherwise (possibly empty).
    """

    name: str
    value: str | None = None

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value}"


class Bandwidth(NamedTuple):
    """A ``b=<bwtype>:<bandwidth>`` line (RFC 8866 §5.8), bandwidth in kbit/s for CT/AS."""

    bwtype: str
    bandwidth: int

    def __str__(self) -> str:
        return f"{self.bwtype}:{self.bandwidth}"


class RtpMap(NamedTuple):
    """The value of ``a=rtpmap:<pt> <encoding name>/<clock rate>[/<channels>]``."""

    encoding_name: str
    clock_rate: int
    channels: int = 1


@dataclass(frozen=True, slots=True)
class Origin:
    """The ``o=`` line (RFC 8866 §5.2)."""

    username: str
    sess_id: str
    sess_version: int
    nettype: str
    addrtype: str
    address: str
    """``unicast-address``: an IP address or a host name."""

    def __str__(self) -> str:
        return (
            f"{self.username} {self.sess_id} {self.sess_version} "
            f"{self.nettype} {self.addrtype} {self.address}"
        )


@dataclass(frozen=True, slots=True)
class Connection:
    """A ``c=`` line (RFC 8866 §5.7).

    ``address`` keeps a multicast ``/<ttl>[/<number of addresses>]`` suffix
    as text; :attr:`host` drops it.
    """

    nettype: str
    addrtype: str
    address: str

    @classmethod
    def for_address(cls, address: str) -> Connection:
        """``IN IP4 <address>``, or ``IN IP6`` when the address has a colon."""
        return cls("IN", "IP6" if ":" in address else "IP4", address)

    @property
    def host(self) -> str:
        """The address without its TTL/count suffix."""
        return self.address.split("/", 1)[0]

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"


@dataclass(slots=True)
class Timing:
    """A ``t=<start-time> <stop-time>`` line and the ``r=`` lines under it (RFC 8866 §5.9)."""

    start: int = 0
    stop: int = 0
    repeats: list[str] = field(default_factory=list)
    """The values of the ``r=`` lines, kept as text."""


@dataclass(frozen=True, slots=True)
class ExtraLine:
    """A line kept verbatim: an unknown type letter, or one the model has no room for.

    ``after`` and ``position`` say where it goes back on output: after the
    ``position``-th line of the ``after`` group of its section (``"a"`` for
    the attributes, ``"t"`` for the ``t=``/``r=`` lines ...). An empty
    ``after`` puts it at the end of its section.
    """

    type: str
    value: str
    after: str = ""
    position: int = 0

    def __str__(self) -> str:
        return f"{self.type}={self.value}"


class _AttributeList:
    """Lookup helpers over an ordered ``attributes`` list."""

    attributes: list[Attribute]

    def get(self, name: str) -> str | None:
        """The value of the first ``a=name`` (None when absent or value-less)."""
        for attr in self.attributes:
            if attr.name == name:
                return attr.value
        return None

    def get_all(self, name: str) -> list[str]:
        """The values of every ``a=name``, in order (``""`` for a value-less one)."""
        return [a.value or "" for a in self.attributes if a.name == name]

    def has(self, name: str) -> bool:
        """Whether an ``a=name`` line is present."""
        return any(a.name == name for a in self.attributes)

    def add(self, name: str, value: str | None = None) -> None:
        """Append ``a=name[:value]``."""
        self.attributes.append(Attribute(name, value))

    def remove(self, name: str) -> int:
        """Drop every ``a=name``; return how many there were."""
        before = len(self.attributes)
        self.attributes[:] = [a for a in self.attributes if a.name != name]
        return before - len(self.attributes)

    @property
    def explicit_direction(self) -> Direction | None:
        """The last direction attribute of this section, or None."""
        found: Direction | None = None
        for attr in self.attributes:
            if attr.value is None and attr.name in _DIRECTIONS:
                found = _BY_NAME[attr.name]
        return found

    @property
    def direction(self) -> Direction:
        """This section's direction attribute; sendrecv when there is none.

        For a media section this ignores the session level: use
        :meth:`SessionDescription.effective_direction` for the inherited value.
        """
        return self.explicit_direction or Direction.SENDRECV

    @direction.setter
    def direction(self, value: Direction) -> None:
        """Replace the direction attributes by one ``a=<value>`` where the first was."""
        index = next(
            (i for i, a in enumerate(self.attributes) if a.value is None and a.name in _DIRECTIONS),
            len(self.attributes),
        )
        kept = [a for a in self.attributes if not (a.value is None and a.name in _DIRECTIONS)]
        index = min(index, len(kept))
        kept.insert(index, Attribute(Direction(value).value))
        self.attributes[:] = kept


def parse_rtpmap(value: str) -> tuple[str, RtpMap]:
    """Split an ``a=rtpmap`` value into (payload type, :class:`RtpMap`); SdpError if malformed."""
    pt, _, rest = value.strip(" \t").partition(" ")
    parts = rest.strip(" \t").split("/")
    if not pt or len(parts) not in (2, 3) or not parts[0]:
        raise SdpError(f"malformed rtpmap: {value!r}")
    if not _is_number(parts[1], 10) or (len(parts) == 3 and not _is_number(parts[2], 3)):
        raise SdpError(f"malformed rtpmap: {value!r}")
    channels = int(parts[2]) if len(parts) == 3 else 1
    return pt, RtpMap(parts[0], int(parts[1]), channels)


def _is_number(text: str, max_digits: int) -> bool:
    return 0 < len(text) <= max_digits and text.isascii() and text.isdigit()


@dataclass(eq=True)
class MediaDescription(_AttributeList):
    """One media description: an ``m=`` line and the lines up to the next (RFC 8866 §5.14)."""

    media: str
    """``audio``, ``video``, ``text``, ``application``, ``message`` ..."""
    port: int
    proto: str
    """``RTP/AVP``, ``RTP/SAVP``, ``UDP/TLS/RTP/SAVPF`` ..."""
    formats: list[str]
    """The ``<fmt>`` list: RTP payload type numbers as text for RTP protocols."""
    _: KW_ONLY
    port_count: int | None = None
    """The ``/<number of ports>`` suffix of the port, if any."""
    information: str | None = None
    connection: Connection | None = None
    bandwidths: list[Bandwidth] = field(default_factory=list)
    key: str | None = None
    attributes: list[Attribute] = field(default_factory=list)
    extra_lines: list[ExtraLine] = field(default_factory=list)

    def rtpmap(self) -> dict[str, RtpMap]:
        """``a=rtpmap`` by payload type (text); malformed lines are skipped."""
        result: dict[str, RtpMap] = {}
        for value in self.get_all("rtpmap"):
            try:
                pt, entry = parse_rtpmap(value)
            except SdpError:
                continue
            result.setdefault(pt, entry)
        return result

    def copy(self) -> MediaDescription:
        """An independent copy (its lists are new; their items are immutable)."""
        return MediaDescription(
            self.media,
            self.port,
            self.proto,
            list(self.formats),
            port_count=self.port_count,
            information=self.information,
            connection=self.connection,
            bandwidths=list(self.bandwidths),
            key=self.key,
            attributes=list(self.attributes),
            extra_lines=list(self.extra_lines),
        )

    def fmtp(self, pt: str | int) -> str | None:
        """The format parameters of ``a=fmtp:<pt> <params>``, or None."""
        wanted = str(pt)
        for value in self.get_all("fmtp"):
            fmt, _, params = value.partition(" ")
            if fmt == wanted:
                return params.strip(" \t")
        return None

    def lines(self) -> list[str]:
        """The lines of this section, without line ends, in RFC 8866 order."""
        if self.extra_lines:
            return _interleave(self._groups(), self.extra_lines)
        # Nothing to put back in place: the lines of _groups() in order, built directly.
        out = [self._m_line()]
        if self.information is not None:
            out.append(f"i={self.information}")
        if self.connection is not None:
            out.append(f"c={self.connection}")
        if self.bandwidths:
            out.extend([f"b={b}" for b in self.bandwidths])
        if self.key is not None:
            out.append(f"k={self.key}")
        out.extend(_attribute_lines(self.attributes))
        return out

    def _groups(self) -> list[tuple[str, list[str]]]:
        """The lines by group letter, in RFC 8866 order (the layout :meth:`lines` follows)."""
        return [
            ("m", [self._m_line()]),
            ("i", _optional("i", self.information)),
            ("c", [] if self.connection is None else [f"c={self.connection}"]),
            ("b", [f"b={b}" for b in self.bandwidths]),
            ("k", _optional("k", self.key)),
            ("a", _attribute_lines(self.attributes)),
        ]

    def _m_line(self) -> str:
        port = str(self.port) if self.port_count is None else f"{self.port}/{self.port_count}"
        return " ".join([f"m={self.media}", port, self.proto, *self.formats])

    def __str__(self) -> str:
        return _text(self.lines())


@dataclass(eq=True, kw_only=True)
class SessionDescription(_AttributeList):
    """A whole session description (RFC 8866 §5).

    ``attributes`` are the session-level ``a=`` lines; ``media`` the media
    descriptions in order. ``str()`` and ``bytes()`` serialize it.
    """

    version: int = 0
    origin: Origin
    session_name: str = "-"
    information: str | None = None
    uri: str | None = None
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    connection: Connection | None = None
    bandwidths: list[Bandwidth] = field(default_factory=list)
    times: list[Timing] = field(default_factory=lambda: [Timing()])
    zone: str | None = None
    """The ``z=`` (time zone adjustments) value, kept as text."""
    key: str | None = None
    """The ``k=`` (obsolete encryption key) value, kept as text."""
    attributes: list[Attribute] = field(default_factory=list)
    media: list[MediaDescription] = field(default_factory=list)
    extra_lines: list[ExtraLine] = field(default_factory=list)

    def copy(self) -> SessionDescription:
        """An independent copy, much cheaper than ``copy.deepcopy``."""
        return SessionDescription(
            version=self.version,
            origin=self.origin,
            session_name=self.session_name,
            information=self.information,
            uri=self.uri,
            emails=list(self.emails),
            phones=list(self.phones),
            connection=self.connection,
            bandwidths=list(self.bandwidths),
            times=[Timing(t.start, t.stop, list(t.repeats)) for t in self.times],
            zone=self.zone,
            key=self.key,
            attributes=list(self.attributes),
            media=[m.copy() for m in self.media],
            extra_lines=list(self.extra_lines),
        )

    def effective_direction(self, media: MediaDescription) -> Direction:
        """The direction of ``media``, inheriting the session-level one (RFC 8866 §6.7)."""
        return media.explicit_direction or self.direction

    def connection_for(self, media: MediaDescription) -> Connection | None:
        """The ``c=`` that applies to ``media``: its own, else the session's."""
        return media.connection or self.connection

    def lines(self) -> list[str]:
        """Every line, without line ends, in RFC 8866 order."""
        if self.extra_lines:
            result = _interleave(self._groups(), self.extra_lines)
        else:
            # Nothing to put back in place: the lines of _groups() in order, built directly.
            result = [f"v={self.version}", f"o={self.origin}", f"s={self.session_name}"]
            if self.information is not None:
                result.append(f"i={self.information}")
            if self.uri is not None:
                result.append(f"u={self.uri}")
            if self.emails:
                result.extend([f"e={e}" for e in self.emails])
            if self.phones:
                result.extend([f"p={p}" for p in self.phones])
            if self.connection is not None:
                result.append(f"c={self.connection}")
            if self.bandwidths:
                result.extend([f"b={b}" for b in self.bandwidths])
            result.extend(self._timing_lines())
            if self.zone is not None:
                result.append(f"z={self.zone}")
            if self.key is not None:
                result.append(f"k={self.key}")
            result.extend(_attribute_lines(self.attributes))
        for m in self.media:
            result.extend(m.lines())
        return result

    def _groups(self) -> list[tuple[str, list[str]]]:
        """The session-level lines by group letter, in RFC 8866 order (what :meth:`lines`
        lays out before the media descriptions)."""
        return [
            ("v", [f"v={self.version}"]),
            ("o", [f"o={self.origin}"]),
            ("s", [f"s={self.session_name}"]),
            ("i", _optional("i", self.information)),
            ("u", _optional("u", self.uri)),
            ("e", [f"e={e}" for e in self.emails]),
            ("p", [f"p={p}" for p in self.phones]),
            ("c", [] if self.connection is None else [f"c={self.connection}"]),
            ("b", [f"b={b}" for b in self.bandwidths]),
            ("t", self._timing_lines()),
            ("z", _optional("z", self.zone)),
            ("k", _optional("k", self.key)),
            ("a", _attribute_lines(self.attributes)),
        ]

    def _timing_lines(self) -> list[str]:
        timing: list[str] = []
        for t in self.times:
            timing.append(f"t={t.start} {t.stop}")
            if t.repeats:
                timing.extend([f"r={r}" for r in t.repeats])
        return timing

    def __str__(self) -> str:
        return _text(self.lines())

    def __bytes__(self) -> bytes:
        # surrogateescape gives back the bytes parse_sdp could not decode as UTF-8.
        return _text(self.lines()).encode("utf-8", "surrogateescape")


def _optional(letter: str, value: str | None) -> list[str]:
    return [] if value is None else [f"{letter}={value}"]


def _attribute_lines(attributes: list[Attribute]) -> list[str]:
    """``a=`` lines, as ``f"a={attr}"`` would give them without a call to ``__str__`` each."""
    return [f"a={n}" if v is None else f"a={n}:{v}" for n, v in attributes]


def _text(lines: list[str]) -> str:
    """The lines with a CRLF after each."""
    return "\r\n".join(lines) + "\r\n" if lines else ""


def _interleave(groups: list[tuple[str, list[str]]], extras: Iterable[ExtraLine]) -> list[str]:
    """Lay out the groups in order, putting each extra line back where it was read."""
    anchored: dict[str, list[ExtraLine]] = {}
    trailing: list[ExtraLine] = []
    letters = {letter for letter, _ in groups}
    for extra in extras:
        if extra.after in letters:
            anchored.setdefault(extra.after, []).append(extra)
        else:
            trailing.append(extra)
    out: list[str] = []
    for letter, lines in groups:
        pending = anchored.get(letter, [])
        for number, line in enumerate(lines, 1):
            out.append(line)
            out.extend(str(e) for e in pending if e.position == number)
        out.extend(str(e) for e in pending if e.position > len(lines) or e.position < 1)
    out.extend(str(e) for e in trailing)
    return out
