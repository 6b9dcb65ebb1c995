"""SessionMedia over ``sipwire.sdp``: real RFC 3264 offer/answer for INVITE sessions."""

from __future__ import annotations

from dataclasses import dataclass

from sipwire.core.media import MediaError

__all__ = ["MediaConfig", "SdpMedia"]


@dataclass(frozen=True, slots=True)
class MediaConfig:
    """What a user agent offers and accepts for audio (and video)."""

    codecs: tuple[str, ...] = ("PCMU", "PCMA", "G722", "telephone-event")
    """Audio codecs by name, in order of preference."""
    video_codecs: tuple[str, ...] = ()
    """Video codecs by name (H264, VP8, VP9); empty: no video stream."""
    rtp_port_min: int = 20000
    rtp_port_max: int = 30000
    session_name: str = "sipwire"
    username: str = "sipwire"


class SdpMedia:
    """Offers and answers for one call (placeholder until the negotiator lands)."""

    content_type = "application/sdp"

    def __init__(self, config: MediaConfig, *, address: str, audio_port: int) -> None:
        self.config = config
        self.address = address
        self.audio_port = audio_port
        self.remote: bytes | None = None
        self.on_hold = False
        self._version = 0

    def _sdp(self, direction: str) -> bytes:
        self._version += 1
        family = "IP6" if ":" in self.address else "IP4"
        lines = [
            "v=0",
            f"o=sipwire 1 {self._version} IN {family} {self.address}",
            "s=sipwire",
            f"c=IN {family} {self.address}",
            "t=0 0",
            f"m=audio {self.audio_port} RTP/AVP 0 8 101",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-16",
            f"a={direction}",
        ]
        return ("\r\n".join(lines) + "\r\n").encode()

    def create_offer(self) -> bytes:
        return self._sdp("sendonly" if self.on_hold else "sendrecv")

    def receive_offer(self, body: bytes) -> bytes:
        if b"m=audio" not in body:
            raise MediaError("no audio stream offered")
        self.remote = body
        return self._sdp("sendrecv")

    def receive_answer(self, body: bytes) -> None:
        self.remote = body

    def hold(self) -> bytes:
        self.on_hold = True
        return self.create_offer()

    def resume(self) -> bytes:
        self.on_hold = False
        return self.create_offer()
