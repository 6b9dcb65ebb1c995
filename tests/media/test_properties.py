"""Property tests: RTP and RTCP round-trip; bytes from anywhere raise only
MediaFormatError; the stateful parts never raise and stay bounded whatever
packets they are fed."""

from __future__ import annotations

import contextlib
import random

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipwire.media.codecs import PCMU
from sipwire.media.dtmf import DtmfDigit, DtmfReceiver, TelephoneEvent
from sipwire.media.errors import MediaFormatError
from sipwire.media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from sipwire.media.jitter import JitterBuffer
from sipwire.media.rtcp import (
    AppPacket,
    Bye,
    ReceiverReport,
    ReportBlock,
    RtcpPacket,
    SdesChunk,
    SenderReport,
    SourceDescription,
    UnknownRtcp,
    parse_rtcp,
    serialize_rtcp,
)
from sipwire.media.rtp import RtpExtension, RtpPacket, parse_rtp
from sipwire.media.statistics import RtcpSession

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
words = st.integers(0, 6).flatmap(lambda n: st.binary(min_size=4 * n, max_size=4 * n))

rtp_packets = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127),
    sequence_number=u16,
    timestamp=u32,
    ssrc=u32,
    payload=st.binary(max_size=300),
    marker=st.booleans(),
    csrcs=st.lists(u32, max_size=15).map(tuple),
    extension=st.none() | st.builds(RtpExtension, profile=u16, data=words),
    padding=u8,
)

report_blocks = st.builds(
    ReportBlock,
    ssrc=u32,
    fraction_lost=u8,
    cumulative_lost=st.integers(-0x800000, 0x7FFFFF),
    highest_sequence=u32,
    jitter=u32,
    lsr=u32,
    dlsr=u32,
)
blocks = st.lists(report_blocks, max_size=6).map(tuple)  # up to 31: tests/media/test_rtcp.py
sender_reports = st.builds(
    SenderReport,
    ssrc=u32,
    ntp_timestamp=st.integers(0, (1 << 64) - 1),
    rtp_timestamp=u32,
    packet_count=u32,
    octet_count=u32,
    reports=blocks,
    extension=words,
)
receiver_reports = st.builds(ReceiverReport, ssrc=u32, reports=blocks, extension=words)
sdes_items = st.tuples(st.integers(1, 255), st.binary(max_size=255))
sdes = st.builds(
    SourceDescription,
    chunks=st.lists(
        st.builds(SdesChunk, ssrc=u32, items=st.lists(sdes_items, max_size=4).map(tuple)),
        max_size=6,
    ).map(tuple),
)
byes = st.builds(Bye, sources=st.lists(u32, max_size=6).map(tuple), reason=st.binary(max_size=255))
apps = st.builds(
    AppPacket,
    subtype=st.integers(0, 31),
    ssrc=u32,
    name=st.binary(min_size=4, max_size=4),
    data=words,
)
unknown = st.builds(
    UnknownRtcp, packet_type=st.integers(205, 255), count=st.integers(0, 31), body_bytes=words
)
any_rtcp: st.SearchStrategy[RtcpPacket] = st.one_of(
    sender_reports, receiver_reports, sdes, byes, apps, unknown
)
compounds = st.tuples(
    st.one_of(sender_reports, receiver_reports), st.lists(any_rtcp, max_size=4)
).map(lambda t: [t[0], *t[1]])


@st.composite
def mutated(draw: st.DrawFn, valid: st.SearchStrategy[bytes]) -> bytes:
    data = bytearray(draw(valid))
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        choice = draw(st.integers(0, 2))
        at = draw(st.integers(0, len(data) - 1))
        if choice == 0:
            data[at] = draw(u8)
        elif choice == 1:
            del data[at:]
        else:
            data.insert(at, draw(u8))
    return bytes(data)


class TestRtp:
    @SETTINGS
    @given(rtp_packets)
    def test_round_trip(self, packet: RtpPacket) -> None:
        assert parse_rtp(bytes(packet)) == packet

    @SETTINGS
    @given(st.binary(max_size=400) | mutated(rtp_packets.map(bytes)))
    def test_bytes_parse_or_raise_the_packages_error(self, data: bytes) -> None:
        try:
            packet = parse_rtp(data)
        except MediaFormatError:
            return
        assert parse_rtp(bytes(packet)) == packet


