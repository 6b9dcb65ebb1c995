"""SDES-SRTP between two sipwire agents: the tone gets through encrypted, the
wire never shows its payload, forged and replayed packets are dropped and
counted, re-keying on re-INVITE, and the signalling rules for the keys."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from sipwire import Call, MediaConfig, MediaStats, UserAgent, read_wav, tone
from sipwire.aio.media.session import CallMedia, secure_target
from sipwire.aio.media.transform import SrtpTransform
from sipwire.core.media import MediaError
from sipwire.errors import RequestFailed
from sipwire.media.g711 import G711Encoder
from sipwire.media.rtcp import is_rtcp
from tests.aio.media.helpers import (
    LossyRelay,
    agents,
    connect,
    peak_frequency,
    rtp_config,
    uri_of,
    wait_until,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

SUITE_80 = "AES_CM_128_HMAC_SHA1_80"
SUITE_32 = "AES_CM_128_HMAC_SHA1_32"
TONE_SECONDS = 2.0
TONE_PACKETS = int(TONE_SECONDS / 0.02)


def srtp_media(
    mode: str = "required", suites: tuple[str, ...] = (SUITE_80, SUITE_32), **changes: object
) -> MediaConfig:
    """SRTP over the tests' loopback UDP signalling (the keys' opt-in)."""
    values: dict[str, object] = {
        "codecs": ("PCMU", "telephone-event"),
        "srtp": mode,
        "srtp_suites": suites,
        "srtp_insecure_signalling": True,
    }
    values.update(changes)
    return MediaConfig(**values)  # type: ignore[arg-type]


@dataclass
class WireRelay(LossyRelay):
    """The relay, lossless, keeping every datagram it forwards (the wire as a capture
    shows it) and, on request, forging or replaying A's RTP packets."""

    loss: float = 0.0
    reorder: float = 0.0
    captured: list[bytes] = field(default_factory=list)
    tamper: int = 0
    """A's next RTP packets to forge (one payload bit flipped, the original not sent)."""
    replay: int = 0
    """A's next RTP packets to send twice (the copy a little later)."""
    tampered: int = 0
    replayed: int = 0
    _copies: list[bytes] = field(default_factory=list)

    def _relay(self, data: bytes, source: tuple[str, int]) -> None:
        self.captured.append(data)
        from_a = self.peers.get("a") == source
        if from_a and not is_rtcp(data) and self.tamper > 0:
            self.tamper -= 1
            self.tampered += 1
            forged = bytearray(data)
            forged[20] ^= 0x40  # in the encrypted payload, after the 12-byte header
            data = bytes(forged)
        elif from_a and not is_rtcp(data) and self.replay > 0:
            self.replay -= 1
            self._copies.append(data)
        elif from_a and self._copies and not is_rtcp(data):
            super()._relay(data, source)
            for copy in self._copies:
                self.replayed += 1
                super()._relay(copy, source)
            self._copies.clear()
            return
        super()._relay(data, source)


def tone_needles() -> set[bytes]:
    """Every 16-byte run of the PCMU payload of the tone ``play_tone(1000)`` sends."""
    encoded = G711Encoder("ulaw").encode(tone(1000.0, 0.1, rate=8000, level=0.5))
    return {encoded[i : i + 16] for i in range(len(encoded) - 16)}


def shows_the_tone(captured: list[bytes]) -> int:
    """How many captured datagrams carry a run of the tone's PCMU payload."""
    needles = tone_needles()
    return sum(1 for data in captured if any(needle in data for needle in needles))


