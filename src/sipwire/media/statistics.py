"""RTCP statistics and timing (RFC 3550 §6.3, §6.4, Appendix A.3, A.7, A.8).

Sans-I/O: every method takes ``now``, the caller's clock in seconds, and
randomness comes from the injected source.

- :class:`SourceStatistics`: what we know of one remote source: the
  sequence state of A.1, the interarrival jitter of A.8, the last SR it sent
  (for LSR/DLSR), and the reception report block of A.3.
- :func:`round_trip_time`: RTT from a report block about us (§6.4.1).
- :func:`rtcp_interval` and :class:`RtcpScheduler`: the transmission
  interval of §6.3 / A.7, with timer reconsideration.
- :class:`RtcpSession`: the three together for one RTP session: it hears our
  RTP packets and the peer's, and its timer says when to send the next
  compound report (SR or RR, then SDES CNAME, §6.1), and what it is.

Our NTP clock is ``now + ntp_offset``: the I/O edge passes an offset that
turns its monotonic clock into wallclock time since 1900; tests leave it 0.
Only differences of it matter for the round-trip time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sipwire.media.rtcp import (
    Bye,
    ReceiverReport,
    ReportBlock,
    RtcpPacket,
    SdesChunk,
    SenderReport,
    SourceDescription,
    compact_ntp,
    ntp_timestamp,
    parse_rtcp,
    serialize_rtcp,
)
from sipwire.media.rtp import (
    MIN_SEQUENTIAL,
    Randomness,
    RtpPacket,
    SequenceTracker,
    random_fraction,
    ts_delta,
)

__all__ = [
    "RTCP_MIN_TIME",
    "RtcpScheduler",
    "RtcpSession",
    "SourceStatistics",
    "rtcp_interval",
    "round_trip_time",
]

RTCP_MIN_TIME: Final = 5.0
"""The minimum report interval of §6.2, in seconds (halved for the first report)."""
RTCP_SENDER_BW_FRACTION: Final = 0.25
RTCP_RCVR_BW_FRACTION: Final = 1 - RTCP_SENDER_BW_FRACTION
COMPENSATION: Final = 2.71828 - 1.5
"""A.7: e - 3/2, what the randomization and reconsideration take away."""
IP_UDP_OVERHEAD: Final = 28
"""Octets of IPv4 and UDP headers counted in the average RTCP size (§6.2)."""
MAX_REPORT_BLOCKS: Final = 31


# ---------------------------------------------------------------- one remote source


class SourceStatistics:
    """Reception statistics of one remote source (RFC 3550 A.1, A.3, A.8)."""

    __slots__ = (
        "_arrival",
        "_last_received",
        "_stamp",
        "clock_rate",
        "fraction_lost",
        "jitter",
        "last_heard",
        "lsr",
        "lsr_time",
        "sequence",
        "ssrc",
    )

    def __init__(
        self, ssrc: int, first_seq: int, clock_rate: int, *, probation: int = MIN_SEQUENTIAL
    ) -> None:
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        self.sequence = SequenceTracker(first_seq, probation)
        """The A.1 sequence state (received, cycles, base ...)."""
        self.jitter = 0.0
        """Interarrival jitter J of A.8, in RTP timestamp units."""
        self.fraction_lost = 0
        """The fraction lost of the last report block made, in 1/256."""
        self.lsr = 0
        """Middle 32 bits of the NTP time of the last SR from this source (0: none)."""
        self.lsr_time: float | None = None
        """When that SR arrived (our clock)."""
        self.last_heard: float | None = None
        self._arrival: float | None = None
        self._stamp = 0
        self._last_received = 0

    def receive(self, seq: int, timestamp: int, now: float) -> bool:
        """Account for an RTP packet; False when A.1 says it is not valid (yet)."""
        self.last_heard = now
        if not self.sequence.update(seq):
            return False
        # A.8: D(i-1, i) = (R_i - R_{i-1}) - (S_i - S_{i-1}) in RTP units, for
        # consecutive arrivals; the 32-bit timestamps enter by a wrap-safe difference.
        arrival = now * self.clock_rate
        previous = self._arrival
        self._arrival = arrival
        if previous is not None:
            d = (arrival - previous) - ts_delta(timestamp, self._stamp)
            if d < 0:
                d = -d
            self.jitter += (d - self.jitter) / 16.0
        self._stamp = timestamp
        return True

    def receive_sr(self, report: SenderReport, now: float) -> None:
        """Remember an SR from this source: its compact NTP time is the next LSR."""
        self.lsr = compact_ntp(report.ntp_timestamp)
        self.lsr_time = now
        self.last_heard = now

    @property
    def cumulative_lost(self) -> int:
        """Packets lost since reception began, clamped to 24 signed bits (A.3)."""
        return max(-0x800000, min(0x7FFFFF, self.sequence.lost))

    @property
    def heard_since_report(self) -> bool:
        """Whether a valid packet arrived since the last report block (§6.4)."""
        return self.sequence.received != self._last_received

    def report_block(self, now: float) -> ReportBlock:
        """The reception report for this source at ``now`` (A.3), starting a new interval."""
        seq = self.sequence
        expected = seq.expected
        expected_interval = expected - seq.expected_prior
        seq.expected_prior = expected
        received_interval = seq.received - seq.received_prior
        seq.received_prior = seq.received
        self._last_received = seq.received
        lost_interval = expected_interval - received_interval
        if expected_interval == 0 or lost_interval <= 0:
            fraction = 0
        else:
            fraction = min(255, (lost_interval << 8) // expected_interval)
        self.fraction_lost = fraction
        dlsr = 0
        if self.lsr_time is not None:
            dlsr = min(0xFFFFFFFF, int((now - self.lsr_time) * 65536))
        return ReportBlock(
            self.ssrc,
            fraction,
            self.cumulative_lost,
            seq.extended_max & 0xFFFFFFFF,
            int(self.jitter) & 0xFFFFFFFF,
            self.lsr,
            dlsr,
        )


def round_trip_time(block: ReportBlock, arrival_ntp: int) -> float | None:
    """RTT in seconds from a report block about us (§6.4.1): A - LSR - DLSR.

    ``arrival_ntp`` is our 64-bit NTP time when the report arrived. None when
    the block has no LSR (the peer has not heard an SR of ours) or the result
    is negative (clocks or a forged report).
    """
    if not block.lsr:
        return None
    rtt = (compact_ntp(arrival_ntp) - block.lsr - block.dlsr) & 0xFFFFFFFF
    if rtt & 0x80000000:
        return None
    return rtt / 65536.0


# ---------------------------------------------------------------- the interval (A.7)


def rtcp_interval(
    members: int,
    senders: int,
    rtcp_bw: float,
    we_sent: bool,
    avg_rtcp_size: float,
    initial: bool,
    random_value: float,
    min_time: float = RTCP_MIN_TIME,
) -> float:
    """The randomized RTCP transmission interval of §6.3.1 (A.7 ``rtcp_interval``).

    ``rtcp_bw`` is the RTCP bandwidth in octets per second (5 % of the
    session bandwidth), ``avg_rtcp_size`` the average compound size in
    octets with IP and UDP headers, ``random_value`` uniform in [0, 1).
    """
    if initial:
        min_time /= 2
    n = members
    if senders <= members * RTCP_SENDER_BW_FRACTION:
        if we_sent:
            rtcp_bw *= RTCP_SENDER_BW_FRACTION
            n = senders
        else:
            rtcp_bw *= RTCP_RCVR_BW_FRACTION
            n -= senders
    t = avg_rtcp_size * max(n, 1) / rtcp_bw
    t = max(t, min_time)
    return t * (random_value + 0.5) / COMPENSATION


class RtcpScheduler:
    """The RTCP timer of §6.3 with forward and reverse reconsideration (A.7).

    ``tp`` is when the last report was sent, ``tn`` when the next is
    scheduled. :meth:`handle_timer` at ``tn`` recomputes the interval with
    the current membership: when ``tp`` plus it has passed, it is time to
    send (True); otherwise the timer moves to the later ``tn``.
    """

    __slots__ = (
        "_random",
        "avg_rtcp_size",
        "initial",
        "members",
        "min_time",
        "pmembers",
        "rtcp_bw",
        "senders",
        "tn",
        "tp",
        "we_sent",
    )

    def __init__(
        self,
        random: Randomness,
        now: float,
        *,
        session_bandwidth: float = 80_000.0,
        rtcp_fraction: float = 0.05,
        min_time: float = RTCP_MIN_TIME,
        initial_size: float = 100.0,
    ) -> None:
        self._random = random
        self.rtcp_bw = session_bandwidth / 8 * rtcp_fraction
        """RTCP bandwidth in octets per second (§6.2: 5 % of the session's)."""
        self.min_time = min_time
        self.members = 2
        """Members, us included; a unicast call has two."""
        self.pmembers = 2
        self.senders = 0
        self.we_sent = False
        self.avg_rtcp_size = initial_size
        self.initial = True
        self.tp = now
        self.tn = now + self._interval()

    def _interval(self) -> float:
        return rtcp_interval(
            self.members,
            self.senders,
            self.rtcp_bw,
            self.we_sent,
            self.avg_rtcp_size,
            self.initial,
            random_fraction(self._random),
            self.min_time,
        )

    def next_timer(self) -> float:
        """When the timer next expires."""
        return self.tn

    def handle_timer(self, now: float) -> bool:
        """A.7 ``OnExpire`` for a report: True when a report should go now.

        The caller then sends it and calls :meth:`sent` with its size.
        """
        if now < self.tn:
            return False
        t = self._interval()
        due = self.tp + t
        self.pmembers = self.members
        if due <= now:
            return True
        self.tn = due
        return False

    def sent(self, size: int, now: float) -> None:
        """A compound packet of ``size`` octets (no IP/UDP headers) went out at ``now``."""
        self.avg_rtcp_size += (size + IP_UDP_OVERHEAD - self.avg_rtcp_size) / 16
        self.tp = now
        self.initial = False
        self.tn = now + self._interval()

    def received(self, size: int) -> None:
        """A compound packet of ``size`` octets arrived (A.7 ``OnReceive``)."""
        self.avg_rtcp_size += (size + IP_UDP_OVERHEAD - self.avg_rtcp_size) / 16

    def member_left(self, now: float) -> None:
        """A member left (BYE, timeout): reverse reconsideration (§6.3.4)."""
        if self.members <= 1:
            return
        self.members -= 1
        if self.members < self.pmembers:
            ratio = self.members / self.pmembers
            self.tn = now + ratio * (self.tn - now)
            self.tp = now - ratio * (now - self.tp)
            self.pmembers = self.members


# ---------------------------------------------------------------- the session


@dataclass(slots=True)
class _Sending:
    ssrc: int
    packet_count: int = 0
    octet_count: int = 0
    last_timestamp: int = 0
    last_time: float = 0.0


class RtcpSession:
    """RTCP for one RTP session (one media stream of a call).

    Feed it every RTP packet we send (:meth:`sent_rtp`) and every valid RTP
    packet we receive (:meth:`received_rtp`); hand it every RTCP datagram
    (:meth:`received_rtcp`). Keep a timer armed for :meth:`next_timer`;
    :meth:`handle_timer` returns the compound packet to send when one is due
    (an SR while we send, an RR otherwise, both followed by SDES CNAME).
    :meth:`bye` makes the final packet (§6.3.7). ``round_trip_time`` is the
    last RTT measured from the peer's reports about us.
    """

    def __init__(
        self,
        random: Randomness,
        ssrc: int,
        cname: str,
        clock_rate: int,
        now: float,
        *,
        ntp_offset: float = 0.0,
        session_bandwidth: float = 80_000.0,
        min_time: float = RTCP_MIN_TIME,
        probation: int = MIN_SEQUENTIAL,
        max_sources: int = 32,
    ) -> None:
        self.cname = cname
        self.clock_rate = clock_rate
        self.ntp_offset = ntp_offset
        self.probation = probation
        self.max_sources = max_sources
        self.scheduler = RtcpScheduler(
            random, now, session_bandwidth=session_bandwidth, min_time=min_time
        )
        self.sources: dict[int, SourceStatistics] = {}
        """Remote sources by SSRC (bounded by ``max_sources``)."""
        self.round_trip_time: float | None = None
        """Seconds, from the last report block about us that had an LSR."""
        self.remote_reports: dict[int, ReportBlock] = {}
        """The last report block each remote source sent about us."""
        self._sending = _Sending(ssrc)
        self._sent_since_report = False
        self._sent_before = False

    @property
    def ssrc(self) -> int:
        """The SSRC we send with (the last one seen in :meth:`sent_rtp`)."""
        return self._sending.ssrc

    def ntp(self, now: float) -> int:
        """Our 64-bit NTP time at ``now``."""
        return ntp_timestamp(now + self.ntp_offset)

    # ------------------------------------------------------------ RTP in and out

    def sent_rtp(self, packet: RtpPacket, now: float) -> None:
        """We sent ``packet`` at ``now`` (counts for the SR, §6.4.1)."""
        self.sent(packet.ssrc, packet.timestamp, len(packet.payload), now)

    def sent(self, ssrc: int, timestamp: int, octets: int, now: float) -> None:
        """We sent an RTP packet of ``octets`` payload octets (:meth:`sent_rtp`, by field)."""
        sending = self._sending
        if ssrc != sending.ssrc:  # a new SSRC (collision): counters restart
            sending = self._sending = _Sending(ssrc)
        sending.packet_count += 1
        sending.octet_count += octets
        sending.last_timestamp = timestamp
        sending.last_time = now
        self._sent_since_report = True

    def received_rtp(self, packet: RtpPacket, now: float) -> bool:
        """A packet from a remote source arrived at ``now``; False if A.1 rejects it."""
        source = self.sources.get(packet.ssrc)
        if source is None:
            if len(self.sources) >= self.max_sources:
                return False
            source = self.sources[packet.ssrc] = SourceStatistics(
                packet.ssrc, packet.sequence_number, self.clock_rate, probation=self.probation
            )
            self.scheduler.members = max(self.scheduler.members, 1 + len(self.sources))
        return source.receive(packet.sequence_number, packet.timestamp, now)

    # ------------------------------------------------------------ RTCP in

    def received_rtcp(self, data: bytes, now: float, *, strict: bool = True) -> list[RtcpPacket]:
        """Parse a compound packet and learn from it; the packets are returned.

        An SR becomes the source's LSR; a report block about us gives the
        RTT; a BYE removes the source (reverse reconsideration). Raises
        MediaFormatError on a malformed datagram.
        """
        packets = parse_rtcp(data, strict=strict)
        self.scheduler.received(len(data))
        for packet in packets:
            if isinstance(packet, SenderReport | ReceiverReport):
                if isinstance(packet, SenderReport):
                    source = self.sources.get(packet.ssrc)
                    if source is not None:
                        source.receive_sr(packet, now)
                for block in packet.reports:
                    if block.ssrc == self._sending.ssrc:
                        self.remote_reports[packet.ssrc] = block
                        rtt = round_trip_time(block, self.ntp(now))
                        if rtt is not None:
                            self.round_trip_time = rtt
            elif isinstance(packet, Bye):
                for ssrc in packet.sources:
                    if self.sources.pop(ssrc, None) is not None:
                        self.scheduler.member_left(now)
        return packets

    # ------------------------------------------------------------ RTCP out

    def next_timer(self) -> float:
        """When :meth:`handle_timer` next wants to run."""
        return self.scheduler.next_timer()

    def handle_timer(self, now: float) -> bytes | None:
        """The compound report to send now, or None (the timer moved on)."""
        scheduler = self.scheduler
        scheduler.we_sent = self._sent_since_report or self._sent_before
        scheduler.senders = (1 if scheduler.we_sent else 0) + sum(
            1 for source in self.sources.values() if source.heard_since_report
        )
        if not scheduler.handle_timer(now):
            return None
        data = serialize_rtcp(self.report(now))
        scheduler.sent(len(data), now)
        return data

    def report(self, now: float) -> list[RtcpPacket]:
        """SR or RR with a block per source heard since the last report, then SDES."""
        heard = [source for source in self.sources.values() if source.heard_since_report]
        blocks = tuple(source.report_block(now) for source in heard[:MAX_REPORT_BLOCKS])
        sending = self._sending
        first: RtcpPacket
        if self._sent_since_report or self._sent_before:
            elapsed = now - sending.last_time
            rtp_ts = (sending.last_timestamp + round(elapsed * self.clock_rate)) & 0xFFFFFFFF
            first = SenderReport(
                sending.ssrc,
                self.ntp(now),
                rtp_ts,
                sending.packet_count & 0xFFFFFFFF,
                sending.octet_count & 0xFFFFFFFF,
                blocks,
            )
        else:
            first = ReceiverReport(sending.ssrc, blocks)
        self._sent_before = self._sent_since_report
        self._sent_since_report = False
        sdes = SourceDescription((SdesChunk.with_cname(sending.ssrc, self.cname),))
        return [first, sdes]

    def bye(self, now: float, *, ssrc: int | None = None, reason: str = "") -> bytes:
        """The last compound packet of a source (§6.3.7): report, SDES, BYE.

        ``ssrc`` is the source that leaves: ours by default, or the old SSRC
        after a collision (§8.2).
        """
        packets = self.report(now)
        packets.append(Bye((self._sending.ssrc if ssrc is None else ssrc,), reason.encode()))
        return serialize_rtcp(packets)
