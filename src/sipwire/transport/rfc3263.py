"""RFC 3263 server location as a sans-I/O planner: SIP URI → ordered targets.

RFC 3263 ("Locating SIP Servers") turns a SIP or SIPS URI into an ordered
list of (transport, IP address, port) to try. The procedure is a short chain
of DNS lookups — NAPTR (§4.1), then SRV (§4.2, RFC 2782), then A/AAAA — whose
every branch depends only on the URI and on the answers received so far.
This module holds that logic and performs no I/O: ``Locator`` says which
queries it needs next and accepts their answers; the caller (``sipwire.aio.dns``
for asyncio, or a test with a dictionary) does the actual lookups::

    locator = Locator(uri, rng)
    while not locator.done:
        for query in locator.queries():
            locator.feed(query, lookup(query))  # [] for NXDOMAIN / no answer
    targets = locator.targets()

``locate(uri, answers, rng)`` runs that loop over a mapping of answers.

Randomness (the weighted SRV choice of RFC 2782) comes from an object with a
``random() -> float`` method that the caller supplies (``random.Random()``),
so results are reproducible with a seeded generator.

Failover (§4.3): ``TargetSet`` keeps the ordered list and hands out the next
target that has not failed. See its docstring for the sending pattern.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal, Protocol

from sipwire.errors import LocalProtocolError, SipError
from sipwire.message.uri import SipUri
from sipwire.transport.address import TRANSPORTS, Target, default_port

__all__ = [
    "DEFAULT_FAMILIES",
    "DEFAULT_TRANSPORTS",
    "NAPTR_SERVICES",
    "Answer",
    "Family",
    "Locator",
    "NaptrRecord",
    "Query",
    "RandomSource",
    "RecordType",
    "ResolveError",
    "SrvRecord",
    "TargetSet",
    "filter_naptr",
    "is_ip_address",
    "locate",
    "order_srv",
    "srv_name",
]

RecordType = Literal["NAPTR", "SRV", "A", "AAAA"]
Family = Literal["A", "AAAA"]

DEFAULT_TRANSPORTS: Final[tuple[str, ...]] = ("tls", "tcp", "udp")
"""Transports the client supports, most preferred first. Without NAPTR
records the SRV queries are made, and their targets ordered, in this order
(§4.1): ``_sips._tcp``, ``_sip._tcp``, ``_sip._udp``."""

DEFAULT_FAMILIES: Final[tuple[Family, ...]] = ("A", "AAAA")
"""Address lookups per host and their order in the result: IPv4 first, then IPv6."""

NAPTR_SERVICES: Final = {
    "SIP+D2U": "udp",
    "SIP+D2T": "tcp",
    "SIPS+D2T": "tls",
    "SIP+D2W": "ws",  # RFC 7118 §7
    "SIPS+D2W": "wss",
}
"""NAPTR service field (RFC 3263 §4.1, RFC 7118) → sipwire transport name."""

_SRV_LABELS: Final = {
    "udp": "_sip._udp",
    "tcp": "_sip._tcp",
    "tls": "_sips._tcp",
    "ws": "_sip._ws",
    "wss": "_sips._ws",
}
# Transports that have an SRV query of their own when no NAPTR record exists (§4.1).
_SRV_FALLBACK: Final = ("tls", "tcp", "udp")
_SECURE: Final = frozenset({"tls", "wss"})


class ResolveError(SipError):
    """A SIP URI could not be resolved to any target (RFC 3263 §4).

    The status hint is 503: a proxy that cannot find the next hop answers
    503 (Service Unavailable), as it does when every target fails (§4.3).
    """

    def __init__(self, reason: str, status: int = 503) -> None:
        super().__init__(reason, status)


class RandomSource(Protocol):
    """Anything with ``random() -> float`` in [0, 1), e.g. ``random.Random``."""

    def random(self) -> float: ...


@dataclass(frozen=True, slots=True)
class NaptrRecord:
    """One NAPTR answer (RFC 3403); ``replacement`` without the final dot."""

    order: int
    preference: int
    flags: str
    service: str
    regexp: str
    replacement: str


@dataclass(frozen=True, slots=True)
class SrvRecord:
    """One SRV answer (RFC 2782); ``target`` without the final dot, ``"."`` for none."""

    priority: int
    weight: int
    port: int
    target: str


@dataclass(frozen=True, slots=True)
class Query:
    """A DNS question the planner needs answered: a domain name (lower case,
    without the final dot) and a record type."""

    name: str
    rdtype: RecordType


Answer = NaptrRecord | SrvRecord | str
"""An answer record: NAPTR or SRV data, or an address (``str``) for A/AAAA."""


def _norm_name(name: str) -> str:
    return name.rstrip(".").lower() if name != "." else name


@functools.lru_cache(maxsize=4096)
def is_ip_address(host: str) -> bool:
    """True for an IPv4 address or an IPv6 address, bracketed or not."""
    try:
        ipaddress.ip_address(host[1:-1] if host.startswith("[") else host)
    except ValueError:
        return False
    return True


def _strip_brackets(host: str) -> str:
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def srv_name(transport: str, domain: str) -> str:
    """The SRV owner name for ``transport`` at ``domain`` (RFC 3263 §4.2, RFC 7118):
    ``_sip._udp``, ``_sip._tcp``, ``_sips._tcp`` (TLS), ``_sip._ws``, ``_sips._ws``."""
    return f"{_SRV_LABELS[transport]}.{_norm_name(domain)}"


def filter_naptr(
    records: Iterable[NaptrRecord],
    *,
    secure: bool,
    transports: Sequence[str] = DEFAULT_TRANSPORTS,
) -> list[tuple[str, str]]:
    """Usable NAPTR records as ``(transport, srv_name)``, best first (RFC 3263 §4.1).

    Records are kept when their service is one of ``NAPTR_SERVICES`` and
    its transport is in ``transports``; for a SIPS URI (``secure``) only
    the ``SIPS+`` services. SIP uses the ``"S"`` flag with an empty regexp
    (the replacement is an SRV name); other records are ignored. The rest
    is sorted by order, then preference (RFC 3403 §4.1). Records of higher
    order are kept after the lower ones as failover candidates (§4.3).
    """
    usable: list[tuple[int, int, str, str]] = []
    for rec in records:
        transport = NAPTR_SERVICES.get(rec.service.upper())
        if transport is None or transport not in transports:
            continue
        if secure and transport not in _SECURE:
            continue
        if rec.flags.lower() != "s" or rec.regexp or _norm_name(rec.replacement) in ("", "."):
            continue
        usable.append((rec.order, rec.preference, transport, _norm_name(rec.replacement)))
    usable.sort(key=lambda item: (item[0], item[1]))
    seen: set[tuple[str, str]] = set()
    result: list[tuple[str, str]] = []
    for _, _, transport, name in usable:
        if (transport, name) not in seen:
            seen.add((transport, name))
            result.append((transport, name))
    return result


def order_srv(records: Iterable[SrvRecord], rng: RandomSource) -> list[SrvRecord]:
    """Order SRV records as RFC 2782 prescribes (RFC 3263 §4.2, §4.3).

    Lowest priority first. Within a priority, repeatedly: put weight-0
    records first, draw an integer in [0, sum of weights], and take the
    first record whose running sum of weights reaches it. Weight-0 records
    thus have a small chance to come first, and come last among records
    with weight otherwise. A target of ``"."`` means "no service here" and
    is dropped.
    """
    by_priority: dict[int, list[SrvRecord]] = {}
    for rec in records:
        if _norm_name(rec.target) in ("", "."):
            continue
        by_priority.setdefault(rec.priority, []).append(rec)
    ordered: list[SrvRecord] = []
    for priority in sorted(by_priority):
        group = by_priority[priority]
        remaining = [r for r in group if r.weight == 0] + [r for r in group if r.weight != 0]
        while remaining:
            total = sum(r.weight for r in remaining)
            pick = min(int(rng.random() * (total + 1)), total)
            running = 0
            for index, rec in enumerate(remaining):
                running += rec.weight
                if running >= pick:
                    ordered.append(remaining.pop(index))
                    break
    return ordered


def _uri_transport(uri: SipUri, supported: Sequence[str]) -> str | None:
    """The transport named by the URI's ``transport`` parameter, if any (§4.1)."""
    name = uri.transport
    if name is None:
        return None
    if uri.secure:
        # sips:...;transport=tcp is TLS over TCP (RFC 3261 §26.2.2); ws means wss.
        name = {"tcp": "tls", "ws": "wss"}.get(name, name)
        if name not in _SECURE:
            raise ResolveError(f"transport={uri.transport} cannot carry a SIPS URI")
    if name not in TRANSPORTS:
        raise ResolveError(f"unknown transport: {uri.transport}")
    if name not in supported:
        raise ResolveError(f"transport not supported: {name}")
    return name


