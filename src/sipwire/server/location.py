"""The proxy's location cache: the bindings of an AOR kept after a store look-up.

Every INVITE for one of our users needs the bindings of its AOR. Asking
the store each time costs more than the rest of the call (a thread hop and
a query for SQLite, a round trip for Redis or PostgreSQL), so the proxy
keeps what it read, by AOR, and the registrar of this process tells the
cache what it writes (:meth:`LocationCache.changed`, after every
``store.apply``). How long an entry may be used depends on who else writes
the bindings:

exclusive (SQLite, one worker)
    Only this process writes them, and it tells the cache each time: an
    entry is exact until a binding in it expires (an expired binding is
    dropped from it, as the store would not return it), so it is used
    until the registrar changes the AOR. AORs without bindings are kept
    too (480 without a store call).
shared (Redis or PostgreSQL, or ``--workers N``)
    Other nodes or workers write bindings too, and nothing tells this one.
    An entry is used for ``ttl`` seconds after the read
    (``[proxy] location_cache_ttl``, 1 s by default), then the store is
    asked again. A binding added elsewhere to an AOR without bindings here
    is seen at once (empty answers are not kept); a binding removed or
    changed elsewhere, or added to an AOR already cached, is seen within
    ``ttl`` seconds. A REGISTER on this node updates the cache at once.

``ttl = 0`` turns the cache off (every look-up asks the store).

A look-up in flight while the registrar changes the same AOR must not put
the older answer back: :meth:`stamp` is taken before asking the store and
:meth:`found` ignores an answer older than the AOR's last change (or
than the last entry dropped to make room, whose change history is gone).

Plain data, no I/O: the caller passes the wall-clock time (bindings expire
in wall-clock seconds, ``Binding.expires_at``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from sipwire.registrar.model import Binding

__all__ = ["DEFAULT_TTL", "LocationCache"]

DEFAULT_TTL: Final = 1.0
"""Seconds an entry is used with a shared store (``[proxy] location_cache_ttl``)."""
MAX_ENTRIES: Final = 100_000
"""AORs kept at most; beyond, the oldest entry is dropped."""
_NEVER: Final = float("inf")


class _Entry:
    """One AOR: its bindings (None: unknown, ask the store), until when they may be
    used, when the earliest of them expires, and the change it reflects."""

    __slots__ = ("bindings", "earliest", "stamp", "until")

    def __init__(
        self, bindings: list[Binding] | None, until: float, earliest: float, stamp: int
    ) -> None:
        self.bindings = bindings
        self.until = until
        self.earliest = earliest
        self.stamp = stamp


def _earliest(bindings: Sequence[Binding]) -> float:
    return min((b.expires_at for b in bindings), default=_NEVER)


class LocationCache:
    """Bindings by AOR (see the module docstring)."""

    __slots__ = ("_entries", "_floor", "_seq", "exclusive", "hits", "max_entries", "misses", "ttl")

    def __init__(
        self, *, exclusive: bool, ttl: float = DEFAULT_TTL, max_entries: int = MAX_ENTRIES
    ) -> None:
        if ttl < 0:
            raise ValueError("the location cache's ttl cannot be negative")
        self.exclusive = exclusive
        """True when this process alone writes the bindings (SQLite, one worker)."""
        self.ttl = ttl
        """Seconds an entry is used with a shared store; 0: no cache at all."""
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0
        self._entries: dict[str, _Entry] = {}
        self._seq = 0
        self._floor = 0

    @property
    def enabled(self) -> bool:
        return self.ttl > 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, aor: str, wall: float) -> list[Binding] | None:
        """The live bindings of ``aor`` (a new list), or None: ask the store."""
        entry = self._entries.get(aor)
        if entry is None or entry.bindings is None or wall >= entry.until:
            self.misses += 1
            return None
        if wall >= entry.earliest:
            # As the store answers: a binding whose expires_at is not after now is gone.
            entry.bindings = [b for b in entry.bindings if b.expires_at > wall]
            entry.earliest = _earliest(entry.bindings)
            if not entry.bindings and not self.exclusive:
                del self._entries[aor]
                self.misses += 1
                return None
        self.hits += 1
        return list(entry.bindings)

    def stamp(self) -> int:
        """Taken before asking the store; given back to :meth:`found` with the answer."""
        return self._seq

    def found(self, aor: str, bindings: Sequence[Binding], stamp: int, wall: float) -> None:
        """The store's answer for ``aor`` to a question asked at ``stamp``."""
        if not self.enabled or stamp < self._floor:
            return
        entry = self._entries.get(aor)
        if entry is not None and entry.stamp > stamp:
            return  # the registrar changed the AOR since: its entry is newer
        if not bindings and not self.exclusive:
            if entry is not None:
                del self._entries[aor]
            return
        self._put(aor, list(bindings), stamp, wall)

    def changed(self, aor: str, bindings: Sequence[Binding] | None, wall: float) -> None:
        """This process wrote ``aor``'s bindings: ``bindings`` as the store now holds
        them, or None when the write's outcome is unknown (it failed or was cut short)."""
        if not self.enabled:
            return
        self._seq += 1
        if bindings is None or (not bindings and not self.exclusive):
            # Unknown, or nothing worth keeping: a look-up in flight must not refill it.
            self._entries.pop(aor, None)
            self._entries[aor] = _Entry(None, 0.0, _NEVER, self._seq)
            self._trim()
            return
        self._put(aor, list(bindings), self._seq, wall)

    def clear(self) -> None:
        """Forget every entry (answers in flight are ignored too)."""
        self._entries.clear()
        self._seq += 1
        self._floor = self._seq

    def _put(self, aor: str, bindings: list[Binding], stamp: int, wall: float) -> None:
        earliest = _earliest(bindings)
        until = _NEVER if self.exclusive else wall + self.ttl
        entries = self._entries
        entries.pop(aor, None)  # to the end: the oldest entries are dropped first
        entries[aor] = _Entry(bindings, until, earliest, stamp)
        self._trim()

    def _trim(self) -> None:
        entries = self._entries
        while len(entries) > self.max_entries:
            del entries[next(iter(entries))]
            # Its history is gone: answers to questions asked before now are not kept.
            self._seq += 1
            self._floor = self._seq