class TestRtcp:
    @SETTINGS
    @given(compounds, st.sampled_from([0, 4, 8, 252]))
    def test_round_trip(self, packets: list[RtcpPacket], padding: int) -> None:
        data = serialize_rtcp(packets, padding=padding)
        assert len(data) % 4 == 0
        assert parse_rtcp(data) == packets

    @SETTINGS
    @given(any_rtcp)
    def test_single_packets_round_trip(self, packet: RtcpPacket) -> None:
        assert parse_rtcp(bytes(packet), strict=False) == [packet]

    @SETTINGS
    @given(st.binary(max_size=400) | mutated(compounds.map(serialize_rtcp)), st.booleans())
    def test_bytes_parse_or_raise_the_packages_error(self, data: bytes, strict: bool) -> None:
        with contextlib.suppress(MediaFormatError):
            parse_rtcp(data, strict=strict)

    @settings(SETTINGS, max_examples=100)
    @given(st.lists(st.binary(max_size=200) | compounds.map(serialize_rtcp), max_size=4))
    def test_session_takes_anything(self, datagrams: list[bytes]) -> None:
        session = RtcpSession(random.Random(1), 5, "x", 8000, 0.0)
        for i, data in enumerate(datagrams):
            with contextlib.suppress(MediaFormatError):
                session.received_rtcp(data, float(i))
        assert session.handle_timer(100.0) is None or session.next_timer() > 100.0


class TestPayloads:
    @SETTINGS
    @given(st.binary(max_size=400))
    def test_g711_decodes_any_bytes(self, data: bytes) -> None:
        for decode in (ulaw_decode, alaw_decode):
            pcm = decode(data)
            assert pcm.dtype == np.int16 and len(pcm) == len(data)

    @SETTINGS
    @given(st.lists(st.integers(-32768, 32767), max_size=400))
    def test_g711_encodes_any_samples(self, samples: list[int]) -> None:
        pcm = np.array(samples, np.int16)
        for encode, decode in ((ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)):
            codes = encode(pcm)
            assert len(codes) == len(samples)
            assert encode(decode(codes)) == codes or encode is ulaw_encode

    @SETTINGS
    @given(st.binary(max_size=12))
    def test_telephone_event_parses_or_raises(self, data: bytes) -> None:
        try:
            event = TelephoneEvent.parse(data)
        except MediaFormatError:
            assert len(data) < 4
        else:
            assert bytes(event)[0] == data[0]


packet_streams = st.lists(
    st.tuples(
        st.floats(0.0, 0.2),  # time step
        st.integers(-5, 40),  # sequence step (reorder, duplicate, jump)
        st.integers(-1000, 5000),  # timestamp step
        st.sampled_from([0, 0, 0, 8, 101]),  # payload type
        st.sampled_from([1, 1, 1, 1, 2]),  # SSRC
        st.binary(max_size=200),
    ),
    max_size=150,
)


class TestStateful:
    @SETTINGS
    @given(packet_streams)
    def test_jitter_buffer_never_raises_and_stays_bounded(self, stream: list[tuple]) -> None:  # type: ignore[type-arg]
        jb = JitterBuffer({0: PCMU.decoder()}, max_packets=8)
        now, seq, ts = 0.0, 1000, 5000
        last_due = -1.0
        for step, dseq, dts, pt, ssrc, payload in stream:
            now += step
            seq, ts = (seq + dseq) & 0xFFFF, (ts + dts) & 0xFFFFFFFF
            jb.put(RtpPacket(pt, seq, ts, ssrc, payload), now)
            assert jb.depth <= 8
            while (due := jb.next_timer()) is not None and due <= now:
                assert due >= last_due
                last_due = due
                frame = jb.get(now)
                if frame is None:
                    break
                assert frame.pcm.dtype == np.int16
        stats = jb.stats
        assert min(stats.lost, stats.late, stats.duplicates, stats.concealed) >= 0

    @SETTINGS
    @given(st.lists(st.tuples(st.integers(0, 6), u16, st.binary(max_size=8)), max_size=60))
    def test_dtmf_receiver_reports_each_timestamp_at_most_once(
        self, packets: list[tuple[int, int, bytes]]
    ) -> None:
        receiver = DtmfReceiver()
        timestamps = set()
        reported = []
        for i, (ts_step, seq, payload) in enumerate(packets):
            ts = 1000 + 400 * ts_step
            try:
                receiver.receive(RtpPacket(101, seq, ts, 7, payload), i * 0.02)
            except MediaFormatError:
                continue
            timestamps.add(ts)
            while (event := receiver.next_event()) is not None:
                if isinstance(event, DtmfDigit):
                    reported.append(event.timestamp)
        assert len(reported) == len(set(reported))
        assert set(reported) <= timestamps
