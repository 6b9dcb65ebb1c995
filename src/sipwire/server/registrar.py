"""The registrar role of ``sipwire serve``: REGISTER in, the store, the answer (RFC 3261 §10.3).

For each REGISTER (the sans-I/O decisions are ``sipwire.registrar``'s)::

    check_register                      §8.2, steps 1, 2 and 5: 404/405/416/420 at once
    credentials_for the realm           parsed once; none: 401 at once (no store needed)
    at most max_in_flight at a time     beyond: 503 with Retry-After
    username_of -> store.get_user -> check_digest
    Authenticated -> store.use_nonce_count    False: a replayed nc, challenged again
    Challenge -> 401 (stale=true for a right digest with an expired nonce)
    lock the AOR                        one REGISTER per AOR at a time on this node
    store.bindings -> plan              steps 4 to 7: 403/423/500 ... or a change
    store.apply                         durable when it returns; only then the 200
                                        (and the proxy's location cache is told:
                                        ServerCore.bindings_changed)
    ok_response                         step 8

A store that fails (:class:`~sipwire.store.StoreUnavailable`) or that has
not answered within ``store_timeout`` seconds of the REGISTER's arrival
(one timer per REGISTER, whatever it waits for: a store call, the AOR's
lock) gets the REGISTER a 503 with Retry-After: never a 200 without the binding
stored, never a crash. The first failure and the recovery are logged (a
warning each, not one per request); nothing needs restarting, the stores
reconnect by themselves.

Concurrency: REGISTERs for one AOR are serialized on this node (an
``asyncio.Lock`` per AOR, dropped when nobody holds or waits for it), so the
bindings ``plan`` reads are still those ``apply`` changes; the stores
serialize applies across nodes themselves. At most ``max_in_flight``
REGISTERs wait for the store at once: more would only queue behind a slow
store and be answered after the client gave up; they get 503 with
Retry-After instead (counted as ``registrar_busy`` in the shed metrics).

RFC 5626 flows: a REGISTER accepted over a connection keeps that connection
open (``TransportLayer.keep_flow``) until the last binding it carries
expires, so that its keep-alives hold it and the proxy can reach the user
agent through it.

``-v`` logs one line per REGISTER on ``sipwire.registrar``::

    REGISTER aor=sip:alice@example.com source=udp:192.0.2.4:5060 outcome=registered
    status=200 store_ms=0.9   (one line)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

from sipwire.aio.transport import TransportLayer
from sipwire.auth.nonce import NonceIssuer
from sipwire.errors import ParseError
from sipwire.message import Request, Response
from sipwire.message.auth_fields import Credentials
from sipwire.registrar.authenticate import (
    OFFERED,
    Authenticated,
    Challenge,
    challenge_headers,
    check_digest,
    credentials_for,
    username_of,
)
from sipwire.registrar.model import Binding, BindingChange
from sipwire.registrar.policy import RegistrarPolicy
from sipwire.registrar.rules import (
    Rejection,
    canonical_aor,
    check_register,
    derived_to_tag,
    ok_response,
    plan,
    register_realm,
    sip_date,
)
from sipwire.server.metrics import OUTCOMES
from sipwire.server.tu import ServerCore
from sipwire.store import LocationStore, StoreUnavailable
from sipwire.transaction.server import ServerTransaction
from sipwire.transport.address import Source

__all__ = ["FlowKeeper", "RegistrarRole", "RegistrarSettings"]

log = logging.getLogger("sipwire.registrar")

T = TypeVar("T")

PURGE_INTERVAL: Final = 60.0
"""Seconds between two ``store.purge`` (expired bindings are never returned meanwhile)."""


@dataclass(frozen=True, slots=True)
class RegistrarSettings:
    """How the registrar role uses the store."""

    max_in_flight: int = 1000
    """REGISTERs processed at once; beyond it 503 with Retry-After."""
    store_timeout: float = 2.0
    """Seconds a REGISTER may wait for the store (its lock included); then 503."""
    retry_after: int = 5
    """Retry-After of the 503s."""
    node: str = ""
    """This node's name, recorded in the bindings it takes (for their flows)."""
    algorithms: tuple[str, ...] = OFFERED
    """Digest algorithms offered, most preferred first (SHA-256, then MD5); a credential
    with another one is refused. ``("MD5",)`` for clients that answer the first
    challenge whatever its algorithm (sipp)."""


