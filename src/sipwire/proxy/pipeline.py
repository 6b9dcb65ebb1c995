"""From a validated request to its target set: routing, authentication, location.

Shared by the stateful and the stateless proxy. A :class:`Job` is one
request on its way; :meth:`Pipeline.start` takes it as far as it can, and
whatever needs the edge (the user store, the location service) comes out
as a question (``events.Queries``) whose answer resumes it. The job ends
with one :data:`Outcome`, handed to ``job.done``:

- :class:`Proceed`: forward to this :class:`~sipwire.proxy.targets.TargetPlan`;
- :class:`Reply`: answer with this response (a 4xx/5xx the proxy decided on);
- :class:`Drop`: nothing to do (an ACK that is not ours to route).

The steps, after §16.3 (``validate.py``) and §16.4 (``routing.py``):

1. A request inside a dialog (To tag) is routed by its Route and
   Request-URI alone, and only when it named this proxy in its Route (it
   was record-routed through us, or sent to us as outbound proxy) or
   carries a flow token: otherwise 404 ("Not Here"); an ACK is dropped.
   An ACK whose Request-URI is one of our users is the ACK of a non-2xx
   (its INVITE's Request-URI): routed like that INVITE (the stateless
   proxy sees it; the stateful one ends it in the server transaction).
2. A request for the proxy itself (a Request-URI without user naming us or
   our domain): the hook may route it (a REGISTER to a registrar farm);
   else OPTIONS gets our capabilities (§11.2), anything else 404.
3. A request with a Route left (a pre-loaded route to another proxy) is
   relayed where it points; any other goes to the routing table.
4. ``authz.authorize`` on the decision: 403, or a 407 challenge, or the
   credentials checked (user look-up, digest, nonce-count), or accepted.
5. ``Local``: the bindings of the AOR. None: 480 (Temporarily Unavailable),
   as §16.5 says for an empty target set. 404 (Not Found) only for a user
   that does not exist, and only to a caller who authenticated as a user of
   the same domain: everyone else gets 480 for unknown users too, so that an
   unauthenticated peer cannot tell who exists (the registrar hides it the
   same way: an unknown user and a wrong password get the same 401).

``known_bindings``, when the edge sets it, is asked first for the bindings
of step 5: a plain function that answers from memory (the edge's location
cache) or returns None, and only then does a question go out. A known
answer lets the job go on at once, with no question, ticket or timer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sipwire.auth.nonce import NonceIssuer
from sipwire.errors import ParseError
from sipwire.message import Request, Response, SipUri
from sipwire.proxy.authz import (
    Accept,
    Forbid,
    NeedAuth,
    authorize,
    check_proxy_credentials,
    consume_credentials,
    proxy_challenge,
    proxy_credentials_username,
)
from sipwire.proxy.events import Queries
from sipwire.proxy.policy import ProxyPolicy, host_key
from sipwire.proxy.routes import (
    Challenge,
    Decision,
    Local,
    Relay,
    Respond,
    RouteContext,
    RoutingTable,
)
from sipwire.proxy.routing import RouteInfo
from sipwire.proxy.targets import Candidate, Group, TargetPlan, location_plan, relay_plan
from sipwire.proxy.validate import options_answer
from sipwire.registrar.authenticate import Authenticated
from sipwire.registrar.model import Binding, User
from sipwire.registrar.rules import canonical_aor, derived_to_tag
from sipwire.transport.address import Source

__all__ = ["Drop", "Job", "Outcome", "Pipeline", "Proceed", "Reply"]

log = logging.getLogger("sipwire.proxy")


@dataclass(slots=True)
class Proceed:
    """Forward the request to ``plan``."""

    plan: TargetPlan


@dataclass(slots=True)
class Reply:
    """Answer the request with ``response``, made by the proxy."""

    response: Response


@dataclass(slots=True)
class Drop:
    """Do nothing (an ACK this proxy has no route for)."""


Outcome = Proceed | Reply | Drop


@dataclass(slots=True, eq=False)
class Job:
    """One request on its way through the pipeline."""

    request: Request
    """The request after §16.4 (our Route values removed)."""
    source: Source
    info: RouteInfo
    done: Callable[[Job, Outcome, float], None]
    """Called once with the outcome (unless the job is closed first)."""
    ticket: int | None = None
    """The question the job waits for, if any."""
    user: str | None = None
    """The authenticated username, once the caller proved it."""
    realm: str | None = None
    closed: bool = False
    """Set by :meth:`Pipeline.close`: the owner no longer wants the outcome."""


class Pipeline:
    """The decisions of the module docstring for one proxy."""

    def __init__(
        self,
        policy: ProxyPolicy,
        table: RoutingTable,
        queries: Queries,
        issuer: NonceIssuer,
    ) -> None:
        self.policy = policy
        self.table = table
        self.queries = queries
        self.issuer = issuer
        self.known_bindings: Callable[[str], Sequence[Binding] | None] | None = None
        """The bindings of an AOR when the edge knows them without I/O, else None (see
        the module docstring)."""
        self.wall_offset = 0.0
        """Wall-clock seconds minus the proxy's clock: nonces and binding expiry are
        wall-clock times (``time.time() - loop.time()`` at the edge)."""
        self.count_nonces = True
        """Ask the edge to record each credential's nonce-count (``UseNonceCount``), so
        that a replay is refused. A stateless proxy cannot: a retransmission of the
        request would look like a replay."""

    # -- the steps ---------------------------------------------------------------------
    def start(self, job: Job, now: float) -> None:
        """Take ``job`` as far as it goes without the edge."""
        self._run(job, now, self._start, job, now)

    def _run(self, job: Job, now: float, step: Callable[..., None], *args: object) -> None:
        """Run one step; a header that breaks on reading gets the request a 400, a full
        question table a 503, whether at the start or on an answer of the edge."""
        try:
            step(*args)
        except ParseError as exc:
            reason = f"Bad Request - {exc.reason}"[:120]
            try:
                response = self._response(job, 400, reason)
            except ParseError:
                response = job.request.reply(400, reason)
            self._reply(job, response, now)
        except OverflowError:
            response = self._response(job, 503, headers=[("Retry-After", "5")])
            self._reply(job, response, now)

    def close(self, job: Job) -> None:
        """The owner gave up on ``job`` (a CANCEL, a final response already sent)."""
        job.closed = True
        self.queries.forget(job.ticket)
        job.ticket = None

    def _start(self, job: Job, now: float) -> None:
        request = job.request
        info = job.info
        uri = request.uri
        if request.to.tag is not None and not (request.method == "ACK" and self._ours(uri)):
            if not (info.through_us or self.policy.is_trusted(job.source.host)):
                if request.method == "ACK":
                    self._finish(job, Drop(), now)
                else:
                    self._reply(job, self._response(job, 404, "Not Here"), now)
                return
            candidate = Candidate(None, destination=info.flow)
            self._finish(job, Proceed(TargetPlan([Group([candidate])])), now)
            return
        if request.method == "ACK" and request.to.tag is None:
            # An ACK without To tag is not one a UA sends (§17.1.1.3, §13.2.2.4).
            self._finish(job, Drop(), now)
            return
        if (
            isinstance(uri, SipUri)
            and uri.user is None
            and not request.route
            and self.policy.is_us(uri, self.table.domains)
        ):
            routed = self._decide(job, now, hook_only=True)
            if routed is not None:
                self._decided(job, routed, now)
            elif request.method == "OPTIONS":
                answer = options_answer(self.policy)
                self._reply(job, answer.response(request, to_tag=derived_to_tag(request)), now)
            else:
                self._reply(job, self._response(job, 404, "Not Found"), now)
            return
        decision: Decision | None = Relay()
        if info.flow is None and not request.route:
            decision = self._decide(job, now)
        assert decision is not None
        self._decided(job, decision, now)

    def _ours(self, uri: object) -> bool:
        """A Request-URI naming a user we are responsible for: the ACK of a non-2xx
        (stateless mode, §16.11: "non-Routed ACK requests MUST generate the same choice
        as their associated INVITE") carries it and is routed like its INVITE."""
        return (
            isinstance(uri, SipUri)
            and uri.user is not None
            and (self.table.serves(uri.host) or self.policy.is_us(uri))
        )

    def _decide(self, job: Job, now: float, *, hook_only: bool = False) -> Decision | None:
        request = job.request
        ctx = RouteContext(
            source=job.source,
            now=now,
            wall_time=now + self.wall_offset,
            domains=self.table.domains,
            user=job.user,
        )
        try:
            decision = self.table.decide(request, ctx, hook_only=hook_only)
        except Exception:
            # The hook is operator code: a bug in it answers 500, never escapes.
            log.exception("routing hook failed for %s %s", request.method, request.uri)
            return Respond(500, "Server Internal Error - routing failed")
        uri = request.uri
        if (
            isinstance(decision, Relay)
            and not decision.targets
            and isinstance(uri, SipUri)
            and uri.user
            and self.policy.is_us(uri)
        ):
            # sip:user@<our address>: a user of our (only) domain, else nobody here.
            if len(self.table.domains) == 1:
                domain = next(iter(self.table.domains))
                return Local(canonical_aor(SipUri(domain, uri.user)))
            return Respond(404, "Not Found")
        return decision

    def _decided(self, job: Job, decision: Decision, now: float) -> None:
        request = job.request
        if isinstance(decision, Respond):
            response = self._response(job, decision.status, decision.reason, list(decision.headers))
            self._reply(job, response, now)
            return
        verdict = authorize(
            request,
            job.source,
            decision,
            domains=self.table.domains,
            policy=self.policy,
            authenticated=job.user is not None,
        )
        if isinstance(verdict, Forbid):
            self._reply(job, self._response(job, 403, f"Forbidden - {verdict.reason}"), now)
        elif isinstance(verdict, NeedAuth):
            self._authenticate(job, verdict.realm, decision, now)
        else:
            assert isinstance(verdict, Accept)
            self._route(job, decision, now)

    # -- authentication ------------------------------------------------------------------
    def _authenticate(self, job: Job, realm: str, decision: Decision, now: float) -> None:
        username = proxy_credentials_username(job.request, realm)
        if not username:
            self._challenge(job, realm, False, now)
            return

        def found(user: object, now: float) -> None:
            job.ticket = None
            found_user = user if isinstance(user, User) else None
            self._run(job, now, self._user_found, job, realm, decision, found_user, now)

        job.ticket = self.queries.lookup_user(username, realm, found)

    def _challenge(self, job: Job, realm: str, stale: bool, now: float) -> None:
        wall = now + self.wall_offset
        response = proxy_challenge(
            job.request,
            realm=realm,
            issuer=self.issuer,
            now=wall,
            stale=stale,
            algorithms=self.policy.algorithms,
        )
        self._reply(job, response, now)

    def _user_found(
        self, job: Job, realm: str, decision: Decision, user: User | None, now: float
    ) -> None:
        wall = now + self.wall_offset
        outcome = check_proxy_credentials(
            job.request,
            realm=realm,
            issuer=self.issuer,
            now=wall,
            user=user,
            algorithms=self.policy.algorithms,
        )
        if not isinstance(outcome, Authenticated):
            self._challenge(job, realm, outcome.stale, now)
            return
        from_uri = job.request.from_.uri
        if isinstance(from_uri, SipUri) and from_uri.user != outcome.username:
            reason = "Forbidden - From is not the authenticated user"
            self._reply(job, self._response(job, 403, reason), now)
            return

        def counted(fresh: object, now: float) -> None:
            job.ticket = None
            if fresh is not True:
                self._challenge(job, realm, False, now)  # a replayed nonce-count
                return
            job.user = outcome.username
            job.realm = realm
            consume_credentials(job.request, realm)
            self._run(job, now, self._authenticated, job, decision, now)

        if not self.count_nonces:
            counted(True, now)
            return
        job.ticket = self.queries.use_nonce_count(
            outcome.nonce, outcome.nc, outcome.expires_at, counted
        )

    def _authenticated(self, job: Job, decision: Decision, now: float) -> None:
        if isinstance(decision, Challenge):
            decision = self._decide(job, now) or Respond(403, "Forbidden")
            if isinstance(decision, Challenge):
                self._reply(job, self._response(job, 403, "Forbidden"), now)
                return
        self._decided(job, decision, now)

    # -- targets -------------------------------------------------------------------------
    def _route(self, job: Job, decision: Decision, now: float) -> None:
        if isinstance(decision, Relay):
            try:
                plan = relay_plan(decision, job.request)
            except (ValueError, ParseError) as exc:
                log.warning("route %r unusable: %s", decision.name, exc)
                self._reply(job, self._response(job, 500, "Server Internal Error - bad route"), now)
                return
            self._finish(job, Proceed(plan), now)
            return
        assert isinstance(decision, Local)
        aor = decision.aor
        if aor is None:
            uri = job.request.uri
            if not isinstance(uri, SipUri):
                self._reply(job, self._response(job, 404, "Not Found"), now)
                return
            aor = canonical_aor(uri)
        known = self.known_bindings
        if known is not None:
            bindings = known(aor)
            if bindings is not None:
                self._found(job, aor, bindings, now)
                return

        def found(bindings: object, now: float) -> None:
            job.ticket = None
            if bindings is None:
                # The location service failed (not: the AOR has no binding).
                response = self._response(
                    job, 503, "Service Unavailable - location service", [("Retry-After", "5")]
                )
                self._reply(job, response, now)
                return
            listed: Sequence[Binding] = bindings if isinstance(bindings, list | tuple) else ()
            self._run(job, now, self._found, job, aor, listed, now)

        job.ticket = self.queries.lookup_targets(aor, found)

    def _found(self, job: Job, aor: str, bindings: Sequence[Binding], now: float) -> None:
        plan = location_plan(bindings, self.policy, now + self.wall_offset)
        if not plan.empty:
            self._finish(job, Proceed(plan), now)
            return
        if job.request.method == "ACK":
            # Not the ACK of a non-2xx to one of our users after all, but one whose
            # Request-URI (a Contact) only looks like one: where our domain is an address
            # the user agents share. Routed by its Route and Request-URI, if ours to route.
            if job.info.through_us or self.policy.is_trusted(job.source.host):
                candidate = Candidate(None, destination=job.info.flow)
                self._finish(job, Proceed(TargetPlan([Group([candidate])])), now)
            else:
                self._finish(job, Drop(), now)
            return
        target = SipUri.parse(aor)
        if (
            job.user is None
            or not self.policy.reveal_unknown_users
            or job.realm != host_key(target.host)
            or not target.user
        ):
            self._reply(job, self._response(job, 480, "Temporarily Unavailable"), now)
            return

        def known(user: object, now: float) -> None:
            job.ticket = None
            if isinstance(user, User):
                self._reply(job, self._response(job, 480, "Temporarily Unavailable"), now)
            else:
                self._reply(job, self._response(job, 404, "Not Found"), now)

        job.ticket = self.queries.lookup_user(target.user, host_key(target.host), known)

    # -- endings -------------------------------------------------------------------------
    def _response(
        self,
        job: Job,
        status: int,
        reason: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> Response:
        return job.request.reply(status, reason, headers, to_tag=derived_to_tag(job.request))

    def _reply(self, job: Job, response: Response, now: float) -> None:
        self._finish(job, Reply(response), now)

    def _finish(self, job: Job, outcome: Outcome, now: float) -> None:
        job.ticket = None
        if not job.closed:
            job.closed = True
            job.done(job, outcome, now)