def _default_transport(secure: bool, supported: Sequence[str]) -> str:
    """UDP for SIP, TLS for SIPS (§4.1); TCP when a SIP client has no UDP."""
    for name in ("tls",) if secure else ("udp", "tcp"):
        if name in supported:
            return name
    raise ResolveError("no supported transport for a " + ("SIPS" if secure else "SIP") + " URI")


class Locator:
    """The RFC 3263 §4 procedure for one URI, as a state machine without I/O.

    ``queries()`` lists the DNS questions needed now (they may be asked
    concurrently); ``feed(query, records)`` gives the answer to one, an
    empty sequence for NXDOMAIN, no data or a failed lookup. When every
    pending query is answered the planner moves on; ``done`` turns True
    when ``targets()`` is ready. The stages:

    1. TARGET is the ``maddr`` parameter if present, else the host (§4).
    2. A numeric TARGET needs no DNS: its transport is the ``transport``
       parameter, else UDP (SIP) or TLS (SIPS); the port is the URI's or
       the transport's default (§4.1, §4.2).
    3. With an explicit ``transport`` parameter, NAPTR is skipped: SRV for
       that transport, unless the URI has a port (then A/AAAA only, §4.2).
    4. With a port but no transport: the default transport, A/AAAA (§4.2).
    5. Otherwise NAPTR at TARGET, filtered and ordered by ``filter_naptr``;
       when none is usable, SRV for each supported transport of
       ``_SRV_FALLBACK`` (only ``_sips._tcp`` for SIPS) (§4.1).
    6. SRV answers are ordered per RFC 2782 (``order_srv``); each SRV target
       is then looked up for A and AAAA and used with the SRV port (§4.2).
       Without any SRV record, TARGET itself is looked up for A/AAAA with
       the default transport and its default port (§4.1, §4.2).

    The result lists every address of every SRV target of every usable
    service, in that order of preference, without duplicates: the order
    in which §4.3 tries them.
    """

    def __init__(
        self,
        uri: SipUri,
        rng: RandomSource,
        *,
        transports: Sequence[str] = DEFAULT_TRANSPORTS,
        families: Sequence[Family] = DEFAULT_FAMILIES,
    ) -> None:
        if not families:
            raise LocalProtocolError("Locator needs at least one address family")
        self.uri = uri
        self._rng = rng
        self._transports = tuple(t.lower() for t in transports)
        self._families = tuple(families)
        self.domain = _strip_brackets(uri.maddr or uri.host)
        """TARGET of §4: ``maddr`` if present, else the host (IPv6 without brackets)."""
        self._explicit = _uri_transport(uri, self._transports)
        self._fallback_transport = self._explicit or _default_transport(
            uri.secure, self._transports
        )
        self._pending: dict[Query, None] = {}
        self._answers: dict[Query, list[Answer]] = {}
        self._services: list[tuple[str, str]] = []
        self._hosts: list[tuple[str, str, int]] = []
        self._targets: list[Target] = []
        self._stage: Literal["naptr", "srv", "address", "done"]

        if is_ip_address(self.domain):
            port = uri.port or default_port(self._fallback_transport)
            self._finish([Target(self._fallback_transport, self.domain, port)])
        elif uri.port is not None:
            self._to_address([(self._fallback_transport, _norm_name(self.domain), uri.port)])
        elif self._explicit is not None:
            self._to_srv([(self._explicit, srv_name(self._explicit, self.domain))])
        else:
            self._stage = "naptr"
            self._ask([Query(_norm_name(self.domain), "NAPTR")])

    # ------------------------------------------------------------------ API

    @property
    def done(self) -> bool:
        """True once ``targets()`` is final and no query is pending."""
        return self._stage == "done"

    def queries(self) -> list[Query]:
        """The queries still unanswered in the current stage (empty when done)."""
        return list(self._pending)

    def feed(self, query: Query, records: Sequence[Answer]) -> None:
        """Record the answer to ``query``: NAPTR/SRV records, or addresses for A/AAAA.

        An empty sequence means "no records" (NXDOMAIN, no data, or a lookup
        that failed): the procedure continues with its next fallback.
        """
        if query not in self._pending:
            raise LocalProtocolError(f"unexpected answer for {query.rdtype} {query.name}")
        expected: type = {"NAPTR": NaptrRecord, "SRV": SrvRecord}.get(query.rdtype, str)
        if not all(isinstance(r, expected) for r in records):
            raise LocalProtocolError(f"wrong record type in answer to {query.rdtype}")
        del self._pending[query]
        self._answers[query] = list(records)
        if not self._pending:
            self._advance()

    def targets(self) -> list[Target]:
        """The ordered targets; empty when nothing resolved (the caller raises 503)."""
        if not self.done:
            raise LocalProtocolError("targets() called before the Locator is done")
        return list(self._targets)

    # ------------------------------------------------------------ stages

    def _ask(self, queries: Iterable[Query]) -> None:
        self._pending = dict.fromkeys(q for q in queries if q not in self._answers)

    def _advance(self) -> None:
        if self._stage == "naptr":
            naptr = self._answers[Query(_norm_name(self.domain), "NAPTR")]
            services = filter_naptr(
                (r for r in naptr if isinstance(r, NaptrRecord)),
                secure=self.uri.secure,
                transports=self._transports,
            )
            if not services:
                fallback = ("tls",) if self.uri.secure else _SRV_FALLBACK
                services = [
                    (t, srv_name(t, self.domain)) for t in self._transports if t in fallback
                ]
            self._to_srv(services)
        elif self._stage == "srv":
            hosts: list[tuple[str, str, int]] = []
            for transport, name in self._services:
                srv = [r for r in self._answers[Query(name, "SRV")] if isinstance(r, SrvRecord)]
                hosts += [
                    (transport, _norm_name(r.target), r.port) for r in order_srv(srv, self._rng)
                ]
            if not hosts:
                transport = self._fallback_transport
                hosts = [(transport, _norm_name(self.domain), default_port(transport))]
            self._to_address(hosts)
        elif self._stage == "address":
            targets: list[Target] = []
            for transport, host, port in self._hosts:
                if is_ip_address(host):
                    targets.append(Target(transport, _strip_brackets(host), port))
                    continue
                for family in self._families:
                    for address in self._answers[Query(host, family)]:
                        if isinstance(address, str):
                            targets.append(Target(transport, address, port))
            self._finish(targets)

    def _to_srv(self, services: list[tuple[str, str]]) -> None:
        self._stage = "srv"
        self._services = services
        self._ask(Query(name, "SRV") for _, name in services)
        if not self._pending:
            self._advance()

    def _to_address(self, hosts: list[tuple[str, str, int]]) -> None:
        self._stage = "address"
        self._hosts = hosts
        self._ask(
            Query(host, family)
            for _, host, _ in hosts
            if not is_ip_address(host)
            for family in self._families
        )
        if not self._pending:
            self._advance()

    def _finish(self, targets: Iterable[Target]) -> None:
        self._stage = "done"
        self._pending = {}
        self._targets = list(dict.fromkeys(targets))


