"""SUBSCRIBE/NOTIFY (RFC 6665): subscriptions as dialog usages, in both roles.

Subscriber (``subs.subscribe(uri, "presence", now)``): the dialog comes from the
2xx or from a NOTIFY that overtook it (§4.1.2.4); a forked SUBSCRIBE gives one
:class:`Subscription` per notifier (``subscription.forks``). NOTIFYs are answered
and reported (``NotifyReceived``, ``SubscriptionStateChanged``), refreshes go out
before the expiry, ``unsubscribe`` waits for the final NOTIFY (§4.1.2.3).

Notifier (``subs.serve("presence", on_subscribe)``): the application's answer
(:class:`SubscribeAnswer`) accepts or rejects; unknown packages get 489, too
short an expiry 423; every accepted SUBSCRIBE is followed by a NOTIFY (§4.2.1.2);
``subs.notify(sub, body, now)`` sends changes; expiry ends with ``reason=timeout``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, cast

from sipwire.core.client import ClientRequest
from sipwire.core.events import NotifyReceived, SubscriptionStateChanged
from sipwire.core.timerheap import TimerHandle
from sipwire.dialog.dialog import Dialog, DialogId, DialogState
from sipwire.errors import ParseError
from sipwire.message import Event, Request, Response, Uri
from sipwire.message.params import int_param
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


class SubState(Enum):
    """Where a subscription is (RFC 6665 §4.1.2)."""

    NOTIFY_WAIT = "notify-wait"
    """SUBSCRIBE sent (or accepted) and no NOTIFY yet."""
    PENDING = "pending"
    ACTIVE = "active"
    TERMINATED = "terminated"


@dataclass(frozen=True, slots=True)
class SubscribeAnswer:
    """What the application decides for a new subscription: ``status`` 2xx accepts (202
    is customary for ``pending``), 3xx-6xx rejects; ``state`` (``active`` or ``pending``),
    ``body`` and ``content_type`` (default: the package's) go in the immediate NOTIFY."""

    status: int = 200
    state: str = "active"
    body: bytes = b""
    content_type: str | None = None


OnSubscribe = Callable[["Subscription", Request], SubscribeAnswer]


@dataclass(slots=True)
class EventPackage:
    """An event package we act as notifier for (RFC 6665 §7)."""

    name: str
    on_subscribe: OnSubscribe
    content_type: str = "text/plain"
    min_expires: int = 60
    max_expires: int = 3600
    default_expires: int = 3600

    def grant(self, request: Request) -> int | None:
        """The duration to grant a SUBSCRIBE; None when it asks for too little (423)."""
        try:
            asked = request.expires
        except ParseError:
            asked = None
        expires = self.default_expires if asked is None else asked
        return None if 0 < expires < self.min_expires else min(expires, self.max_expires)

    def too_brief(self, request: Request, to_tag: str | None) -> Response:
        """423 Interval Too Brief with our Min-Expires (§4.2.1.1)."""
        return request.reply(423, headers=[("Min-Expires", str(self.min_expires))], to_tag=to_tag)


def _same_event(request: Request, ours: Event) -> bool:
    """§8.2.1: the package token and the id parameter must both match."""
    try:
        event = request.event
    except ParseError:
        return False
    return event is not None and event.package == ours.package and event.id == ours.id


class Subscription:
    """One subscription (a dialog usage of RFC 6665), subscriber or notifier side."""

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
        self.forks: list[Subscription] = [self]
        """Every subscription the same initial SUBSCRIBE created (one per notifier)."""
        self._outstanding: ClientRequest | None = None
        self._refresh_timer: TimerHandle | None = None
        self._expiry_timer: TimerHandle | None = None
        self._closing = False

    @property
    def active(self) -> bool:
        """Not terminated yet."""
        return self.state is not SubState.TERMINATED

    # ================================================================ subscriber
    def refresh(self, now: float, expires: int | None = None) -> ClientRequest | None:
        """Send a SUBSCRIBE inside the dialog (§4.1.2.1); None without a dialog."""
        if not self.is_subscriber or self.dialog is None or not self.active:
            return None
        if expires is not None:
            self.expires = expires
        return self._send_subscribe(now, self.expires)

    def unsubscribe(self, now: float) -> None:
        """End the subscription: ``Expires: 0`` and wait for the final NOTIFY (§4.1.2.3)."""
        if not self.is_subscriber or not self.active or self._closing:
            return
        self._closing = True
        self._cancel_timers()
        if self.dialog is None:
            return  # sent once a dialog exists (see _take_dialog)
        self._send_subscribe(now, 0)
        self._arm_expiry(now + 64 * self.core.layer.config.t1, None)

    def _send_subscribe(self, now: float, expires: int) -> ClientRequest:
        contact = self.core.config.contact_user
        if self.dialog is None:
            request = self.request  # the initial SUBSCRIBE again, after a 423 (§4.2.1.1)
            request.headers.set("CSeq", f"{request.cseq.seq + 1} SUBSCRIBE")
            request.headers.set("Expires", str(expires))
            creq = ClientRequest(request, self, contact_user=contact)
        else:
            headers = [("Event", str(self.event)), ("Expires", str(expires))]
            if self.accept is not None:
                headers.append(("Accept", self.accept))
            request = self.dialog.create_request("SUBSCRIBE", headers=headers)
            creq = ClientRequest(request, self, dialog=self.dialog, contact_user=contact)
        self._outstanding = creq
        self.core.sender.send(creq, now)
        return creq

    def _take_dialog(self, dialog: Dialog, now: float) -> None:
        self.dialog = dialog
        self.core.bind(dialog, cast("InDialog", self))
        if self._closing:
            self._closing = False
            self.unsubscribe(now)

    def _fork(self, dialog: Dialog, now: float) -> Subscription:
        """The subscription for ``dialog``: ours if we have none yet, else a new fork."""
        for sub in self.forks:
            if sub.dialog is not None and sub.dialog.remote_tag == dialog.remote_tag:
                return sub
        if self.dialog is None and self.active:
            self._take_dialog(dialog, now)
            return self
        fork = Subscription(self.manager, "subscriber", self.event, self.request, self.expires)
        fork.accept, fork.forks = self.accept, self.forks
        self.forks.append(fork)
        self.manager.subscriptions.append(fork)
        fork._take_dialog(dialog, now)
        return fork

    def _granted(self, seconds: int, now: float) -> None:
        """The subscription lasts ``seconds`` from ``now``: refresh before, expire after."""
        self.expires_at = now + seconds
        if self._closing:
            return
        self._cancel_timers()
        if seconds > 0:  # refresh 30 s early, or half-way through short grants
            wait = max(seconds / 2, seconds - 30.0)
            self._refresh_timer = self.core.timers.schedule(now + wait, self._on_refresh)
        grace = 4 * self.core.layer.config.t1  # room for the notifier's timeout NOTIFY
        self._arm_expiry(self.expires_at + grace, "timeout")

    def _on_refresh(self, now: float) -> None:
        self._refresh_timer = None
        if self.active and not self._closing and self._outstanding is None:
            self.refresh(now)

    def _on_subscribe_response(self, creq: ClientRequest, response: Response, now: float) -> None:
        self._outstanding = None
        if not self.active:
            return
        status = response.status
        self.response = response
        sent = creq.request.expires
        if creq.dialog is None:
            self.request = creq.request  # as last sent (CSeq may have risen on a retry)
        if 200 <= status < 300:
            if creq.dialog is None:
                self.manager.initial_answered(self, now)
                dialog = Dialog.from_uac(creq.request, response)
                sub = self._fork(dialog, now)
            else:
                sub = self
                if sub.dialog is not None:
                    sub.dialog.refresh_target(response)
            if sent != 0:
                granted = response.expires if response.expires is not None else sent or 0
                sub._granted(granted, now)
            return
        if status == 423 and response.min_expires and sent:
            self.expires = max(self.expires, response.min_expires)
            self._send_subscribe(now, self.expires)
            return
        if creq.dialog is not None and status not in (404, 405, 481, 489):
            # §4.1.2.2: still valid until the last known expiry.
            log.info("refresh of %s failed with %d", self.event, status)
            return
        if creq.dialog is None:
            self.manager.initial_answered(self, now)
            if any(sub.dialog is not None for sub in self.forks):
                return  # a NOTIFY already made a subscription
        retry = (response.headers.get("Retry-After") or "").split(";")[0].split("(")[0]
        self.retry_after = int_param(retry.strip())
        self._terminate(now, None, response)

    def _on_orphan(self, request: Request, tx: ServerTransaction, now: float) -> None:
        """A NOTIFY before the 2xx or from another fork (§4.1.2.4): make its dialog."""
        if request.method != "NOTIFY" or not _same_event(request, self.event):
            status = 481 if request.method != "NOTIFY" else 489
            self.core.layer.respond(tx, request.reply(status), now)
            return
        dialog = Dialog.from_uas(request, request.to.tag or "", confirmed=True)
        dialog.local_seq, dialog.remote_seq, dialog.is_uac = self.request.cseq.seq, None, True
        self._fork(dialog, now).on_request(request, tx, now)

    def _on_notify(self, request: Request, tx: ServerTransaction, now: float) -> None:
        layer = self.core.layer
        if not _same_event(request, self.event):
            layer.respond(tx, request.reply(489), now)
            return
        try:
            state = request.subscription_state
        except ParseError:
            state = None
        if state is None:
            layer.respond(tx, request.reply(400, "Missing Subscription-State"), now)
            return
        assert self.dialog is not None
        self.dialog.refresh_target(request)
        layer.respond(tx, request.reply(200), now)
        self.last_notify = request
        self.core.emit(NotifyReceived(self, request))
        if state.state == "terminated":
            self.retry_after = state.retry_after
            self._terminate(now, state.reason, None)
            return
        if state.expires is not None:
            self._granted(state.expires, now)
        self._set_state(SubState.ACTIVE if state.state == "active" else SubState.PENDING, now)

    # ================================================================ notifier
    def notify(
        self,
        now: float,
        body: bytes | None = None,
        *,
        state: str | None = None,
        reason: str | None = None,
        content_type: str | None = None,
    ) -> ClientRequest | None:
        """Send a NOTIFY with the current (or new) state; ``state="terminated"`` ends it."""
        dialog = self.dialog
        if self.is_subscriber or dialog is None or not self.active:
            return None
        if body is not None:
            self.body = body
        if content_type is not None:
            self.content_type = content_type
        if state in ("active", "pending"):
            self._set_state(SubState(state), now)
        final = state == "terminated"
        if final:
            value = "terminated" + (f";reason={reason}" if reason else "")
        else:
            left = max(0, round((self.expires_at or now) - now))
            value = f"{self.state.value};expires={left}"
        headers = [("Event", str(self.event)), ("Subscription-State", value)]
        if self.body:
            headers.append(("Content-Type", self.content_type or "text/plain"))
        request = dialog.create_request("NOTIFY", headers=headers, body=self.body)
        contact = self.core.config.contact_user
        creq = ClientRequest(request, self, dialog=dialog, contact_user=contact)
        self.core.sender.send(creq, now)
        if final:
            self._terminate(now, reason, None)
        return creq

    def _on_resubscribe(self, request: Request, tx: ServerTransaction, now: float) -> None:
        package = self.package
        assert package is not None and self.dialog is not None
        layer = self.core.layer
        if not _same_event(request, self.event):
            layer.respond(tx, request.reply(489), now)
            return
        expires = package.grant(request)
        if expires is None:
            layer.respond(tx, package.too_brief(request, None), now)
            return
        self.dialog.refresh_target(request)
        self._grant(request, tx, now, 200, expires)

    def _grant(
        self, request: Request, tx: ServerTransaction, now: float, status: int, expires: int
    ) -> None:
        """Accept a SUBSCRIBE, then NOTIFY at once (§4.2.1.2): the final one when
        ``expires`` is 0 (an un-SUBSCRIBE, §4.2.1.3, or a fetch): it expired at once."""
        assert self.dialog is not None
        contact = self.core.sender.contact(self.core.config.contact_user, tx.source.transport)
        headers = [("Contact", contact), ("Expires", str(expires))]
        reply = request.reply(status, headers=headers, to_tag=self.dialog.local_tag)
        self.core.layer.respond(tx, reply, now)
        self.expires, self.expires_at = expires, now + expires
        if expires == 0:
            self.notify(now, state="terminated", reason="timeout")
            return
        self._arm_expiry(self.expires_at, "timeout")
        self.notify(now)

    def _on_notify_response(self, response: Response, now: float) -> None:
        if response.status >= 300 and self.active:
            # §4.2.2: the subscriber is gone (481), unreachable (408) or refuses.
            log.info("NOTIFY for %s failed with %d", self.event, response.status)
            self._terminate(now, "noresource", response)

    # ================================================================ both
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
            self._on_notify_response(response, now)

    def _set_state(self, state: SubState, now: float, response: Response | None = None) -> None:
        if state is self.state:
            return
        self.state = state
        self.core.emit(SubscriptionStateChanged(self, state, self.reason, response))

    def _arm_expiry(self, deadline: float, reason: str | None) -> None:
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
        self._expiry_timer = self.core.timers.schedule(
            deadline, lambda now: self._expired(now, reason)
        )

    def _expired(self, now: float, reason: str | None) -> None:
        self._expiry_timer = None
        if not self.active:
            return
        if self.is_subscriber:
            log.info("subscription to %s ended without a NOTIFY (%s)", self.event, reason)
            self._terminate(now, reason, None)
        else:
            self.notify(now, state="terminated", reason=reason)

    def _cancel_timers(self) -> None:
        for timer in (self._refresh_timer, self._expiry_timer):
            if timer is not None:
                timer.cancel()
        self._refresh_timer = self._expiry_timer = None

    def _terminate(self, now: float, reason: str | None, response: Response | None) -> None:
        """The subscription is over: stop the timers, free the dialog, tell the application."""
        if not self.active:
            return
        self._cancel_timers()
        self.reason = reason
        if self.dialog is not None:
            self.dialog.state = DialogState.TERMINATED
            self.core.unbind_dialog(self.dialog)
        if self in self.manager.subscriptions:
            self.manager.subscriptions.remove(self)
        self._set_state(SubState.TERMINATED, now, response)

    def __repr__(self) -> str:
        return f"<Subscription {self.event} {self.state.value}>"


class Subscriptions:
    """Every subscription of one core, both roles (see the module docstring)."""

    def __init__(self, core: UserAgentCore) -> None:
        self.core = core
        self.subscriptions: list[Subscription] = []
        """Subscriptions that are not terminated, both roles."""
        self.packages: dict[str, EventPackage] = {}
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
        on_subscribe: OnSubscribe,
        *,
        content_type: str = "text/plain",
        min_expires: int = 60,
        max_expires: int = 3600,
        default_expires: int = 3600,
    ) -> EventPackage:
        """Accept SUBSCRIBEs for ``package``; ``on_subscribe`` decides and gives the state."""
        entry = EventPackage(
            package, on_subscribe, content_type, min_expires, max_expires, default_expires
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
        answer = package.on_subscribe(sub, request)
        if answer.status >= 300:
            layer.respond(tx, request.reply(answer.status, to_tag=ids.token()), now)
            return True
        sub.dialog = Dialog.from_uas(request, ids.token(), confirmed=True)
        self.core.bind(sub.dialog, cast("InDialog", sub))
        self.subscriptions.append(sub)
        sub.body, sub.content_type = answer.body, answer.content_type or package.content_type
        sub._set_state(SubState.PENDING if answer.state == "pending" else SubState.ACTIVE, now)
        sub._grant(request, tx, now, answer.status, expires)
        return True


def install(core: UserAgentCore) -> Subscriptions:
    """Make ``core`` handle SUBSCRIBE/NOTIFY: registers ``request_handlers["SUBSCRIBE"]``
    and a dialog fallback, so that NOTIFYs of dialogs not made yet reach us."""
    manager = Subscriptions(core)
    core.request_handlers["SUBSCRIBE"] = manager.on_subscribe
    core.dialog_fallbacks.append(manager._catch)
    return manager