class _AorLock:
    """The lock of one AOR and how many REGISTERs hold or wait for it."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class _Job:
    """One REGISTER being processed: its transaction, its deadline, what it measured,
    and what was read of it before (its realm and credentials, parsed once)."""

    __slots__ = (
        "answered",
        "credentials",
        "deadline",
        "realm",
        "request",
        "store_seconds",
        "task",
        "tx",
    )

    def __init__(
        self,
        request: Request,
        tx: ServerTransaction,
        realm: str = "",
        credentials: Credentials | None = None,
    ) -> None:
        self.request = request
        self.tx = tx
        self.realm = realm
        self.credentials = credentials
        self.store_seconds = 0.0
        self.answered = False
        self.task: asyncio.Task[None] | None = None
        self.deadline: asyncio.TimerHandle | None = None


class FlowKeeper:
    """Connections held open for the bindings that came over them (RFC 5626 §5.2, §6).

    Per flow, the latest expiry of each AOR's bindings on it: the connection
    is kept until the last one (``TransportLayer.keep_flow``), released when
    none is left, forgotten when it closed.
    """

    def __init__(
        self, transport: TransportLayer, node: str, loop_time: Callable[[], float]
    ) -> None:
        self.transport = transport
        self.node = node
        self.loop_time = loop_time
        self._held: dict[int, dict[str, float]] = {}
        """flow → AOR → when its last binding on the flow expires (wall clock)."""

    def __len__(self) -> int:
        return len(self._held)

    def update(self, aor: str, flow: int, bindings: Sequence[Binding], wall: float) -> None:
        """``aor``'s bindings after a REGISTER that came on ``flow``."""
        until = max(
            (b.expires_at for b in bindings if b.flow == flow and b.node == self.node),
            default=None,
        )
        held = self._held.get(flow)
        if until is None:
            if held is None:
                return
            held.pop(aor, None)
        else:
            if held is None:
                held = self._held[flow] = {}
            held[aor] = until
        self._keep(flow, held, wall)

    def sweep(self, wall: float) -> None:
        """Drop what expired; release flows nothing is bound to any more."""
        for flow, held in list(self._held.items()):
            for aor in [a for a, until in held.items() if until <= wall]:
                del held[aor]
            self._keep(flow, held, wall)

    def _keep(self, flow: int, held: dict[str, float], wall: float) -> None:
        if not held:
            self._held.pop(flow, None)
            self.transport.keep_flow(flow, 0.0)
            return
        latest = max(held.values())
        if not self.transport.keep_flow(flow, self.loop_time() + (latest - wall)):
            self._held.pop(flow, None)  # the connection closed