def locate(
    uri: SipUri,
    answers: Mapping[Query, Sequence[Answer]],
    rng: RandomSource,
    *,
    transports: Sequence[str] = DEFAULT_TRANSPORTS,
    families: Sequence[Family] = DEFAULT_FAMILIES,
) -> list[Target]:
    """Run ``Locator`` over a table of answers; a missing query means no records.

    Returns the ordered targets (possibly empty). Useful for tests and for
    callers that already hold the DNS data.
    """
    locator = Locator(uri, rng, transports=transports, families=families)
    while not locator.done:
        for query in locator.queries():
            locator.feed(query, answers.get(query, ()))
    return locator.targets()


class TargetSet:
    """The ordered targets of one request, for failover (RFC 3263 §4.3).

    ``next()`` returns the first target not marked failed (the same one
    until it is marked), or None when all have failed. A target fails when
    the client transaction to it times out (Timer B or F) or reports a
    transport error, or when it answers 503; the request is then sent again
    to the next target as a new client transaction, with a new Via branch::

        targets = TargetSet(await resolver.resolve(uri))
        while (target := targets.next()) is not None:
            try:
                response = await send(request_with_new_branch(), target)
            except (TransactionTimeout, TransportError):
                targets.mark_failed(target)
                continue
            if response.status != 503:
                break
            targets.mark_failed(target)
        else:
            ...  # every target failed: answer 503 upstream

    Failures are per target (transport, address, port): another port or
    transport on the same address is still tried.
    """

    def __init__(self, targets: Iterable[Target]) -> None:
        self._targets = list(dict.fromkeys(targets))
        self._failed: set[Target] = set()

    def next(self) -> Target | None:
        """The best target not yet marked failed, or None when none is left."""
        for target in self._targets:
            if target not in self._failed:
                return target
        return None

    def mark_failed(self, target: Target) -> None:
        """Mark ``target`` as not answering; ``next()`` skips it from now on."""
        self._failed.add(target)

    @property
    def exhausted(self) -> bool:
        """True when every target has failed (or there were none)."""
        return self.next() is None

    def remaining(self) -> list[Target]:
        """The targets not marked failed, in order."""
        return [t for t in self._targets if t not in self._failed]

    def __len__(self) -> int:
        return len(self._targets)

    def __iter__(self) -> Iterator[Target]:
        """All targets in order, failed or not."""
        return iter(self._targets)

    def __repr__(self) -> str:
        return f"TargetSet({[str(t) for t in self.remaining()]!r}, failed={len(self._failed)})"
