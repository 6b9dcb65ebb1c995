"""The answer memo: a first offer seen before is answered without parsing or negotiating.

Whatever answered it, the memo or the full path (``receive_offer`` of the
parsed offer), the answer's bytes, the negotiated streams and every attribute
of the negotiator must be the same, and so must everything that follows:
re-offers from the peer, hold, resume, our own offers. Calls answered from
one entry share nothing that either of them may change.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest

from sipwire.core.media import MediaError
from sipwire.core.sdp_media import SdpMedia
from sipwire.sdp import (
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    Codec,
    Direction,
    OfferAnswer,
    OfferAnswerError,
    SdpError,
    SessionDescription,
    parse_sdp,
)
from sipwire.sdp.answer_memo import Answered, AnswerMemo, answer_memo
from tests.sdp.test_sdp_fastpath import ANSWERS, CONFIGS, OFFERS, _media, _text

Make = Callable[[int, int], OfferAnswer]
"""A negotiator for a call: (our audio port, session id) -> OfferAnswer."""


def _from_config(name: str) -> Make:
    def make(port: int, session_id: int) -> OfferAnswer:
        media = SdpMedia(
            CONFIGS[name],
            address="192.0.2.10",
            audio_port=port,
            video_port=port + 10000,
            session_id=session_id,
        )
        return media.negotiator

    return make


def _direct(address: str = "192.0.2.20", video: bool = True, **options: Any) -> Make:
    def make(port: int, session_id: int) -> OfferAnswer:
        video_port = port + 10000 if video else None
        return OfferAnswer(address, port, video_port=video_port, session_id=session_id, **options)

    return make


MAKERS: dict[str, Make] = {
    **{f"config-{name}": _from_config(name) for name in CONFIGS},
    "plain": _direct(),
    "no-video": _direct(video=False),
    "single-codec": _direct(single_codec=True),
    "recvonly": _direct(direction=Direction.RECVONLY, session_version=41),
    "savp-too": _direct(protos=("RTP/AVP", "RTP/SAVP"), audio_codecs=(PCMA, PCMU)),
    "ipv6": _direct(address="2001:db8::7", username="%d%s", session_name="100% sip %(a)s"),
}


@pytest.fixture(autouse=True)
def _empty_memo() -> Iterator[None]:
    answer_memo.clear()
    yield
    answer_memo.clear()


def _full(oa: OfferAnswer, body: bytes) -> tuple[bytes, bool]:
    """The full path, as SdpMedia took it before the memo."""
    answer = oa.receive_offer(parse_sdp(body), copy=False)
    return bytes(answer), any(m.port != 0 for m in answer.media)


def _warm(make: Make, body: bytes) -> OfferAnswer:
    """Two calls with this offer: the second one's answer goes into the memo (it is returned)."""
    make(4000, 1).receive_offer_bytes(body)
    builder = make(4002, 2)
    builder.receive_offer_bytes(body)
    return builder


def _hit(make: Make, body: bytes, port: int = 5000, session_id: int = 3) -> OfferAnswer:
    """A negotiator answered from the memo (it must be)."""
    before = answer_memo.hits
    oa = make(port, session_id)
    oa.receive_offer_bytes(body)
    assert answer_memo.hits == before + 1
    return oa


def _assert_same(a: OfferAnswer, b: OfferAnswer) -> None:
    """Every attribute, public and private, the same (by value)."""
    assert vars(a) == vars(b)
    assert a.negotiated == b.negotiated
    assert a.local_description == b.local_description
    assert a.remote_description == b.remote_description
    assert (a.state, a.session_version, a.on_hold) == (b.state, b.session_version, b.on_hold)
    assert (a._local is a._last_sent) == (b._local is b._last_sent)


Step = Callable[[OfferAnswer], object]