class RegistrarRole:
    """Answers REGISTER requests for a :class:`~sipwire.server.tu.ServerCore`."""

    def __init__(
        self,
        core: ServerCore,
        store: LocationStore,
        policy: RegistrarPolicy,
        issuer: NonceIssuer,
        settings: RegistrarSettings | None = None,
        *,
        flows: FlowKeeper | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.core = core
        self.store = store
        self.policy = policy
        self.issuer = issuer
        self.settings = settings or RegistrarSettings()
        self.flows = flows
        self.clock = clock
        """Wall-clock seconds (bindings and nonces are in wall-clock time)."""
        self.in_flight = 0
        self.counts: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
        """REGISTERs answered, by outcome (see ``metrics.OUTCOMES``)."""
        self.store_ok = True
        """False from a store failure until the store answers again."""
        self._closing = False
        self._locks: dict[str, _AorLock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        metrics = core.metrics
        self._outcome = metrics.outcome
        self._auth_failure = metrics.auth_failure
        self._latency = metrics.store_latency
        self._retry_after = [("Retry-After", str(self.settings.retry_after))]
        self._date_second = -1
        self._date_text = ""

    @property
    def locked_aors(self) -> int:
        """AORs with a REGISTER holding or waiting for their lock."""
        return len(self._locks)

    # -- from the transaction user -------------------------------------------------------
    def __call__(self, request: Request, tx: ServerTransaction, now: float) -> None:
        """A new REGISTER: refused at once, or processed in a task of its own."""
        rejection = check_register(request, self.policy)
        if rejection is not None:
            response = rejection.response(request, to_tag=derived_to_tag(request))
            self._answer(request, tx, response, "rejected", None, now)
            return
        realm, credentials = "", None
        if self.policy.require_auth:
            realm = register_realm(request, self.policy)
            credentials = credentials_for(request, realm)
            if username_of(credentials) is None:
                # No credentials (a phone's first REGISTER): the challenge needs no store.
                wall = self.clock()
                response = self._challenge(request, realm, wall)
                self._answer(request, tx, response, "challenged", None, now)
                return
        if self.in_flight >= self.settings.max_in_flight or self._closing:
            response = self.core.reply(request, 503, headers=self._retry_after)
            self._answer(request, tx, response, "busy", None, now)
            return
        self.in_flight += 1
        loop = asyncio.get_running_loop()
        job = _Job(request, tx, realm, credentials)
        task = job.task = loop.create_task(self._register(job))
        job.deadline = loop.call_later(self.settings.store_timeout, self._expired, job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float) -> None:
        """Stop taking REGISTERs (503 from now on) and wait at most ``timeout`` seconds
        for those in flight to be answered; the rest are given up."""
        self._closing = True
        tasks = list(self._tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)

    # -- one REGISTER ------------------------------------------------------------------
    async def _register(self, job: _Job) -> None:
        request = job.request
        try:
            try:
                response, outcome = await self._process(request, job.tx.source, job)
            except StoreUnavailable as exc:
                response, outcome = self._unavailable(request, exc.reason)
            except ParseError as exc:
                response = self.core.reply(request, 400, f"Bad Request - {exc.reason}"[:150])
                outcome = "rejected"
            except Exception:
                log.exception("REGISTER %s failed", request.call_id)
                response = self.core.reply(request, 500)
                outcome = "rejected"
            else:
                if not self.store_ok:
                    self.store_recovered()
        finally:
            self.in_flight -= 1
            job.task = None  # no cycle between the job and its task
        if job.answered:
            return
        job.answered = True
        if job.deadline is not None:
            job.deadline.cancel()
            job.deadline = None
        self._answer(request, job.tx, response, outcome, job, None)
        self.core.pump()

    def _expired(self, job: _Job) -> None:
        """``store_timeout`` passed: 503 now, and the REGISTER's task is cancelled.

        The task is not waited for: a store call interrupted in the middle may
        take its own time to clean up (PostgreSQL releases the connection), and
        the client is answered meanwhile. It stays counted in flight until then.
        """
        job.deadline = None
        if job.answered:
            return
        job.answered = True
        if job.task is not None:
            job.task.cancel()
            job.task = None
        timeout = self.settings.store_timeout
        job.store_seconds = max(job.store_seconds, timeout)  # waited for it all along
        response, outcome = self._unavailable(job.request, f"no answer within {timeout} s")
        self._answer(job.request, job.tx, response, outcome, job, None)
        self.core.pump()

    async def _process(self, request: Request, source: Source, job: _Job) -> tuple[Response, str]:
        policy = self.policy
        wall = self.clock()
        auth_user: str | None = None
        if policy.require_auth:
            realm, credentials = job.realm, job.credentials
            name = username_of(credentials)
            user = None
            if name is not None:
                user = await self._timed(job, "get_user", self.store.get_user(name, realm))
            outcome = check_digest(
                request,
                credentials,
                realm=realm,
                issuer=self.issuer,
                now=wall,
                user=user,
                algorithms=self.settings.algorithms,
            )
            replayed = False
            if isinstance(outcome, Authenticated):
                fresh = await self._timed(
                    job,
                    "use_nonce_count",
                    self.store.use_nonce_count(outcome.nonce, outcome.nc, outcome.expires_at),
                )
                if not fresh:
                    # RFC 7616 §3.4.5: a nonce-count used before is a replay.
                    outcome, replayed = Challenge(stale=False), True
            if isinstance(outcome, Challenge):
                if name is not None:
                    reason = "replay" if replayed else "stale" if outcome.stale else "invalid"
                    self._auth_failure[reason].inc()
                return self._challenge(request, realm, wall, outcome.stale), "challenged"
            auth_user = outcome.username
        aor = canonical_aor(request.to.uri)
        entry = self._locks.get(aor)
        if entry is None:
            entry = self._locks[aor] = _AorLock()
        entry.users += 1
        try:
            async with entry.lock:
                current = await self._timed(job, "bindings", self.store.bindings(aor, wall))
                decided = plan(
                    request,
                    current,
                    now=wall,
                    policy=policy,
                    source=source,
                    node=self.settings.node,
                    auth_user=auth_user,
                    checked=True,  # by __call__
                )
                if isinstance(decided, Rejection):
                    return decided.response(request, to_tag=derived_to_tag(request)), "rejected"
                if decided.is_query:
                    after, outcome_name = current, "query"
                else:
                    change = decided.change
                    try:
                        after = await self._timed(job, "apply", self.store.apply(aor, change, wall))
                    except BaseException:
                        self.core.bindings_changed(aor, None, wall)  # maybe written, maybe not
                        raise
                    self.core.bindings_changed(aor, after, wall)
                    outcome_name = _outcome(change, current)
        finally:
            entry.users -= 1
            if not entry.users:
                del self._locks[aor]
        if source.flow is not None and self.flows is not None:
            self.flows.update(aor, source.flow, after, wall)
        response = ok_response(request, after, now=wall, policy=policy, date=self._date(wall))
        return response, outcome_name

    def _date(self, wall: float) -> str:
        """``sip_date(wall)``, formatted once per second."""
        second = int(wall)
        if second != self._date_second:
            self._date_second, self._date_text = second, sip_date(second)
        return self._date_text

    def _challenge(
        self, request: Request, realm: str, wall: float, stale: bool = False
    ) -> Response:
        """The 401 (§22.1): one WWW-Authenticate per algorithm offered, in order of
        preference (RFC 8760 §2.3), sharing a fresh nonce; To tag derived."""
        headers = challenge_headers(
            realm, self.issuer, wall, stale=stale, algorithms=self.settings.algorithms
        )
        return request.reply(401, headers=headers, to_tag=derived_to_tag(request))

    async def _timed(self, job: _Job, operation: str, call: Awaitable[T]) -> T:
        started = time.perf_counter()
        try:
            return await call
        finally:
            took = time.perf_counter() - started
            job.store_seconds += took
            self._latency[operation].observe(took)

    def _unavailable(self, request: Request, reason: str) -> tuple[Response, str]:
        """503 with Retry-After (§21.5.4): the store failed or was too slow."""
        if self.store_ok:
            self.store_failed(reason)
        return self.core.reply(request, 503, headers=self._retry_after), "unavailable"

    def store_failed(self, reason: str) -> None:
        """The store stopped answering: logged once, until it answers again."""
        if self.store_ok:
            self.store_ok = False
            log.warning(
                "location store %s unavailable (%s): REGISTERs get 503 with Retry-After %d",
                self.store.url,
                reason,
                self.settings.retry_after,
            )

    def store_recovered(self) -> None:
        if not self.store_ok:
            self.store_ok = True
            log.warning("location store %s answers again", self.store.url)

    def _answer(
        self,
        request: Request,
        tx: ServerTransaction,
        response: Response,
        outcome: str,
        job: _Job | None,
        now: float | None,
    ) -> None:
        self.core.respond(tx, response, now)
        self.counts[outcome] += 1
        self._outcome[outcome].inc()
        if log.isEnabledFor(logging.INFO):
            source = tx.source
            host = f"[{source.host}]" if ":" in source.host else source.host
            log.info(
                "REGISTER aor=%s source=%s:%s:%d outcome=%s status=%d store_ms=%.1f",
                _aor_text(request),
                source.transport,
                host,
                source.port,
                outcome,
                response.status,
                0.0 if job is None else job.store_seconds * 1000,
            )

    # -- housekeeping ------------------------------------------------------------------
    async def maintain(self, interval: float = PURGE_INTERVAL) -> None:
        """Every ``interval`` seconds: ``store.purge`` and the flows' sweep (until cancelled)."""
        while True:
            await asyncio.sleep(interval)
            await self.purge()

    async def purge(self) -> int:
        """Delete expired bindings now; 0 when the store is down (logged once)."""
        wall = self.clock()
        if self.flows is not None:
            self.flows.sweep(wall)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.settings.store_timeout * 5):
                removed = await self.store.purge(wall)
        except StoreUnavailable as exc:
            self.store_failed(exc.reason)
            return 0
        except TimeoutError:
            self.store_failed("purge took too long")
            return 0
        self._latency["purge"].observe(time.perf_counter() - started)
        if removed:
            log.debug("purged %d expired bindings", removed)
        return removed


def _outcome(change: BindingChange, current: Sequence[Binding]) -> str:
    """``registered`` (a new binding), ``refreshed`` (existing ones only) or ``unregistered``."""
    if change.upsert:
        known = {b.key for b in current}
        return "registered" if any(b.key not in known for b in change.upsert) else "refreshed"
    return "unregistered"


def _aor_text(request: Request) -> str:
    try:
        return canonical_aor(request.to.uri)
    except (ParseError, ValueError):
        return "-"
