"""The pieces of the offer/answer negotiator: its state, its errors, its results,
and the per-m-line helpers :class:`~sipwire.sdp.offer_answer.OfferAnswer` uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import Enum

from sipwire.errors import SipError
from sipwire.sdp.codecs import DYNAMIC_PAYLOAD_TYPES, Codec, media_codecs
from sipwire.sdp.session import Direction, MediaDescription, SessionDescription

__all__ = [
    "GlareError",
    "NegotiatedStream",
    "OfferAnswerError",
    "OfferAnswerState",
]

_CodecKey = tuple[str, int, int]
_NO_MEDIA_ADDRESSES = frozenset({"0.0.0.0", "::"})


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
    for codec in media_codecs(md):
        if codec.payload_type is not None:
            bindings[codec.payload_type] = codec.key


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
    for codec in codecs:
        md.add("rtpmap", f"{codec.payload_type} {codec.rtpmap}")
    for codec in codecs:
        if codec.fmtp:
            md.add("fmtp", f"{codec.payload_type} {codec.fmtp}")
    md.add(direction.value)


def _remote_direction(sd: SessionDescription, md: MediaDescription) -> Direction:
    """The peer's direction for ``md``; a 0.0.0.0 address means it receives nothing."""
    direction = sd.effective_direction(md)
    conn = sd.connection_for(md)
    if conn is not None and conn.host in _NO_MEDIA_ADDRESSES:
        direction = direction.intersect(Direction.SENDONLY)
    return direction


def _remote_address(sd: SessionDescription, md: MediaDescription) -> str | None:
    conn = sd.connection_for(md)
    return None if conn is None else conn.host


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


def _without_version(sd: SessionDescription) -> SessionDescription:
    return replace(sd, origin=replace(sd.origin, sess_version=0))
