"""One audio stream of a call on asyncio: RTP and RTCP on UDP sockets.

:class:`AudioStream` binds the sans-I/O media layer to its sockets:

- **sending**, once per packet time (the media clock calls :meth:`tick`):
  PCM from the :class:`~sipwire.aio.media.sources.AudioSource` (silence when
  it has none and ``send_silence`` is set), encoded with the negotiated
  codec, numbered by an :class:`~sipwire.media.rtp.RtpSender`; an RFC 4733
  digit replaces the audio while it lasts;
- **receiving**: datagrams through the transform stage, parsed, checked
  against the latched source, then to the RTCP statistics, the jitter
  buffer (which decodes at playout) and the telephone-event receiver;
  frames played out go to the recorders, the ``audio()`` readers and, with
  echo on, back to the sender;
- **symmetric RTP with latching** (RFC 4961): packets go to where the
  peer's packets come from once they arrive (its SDP address until then);
  another source is latched to only after the current one was silent for
  ``relatch_after`` seconds;
- **RTCP** (RFC 3550 §6): SR/RR with SDES at the §6.2 interval, on the RTP
  port when RFC 5761 multiplexing was agreed, else from port + 1 to the
  peer's ``a=rtcp`` port (or RTP port + 1, or where its RTCP comes from),
  and a BYE when the stream closes;
- **media timeout**: no RTP for ``media_timeout`` seconds while the peer
  should send gives one :class:`~sipwire.aio.media.config.MediaTimeout`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final

import numpy as np
from numpy.typing import NDArray

from sipwire.aio.media.audio import WavWriter
from sipwire.aio.media.config import MediaStats, RtpConfig
from sipwire.aio.media.ports import RtpSockets
from sipwire.aio.media.rates import RateAdapter
from sipwire.aio.media.sources import AudioSource, FrameReaders
from sipwire.aio.media.transform import PLAIN, PacketTransform, SrtpTransform
from sipwire.media.codecs import Codec, Decoder, Encoder
from sipwire.media.dtmf import DtmfDigit, DtmfReceiver, DtmfSender
from sipwire.media.errors import MediaError, MediaFormatError
from sipwire.media.frame import Frame
from sipwire.media.jitter import JitterBuffer
from sipwire.media.rtcp import SenderReport, is_rtcp
from sipwire.media.rtp import RandomSource, RtpPacket, RtpSender, parse_rtp
from sipwire.media.statistics import RtcpSession, SourceStatistics

__all__ = ["AudioStream", "StreamParams"]

log = logging.getLogger("sipwire.media")

MAX_CATCH_UP: Final = 5
"""Packet times sent at once after the loop stalled; beyond that the clock skips."""
MAX_DATAGRAM: Final = 2048
BACKLOG_READS: Final = 16
"""Datagrams read per wake-up of a socket while the media clock runs late."""

Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class StreamParams:
    """What offer/answer agreed for the stream, as the sockets need it."""

    remote: Address | None
    """RTP destination from the peer's SDP; None when it gave none (or 0.0.0.0, hold)."""
    rtcp_remote: Address | None
    """RTCP destination without multiplexing (``a=rtcp`` or RTP port + 1)."""
    rtcp_mux: bool
    codec: Codec
    """The codec we send."""
    payload_type: int
    """The payload type we send it with."""
    telephone_event: int | None
    """The payload type for our RFC 4733 events, None when not negotiated."""
    receive: dict[int, Codec]
    """Audio payload types we accept, with their codecs."""
    receive_events: frozenset[int]
    """Telephone-event payload types we accept."""
    ptime: int
    """Milliseconds of audio per packet we send."""
    sends: bool
    receives: bool


def _idle(sender: DtmfSender) -> bool:
    return not sender.busy


