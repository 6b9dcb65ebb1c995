"""Incoming REFERs shown to the application (issue 11): accept, decline, the default.

alice calls bob, then REFERs bob to carol; bob's application sees the REFER in
``call.transfers()`` with its Refer-To and Referred-By and decides.
"""

from __future__ import annotations

import asyncio

import pytest

from sipwire import Call, CallState, RequestFailed, TransferRequest, UserAgent

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


def _uri(ua: UserAgent, user: str) -> str:
    host, port = ua.contact_address
    return f"sip:{user}@{host}:{port}"


def _trio() -> tuple[UserAgent, UserAgent, UserAgent]:
    return (
        UserAgent("sip:alice@127.0.0.1", listen=["udp:127.0.0.1:0"]),
        UserAgent("sip:bob@127.0.0.1", listen=["udp:127.0.0.1:0"]),
        UserAgent("sip:carol@127.0.0.1", listen=["udp:127.0.0.1:0"]),
    )


async def _answered_by(ua: UserAgent) -> asyncio.Future[Call]:
    """Answer the next call to ``ua`` in the application; the future gets the call."""
    got: asyncio.Future[Call] = asyncio.get_running_loop().create_future()

    @ua.on_call
    async def pick_up(call: Call) -> None:
        await call.answer()
        if not got.done():
            got.set_result(call)

    return got


async def test_the_application_declines_a_refer_with_603() -> None:
    alice, bob, carol = _trio()
    async with alice, bob, carol:
        carol.auto_answer()
        bobs = await _answered_by(bob)
        call = await alice.call(_uri(bob, "bob"), timeout=5)
        theirs = await asyncio.wait_for(bobs, 5)
        seen: list[TransferRequest] = []

        async def decline_transfers() -> None:
            async for transfer in theirs.transfers():
                seen.append(transfer)
                await transfer.decline()

        decider = asyncio.ensure_future(decline_transfers())
        with pytest.raises(RequestFailed) as failure:
            await call.transfer(_uri(carol, "carol"), timeout=10)
        assert failure.value.status == 603
        (transfer,) = seen
        assert transfer.refer_to.uri.user == "carol"  # type: ignore[union-attr]
        assert transfer.referred_by is not None
        assert transfer.referred_by.uri.user == "alice"  # type: ignore[union-attr]
        assert transfer.decided and not transfer.attended and transfer.call is theirs
        assert transfer.status == 603
        assert carol.calls_answered == 0
        assert call.state is CallState.CONFIRMED and theirs.state is CallState.CONFIRMED
        await call.hangup()
        await asyncio.wait_for(decider, 5)  # the reader ends with the call


async def test_the_application_accepts_a_refer_and_the_call_moves() -> None:
    alice, bob, carol = _trio()
    async with alice, bob, carol:
        carol.auto_answer()
        bobs = await _answered_by(bob)
        call = await alice.call(_uri(bob, "bob"), timeout=5)
        theirs = await asyncio.wait_for(bobs, 5)
        new_calls: list[Call] = []

        async def accept_transfers() -> None:
            async for transfer in theirs.transfers():
                new_calls.append(await transfer.accept())

        decider = asyncio.ensure_future(accept_transfers())
        status = await call.transfer(_uri(carol, "carol"), timeout=10)
        assert status == 200
        await call.wait_ended(5)  # bob hangs up on alice once carol answered
        assert call.session.end_reason == "BYE received"
        (moved,) = new_calls
        await moved.wait_answered(5)
        assert moved.direction == "out" and moved.remote.uri.user == "carol"  # type: ignore[union-attr]
        assert moved.request.headers.get("Referred-By") is not None
        assert moved in bob.calls and carol.calls_answered == 1
        await asyncio.wait_for(decider, 5)
        await moved.hangup()


async def test_an_undecided_refer_is_declined_after_the_decision_timeout() -> None:
    alice, bob, carol = _trio()
    bob.transfer_decision_timeout = 0.3
    async with alice, bob, carol:
        carol.auto_answer()
        bobs = await _answered_by(bob)
        call = await alice.call(_uri(bob, "bob"), timeout=5)
        theirs = await asyncio.wait_for(bobs, 5)
        started = asyncio.get_running_loop().time()
        with pytest.raises(RequestFailed) as failure:
            await call.transfer(_uri(carol, "carol"), timeout=10)
        assert failure.value.status == 603
        assert asyncio.get_running_loop().time() - started >= 0.25
        (shown,) = [e for e in theirs.transfer_events if isinstance(e, TransferRequest)]
        assert shown.decided and shown.status == 603
        assert carol.calls_answered == 0


async def test_auto_answered_calls_decline_transfers_unless_told_to_follow() -> None:
    alice, bob, carol = _trio()
    async with alice, bob, carol:
        carol.auto_answer()
        bob.auto_answer()
        call = await alice.call(_uri(bob, "bob"), timeout=5)
        with pytest.raises(RequestFailed) as failure:
            await call.transfer(_uri(carol, "carol"), timeout=5)
        assert failure.value.status == 603
        bob.auto_answer(accept_transfers=True)
        assert await call.transfer(_uri(carol, "carol"), timeout=10) == 200
        await call.wait_ended(5)
        assert carol.calls_answered == 1
