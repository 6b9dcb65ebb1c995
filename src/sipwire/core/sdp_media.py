"""SessionMedia over ``sipwire.sdp``: RFC 3264 offer/answer for INVITE sessions.

:class:`SdpMedia` wraps one :class:`~sipwire.sdp.OfferAnswer` per call and
translates between the session's bytes and the negotiator's descriptions;
an unacceptable offer or answer becomes :class:`MediaError` (488).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, Literal

from sipwire.core.media import MediaError
from sipwire.sdp import (
    KNOWN_CODECS,
    Codec,
    NegotiatedStream,
    OfferAnswer,
    OfferAnswerError,
    RtpParameters,
    SdesOfferAnswer,
    SdpError,
    parse_sdp,
    rtp_parameters,
)

__all__ = ["MediaConfig", "SdpMedia", "codecs_by_name"]


@dataclass(frozen=True, slots=True)
class MediaConfig:
    """What a user agent offers and accepts."""

    codecs: tuple[str, ...] = ("PCMU", "PCMA", "G722", "telephone-event")
    """Audio codecs by name, in order of preference (PCMU, PCMA, G722, opus, telephone-event)."""
    video_codecs: tuple[str, ...] = ()
    """Video codecs by name (H264, VP8, VP9); empty: video is neither offered nor accepted."""
    rtp_port_min: int = 20000
    rtp_port_max: int = 30000
    """RTP ports (even; RTCP on the odd one above) are taken from this range."""
    session_name: str = "sipwire"
    username: str = "sipwire"
    rtcp_mux: bool = False
    """Offer RTP and RTCP on one port (RFC 5761) and accept it when offered."""
    srtp: Literal["off", "preferred", "required"] = "off"
    """SDES-SRTP (RFC 3711, RFC 4568): ``"required"`` offers RTP/SAVP and refuses
    plain RTP (488); ``"preferred"`` offers RTP/AVP carrying ``a=crypto`` lines
    (best effort: SRTP when the peer answers with a crypto line, plain RTP
    otherwise) and answers offered crypto with SRTP; ``"off"``: plain RTP only.
    Keys are made by the media edge (a :class:`~sipwire.UserAgent` carrying
    audio): an ``SdpMedia`` given no ``key_source`` negotiates plain RTP."""
    srtp_suites: tuple[str, ...] = (
        "AES_CM_128_HMAC_SHA1_80",
        "AES_CM_128_HMAC_SHA1_32",
        "AEAD_AES_128_GCM",
    )
    """Crypto suites offered and accepted, in order of preference."""
    srtp_insecure_signalling: bool = False
    """Send SDES keys over signalling that is not TLS (sips:, transport=tls/wss):
    anyone who sees the SIP then has the media keys. Off: such calls fail with
    ``"required"`` and go without SRTP with ``"preferred"`` (a warning is logged
    either way)."""


def codecs_by_name(names: tuple[str, ...]) -> tuple[Codec, ...]:
    """Codec objects for names such as ``("PCMU", "telephone-event")``; ValueError if unknown."""
    if type(names) is tuple:  # hashable: every call has one of the same few configs
        return _remembered_codecs(names)
    return _look_up_codecs(names)


def _look_up_codecs(names: tuple[str, ...]) -> tuple[Codec, ...]:
    out = []
    for name in names:
        codec = KNOWN_CODECS.get(name.lower())
        if codec is None:
            raise ValueError(f"unknown codec {name!r}; known: {', '.join(sorted(KNOWN_CODECS))}")
        out.append(codec)
    return tuple(out)


_remembered_codecs: Final = lru_cache(maxsize=32)(_look_up_codecs)


class SdpMedia:
    """Offers and answers for one call, with the codecs of a :class:`MediaConfig`."""

    content_type = "application/sdp"

    def __init__(
        self,
        config: MediaConfig,
        *,
        address: str,
        audio_port: int,
        video_port: int | None = None,
        session_id: int = 1,
        key_source: Callable[[int], bytes] | None = None,
    ) -> None:
        self.config = config
        self._address = address
        self._audio_port = audio_port
        self._video_port = video_port
        self._session_id = session_id
        self.negotiator: OfferAnswer = self._negotiator(key_source)
        self.remote: bytes | None = None
        """The last description the peer sent."""

    def _negotiator(self, key_source: Callable[[int], bytes] | None) -> OfferAnswer:
        """The offer/answer negotiator: with SDES-SRTP when the config asks for it and
        ``key_source`` (n random bytes) can make keys, else plain RTP."""
        config = self.config
        options: dict[str, object] = {
            "video_port": self._video_port if config.video_codecs else None,
            "audio_codecs": codecs_by_name(config.codecs),
            "video_codecs": codecs_by_name(config.video_codecs) if config.video_codecs else (),
            "session_name": config.session_name,
            "username": config.username,
            "session_id": self._session_id,
            "rtcp_mux": config.rtcp_mux,
        }
        if config.srtp != "off" and key_source is not None:
            return SdesOfferAnswer(
                self._address,
                self._audio_port,
                mode=config.srtp,
                suites=config.srtp_suites,
                key_source=key_source,
                **options,
            )
        return OfferAnswer(self._address, self._audio_port, **options)  # type: ignore[arg-type]

    @property
    def on_hold(self) -> bool:
        """True after hold() and before resume()."""
        return self.negotiator.on_hold

    @property
    def negotiated(self) -> list[NegotiatedStream]:
        """The streams as last agreed: codec, payload type, remote address and port, direction."""
        return self.negotiator.negotiated

    def rtp_parameters(self, index: int) -> RtpParameters:
        """ptime, RTCP port and multiplexing of m-line ``index`` as last agreed."""
        negotiator = self.negotiator
        return rtp_parameters(negotiator.local_description, negotiator.remote_description, index)

    def create_offer(self) -> bytes:
        """Our offer (or re-offer keeping the m-lines)."""
        try:
            return bytes(self.negotiator.create_offer())
        except OfferAnswerError as exc:
            raise MediaError(exc.reason, exc.status) from None

    def receive_offer(self, body: bytes) -> bytes:
        """Answer the peer's offer; MediaError (488) when nothing is acceptable."""
        try:
            # Answered from the memo when a call before had the same offer (and config).
            answer, accepted = self.negotiator.receive_offer_bytes(body)
        except (SdpError, OfferAnswerError) as exc:
            raise MediaError(exc.reason, 491 if exc.status == 491 else 488) from None
        self.remote = body
        if not accepted:
            raise MediaError("no acceptable stream in the offer")
        return answer

    def receive_answer(self, body: bytes) -> None:
        """Take the answer to our offer; MediaError (488) if it does not fit."""
        try:
            self.negotiator.receive_answer(parse_sdp(body))
        except (SdpError, OfferAnswerError) as exc:
            raise MediaError(exc.reason) from None
        self.remote = body

    def offer_rejected(self) -> None:
        """Our offer got a non-2xx (488, 491 ...): it never took effect (RFC 3264 §8)."""
        with contextlib.suppress(OfferAnswerError):
            self.negotiator.cancel_offer()

    def hold(self) -> bytes:
        """A re-offer putting the peer on hold."""
        try:
            return bytes(self.negotiator.hold())
        except OfferAnswerError as exc:
            raise MediaError(exc.reason, exc.status) from None

    def resume(self) -> bytes:
        """A re-offer taking the peer off hold."""
        try:
            return bytes(self.negotiator.resume())
        except OfferAnswerError as exc:
            raise MediaError(exc.reason, exc.status) from None
