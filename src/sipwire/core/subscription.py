"""SUBSCRIBE/NOTIFY (RFC 6665): subscriptions as dialog usages, in both roles.

Subscriber (``subs.subscribe(uri, "presence", now)``): the dialog comes from the
2xx or from a NOTIFY that overtook it (§4.1.2.4); a forked SUBSCRIBE gives one
:class:`Subscription` per notifier (``subscription.forks``). NOTIFYs are answered
and reported (``NotifyReceived``, ``SubscriptionStateChanged``), refreshes go out
before the expiry, ``unsubscribe`` waits for the final NOTIFY (§4.1.2.3).
(:mod:`sipwire.core.subscriber`.)

Notifier (``subs.serve("presence", on_subscribe)``): the application's answer
(:class:`SubscribeAnswer`) accepts or rejects, at once from ``on_subscribe`` or
later through :meth:`Subscriptions.answer` when the package has no callback
(a ``SubscribeReceived`` event announces the SUBSCRIBE; 480 when nobody answers
within the package's ``decision_timeout``); unknown packages get 489, too short
an expiry 423; every accepted SUBSCRIBE is followed by a NOTIFY (§4.2.1.2);
``subs.notify(sub, body, now)`` sends changes; expiry ends with ``reason=timeout``.
(:mod:`sipwire.core.notifier`.)
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, cast

from sipwire.core.client import ClientRequest
from sipwire.core.events import SubscribeReceived
from sipwire.core.notifier import EventPackage, NotifierRole, OnSubscribe, SubscribeAnswer
from sipwire.core.subscriber import SubscriberRole
from sipwire.core.subscription_base import SubState
from sipwire.dialog.dialog import Dialog, DialogId, DialogState
from sipwire.errors import LocalProtocolError, ParseError
from sipwire.message import Event, Request, Response, Uri
from sipwire.transaction.server import ServerTransaction

if TYPE_CHECKING:
    from sipwire.core.in_dialog import InDialog
    from sipwire.core.ua import UserAgentCore

__all__ = [
    "EventPackage",
    "OnSubscribe",
    "SubState",
    "SubscribeAnswer",
    "Subscription",
    "Subscriptions",
    "install",
]

log = logging.getLogger("sipwire.subscription")


class Subscription(SubscriberRole, NotifierRole):
    """One subscription (a dialog usage of RFC 6665), subscriber or notifier side."""

    def __init__(
        self, manager: Subscriptions, role: str, event: Event, request: Request, expires: int
    ) -> None:
        super().__init__(manager, role, event, request, expires)
        self.forks = [self]

    def on_request(self, request: Request, tx: ServerTransaction, now: float) -> None:
        """A request inside our dialog (the core routes it here by dialog id)."""
        layer = self.core.layer
        dialog = self.dialog
        if self.is_subscriber and (dialog is None or dialog.remote_tag != request.from_.tag):
            self._on_orphan(request, tx, now)
            return
        if dialog is None or not self.active or dialog.state is DialogState.TERMINATED:
            layer.respond(tx, request.reply(481), now)
            return
        status = dialog.check_request(request)
        if status is not None:
            layer.respond(tx, request.reply(status, "CSeq out of order"), now)
            return
        if self.is_subscriber and request.method == "NOTIFY":
            self._on_notify(request, tx, now)
        elif not self.is_subscriber and request.method == "SUBSCRIBE":
            self._on_resubscribe(request, tx, now)
        else:
            allow = "NOTIFY" if self.is_subscriber else "SUBSCRIBE"
            layer.respond(tx, request.reply(405, headers=[("Allow", allow)]), now)

    def on_ack(self, request: Request, now: float) -> None:
        """No ACK belongs to a subscription dialog."""

    def on_provisional(self, creq: ClientRequest, response: Response, now: float) -> None:
        """Provisional responses to SUBSCRIBE/NOTIFY change nothing."""

    def on_final(self, creq: ClientRequest, response: Response, now: float) -> None:
        """The final response to a SUBSCRIBE or NOTIFY we sent."""
        if creq.method == "SUBSCRIBE":
            self._on_subscribe_response(creq, response, now)
        else:
            self._on_notify_response(creq, response, now)

    def _expired(self, now: float, reason: str | None) -> None:
        self._expiry_timer = None
        if not self.active:
            return
        if self.is_subscriber:
            log.info("subscription to %s ended without a NOTIFY (%s)", self.event, reason)
            self._terminate(now, reason, None)
        else:
            self.notify(now, state="terminated", reason=reason)


class Subscriptions:
    """Every subscription of one core, both roles (see the module docstring)."""

    def __init__(self, core: UserAgentCore) -> None:
        self.core = core
        self.subscriptions: list[Subscription] = []
        """Subscriptions that are not terminated, both roles (not the undecided ones)."""
        self.packages: dict[str, EventPackage] = {}
        self.undecided: set[Subscription] = set()
        """SUBSCRIBEs waiting for :meth:`answer`."""
        self._waiting: dict[tuple[str, str], Subscription] = {}
        """Initial SUBSCRIBEs that may still create dialogs, by (Call-ID, From tag)."""

    # -- subscriber --------------------------------------------------------------------
    def subscribe(
        self,
        uri: Uri | str,
        event: Event | str,
        now: float,
        *,
        expires: int = 3600,
        accept: str | None = None,
        body: bytes = b"",
        content_type: str | None = None,
    ) -> Subscription:
        """Send a SUBSCRIBE for ``event`` to ``uri`` (§4.1.2.1) and return the subscription."""
        ev = event if isinstance(event, Event) else Event.parse(event)
        headers = [("Event", str(ev)), ("Expires", str(expires))]
        if accept is not None:
            headers.append(("Accept", accept))
        headers.append(("Allow", ", ".join(self.core.config.allow)))
        request = self.core.new_request(
            "SUBSCRIBE", uri, headers=headers, body=body, content_type=content_type
        )
        sub = Subscription(self, "subscriber", ev, request, expires)
        sub.accept = accept
        self.subscriptions.append(sub)
        self._waiting[(request.call_id, request.from_.tag or "")] = sub
        creq = ClientRequest(request, sub, contact_user=self.core.config.contact_user)
        sub._outstanding = creq
        self.core.sender.send(creq, now)
        return sub

    def initial_answered(self, sub: Subscription, now: float) -> None:
        """The initial SUBSCRIBE got its final response: forks may still NOTIFY for 64*T1."""
        key = (sub.request.call_id, sub.request.from_.tag or "")

        def stop_waiting(_now: float) -> None:
            self._waiting.pop(key, None)

        self.core.timers.schedule(now + 64 * self.core.layer.config.t1, stop_waiting)

    def _catch(self, key: DialogId) -> InDialog | None:
        root = self._waiting.get((key[0], key[1]))
        if root is None or (not root.active and root.dialog is None):
            return None  # unknown, or refused before any NOTIFY came
        return cast("InDialog", root)  # it makes the dialog (Subscription._on_orphan)

    # -- notifier ------------------------------------------------------------------------
    def serve(
        self,
        package: str,
        on_subscribe: OnSubscribe | None = None,
        *,
        content_type: str = "text/plain",
        min_expires: int = 60,
        max_expires: int = 3600,
        default_expires: int = 3600,
        decision_timeout: float = 10.0,
    ) -> EventPackage:
        """Accept SUBSCRIBEs for ``package``: ``on_subscribe`` decides and gives the state;
        without it each SUBSCRIBE waits for :meth:`answer` (``SubscribeReceived``)."""
        entry = EventPackage(
            package,
            on_subscribe,
            content_type,
            min_expires,
            max_expires,
            default_expires,
            decision_timeout,
        )
        self.packages[package] = entry
        return entry

    def notify(
        self,
        subscription: Subscription,
        body: bytes | None,
        now: float,
        *,
        state: str | None = None,
        reason: str | None = None,
        content_type: str | None = None,
    ) -> ClientRequest | None:
        """Send a NOTIFY for ``subscription`` (see :meth:`Subscription.notify`)."""
        return subscription.notify(now, body, state=state, reason=reason, content_type=content_type)

    def on_subscribe(self, request: Request, tx: ServerTransaction, now: float) -> bool:
        """The out-of-dialog SUBSCRIBE handler (§4.2.1): always takes the request."""
        layer, ids = self.core.layer, self.core.ids
        try:
            event = request.event
        except ParseError:
            event = None
        package = self.packages.get(event.package) if event is not None else None
        if event is None or package is None:
            allow = ", ".join(self.packages) or "none"
            reply = request.reply(489, headers=[("Allow-Events", allow)], to_tag=ids.token())
            layer.respond(tx, reply, now)
            return True
        expires = package.grant(request)
        if expires is None:
            layer.respond(tx, package.too_brief(request, ids.token()), now)
            return True
        sub = Subscription(self, "notifier", event, request, expires)
        sub.package = package
        sub.content_type = package.content_type
        if package.on_subscribe is None:
            sub._pending = tx
            self.undecided.add(sub)
            sub._decision_timer = self.core.timers.schedule(
                now + package.decision_timeout, lambda at: self._undecided(sub, at)
            )
            self.core.emit(SubscribeReceived(sub, request))
            return True
        self._settle(sub, tx, package.on_subscribe(sub, request), now)
        return True

    def answer(
        self, sub: Subscription, answer: SubscribeAnswer, now: float
    ) -> ClientRequest | None:
        """The application's answer to a SUBSCRIBE announced by ``SubscribeReceived``;
        returns the NOTIFY that follows an acceptance.

        Raises LocalProtocolError when it was answered already (or refused as undecided).
        """
        tx = sub._pending
        if tx is None:
            raise LocalProtocolError(f"the SUBSCRIBE for {sub.event} was answered already")
        sub._pending = None
        self.undecided.discard(sub)
        if sub._decision_timer is not None:
            sub._decision_timer.cancel()
            sub._decision_timer = None
        return self._settle(sub, tx, answer, now)

    def _undecided(self, sub: Subscription, now: float) -> None:
        sub._decision_timer = None
        if sub._pending is not None:
            self.answer(sub, SubscribeAnswer(480), now)

    def _settle(
        self, sub: Subscription, tx: ServerTransaction, answer: SubscribeAnswer, now: float
    ) -> ClientRequest | None:
        request, package = sub.request, sub.package
        assert package is not None
        if answer.status >= 300:
            reply = request.reply(answer.status, to_tag=self.core.ids.token())
            self.core.layer.respond(tx, reply, now)
            sub.reason = "rejected"
            sub._set_state(SubState.TERMINATED, now)
            return None
        sub.dialog = Dialog.from_uas(request, self.core.ids.token(), confirmed=True)
        self.core.bind(sub.dialog, cast("InDialog", sub))
        self.subscriptions.append(sub)
        sub.body, sub.content_type = answer.body, answer.content_type or package.content_type
        sub._set_state(SubState.PENDING if answer.state == "pending" else SubState.ACTIVE, now)
        return sub._grant(request, tx, now, answer.status, sub.expires)


def install(core: UserAgentCore) -> Subscriptions:
    """Make ``core`` handle SUBSCRIBE/NOTIFY: registers ``request_handlers["SUBSCRIBE"]``
    and a dialog fallback, so that NOTIFYs of dialogs not made yet reach us."""
    manager = Subscriptions(core)
    core.request_handlers["SUBSCRIBE"] = manager.on_subscribe
    core.dialog_fallbacks.append(manager._catch)
    return manager
