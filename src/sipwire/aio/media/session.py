"""Media sessions of a user agent: sockets per call, the shared media clock,
and the hook between offer/answer and the running stream.

:class:`MediaManager` belongs to a :class:`~sipwire.UserAgent` (``ua.media``).
For each call it binds an RTP/RTCP port pair from the configured range and
makes a :class:`CallMedia`: the call's :class:`~sipwire.core.sdp_media.SdpMedia`
(the SDP advertises the bound port) that also owns the call's
:class:`~sipwire.aio.media.stream.AudioStream`. After every offer/answer
exchange and state change the agent calls :meth:`MediaManager.update`: the
agreed codec, payload types, packet time, addresses and directions are
applied to the running stream (a re-INVITE's new address, hold, a codec
change); media flows while the call is up (and during early media on our
calls); the end of the call closes the stream and releases its ports.

One timer drives every stream of the agent (:attr:`MediaManager.CLOCK`
seconds apart), rather than one per call.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final

from sipwire.aio.call_events import Broadcast
from sipwire.aio.media.audio import StreamResampler
from sipwire.aio.media.config import DtmfReceived, MediaStats, MediaTimeout, RtpConfig
from sipwire.aio.media.ports import PortAllocator, RtpSockets
from sipwire.aio.media.stream import BACKLOG_READS, AudioStream, StreamParams
from sipwire.aio.media.transform import PLAIN, PacketTransform, SrtpTransform
from sipwire.core.events import CallStateChanged, InDialogRequest, MediaChanged
from sipwire.core.media import MediaError
from sipwire.core.sdp_media import MediaConfig, SdpMedia
from sipwire.core.session import CallState
from sipwire.media.codecs import Codec, CodecRegistry, default_registry, is_codec, negotiate_ptime
from sipwire.media.wideband import OpusCodec, register_wideband
from sipwire.message import Request
from sipwire.sdp import NegotiatedStream, SdesOfferAnswer, fmtp_params

if TYPE_CHECKING:
    from sipwire.core.session import InviteSession

__all__ = [
    "CallMedia",
    "MediaEnded",
    "MediaEvent",
    "MediaManager",
    "MediaStarted",
    "relayed_digit",
    "secure_target",
    "tuned",
]

log = logging.getLogger("sipwire.media")

_STATIC: Final = {"0": ("PCMU", 8000), "8": ("PCMA", 8000)}
ORPHAN_AFTER: Final = 32.0
"""Seconds after which media that no session took (an INVITE refused before it
became a call, 400 or 422) is released."""
_UP: Final = frozenset({CallState.ACCEPTED, CallState.CONFIRMED})
_SECURE_TRANSPORTS: Final = frozenset({"tls", "wss"})


def secure_target(target: str) -> bool:
    """Whether a call to ``target`` goes over TLS: a ``sips:`` URI, or
    ``transport=tls`` (or ``wss``) in its parameters."""
    text = target.strip().strip("<>").lower()
    if text.startswith("sips:"):
        return True
    params = text.split("?", 1)[0].split(";")[1:]
    return any(p.strip() in ("transport=tls", "transport=wss") for p in params)


@dataclass(slots=True, eq=False)
class MediaStarted:
    """Audio began to flow in the call of ``session`` (``media`` is its stream's owner):
    the moment to start what plays, records or echoes in calls nobody else holds."""

    session: InviteSession
    media: CallMedia


@dataclass(slots=True, eq=False)
class MediaEnded:
    """The audio stream of a call ended; ``stats`` are its final statistics."""

    session: InviteSession
    stats: MediaStats


MediaEvent = MediaStarted | DtmfReceived | MediaTimeout | MediaEnded
"""What :attr:`MediaManager.listeners` are told."""


class CallMedia(SdpMedia):
    """A call's SDP offer/answer together with its running audio stream."""

    def __init__(
        self,
        manager: MediaManager,
        config: MediaConfig,
        sockets: RtpSockets,
        stream: AudioStream,
        *,
        address: str,
        port: int,
    ) -> None:
        super().__init__(config, address=address, audio_port=port, key_source=secrets.token_bytes)
        self.manager = manager
        self.sockets = sockets
        self.stream = stream
        self.session: InviteSession | None = None
        self.digits: Broadcast[str] = Broadcast()
        """DTMF digits received (RFC 4733 and INFO), for ``call.dtmf()``."""
        self.final_stats: MediaStats | None = None
        self.resampler: StreamResampler | None = None
        """The resampler of ``send_audio()`` frames at another rate than the codec's."""
        self._applied: NegotiatedStream | None = None
        self.signalling_target: str | None = None
        """The URI our INVITE goes to (set before the offer of a call we make)."""
        self._signalling_checked = config.srtp == "off"

    # -- SDES keys and the signalling that carries them -----------------------------------------
    def _secure_signalling(self) -> bool:
        if self.signalling_target is not None:
            return secure_target(self.signalling_target)
        session = self.session
        return session is not None and session.transport.lower() in _SECURE_TRANSPORTS

    def _check_signalling(self) -> None:
        """Before the first offer or answer: SDES keys go only over TLS signalling,
        unless ``MediaConfig.srtp_insecure_signalling`` says otherwise."""
        if self._signalling_checked:
            return
        self._signalling_checked = True
        config = self.config
        if self._secure_signalling():
            return
        if config.srtp_insecure_signalling:
            log.warning(
                "SDES-SRTP keys go over unencrypted signalling (srtp_insecure_signalling): "
                "whoever sees the SIP messages can decrypt the media"
            )
            return
        if config.srtp == "required":
            log.warning("SRTP is required but the signalling is not TLS: no keys sent")
            raise MediaError("SRTP required: SDES keys are sent only over TLS (sips:)", 488)
        log.warning("SRTP not offered or accepted: the signalling is not TLS (sips:)")
        self.negotiator = self._negotiator(None)

    def create_offer(self) -> bytes:
        """Our offer (SDES keys only over TLS signalling: :meth:`_check_signalling`)."""
        self._check_signalling()
        return super().create_offer()

    def receive_offer(self, body: bytes) -> bytes:
        """Our answer to the peer's offer (keys only over TLS, as for offers)."""
        self._check_signalling()
        return super().receive_offer(body)

    def rekey(self) -> bool:
        """Make the next offer (a re-INVITE) carry new SRTP keys; False without SRTP."""
        negotiator = self.negotiator
        if isinstance(negotiator, SdesOfferAnswer):
            negotiator.rekey()
            return True
        return False

    def _transform(self, negotiated: NegotiatedStream) -> PacketTransform:
        """The transform stage for ``negotiated``: SRTP with its keys (the running one
        while they are the same), the configured factory's, or plain."""
        keys = negotiated.srtp
        current = self.stream.transform
        if keys is not None:
            if isinstance(current, SrtpTransform):
                if current.keys == keys:
                    return current
                return SrtpTransform(keys, current.counters)  # a re-key: totals carry on
            return SrtpTransform(keys)
        factory = self.manager.config.transform
        return PLAIN if factory is None else factory(negotiated)

    @property
    def closed(self) -> bool:
        """Whether the stream has ended."""
        return self.stream.closed

    def stats(self) -> MediaStats:
        """The stream's statistics (the final ones once it ended)."""
        return self.final_stats or self.stream.stats()

    def _audio(self) -> NegotiatedStream | None:
        for negotiated in self.negotiated:
            if negotiated.media == "audio" and not negotiated.rejected and negotiated.codec:
                return negotiated
        return None

    def _params(self, negotiated: NegotiatedStream) -> StreamParams | None:
        registry = self.manager.registry
        sdp_codec = negotiated.codec
        assert sdp_codec is not None
        codec = registry.codec(sdp_codec.name, sdp_codec.clock_rate, sdp_codec.channels)
        if codec is None or sdp_codec.payload_type is None:
            return None
        codec = tuned(codec, sdp_codec.fmtp)
        receive: dict[int, Codec] = {}
        events: set[int] = set()

        def take(pt: int, name: str, rate: int, channels: int) -> None:
            fmt = registry.get(name, rate, channels)
            if fmt is None:
                return
            if is_codec(fmt):
                receive.setdefault(pt, fmt)
            elif name.lower() == "telephone-event":
                events.add(pt)

        local = self.negotiator.local_description
        if local is not None and negotiated.index < len(local.media):
            md = local.media[negotiated.index]
            rtpmap = md.rtpmap()
            for fmt_text in md.formats:
                entry = rtpmap.get(fmt_text)
                if entry is not None and fmt_text.isdigit():
                    take(int(fmt_text), entry.encoding_name, entry.clock_rate, entry.channels)
                elif fmt_text in _STATIC:
                    name, rate = _STATIC[fmt_text]
                    take(int(fmt_text), name, rate, 1)
        for agreed in negotiated.codecs:
            if agreed.payload_type is not None:
                take(agreed.payload_type, agreed.name, agreed.clock_rate, agreed.channels)
        previous = self.stream.params
        if previous is not None:
            # Packets of the formats agreed before are still on their way (the peer
            # switches when it has our answer): play them rather than leave a gap.
            for pt, old_codec in previous.receive.items():
                if pt not in events:
                    receive.setdefault(pt, old_codec)
        host = negotiated.remote_address
        port = negotiated.remote_port
        remote = None
        if host and port and host not in ("0.0.0.0", "::"):
            remote = (host, port)
        transport = self.rtp_parameters(negotiated.index)
        rtcp_remote = None
        if remote is not None:
            rtcp_remote = (transport.rtcp_address or remote[0], transport.rtcp_port or port + 1)
        return StreamParams(
            remote=remote,
            rtcp_remote=rtcp_remote,
            rtcp_mux=transport.rtcp_mux,
            codec=codec,
            payload_type=sdp_codec.payload_type,
            telephone_event=negotiated.telephone_event,
            receive=receive,
            receive_events=frozenset(events),
            ptime=negotiate_ptime(codec, transport.ptime, transport.maxptime),
            sends=negotiated.direction.sends,
            receives=negotiated.direction.receives,
        )

    def update(self, session: InviteSession, now: float) -> None:
        """Apply the last agreement and the call's state to the stream."""
        self.session = session
        stream = self.stream
        if stream.closed:
            return
        if session.state is CallState.TERMINATED:
            self.manager.release(self, now)
            return
        negotiated = self._audio()
        if negotiated is not None and negotiated != self._applied:
            params = self._params(negotiated)
            if params is not None:
                stream.configure(params, self._transform(negotiated))
                self._applied = negotiated
                if stream.active:
                    self.manager.start_clock()  # the packet time may have changed
        flowing = session.state in _UP or (session.state is CallState.EARLY and session.is_uac)
        if flowing and stream.params is not None and not stream.active:
            stream.activate(now)
            self.manager.running.add(self)
            self.manager.start_clock()
            self.manager.notify(MediaStarted(session, self))

    def on_call_event(
        self, event: CallStateChanged | MediaChanged | InDialogRequest, now: float
    ) -> None:
        """An event of the call: a state or media change, or a request in it (INFO
        ``application/dtmf-relay`` carries a digit)."""
        if type(event) is InDialogRequest:
            digit = relayed_digit(event.request)
            if digit is not None:
                self.session = event.session
                self._digit(digit, "info")
        else:
            self.update(event.session, now)

    def _digit(self, digit: str, method: str) -> None:
        self.digits.append(digit)
        if self.session is not None:
            self.manager.notify(DtmfReceived(self.session, digit, method))

    def _stream_event(self, event: object) -> None:
        if not isinstance(event, tuple) or self.session is None:
            return
        kind, value = event
        if kind == "dtmf":
            self._digit(str(value), "rfc4733")
        elif kind == "timeout":
            self.manager.notify(MediaTimeout(self.session, float(value)))


def relayed_digit(request: Request) -> str | None:
    """The digit of an INFO ``application/dtmf-relay`` (``Signal=5``), or None."""
    if request.method != "INFO":
        return None
    content_type = request.headers.get("Content-Type") or ""
    if content_type.split(";", 1)[0].strip().lower() != "application/dtmf-relay":
        return None
    for line in request.body.decode("utf-8", "replace").splitlines():
        name, _, value = line.partition("=")
        if name.strip().lower() == "signal":
            digit = value.strip().upper()
            return digit if len(digit) == 1 and digit in "0123456789*#ABCD" else None
    return None


def tuned(codec: Codec, fmtp: str | None) -> Codec:
    """``codec`` as the peer's format parameters ask us to send it.

    Opus (RFC 7587 §6.1): ``maxaveragebitrate`` caps our bit rate,
    ``useinbandfec=1`` (the peer's decoder uses FEC) turns in-band FEC on, and
    it is off otherwise; ``stereo=1`` only allows stereo, and mono is sent.
    Packet times come from ``a=ptime``/``a=maxptime``, not from here.
    """
    if not isinstance(codec, OpusCodec):
        return codec
    params = fmtp_params(fmtp)
    bit_rate = codec.bit_rate
    cap = params.get("maxaveragebitrate", "")
    if cap.isdigit():
        bit_rate = max(6000, min(bit_rate, int(cap)))  # RFC 7587: 6000 to 510000
    fec = params.get("useinbandfec") == "1"
    if bit_rate == codec.bit_rate and fec == codec.fec:
        return codec
    return replace(codec, bit_rate=bit_rate, fec=fec)


def _supported(config: MediaConfig, registry: CodecRegistry) -> tuple[str, ...]:
    """The configured codec names this agent can encode (and telephone-event)."""
    names = {fmt.name.lower() for fmt in registry}
    return tuple(name for name in config.codecs if name.lower() in names)


class MediaManager:
    """The media of one user agent: ports, streams, the clock, event listeners."""

    CLOCK: Final = 0.02
    """Seconds between two ticks of the media clock while every stream's packet
    time is a multiple of 20 ms (G.711's default); ``FINE_CLOCK`` otherwise."""
    FINE_CLOCK: Final = 0.01

    def __init__(self, config: RtpConfig, media_config: MediaConfig) -> None:
        self.config = config
        self.registry = config.codecs or register_wideband(default_registry())
        codecs = _supported(media_config, self.registry)
        audio = {codec.name.lower() for codec in self.registry.codecs()}
        if not any(name.lower() in audio for name in codecs):
            codecs = ("PCMU", "PCMA", *[c for c in codecs if c.lower() == "telephone-event"])
        self.sdp_config = replace(media_config, codecs=codecs, rtcp_mux=config.rtcp_mux)
        self.allocator = PortAllocator(media_config.rtp_port_min, media_config.rtp_port_max)
        self.calls: set[CallMedia] = set()
        """Media of calls not ended."""
        self.running: set[CallMedia] = set()
        """Media the clock drives."""
        self.listeners: list[Callable[[MediaEvent], None]] = []
        """Called with every MediaStarted, DtmfReceived, MediaTimeout and MediaEnded."""
        self._random = secrets.SystemRandom()
        self._timer: asyncio.TimerHandle | None = None
        self._next_tick = 0.0
        self._period: float = self.CLOCK
        self._behind = False
        """The clock ticked a period late or more: streams drain their sockets."""

    def new_media(self, host: str, cname: str) -> CallMedia:
        """Bind a port pair on ``host`` and make the media of a new call (OSError: none free)."""
        loop = asyncio.get_running_loop()
        sockets = self.allocator.allocate(self.config.bind_host or host)
        now = loop.time()
        holder: list[CallMedia] = []

        def emit(event: object) -> None:
            if holder:
                holder[0]._stream_event(event)

        try:
            stream = AudioStream(
                self.config,
                sockets,
                random=self._random,
                cname=cname,
                now=now,
                ntp_offset=time.time() - now,
                emit=emit,
            )
            stream.reads = BACKLOG_READS if self._behind else 1
            advertised = (host, sockets.port)
            if self.config.advertise is not None:
                advertised = self.config.advertise(host, sockets.port)
            media = CallMedia(
                self,
                self.sdp_config,
                sockets,
                stream,
                address=advertised[0],
                port=advertised[1],
            )
        except BaseException:
            self.allocator.release(sockets)
            raise
        holder.append(media)
        self.calls.add(media)
        loop.call_later(ORPHAN_AFTER, self._reap, media)
        return media

    def _reap(self, media: CallMedia) -> None:
        if media.session is None and media in self.calls:
            self.release(media, asyncio.get_running_loop().time())

    def notify(self, event: MediaEvent) -> None:
        """Tell every listener."""
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:
                log.exception("media listener failed on %r", event)

    def release(self, media: CallMedia, now: float) -> None:
        """End a call's stream and give its ports back."""
        if media not in self.calls:
            return
        self.calls.discard(media)
        self.running.discard(media)
        stream = media.stream
        was_active = stream.params is not None
        stream.close(now)
        media.final_stats = stream.stats()
        media.digits.close()
        self.allocator.release(media.sockets)
        if was_active and media.session is not None:
            self.notify(MediaEnded(media.session, media.final_stats))

    def close(self) -> None:
        """End every stream (the agent closes)."""
        now = asyncio.get_running_loop().time()
        for media in list(self.calls):
            self.release(media, now)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- the clock ------------------------------------------------------------------------------
    def start_clock(self) -> None:
        """Arm the media clock if it is not running (and choose its period)."""
        self._period = self.CLOCK
        for media in self.running:
            params = media.stream.params
            if params is not None and params.ptime % 20:
                self._period = self.FINE_CLOCK
        if self._timer is None and self.running:
            loop = asyncio.get_running_loop()
            self._next_tick = loop.time()
            self._timer = loop.call_at(self._next_tick, self._tick)

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        behind = now - self._next_tick >= self._period
        if behind != self._behind:
            # Late by a period or more, the loop turns slowly: one datagram per socket a
            # turn would read less than arrives, and the backlog (read as jitter) grows.
            self._behind = behind
            reads = BACKLOG_READS if behind else 1
            for media in self.calls:
                media.stream.reads = reads
        for media in list(self.running):
            try:
                media.stream.tick(now)
            except Exception:
                log.exception("media stream failed; closing it")
                self.release(media, now)
        if not self.running:
            self._timer = None
            return
        period = self._period
        self._next_tick += period
        if self._next_tick < now:
            self._next_tick = now + period
        self._timer = loop.call_at(self._next_tick, self._tick)
