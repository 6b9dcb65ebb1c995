"""What the media edge is told (:class:`RtpConfig`) and what it tells
(:class:`MediaStats`, :class:`MediaTimeout`, :class:`DtmfReceived`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from sipwire.aio.media.transform import PacketTransform
    from sipwire.core.session import InviteSession
    from sipwire.media.codecs import CodecRegistry
    from sipwire.media.srtp import SrtpCounters
    from sipwire.sdp import NegotiatedStream

__all__ = ["DtmfReceived", "MediaStats", "MediaTimeout", "RtpConfig"]


@dataclass(frozen=True, slots=True)
class RtpConfig:
    """How a :class:`~sipwire.UserAgent` carries audio (``UserAgent(rtp=RtpConfig(...))``).

    The port range and the codecs offered are the SDP's, in
    :class:`~sipwire.MediaConfig` (``rtp_port_min``/``rtp_port_max``,
    ``codecs``).
    """

    bind_host: str | None = None
    """Address the RTP sockets bind to; None: the first SIP listener's."""
    advertise: Callable[[str, int], tuple[str, int]] | None = None
    """Maps (host, RTP port) of a stream's socket to what the SDP says (a static NAT
    mapping, or a relay in tests); RTCP is then expected at the advertised port + 1."""
    rtcp_mux: bool = True
    """Offer RTP and RTCP on one port (RFC 5761) and accept it when offered (this sets
    the SDP's ``MediaConfig.rtcp_mux``); the RTCP port stays bound for the stream's
    life, for when the answer refuses it."""
    latching: bool = True
    """Symmetric RTP (RFC 4961) with latching: send to where the peer's packets come from."""
    relatch_after: float = 0.5
    """Seconds the latched source must be silent before another source is latched to."""
    media_timeout: float | None = 30.0
    """Seconds without RTP from a peer that should send before :class:`MediaTimeout`
    (None: never); not counted while the peer holds us or the stream does not receive."""
    hangup_on_timeout: bool = False
    """End the call (BYE) when the media times out."""
    send_silence: bool = True
    """Send silence packets when nothing plays (else the RTP clock moves on unsent:
    the peer sees a talkspurt gap). Keeps NAT bindings and the peer's timeout alive."""
    rtcp_interval: float = 5.0
    """The minimum RTCP report interval of RFC 3550 §6.2 (seconds; the first is halved)."""
    jitter_min: float = 0.02
    jitter_max: float = 0.3
    """Bounds of the adaptive jitter buffer's delay, seconds."""
    frame_queue: int = 50
    """Frames an ``audio()`` reader may fall behind before the oldest are dropped."""
    send_buffer: float = 1.0
    """Seconds of ``send_audio()`` PCM buffered before it waits (backpressure)."""
    codecs: CodecRegistry | None = None
    """Encoders and decoders by payload format; None: PCMU, PCMA and telephone-event."""
    transform: Callable[[NegotiatedStream], PacketTransform] | None = None
    """A transform stage of one's own between packets and the socket, for a
    negotiated stream without SDES keys (streams with keys always get SRTP,
    ``MediaConfig.srtp``); None: packets go out as they are."""
    sample_rate: int | None = None
    """The application's audio rate (``play()``, ``send_audio()``, ``audio()``,
    ``record()``), resampled to and from each codec's with libsoxr; None: the
    rate of the first codec agreed in the call (8000 for G.711, 16000 for G.722,
    48000 for Opus). A codec changed by a re-INVITE keeps the call's rate."""
    dtmf_method: Literal["auto", "rfc4733", "info"] = "auto"
    """``send_dtmf``: RFC 4733 when telephone-event was negotiated (auto), or always one."""


@dataclass(frozen=True, slots=True)
class MediaStats:
    """The statistics of a call's audio stream (RFC 3550 §6.4 terms)."""

    codec: str | None
    """The codec we send (``PCMU/8000``), None before negotiation."""
    packets_sent: int
    octets_sent: int
    """Payload octets sent (headers excluded, as in an SR)."""
    packets_received: int
    """RTP packets received from the peer (every payload type)."""
    octets_received: int
    packets_expected: int
    """From the sequence numbers of the peer's current source (RFC 3550 A.3)."""
    packets_lost: int
    """Expected minus received (A.3: duplicates make it smaller)."""
    jitter: float
    """Interarrival jitter of the peer's packets, seconds (A.8)."""
    rtt: float | None
    """Round-trip time from the peer's last report about us (LSR/DLSR), seconds."""
    remote_packets_lost: int | None
    """Cumulative loss the peer reported about our packets (its last RR/SR block)."""
    remote_fraction_lost: float | None
    """Fraction of our packets lost in the peer's last report interval."""
    remote_jitter: float | None
    """The jitter the peer reported about our packets, seconds."""
    remote_packets_sent: int | None
    """The packet count of the peer's last sender report."""
    concealed: int
    """Frames made up by packet-loss concealment (only while audio is decoded)."""
    late: int
    """Packets dropped by the jitter buffer for arriving after their turn."""
    rtcp_sent: int
    rtcp_received: int
    dropped: int
    """Datagrams dropped: malformed, unknown payload type, failed transform (auth)."""
    remote_address: tuple[str, int] | None
    """Where RTP goes: the latched source or the SDP's address."""
    srtp_suite: str | None = None
    """The SRTP crypto suite in use (``AES_CM_128_HMAC_SHA1_80`` ...), None: plain RTP."""
    srtp: SrtpCounters | None = None
    """What SRTP did over the call (every key): packets protected and passed, and
    those dropped as authentication failures, replays or malformed; None: plain RTP."""

    @property
    def loss(self) -> float:
        """Fraction of the peer's packets lost (0 when none were expected)."""
        expected = self.packets_expected
        return max(0.0, self.packets_lost / expected) if expected > 0 else 0.0

    def __str__(self) -> str:
        rtt = "-" if self.rtt is None else f"{self.rtt * 1000:.1f} ms"
        theirs = (
            ""
            if self.remote_packets_lost is None
            else f", peer lost {self.remote_packets_lost} of ours"
        )
        srtp = self.srtp
        secure = (
            ""
            if srtp is None
            else f", SRTP {self.srtp_suite}: {srtp.auth_failures} auth failures, "
            f"{srtp.replays} replays"
        )
        return (
            f"media {self.codec or '-'}: sent {self.packets_sent} packets, "
            f"received {self.packets_received}, lost {max(self.packets_lost, 0)} "
            f"({self.loss * 100:.1f} %), jitter {self.jitter * 1000:.1f} ms, rtt {rtt}, "
            f"concealed {self.concealed}{theirs}{secure}"
        )


@dataclass(slots=True, eq=False)
class MediaTimeout:
    """No RTP arrived from the peer for ``seconds`` (a call event)."""

    session: InviteSession
    seconds: float


@dataclass(slots=True, eq=False)
class DtmfReceived:
    """A DTMF digit arrived (a call event): ``method`` is ``"rfc4733"`` or ``"info"``."""

    session: InviteSession
    digit: str
    method: str
