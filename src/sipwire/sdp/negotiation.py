"""The pieces of the offer/answer negotiator: its state, its errors, its results,
and the per-m-line helpers :class:`~sipwire.sdp.offer_answer.OfferAnswer` uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from sipwire.errors import SipError
from sipwire.sdp.codecs import DYNAMIC_PAYLOAD_TYPES, Codec, _CodecKey, _keyed_media_codecs
from sipwire.sdp.session import Attribute, Direction, MediaDescription, Origin, SessionDescription

__all__ = [
    "GlareError",
    "NegotiatedStream",
    "OfferAnswerError",
    "OfferAnswerState",
    "SrtpKeys",
]

_NO_MEDIA_ADDRESSES = frozenset({"0.0.0.0", "::"})
_DIRECTION_ATTRIBUTES: Final = {d: Attribute(d.value) for d in Direction}
"""``a=sendrecv`` ... as attributes (immutable, so shared)."""


class OfferAnswerState(Enum):
    """Where the offer/answer exchange stands (RFC 3264 §4)."""

    IDLE = "idle"
    """Nothing offered yet."""
    OFFER_SENT = "offer-sent"
    """Our offer is outstanding: waiting for the answer."""
    OFFER_RECEIVED = "offer-received"
    """The peer's offer is waiting for our answer."""
    STABLE = "stable"
    """The last offer was answered; a new one may be made by either side."""


class OfferAnswerError(SipError):
    """An offer or answer at a point where the exchange does not allow one.

    ``status`` answers a request that carried it: 491 for glare (RFC 3261
    §14.2), 500 for an offer that arrives before the previous one is answered.
    """

    def __init__(self, reason: str, status: int = 500) -> None:
        super().__init__(reason, status)


class GlareError(OfferAnswerError):
    """An offer arrived while ours is outstanding: answer it 491 Request Pending."""

    def __init__(self, reason: str = "offer received while our offer is outstanding") -> None:
        super().__init__(reason, 491)


@dataclass(frozen=True, slots=True)
class NegotiatedStream:
    """The outcome of offer/answer for one m-line, from our point of view."""

    index: int
    """Position of the m-line in the session description."""
    media: str
    proto: str
    local_port: int
    """Our port; 0 when the stream is rejected."""
    remote_address: str | None
    """The peer's connection address (without TTL suffix), None if it gave none."""
    remote_port: int
    codec: Codec | None
    """The codec to send, with the payload type the peer asked for; None if rejected."""
    telephone_event: int | None
    """The payload type for RFC 4733 events if both sides have them, else None."""
    direction: Direction
    """Whether we send and/or receive on this stream."""
    rejected: bool
    codecs: tuple[Codec, ...] = ()
    """Every codec both sides accepted (telephone-event included), in answer order."""
    srtp: SrtpKeys | None = None
    """The SDES keys agreed for SRTP (RFC 4568), None for plain RTP."""


@dataclass(frozen=True, slots=True)
class SrtpKeys:
    """What SRTP needs of an SDES agreement (RFC 4568 §6.1): the crypto suite,
    the tag of the ``a=crypto`` line, and the master key + salt of each direction."""

    suite: str
    tag: int
    local_key: bytes
    """Key and salt we protect what we send with (our line's)."""
    remote_key: bytes
    """Key and salt the peer protects what it sends with (its line's)."""

    def __repr__(self) -> str:  # keys stay out of logs and tracebacks
        return f"SrtpKeys({self.suite}, tag={self.tag})"


@dataclass(slots=True)
class _Stream:
    """What the negotiator remembers of one m-line between exchanges."""

    media: str
    proto: str
    formats: list[str]
    rejected: bool
    remote_direction: Direction
    bindings: dict[int, _CodecKey] = field(default_factory=dict)


def _is_pt(fmt: str) -> bool:
    return len(fmt) <= 3 and fmt.isascii() and fmt.isdigit()


def _bind(bindings: dict[int, _CodecKey], md: MediaDescription) -> None:
    _bind_keyed(bindings, _keyed_media_codecs(md))


def _bind_keyed(bindings: dict[int, _CodecKey], keyed: Sequence[tuple[_CodecKey, Codec]]) -> None:
    """Remember the payload type of each codec (the keyed codecs of one m-line)."""
    for key, codec in keyed:
        if codec.payload_type is not None:
            bindings[codec.payload_type] = key


