"""The transaction layer: matching, the transaction tables and one timer queue.

Sans-I/O: feed it received messages and the time, pull events out::

    layer = TransactionLayer()
    layer.receive(message, source, now)        # from the transport
    tx = layer.send_request(request, target, now)   # from the TU
    layer.respond(server_tx, response, now)    # from the TU
    layer.handle_timer(now)                    # when now >= layer.next_timer()
    while (event := layer.next_event()) is not None: ...

Events are ``SendRequest`` / ``SendResponse`` for the transport and
``RequestReceived`` / ``ResponseReceived`` / ``TransactionTimedOut`` /
``TransactionTerminated`` for the TU.
"""

from __future__ import annotations

import hashlib
import heapq
from collections import deque
from collections.abc import Hashable
from dataclasses import replace
from operator import itemgetter

from sipwire.errors import LocalProtocolError, ParseError
from sipwire.message import Request, Response
from sipwire.transaction import matching
from sipwire.transaction.admission import Admission, AdmissionConfig, Verdict
from sipwire.transaction.base import Transaction
from sipwire.transaction.client import (
    ClientTransaction,
    InviteClientTransaction,
    NonInviteClientTransaction,
)
from sipwire.transaction.events import (
    Event,
    RequestReceived,
    ResponseReceived,
    SendRequest,
    SendResponse,
)
from sipwire.transaction.server import (
    InviteServerTransaction,
    NonInviteServerTransaction,
    ServerTransaction,
)
from sipwire.transaction.timers import Timer, TimerConfig
from sipwire.transport.address import Source, Target

__all__ = ["TransactionLayer", "request_size"]

_NAME_OF = itemgetter(1)
_VALUE_OF = itemgetter(2)


def request_size(request: Request) -> int:
    """About the wire size of ``request``: body and header values (no serialisation)."""
    items = request.headers._items
    # (map/itemgetter: the sum runs in C)
    return (
        len(request.body)
        + sum(map(len, map(_NAME_OF, items)))
        + sum(map(len, map(_VALUE_OF, items)))
        + 4 * len(items)
    )