def _outcome(step: Step, oa: OfferAnswer) -> object:
    """What ``step`` returned (descriptions as bytes) or raised."""
    try:
        result = step(oa)
    except (SdpError, OfferAnswerError) as exc:
        return type(exc), str(exc), exc.status
    return bytes(result) if isinstance(result, SessionDescription) else result


@pytest.mark.parametrize("maker", list(MAKERS))
@pytest.mark.parametrize("offer", list(OFFERS))
def test_a_memo_hit_is_the_full_answer(maker: str, offer: str) -> None:
    make, body = MAKERS[maker], OFFERS[offer]
    _warm(make, body)
    for port, session_id in ((5000, 3), (5002, 3), (4002, 9)):  # 4002: the entry's own port
        hit = make(port, session_id)
        before = answer_memo.hits
        got = hit.receive_offer_bytes(bytes(bytearray(body)))  # an equal body, not the same object
        assert answer_memo.hits == before + 1
        reference = make(port, session_id)
        assert got == _full(reference, body)
        _assert_same(hit, reference)


def _peer_answer(offer: bytes) -> SessionDescription:
    return parse_sdp(_full(OfferAnswer("198.51.100.9", 7000, video_port=7002), offer)[0])


def _follow_ups(body: bytes) -> list[Step]:
    """What a call does after its first answer: re-INVITEs both ways, hold, resume."""

    def our_offer(make: Callable[[OfferAnswer], SessionDescription]) -> Step:
        def step(oa: OfferAnswer) -> object:
            offer = bytes(make(oa))
            return offer, oa.receive_answer(_peer_answer(offer))

        return step

    return [
        lambda oa: oa.receive_offer_bytes(body),  # the same offer again (no longer the first)
        lambda oa: oa.receive_offer_bytes(body + b"a=sendonly\r\n"),  # the peer holds us
        lambda oa: oa.receive_offer_bytes(OFFERS["hold_sendonly"]),
        lambda oa: oa.receive_offer_bytes(OFFERS["baresip"]),
        our_offer(OfferAnswer.hold),
        our_offer(OfferAnswer.resume),
        our_offer(OfferAnswer.create_offer),
        lambda oa: oa.receive_offer(parse_sdp(body)),
        lambda oa: (oa.local_description, oa.remote_description),
    ]


@pytest.mark.parametrize("maker", ["config-default", "config-video", "single-codec", "ipv6"])
@pytest.mark.parametrize("offer", list(OFFERS))
def test_what_follows_a_memo_hit_is_what_follows_the_full_answer(maker: str, offer: str) -> None:
    make, body = MAKERS[maker], OFFERS[offer]
    _warm(make, body)
    hit = _hit(make, body)
    reference = make(5000, 3)
    _full(reference, body)
    for step in _follow_ups(body):
        assert _outcome(step, hit) == _outcome(step, reference)
        _assert_same(hit, reference)


def _snapshot(*objects: object) -> Any:
    return copy.deepcopy(objects)


def test_calls_answered_from_one_entry_share_nothing_they_change() -> None:
    make, body = MAKERS["config-video"], OFFERS["linphone"]
    builder = _warm(make, body)  # the call whose answer is in the memo
    entry = next(iter(answer_memo._entries.values()))
    assert entry.offer is builder._remote
    kept = _snapshot(entry.offer, entry.streams, entry.negotiated, entry.media, entry.template)
    first, second = _hit(make, body, 5000), _hit(make, body, 5002)
    expected = _snapshot(vars(second))
    for oa in (first, builder):  # everything a call may do afterwards
        for step in _follow_ups(body):
            _outcome(step, oa)
        description = oa.local_description
        assert description is not None
        description.media[0].attributes.clear()  # a copy: changes nothing
    assert _snapshot(vars(second)) == expected
    assert (
        _snapshot(entry.offer, entry.streams, entry.negotiated, entry.media, entry.template) == kept
    )
    third = _hit(make, body, 5002)
    reference = make(5002, 3)
    _full(reference, body)
    _assert_same(third, reference)
    assert third._remote is second._remote  # shared: nothing changes it
    assert third._local is not second._local and third._local is not None
    assert second._local is not None
    assert all(a is not b for a, b in zip(third._local.media, second._local.media, strict=True))