def _pick_payload_type(codec: Codec, bindings: dict[int, _CodecKey], used: set[int]) -> int | None:
    """A payload type for ``codec`` that keeps earlier bindings (RFC 3264 §8.3.2)."""
    for pt, key in bindings.items():
        if key == codec.key and pt not in used:
            return pt
    preferred = codec.payload_type
    if (
        preferred is not None
        and 0 <= preferred <= 127
        and preferred not in used
        and bindings.get(preferred, codec.key) == codec.key
    ):
        return preferred
    return next((pt for pt in DYNAMIC_PAYLOAD_TYPES if pt not in used and pt not in bindings), None)


def _describe(md: MediaDescription, codecs: Sequence[Codec], direction: Direction) -> None:
    """Add ``a=rtpmap``, ``a=fmtp`` and the direction attribute for ``codecs``."""
    attributes = md.attributes
    attributes.extend([_attr("rtpmap", f"{c.payload_type} {c.rtpmap}") for c in codecs])
    attributes.extend([_attr("fmtp", f"{c.payload_type} {c.fmtp}") for c in codecs if c.fmtp])
    attributes.append(_DIRECTION_ATTRIBUTES[direction])


def _attr(name: str, value: str | None) -> Attribute:
    """``Attribute(name, value)`` without the Python-level NamedTuple ``__new__``."""
    return tuple.__new__(Attribute, (name, value))


def _remote(sd: SessionDescription, md: MediaDescription) -> tuple[Direction, str | None]:
    """The peer's direction for ``md`` and its address (None if it gave none).

    A 0.0.0.0 (or ::) address means the peer receives nothing (RFC 3264 §8.4).
    """
    direction = md.explicit_direction or sd.direction
    conn = md.connection or sd.connection
    if conn is None:
        return direction, None
    host = conn.host
    if host in _NO_MEDIA_ADDRESSES:
        direction = direction.intersect(Direction.SENDONLY)
    return direction, host


def _rejected(
    index: int, md: MediaDescription, remote_port: int, remote: str | None
) -> NegotiatedStream:
    return NegotiatedStream(
        index=index,
        media=md.media,
        proto=md.proto,
        local_port=0,
        remote_address=remote,
        remote_port=remote_port,
        codec=None,
        telephone_event=None,
        direction=Direction.INACTIVE,
        rejected=True,
    )


def _same_but_version(new: SessionDescription, old: SessionDescription) -> bool:
    """Whether ``new`` and ``old`` are equal but for the ``o=`` line's sess-version.

    ``new`` must be a description nobody else holds: its origin is swapped
    for the comparison and put back.
    """
    origin = new.origin
    theirs = old.origin
    if origin.sess_version == theirs.sess_version:
        return new == old
    new.origin = Origin(
        origin.username,
        origin.sess_id,
        theirs.sess_version,
        origin.nettype,
        origin.addrtype,
        origin.address,
    )
    try:
        return new == old
    finally:
        new.origin = origin


def _accepted(
    index: int,
    md: MediaDescription,
    local_port: int,
    remote: str | None,
    remote_port: int,
    chosen: Sequence[Codec],
    direction: Direction,
) -> NegotiatedStream:
    """The result for an accepted m-line: ``chosen`` are the codecs in answer order."""
    main: Codec | None = None  # the first codec that is not telephone-event
    event: int | None = None  # the payload type of the first telephone-event
    seen_event = False
    for codec in chosen:
        if codec.is_telephone_event:
            if not seen_event:
                event, seen_event = codec.payload_type, True
        elif main is None:
            main = codec
    return NegotiatedStream(
        index=index,
        media=md.media,
        proto=md.proto,
        local_port=local_port,
        remote_address=remote,
        remote_port=remote_port,
        codec=main,
        telephone_event=event,
        direction=direction,
        rejected=False,
        codecs=tuple(chosen),
    )


def _with_local_port(result: NegotiatedStream, port: int) -> NegotiatedStream:
    """``result`` with our port ``port``."""
    return NegotiatedStream(
        result.index,
        result.media,
        result.proto,
        port,
        result.remote_address,
        result.remote_port,
        result.codec,
        result.telephone_event,
        result.direction,
        result.rejected,
        result.codecs,
        result.srtp,
    )