class TransactionLayer:
    """All client and server transactions of one element.

    Every new request passes :class:`~sipwire.transaction.admission.Admission`
    before a server transaction is made for it: when the tables are full,
    the requests waiting for an answer hold too many bytes, or the element
    is overloaded and the request's source is among the heaviest, it is
    answered 503 with Retry-After, statelessly, and never reaches the TU
    (or, past a per-source rate limit, dropped). ``max_transactions``
    overrides the admission's table limit.
    """

    def __init__(
        self,
        config: TimerConfig | None = None,
        *,
        max_transactions: int | None = None,
        admission: Admission | None = None,
    ):
        self.config = config or TimerConfig()
        if admission is None:
            admission = Admission(
                AdmissionConfig(max_transactions=max_transactions)
                if max_transactions is not None
                else None
            )
        elif max_transactions is not None:
            admission.config = replace(admission.config, max_transactions=max_transactions)
        self.admission = admission
        self.pending_bytes = 0
        """Bytes of received requests whose server transaction has not sent a final response."""
        self.response_headers: tuple[tuple[str, str, str], ...] = ()
        """Header lines (canonical key, name, value) this element adds to every response
        it sends, through a transaction or statelessly: e.g. its Server header."""
        self._clients: dict[Hashable, ClientTransaction] = {}
        self._servers: dict[Hashable, ServerTransaction] = {}
        self._events: deque[Event] = deque()
        self._heap: list[tuple[float, int, Transaction, Timer]] = []
        self._seq = 0

    @property
    def max_transactions(self) -> int:
        """How many transactions the tables hold at most."""
        return self.admission.config.max_transactions

    # -- Hooks for the transactions ------------------------------------------------
    def emit(self, event: Event) -> None:
        if self.response_headers and isinstance(event, SendResponse):
            self.stamp(event.response)
        self._events.append(event)

    def stamp(self, response: Response) -> None:
        """Add ``response_headers`` to ``response`` (once: a retransmission is the same
        object, and already carries them)."""
        items = response.headers._items
        extra = self.response_headers
        if not items or items[-1] is not extra[-1]:
            items.extend(extra)

    def schedule(self, transaction: Transaction, timer: Timer, deadline: float) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (deadline, self._seq, transaction, timer))

    def terminated(self, transaction: Transaction) -> None:
        if isinstance(transaction, ClientTransaction):
            if self._clients.get(transaction.key) is transaction:
                del self._clients[transaction.key]
            return
        if isinstance(transaction, ServerTransaction):
            self.answered(transaction)
        if self._servers.get(transaction.key) is transaction:
            del self._servers[transaction.key]

    def answered(self, transaction: Transaction) -> None:
        if isinstance(transaction, ServerTransaction) and transaction.pending_size:
            self.pending_bytes -= transaction.pending_size
            transaction.pending_size = 0

    # -- inputs ----------------------------------------------------------------------
    def receive(
        self, message: Request | Response, source: Source, now: float, size: int | None = None
    ) -> bool:
        """A message from the transport (already parsed and checked by the parser).

        ``size`` is its wire size when the caller knows it (else it is
        estimated). Returns True for a response that matched one of our
        client transactions: its sender received our request (it echoes our
        branch).
        """
        if isinstance(message, Response):
            return self._receive_response(message, now)
        self._receive_request(message, source, now, size)
        return False

    def _receive_response(self, response: Response, now: float) -> bool:
        key = matching.client_key(response)
        transaction = self._clients.get(key) if key is not None else None
        if transaction is None:
            # §17.1.3 no match: the core decides (2xx of a forked INVITE, RFC 6026 §7.2).
            self.emit(ResponseReceived(response, None))
            return False
        transaction.receive_response(response, now)
        return True

    def _receive_request(
        self, request: Request, source: Source, now: float, size: int | None
    ) -> None:
        key = matching.server_key(request)
        transaction = self._servers.get(key)
        if transaction is not None:
            transaction.receive_request(request, source, now)
            return
        if request.method == "ACK":
            # An ACK for a 2xx is its own transaction, owned by the TU (§17.2.3).
            self.emit(RequestReceived(request, source, None))
            return
        verdict = self.admission.check(
            request,
            source.host,
            now,
            transactions=len(self._servers) + len(self._clients),
            pending_bytes=self.pending_bytes,
        )
        if verdict is not Verdict.ADMIT:
            if verdict is Verdict.SHED:
                self.emit(SendResponse(self._busy(request, key), source, None))
            return
        server: ServerTransaction
        if request.method == "INVITE":
            server = InviteServerTransaction(key, request, source, self.config, self)
        else:
            server = NonInviteServerTransaction(key, request, source, self.config, self)
        if size is None:
            size = request_size(request)
        server.pending_size = size
        self.pending_bytes += size
        self._servers[key] = server
        server.start(now)

    def _busy(self, request: Request, key: Hashable) -> Response:
        """The stateless 503 of a shed request; its To tag is the same for retransmissions."""
        tag = hashlib.blake2s(repr(key).encode(), digest_size=6).hexdigest()
        retry = str(self.admission.config.retry_after)
        try:
            return request.reply(503, headers=[("Retry-After", retry)], to_tag=tag)
        except ParseError:
            return request.reply(503, headers=[("Retry-After", retry)])

    def send_request(self, request: Request, target: Target, now: float) -> ClientTransaction:
        """Start a client transaction for ``request`` (not ACK: see ``send_ack``)."""
        if request.method == "ACK":
            raise LocalProtocolError("an ACK has no client transaction: use send_ack()")
        key = matching.client_key(request)
        if key is None:
            raise LocalProtocolError("a request needs a Via with a branch")
        if key in self._clients:
            raise LocalProtocolError(f"branch {key[0]!r} is already in use for {key[1]}")
        transaction: ClientTransaction
        if request.method == "INVITE":
            transaction = InviteClientTransaction(key, request, target, self.config, self)
        else:
            transaction = NonInviteClientTransaction(key, request, target, self.config, self)
        self._clients[key] = transaction
        transaction.start(now)
        return transaction

    def send_ack(self, ack: Request, target: Target) -> None:
        """Send the ACK for a 2xx: no transaction, the TU retransmits it (§13.2.2.4)."""
        self.emit(SendRequest(ack, target, None))

    def respond(self, transaction: ServerTransaction, response: Response, now: float) -> bool:
        """Send a response from the TU through its server transaction.

        A transaction that already ended (its connection failed, §17.2.4)
        takes nothing: the response is dropped and False returned. Any other
        response its state forbids raises LocalProtocolError.
        """
        if transaction.terminated:
            return False
        transaction.send_response(response, now)
        return True

    def send_stateless_response(self, response: Response, source: Source) -> None:
        """Send a response outside any transaction (e.g. a 400 for a broken request)."""
        self.emit(SendResponse(response, source, None))

    def transport_error(self, transaction: Transaction, now: float) -> None:
        """The transport failed to send for ``transaction``."""
        if isinstance(transaction, ClientTransaction | ServerTransaction):
            transaction.transport_error(now)

    # -- lookups -----------------------------------------------------------------------
    def find_invite(self, cancel: Request) -> InviteServerTransaction | None:
        """The INVITE server transaction a CANCEL refers to (§9.2), if any."""
        transaction = self._servers.get(matching.invite_key_for(cancel))
        return transaction if isinstance(transaction, InviteServerTransaction) else None

    def client(self, key: Hashable) -> ClientTransaction | None:
        return self._clients.get(key)

    def server(self, key: Hashable) -> ServerTransaction | None:
        return self._servers.get(key)

    def __len__(self) -> int:
        return len(self._clients) + len(self._servers)

    # -- time and events ---------------------------------------------------------------
    def next_timer(self) -> float | None:
        """The earliest deadline across all transactions, or None."""
        heap = self._heap
        while heap:
            deadline, _, transaction, timer = heap[0]
            if transaction.timer_deadline(timer) == deadline:
                return deadline
            heapq.heappop(heap)  # stopped, restarted or terminated since
        return None

    def handle_timer(self, now: float) -> None:
        """Fire every timer due at ``now``."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, _, transaction, timer = heapq.heappop(heap)
            transaction.fire(timer, deadline)

    def next_event(self) -> Event | None:
        """The next event for the transport or the TU, or None."""
        return self._events.popleft() if self._events else None

    def events(self) -> list[Event]:
        """Every queued event, oldest first."""
        out = list(self._events)
        self._events.clear()
        return out