class AudioStream:
    """RTP/RTCP of one audio stream on a bound socket pair (see the module doc)."""

    def __init__(
        self,
        config: RtpConfig,
        sockets: RtpSockets,
        *,
        random: RandomSource,
        cname: str,
        now: float,
        ntp_offset: float,
        emit: Callable[[object], None],
    ) -> None:
        self.config = config
        self.sockets = sockets
        self._emit = emit
        self.loop = asyncio.get_running_loop()
        self.app_rate: int | None = config.sample_rate
        """The application's audio rate (None until the first codec or use fixes it)."""
        self.source = AudioSource(round(config.send_buffer * (config.sample_rate or 8000)))
        self.readers = FrameReaders(config.frame_queue)
        self.recorders: list[WavWriter] = []
        self.echo = False
        """Send back what is received (after the jitter buffer)."""
        self.reads = 1
        """Datagrams read per wake-up: 1 while the agent keeps up (the common case then
        costs no failed read), ``BACKLOG_READS`` while its clock runs late."""
        self.params: StreamParams | None = None
        self.transform: PacketTransform = PLAIN
        self.active = False
        """Media flows (the call is up, or early media); set by the session."""
        self.closed = False
        self.rtp = RtpSender(random, 0)
        self.rtcp = RtcpSession(
            random,
            self.rtp.ssrc,
            cname,
            8000,
            now,
            ntp_offset=ntp_offset,
            min_time=config.rtcp_interval,
        )
        self.jitter: JitterBuffer | None = None
        self.dtmf_sender: DtmfSender | None = None
        self.dtmf_receiver = DtmfReceiver()
        self._dtmf_waiters: list[asyncio.Future[None]] = []
        self._encoder: Encoder | None = None
        self._decoders: dict[int, tuple[Codec, Decoder]] = {}
        self._frame_samples = 160
        self._app_samples = 160
        self._rates: RateAdapter | None = None
        self._ts_increment = 160
        self._silence = np.zeros(160, np.int16)
        self._next_send: float | None = None
        self._rtcp_due = self.rtcp.next_timer()
        self._plain = True
        """The transform is PLAIN: packets go out as serialized."""
        self._latched: Address | None = None
        self._latched_heard = 0.0
        self._stale: Address | None = None
        self._rtcp_latched: Address | None = None
        self._remote_ssrc: int | None = None
        self._source: SourceStatistics | None = None
        """The statistics of the peer's current source (kept after its RTCP BYE)."""
        self._remote_sent: int | None = None
        self._last_rtp = now
        self._timed_out = False
        self.packets_sent = 0
        self.octets_sent = 0
        self.packets_received = 0
        self.octets_received = 0
        self.rtcp_sent = 0
        self.rtcp_received = 0
        self.dropped = 0
        self.send_errors = 0
        self.loop.add_reader(sockets.rtp.fileno(), self._readable, sockets.rtp, False)
        if sockets.rtcp is not None:
            self.loop.add_reader(sockets.rtcp.fileno(), self._readable, sockets.rtcp, True)

    # -- configuration ------------------------------------------------------------------------
    @property
    def target(self) -> Address | None:
        """Where RTP goes: the latched source, else the SDP's address."""
        params = self.params
        if params is None:
            return None
        return self._latched or params.remote

    @property
    def rtcp_target(self) -> Address | None:
        """Where RTCP goes."""
        params = self.params
        if params is None:
            return None
        if params.rtcp_mux:
            return self.target
        if self._rtcp_latched is not None:
            return self._rtcp_latched
        if self._latched is not None:
            return (self._latched[0], self._latched[1] + 1)
        return params.rtcp_remote

    def configure(self, params: StreamParams, transform: PacketTransform) -> None:
        """Apply a (re)negotiated stream: codec, payload types, addresses, directions."""
        old = self.params
        self.params = params
        self.transform = transform
        self._plain = transform is PLAIN
        codec = params.codec
        if old is None or old.codec != codec or old.ptime != params.ptime:
            self._encoder = codec.encoder()
            self._frame_samples = codec.frame_samples(params.ptime)
            self._ts_increment = codec.timestamp_increment(params.ptime)
            self._silence = np.zeros(self._frame_samples, np.int16)  # PCM here is mono
            rates = self._rates
            if rates is None:
                rates = RateAdapter(self.audio_rate(codec.sample_rate), codec.sample_rate)
            elif rates.codec_rate != codec.sample_rate:
                rates = rates.switch(codec.sample_rate)
            self._rates = rates
            self._app_samples = rates.app_samples(self._frame_samples)
        self.rtp.payload_type = params.payload_type
        decoders: dict[int, tuple[Codec, Decoder]] = {}
        for pt, receive_codec in params.receive.items():
            kept = self._decoders.get(pt)
            same = kept is not None and kept[0] is receive_codec
            decoders[pt] = (
                kept if same and kept is not None else (receive_codec, receive_codec.decoder())
            )
        self._decoders = decoders
        by_pt = {pt: decoder for pt, (_, decoder) in decoders.items()}
        if self.jitter is None or self.jitter.clock_rate != codec.clock_rate:
            self.jitter = JitterBuffer(
                by_pt,
                codec.clock_rate,
                ptime=params.ptime / 1000,
                min_delay=self.config.jitter_min,
                max_delay=self.config.jitter_max,
                initial_delay=max(self.config.jitter_min, min(0.06, self.config.jitter_max)),
            )
        else:
            self.jitter.decoders = by_pt
        self.rtcp.clock_rate = codec.clock_rate
        event_pt = params.telephone_event
        sender = self.dtmf_sender
        if event_pt is None:
            self.dtmf_sender = None
            self._settle_dtmf()
        elif (
            sender is None
            or sender.payload_type != event_pt
            or old is None
            or old.ptime != params.ptime
        ):
            self.dtmf_sender = DtmfSender(event_pt, clock_rate=codec.clock_rate, ptime=params.ptime)
        if old is not None and old.remote != params.remote:
            # A new address from a re-offer: send there. The old source is not latched
            # to again until it was silent for relatch_after (its last packets may be
            # on their way), a new one at once.
            if self._latched is not None:
                self._stale = self._latched
            self._latched = None
            self._rtcp_latched = None

    def audio_rate(self, default: int = 8000) -> int:
        """The application's rate: ``RtpConfig.sample_rate``, else ``default`` at first use."""
        if self.app_rate is None:
            self.app_rate = default
            self.source.buffer_samples = max(1, round(self.config.send_buffer * default))
        return self.app_rate

    def activate(self, now: float) -> None:
        """Start sending (from the next tick) and watching for the peer's packets."""
        if self.active or self.closed:
            return
        self.active = True
        self._last_rtp = now
        if self._next_send is None:
            self._next_send = now

    # -- the clock ----------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        """Do what is due at ``now``: packets to send, frames to play, RTCP, timeouts."""
        params = self.params
        if not self.active or self.closed or params is None:
            return
        next_send = self._next_send
        if next_send is not None:
            step = params.ptime / 1000
            sent = 0
            while next_send <= now + 0.002:
                if sent == MAX_CATCH_UP:
                    missed = int((now - next_send) / step) + 1
                    self.rtp.pause(missed * self._ts_increment)
                    next_send += missed * step
                    break
                self._send_frame(params, now)
                next_send += step
                sent += 1
            self._next_send = next_send
        jitter = self.jitter
        if jitter is not None:
            # A frame due whose packet is not here yet may be waiting in the socket
            # (the loop was busy): read it before concealing a frame that arrived.
            if jitter.missing(now):
                self._read(self.sockets.rtp, False, BACKLOG_READS)
            frame = jitter.get(now)  # None until one is due
            while frame is not None:
                self._deliver(frame)
                if jitter.missing(now):
                    self._read(self.sockets.rtp, False, BACKLOG_READS)
                frame = jitter.get(now)
        receiver = self.dtmf_receiver
        deadline = receiver.next_timer()
        if deadline is not None and deadline <= now:
            receiver.handle_timer(now)
            self._dtmf_events()
        if self._rtcp_due <= now:
            rtcp = self.rtcp
            report = rtcp.handle_timer(now)
            if report is not None:
                self._send_rtcp(report)
            self._rtcp_due = rtcp.next_timer()
        timeout = self.config.media_timeout
        if (
            timeout is not None
            and params.receives
            and not self._timed_out
            and now - self._last_rtp >= timeout
        ):
            self._timed_out = True
            self._emit(("timeout", now - self._last_rtp))

    def _send_frame(self, params: StreamParams, now: float) -> None:
        pcm = self.source.pull(self._app_samples)
        sending = params.sends and (self._latched or params.remote) is not None
        sender = self.dtmf_sender
        if sender is not None and sender.busy:
            packets = sender.tick(self.rtp)
            if _idle(sender):
                self._settle_dtmf()
            if packets:
                if sending:
                    for packet in packets:
                        self._send_rtp(packet, now)
                return
        if not sending:
            self.rtp.pause(self._ts_increment)
            return
        rates = self._rates
        if pcm is None:
            if not self.config.send_silence:
                self.rtp.pause(self._ts_increment)
                return
            pcm = self._silence
            if rates is not None and rates.resamples_outgoing:  # the filter's tail, then 0s
                pcm = rates.outgoing(np.zeros(self._app_samples, np.int16), self._frame_samples)
        elif rates is not None and rates.resamples_outgoing:
            pcm = rates.outgoing(pcm, self._frame_samples, self._more)
        assert self._encoder is not None
        payload = self._encoder.encode(pcm)
        rtp = self.rtp
        timestamp = rtp.timestamp
        data = rtp.pack(payload, self._ts_increment)
        self._send_packet(data, rtp.ssrc, timestamp, len(payload), now)

    def _more(self) -> NDArray[np.int16] | None:
        return self.source.pull(self._app_samples)

    def _send_rtp(self, packet: RtpPacket, now: float) -> None:
        self._send_packet(bytes(packet), packet.ssrc, packet.timestamp, len(packet.payload), now)

    def _send_packet(
        self, packet: bytes, ssrc: int, timestamp: int, octets: int, now: float
    ) -> None:
        """Send a serialized RTP packet (through the transform) and count it."""
        params = self.params
        target = self._latched or (params.remote if params is not None else None)
        if target is None:
            return
        data = packet if self._plain else self.transform.outgoing_rtp(packet)
        if data is None:
            self.send_errors += 1
            return
        try:
            self.sockets.rtp.sendto(data, target)
        except OSError:
            self.send_errors += 1
            return
        self.rtcp.sent(ssrc, timestamp, octets, now)
        self.packets_sent += 1
        self.octets_sent += octets

    def _send_rtcp(self, report: bytes) -> None:
        target = self.rtcp_target
        params = self.params
        if target is None or params is None:
            return
        sock = self.sockets.rtp if params.rtcp_mux else self.sockets.rtcp
        if sock is None:
            return
        data = self.transform.outgoing_rtcp(report)
        if data is None:
            self.send_errors += 1
            return
        try:
            sock.sendto(data, target)
        except OSError:
            self.send_errors += 1
            return
        self.rtcp_sent += 1

    def _deliver(self, frame: Frame) -> None:
        rates = self._rates
        if rates is not None and frame.sample_rate != rates.app_rate:
            frame = rates.incoming(frame)
        pcm = frame.pcm
        for recorder in self.recorders:
            if recorder.rate == frame.sample_rate and frame.channels == 1:
                recorder.write(pcm)
        if self.readers:
            self.readers.deliver(frame)
        if self.echo and frame.channels == 1:
            self.source.push(pcm)

    # -- receiving ----------------------------------------------------------------------------
    def _readable(self, sock: socket.socket, rtcp_socket: bool) -> None:
        # ``reads`` datagrams at most per wake-up: the loop's selector is level-triggered,
        # so it calls again while more wait; one (while the agent keeps up) costs no
        # failed read.
        self._read(sock, rtcp_socket, self.reads)

    def _read(self, sock: socket.socket, rtcp_socket: bool, count: int) -> None:
        """Take up to ``count`` datagrams waiting on ``sock``."""
        for _ in range(count):
            try:
                data, addr = sock.recvfrom(MAX_DATAGRAM)
            except OSError:
                return  # nothing (more), or an ICMP error reported on the socket
            now = self.loop.time()
            if len(addr) != 2:  # IPv6: (host, port, flowinfo, scope_id)
                addr = addr[:2]
            try:
                if rtcp_socket:
                    self._on_rtcp(data, addr, now)
                else:
                    self._on_datagram(data, addr, now)
            except Exception:
                self.dropped += 1
                log.exception("dropped an RTP datagram from %s", addr)

    def _latch(self, addr: Address, now: float) -> bool:
        """Whether a packet from ``addr`` is taken; latches to it when it may."""
        if not self.config.latching:
            return True
        latched = self._latched
        if latched == addr:
            self._latched_heard = now
            return True
        if addr == self._stale and latched is None:
            if now - self._latched_heard < self.config.relatch_after:
                self._latched_heard = now
                return True  # taken, not latched to: the peer moved away from it
            self._stale = None
        if latched is None or now - self._latched_heard >= self.config.relatch_after:
            if latched is not None:
                log.info("RTP source moved from %s to %s", latched, addr)
            self._latched = addr
            self._latched_heard = now
            return True
        return False

    def _on_datagram(self, data: bytes, addr: Address, now: float) -> None:
        params = self.params
        if params is None or self.closed:
            return
        if params.rtcp_mux and is_rtcp(data):
            self._on_rtcp(data, addr, now)
            return
        plain = data if self._plain else self.transform.incoming_rtp(data)
        if plain is None:
            self.dropped += 1
            return
        try:
            packet = parse_rtp(plain)
        except MediaFormatError:
            self.dropped += 1
            return
        pt = packet.payload_type
        is_event = pt in params.receive_events
        if not is_event and pt not in params.receive:
            self.dropped += 1
            return
        if not self.active or not self._latch(addr, now):
            self.dropped += 1
            return
        if packet.ssrc == self.rtp.ssrc:
            old = self.rtp.handle_collision(packet.ssrc)  # RFC 3550 §8.2
            if old is not None:
                self._send_rtcp(self.rtcp.bye(now, ssrc=old, reason="SSRC collision"))
        self.packets_received += 1
        self.octets_received += len(packet.payload)
        self._last_rtp = now
        self._timed_out = False
        self.rtcp.received_rtp(packet, now)
        if packet.ssrc != self._remote_ssrc or self._source is None:
            self._remote_ssrc = packet.ssrc
            self._source = self.rtcp.sources.get(packet.ssrc)
        if is_event:
            try:
                self.dtmf_receiver.receive(packet, now)
            except MediaFormatError:
                self.dropped += 1
            self._dtmf_events()
        if params.receives and self.jitter is not None:
            self.jitter.put(packet, now)

    def _on_rtcp(self, data: bytes, addr: Address, now: float) -> None:
        params = self.params
        if params is None or self.closed:
            return
        plain = self.transform.incoming_rtcp(data)
        if plain is None:
            self.dropped += 1
            return
        try:
            packets = self.rtcp.received_rtcp(plain, now)
        except MediaFormatError:
            self.dropped += 1
            return
        self.rtcp_received += 1
        if self.config.latching and not params.rtcp_mux:
            self._rtcp_latched = addr
        for packet in packets:
            if isinstance(packet, SenderReport) and packet.ssrc == self._remote_ssrc:
                self._remote_sent = packet.packet_count

    def _dtmf_events(self) -> None:
        receiver = self.dtmf_receiver
        while (event := receiver.next_event()) is not None:
            if isinstance(event, DtmfDigit):
                self._emit(("dtmf", event.digit))

    # -- DTMF out -----------------------------------------------------------------------------
    @property
    def can_send_events(self) -> bool:
        """Whether RFC 4733 telephone-events were negotiated and we send."""
        params = self.params
        return self.dtmf_sender is not None and params is not None and params.sends

    def send_dtmf(self, digits: str, duration: float) -> asyncio.Future[None]:
        """Queue RFC 4733 events; the future is done when the last one ended."""
        sender = self.dtmf_sender
        if sender is None:
            raise MediaError("telephone-event was not negotiated")
        sender.send(digits, duration=duration)
        done: asyncio.Future[None] = self.loop.create_future()
        self._dtmf_waiters.append(done)
        return done

    def _settle_dtmf(self) -> None:
        waiters, self._dtmf_waiters = self._dtmf_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- statistics and the end ---------------------------------------------------------------
    def stats(self) -> MediaStats:
        """The stream's statistics now."""
        params = self.params
        rtcp = self.rtcp
        source = self._source
        expected = lost = 0
        jitter = 0.0
        if source is not None and not source.sequence.probation:
            expected = source.sequence.expected
            lost = source.sequence.lost
            jitter = source.jitter / source.clock_rate
        block = None
        if self._remote_ssrc is not None:
            block = rtcp.remote_reports.get(self._remote_ssrc)
        if block is None and rtcp.remote_reports:
            block = next(reversed(rtcp.remote_reports.values()))
        clock = params.codec.clock_rate if params is not None else 8000
        jitter_stats = self.jitter.stats if self.jitter is not None else None
        codec = f"{params.codec.name}/{params.codec.clock_rate}" if params is not None else None
        transform = self.transform
        srtp = transform if isinstance(transform, SrtpTransform) else None
        return MediaStats(
            codec=codec,
            packets_sent=self.packets_sent,
            octets_sent=self.octets_sent,
            packets_received=self.packets_received,
            octets_received=self.octets_received,
            packets_expected=expected,
            packets_lost=lost,
            jitter=jitter,
            rtt=rtcp.round_trip_time,
            remote_packets_lost=None if block is None else block.cumulative_lost,
            remote_fraction_lost=None if block is None else block.fraction_lost / 256,
            remote_jitter=None if block is None else block.jitter / clock,
            remote_packets_sent=self._remote_sent,
            concealed=0 if jitter_stats is None else jitter_stats.concealed,
            late=0 if jitter_stats is None else jitter_stats.late,
            rtcp_sent=self.rtcp_sent,
            rtcp_received=self.rtcp_received,
            dropped=self.dropped,
            remote_address=self.target,
            srtp_suite=None if srtp is None else srtp.keys.suite,
            srtp=None if srtp is None else replace(srtp.counters),
        )

    def close(self, now: float) -> None:
        """Stop: RTCP BYE (when media flowed), readers removed, files finished.

        The sockets stay open: their owner releases them.
        """
        if self.closed:
            return
        if self.active and self.params is not None:
            self._send_rtcp(self.rtcp.bye(now))
        self.closed = True
        self.active = False
        self.loop.remove_reader(self.sockets.rtp.fileno())
        if self.sockets.rtcp is not None:
            self.loop.remove_reader(self.sockets.rtcp.fileno())
        self.source.close()
        self.readers.close()
        for recorder in self.recorders:
            recorder.close()
        self._settle_dtmf()