async def play_and_record(
    relay: WireRelay | None, suites: tuple[str, ...], tmp: Path
) -> tuple[MediaStats | None, MediaStats | None, NDArray[np.int16]]:
    recording = tmp / "b.wav"
    a_rtp = rtp_config(advertise=relay.advertise_for("a")) if relay else rtp_config()
    b_rtp = rtp_config(advertise=relay.advertise_for("b")) if relay else rtp_config()
    async with agents(a_rtp, b_rtp, a_media=srtp_media(suites=suites), b_media=srtp_media()) as (
        a,
        b,
    ):
        call_a, call_b = await connect(a, b)
        call_b.record(str(recording))
        await call_a.play_tone(1000.0, TONE_SECONDS)
        await asyncio.sleep(0.3)
        await wait_until(lambda: (s := call_b.media_stats()) and s.rtcp_received > 0)
        stats_a, stats_b = call_a.media_stats(), call_b.media_stats()
        await call_a.hangup()
    return stats_a, stats_b, read_wav(recording)


@pytest.mark.parametrize("suite", [SUITE_80, SUITE_32])
async def test_a_tone_over_srtp_is_recorded_and_never_on_the_wire_in_clear(
    suite: str, tmp_path: Path
) -> None:
    relay = WireRelay()
    relay.start()
    try:
        stats_a, stats_b, pcm = await play_and_record(relay, (suite,), tmp_path)
    finally:
        relay.close()
    assert stats_a is not None and stats_b is not None
    assert stats_a.srtp_suite == suite and stats_b.srtp_suite == suite
    assert stats_b.packets_received >= 0.99 * TONE_PACKETS
    assert stats_b.srtp is not None and stats_a.srtp is not None
    assert stats_b.srtp.auth_failures == 0 and stats_b.srtp.replays == 0
    assert stats_b.srtp.unprotected >= stats_b.packets_received + stats_b.rtcp_received
    assert stats_a.srtp.protected >= stats_a.packets_sent
    assert stats_b.rtcp_received > 0 and stats_a.rtcp_received > 0  # SRTCP both ways
    loud = pcm[np.abs(pcm) > 1000]
    assert len(loud) > 0.5 * TONE_SECONDS * 8000
    assert abs(peak_frequency(pcm) - 1000.0) < 10.0
    assert len(relay.captured) >= TONE_PACKETS
    assert shows_the_tone(relay.captured) == 0
    # The tag length tells the suite apart on the wire: 10 bytes (_80) or 4 (_32).
    rtp = [d for d in relay.captured if not is_rtcp(d) and len(d) > 100]
    assert {len(d) for d in rtp} == {12 + 160 + (10 if suite == SUITE_80 else 4)}


async def test_the_same_capture_of_plain_rtp_shows_the_tone(tmp_path: Path) -> None:
    """The control of the test above: without SRTP the tone's bytes are on the wire."""
    relay = WireRelay()
    relay.start()
    try:
        async with agents(
            rtp_config(advertise=relay.advertise_for("a")),
            rtp_config(advertise=relay.advertise_for("b")),
        ) as (a, b):
            call_a, _ = await connect(a, b)
            await call_a.play_tone(1000.0, 0.5)
            stats = call_a.media_stats()
            await call_a.hangup()
    finally:
        relay.close()
    assert stats is not None and stats.srtp is None and stats.srtp_suite is None
    assert shows_the_tone(relay.captured) >= 20


async def test_forged_packets_are_counted_as_auth_failures_and_not_played() -> None:
    relay = WireRelay()
    relay.start()
    try:
        async with agents(
            rtp_config(advertise=relay.advertise_for("a")),
            rtp_config(advertise=relay.advertise_for("b")),
            a_media=srtp_media(),
            b_media=srtp_media(),
        ) as (a, b):
            call_a, call_b = await connect(a, b)
            await wait_until(lambda: (s := call_b.media_stats()) and s.packets_received > 20)
            relay.tamper = 5
            await wait_until(lambda: relay.tampered == 5)
            await wait_until(lambda: (s := call_b.media_stats()) and s.packets_received > 60)
            stats = call_b.media_stats()
            sent = call_a.media_stats()
            await call_a.hangup()
    finally:
        relay.close()
    assert stats is not None and stats.srtp is not None and sent is not None
    assert stats.srtp.auth_failures == 5
    assert stats.srtp.replays == 0
    # Never parsed, never buffered: the five are missing from what was received.
    assert stats.packets_lost == 5
    assert stats.dropped >= 5


