"""SUBSCRIBE/NOTIFY (RFC 6665) on asyncio, in both roles.

Subscriber::

    sub = await ua.subscribe("sip:bob@example.com", "presence")
    async for subscription, notify in ua.notifications(): ...
    await ua.unsubscribe(sub)

Notifier::

    ua.serve("presence", content_type="application/pidf+xml")
    async for sub in ua.subscriptions():      # IncomingSubscription
        await sub.accept(pidf)                # 200 and the first NOTIFY
        await sub.notify(other_pidf)          # a change
        await sub.terminate("noresource")     # the final NOTIFY

A SUBSCRIBE that the application neither accepts nor rejects within the
package's ``decision_timeout`` (10 s) is refused with 480 Temporarily
Unavailable: the subscriber learns at once that nobody answers, and no
state is kept for it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, cast

from sipwire.aio.timeouts import REQUEST_TIMEOUT, within
from sipwire.core import subscription
from sipwire.core.client import ClientRequest
from sipwire.core.events import NotifyReceived, SubscribeReceived, SubscriptionStateChanged
from sipwire.core.subscription import SubscribeAnswer, Subscription, SubState
from sipwire.core.ua import UserAgentCore
from sipwire.errors import LocalProtocolError, RequestFailed
from sipwire.message import Address, Request, Response

if TYPE_CHECKING:
    from sipwire.aio.ua import UserAgent

__all__ = ["IncomingSubscription", "SubscriptionsMixin"]

MAX_PENDING = 1000


def _bytes(body: bytes | str) -> bytes:
    return body.encode() if isinstance(body, str) else body


class IncomingSubscription:
    """A SUBSCRIBE someone sent us for a package we serve (from ``ua.subscriptions()``)."""

    def __init__(self, ua: UserAgent, sub: Subscription) -> None:
        self._ua = ua
        self.subscription = sub
        """The notifier side of the subscription (``state``, ``expires_at``, ``reason`` ...)."""

    @property
    def request(self) -> Request:
        """The SUBSCRIBE."""
        return self.subscription.request

    @property
    def package(self) -> str:
        """The event package (``presence``, ``dialog``, ``message-summary`` ...)."""
        return self.subscription.event.package

    @property
    def subscriber(self) -> Address:
        """Who subscribes (the From of the SUBSCRIBE, without its tag)."""
        party = self.subscription.request.from_
        return Address(party.uri, party.display_name)

    @property
    def state(self) -> SubState:
        """NOTIFY_WAIT until answered, then PENDING or ACTIVE, then TERMINATED."""
        return self.subscription.state

    @property
    def reason(self) -> str | None:
        """Why it ended (``timeout``, ``rejected``, ``noresource`` ...), once terminated."""
        return self.subscription.reason

    @property
    def expires(self) -> int:
        """The duration granted last, in seconds."""
        return self.subscription.expires

    async def accept(
        self,
        body: bytes | str = b"",
        *,
        content_type: str | None = None,
        pending: bool = False,
        timeout: float | None = REQUEST_TIMEOUT,
    ) -> Response:
        """Answer 200 (202 with ``pending``) and send the first NOTIFY with ``body``.

        Returns the NOTIFY's response; raises RequestFailed when it is not 2xx,
        LocalProtocolError when the SUBSCRIBE was answered already.
        """
        answer = SubscribeAnswer(
            202 if pending else 200,
            "pending" if pending else "active",
            _bytes(body),
            content_type,
        )
        creq = self._answer(answer)
        if creq is None:
            raise RequestFailed(481, "the subscription ended at once")
        return await self._ua._wait(creq, timeout, check=True)

    async def reject(self, status: int = 403) -> None:
        """Refuse the SUBSCRIBE with ``status`` (403 Forbidden, 603 Decline ...)."""
        if status < 300:
            raise ValueError(f"a rejection needs a status of 300 or more, not {status}")
        self._answer(SubscribeAnswer(status))

    def _answer(self, answer: SubscribeAnswer) -> ClientRequest | None:
        manager = self._ua._subscription_manager()
        creq = manager.answer(self.subscription, answer, self._ua._now())
        self._ua._flush()
        return creq

    async def notify(
        self,
        body: bytes | str,
        *,
        content_type: str | None = None,
        state: SubState | None = None,
        timeout: float | None = REQUEST_TIMEOUT,
    ) -> Response:
        """Send the new state in a NOTIFY and return its response (RequestFailed if not 2xx).

        ``state`` moves a pending subscription to ``SubState.ACTIVE`` (or back to PENDING).
        """
        sub = self.subscription
        if sub.undecided:
            raise LocalProtocolError("accept() the subscription before notifying it")
        if state not in (None, SubState.ACTIVE, SubState.PENDING):
            raise ValueError("state is SubState.ACTIVE or SubState.PENDING (terminate() ends it)")
        creq = sub.notify(
            self._ua._now(),
            _bytes(body),
            state=state.value if state is not None else None,
            content_type=content_type,
        )
        if creq is None:
            raise LocalProtocolError(f"the subscription to {sub.event} is terminated")
        return await self._ua._wait(creq, timeout, check=True)

    async def terminate(
        self,
        reason: str | None = "noresource",
        *,
        body: bytes | str | None = None,
        content_type: str | None = None,
        timeout: float | None = REQUEST_TIMEOUT,
    ) -> None:
        """End the subscription: a final NOTIFY with ``Subscription-State: terminated``
        and ``reason`` (RFC 6665 §4.2.2: ``noresource``, ``deactivated``, ``rejected``,
        ``timeout``, ``giveup`` ...). Waits for its response, at most ``timeout``; it never
        raises (the subscription is over either way). An undecided SUBSCRIBE gets 480."""
        sub = self.subscription
        if sub.undecided:
            await self.reject(480)
            return
        data = _bytes(body) if body is not None else None
        creq = sub.notify(
            self._ua._now(), data, state="terminated", reason=reason, content_type=content_type
        )
        if creq is not None:
            with contextlib.suppress(RequestFailed):
                await self._ua._wait(creq, timeout)

    async def wait_terminated(self, timeout: float | None = None) -> None:
        """Wait until the subscription ends (unsubscribed, expired, terminated ...);
        TimeoutError after ``timeout`` seconds."""
        sub = self.subscription
        await asyncio.wait_for(self._ua._sub_until(sub, lambda: not sub.active), timeout)

    def __repr__(self) -> str:
        return (
            f"<IncomingSubscription {self.package} from {self.subscriber.uri} {self.state.value}>"
        )


class SubscriptionsMixin:
    """The SUBSCRIBE/NOTIFY part of :class:`~sipwire.aio.ua.UserAgent`."""

    subscription_manager: subscription.Subscriptions | None
    _served: dict[str, dict[str, Any]]
    _incoming_subs: asyncio.Queue[IncomingSubscription]
    _notifications: asyncio.Queue[tuple[Subscription, Request]]
    _sub_waiters: dict[Subscription, list[asyncio.Future[None]]]

    if TYPE_CHECKING:

        def _now(self) -> float: ...

        def _flush(self) -> None: ...

        def _core(self) -> UserAgentCore: ...

    def _init_subscriptions(self) -> None:
        self.subscription_manager = None
        self._served = {}
        self._incoming_subs = asyncio.Queue(MAX_PENDING)
        self._notifications = asyncio.Queue(MAX_PENDING)
        self._sub_waiters = {}

    def _install_subscriptions(self, core: UserAgentCore) -> None:
        self.subscription_manager = subscription.install(core)
        for package, options in self._served.items():
            self.subscription_manager.serve(package, **options)

    def _subscription_manager(self) -> subscription.Subscriptions:
        if self.subscription_manager is None:
            raise LocalProtocolError("the user agent is not started (use 'async with')")
        return self.subscription_manager

    # -- subscriber ------------------------------------------------------------------------
    async def subscribe(
        self,
        target: str,
        event: str,
        *,
        expires: int = 3600,
        accept: str | None = None,
        timeout: float | None = REQUEST_TIMEOUT,
    ) -> Subscription:
        """Subscribe to ``event`` at ``target``; returns once it is pending or active.

        NOTIFYs arrive through :meth:`notifications`; refreshes happen by
        themselves; :meth:`unsubscribe` ends it. Raises RequestFailed when the
        subscription is refused, or 408 when neither answer nor NOTIFY came in time.
        """
        manager = self._subscription_manager()
        sub = manager.subscribe(target, event, self._now(), expires=expires, accept=accept)
        self._flush()

        def settled() -> bool:
            return any(fork.state is not SubState.NOTIFY_WAIT for fork in sub.forks)

        try:
            await within(self._sub_until(sub, settled), timeout)
        except RequestFailed:
            sub.unsubscribe(self._now())
            self._flush()
            raise
        live = next((fork for fork in sub.forks if fork.active), None)
        if live is None:
            response = sub.response
            status = response.status if response is not None else 481
            reason = response.reason if response is not None else (sub.reason or "terminated")
            raise RequestFailed(status, reason, response)
        return live

    async def unsubscribe(
        self, sub: Subscription, *, timeout: float | None = REQUEST_TIMEOUT
    ) -> None:
        """End a subscription we made (SUBSCRIBE with Expires: 0) and wait, at most
        ``timeout``, for the notifier's final NOTIFY or refusal. It never raises: the
        subscription is over locally either way (``sub.state`` is TERMINATED)."""
        if not sub.active:
            return
        sub.unsubscribe(self._now())
        self._flush()
        try:
            await within(self._sub_until(sub, lambda: not sub.active), timeout)
        except RequestFailed:
            sub._terminate(self._now(), "timeout", None)
            self._flush()

    async def notifications(self) -> AsyncIterator[tuple[Subscription, Request]]:
        """Every NOTIFY received for our subscriptions (already answered 200)."""
        while True:
            yield await self._notifications.get()

    # -- notifier ------------------------------------------------------------------------
    def serve(
        self,
        package: str,
        *,
        content_type: str = "text/plain",
        min_expires: int = 60,
        max_expires: int = 3600,
        default_expires: int = 3600,
        decision_timeout: float = 10.0,
    ) -> None:
        """Act as notifier for ``package``: its SUBSCRIBEs come out of :meth:`subscriptions`.

        Other packages get 489 Bad Event. ``content_type`` is the default of the
        NOTIFY bodies; a SUBSCRIBE not answered within ``decision_timeout`` gets 480.
        """
        options: dict[str, Any] = {
            "content_type": content_type,
            "min_expires": min_expires,
            "max_expires": max_expires,
            "default_expires": default_expires,
            "decision_timeout": decision_timeout,
        }
        self._served[package] = options
        if self.subscription_manager is not None:
            self.subscription_manager.serve(package, **options)

    async def subscriptions(self) -> AsyncIterator[IncomingSubscription]:
        """New SUBSCRIBEs for the packages we :meth:`serve`, to accept or reject."""
        while True:
            sub = await self._incoming_subs.get()
            if sub.subscription.undecided:
                yield sub

    # -- core events -----------------------------------------------------------------------
    def _on_subscribe_received(self, event: SubscribeReceived) -> None:
        sub = event.subscription
        if self._incoming_subs.full():
            self._subscription_manager().answer(sub, SubscribeAnswer(480), self._now())
            return
        self._incoming_subs.put_nowait(IncomingSubscription(cast("UserAgent", self), sub))

    def _on_notify(self, event: NotifyReceived) -> None:
        if not self._notifications.full():
            self._notifications.put_nowait((event.subscription, event.request))
        self._wake_sub(event.subscription)

    def _on_subscription_state(self, event: SubscriptionStateChanged) -> None:
        self._wake_sub(event.subscription)

    def _wake_sub(self, sub: Subscription) -> None:
        for key in {sub, sub.forks[0]}:
            for waiter in self._sub_waiters.pop(key, ()):
                if not waiter.done():
                    waiter.set_result(None)

    async def _sub_until(self, sub: Subscription, done: Callable[[], bool]) -> None:
        """Wait until ``done()`` holds, checking after every change of ``sub``."""
        loop = asyncio.get_running_loop()
        while not done():
            waiter: asyncio.Future[None] = loop.create_future()
            self._sub_waiters.setdefault(sub, []).append(waiter)
            try:
                await waiter
            finally:
                waiters = self._sub_waiters.get(sub)
                if waiters is not None and waiter in waiters:
                    waiters.remove(waiter)
                    if not waiters:
                        del self._sub_waiters[sub]
