"""The codec registry, ptime negotiation, and the audio frame."""

from __future__ import annotations

import numpy as np
import pytest

from sipwire.media.codecs import (
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    CodecRegistry,
    G711Codec,
    TelephoneEventFormat,
    default_registry,
    is_codec,
    negotiate_ptime,
)
from sipwire.media.errors import MediaError
from sipwire.media.frame import Frame


class TestRegistry:
    def test_defaults(self) -> None:
        registry = default_registry()
        assert len(registry) == 3
        assert registry.get("pcmu", 8000) is PCMU
        assert registry.get("PCMA", 8000, 1) is PCMA
        assert registry.get("Telephone-Event", 8000) is TELEPHONE_EVENT
        assert registry.get("PCMU", 16000) is None
        assert registry.codec("PCMU", 8000) is PCMU
        assert registry.codec("telephone-event", 8000) is None  # not audio
        assert registry.by_payload_type(8) is PCMA
        assert registry.by_payload_type(101) is TELEPHONE_EVENT
        assert registry.by_payload_type(9) is None
        assert registry.codecs() == [PCMU, PCMA]
        assert list(registry) == [PCMU, PCMA, TELEPHONE_EVENT]
        assert ("pcma", 8000, 1) in registry
        assert "pcma" not in registry

    def test_registering_a_wideband_codec(self) -> None:
        # G.722's quirk (RFC 3551 §4.5.2): 8000 in SDP, 16 kHz audio. Its key is the SDP's.
        g722 = G711Codec("G722", 9, "ulaw", clock_rate=8000, sample_rate=16000)
        registry = default_registry()
        registry.register(g722)
        assert registry.codec("g722", 8000) is g722
        assert g722.frame_samples(20) == 320
        assert g722.timestamp_increment(20) == 160
        with pytest.raises(MediaError):
            registry.register(G711Codec("g722", 9, "alaw"))  # same key
        registry.register(PCMU, replace=True)
        assert len(registry) == 4

    def test_fresh_registries_are_independent(self) -> None:
        a, b = default_registry(), CodecRegistry()
        a.register(TelephoneEventFormat(clock_rate=48000))
        assert len(a) == 4 and len(b) == 0

    def test_kinds(self) -> None:
        assert is_codec(PCMU)
        assert not is_codec(TELEPHONE_EVENT)
        assert (PCMU.payload_type, PCMA.payload_type, TELEPHONE_EVENT.payload_type) == (0, 8, 101)
        assert TELEPHONE_EVENT.fmtp == "0-16"


class TestPtime:
    @pytest.mark.parametrize(
        ("ptime", "maxptime", "chosen"),
        [
            (None, None, 20),
            (30, None, 30),
            (20, 10, 10),
            (25, None, 20),  # G.711 frames here are whole 10 ms
            (5, None, 10),
            (1000, None, 120),
            (0, 0, 20),
            (60, 40, 40),
        ],
    )
    def test_negotiate(self, ptime: int | None, maxptime: int | None, chosen: int) -> None:
        assert negotiate_ptime(PCMU, ptime, maxptime) == chosen

    def test_frames(self) -> None:
        assert PCMU.frame_samples(20) == 160
        assert PCMA.timestamp_increment(30) == 240

    def test_codec_objects_round_trip(self) -> None:
        pcm = np.rint(5000 * np.sin(np.arange(160) / 3)).astype(np.int16)
        for codec in (PCMU, PCMA):
            payload = codec.encoder().encode(pcm)
            assert len(payload) == codec.frame_samples(20)
            decoder = codec.decoder()
            assert (decoder.sample_rate, decoder.channels) == (8000, 1)
            assert np.abs(decoder.decode(payload).astype(int) - pcm).max() < 200
            assert len(decoder.conceal()) == 160


class TestFrame:
    def test_properties(self) -> None:
        frame = Frame(np.zeros(320, np.int16), 16000, timestamp=8000, clock_rate=8000)
        assert (frame.samples, frame.duration, frame.time) == (320, 0.02, 1.0)
        stereo = Frame(np.zeros(1920, np.int16), 48000, channels=2)
        assert (stereo.samples, stereo.duration) == (960, 0.02)
        assert Frame(np.zeros(8, np.int16), 8000, timestamp=4000).time == 0.5
        silence = Frame.silence(160, 8000, 7)
        assert silence.concealed and not silence.pcm.any() and silence.timestamp == 7
