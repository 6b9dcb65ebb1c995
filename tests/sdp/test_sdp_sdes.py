"""SDES-SRTP in offer/answer (RFC 4568 with RFC 3264): SdesOfferAnswer."""

from __future__ import annotations

import itertools

import pytest

from sipwire.sdp import (
    OfferAnswer,
    SdesOfferAnswer,
    SdpError,
    SrtpKeys,
    SrtpMode,
    parse_sdp,
)
from sipwire.sdp.crypto import crypto_attributes

S80 = "AES_CM_128_HMAC_SHA1_80"
S32 = "AES_CM_128_HMAC_SHA1_32"
GCM = "AEAD_AES_128_GCM"


class Keys:
    """A deterministic key source: 0x01 0x01 ..., then 0x02 ... (one byte value per key)."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def __call__(self, n: int) -> bytes:
        return bytes([next(self._counter) % 256]) * n


def sdes(
    mode: SrtpMode = "required", suites: tuple[str, ...] = (S80, S32), port: int = 4000
) -> SdesOfferAnswer:
    return SdesOfferAnswer("127.0.0.1", port, mode=mode, suites=suites, key_source=Keys())


def exchange(offerer: OfferAnswer, answerer: OfferAnswer) -> tuple[bytes, bytes]:
    offer = bytes(offerer.create_offer())
    answer, _ = answerer.receive_offer_bytes(offer)
    offerer.receive_answer(parse_sdp(answer))
    return offer, answer


def agreed(negotiator: OfferAnswer) -> SrtpKeys | None:
    return negotiator.negotiated[0].srtp


def test_required_offers_savp_with_a_line_per_suite() -> None:
    offer = sdes("required", (S80, S32, GCM)).create_offer()
    md = offer.media[0]
    assert md.proto == "RTP/SAVP"
    lines = crypto_attributes(md.get_all("crypto"))
    assert [(line.tag, line.suite) for line in lines] == [(1, S80), (2, S32), (3, GCM)]
    assert [len(line.key_salt) for line in lines] == [30, 30, 28]


def test_preferred_offers_avp_carrying_crypto() -> None:
    md = sdes("preferred").create_offer().media[0]
    assert md.proto == "RTP/AVP"
    assert len(md.get_all("crypto")) == 2


def test_both_sides_agree_on_the_suite_and_the_keys_of_each_direction() -> None:
    a, b = sdes(suites=(S80, S32)), sdes(suites=(S32,), port=5000)
    _, answer = exchange(a, b)
    keys_a, keys_b = agreed(a), agreed(b)
    assert keys_a is not None and keys_b is not None
    assert (keys_a.suite, keys_a.tag) == (keys_b.suite, keys_b.tag) == (S32, 2)
    assert keys_a.local_key == keys_b.remote_key and keys_a.remote_key == keys_b.local_key
    assert keys_a.local_key != keys_a.remote_key
    assert len(parse_sdp(answer).media[0].get_all("crypto")) == 1
    assert "key" not in repr(keys_a).replace("SrtpKeys", "")  # keys stay out of logs


def test_a_reoffer_keeps_the_keys_and_a_rekey_changes_both() -> None:
    a, b = sdes(), sdes(port=5000)
    exchange(a, b)
    first = agreed(a)
    exchange(a, b)  # a refresh (or hold/resume): the same keys
    assert agreed(a) == first and agreed(b) is not None
    a.rekey()
    exchange(a, b)
    second_a, second_b = agreed(a), agreed(b)
    assert first is not None and second_a is not None and second_b is not None
    assert second_a.local_key != first.local_key
    assert second_a.remote_key != first.remote_key  # the answer re-keyed too
    assert second_a.remote_key == second_b.local_key
    exchange(a, b)
    assert agreed(a) == second_a


def test_the_answerer_rekeys_when_the_offer_changes_its_key() -> None:
    a, b = sdes(), sdes(port=5000)
    exchange(a, b)
    before = agreed(b)
    b.rekey()
    exchange(b, a)  # b offers now, with new keys: a answers with a new key too
    after_a, after_b = agreed(a), agreed(b)
    assert before is not None and after_a is not None and after_b is not None
    assert after_b.local_key != before.local_key and after_b.remote_key != before.remote_key
    assert after_a.local_key == after_b.remote_key


def test_required_refuses_an_answer_without_crypto() -> None:
    a = sdes("required")
    offer = a.create_offer()
    plain = OfferAnswer("127.0.0.1", 5000, protos=("RTP/AVP", "RTP/SAVP"))
    answer = plain.receive_offer(offer)
    with pytest.raises(SdpError) as refused:
        a.receive_answer(answer)
    assert refused.value.status == 488


def test_preferred_takes_a_plain_answer_as_plain_rtp() -> None:
    a = sdes("preferred")
    exchange(a, OfferAnswer("127.0.0.1", 5000))
    assert agreed(a) is None and not a.negotiated[0].rejected


def test_an_answer_naming_a_tag_not_offered_is_refused() -> None:
    a, b = sdes(), sdes(port=5000)
    offer = a.create_offer()
    answer = b.receive_offer(offer)
    text = bytes(answer).replace(b"a=crypto:1 ", b"a=crypto:7 ")
    with pytest.raises(SdpError):
        a.receive_answer(parse_sdp(text))


def test_a_plain_negotiator_rejects_savp_and_answers_avp_crypto_plainly() -> None:
    answer, _ = OfferAnswer("127.0.0.1", 5000).receive_offer_bytes(
        bytes(sdes("required").create_offer())
    )
    assert parse_sdp(answer).media[0].port == 0
    answer, _ = OfferAnswer("127.0.0.1", 5000).receive_offer_bytes(
        bytes(sdes("preferred").create_offer())
    )
    md = parse_sdp(answer).media[0]
    assert md.port == 5000 and not md.get_all("crypto")


@pytest.mark.parametrize("mode", ["required", "preferred"])
def test_an_offer_without_usable_crypto(mode: SrtpMode) -> None:
    b = sdes(mode, port=5000)
    plain_offer = OfferAnswer("127.0.0.1", 4000).create_offer()
    answer = b.receive_offer(plain_offer)
    assert (answer.media[0].port == 0) is (mode == "required")
    # RTP/SAVP with only suites b does not do: rejected in either mode.
    gcm_only = sdes("required", (GCM,)).create_offer()
    assert sdes(mode, (S80,), port=5000).receive_offer(gcm_only).media[0].port == 0


def test_answers_never_come_from_the_memo() -> None:
    offer = bytes(sdes().create_offer())
    answers = set()
    for port in (5000, 5000, 5000):
        b = SdesOfferAnswer("127.0.0.1", port, mode="required", suites=(S80,), key_source=Keys())
        b2 = SdesOfferAnswer(
            "127.0.0.1", port, mode="required", suites=(S80,), key_source=lambda n: b"\x07" * n
        )
        answers.add(b.receive_offer_bytes(offer)[0])
        answers.add(b2.receive_offer_bytes(offer)[0])
    assert len(answers) == 2  # each follows its own key source


def test_bad_configuration() -> None:
    with pytest.raises(ValueError):
        SdesOfferAnswer("127.0.0.1", 4000, mode="required", suites=("NOPE",), key_source=Keys())
    with pytest.raises(ValueError):
        SdesOfferAnswer("127.0.0.1", 4000, mode="maybe", suites=(S80,), key_source=Keys())  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        SdesOfferAnswer(
            "127.0.0.1", 4000, mode="required", suites=(S80,), key_source=lambda n: b"x"
        ).create_offer()


def test_a_rekey_survives_a_refused_offer() -> None:
    a, b = sdes(), sdes(port=5000)
    exchange(a, b)
    first = agreed(a)
    a.rekey()
    refused = a.create_offer()
    a.cancel_offer()  # 491 or 488: the offer never took effect
    again = a.create_offer()
    assert again.media[0].get_all("crypto") == refused.media[0].get_all("crypto")
    a.receive_answer(b.receive_offer(again))
    now = agreed(a)
    assert first is not None and now is not None and now.local_key != first.local_key
