"""The stateful forking proxy of RFC 3261 §16: one transaction user for a whole proxy.

Sans-I/O, like the UA core. The edge (``sipwire.server``) feeds it the
events of the transaction layer and the time, answers its questions and
pulls its events::

    proxy = StatefulProxy(layer, policy, table, ids, issuer)
    proxy.wall_offset = time.time() - loop.time()
    proxy.handle(event, now)                 # every TU event of the transaction layer
    proxy.handle_timer(now)                  # when now >= proxy.next_timer()
    while (ev := proxy.next_event()) is not None:
        LookupTargets  -> proxy.targets_found(ev.ticket, await store.bindings(ev.aor, wall), now)
        ResolveTargets -> proxy.targets_resolved(ev.ticket, await resolver.resolve(ev.uri), now)
        LookupUser     -> proxy.user_found(ev.ticket, await store.get_user(name, realm), now)
        UseNonceCount  -> proxy.nonce_count_used(ev.ticket, await store.use_nonce_count(...), now)
        RequestAnswered -> metrics

When the transaction layer says ``SendRequest`` to a target, the edge asks
``proxy.flow_for(target)`` for the connection to use (the flow a phone
registered on, RFC 5626), or None for the usual choice.

What happens to each request:

- a new request: §16.3 (``validate.py``: 400/416/420/482/483, an OPTIONS
  at Max-Forwards 0 answered), 100 Trying at once for an INVITE, §16.4
  (``routing.py``), then the pipeline (``pipeline.py``: routing table,
  authentication, location service) and a response context
  (``context.py``) that forks, collects and answers;
- a CANCEL: 200 and the branches cancelled when its INVITE has a response
  context here (§16.10); 481 otherwise (there is nothing it could cancel
  here: this proxy forwards every INVITE statefully);
- an ACK for a 2xx (no transaction: §17.2.3): routed end to end,
  statelessly (§16.11), by its Route or flow token; an ACK for a non-2xx
  ends in the server transaction (hop by hop, §17.2.1);
- a response no client transaction matches (a 2xx retransmitted after its
  transaction ended): forwarded statelessly by its Via (§16.7).
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from collections.abc import Sequence
from typing import Final

from sipwire.auth.nonce import NonceIssuer
from sipwire.dialog.ids import IdSource
from sipwire.errors import ParseError
from sipwire.message import Request
from sipwire.message.validate import Rejection
from sipwire.proxy.branch import loop_hash
from sipwire.proxy.context import Branch, ProxyTransaction
from sipwire.proxy.events import ProxyEvent, Queries
from sipwire.proxy.pipeline import Drop, Job, Outcome, Pipeline, Proceed, Reply
from sipwire.proxy.policy import ProxyPolicy
from sipwire.proxy.routes import RoutingTable
from sipwire.proxy.routing import DIALOG_CREATING, caller_flow, preprocess
from sipwire.proxy.stateless import Forwarder, route_response
from sipwire.proxy.targets import Candidate
from sipwire.proxy.validate import check
from sipwire.registrar.model import Binding, User
from sipwire.registrar.rules import derived_to_tag
from sipwire.timerheap import TimerHeap
from sipwire.transaction.client import ClientTransaction
from sipwire.transaction.events import (
    Event,
    RequestReceived,
    ResponseReceived,
    TransactionTerminated,
    TransactionTimedOut,
)
from sipwire.transaction.layer import TransactionLayer
from sipwire.transaction.server import InviteServerTransaction, ServerTransaction
from sipwire.transport.address import Source, Target

__all__ = ["StatefulProxy"]

log = logging.getLogger("sipwire.proxy")

FLOWS_KEPT: Final = 65536
"""Targets remembered with the flow to reach them (the oldest are forgotten first)."""


class StatefulProxy:
    """The transaction user of a stateful proxy (see the module docstring)."""

    def __init__(
        self,
        layer: TransactionLayer,
        policy: ProxyPolicy,
        table: RoutingTable,
        ids: IdSource,
        issuer: NonceIssuer,
    ) -> None:
        self.layer = layer
        self.policy = policy
        self.table = table
        self.ids = ids
        self.queries = Queries(policy.max_pending)
        self.pipeline = Pipeline(policy, table, self.queries, issuer)
        self.timers = TimerHeap()
        self.forwarder = Forwarder(policy, self.queries, layer.send_ack, self.note_flow)
        self.hops = self.forwarder.hops
        """Targets of next hops that need no DNS (IP addresses), shared with the forwarder."""
        self._contexts: dict[int, ProxyTransaction] = {}
        """Response contexts by server transaction (id)."""
        self._clients: dict[int, tuple[ProxyTransaction, Branch]] = {}
        """Branches by client transaction (id), until the transaction terminates."""
        self._flows: OrderedDict[Target, tuple[int, str]] = OrderedDict()

    @property
    def wall_offset(self) -> float:
        """Wall-clock seconds minus the clock passed in (for nonces and binding expiry)."""
        return self.pipeline.wall_offset

    @wall_offset.setter
    def wall_offset(self, value: float) -> None:
        self.pipeline.wall_offset = value

    # -- for the response contexts --------------------------------------------------------
    def emit(self, event: ProxyEvent) -> None:
        self.queries.events.append(event)

    def bind(
        self, transaction: ClientTransaction, context: ProxyTransaction, branch: Branch
    ) -> None:
        self._clients[id(transaction)] = (context, branch)

    def note_flow(self, target: Target, flow: int, node: str = "") -> None:
        """Requests to ``target`` go out on the connection ``flow`` of ``node`` (RFC 5626;
        "": this one)."""
        self._flows[target] = (flow, node)
        self._flows.move_to_end(target)
        while len(self._flows) > FLOWS_KEPT:
            self._flows.popitem(last=False)

    def flow_for(self, target: Target) -> int | None:
        """The connection of this node to send to ``target`` on, or None (the transport
        decides)."""
        known = self._flows.get(target)
        if known is None or known[1] not in ("", self.policy.node):
            return None
        return known[0]

    def remote_flow(self, target: Target) -> tuple[str, int] | None:
        """(node, connection) when ``target`` is reached through a flow another node
        holds (a worker process of the same server may relay to it), else None."""
        known = self._flows.get(target)
        if known is None or known[1] in ("", self.policy.node):
            return None
        return known[1], known[0]

    # -- answers from the edge ------------------------------------------------------------
    def targets_found(self, ticket: int, bindings: Sequence[Binding] | None, now: float) -> None:
        """The answer to ``LookupTargets``: the AOR's bindings (empty: none; None: the
        location service failed, and the request gets 503)."""
        self.queries.answer(ticket, None if bindings is None else list(bindings), now)

    def targets_resolved(self, ticket: int, targets: Sequence[Target], now: float) -> None:
        """The answer to ``ResolveTargets``: RFC 3263 targets in order (empty: none)."""
        self.queries.answer(ticket, list(targets), now)

    def user_found(self, ticket: int, user: User | None, now: float) -> None:
        """The answer to ``LookupUser``."""
        self.queries.answer(ticket, user, now)

    def nonce_count_used(self, ticket: int, fresh: bool, now: float) -> None:
        """The answer to ``UseNonceCount``: False for a replayed nonce-count."""
        self.queries.answer(ticket, fresh, now)

    # -- transaction-layer events -----------------------------------------------------------
    def handle(self, event: Event, now: float) -> None:
        """One TU event of the transaction layer."""
        if isinstance(event, ResponseReceived):
            self._on_response(event, now)
        elif isinstance(event, RequestReceived):
            request, tx = event.request, event.transaction
            try:
                if tx is None:
                    if request.method == "ACK":
                        self._on_ack(request, event.source, now)
                elif isinstance(tx, ServerTransaction):
                    self._on_request(request, tx, now)
            except ParseError as exc:
                log.info("malformed %s: %s", request.method, exc.reason)
                if isinstance(tx, ServerTransaction) and not tx.final_sent:
                    with contextlib.suppress(ParseError):
                        self.layer.respond(tx, request.reply(400, exc.reason[:100]), now)
        elif isinstance(event, TransactionTerminated):
            self._clients.pop(id(event.transaction), None)
            context = self._contexts.pop(id(event.transaction), None)
            if context is not None:
                context.server_gone(now)
        elif isinstance(event, TransactionTimedOut):
            log.debug("transaction gave up: %s (%s)", event.transaction, event.reason)

    def _on_request(self, request: Request, tx: ServerTransaction, now: float) -> None:
        policy = self.policy
        rejection = check(request, policy)
        if rejection is not None:
            self._reject(tx, request, rejection, now)
            return
        if request.method == "CANCEL":
            self._on_cancel(request, tx, now)
            return
        if isinstance(tx, InviteServerTransaction):
            self.layer.respond(tx, request.reply(100), now)  # stop the retransmissions now
        loop = loop_hash(request, request.via[0])
        source = tx.source
        info = preprocess(request, source, policy, self.table.domains)
        # Only a record-routed request carries the caller's flow (in its Record-Route).
        record_route = (
            policy.record_route and request.method in DIALOG_CREATING and request.to.tag is None
        )
        context = ProxyTransaction(
            self,
            tx,
            request,
            loop=loop,
            info=info,
            inbound=policy.inbound(source.transport, source.local_host, source.local_port),
            caller_flow=caller_flow(request, source, policy) if record_route else None,
        )
        self._contexts[id(tx)] = context
        job = Job(request, source, info, lambda j, o, t: self._job_done(context, j, o, t))
        context.job = job
        context.started_at = now
        self.pipeline.start(job, now)
        if job.ticket is not None:
            context.watch(now)

    def _job_done(self, context: ProxyTransaction, job: Job, outcome: Outcome, now: float) -> None:
        if isinstance(outcome, Proceed):
            context.start(outcome.plan, now)
        elif isinstance(outcome, Reply):
            context.reply(outcome.response, now)
        else:
            assert isinstance(outcome, Drop)
            context.reply(job.request.reply(404, to_tag=derived_to_tag(job.request)), now)

    def _reject(
        self, tx: ServerTransaction, request: Request, rejection: Rejection, now: float
    ) -> None:
        to_tag = None if request.to.tag is not None else derived_to_tag(request)
        self.layer.respond(tx, rejection.response(request, to_tag=to_tag), now)

    def _on_cancel(self, cancel: Request, tx: ServerTransaction, now: float) -> None:
        invite = self.layer.find_invite(cancel)
        context = self._contexts.get(id(invite)) if invite is not None else None
        if context is None:
            # §16.10 would forward it statelessly; every INVITE this proxy forwards has
            # a response context, so there is nothing downstream it could cancel.
            self.layer.respond(tx, cancel.reply(481), now)
            return
        self.layer.respond(tx, cancel.reply(200, to_tag=derived_to_tag(cancel)), now)
        context.cancel(now)

    def _on_ack(self, ack: Request, source: Source, now: float) -> None:
        """An ACK for a 2xx: end to end, forwarded statelessly (§16.11) by its route."""
        if check(ack, self.policy, loops=False) is not None:
            return  # an ACK is never answered
        loop = loop_hash(ack, ack.via[0])
        info = preprocess(ack, source, self.policy, self.table.domains)
        if not (info.through_us or self.policy.is_trusted(source.host)):
            return  # not routed through us: nothing to do with it
        candidate = Candidate(None, destination=info.flow)
        self.forwarder.forward(ack, loop, candidate, now)

    def _on_response(self, event: ResponseReceived, now: float) -> None:
        response = event.response
        transaction = event.transaction
        if transaction is None:
            # §16.7: no client transaction matches: forward it as a stateless proxy.
            routed = route_response(response, self.policy)
            if routed is not None:
                self.layer.send_stateless_response(*routed)
            return
        entry = self._clients.get(id(transaction))
        if entry is None:
            return  # e.g. the response to a CANCEL we sent: it ends here (§16.7 step 3)
        context, branch = entry
        assert isinstance(transaction, ClientTransaction)
        try:
            context.on_response(branch, transaction, response, event.local, now)
        except ParseError as exc:
            log.info("dropped response %d: %s", response.status, exc.reason)

    # -- time and events ------------------------------------------------------------------
    def next_timer(self) -> float | None:
        """When Timer C of some branch is next due, or None."""
        return self.timers.next_deadline()

    def handle_timer(self, now: float) -> None:
        self.timers.fire(now)

    def next_event(self) -> ProxyEvent | None:
        """The next question or report for the edge, or None."""
        events = self.queries.events
        return events.popleft() if events else None

    def events(self) -> list[ProxyEvent]:
        out = list(self.queries.events)
        self.queries.events.clear()
        return out

    @property
    def contexts(self) -> list[ProxyTransaction]:
        """The response contexts alive (for tests and metrics)."""
        return list(self._contexts.values())
