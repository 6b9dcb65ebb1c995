"""The response context of a stateful proxy (RFC 3261 §16.6, §16.7, §16.8, §16.10).

One :class:`ProxyTransaction` per server transaction: its target plan, a
:class:`Branch` per target (each branch a client transaction at a time,
the next RFC 3263 target after a timeout, a transport error or a 503), the
final responses received, and what went upstream.

Forking (§16.6): the groups of the plan are tried in order, the targets of
a group in parallel; the next group starts when every branch of the
current one ended without a 2xx or a 6xx (and, for a route's gateways,
with a failover status).

Responses (§16.7): a 100 stops there; other provisionals go upstream and
restart Timer C; every 2xx goes upstream at once (all of them, from every
branch: the caller ACKs and ends what it does not want) and the pending
branches are cancelled; a 6xx cancels the pending branches and no new
branch starts; other finals are kept, and when every branch has ended the
best one goes upstream (``responses.choose_best``), with the challenges of
every 401 and 407 merged into it (step 7). After the final response the pending
branches are cancelled (step 10).

Timer C (§16.6 step 11, §16.8), per INVITE branch, longer than 3 minutes
and restarted by each provisional but 100: when it fires, a branch that
had a provisional response is cancelled, and either way the branch ends
as if it had received 408 (Request Timeout).

CANCEL (§16.10): the caller's CANCEL is answered 200 by the proxy, every
pending branch is cancelled (a branch that had no provisional yet gets its
CANCEL when one arrives, §9.1, and counts as ended), and once the branches
have ended the caller gets 487 (Request Terminated).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sipwire.errors import LocalProtocolError, ParseError, SipError
from sipwire.message import Request, Response, SipUri
from sipwire.proxy.branch import (
    add_via,
    build_cancel,
    copy_request,
    prepare,
    stateful_branch,
    strip_top_via,
)
from sipwire.proxy.events import RequestAnswered
from sipwire.proxy.pipeline import Job
from sipwire.proxy.policy import Interface
from sipwire.proxy.responses import choose_best
from sipwire.proxy.routing import DIALOG_CREATING, FlowToken, RouteInfo, add_record_route, next_hop
from sipwire.proxy.targets import Candidate, Group, TargetPlan, recursion_candidates
from sipwire.registrar.rules import derived_to_tag
from sipwire.timerheap import TimerHandle
from sipwire.transaction.client import ClientTransaction
from sipwire.transaction.server import ServerTransaction
from sipwire.transport.address import Target
from sipwire.transport.rfc3263 import TargetSet

if TYPE_CHECKING:
    from sipwire.proxy.stateful import StatefulProxy

__all__ = ["Branch", "ProxyTransaction"]

log = logging.getLogger("sipwire.proxy")


class Branch:
    """One target of the response context: its copy of the request and its transactions."""

    __slots__ = (
        "asked_at",
        "cancel_pending",
        "cancel_sent",
        "candidate",
        "done",
        "failure",
        "prepared",
        "provisional",
        "strict",
        "target",
        "targets",
        "ticket",
        "timer_c",
        "transaction",
        "wire",
    )

    def __init__(self, candidate: Candidate) -> None:
        self.candidate = candidate
        self.prepared: Request | None = None
        """The copy after §16.6 steps 1-6 (each transmission copies it again)."""
        self.strict = False
        self.targets: TargetSet | None = None
        self.target: Target | None = None
        self.transaction: ClientTransaction | None = None
        self.wire: Request | None = None
        """The request as last sent (for its CANCEL)."""
        self.ticket: int | None = None
        self.asked_at = 0.0
        """When the branch asked the edge for its next hop's targets."""
        self.timer_c: TimerHandle | None = None
        self.provisional = False
        self.done = False
        """Ended: a final response, Timer C, cancelled before it began, or unreachable."""
        self.cancel_pending = False
        self.cancel_sent = False
        self.failure: Response | None = None
        """The last 503 of a target before moving on to the next one."""

    def __repr__(self) -> str:
        return f"<Branch {self.candidate.uri} target={self.target} done={self.done}>"


