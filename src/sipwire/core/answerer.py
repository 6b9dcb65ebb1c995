"""An auto-answering UAS core: the transaction user behind ``sipwire answer``.

Sans-I/O, like the layers below it: it consumes transaction events, answers
through the TransactionLayer, and keeps its own timers (2xx retransmission,
§13.3.1.4) behind ``next_timer()`` / ``handle_timer(now)``.

What it does (RFC 3261 §8.2, §13.3, §15.2, §9.2, §11):

- checks every request with ``check_request`` and answers faults with the
  RFC's code (400, 405, 415, 416, 420, 501, 505 ...);
- OPTIONS → 200 with Allow, Accept and Supported;
- INVITE → 180 then 200 with an SDP answer, retransmitting the 2xx until
  the ACK arrives or 64*T1 passes;
- ACK confirms the dialog; BYE → 200, or 481 for an unknown dialog;
- CANCEL → 200, and 487 for the INVITE when it has not been answered yet,
  or 481 when no INVITE matches;
- other requests inside an unknown dialog → 481.
"""

from __future__ import annotations

import heapq
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from sipwire.message import Request, Response
from sipwire.message.validate import Policy, Role, check_request
from sipwire.transaction.base import State
from sipwire.transaction.events import (
    Event,
    RequestReceived,
    TransactionTimedOut,
)
from sipwire.transaction.layer import TransactionLayer
from sipwire.transaction.server import InviteServerTransaction, ServerTransaction
from sipwire.transport.address import Source

__all__ = ["AnswerConfig", "Answerer"]

log = logging.getLogger("sipwire.answer")

ALLOW: Final = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS")


@dataclass(frozen=True, slots=True)
class AnswerConfig:
    """How the answering UAS behaves."""

    user: str = "sipwire"
    """User part of the Contact it puts in 18x/2xx responses."""
    user_agent: str = "sipwire"
    """Value of the Server header."""
    ring_time: float = 0.0
    """Seconds between 180 Ringing and 200 OK (0 answers at once)."""
    max_dialogs: int = 10_000
    """Bound of the dialog table; the oldest dialog is dropped past it."""
    allow: tuple[str, ...] = ALLOW
    supported: tuple[str, ...] = ()


@dataclass(slots=True)
class _Dialog:
    """The little a UAS needs to know about a dialog it created (§12.1.1)."""

    call_id: str
    local_tag: str
    remote_tag: str
    invite: InviteServerTransaction
    ok: Response | None = None
    confirmed: bool = False
    retransmit_at: float | None = None
    interval: float = 0.0
    give_up_at: float = 0.0
    answer_at: float | None = None
    contact: str = ""


