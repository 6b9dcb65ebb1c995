"""The codec registry: RTP payload formats the media layer can send and play.

A :class:`PayloadFormat` is what an ``a=rtpmap`` names (encoding name, RTP
clock rate, channels) with a default payload type; a :class:`Codec` is a
payload format that carries audio, and makes encoders and decoders. G.711
(PCMU 0, PCMA 8) is built in, with telephone-event (RFC 4733) as a
non-audio entry. The wideband codecs (G.722, Opus) register themselves the
same way when their library is importable; their RTP clock is not always
their sample rate (G.722 says 8000 in SDP for 16 kHz audio), hence both.

The registry's key is the SDP's: (lower-case name, clock rate, channels),
what :attr:`sipwire.sdp.codecs.Codec.key` gives, so the edge maps a
negotiated codec to one here without this package importing the SDP layer.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final, Protocol, TypeGuard

import numpy as np
from numpy.typing import NDArray

from sipwire.media.errors import MediaError
from sipwire.media.g711 import G711Decoder, G711Encoder, Law

__all__ = [
    "DEFAULT_PTIME",
    "PCMA",
    "PCMU",
    "TELEPHONE_EVENT",
    "Codec",
    "CodecRegistry",
    "Decoder",
    "Encoder",
    "G711Codec",
    "PayloadFormat",
    "TelephoneEventFormat",
    "default_registry",
    "is_codec",
    "negotiate_ptime",
]

DEFAULT_PTIME: Final = 20
"""Milliseconds of audio per packet when the SDP says nothing (RFC 3551 §4.5)."""


class Encoder(Protocol):
    """Turns frames of 16-bit PCM (the codec's sample rate) into payloads."""

    def encode(self, pcm: NDArray[np.int16]) -> bytes:
        """The payload of one frame."""
        ...


class Decoder(Protocol):
    """Turns payloads into 16-bit PCM; one per received stream (it has state)."""

    @property
    def sample_rate(self) -> int:
        """Samples per second of the PCM it returns."""
        ...

    @property
    def channels(self) -> int: ...

    def decode(self, payload: bytes) -> NDArray[np.int16]:
        """The PCM of one payload."""
        ...

    def conceal(self) -> NDArray[np.int16]:
        """PCM standing in for a lost payload (the codec's packet-loss concealment)."""
        ...


class PayloadFormat(Protocol):
    """An RTP payload format as an ``a=rtpmap`` line names it."""

    @property
    def name(self) -> str:
        """Encoding name (``PCMU``, ``telephone-event``)."""
        ...

    @property
    def clock_rate(self) -> int:
        """RTP timestamp units per second."""
        ...

    @property
    def channels(self) -> int: ...

    @property
    def payload_type(self) -> int | None:
        """The static payload type, or the dynamic one to prefer, or None."""
        ...

    @property
    def fmtp(self) -> str | None:
        """Format parameters to offer (``a=fmtp``), or None."""
        ...

    @property
    def is_audio(self) -> bool:
        """Whether it carries audio (and is a :class:`Codec`)."""
        ...


class Codec(PayloadFormat, Protocol):
    """A payload format carrying audio."""

    @property
    def sample_rate(self) -> int:
        """Samples per second of the PCM its encoder takes and decoder gives."""
        ...

    @property
    def default_ptime(self) -> int:
        """Milliseconds per packet when the SDP has no ``a=ptime``."""
        ...

    @property
    def ptime_step(self) -> int:
        """Packets hold a whole number of these milliseconds."""
        ...

    @property
    def max_ptime(self) -> int:
        """The longest packet it makes, in milliseconds."""
        ...

    def frame_samples(self, ptime: int) -> int:
        """PCM samples (per channel) in a packet of ``ptime`` ms."""
        ...

    def timestamp_increment(self, ptime: int) -> int:
        """RTP timestamp units a packet of ``ptime`` ms covers."""
        ...

    def encoder(self) -> Encoder: ...

    def decoder(self) -> Decoder: ...


def is_codec(fmt: PayloadFormat) -> TypeGuard[Codec]:
    """Whether ``fmt`` carries audio."""
    return fmt.is_audio


def negotiate_ptime(codec: Codec, ptime: int | None = None, maxptime: int | None = None) -> int:
    """The packet duration to send, in ms: the peer's ``a=ptime`` (or the
    codec's default), no longer than its ``a=maxptime`` or the codec's
    longest, rounded down to the codec's step (never below one step)."""
    chosen = codec.default_ptime if ptime is None or ptime <= 0 else ptime
    if maxptime is not None and maxptime > 0:
        chosen = min(chosen, maxptime)
    chosen = min(chosen, codec.max_ptime)
    step = codec.ptime_step
    return max(step, chosen - chosen % step)


# ---------------------------------------------------------------- G.711 and telephone-event


@dataclass(frozen=True, slots=True)
class G711Codec:
    """PCMU (µ-law) or PCMA (A-law), RFC 3551 §4.5.14: 8 kHz, one octet per sample."""

    name: str
    payload_type: int
    law: Law
    clock_rate: int = 8000
    sample_rate: int = 8000
    channels: int = 1
    fmtp: str | None = None
    is_audio: bool = True
    default_ptime: int = DEFAULT_PTIME
    ptime_step: int = 10
    max_ptime: int = 120  # 960 octets: one packet fits a 1500-octet MTU

    def frame_samples(self, ptime: int) -> int:
        return self.sample_rate * ptime // 1000

    def timestamp_increment(self, ptime: int) -> int:
        return self.clock_rate * ptime // 1000

    def encoder(self) -> G711Encoder:
        return G711Encoder(self.law)

    def decoder(self) -> G711Decoder:
        return G711Decoder(self.law)


@dataclass(frozen=True, slots=True)
class TelephoneEventFormat:
    """RFC 4733 telephone-event: DTMF digits 0-15 (and flash, 16) as events."""

    payload_type: int | None = 101
    clock_rate: int = 8000
    name: str = "telephone-event"
    channels: int = 1
    fmtp: str | None = "0-16"
    is_audio: bool = False


PCMU: Final = G711Codec("PCMU", 0, "ulaw")
PCMA: Final = G711Codec("PCMA", 8, "alaw")
TELEPHONE_EVENT: Final = TelephoneEventFormat()


# ---------------------------------------------------------------- the registry


def _key(name: str, clock_rate: int, channels: int) -> tuple[str, int, int]:
    return (name.lower(), clock_rate, channels)


class CodecRegistry:
    """Payload formats by (name, clock rate, channels), in registration order."""

    def __init__(self, formats: Iterable[PayloadFormat] = ()) -> None:
        self._formats: dict[tuple[str, int, int], PayloadFormat] = {}
        for fmt in formats:
            self.register(fmt)

    def register(self, fmt: PayloadFormat, *, replace: bool = False) -> None:
        """Add a payload format; one already there under its key needs ``replace``."""
        key = _key(fmt.name, fmt.clock_rate, fmt.channels)
        if key in self._formats and not replace:
            raise MediaError(f"{fmt.name}/{fmt.clock_rate}/{fmt.channels} is already registered")
        self._formats[key] = fmt

    def get(self, name: str, clock_rate: int, channels: int = 1) -> PayloadFormat | None:
        """The format an ``a=rtpmap`` names (names compare case-insensitively)."""
        return self._formats.get(_key(name, clock_rate, channels))

    def codec(self, name: str, clock_rate: int, channels: int = 1) -> Codec | None:
        """The audio codec an ``a=rtpmap`` names, or None (unknown, or not audio)."""
        fmt = self.get(name, clock_rate, channels)
        return fmt if fmt is not None and is_codec(fmt) else None

    def by_payload_type(self, payload_type: int) -> PayloadFormat | None:
        """The format registered with this (static) payload type, if any."""
        for fmt in self._formats.values():
            if fmt.payload_type == payload_type:
                return fmt
        return None

    def codecs(self) -> list[Codec]:
        """The audio codecs, in registration order."""
        return [fmt for fmt in self._formats.values() if is_codec(fmt)]

    def __iter__(self) -> Iterator[PayloadFormat]:
        return iter(list(self._formats.values()))

    def __len__(self) -> int:
        return len(self._formats)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, tuple) and len(key) == 3:
            name, rate, channels = key
            return isinstance(name, str) and _key(name, rate, channels) in self._formats
        return False


def default_registry() -> CodecRegistry:
    """A fresh registry with PCMU, PCMA and telephone-event."""
    return CodecRegistry([PCMU, PCMA, TELEPHONE_EVENT])
