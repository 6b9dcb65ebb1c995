"""The notifier half of RFC 6665 subscriptions (mixed into ``Subscription``).

An :class:`EventPackage` is a package we serve. A new SUBSCRIBE for it is
decided by the package's ``on_subscribe`` callback at once, or, without one,
by the application later (``Subscriptions.answer``, after a
:class:`~sipwire.core.events.SubscribeReceived` event); a SUBSCRIBE nobody
answers within ``decision_timeout`` is refused with 480. Every accepted
SUBSCRIBE is followed by a NOTIFY (§4.2.1.2); ``notify`` sends changes;
the expiry ends the subscription with ``reason=timeout``. The final response
to each NOTIFY is reported as :class:`~sipwire.core.events.RequestCompleted`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sipwire.core.client import ClientRequest
from sipwire.core.events import RequestCompleted
from sipwire.core.subscription_base import SubscriptionBase, SubState, same_event
from sipwire.errors import ParseError
from sipwire.message import Request, Response
from sipwire.transaction.server import ServerTransaction

if TYPE_CHECKING:
    from sipwire.core.subscription import Subscription

__all__ = ["EventPackage", "NotifierRole", "OnSubscribe", "SubscribeAnswer"]

log = logging.getLogger("sipwire.subscription")


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
    on_subscribe: OnSubscribe | None
    """Decides each new SUBSCRIBE at once; None: the application answers later."""
    content_type: str = "text/plain"
    min_expires: int = 60
    max_expires: int = 3600
    default_expires: int = 3600
    decision_timeout: float = 10.0
    """Seconds a SUBSCRIBE may wait for the application's answer before it gets 480."""

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


class NotifierRole(SubscriptionBase):
    """What a subscription does when we are the notifier."""

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
        if not same_event(request, self.event):
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
    ) -> ClientRequest | None:
        """Accept a SUBSCRIBE, then NOTIFY at once (§4.2.1.2): the final one when
        ``expires`` is 0 (an un-SUBSCRIBE, §4.2.1.3, or a fetch): it expired at once.
        Returns that NOTIFY."""
        assert self.dialog is not None
        contact = self.core.sender.contact(self.core.config.contact_user, tx.source.transport)
        headers = [("Contact", contact), ("Expires", str(expires))]
        reply = request.reply(status, headers=headers, to_tag=self.dialog.local_tag)
        self.core.layer.respond(tx, reply, now)
        self.expires, self.expires_at = expires, now + expires
        if expires == 0:
            return self.notify(now, state="terminated", reason="timeout")
        self._arm_expiry(self.expires_at, "timeout")
        return self.notify(now)

    def _on_notify_response(self, creq: ClientRequest, response: Response, now: float) -> None:
        if response.status >= 300 and self.active:
            # §4.2.2: the subscriber is gone (481), unreachable (408) or refuses.
            log.info("NOTIFY for %s failed with %d", self.event, response.status)
            self._terminate(now, "noresource", response)
        self.core.emit(RequestCompleted(creq, response))
