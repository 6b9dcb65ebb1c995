"""The stateless proxy of RFC 3261 §16.11, and stateless forwarding for the stateful one.

"When acting statelessly, a proxy is a simple message forwarder": no
transactions, no retransmissions of its own, no 100 Trying. It takes
messages straight from the transport::

    proxy = StatelessProxy(policy, table, issuer)
    proxy.receive(message, source, now)     # every parsed message, after stamp_via
    while (ev := proxy.next_event()) is not None:
        SendRequest / SendResponse -> the transport (``flow_for(target)`` names the
                                      connection when a flow is known)
        LookupTargets, ResolveTargets, LookupUser, UseNonceCount -> as for StatefulProxy

- Requests: §16.3 to §16.5 as in the stateful proxy (``validate``,
  ``routing``, ``pipeline``), then one target only, chosen from the message
  and the configuration alone (the highest q, then the lowest URI), so that
  a retransmission, the CANCEL and the non-2xx ACK of an INVITE all go the
  same way; the branch is computed from the received one
  (``branch.stateless_branch``), so they also share a branch. Our own
  answers (400, 403, 407, 480 ...) are sent without a transaction: a
  retransmitted request is answered again. CANCEL and ACK are never
  challenged (they cannot be resubmitted with credentials), and the
  nonce-count of a credential is not checked (a retransmission would look
  like a replay; a nonce stays valid for its lifetime only).
- Responses: routed by Via alone: ours is removed and the response goes to
  the next Via (its received address and rport); a response whose top Via
  is not ours is dropped.

:class:`Forwarder` is the same stateless forwarding for one request; the
stateful proxy uses it for the ACK of a 2xx, which is routed end to end.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from typing import Final

from sipwire.auth.nonce import NonceIssuer
from sipwire.errors import ParseError, SipError
from sipwire.message import Request, Response, SipUri
from sipwire.message.validate import Rejection
from sipwire.proxy.branch import add_via, loop_hash, prepare, stateless_branch, strip_top_via
from sipwire.proxy.events import ProxyEvent, Queries
from sipwire.proxy.pipeline import Drop, Job, Outcome, Pipeline, Proceed, Reply
from sipwire.proxy.policy import Interface, ProxyPolicy
from sipwire.proxy.routes import RoutingTable
from sipwire.proxy.routing import (
    DIALOG_CREATING,
    FlowToken,
    add_record_route,
    caller_flow,
    next_hop,
    preprocess,
)
from sipwire.proxy.targets import Candidate, DirectHops, TargetPlan
from sipwire.proxy.validate import check
from sipwire.registrar.model import Binding, User
from sipwire.registrar.rules import derived_to_tag
from sipwire.transaction.events import SendRequest, SendResponse
from sipwire.transport.address import DEFAULT_PORTS, RELIABLE, Source, Target
from sipwire.transport.routing import strip_brackets

__all__ = ["Forwarder", "StatelessProxy", "choose_one", "route_response"]

log = logging.getLogger("sipwire.proxy")

FLOWS_KEPT: Final = 65536


def route_response(response: Response, policy: ProxyPolicy) -> tuple[Response, Source] | None:
    """§16.11: remove our topmost Via and say where the next Via sends the response.

    None when the top Via is not ours ("the message MUST be silently
    discarded") or no Via is left (the response was for us). The Source
    names the next hop as the request came from it: the received address
    and rport when the next hop's Via has them (§18.2.2), else its sent-by.
    """
    try:
        vias = response.via
    except ParseError:
        return None
    if len(vias) < 2 or not policy.sent_by_us(vias[0]):
        return None
    strip_top_via(response)
    nxt = vias[1]
    transport = nxt.transport.lower()
    host = strip_brackets(nxt.received or nxt.host)
    if host == "255.255.255.255":
        return None
    port = nxt.rport or nxt.port or DEFAULT_PORTS.get(transport, 5060)
    return response, Source(transport, host, port)


def choose_one(plan: TargetPlan) -> Candidate | None:
    """§16.11: "one and only one target", from the message and configuration alone: the
    first group's highest q, then the lowest URI text."""
    for group in plan.groups:
        candidates = group.candidates
        if len(candidates) == 1:
            return candidates[0]
        if candidates:
            return min(group.candidates, key=lambda c: (-c.q, str(c.uri or "")))
    return None


class Forwarder:
    """Forward one request statelessly to one target (§16.11, §16.6 steps 1-10)."""

    def __init__(
        self,
        policy: ProxyPolicy,
        queries: Queries,
        send: Callable[[Request, Target], None],
        note_flow: Callable[[Target, int, str], None],
    ) -> None:
        self.policy = policy
        self.queries = queries
        self.send = send
        self.note_flow = note_flow
        self.hops = DirectHops(policy.transports)
        """Targets of next hops that need no DNS (IP addresses)."""

    def forward(
        self,
        request: Request,
        loop: str,
        candidate: Candidate,
        now: float,
        *,
        plan: TargetPlan | None = None,
        inbound: Interface | None = None,
        inbound_flow: FlowToken | None = None,
    ) -> None:
        """Forward ``request`` (after §16.4) to ``candidate``; ``loop`` is the loop part of
        the branch, computed on the request as received. With ``inbound`` (the interface
        it arrived on), a dialog-creating request is record-routed."""
        top = request.via[0]
        try:
            copy, strict = prepare(
                request,
                candidate.uri,
                routes=candidate.routes,
                add_headers=plan.add_headers if plan is not None else (),
                remove_headers=plan.remove_headers if plan is not None else (),
                max_forwards=self.policy.default_max_forwards,
            )
        except ParseError as exc:
            log.info("not forwarded statelessly: %s", exc.reason)
            return
        branch = stateless_branch(request, loop)

        def send(target: Target) -> None:
            iface = self.policy.interface_for(target)
            if iface is None:
                log.info("no interface to send %s to %s", request.method, target)
                return
            if inbound is not None and request.method in DIALOG_CREATING and request.to.tag is None:
                add_record_route(
                    copy,
                    inbound,
                    iface,
                    secret=self.policy.flow_secret,
                    inbound_flow=inbound_flow,
                    outbound_flow=candidate.destination,
                )
            add_via(copy, iface.via(branch, target.transport))
            destination = candidate.destination
            if destination is not None and destination.flow is not None:
                self.note_flow(target, destination.flow, destination.node)
            self.send(copy, target)

        if candidate.destination is not None:
            send(candidate.destination.target)
            return
        hop = next_hop(copy, strict)
        if not isinstance(hop, SipUri):
            log.info("cannot route %s statelessly to %s", request.method, hop)
            return
        try:
            targets = self.hops.targets(hop, lambda: _NoRandom(top.branch or ""))
        except SipError as exc:
            log.info("cannot route %s to %s: %s", request.method, hop, exc.reason)
            return
        if targets is not None:
            if targets:
                send(targets[0])
            return

        def resolved(targets: object, now: float) -> None:
            usable = [
                t
                for t in (targets if isinstance(targets, list) else [])
                if isinstance(t, Target) and self.policy.interface_for(t) is not None
            ]
            if usable:
                send(usable[0])

        try:
            self.queries.resolve(hop, resolved)
        except OverflowError:
            log.warning("stateless %s dropped: too many lookups", request.method)


class _NoRandom:
    """RFC 2782 weights for a stateless proxy: "a retransmitted request MUST be forwarded
    to the same destination" (§16.11), so the 'random' draw is the same every time."""

    __slots__ = ("_value",)

    def __init__(self, seed: str) -> None:
        self._value = (sum(seed.encode()) % 997) / 997

    def random(self) -> float:
        return self._value


class StatelessProxy:
    """A stateless proxy (see the module docstring)."""

    def __init__(self, policy: ProxyPolicy, table: RoutingTable, issuer: NonceIssuer) -> None:
        self.policy = policy
        self.table = table
        self.queries = Queries(policy.max_pending)
        self.pipeline = Pipeline(policy, table, self.queries, issuer)
        self.pipeline.count_nonces = False
        self.sends: deque[SendRequest | SendResponse] = deque()
        self.forwarder = Forwarder(policy, self.queries, self._send_request, self.note_flow)
        self._flows: OrderedDict[Target, tuple[int, str]] = OrderedDict()

    @property
    def wall_offset(self) -> float:
        return self.pipeline.wall_offset

    @wall_offset.setter
    def wall_offset(self, value: float) -> None:
        self.pipeline.wall_offset = value

    # -- input --------------------------------------------------------------------------
    def receive(self, message: Request | Response, source: Source, now: float) -> None:
        """A message from the transport (parsed, its top Via stamped, §18.2.1)."""
        if source.flow is not None and source.transport.lower() in RELIABLE:
            self.note_flow(Target(source.transport.lower(), source.host, source.port), source.flow)
        if isinstance(message, Response):
            routed = route_response(message, self.policy)
            if routed is not None:
                self.sends.append(SendResponse(routed[0], routed[1], None))
            return
        try:
            self._on_request(message, source, now)
        except ParseError as exc:
            log.info("malformed %s: %s", message.method, exc.reason)
            if message.method != "ACK":
                self._respond(message.reply(400, exc.reason[:100]), source)

    def _on_request(self, request: Request, source: Source, now: float) -> None:
        is_ack = request.method == "ACK"
        rejection = check(request, self.policy, loops=not is_ack)
        if rejection is not None:
            if not is_ack:
                self._reject(request, rejection, source)
            return
        if is_ack and request.to.tag is not None and request.to.tag == derived_to_tag(request):
            # The ACK of a final response this proxy made (407, 480 ...: its To tag is
            # derived from the INVITE, as this ACK's is): it ends here (§17.1.1.3).
            return
        loop = loop_hash(request, request.via[0])
        info = preprocess(request, source, self.policy, self.table.domains)
        inbound = self.policy.inbound(source.transport, source.local_host, source.local_port)
        # Only a record-routed request carries the caller's flow (in its Record-Route).
        record_route = (
            self.policy.record_route
            and request.method in DIALOG_CREATING
            and request.to.tag is None
        )
        flow = caller_flow(request, source, self.policy) if record_route else None

        def done(job: Job, outcome: Outcome, now: float) -> None:
            if isinstance(outcome, Reply):
                if not is_ack:
                    self._respond(outcome.response, source)
            elif isinstance(outcome, Proceed):
                candidate = choose_one(outcome.plan)
                if candidate is not None:
                    self.forwarder.forward(
                        request,
                        loop,
                        candidate,
                        now,
                        plan=outcome.plan,
                        inbound=inbound if self.policy.record_route else None,
                        inbound_flow=flow,
                    )
            else:
                assert isinstance(outcome, Drop)

        self.pipeline.start(Job(request, source, info, done), now)

    def _reject(self, request: Request, rejection: Rejection, source: Source) -> None:
        try:
            to_tag = None if request.to.tag is not None else derived_to_tag(request)
            self._respond(rejection.response(request, to_tag=to_tag), source)
        except ParseError:
            self._respond(rejection.response(request), source)

    def _respond(self, response: Response, source: Source) -> None:
        self.sends.append(SendResponse(response, source, None))

    def _send_request(self, request: Request, target: Target) -> None:
        self.sends.append(SendRequest(request, target, None))

    def note_flow(self, target: Target, flow: int, node: str = "") -> None:
        """Messages to ``target`` go out on the connection ``flow`` of ``node`` (RFC 5626;
        "": this one)."""
        self._flows[target] = (flow, node)
        self._flows.move_to_end(target)
        while len(self._flows) > FLOWS_KEPT:
            self._flows.popitem(last=False)

    def flow_for(self, target: Target) -> int | None:
        """The connection of this node to send to ``target`` on (a flow), or None."""
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
        """The answer to ``LookupTargets`` (None: the location service failed: 503)."""
        self.queries.answer(ticket, None if bindings is None else list(bindings), now)

    def targets_resolved(self, ticket: int, targets: list[Target], now: float) -> None:
        self.queries.answer(ticket, list(targets), now)

    def user_found(self, ticket: int, user: User | None, now: float) -> None:
        self.queries.answer(ticket, user, now)

    def nonce_count_used(self, ticket: int, fresh: bool, now: float) -> None:
        self.queries.answer(ticket, fresh, now)

    # -- output -------------------------------------------------------------------------
    def next_event(self) -> SendRequest | SendResponse | ProxyEvent | None:
        """What to send, else the next question for the edge, else None."""
        if self.sends:
            return self.sends.popleft()
        events = self.queries.events
        return events.popleft() if events else None

    def next_timer(self) -> float | None:
        return None  # no timers: no transactions

    def handle_timer(self, now: float) -> None:
        pass
