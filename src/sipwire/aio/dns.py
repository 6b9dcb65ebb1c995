"""RFC 3263 server location over real DNS, with dnspython's asyncio resolver.

``Resolver.resolve(uri)`` drives the sans-I/O ``sipwire.transport.rfc3263.Locator``:
it asks the NAPTR, SRV and A/AAAA questions the planner needs (concurrently
within a stage), feeds back the answers and returns the ordered targets of
RFC 3263 §4. NXDOMAIN, an empty answer and a failed lookup (timeout,
SERVFAIL) all count as "no records", so the procedure takes its next
fallback; ``ResolveError`` (status 503) is raised when nothing is left.

Answers are cached per question for their TTL (negative answers for the
SOA's negative TTL, RFC 2308), in a bounded LRU table, with the event
loop's clock. Failed lookups are not cached.

Failover (§4.3)::

    resolver = Resolver()
    targets = await resolver.target_set("sip:alice@example.com")
    while (target := targets.next()) is not None:
        ...  # new client transaction to target; on timeout, transport
        ...  # error or 503: targets.mark_failed(target) and loop again

(see ``sipwire.transport.rfc3263.TargetSet``).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import OrderedDict
from collections.abc import Sequence

import dns.asyncresolver
import dns.exception
import dns.message
import dns.name
import dns.resolver
import dns.rrset

from sipwire.message.uri import SipUri
from sipwire.transport.address import Target
from sipwire.transport.rfc3263 import (
    DEFAULT_FAMILIES,
    DEFAULT_TRANSPORTS,
    Answer,
    Family,
    Locator,
    NaptrRecord,
    Query,
    RandomSource,
    ResolveError,
    SrvRecord,
    TargetSet,
)

__all__ = ["DEFAULT_CACHE_SIZE", "ResolveError", "Resolver"]

logger = logging.getLogger(__name__)

DEFAULT_CACHE_SIZE = 1024
"""Cached DNS answers (one per name and record type) kept by default."""


def _text(value: bytes | str) -> str:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else value


def _name(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True).lower()


def _records(rdtype: str, rrset: dns.rrset.RRset | None) -> list[Answer]:
    if rrset is None:
        return []
    out: list[Answer] = []
    for rd in rrset:
        if rdtype == "NAPTR":
            out.append(
                NaptrRecord(
                    rd.order,
                    rd.preference,
                    _text(rd.flags),
                    _text(rd.service),
                    _text(rd.regexp),
                    _name(rd.replacement),
                )
            )
        elif rdtype == "SRV":
            out.append(SrvRecord(rd.priority, rd.weight, rd.port, _name(rd.target)))
        else:
            out.append(str(rd.address))
    return out


def _negative_ttl(response: dns.message.Message | None) -> float:
    """The negative-caching TTL of an NXDOMAIN/NODATA response (RFC 2308 §5)."""
    if not isinstance(response, dns.message.QueryMessage):
        return 0.0
    try:
        return float(response.resolve_chaining().minimum_ttl)
    except dns.exception.DNSException:
        return 0.0


class Resolver:
    """Resolve SIP URIs to ordered ``Target`` lists (RFC 3263 §4) with a TTL cache.

    ``nameservers`` and ``port`` select the DNS servers (the system
    configuration when ``nameservers`` is None); ``timeout`` bounds one
    query to one server and ``lifetime`` one whole lookup, in seconds.
    ``transports`` are the transports the client supports, most preferred
    first, and ``families`` the address lookups per host, in result order
    (``("AAAA", "A")`` prefers IPv6, ``("A",)`` is IPv4 only). ``rng``
    drives the weighted SRV choice (``random.Random()`` by default).
    At most ``cache_size`` answers are cached, none longer than ``max_ttl``.
    """

    def __init__(
        self,
        nameservers: Sequence[str] | None = None,
        *,
        port: int = 53,
        timeout: float = 2.0,
        lifetime: float = 5.0,
        transports: Sequence[str] = DEFAULT_TRANSPORTS,
        families: Sequence[Family] = DEFAULT_FAMILIES,
        rng: RandomSource | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
        max_ttl: float = 86400.0,
    ) -> None:
        if nameservers is None:
            self._dns = dns.asyncresolver.Resolver(configure=True)
        else:
            self._dns = dns.asyncresolver.Resolver(configure=False)
            self._dns.nameservers = list(nameservers)
        self._dns.port = port
        self._dns.timeout = timeout
        self._dns.lifetime = lifetime
        self._dns.cache = None
        self.transports = tuple(transports)
        self.families = tuple(families)
        self._rng: RandomSource = rng if rng is not None else random.Random()
        self._cache: OrderedDict[Query, tuple[float, list[Answer]]] = OrderedDict()
        self._cache_size = cache_size
        self._max_ttl = max_ttl

    async def resolve(self, uri: SipUri | str) -> list[Target]:
        """The targets for ``uri`` in the order to try them (RFC 3263 §4).

        Raises ``ResolveError`` (503) when no target is found, and
        ``ParseError`` when ``uri`` is text that is not a SIP or SIPS URI.
        """
        if isinstance(uri, str):
            uri = SipUri.parse(uri)
        locator = Locator(uri, self._rng, transports=self.transports, families=self.families)
        while not locator.done:
            queries = locator.queries()
            answers = await asyncio.gather(*(self.lookup(q) for q in queries))
            for query, records in zip(queries, answers, strict=True):
                locator.feed(query, records)
        targets = locator.targets()
        if not targets:
            host = uri.maddr or uri.host
            raise ResolveError(f"cannot resolve {host}: no SIP server or address records")
        return targets

    async def target_set(self, uri: SipUri | str) -> TargetSet:
        """``resolve(uri)`` wrapped in a ``TargetSet`` for failover (§4.3)."""
        return TargetSet(await self.resolve(uri))

    async def lookup(self, query: Query) -> list[Answer]:
        """Answer one planner query from the cache or DNS; [] for "no records"."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        cached = self._cache.get(query)
        if cached is not None:
            if cached[0] > now:
                self._cache.move_to_end(query)
                return list(cached[1])
            del self._cache[query]
        try:
            answer = await self._dns.resolve(
                dns.name.from_text(query.name),
                query.rdtype,
                raise_on_no_answer=False,
                search=False,
            )
        except dns.resolver.NXDOMAIN as exc:
            responses = list(exc.responses().values())  # type: ignore[no-untyped-call]
            ttl = _negative_ttl(responses[0] if responses else None)
            records: list[Answer] = []
        except dns.exception.DNSException as exc:
            # Timeout, SERVFAIL, REFUSED...: no records this time, not cached.
            logger.debug("DNS %s %s failed: %r", query.rdtype, query.name, exc)
            return []
        else:
            records = _records(query.rdtype, answer.rrset)
            if answer.rrset is None:
                ttl = _negative_ttl(answer.response)
            else:
                ttl = float(answer.chaining_result.minimum_ttl)
        if ttl > 0 and self._cache_size > 0:
            self._store(query, records, now + min(ttl, self._max_ttl))
        return records

    def _store(self, query: Query, records: list[Answer], expires: float) -> None:
        self._cache[query] = (expires, records)
        self._cache.move_to_end(query)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    @property
    def cache_entries(self) -> int:
        """How many answers are cached (expired ones included until next looked up)."""
        return len(self._cache)

    def clear_cache(self) -> None:
        """Forget every cached answer."""
        self._cache.clear()
