"""The application API of the asyncio user agent (issue 11): call tracking and close(),
call events with several readers, unclaimed calls, typed state errors, hold state,
public types, and the one timeout rule. Everything on loopback."""

from __future__ import annotations

import asyncio
import inspect
import socket
import types
import typing
from collections.abc import Iterator

import pytest

import sipwire
from sipwire import (
    Call,
    CallEvent,
    CallState,
    CallStateChanged,
    CallStateError,
    HoldChanged,
    HoldState,
    IncomingSubscription,
    LocalProtocolError,
    RequestFailed,
    SubState,
    TransferRequest,
    UserAgent,
)

pytestmark = pytest.mark.timeout(60)


def _uri(ua: UserAgent, user: str) -> str:
    host, port = ua.contact_address
    return f"sip:{user}@{host}:{port}"


def _pair() -> tuple[UserAgent, UserAgent]:
    return (
        UserAgent("sip:alice@127.0.0.1", listen=["udp:127.0.0.1:0"]),
        UserAgent("sip:bob@127.0.0.1", listen=["udp:127.0.0.1:0"]),
    )


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A UDP port where nothing ever answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


async def _eventually(check: typing.Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


# -- 1. every call is tracked, and close() ends each one -------------------------------------
@pytest.mark.asyncio
async def test_auto_answered_calls_are_tracked_and_dropped_when_they_end() -> None:
    alice, bob = _pair()
    async with alice, bob:
        bob.auto_answer()
        call = await alice.call(_uri(bob, "bob"), timeout=5)
        (theirs,) = bob.calls
        assert theirs.direction == "in" and theirs.auto
        await _eventually(lambda: theirs.state is CallState.CONFIRMED)
        await call.hangup()
        await theirs.wait_ended(5)
        assert bob.calls == [] and bob._calls == {} and bob._auto_sessions == set()
        assert bob.calls_completed == 1


@pytest.mark.asyncio
async def test_auto_answered_calls_leave_nothing_behind_without_being_looked_at() -> None:
    alice, bob = _pair()
    async with alice, bob:
        bob.auto_answer()
        for _ in range(20):
            call = await alice.call(_uri(bob, "bob"), timeout=5)
            await call.hangup()
        await _eventually(lambda: bob.calls_completed == 20)
        assert bob._auto_sessions == set() and bob._calls == {}


@pytest.mark.asyncio
async def test_close_sends_bye_for_an_auto_answered_call() -> None:
    alice, bob = _pair()
    async with alice:
        await bob.start()
        bob.auto_answer()
        call = await alice.call(_uri(bob, "bob"), timeout=5)
        await asyncio.sleep(0.1)  # the ACK reaches bob
        await bob.close()
        await call.wait_ended(5)
        assert call.session.end_reason == "BYE received"


@pytest.mark.asyncio
async def test_close_sends_bye_for_an_answered_call_and_487_for_a_ringing_one() -> None:
    alice, bob = _pair()
    async with alice:
        await bob.start()

        @bob.on_call
        async def handle(call: Call) -> None:
            if call.request.headers.get("X-Answer") == "yes":
                await call.answer()
            else:
                call.claimed = True
                await call.ring()

        up = await alice.call(_uri(bob, "bob"), headers=[("X-Answer", "yes")], timeout=5)
        ringing = asyncio.ensure_future(alice.call(_uri(bob, "bob"), timeout=10))
        await _eventually(lambda: any(c.state is CallState.EARLY for c in alice.calls))
        await bob.close()
        await up.wait_ended(5)
        assert up.session.end_reason == "BYE received"
        with pytest.raises(RequestFailed) as failure:
            await ringing
        assert failure.value.status == 487


@pytest.mark.asyncio
async def test_close_cancels_an_outgoing_call_that_rings() -> None:
    alice, bob = _pair()
    async with bob:
        await alice.start()
        rang: list[Call] = []

        @bob.on_call
        async def ring_only(call: Call) -> None:
            call.claimed = True
            await call.ring()
            rang.append(call)

        placing = asyncio.ensure_future(alice.call(_uri(bob, "bob"), timeout=10))
        await _eventually(lambda: bool(rang) and alice.calls[0].state is CallState.EARLY)
        await alice.close()
        await rang[0].wait_ended(5)
        assert rang[0].end_status == 487  # bob saw the CANCEL
        with pytest.raises(RequestFailed) as failure:
            await placing
        assert failure.value.status == 487  # cancelled locally


# -- 4. events with two readers, unclaimed handlers, unsubscribe, state errors ------------------
async def _collect(call: Call) -> list[CallEvent]:
    return [event async for event in call.events()]


@pytest.mark.asyncio
async def test_two_readers_of_events_each_get_every_event_and_both_end() -> None:
    alice, bob = _pair()
    async with alice, bob:
        bob.auto_answer()
        call = await alice.call(_uri(bob, "bob"), timeout=5)
        first = asyncio.ensure_future(_collect(call))
        second = asyncio.ensure_future(_collect(call))
        await asyncio.sleep(0.05)
        await call.send_info("Signal=1\r\nDuration=100\r\n")
        await call.hangup()
        one, two = await asyncio.wait_for(asyncio.gather(first, second), 5)
        assert one == two
        states = [e.state for e in one if isinstance(e, CallStateChanged)]
        assert states[-1] is CallState.TERMINATED and CallState.CONFIRMED in states
        late = await asyncio.wait_for(_collect(call), 2)  # a reader after the end ends too
        assert late == one


@pytest.mark.asyncio
async def test_on_call_handler_that_returns_without_answering_gets_480() -> None:
    alice, bob = _pair()
    async with alice, bob:
        bob.unclaimed_timeout = 0.3

        @bob.on_call
        async def look_only(call: Call) -> None:
            await call.ring()

        with pytest.raises(RequestFailed) as failure:
            await alice.call(_uri(bob, "bob"), timeout=10)
        assert failure.value.status == 480


@pytest.mark.asyncio
async def test_ring_reject_answer_in_the_wrong_state_raise_call_state_error() -> None:
    alice, bob = _pair()
    async with alice, bob:
        answered: list[Call] = []

        @bob.on_call
        async def pick_up(call: Call) -> None:
            await call.answer()
            answered.append(call)

        call = await alice.call(_uri(bob, "bob"), timeout=5)
        for attempt in (call.ring(), call.reject(), call.answer()):
            with pytest.raises(CallStateError) as error:
                await attempt
            assert isinstance(error.value, LocalProtocolError)
            assert error.value.state is CallState.CONFIRMED
        await _eventually(lambda: bool(answered))
        with pytest.raises(CallStateError):
            await answered[0].answer()  # twice
        await call.hangup()
        await answered[0].wait_ended(5)
        with pytest.raises(CallStateError):
            await call.hold()


@pytest.mark.asyncio
async def test_unsubscribe_returns_once_the_subscription_ended() -> None:
    alice, bob = _pair()
    async with alice, bob:
        bob.serve("presence")

        async def accept_all() -> None:
            async for sub in bob.subscriptions():
                await sub.accept("open")

        server = asyncio.ensure_future(accept_all())
        sub = await alice.subscribe(_uri(bob, "bob"), "presence", timeout=5)
        assert sub.state is SubState.ACTIVE
        await alice.unsubscribe(sub)
        assert sub.state is SubState.TERMINATED
        server.cancel()


# -- 5. hold state -----------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_hold_state_and_hold_events_on_both_sides() -> None:
    alice, bob = _pair()
    async with alice, bob:
        answered: list[Call] = []

        @bob.on_call
        async def pick_up(call: Call) -> None:
            await call.answer()
            answered.append(call)

        call = await alice.call(_uri(bob, "bob"), timeout=5)
        await _eventually(lambda: bool(answered))
        theirs = answered[0]
        assert call.hold_state is HoldState.NONE and theirs.hold_state is HoldState.NONE
        await call.hold()
        assert call.hold_state is HoldState.LOCAL
        assert theirs.hold_state is HoldState.REMOTE
        await call.resume()
        assert call.hold_state is HoldState.NONE and theirs.hold_state is HoldState.NONE
        await call.hangup()
        events = await asyncio.wait_for(_collect(theirs), 5)
        changes = [(e.previous, e.state) for e in events if isinstance(e, HoldChanged)]
        assert changes == [
            (HoldState.NONE, HoldState.REMOTE),
            (HoldState.REMOTE, HoldState.NONE),
        ]
        mine = [
            e.state for e in await asyncio.wait_for(_collect(call), 5) if isinstance(e, HoldChanged)
        ]
        assert mine == [HoldState.LOCAL, HoldState.NONE]


# -- 6. public types ---------------------------------------------------------------------------
def _classes(hint: object) -> Iterator[object]:
    if isinstance(hint, list):  # the parameters of a Callable
        for item in hint:
            yield from _classes(item)
        return
    origin = typing.get_origin(hint)
    if origin is None:
        yield hint
        return
    if origin not in (typing.Union, types.UnionType):
        yield origin
    for arg in typing.get_args(hint):
        yield from _classes(arg)


def test_every_type_in_a_public_signature_is_importable_from_sipwire() -> None:
    for name in (
        "CallEvent",
        "CallStateChanged",
        "MediaChanged",
        "InDialogRequest",
        "HoldChanged",
        "HoldState",
        "TransferRequest",
        "TransferProgress",
        "CallReplaced",
        "IncomingSubscription",
        "Registration",
        "RegistrationState",
        "Subscription",
        "SubState",
        "CallState",
        "CallStateError",
    ):
        assert name in sipwire.__all__ and hasattr(sipwire, name), name
    exported = {id(getattr(sipwire, name)) for name in sipwire.__all__}
    namespace = {name: getattr(sipwire, name) for name in sipwire.__all__}
    allowed_modules = {"builtins", "typing", "collections.abc", "types"}
    endpoint_side = {"handle", "handle_timer", "next_timer"}  # what the Endpoint drives
    for cls in (UserAgent, Call, TransferRequest, IncomingSubscription):
        for name, member in inspect.getmembers(cls):
            constructor = name == "__init__" and cls is UserAgent  # the others come from it
            if (name.startswith("_") and not constructor) or name in endpoint_side:
                continue
            function = member.fget if isinstance(member, property) else member
            if not inspect.isfunction(function):
                continue
            hints = typing.get_type_hints(function, localns=namespace)
            for hint in hints.values():
                for kind in _classes(hint):
                    if kind is None or kind is type(None):
                        continue
                    module = getattr(kind, "__module__", "")
                    assert id(kind) in exported or module in allowed_modules, (
                        f"{cls.__name__}.{name} names {kind!r}, not importable from sipwire"
                    )


# -- 7. one timeout rule -----------------------------------------------------------------------
@pytest.mark.asyncio
async def test_request_timeout_raises_408_with_the_time(silent_port: int) -> None:
    async with UserAgent("sip:alice@127.0.0.1", listen=["udp:127.0.0.1:0"]) as alice:
        target = f"sip:nobody@127.0.0.1:{silent_port}"
        for attempt in (
            alice.request("OPTIONS", target, timeout=0.3),
            alice.message(target, "hello?", timeout=0.3),
            alice.subscribe(target, "presence", timeout=0.3),
            alice.register(f"sip:127.0.0.1:{silent_port}", timeout=0.3),
            alice.call(target, timeout=0.3),
        ):
            with pytest.raises(RequestFailed) as failure:
                await attempt
            assert failure.value.status == 408
            assert failure.value.reason == "Request Timeout (no final response in 0.3 s)"


def test_every_waiting_method_has_a_finite_default_timeout() -> None:
    defaults: dict[typing.Callable[..., object], float] = {
        UserAgent.call: 60.0,
        UserAgent.request: 32.0,
        UserAgent.message: 32.0,
        UserAgent.options: 32.0,
        UserAgent.register: 32.0,
        UserAgent.unregister: 32.0,
        UserAgent.subscribe: 32.0,
        UserAgent.unsubscribe: 32.0,
        Call.answer: 32.0,
        Call.hold: 32.0,
        Call.resume: 32.0,
        Call.send_info: 32.0,
        Call.wait_answered: 60.0,
        Call.transfer: 90.0,
        Call.attended_transfer: 90.0,
        IncomingSubscription.accept: 32.0,
        IncomingSubscription.notify: 32.0,
    }
    for method, seconds in defaults.items():
        assert inspect.signature(method).parameters["timeout"].default == seconds, method


@pytest.mark.asyncio
async def test_a_call_that_rings_past_its_timeout_is_cancelled_with_408() -> None:
    alice, bob = _pair()
    async with alice, bob:
        rang: list[Call] = []

        @bob.on_call
        async def ring_only(call: Call) -> None:
            call.claimed = True
            await call.ring()
            rang.append(call)

        with pytest.raises(RequestFailed) as failure:
            await alice.call(_uri(bob, "bob"), timeout=0.5)
        assert failure.value.status == 408
        await rang[0].wait_ended(5)
        assert rang[0].end_status == 487  # the INVITE was cancelled


@pytest.mark.asyncio
async def test_a_call_cancelled_locally_raises_487() -> None:
    alice, bob = _pair()
    async with alice, bob:

        @bob.on_call
        async def ring_only(call: Call) -> None:
            call.claimed = True
            await call.ring()

        call = await alice.call(_uri(bob, "bob"), wait=False)
        await _eventually(lambda: call.state is CallState.EARLY)
        waiting = asyncio.ensure_future(call.wait_answered())
        await call.hangup()
        with pytest.raises(RequestFailed) as failure:
            await asyncio.wait_for(waiting, 5)
        assert failure.value.status == 487