async def test_replayed_packets_are_dropped_and_counted() -> None:
    relay = WireRelay()
    relay.start()
    try:
        async with agents(
            rtp_config(advertise=relay.advertise_for("a")),
            rtp_config(advertise=relay.advertise_for("b")),
            a_media=srtp_media(),
            b_media=srtp_media(),
        ) as (a, b):
            call_a, call_b = await connect(a, b)
            await wait_until(lambda: (s := call_b.media_stats()) and s.packets_received > 20)
            relay.replay = 3
            await wait_until(lambda: relay.replayed == 3)
            await wait_until(lambda: (s := call_b.media_stats()) and s.packets_received > 60)
            stats = call_b.media_stats()
            await call_a.hangup()
    finally:
        relay.close()
    assert stats is not None and stats.srtp is not None
    assert stats.srtp.replays == 3
    assert stats.srtp.auth_failures == 0
    assert stats.packets_lost == 0  # the copies counted neither as received nor as lost


async def test_a_reinvite_with_new_keys_rekeys_both_directions(tmp_path: Path) -> None:
    recording = tmp_path / "after.wav"
    async with agents(a_media=srtp_media(), b_media=srtp_media()) as (a, b):
        call_a, call_b = await connect(a, b)
        media_a, media_b = call_a.media, call_b.media
        assert isinstance(media_a, CallMedia) and isinstance(media_b, CallMedia)
        await wait_until(lambda: (s := call_b.media_stats()) and s.packets_received > 10)
        before_a = media_a.stream.transform
        before_b = media_b.stream.transform
        assert isinstance(before_a, SrtpTransform) and isinstance(before_b, SrtpTransform)
        # A re-INVITE that keeps the keys (hold and resume) keeps the SRTP state.
        await call_a.hold()
        await call_a.resume()
        assert media_a.stream.transform is before_a and media_b.stream.transform is before_b
        assert media_a.rekey()
        await call_a.reinvite()
        after_a = media_a.stream.transform
        after_b = media_b.stream.transform
        assert isinstance(after_a, SrtpTransform) and isinstance(after_b, SrtpTransform)
        assert after_a.keys.local_key != before_a.keys.local_key
        assert after_b.keys.remote_key == after_a.keys.local_key
        assert after_b.keys.local_key != before_b.keys.local_key  # the answer re-keys too
        assert after_a.keys.remote_key == after_b.keys.local_key
        received = call_b.media_stats()
        assert received is not None
        call_b.record(str(recording))
        await call_a.play_tone(1000.0, 1.0)
        await asyncio.sleep(0.2)
        stats_b = call_b.media_stats()
        stats_a = call_a.media_stats()
        await call_a.hangup()
    assert stats_a is not None and stats_b is not None and stats_b.srtp is not None
    assert stats_b.packets_received >= received.packets_received + 45
    # Only packets in flight while the keys changed can fail (counted over both keys).
    assert stats_b.srtp.auth_failures <= 5
    pcm = read_wav(recording)
    assert abs(peak_frequency(pcm) - 1000.0) < 10.0


async def test_srtp_required_refuses_a_plain_rtp_peer() -> None:
    async with agents(a_media=srtp_media("required"), b_media=MediaConfig()) as (a, b):
        b.auto_answer()
        with pytest.raises(RequestFailed) as failed:
            await a.call(uri_of(b, "bob"), timeout=5)
        assert failed.value.status == 488
    # And the other way: a required answerer refuses a plain offer.
    async with agents(a_media=MediaConfig(), b_media=srtp_media("required")) as (a, b):
        b.auto_answer()
        with pytest.raises(RequestFailed) as failed:
            await a.call(uri_of(b, "bob"), timeout=5)
        assert failed.value.status == 488