def static_sdp(address: str, port: int = 4000) -> bytes:
    """An SDP answer offering PCMU and telephone-event (RFC 8866 / RFC 3264)."""
    family = "IP6" if ":" in address else "IP4"
    lines = [
        "v=0",
        f"o=sipwire 1 1 IN {family} {address}",
        "s=sipwire",
        f"c=IN {family} {address}",
        "t=0 0",
        f"m=audio {port} RTP/AVP 0 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=sendrecv",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


class Answerer:
    """The TU of an auto-answering user agent server."""

    def __init__(
        self,
        layer: TransactionLayer,
        new_tag: Callable[[], str],
        config: AnswerConfig | None = None,
    ) -> None:
        self.layer = layer
        self.config = config or AnswerConfig()
        self._new_tag = new_tag
        self._policy = Policy(role=Role.UAS, methods=frozenset(self.config.allow))
        self._dialogs: OrderedDict[tuple[str, str], _Dialog] = OrderedDict()
        self._heap: list[tuple[float, int, tuple[str, str]]] = []
        self._seq = 0
        self.calls_answered = 0
        self.calls_completed = 0

    # -- events from the transaction layer ----------------------------------------------
    def handle(self, event: Event, now: float) -> None:
        """Act on one TU event of the transaction layer."""
        if isinstance(event, RequestReceived):
            if event.transaction is None:
                if event.request.method == "ACK":
                    self._on_ack(event.request)
                return
            if isinstance(event.transaction, ServerTransaction):
                self._on_request(event.request, event.source, event.transaction, now)
        elif isinstance(event, TransactionTimedOut):
            log.info("transaction gave up: %s (%s)", event.transaction, event.reason)

    def _on_request(
        self, request: Request, source: Source, tx: ServerTransaction, now: float
    ) -> None:
        rejection = check_request(request, self._policy)
        if rejection is not None:
            self._respond(tx, rejection.response(request, to_tag=self._new_tag()), now)
            return
        method = request.method
        to_tag = request.to.tag
        if method == "CANCEL":
            self._on_cancel(request, tx, now)
        elif to_tag is not None:
            self._in_dialog(request, tx, to_tag, now)
        elif method == "INVITE":
            assert isinstance(tx, InviteServerTransaction)
            self._on_invite(request, source, tx, now)
        elif method == "OPTIONS":
            self._respond(tx, self._options_response(request), now)
        elif method == "BYE":
            self._respond(tx, request.reply(481), now)
        else:
            self._respond(tx, request.reply(200, to_tag=self._new_tag()), now)

    def _options_response(self, request: Request) -> Response:
        headers = [
            ("Allow", ", ".join(self.config.allow)),
            ("Accept", "application/sdp"),
            ("Supported", ", ".join(self.config.supported)),
            ("Server", self.config.user_agent),
        ]
        return request.reply(200, headers=headers, to_tag=self._new_tag())

    def _on_invite(
        self, request: Request, source: Source, tx: InviteServerTransaction, now: float
    ) -> None:
        tag = self._new_tag()
        contact = self._contact(source)
        dialog = _Dialog(request.call_id, tag, request.from_.tag or "", tx, contact=contact)
        self._remember(dialog)
        ringing = request.reply(180, headers=[("Contact", contact)], to_tag=tag)
        self._respond(tx, ringing, now)
        if self.config.ring_time > 0:
            dialog.answer_at = now + self.config.ring_time
            self._schedule(dialog, dialog.answer_at)
        else:
            self._answer(dialog, now)

    def _answer(self, dialog: _Dialog, now: float) -> None:
        request = dialog.invite.request
        source = dialog.invite.source
        dialog.answer_at = None
        headers = [
            ("Contact", dialog.contact),
            ("Allow", ", ".join(self.config.allow)),
            ("Server", self.config.user_agent),
            ("Content-Type", "application/sdp"),
        ]
        body = static_sdp(source.local_host or "127.0.0.1")
        ok = request.reply(200, headers=headers, body=body, to_tag=dialog.local_tag)
        dialog.ok = ok
        self._respond(dialog.invite, ok, now)
        self.calls_answered += 1
        # §13.3.1.4: retransmit the 2xx at T1, 2*T1 ... capped at T2, until the ACK.
        t1 = self.layer.config.t1
        dialog.interval = t1
        dialog.retransmit_at = now + t1
        dialog.give_up_at = now + 64 * t1
        self._schedule(dialog, dialog.retransmit_at)

    def _on_ack(self, ack: Request) -> None:
        dialog = self._dialogs.get((ack.call_id, ack.to.tag or ""))
        if dialog is not None and not dialog.confirmed:
            dialog.confirmed = True
            dialog.retransmit_at = None

    def _on_cancel(self, cancel: Request, tx: ServerTransaction, now: float) -> None:
        invite = self.layer.find_invite(cancel)
        if invite is None:
            self._respond(tx, cancel.reply(481), now)
            return
        self._respond(tx, cancel.reply(200, to_tag=self._tag_of(invite)), now)
        if invite.state is State.PROCEEDING and (
            invite.last_response is None or invite.last_response.status < 200
        ):
            tag = self._tag_of(invite)
            self._respond(invite, invite.request.reply(487, to_tag=tag), now)
            self._dialogs.pop((invite.request.call_id, tag), None)

    def _in_dialog(self, request: Request, tx: ServerTransaction, tag: str, now: float) -> None:
        dialog = self._dialogs.get((request.call_id, tag))
        if dialog is None:
            self._respond(tx, request.reply(481), now)  # §12.2.2
            return
        if request.method == "BYE":
            self._respond(tx, request.reply(200), now)  # §15.2
            del self._dialogs[(request.call_id, tag)]
            self.calls_completed += 1
        elif request.method == "INVITE" and dialog.ok is not None:
            # A re-INVITE: keep the session as it is.
            body = dialog.ok.body
            headers = [("Contact", dialog.contact), ("Content-Type", "application/sdp")]
            self._respond(tx, request.reply(200, headers=headers, body=body), now)
        else:
            self._respond(tx, request.reply(200), now)

    # -- timers ---------------------------------------------------------------------------
    def _schedule(self, dialog: _Dialog, deadline: float) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (deadline, self._seq, (dialog.call_id, dialog.local_tag)))

    def next_timer(self) -> float | None:
        """The earliest deadline of any dialog (answer after ringing, 2xx retransmission)."""
        heap = self._heap
        while heap:
            deadline, _, key = heap[0]
            dialog = self._dialogs.get(key)
            if dialog is not None and deadline in (dialog.retransmit_at, dialog.answer_at):
                return deadline
            heapq.heappop(heap)
        return None

    def handle_timer(self, now: float) -> None:
        heap = self._heap
        due: list[tuple[str, str]] = []
        while heap and heap[0][0] <= now:
            due.append(heapq.heappop(heap)[2])
        for key in dict.fromkeys(due):
            dialog = self._dialogs.get(key)
            if dialog is not None:
                self._fire(key, dialog, now)

    def _fire(self, key: tuple[str, str], dialog: _Dialog, now: float) -> None:
        t2 = self.layer.config.t2
        if dialog.answer_at is not None and dialog.answer_at <= now:
            if dialog.invite.state is State.PROCEEDING:
                self._answer(dialog, now)
            else:
                dialog.answer_at = None
        if dialog.retransmit_at is None or dialog.retransmit_at > now:
            return
        if now >= dialog.give_up_at or dialog.ok is None:
            log.info("no ACK for the 2xx of call %s; dropping the dialog", dialog.call_id)
            del self._dialogs[key]
            return
        if dialog.invite.state is State.ACCEPTED:
            self.layer.respond(dialog.invite, dialog.ok, now)
        dialog.interval = min(2 * dialog.interval, t2)
        dialog.retransmit_at = now + dialog.interval
        self._schedule(dialog, dialog.retransmit_at)

    # -- helpers --------------------------------------------------------------------------
    def _respond(self, tx: ServerTransaction, response: Response, now: float) -> None:
        self.layer.respond(tx, response, now)

    def _remember(self, dialog: _Dialog) -> None:
        self._dialogs[(dialog.call_id, dialog.local_tag)] = dialog
        while len(self._dialogs) > self.config.max_dialogs:
            self._dialogs.popitem(last=False)

    def _tag_of(self, invite: InviteServerTransaction) -> str:
        for dialog in self._dialogs.values():
            if dialog.invite is invite:
                return dialog.local_tag
        return self._new_tag()

    def _contact(self, source: Source) -> str:
        host = source.local_host or "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"<sip:{self.config.user}@{host}:{source.local_port};transport={source.transport}>"

    @property
    def dialogs(self) -> int:
        """Dialogs in progress (early, waiting for ACK, or confirmed)."""
        return len(self._dialogs)
