"""The subscriber half of an RFC 6665 subscription (mixed into ``Subscription``).

The dialog comes from the 2xx or from a NOTIFY that overtook it (§4.1.2.4);
a forked SUBSCRIBE gives one subscription per notifier (``forks``). NOTIFYs
are answered and reported; refreshes go out before the expiry; ``unsubscribe``
sends ``Expires: 0`` and waits for the final NOTIFY (§4.1.2.3).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, cast

from sipwire.core.client import ClientRequest
from sipwire.core.events import NotifyReceived
from sipwire.core.subscription_base import SubscriptionBase, SubState, same_event
from sipwire.dialog.dialog import Dialog
from sipwire.errors import ParseError
from sipwire.message import Request, Response
from sipwire.message.params import int_param
from sipwire.transaction.server import ServerTransaction

if TYPE_CHECKING:
    from sipwire.core.in_dialog import InDialog
    from sipwire.core.subscription import Subscription

__all__ = ["SubscriberRole"]

log = logging.getLogger("sipwire.subscription")


class SubscriberRole(SubscriptionBase):
    """What a subscription does when we subscribed."""

    def refresh(self, now: float, expires: int | None = None) -> ClientRequest | None:
        """Send a SUBSCRIBE inside the dialog (§4.1.2.1); None without a dialog."""
        if not self.is_subscriber or self.dialog is None or not self.active:
            return None
        if expires is not None:
            self.expires = expires
        return self._send_subscribe(now, self.expires)

    def unsubscribe(self, now: float) -> None:
        """End the subscription: ``Expires: 0`` and wait for the final NOTIFY (§4.1.2.3).

        A non-2xx answer to the un-SUBSCRIBE ends it at once; no answer and no
        NOTIFY within 64*T1 ends it too.
        """
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

    def _fork(self, dialog: Dialog, now: float) -> SubscriberRole:
        """The subscription for ``dialog``: ours if we have none yet, else a new fork."""
        for sub in self.forks:
            if sub.dialog is not None and sub.dialog.remote_tag == dialog.remote_tag:
                return sub
        if self.dialog is None and self.active:
            self._take_dialog(dialog, now)
            return self
        fork = type(self)(self.manager, "subscriber", self.event, self.request, self.expires)
        fork.accept, fork.forks = self.accept, self.forks
        self.forks.append(cast("Subscription", fork))
        self.manager.subscriptions.append(cast("Subscription", fork))
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
                self.manager.initial_answered(cast("Subscription", self), now)
                sub = self._fork(Dialog.from_uac(creq.request, response), now)
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
        if creq.dialog is not None and sent == 0:
            self._terminate(now, None, response)  # the un-SUBSCRIBE was refused: we are done
            return
        if creq.dialog is not None and status not in (404, 405, 481, 489):
            # §4.1.2.2: still valid until the last known expiry.
            log.info("refresh of %s failed with %d", self.event, status)
            return
        if creq.dialog is None:
            self.manager.initial_answered(cast("Subscription", self), now)
            if any(sub.dialog is not None for sub in self.forks):
                return  # a NOTIFY already made a subscription
        retry = (response.headers.get("Retry-After") or "").split(";")[0].split("(")[0]
        self.retry_after = int_param(retry.strip())
        self._terminate(now, None, response)

    def _on_orphan(self, request: Request, tx: ServerTransaction, now: float) -> None:
        """A NOTIFY before the 2xx or from another fork (§4.1.2.4): make its dialog."""
        if request.method != "NOTIFY" or not same_event(request, self.event):
            status = 481 if request.method != "NOTIFY" else 489
            self.core.layer.respond(tx, request.reply(status), now)
            return
        dialog = Dialog.from_uas(request, request.to.tag or "", confirmed=True)
        dialog.local_seq, dialog.remote_seq, dialog.is_uac = self.request.cseq.seq, None, True
        self._fork(dialog, now).on_request(request, tx, now)

    def _on_notify(self, request: Request, tx: ServerTransaction, now: float) -> None:
        layer = self.core.layer
        if not same_event(request, self.event):
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
        self.core.emit(NotifyReceived(cast("Subscription", self), request))
        if state.state == "terminated":
            self.retry_after = state.retry_after
            self._terminate(now, state.reason, None)
            return
        if state.expires is not None:
            self._granted(state.expires, now)
        self._set_state(SubState.ACTIVE if state.state == "active" else SubState.PENDING, now)