@pytest.mark.parametrize(
    ("a_mode", "b_mode", "secure"),
    [
        ("preferred", "off", False),
        ("preferred", "preferred", True),
        ("preferred", "required", True),
    ],
)
async def test_srtp_preferred_offers_avp_with_crypto(
    a_mode: str, b_mode: str, secure: bool
) -> None:
    b_media = MediaConfig() if b_mode == "off" else srtp_media(b_mode)
    async with agents(a_media=srtp_media(a_mode), b_media=b_media) as (a, b):
        call_a, call_b = await connect(a, b)
        assert call_b.request.body.count(b"m=audio") == 1
        assert b"RTP/AVP" in call_b.request.body and b"a=crypto:" in call_b.request.body
        await wait_until(lambda: (s := call_b.media_stats()) and s.packets_received > 10)
        stats_a, stats_b = call_a.media_stats(), call_b.media_stats()
        await call_a.hangup()
    assert stats_a is not None and stats_b is not None
    assert (stats_a.srtp_suite is not None) is secure
    assert (stats_b.srtp_suite is not None) is secure
    assert stats_b.dropped == 0


async def test_keys_are_not_sent_over_plain_signalling_without_the_opt_in() -> None:
    required = srtp_media("required", srtp_insecure_signalling=False)
    async with agents(a_media=required) as (a, b):
        with pytest.raises(MediaError):
            await a.call(uri_of(b, "bob"), timeout=5)
    preferred = srtp_media("preferred", srtp_insecure_signalling=False)
    async with agents(a_media=preferred, b_media=preferred) as (a, b):
        call_a, call_b = await connect(a, b)
        assert b"a=crypto" not in call_b.request.body
        await wait_until(lambda: (s := call_b.media_stats()) and s.packets_received > 5)
        stats = call_b.media_stats()
        await call_a.hangup()
    assert stats is not None and stats.srtp_suite is None


async def test_srtp_over_tls_signalling_needs_no_opt_in(tmp_path: Path) -> None:
    from sipwire.aio.transport_base import TransportConfig
    from tests.aio.certs import make_pki

    pki = make_pki(tmp_path)
    config = TransportConfig(
        tls_server_context=pki.server_context(), tls_client_context=pki.client_context()
    )
    media = srtp_media("required", srtp_insecure_signalling=False)
    recording = tmp_path / "b.wav"
    async with (
        UserAgent(
            "sips:alice@127.0.0.1",
            listen=["tls:127.0.0.1:0"],
            transport=config,
            rtp=rtp_config(),
            media=media,
        ) as alice,
        UserAgent(
            "sips:bob@127.0.0.1",
            listen=["tls:127.0.0.1:0"],
            transport=config,
            rtp=rtp_config(),
            media=media,
        ) as bob,
    ):
        answering = asyncio.ensure_future(_answer_one(bob))
        host, port = bob.contact_address
        call_a = await alice.call(f"sips:bob@{host}:{port}", timeout=5)
        call_b = await asyncio.wait_for(answering, 5)
        call_b.record(str(recording))
        await call_a.play_tone(1000.0, 1.0)
        await asyncio.sleep(0.2)
        stats = call_b.media_stats()
        await call_a.hangup()
    assert stats is not None and stats.srtp_suite == SUITE_80
    assert abs(peak_frequency(read_wav(recording)) - 1000.0) < 10.0


async def _answer_one(ua: UserAgent) -> Call:
    async for incoming in ua.incoming():
        await incoming.answer()
        return incoming
    raise AssertionError("no call")


async def test_secure_targets() -> None:
    assert secure_target("sips:bob@example.com")
    assert secure_target("<SIPS:bob@example.com>")
    assert secure_target("sip:bob@example.com;transport=tls")
    assert secure_target("sip:bob@example.com;lr;transport=WSS")
    assert not secure_target("sip:bob@example.com")
    assert not secure_target("sip:bob@example.com;transport=tcp")
    assert not secure_target("sip:bob@example.com?x=transport=tls")
