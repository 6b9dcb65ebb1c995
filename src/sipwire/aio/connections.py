"""The bookkeeping of open connections: limits per source, eviction, kept flows.

:class:`ConnectionTable` knows every open stream and WebSocket connection of a
:class:`~sipwire.aio.transport.TransportLayer` by flow. For the incoming ones
it also keeps what the limits of :class:`TransportConfig` need, each in O(1)
per event:

- the number of connections per remote IP address
  (``max_connections_per_source``);
- the order in which connections are evicted when ``max_connections`` is
  reached: first those that never delivered a complete message, oldest
  first; then those that did, idle longest first (a least-recently-used
  order, refreshed by every complete message); kept flows never.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Iterator

from sipwire.aio.transport_base import Connection, TransportConfig, log

__all__ = ["ConnectionTable"]


class ConnectionTable:
    """Open connections by flow, with per-source counts and an eviction order."""

    def __init__(self, config: TransportConfig) -> None:
        self.config = config
        self._all: dict[int, Connection] = {}
        # Incoming connections only, each in exactly one of these three:
        self._fresh: OrderedDict[int, Connection] = OrderedDict()  # no message yet, by age
        self._used: OrderedDict[int, Connection] = OrderedDict()  # least recently used first
        self._kept: dict[int, Connection] = {}  # keep_flow: not evicted while kept
        self._keeps: list[tuple[float, int]] = []  # heap of (kept_until, flow), some stale
        self._per_source: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._all)

    def __iter__(self) -> Iterator[Connection]:
        return iter(list(self._all.values()))

    def get(self, flow: int) -> Connection | None:
        """The open connection ``flow``, or None."""
        conn = self._all.get(flow)
        return None if conn is None or conn.closed else conn

    def from_source(self, host: str) -> int:
        """Incoming connections open from the IP address ``host``."""
        return self._per_source.get(host, 0)

    # -- bookkeeping --------------------------------------------------------------------
    def add(self, conn: Connection) -> None:
        """Count a connection in (again: a second call does nothing)."""
        if conn.flow in self._all:
            return
        self._all[conn.flow] = conn
        if not conn.client:
            host = conn.remote[0]
            self._per_source[host] = self._per_source.get(host, 0) + 1
            (self._used if conn.delivered else self._fresh)[conn.flow] = conn

    def remove(self, conn: Connection) -> None:
        """Count a connection out (again: a second call does nothing)."""
        if self._all.get(conn.flow) is not conn:
            return
        del self._all[conn.flow]
        if not conn.client:
            for group in (self._fresh, self._used, self._kept):
                group.pop(conn.flow, None)
            host = conn.remote[0]
            left = self._per_source.get(host, 0) - 1
            if left > 0:
                self._per_source[host] = left
            else:
                self._per_source.pop(host, None)

    def used(self, conn: Connection) -> None:
        """A complete message went through ``conn``: move it to the back of the eviction order."""
        flow = conn.flow
        if conn.client or self._all.get(flow) is not conn:
            return
        if flow in self._kept:
            if conn.kept(conn.last_message):
                return
            del self._kept[flow]  # the keep ran out: evictable again
        elif flow in self._fresh:
            if not conn.delivered:
                return  # a write: the peer has still said nothing
            del self._fresh[flow]
        self._used[flow] = conn
        self._used.move_to_end(flow)

    def keep(self, flow: int, until: float, now: float) -> bool:
        """Keep the connection ``flow`` until ``until`` (see ``TransportLayer.keep_flow``)."""
        conn = self.get(flow)
        if conn is None:
            return False
        conn.kept_until = until
        if conn.client:
            return True
        self._fresh.pop(flow, None)
        self._used.pop(flow, None)
        self._kept.pop(flow, None)
        if conn.kept(now):
            self._kept[flow] = conn
            heapq.heappush(self._keeps, (until, flow))
            if len(self._keeps) > 2 * len(self._kept) + 64:  # drop the stale entries
                self._keeps = [(c.kept_until, f) for f, c in self._kept.items()]
                heapq.heapify(self._keeps)
        else:
            (self._used if conn.delivered else self._fresh)[flow] = conn
        return True

    # -- eviction -----------------------------------------------------------------------
    def candidate(self, now: float) -> Connection | None:
        """The incoming connection to evict to make room, or None when none qualifies.

        O(1), plus O(log n) per kept flow whose keep has run out.
        """
        self._expire_keeps(now)
        fresh = next(iter(self._fresh.values()), None)
        if fresh is not None:
            return fresh
        idlest = next(iter(self._used.values()), None)
        if idlest is not None and now - idlest.last_message >= self.config.eviction_min_idle:
            return idlest
        return None

    def _expire_keeps(self, now: float) -> None:
        """Make the flows whose keep has run out evictable again."""
        keeps = self._keeps
        while keeps and keeps[0][0] <= now:
            _, flow = heapq.heappop(keeps)
            conn = self._kept.get(flow)
            if conn is None or conn.kept(now):
                continue  # gone, or kept again since
            # Quiet since its keep ran out (a message would have moved it): idlest first.
            del self._kept[flow]
            group = self._used if conn.delivered else self._fresh
            group[flow] = conn
            group.move_to_end(flow, last=False)

    def make_room(self, pending: int, now: float, newcomer: str) -> bool:
        """True when one more connection fits, evicting one to make room if need be.

        ``pending`` counts the outgoing connections being opened; ``newcomer``
        names the new connection in the log.
        """
        if len(self._all) + pending < self.config.max_connections:
            return True
        victim = self.candidate(now)
        if victim is None:
            return False
        if victim.delivered:
            why = f"idle {now - victim.last_message:.1f}s"
        else:
            why = f"no message in {now - victim.opened:.1f}s"
        log.warning(
            "%r evicted (%s) to make room for %s: %d connections open (max_connections)",
            victim,
            why,
            newcomer,
            len(self._all),
        )
        self.remove(victim)
        victim.abort()
        return len(self._all) + pending < self.config.max_connections
