"""G.711 µ-law and A-law against the Recommendation's tables, and its PLC.

The expected decoder outputs are written from the segment tables of ITU-T
G.711 (Tables 1 and 2: per segment, the first output value and the step),
not from the bit formulas the implementation uses.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pytest
from numpy.typing import NDArray

from sipwire.media import g711
from sipwire.media.g711 import (
    ALAW_TO_LINEAR,
    ULAW_TO_LINEAR,
    G711Concealer,
    G711Decoder,
    G711Encoder,
    Law,
    alaw_decode,
    alaw_encode,
    ulaw_decode,
    ulaw_encode,
)

Encode = Callable[[NDArray[np.generic]], bytes]
Decode = Callable[[bytes], NDArray[np.int16]]

# µ-law (G.711 Table 2), 14-bit scale: segment -> (first output, step)
ULAW_SEGMENTS = [
    (0, 2),
    (33, 4),
    (99, 8),
    (231, 16),
    (495, 32),
    (1023, 64),
    (2079, 128),
    (4191, 256),
]
# A-law (G.711 Table 1), 13-bit scale
ALAW_SEGMENTS = [(1, 2), (33, 2), (66, 4), (132, 8), (264, 16), (528, 32), (1056, 64), (2112, 128)]


def expected_ulaw() -> dict[int, int]:
    table = {}
    for segment, (first, step) in enumerate(ULAW_SEGMENTS):
        for q in range(16):
            value = (first + step * q) * 4  # 14-bit to 16-bit
            positive = 0xFF - (segment << 4) - q  # codes are the inverted sign|segment|step
            table[positive] = value
            table[positive & 0x7F] = -value
    return table


def expected_alaw() -> dict[int, int]:
    table = {}
    for segment, (first, step) in enumerate(ALAW_SEGMENTS):
        for q in range(16):
            value = (first + step * q) * 8  # 13-bit to 16-bit
            raw = (segment << 4) | q
            table[(0x80 | raw) ^ 0x55] = value  # even bits inverted
            table[raw ^ 0x55] = -value
    return table


def sine(freq: float, amplitude: float, samples: int, rate: int = 8000) -> NDArray[np.int16]:
    return np.rint(amplitude * np.sin(2 * np.pi * freq * np.arange(samples) / rate)).astype(
        np.int16
    )


def snr_db(reference: NDArray[np.int16], decoded: NDArray[np.int16]) -> float:
    ref = reference.astype(np.float64)
    noise = ref - decoded.astype(np.float64)
    return float(10 * np.log10(np.sum(ref**2) / np.sum(noise**2)))


class TestTables:
    def test_all_256_ulaw_codes(self) -> None:
        table = expected_ulaw()
        assert len(table) == 256
        for code in range(256):
            assert ULAW_TO_LINEAR[code] == table[code], hex(code)

    def test_all_256_alaw_codes(self) -> None:
        table = expected_alaw()
        assert len(table) == 256
        for code in range(256):
            assert ALAW_TO_LINEAR[code] == table[code], hex(code)

    @pytest.mark.parametrize(
        ("law", "code", "value"),
        [
            ("ulaw", 0xFF, 0), ("ulaw", 0x7F, 0), ("ulaw", 0xFE, 8), ("ulaw", 0x7E, -8),
            ("ulaw", 0x80, 32124), ("ulaw", 0x00, -32124), ("ulaw", 0xEF, 132),
            ("alaw", 0xD5, 8), ("alaw", 0x55, -8), ("alaw", 0xAA, 32256), ("alaw", 0x2A, -32256),
            ("alaw", 0xD4, 24),
        ],
    )  # fmt: skip
    def test_known_values(self, law: str, code: int, value: int) -> None:
        table = ULAW_TO_LINEAR if law == "ulaw" else ALAW_TO_LINEAR
        assert table[code] == value

    def test_decoding_is_symmetric_with_distinct_levels(self) -> None:
        for table, zeros in ((ULAW_TO_LINEAR, 2), (ALAW_TO_LINEAR, 0)):
            values = table.astype(np.int32)
            assert sorted(values[values >= 0]) == sorted(-values[values <= 0])
            assert len(set(values.tolist())) == 256 - max(zeros - 1, 0)

    def test_tables_are_read_only(self) -> None:
        with pytest.raises(ValueError):
            ULAW_TO_LINEAR[0] = 1


class TestEncode:
    @pytest.mark.parametrize(
        ("encode", "decode"), [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)]
    )
    def test_every_16_bit_value_quantizes_to_the_nearest_level(
        self, encode: Encode, decode: Decode
    ) -> None:
        x = np.arange(-32768, 32768, dtype=np.int32)
        codes = np.frombuffer(encode(x.astype(np.int16)), np.uint8)
        decoded = decode(codes.tobytes()).astype(np.int32)
        # The code's level is the nearest one, within the one's-complement offset
        # of the negative side (at most one 13/14-bit unit) and the clipping at the top.
        levels = np.unique(decode(bytes(range(256))).astype(np.int32))
        nearest = levels[np.abs(x[:, None] - levels[None, :]).argmin(axis=1)]
        unit = 8 if encode is alaw_encode else 4
        assert np.all(np.abs(decoded - nearest) <= 2 * unit + np.abs(decoded) // 16)
        # monotonic: a larger input never decodes smaller
        assert np.all(np.diff(decoded) >= 0)

    def test_codes_round_trip(self) -> None:
        codes = bytes(range(256))
        assert alaw_encode(alaw_decode(codes)) == codes
        ulaw = ulaw_encode(ulaw_decode(codes))
        assert ulaw == codes.replace(b"\x7f", b"\xff")  # -0 encodes as +0

    @pytest.mark.parametrize(
        ("encode", "decode"), [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)]
    )
    def test_sine_round_trip(self, encode: Encode, decode: Decode) -> None:
        for amplitude in (30000, 8000, 1000):
            pcm = sine(1000, amplitude, 8000) + sine(333, amplitude / 10, 8000)
            decoded = decode(encode(pcm))
            assert decoded.dtype == np.int16
            assert len(decoded) == len(pcm)
            # G.711's companding keeps about 37 dB of SNR over a wide range of levels.
            assert snr_db(pcm, decoded) > 33
            err = np.abs(decoded.astype(np.int32) - pcm)
            assert np.all(err <= np.abs(pcm.astype(np.int32)) // 16 + 16)

    def test_other_dtypes_are_rounded_and_clipped(self) -> None:
        floats = np.array([0.4, 40000.0, -40000.0, 100.6])
        assert ulaw_encode(floats) == ulaw_encode(np.array([0, 32767, -32768, 101], np.int16))
        ints = np.array([5, 70000], np.int64)
        assert alaw_encode(ints) == alaw_encode(np.array([5, 32767], np.int16))

    def test_empty(self) -> None:
        assert ulaw_encode(np.zeros(0, np.int16)) == b""
        assert len(alaw_decode(b"")) == 0


class TestConcealment:
    def test_fades_to_silence_after_60_ms(self) -> None:
        decoder = G711Decoder("ulaw")
        tone = sine(250, 10000, 160)
        for _ in range(3):
            decoder.decode(G711Encoder("ulaw").encode(tone))
        concealed = np.concatenate([decoder.conceal() for _ in range(5)])  # 100 ms
        assert len(concealed) == 800
        peaks = [
            int(np.abs(concealed[i : i + 80].astype(np.int32)).max()) for i in range(0, 800, 80)
        ]
        assert peaks[0] > 9000  # the first 10 ms at full level, then 20 % less per 10 ms
        assert all(a > b for a, b in itertools.pairwise(peaks[:6]))
        assert peaks[5] < 0.25 * peaks[0]
        assert not any(peaks[6:])  # silence from 60 ms on

    def test_continues_a_periodic_signal(self) -> None:
        # A 200 Hz tone (pitch 40 samples): the substitute continues the waveform.
        plc = G711Concealer()
        tone = sine(200, 8000, 800)
        plc.update(tone[:480])
        concealed = plc.conceal(80)
        assert np.abs(concealed.astype(np.int32) - tone[480:560]).max() < 400

    def test_first_good_frame_is_merged(self) -> None:
        plc = G711Concealer()
        tone = sine(200, 8000, 1200)
        plc.update(tone[:400])
        plc.conceal(160)
        merged = plc.update(tone[560:720])
        assert plc.erased == 0
        # 4 ms + 4 ms for the second 10 ms = 64 samples of overlap-add, then the frame itself
        assert np.array_equal(merged[64:], tone[624:720])
        # The overlap starts from the (attenuated) substitute in phase with the tone.
        head = merged[:64].astype(np.float64)
        reference = tone[560:624].astype(np.float64)
        assert (
            np.dot(head, reference) / np.sqrt(np.dot(head, head) * np.dot(reference, reference))
            > 0.99
        )
        assert np.abs(head - reference).max() < 0.25 * 8000

    def test_silence_before_any_frame(self) -> None:
        plc = G711Concealer()
        assert not plc.conceal(160).any()
        decoder = G711Decoder("alaw", plc=False)
        decoder.decode(b"\xd5" * 80)
        assert len(decoder.conceal()) == 80
        assert not decoder.conceal().any()

    def test_codec_objects(self) -> None:
        pcm = sine(1000, 5000, 160)
        for law in ("ulaw", "alaw"):
            payload = G711Encoder(law).encode(pcm)
            assert len(payload) == 160
            decoded = G711Decoder(law).decode(payload)
            assert snr_db(pcm, decoded) > 30


@pytest.mark.skipif(not g711.ACCELERATED, reason="built without the C look-ups")
@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_the_c_look_ups_match_the_numpy_ones(law: Law) -> None:
    """The optional C module only indexes g711.py's tables: every code and every
    sample (contiguous or a strided view) gives what numpy's take gives."""
    decoder, encoder = G711Decoder(law, plc=False), G711Encoder(law)
    table = ULAW_TO_LINEAR if law == "ulaw" else ALAW_TO_LINEAR
    codes = bytes(range(256))
    decoded = decoder.decode(codes)
    assert decoded.dtype == np.int16
    assert np.array_equal(decoded, table.take(np.frombuffer(codes, np.uint8)))
    decoded[0] = 1  # writable: the concealment blends into frames it returned
    samples = np.arange(-32768, 32768, dtype=np.int16)
    reference = g711._encode_numpy(encoder._table, samples)
    assert encoder.encode(samples) == reference
    assert encoder.encode(samples[::3]) == reference[::3]
    encode = ulaw_encode if law == "ulaw" else alaw_encode
    assert encode(samples) == reference