class ProxyTransaction:
    """The response context of one server transaction (see the module docstring)."""

    def __init__(
        self,
        proxy: StatefulProxy,
        server: ServerTransaction,
        request: Request,
        *,
        loop: str,
        info: RouteInfo,
        inbound: Interface,
        caller_flow: FlowToken | None,
    ) -> None:
        self.proxy = proxy
        self.server = server
        self.request = request
        self.method = request.method
        self.loop = loop
        self.info = info
        self.inbound = inbound
        self.caller_flow = caller_flow
        self.record_route = (
            proxy.policy.record_route and self.method in DIALOG_CREATING and request.to.tag is None
        )
        self.job: Job | None = None
        self.plan = TargetPlan()
        self.groups: list[Group] = []
        self.advance_on: frozenset[int] | None = None
        self.group_statuses: list[int] = []
        self.branches: list[Branch] = []
        self.responses: list[Response] = []
        self.tried: list[SipUri] = []
        self.redirects = proxy.policy.max_redirects
        self.final_sent = False
        self.sent_2xx = False
        self.cancelled = False
        self.terminal = False
        """A 2xx (INVITE) or a 6xx arrived: no new branch (§16.7 step 5)."""
        self._starting = False
        self.started_at = 0.0
        self._edge_timer: TimerHandle | None = None

    def __repr__(self) -> str:
        return f"<ProxyTransaction {self.method} {self.request.uri} branches={len(self.branches)}>"

    # -- the target set -----------------------------------------------------------------
    def start(self, plan: TargetPlan, now: float) -> None:
        """Fork to ``plan`` (§16.6)."""
        self.job = None
        self.plan = plan
        self.groups = list(plan.groups)
        self._advance(now)

    def live(self) -> bool:
        return any(not b.done for b in self.branches)

    def _may_advance(self) -> bool:
        if self.advance_on is None:
            return True
        return all(s in self.advance_on for s in self.group_statuses)

    def _advance(self, now: float) -> None:
        """Start the next group, or answer upstream, once no branch is pending."""
        if self._starting:
            return
        while not self.live() and not self.final_sent:
            if self.groups and not (self.cancelled or self.terminal) and self._may_advance():
                group = self.groups.pop(0)
                self.advance_on = group.advance_on
                self.group_statuses = []
                self._starting = True
                try:
                    for candidate in group.candidates:
                        self._start_branch(candidate, now)
                finally:
                    self._starting = False
                continue
            best = choose_best(self.responses, self.request, cancelled=self.cancelled)
            self._send_final(best, now, forwarded=bool(self.responses))
            return

    def _start_branch(self, candidate: Candidate, now: float) -> None:
        proxy = self.proxy
        policy = proxy.policy
        branch = Branch(candidate)
        self.branches.append(branch)
        if isinstance(candidate.uri, SipUri):
            self.tried.append(candidate.uri)
        try:
            branch.prepared, branch.strict = prepare(
                self.request,
                candidate.uri,
                routes=candidate.routes,
                add_headers=self.plan.add_headers,
                remove_headers=self.plan.remove_headers,
                max_forwards=policy.default_max_forwards,
            )
        except ParseError as exc:
            self._local_final(branch, 500, f"Server Internal Error - {exc.reason}", now)
            return
        if candidate.destination is not None:
            self._resolved(branch, [candidate.destination.target], now)
            return
        hop = next_hop(branch.prepared, branch.strict)
        if not isinstance(hop, SipUri):
            self._local_final(branch, 416, f"Unsupported URI Scheme - {hop.scheme}", now)
            return
        try:
            targets = proxy.hops.targets(hop, lambda: proxy.ids)
        except SipError as exc:
            self._local_final(branch, exc.status, exc.reason, now)
            return
        if targets is not None:
            self._resolved(branch, targets, now)
            return
        try:
            branch.ticket = proxy.queries.resolve(
                hop, lambda targets, t: self._resolved(branch, targets, t)
            )
        except OverflowError:
            self._local_final(branch, 503, "Service Unavailable - too many lookups", now)
            return
        branch.asked_at = now
        self.watch(now)

    def _resolved(self, branch: Branch, targets: list[Target], now: float) -> None:
        """RFC 3263 targets of the branch's next hop are known."""
        branch.ticket = None
        if branch.done:
            return
        policy = self.proxy.policy
        usable = [t for t in targets if policy.interface_for(t) is not None]
        if not usable:
            reason = "no interface for the next hop" if targets else "next hop does not resolve"
            self._local_final(branch, 503, f"Service Unavailable - {reason}", now)
            return
        branch.targets = TargetSet(usable)
        self._transmit(branch, now)

    def _transmit(self, branch: Branch, now: float) -> None:
        """§16.6 steps 4, 8, 10 and 11 for the branch's next target."""
        proxy = self.proxy
        assert branch.targets is not None and branch.prepared is not None
        target = branch.targets.next()
        if target is None:
            # §16.6 step 7: the ordered set is exhausted: as if the target returned 408
            # (or the 503 it did return).
            if branch.failure is not None:
                self._branch_final(branch, branch.failure, now)
            else:
                self._local_final(branch, 408, "Request Timeout", now)
            return
        iface = proxy.policy.interface_for(target)
        assert iface is not None
        wire = copy_request(branch.prepared)
        destination = branch.candidate.destination
        if self.record_route:
            add_record_route(
                wire,
                self.inbound,
                iface,
                secret=proxy.policy.flow_secret,
                inbound_flow=self.caller_flow,
                outbound_flow=destination,
            )
        add_via(wire, iface.via(stateful_branch(self.loop, proxy.ids), target.transport))
        try:
            transaction = proxy.layer.send_request(wire, target, now)
        except SipError as exc:
            self._local_final(branch, 500, f"Server Internal Error - {exc.reason}", now)
            return
        if destination is not None and destination.flow is not None:
            proxy.note_flow(target, destination.flow, destination.node)
        branch.target = target
        branch.wire = wire
        branch.transaction = transaction
        proxy.bind(transaction, self, branch)
        if self.method == "INVITE":
            self._restart_timer_c(branch, now)

    # -- responses ----------------------------------------------------------------------
    def on_response(
        self,
        branch: Branch,
        transaction: ClientTransaction,
        response: Response,
        local: bool,
        now: float,
    ) -> None:
        """§16.7 for a response of one of the branch's client transactions."""
        status = response.status
        if 200 <= status < 300:
            self._on_2xx(branch, response, now)
            return
        if transaction is not branch.transaction:
            return  # an earlier attempt of the branch
        if status < 200:
            # Any provisional, 100 included, lets a CANCEL go (§9.1).
            branch.provisional = True
            if branch.cancel_pending:
                self._send_cancel(branch, now)
            if status == 100 or branch.done:
                return  # §16.7 step 5: a 100 is never forwarded; it does not touch Timer C
            if self.method == "INVITE":
                self._restart_timer_c(branch, now)  # §16.7 step 2
            if not self.final_sent and not self.cancelled:
                self._respond(strip_top_via(response), now)
            return
        if branch.done:
            return  # a branch ended by Timer C or a CANCEL already counts as ended
        if (local or status == 503) and not branch.provisional and branch.targets is not None:
            # RFC 3263 §4.3 and §16.6 step 7: the next address of the same target.
            assert branch.target is not None
            branch.targets.mark_failed(branch.target)
            if status == 503 and not local:
                branch.failure = response
            if branch.targets.next() is not None:
                self._transmit(branch, now)
                return
        self._branch_final(branch, response, now)

    def _on_2xx(self, branch: Branch, response: Response, now: float) -> None:
        if not branch.done:
            branch.done = True
            self._stop_timer_c(branch)
        strip_top_via(response)
        if self.method != "INVITE":
            if self.final_sent:
                return
            self._send_final(response, now, forwarded=True)
            return
        # §16.7 step 5: "Any 2xx response to an INVITE request" is forwarded at once,
        # before and after a final response went upstream.
        first = not self.sent_2xx
        self.terminal = True
        if (self.final_sent and not self.sent_2xx) or self.server.terminated:
            # A non-2xx went upstream already (Timer C, a CANCEL), or the server
            # transaction is over: the 2xx goes statelessly (§16.7 step 9: "If the server
            # transaction is no longer available to handle the transmission, the element
            # MUST forward the response statelessly").
            self.proxy.layer.send_stateless_response(response, self.server.source)
            return
        self.sent_2xx = True
        self._send_final(response, now, forwarded=True, event=first)

    def _branch_final(self, branch: Branch, response: Response, now: float) -> None:
        """A non-2xx final response ends the branch (§16.7 steps 4 and 5)."""
        branch.done = True
        self._stop_timer_c(branch)
        status = response.status
        self.group_statuses.append(status)
        keep = True
        if 300 <= status < 400 and self.plan.recurse and self.redirects > 0:
            keep = self._recurse(response)
        if status >= 600:
            self.terminal = True
            self._cancel_pending(now)
        if keep:
            if response.via and self.proxy.policy.sent_by_us(response.via[0]):
                strip_top_via(response)
            self.responses.append(response)
        self._advance(now)

    def _recurse(self, response: Response) -> bool:
        """§16.7 step 5: add the Contacts of a 3xx to the target set (bounded). Returns
        whether the response still goes into the context (it does unless every Contact
        was taken, and then without the ones taken)."""
        if self.terminal or self.cancelled:
            return True
        try:
            contacts = response.contact
        except ParseError:
            return True
        taken = recursion_candidates([c.uri for c in contacts], self.tried)[: self.redirects]
        if not taken:
            return True
        self.redirects -= len(taken)
        self.groups.insert(0, Group(taken))
        left = [c for c in contacts if all(c.uri != t.uri for t in taken)]
        if not left:
            return False
        response.headers.remove("Contact")
        for contact in left:
            response.headers.add("Contact", str(contact))
        return True

    def _local_final(self, branch: Branch, status: int, reason: str, now: float) -> None:
        """The branch ends with a response the proxy made up (unreachable target ...)."""
        request = branch.wire or self.request
        self._branch_final(branch, request.reply(status, reason), now)

    # -- upstream -----------------------------------------------------------------------
    def _respond(self, response: Response, now: float) -> bool:
        try:
            return self.proxy.layer.respond(self.server, response, now)
        except LocalProtocolError as exc:
            log.debug("response %d not sent upstream: %s", response.status, exc)
            return False

    def _send_final(
        self, response: Response, now: float, *, forwarded: bool, event: bool = True
    ) -> None:
        self.final_sent = True
        if self.job is not None:
            self.proxy.pipeline.close(self.job)
            self.job = None
        self._respond(response, now)
        if event:
            self.proxy.emit(RequestAnswered(self.method, response.status, forwarded))
        self._cancel_pending(now)  # §16.7 step 10

    def reply(self, response: Response, now: float) -> None:
        """A final response made by the proxy before any branch (the pipeline's)."""
        if not self.final_sent:
            self._send_final(response, now, forwarded=False)

    # -- the edge's answers -----------------------------------------------------------------
    def watch(self, now: float) -> None:
        """Something waits for the edge: make sure it does not wait longer than
        ``policy.edge_timeout`` (the edge must always answer; this is the backstop)."""
        if self._edge_timer is None:
            deadline = now + self.proxy.policy.edge_timeout
            self._edge_timer = self.proxy.timers.schedule(deadline, self._edge_timeout)

    def _edge_timeout(self, now: float) -> None:
        self._edge_timer = None
        timeout = self.proxy.policy.edge_timeout
        pending: list[float] = []
        if self.job is not None and not self.final_sent:
            if self.started_at + timeout <= now:
                log.warning("no answer from the edge for %s %s", self.method, self.request.uri)
                response = self.request.reply(
                    503,
                    "Service Unavailable - no answer from the location service",
                    [("Retry-After", "5")],
                    to_tag=derived_to_tag(self.request),
                )
                self._send_final(response, now, forwarded=False)
            else:
                pending.append(self.started_at)
        for branch in self.branches:
            if branch.ticket is None or branch.done:
                continue
            if branch.asked_at + timeout <= now:
                self.proxy.queries.forget(branch.ticket)
                branch.ticket = None
                self._local_final(branch, 503, "Service Unavailable - no answer from DNS", now)
            else:
                pending.append(branch.asked_at)
        if pending:
            self._edge_timer = self.proxy.timers.schedule(
                min(pending) + timeout, self._edge_timeout
            )

    # -- CANCEL, Timer C ------------------------------------------------------------------
    def cancel(self, now: float) -> None:
        """The caller's CANCEL (§16.10): cancel every pending branch, 487 when they end."""
        if self.final_sent or self.cancelled:
            return
        self.cancelled = True
        self.groups.clear()
        if self.job is not None:
            self.proxy.pipeline.close(self.job)
            self.job = None
        self._cancel_pending(now, end_unanswered=True)
        self._advance(now)

    def server_gone(self, now: float) -> None:
        """The server transaction ended before a final response: nobody is waiting."""
        if not self.final_sent:
            self.final_sent = True
            self.cancelled = True
            self.groups.clear()
            if self.job is not None:
                self.proxy.pipeline.close(self.job)
                self.job = None
            self._cancel_pending(now, end_unanswered=True)

    def _cancel_pending(self, now: float, *, end_unanswered: bool = False) -> None:
        """CANCEL every pending branch (§16.7 step 10, §16.10). A branch still waiting
        for DNS just ends; one without a provisional response gets its CANCEL when one
        arrives (§9.1) and, with ``end_unanswered``, counts as ended now."""
        for branch in self.branches:
            if branch.done:
                continue
            if branch.ticket is not None:
                self.proxy.queries.forget(branch.ticket)
                branch.ticket = None
                branch.done = True
                continue
            if self.method != "INVITE":
                continue  # a non-INVITE is not cancelled (§9.1); it ends by itself
            if branch.provisional:
                self._send_cancel(branch, now)
            else:
                branch.cancel_pending = True
                if end_unanswered:
                    branch.done = True
                    self._stop_timer_c(branch)

    def _send_cancel(self, branch: Branch, now: float) -> None:
        branch.cancel_pending = False
        if branch.cancel_sent or branch.wire is None or branch.target is None:
            return
        branch.cancel_sent = True
        try:
            self.proxy.layer.send_request(build_cancel(branch.wire), branch.target, now)
        except SipError as exc:
            log.info("CANCEL of %s not sent: %s", branch, exc.reason)

    def _restart_timer_c(self, branch: Branch, now: float) -> None:
        self._stop_timer_c(branch)
        deadline = now + self.proxy.policy.timer_c
        branch.timer_c = self.proxy.timers.schedule(deadline, lambda t: self._timer_c(branch, t))

    def _stop_timer_c(self, branch: Branch) -> None:
        if branch.timer_c is not None:
            branch.timer_c.cancel()
            branch.timer_c = None

    def _timer_c(self, branch: Branch, now: float) -> None:
        """§16.8: CANCEL a branch that had a provisional response; either way it ends
        as if it had received 408."""
        branch.timer_c = None
        if branch.done:
            return
        if branch.provisional:
            self._send_cancel(branch, now)
        self._local_final(branch, 408, "Request Timeout", now)
