"""What both roles of an RFC 6665 subscription share: state, timers, the end.

:class:`~sipwire.core.subscription.Subscription` is one class for both roles;
its subscriber half lives in :mod:`sipwire.core.subscriber`, its notifier half
in :mod:`sipwire.core.notifier`, and this base holds the fields and the life
cycle they share (state changes, the expiry timer, termination).
"""

from __future__ import annotations

import logging
from enum import Enum
from typing import TYPE_CHECKING, cast

from sipwire.core.client import ClientRequest
from sipwire.core.events import SubscriptionStateChanged
from sipwire.dialog.dialog import Dialog, DialogState
from sipwire.errors import ParseError
from sipwire.message import Event, Request, Response
from sipwire.timerheap import TimerHandle
from sipwire.transaction.server import ServerTransaction

if TYPE_CHECKING:
    from sipwire.core.notifier import EventPackage
    from sipwire.core.subscription import Subscription, Subscriptions

__all__ = ["SubState", "SubscriptionBase", "same_event"]

log = logging.getLogger("sipwire.subscription")


class SubState(Enum):
    """Where a subscription is (RFC 6665 §4.1.2)."""

    NOTIFY_WAIT = "notify-wait"
    """SUBSCRIBE sent (or accepted) and no NOTIFY yet."""
    PENDING = "pending"
    ACTIVE = "active"
    TERMINATED = "terminated"


def same_event(request: Request, ours: Event) -> bool:
    """§8.2.1: the package token and the id parameter must both match."""
    try:
        event = request.event
    except ParseError:
        return False
    return event is not None and event.package == ours.package and event.id == ours.id


class SubscriptionBase:
    """The fields and life cycle of one subscription, subscriber or notifier side."""

    def __init__(
        self, manager: Subscriptions, role: str, event: Event, request: Request, expires: int
    ) -> None:
        self.manager = manager
        self.core = manager.core
        self.is_subscriber = role == "subscriber"
        """``role`` is ``subscriber`` or ``notifier``."""
        self.event = event
        self.request = request
        """The initial SUBSCRIBE (as last sent, or as received)."""
        self.expires = expires
        """Subscriber: the duration we ask for; notifier: the one granted last."""
        self.accept: str | None = None
        self.dialog: Dialog | None = None
        self.state = SubState.NOTIFY_WAIT
        self.reason: str | None = None
        """Subscription-State reason of the end (``timeout``, ``rejected`` ...)."""
        self.retry_after: int | None = None
        self.expires_at: float | None = None
        self.last_notify: Request | None = None
        self.response: Response | None = None
        """The last final response to a SUBSCRIBE we sent."""
        self.package: EventPackage | None = None
        self.body = b""
        """Notifier: the current state, sent in every NOTIFY."""
        self.content_type: str | None = None
        self.forks: list[Subscription] = []
        """Every subscription the same initial SUBSCRIBE created (one per notifier)."""
        self._outstanding: ClientRequest | None = None
        self._refresh_timer: TimerHandle | None = None
        self._expiry_timer: TimerHandle | None = None
        self._closing = False
        self._pending: ServerTransaction | None = None
        """Notifier: the SUBSCRIBE's transaction while the application decides."""
        self._decision_timer: TimerHandle | None = None

    @property
    def active(self) -> bool:
        """Not terminated yet."""
        return self.state is not SubState.TERMINATED

    @property
    def undecided(self) -> bool:
        """Notifier: the initial SUBSCRIBE waits for the application's answer."""
        return self._pending is not None

    # -- hooks of the full class ---------------------------------------------------------
    def on_request(self, request: Request, tx: ServerTransaction, now: float) -> None:
        """A request inside our dialog (implemented by ``Subscription``)."""
        raise NotImplementedError

    def on_provisional(self, creq: ClientRequest, response: Response, now: float) -> None:
        """A provisional response to our SUBSCRIBE or NOTIFY (``Subscription``)."""
        raise NotImplementedError

    def on_final(self, creq: ClientRequest, response: Response, now: float) -> None:
        """The final response to our SUBSCRIBE or NOTIFY (``Subscription``)."""
        raise NotImplementedError

    def _expired(self, now: float, reason: str | None) -> None:
        raise NotImplementedError

    # -- life cycle ------------------------------------------------------------------------
    def _set_state(self, state: SubState, now: float, response: Response | None = None) -> None:
        if state is self.state:
            return
        self.state = state
        me = cast("Subscription", self)
        self.core.emit(SubscriptionStateChanged(me, state, self.reason, response))

    def _arm_expiry(self, deadline: float, reason: str | None) -> None:
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
        self._expiry_timer = self.core.timers.schedule(
            deadline, lambda now: self._expired(now, reason)
        )

    def _cancel_timers(self) -> None:
        for timer in (self._refresh_timer, self._expiry_timer, self._decision_timer):
            if timer is not None:
                timer.cancel()
        self._refresh_timer = self._expiry_timer = self._decision_timer = None

    def _terminate(self, now: float, reason: str | None, response: Response | None) -> None:
        """The subscription is over: stop the timers, free the dialog, tell the application."""
        if not self.active:
            return
        self._cancel_timers()
        self.reason = reason
        if self.dialog is not None:
            self.dialog.state = DialogState.TERMINATED
            self.core.unbind_dialog(self.dialog)
        me = cast("Subscription", self)
        if me in self.manager.subscriptions:
            self.manager.subscriptions.remove(me)
        self._set_state(SubState.TERMINATED, now, response)

    def __repr__(self) -> str:
        return f"<Subscription {self.event} {self.state.value}>"