def test_sdp_media_answers_from_the_memo_and_a_hold_does_not_leak() -> None:
    for config, offer in ANSWERS:
        expected = ANSWERS[config, offer]
        for call in range(4):  # the third and the fourth from the memo
            media = _media(config)
            if isinstance(expected, str):
                with pytest.raises(MediaError) as failure:
                    media.receive_offer(OFFERS[offer])
                assert f"{failure.value.status} {failure.value.reason}" == expected
            else:
                assert media.receive_offer(OFFERS[offer]) == _text(expected)
            assert media.remote == OFFERS[offer]
            if call == 2 and isinstance(expected, tuple):  # holds the peer: not the next call
                media.receive_answer(bytes(_peer_answer(media.hold())))
                assert media.on_hold
    assert answer_memo.hits == 2 * len(ANSWERS)


def test_the_memo_is_bounded() -> None:
    for i in range(10_000):
        body = OFFERS["sipp"].replace(b"2353687637", str(i).encode())
        for _ in range(2):  # twice: each goes into the memo
            OfferAnswer("192.0.2.1", 4000).receive_offer_bytes(body)
    assert len(answer_memo) == answer_memo.max_entries == 256
    assert len(answer_memo._seen) <= answer_memo.max_entries
    assert answer_memo.hits == 0 and answer_memo.misses == 20_000


def test_a_long_offer_bypasses_the_memo() -> None:
    expected = ANSWERS["default", "baresip"]
    assert isinstance(expected, tuple)
    padding = b"".join(b"a=x-pad:%04d\r\n" % i for i in range(400))
    body = OFFERS["baresip"] + padding
    assert len(body) > answer_memo.max_offer_bytes
    answers = {_media().receive_offer(body) for _ in range(4)}
    assert answers == {_text(expected)}
    assert len(answer_memo) == 0 and answer_memo.hits == answer_memo.misses == 0
    lines = (answer_memo.max_offer_bytes - len(OFFERS["baresip"])) // len(b"a=x-pad:0000\r\n")
    short = OFFERS["baresip"] + padding[: lines * len(b"a=x-pad:0000\r\n")]
    assert answer_memo.max_offer_bytes - 14 < len(short) <= answer_memo.max_offer_bytes
    for _ in range(3):
        assert _media().receive_offer(short) == _text(expected)
    assert len(answer_memo) == 1 and answer_memo.hits == 1


def test_offers_that_do_not_parse_are_not_kept() -> None:
    body = OFFERS["sipp"].replace(b"m=audio 6000", b"m=audio 70000")
    for _ in range(3):
        media = _media()
        with pytest.raises(MediaError) as failure:
            media.receive_offer(body)
        assert (failure.value.status, failure.value.reason) == (
            488,
            "line 6: port 70000 out of range",
        )
        assert media.negotiator.state.value == "idle" and media.remote is None
    assert len(answer_memo) == 0


def test_only_a_first_offer_is_answered_from_the_memo() -> None:
    make, body = MAKERS["plain"], OFFERS["baresip"]
    _warm(make, body)
    oa = _hit(make, body)
    hits = answer_memo.hits
    oa.receive_offer_bytes(body)  # a re-INVITE with the same offer
    oa.receive_answer(_peer_answer(bytes(oa.hold())))
    offered = make(5000, 3)
    offered.create_offer()
    offered.cancel_offer()  # idle again, but it has offered: its version rules apply
    reference = make(5000, 3)
    reference.create_offer()
    reference.cancel_offer()
    assert offered.receive_offer_bytes(body) == _full(reference, body)
    _assert_same(offered, reference)
    pending, reference = make(5000, 3), make(5000, 3)
    for oa in (pending, reference):  # an offer not yet answered: the next one is an error
        oa.set_remote_offer(parse_sdp(body))
    with pytest.raises(OfferAnswerError) as failure:
        pending.receive_offer_bytes(body)
    assert failure.value.status == 500
    with pytest.raises(OfferAnswerError):
        _full(reference, body)
    _assert_same(pending, reference)
    assert answer_memo.hits == hits


