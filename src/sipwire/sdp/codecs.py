"""RTP payload formats: the :class:`Codec` value, the static payload types of
RFC 3551 §6, and ready-made codecs for the usual SIP and WebRTC media.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from types import MappingProxyType
from typing import Final

from sipwire.sdp.session import MediaDescription, RtpMap, SdpError, parse_rtpmap

__all__ = [
    "CN",
    "G722",
    "G729",
    "H264",
    "KNOWN_CODECS",
    "OPUS",
    "PCMA",
    "PCMU",
    "STATIC_PAYLOAD_TYPES",
    "TELEPHONE_EVENT",
    "VP8",
    "VP9",
    "Codec",
    "codec_from_rtpmap",
    "fmtp_params",
    "media_codecs",
]

DYNAMIC_PAYLOAD_TYPES: Final = range(96, 128)
"""The dynamic payload type range of RFC 3551 §3."""


def fmtp_params(fmtp: str | None) -> dict[str, str]:
    """``"a=1; b=2;flag"`` as ``{"a": "1", "b": "2", "flag": ""}`` (keys lower-cased)."""
    params: dict[str, str] = {}
    for item in (fmtp or "").split(";"):
        name, _, value = item.strip(" \t").partition("=")
        if name:
            params[name.strip(" \t").lower()] = value.strip(" \t")
    return params


@dataclass(frozen=True, slots=True)
class Codec:
    """An RTP payload format: encoding name, clock rate, channels and format parameters.

    ``payload_type`` is the number to use (static types) or to prefer
    (dynamic types) in an ``m=`` line; None lets the negotiator pick one from
    the dynamic range. Names compare case-insensitively (RFC 8866 §6.6).
    """

    name: str
    clock_rate: int
    channels: int = 1
    fmtp: str | None = None
    payload_type: int | None = None

    @property
    def key(self) -> tuple[str, int, int]:
        """(lower-case name, clock rate, channels): what makes two codecs the same."""
        return (self.name.lower(), self.clock_rate, self.channels)

    @property
    def is_telephone_event(self) -> bool:
        """Whether this is the RFC 4733 DTMF event format."""
        return self.name.lower() == "telephone-event"

    @property
    def rtpmap(self) -> str:
        """``<encoding name>/<clock rate>[/<channels>]`` as in ``a=rtpmap``."""
        if self.channels != 1:
            return f"{self.name}/{self.clock_rate}/{self.channels}"
        return f"{self.name}/{self.clock_rate}"

    def matches(self, other: Codec) -> bool:
        """Same name, clock rate and channels; for H.264 also the same packetization-mode.

        RFC 6184 §8.2.2 makes H.264 streams with different packetization modes
        different formats; other format parameters do not stop a match.
        """
        if self.key != other.key:
            return False
        if self.name.lower() == "h264":
            mine = fmtp_params(self.fmtp).get("packetization-mode", "0")
            return mine == fmtp_params(other.fmtp).get("packetization-mode", "0")
        return True

    def with_payload_type(self, payload_type: int, fmtp: str | None = None) -> Codec:
        """A copy bound to ``payload_type`` (and ``fmtp`` when given)."""
        return replace(self, payload_type=payload_type, fmtp=self.fmtp if fmtp is None else fmtp)

    def __str__(self) -> str:
        return self.rtpmap


PCMU: Final = Codec("PCMU", 8000, payload_type=0)
"""G.711 mu-law (static payload type 0)."""
PCMA: Final = Codec("PCMA", 8000, payload_type=8)
"""G.711 A-law (static payload type 8)."""
G722: Final = Codec("G722", 8000, payload_type=9)
"""G.722; samples at 16 kHz but is signalled as 8000 (RFC 3551 §4.5.2)."""
G729: Final = Codec("G729", 8000, payload_type=18)
"""G.729 (static payload type 18)."""
CN: Final = Codec("CN", 8000, payload_type=13)
"""Comfort noise (RFC 3389, static payload type 13)."""
TELEPHONE_EVENT: Final = Codec("telephone-event", 8000, fmtp="0-16", payload_type=101)
"""RFC 4733 DTMF events; dynamic, 101 by custom."""
OPUS: Final = Codec("opus", 48000, channels=2, fmtp="minptime=10;useinbandfec=1", payload_type=111)
"""Opus (RFC 7587): always ``opus/48000/2`` in SDP; dynamic, 111 by custom."""
H264: Final = Codec(
    "H264",
    90000,
    fmtp="profile-level-id=42e01f;packetization-mode=1",
    payload_type=102,
)
"""H.264 constrained baseline, non-interleaved mode (RFC 6184)."""
VP8: Final = Codec("VP8", 90000, payload_type=96)
"""VP8 (RFC 7741)."""
VP9: Final = Codec("VP9", 90000, payload_type=98)
"""VP9."""

KNOWN_CODECS: Final[Mapping[str, Codec]] = MappingProxyType(
    {c.name.lower(): c for c in (PCMU, PCMA, G722, G729, CN, TELEPHONE_EVENT, OPUS, H264, VP8, VP9)}
)
"""The ready-made codecs above, by lower-case encoding name."""

STATIC_PAYLOAD_TYPES: Final[Mapping[int, Codec]] = MappingProxyType(
    {
        pt: Codec(name, rate, channels, payload_type=pt)
        for pt, name, rate, channels in (
            (0, "PCMU", 8000, 1),
            (3, "GSM", 8000, 1),
            (4, "G723", 8000, 1),
            (5, "DVI4", 8000, 1),
            (6, "DVI4", 16000, 1),
            (7, "LPC", 8000, 1),
            (8, "PCMA", 8000, 1),
            (9, "G722", 8000, 1),
            (10, "L16", 44100, 2),
            (11, "L16", 44100, 1),
            (12, "QCELP", 8000, 1),
            (13, "CN", 8000, 1),
            (14, "MPA", 90000, 1),
            (15, "G728", 8000, 1),
            (16, "DVI4", 11025, 1),
            (17, "DVI4", 22050, 1),
            (18, "G729", 8000, 1),
            (25, "CelB", 90000, 1),
            (26, "JPEG", 90000, 1),
            (28, "nv", 90000, 1),
            (31, "H261", 90000, 1),
            (32, "MPV", 90000, 1),
            (33, "MP2T", 90000, 1),
            (34, "H263", 90000, 1),
        )
    }
)
"""The static payload types of RFC 3551 §6, usable without ``a=rtpmap``."""


def codec_from_rtpmap(value: str, fmtp: str | None = None) -> Codec:
    """The codec of an ``a=rtpmap`` value such as ``"96 telephone-event/8000"``.

    Raises :class:`SdpError` if the value is malformed or the payload type is
    not in 0-127.
    """
    pt, entry = parse_rtpmap(value)
    if not (pt.isascii() and pt.isdigit() and len(pt) <= 3 and int(pt) <= 127):
        raise SdpError(f"payload type {pt[:10]!r} is not in 0-127")
    return Codec(entry.encoding_name, entry.clock_rate, entry.channels, fmtp, int(pt))


def media_codecs(media: MediaDescription) -> list[Codec]:
    """The codecs of an RTP ``m=`` line, in its format order, with their payload types.

    ``a=rtpmap`` wins; a static payload type without one is looked up in
    :data:`STATIC_PAYLOAD_TYPES`; formats that are neither are skipped.
    """
    return [codec for _, codec in _keyed_media_codecs(media)]


_CodecKey = tuple[str, int, int]


def _keyed_media_codecs(media: MediaDescription) -> list[tuple[_CodecKey, Codec]]:
    """:func:`media_codecs`, each codec with its :attr:`Codec.key` (the negotiator wants both)."""
    # One pass over the attributes: the first well-formed rtpmap and the first
    # fmtp of each payload type (what MediaDescription.rtpmap() and .fmtp() give).
    rtpmap: dict[str, RtpMap] = {}
    fmtps: dict[str, str] = {}
    for name, value in media.attributes:
        if name == "rtpmap":
            entry = _rtpmap(value) if value and len(value) <= _CACHED_TEXT else _rtpmap_of(value)
            if entry is not None and entry[0] not in rtpmap:
                rtpmap[entry[0]] = entry[1]
        elif name == "fmtp" and value:
            fmt, _, params = value.partition(" ")
            if fmt not in fmtps:
                fmtps[fmt] = params.strip(" \t")
    result: list[tuple[_CodecKey, Codec]] = []
    for fmt in media.formats:
        if not (fmt.isascii() and fmt.isdigit() and len(fmt) <= 3 and int(fmt) <= 127):
            continue
        pt = int(fmt)
        fmtp = fmtps.get(fmt)
        found = rtpmap.get(fmt)
        if found is not None:
            result.append(_codec(found.encoding_name, found.clock_rate, found.channels, fmtp, pt))
        elif pt in STATIC_PAYLOAD_TYPES:
            if fmtp is None:
                # with_payload_type(pt, None) would give an equal codec: take the one we have.
                result.append(_STATIC_KEYED[pt])
            else:
                static = STATIC_PAYLOAD_TYPES[pt]
                result.append(_codec(static.name, static.clock_rate, static.channels, fmtp, pt))
    return result


def _codec(
    name: str, clock_rate: int, channels: int, fmtp: str | None, pt: int
) -> tuple[_CodecKey, Codec]:
    """``Codec(...)`` and its key; the same again for the same short values (it is immutable)."""
    if len(name) + len(fmtp or "") <= _CACHED_TEXT:
        return _cached_codec(name, clock_rate, channels, fmtp, pt)
    return _keyed_codec(name, clock_rate, channels, fmtp, pt)


def _keyed_codec(
    name: str, clock_rate: int, channels: int, fmtp: str | None, pt: int
) -> tuple[_CodecKey, Codec]:
    codec = Codec(name, clock_rate, channels, fmtp, pt)
    return codec.key, codec


_CACHED_TEXT: Final = 64
"""rtpmap values, and codec names with their fmtp, up to this long are remembered: peers
send the same few again and again (and the memory this takes stays small)."""


def _rtpmap_of(value: str | None) -> tuple[str, RtpMap] | None:
    """``parse_rtpmap(value)``, or None when it is malformed."""
    try:
        return parse_rtpmap(value or "")
    except SdpError:
        return None


_rtpmap: Final = lru_cache(maxsize=256)(_rtpmap_of)
_cached_codec: Final = lru_cache(maxsize=512)(_keyed_codec)
_STATIC_KEYED: Final[Mapping[int, tuple[_CodecKey, Codec]]] = MappingProxyType(
    {pt: (codec.key, codec) for pt, codec in STATIC_PAYLOAD_TYPES.items()}
)
