"""The notifier side of SUBSCRIBE/NOTIFY at the UserAgent level (issue 11).

bob serves ``presence`` (application/pidf+xml) through ``ua.serve`` and
``ua.subscriptions()``; alice subscribes through ``ua.subscribe``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from sipwire import (
    IncomingSubscription,
    LocalProtocolError,
    Request,
    RequestFailed,
    Subscription,
    SubState,
    UserAgent,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

PIDF = "application/pidf+xml"


def _pidf(status: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:bob@127.0.0.1">\n'
        f'  <tuple id="t1"><status><basic>{status}</basic></status></tuple>\n'
        "</presence>\n"
    )


def _uri(ua: UserAgent, user: str) -> str:
    host, port = ua.contact_address
    return f"sip:{user}@{host}:{port}"


def _pair() -> tuple[UserAgent, UserAgent]:
    return (
        UserAgent("sip:alice@127.0.0.1", listen=["udp:127.0.0.1:0"]),
        UserAgent("sip:bob@127.0.0.1", listen=["udp:127.0.0.1:0"]),
    )


async def _next(
    notes: AsyncIterator[tuple[Subscription, Request]],
) -> tuple[Subscription, Request]:
    return await asyncio.wait_for(notes.__anext__(), 5)


async def test_bob_serves_presence_to_alice_then_terminates_it() -> None:
    alice, bob = _pair()
    async with alice, bob:
        bob.serve("presence", content_type=PIDF)
        served: asyncio.Future[IncomingSubscription] = asyncio.get_running_loop().create_future()

        async def serve_one() -> None:
            async for sub in bob.subscriptions():
                assert sub.package == "presence"
                assert sub.subscriber.uri.user == "alice"  # type: ignore[union-attr]
                assert sub.state is SubState.NOTIFY_WAIT
                response = await sub.accept(_pidf("open"))
                assert response.status == 200
                served.set_result(sub)
                return

        server = asyncio.ensure_future(serve_one())
        notes = alice.notifications()
        sub = await alice.subscribe(_uri(bob, "bob"), "presence", accept=PIDF, timeout=5)
        assert sub.state is SubState.ACTIVE
        theirs = await asyncio.wait_for(served, 5)
        await server
        assert theirs.state is SubState.ACTIVE and theirs.expires == 3600

        first_sub, first = await _next(notes)
        assert first_sub is sub and first.headers.get("Content-Type") == PIDF
        assert b"<basic>open</basic>" in first.body

        response = await theirs.notify(_pidf("closed"))  # sent at once, 200 back
        assert response.status == 200
        _, update = await _next(notes)
        assert b"<basic>closed</basic>" in update.body
        assert update.headers.get("Content-Type") == PIDF

        await theirs.terminate("noresource")
        assert theirs.state is SubState.TERMINATED and theirs.reason == "noresource"
        _, final = await _next(notes)
        state = final.subscription_state
        assert state is not None and state.state == "terminated" and state.reason == "noresource"
        assert sub.state is SubState.TERMINATED and sub.reason == "noresource"
        with pytest.raises(LocalProtocolError):
            await theirs.notify(_pidf("open"))  # over


async def test_pending_then_active_and_the_subscriber_leaving() -> None:
    alice, bob = _pair()
    async with alice, bob:
        bob.serve("presence", content_type=PIDF)
        served: list[IncomingSubscription] = []

        async def serve_pending() -> None:
            async for sub in bob.subscriptions():
                await sub.accept(pending=True)
                served.append(sub)

        server = asyncio.ensure_future(serve_pending())
        sub = await alice.subscribe(_uri(bob, "bob"), "presence", timeout=5)
        assert sub.state is SubState.PENDING
        await asyncio.sleep(0.05)
        (theirs,) = served
        await theirs.notify(_pidf("open"), state=SubState.ACTIVE)
        assert sub.state is SubState.ACTIVE
        await alice.unsubscribe(sub)
        assert sub.state is SubState.TERMINATED
        await theirs.wait_terminated(5)
        assert theirs.reason == "timeout"  # an un-SUBSCRIBE expires it at once
        server.cancel()


async def test_rejected_and_unanswered_subscribes() -> None:
    alice, bob = _pair()
    async with alice, bob:
        bob.serve("presence", content_type=PIDF)
        bob.serve("dialog", decision_timeout=0.3)

        async def refuse_presence() -> None:
            async for sub in bob.subscriptions():
                if sub.package == "presence":
                    await sub.reject(403)

        server = asyncio.ensure_future(refuse_presence())
        with pytest.raises(RequestFailed) as refused:
            await alice.subscribe(_uri(bob, "bob"), "presence", timeout=5)
        assert refused.value.status == 403
        with pytest.raises(RequestFailed) as unanswered:
            await alice.subscribe(_uri(bob, "bob"), "dialog", timeout=5)
        assert unanswered.value.status == 480  # nobody decided within decision_timeout
        with pytest.raises(RequestFailed) as unknown:
            await alice.subscribe(_uri(bob, "bob"), "message-summary", timeout=5)
        assert unknown.value.status == 489
        server.cancel()


async def test_close_terminates_the_subscriptions_it_serves() -> None:
    alice, bob = _pair()
    async with alice:
        await bob.start()
        bob.serve("presence", content_type=PIDF)

        async def accept_all() -> None:
            async for sub in bob.subscriptions():
                await sub.accept(_pidf("open"))

        server = asyncio.ensure_future(accept_all())
        sub = await alice.subscribe(_uri(bob, "bob"), "presence", timeout=5)
        await bob.close()
        server.cancel()
        for _ in range(100):
            if sub.state is SubState.TERMINATED:
                break
            await asyncio.sleep(0.02)
        assert sub.state is SubState.TERMINATED and sub.reason == "noresource"