def test_configurations_do_not_share_entries() -> None:
    body = OFFERS["linphone"]
    for _ in range(3):
        for name, make in MAKERS.items():
            got = make(6000, 4)
            reference = make(6000, 4)
            assert got.receive_offer_bytes(body) == _full(reference, body), name
            _assert_same(got, reference)
    assert answer_memo.hits == len(MAKERS)
    assert len(answer_memo) == len(MAKERS)

    class Reversed(OfferAnswer):
        def _intersect(self, local: Any, offered: Any) -> list[Codec]:
            return list(reversed(super()._intersect(local, offered)))

    answers = {bytes(Reversed("192.0.2.20", 6000).receive_offer_bytes(body)[0]) for _ in range(3)}
    assert answers == {_full(Reversed("192.0.2.20", 6000), body)[0]}
    assert answers != {_full(OfferAnswer("192.0.2.20", 6000), body)[0]}


def test_codec_tuples_built_per_call_and_odd_values_are_answered_in_full() -> None:
    body = OFFERS["baresip"]
    for _ in range(4):
        codecs = [PCMU, PCMA, TELEPHONE_EVENT]  # a new tuple each call: by identity, a new key
        got = OfferAnswer("192.0.2.1", 4000, audio_codecs=codecs)
        reference = OfferAnswer("192.0.2.1", 4000, audio_codecs=codecs)
        assert got.receive_offer_bytes(body) == _full(reference, body)
        _assert_same(got, reference)
    # (A freed tuple's id may come again: then the entry keeps the new tuple alive.)
    answer_memo.clear()
    for _ in range(3):  # str(True) is not "%d" % True: not from the memo
        odd = OfferAnswer("192.0.2.1", 4000, session_id=True)
        data, accepted = odd.receive_offer_bytes(body)
        reference = OfferAnswer("192.0.2.1", 4000, session_id=True)
        assert (data, accepted) == _full(reference, body)
        assert b"o=- True True IN IP4" in data
    # Names that break the layout: no template (the check of its output catches the
    # second), full answers.
    for name, user in (("x\r\nm=audio 9 RTP/AVP 0", "-"), ("sipwire", "a\r\nb")):
        for _ in range(3):
            got = OfferAnswer("192.0.2.1", 4000, session_name=name, username=user)
            reference = OfferAnswer("192.0.2.1", 4000, session_name=name, username=user)
            assert got.receive_offer_bytes(body) == _full(reference, body)
            _assert_same(got, reference)
    assert len(answer_memo) == 0
    assert answer_memo.hits == 0


def test_least_recently_used_go_first_and_a_key_is_admitted_when_missed_twice() -> None:
    memo = AnswerMemo(max_entries=2)
    entry = cast(Answered, object())  # the memo does not look inside
    assert memo.admit(("a",)) is False and memo.admit(("a",)) is True
    assert memo.admit(("a",)) is False  # noted again
    for key in ("a", "b", "c"):
        memo.put((key,), entry)
    assert memo.get(("a",)) is None and len(memo) == 2
    assert memo.get(("b",)) is entry  # b is now the most recently used
    memo.put(("d",), entry)
    assert memo.get(("c",)) is None and memo.get(("b",)) is entry and memo.get(("d",)) is entry
    assert (memo.hits, memo.misses) == (3, 2)
    for number in range(10):
        memo.admit((number,))
    assert len(memo._seen) == 2
    memo.clear()
    assert len(memo) == 0 and not memo._seen and memo.hits == memo.misses == 0
