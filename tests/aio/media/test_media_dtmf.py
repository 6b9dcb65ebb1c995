"""DTMF between two sipwire agents: RFC 4733 when telephone-event is negotiated,
SIP INFO ``application/dtmf-relay`` when it is not; both arrive in order."""

from __future__ import annotations

import asyncio

import pytest

from sipwire import Call, DtmfReceived, MediaConfig
from tests.aio.media.helpers import agents, connect

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

DIGITS = "0123456789*#ABCD"


async def _collect(call: Call, count: int) -> list[str]:
    digits: list[str] = []
    async for digit in call.dtmf():
        digits.append(digit)
        if len(digits) == count:
            break
    return digits


async def _methods(call: Call, count: int) -> list[str]:
    methods: list[str] = []
    async for event in call.events():
        if isinstance(event, DtmfReceived):
            methods.append(event.method)
            if len(methods) == count:
                break
    return methods


async def test_rfc4733_digits_arrive_in_order() -> None:
    async with agents() as (a, b):
        call_a, call_b = await connect(a, b)
        media_a = call_a.media
        assert media_a is not None and media_a.stream.can_send_events
        reading = asyncio.ensure_future(_collect(call_b, len(DIGITS)))
        methods = asyncio.ensure_future(_methods(call_b, len(DIGITS)))
        await call_a.send_dtmf(DIGITS, duration=60)
        digits = await asyncio.wait_for(reading, 5)
        assert "".join(digits) == DIGITS
        assert await asyncio.wait_for(methods, 5) == ["rfc4733"] * len(DIGITS)
        # No INFO went: the digits travelled in the RTP stream.
        assert not [r for r in call_b.info if r.method == "INFO"]
        await call_a.hangup()


async def test_info_digits_arrive_in_order_without_telephone_event() -> None:
    async with agents(b_media=MediaConfig(codecs=("PCMU", "PCMA"))) as (a, b):
        call_a, call_b = await connect(a, b)
        media_a = call_a.media
        assert media_a is not None and not media_a.stream.can_send_events
        reading = asyncio.ensure_future(_collect(call_b, len(DIGITS)))
        methods = asyncio.ensure_future(_methods(call_b, len(DIGITS)))
        await call_a.send_dtmf(DIGITS)
        digits = await asyncio.wait_for(reading, 5)
        assert "".join(digits) == DIGITS
        assert await asyncio.wait_for(methods, 5) == ["info"] * len(DIGITS)
        assert len([r for r in call_b.info if r.method == "INFO"]) == len(DIGITS)
        await call_a.hangup()


async def test_info_can_be_chosen_when_telephone_event_was_negotiated() -> None:
    async with agents() as (a, b):
        call_a, call_b = await connect(a, b)
        reading = asyncio.ensure_future(_collect(call_b, 3))
        await call_a.send_dtmf("9#*", method="info")
        assert "".join(await asyncio.wait_for(reading, 5)) == "9#*"
        await call_a.hangup()


async def test_a_bad_digit_is_refused_before_anything_is_sent() -> None:
    async with agents() as (a, b):
        call_a, _ = await connect(a, b)
        with pytest.raises(ValueError):
            await call_a.send_dtmf("12X")
        await call_a.hangup()
