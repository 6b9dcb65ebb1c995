"""One timer queue for every user-agent object (sessions, registrations ...).

``schedule(deadline, callback)`` returns a handle whose ``cancel()`` drops it;
the owner of the queue calls ``fire(now)`` when ``next_deadline()`` is due.
Time is a number passed in, as everywhere below the I/O edge.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

__all__ = ["TimerHandle", "TimerHeap"]


def _done(now: float) -> None:
    """The callback of a handle that fired or was cancelled."""


class TimerHandle:
    """A scheduled callback; ``cancel()`` makes sure it never runs."""

    __slots__ = ("callback", "cancelled", "deadline")

    def __init__(self, deadline: float, callback: Callable[[float], None]) -> None:
        self.deadline = deadline
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        """Make sure the callback never runs (and let go of it: the owner usually
        keeps the handle, and a bound method in it would make a reference cycle)."""
        self.cancelled = True
        self.callback = _done


class TimerHeap:
    """Deadlines in order; cancelled entries are skipped lazily."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._seq = 0

    def schedule(self, deadline: float, callback: Callable[[float], None]) -> TimerHandle:
        """Run ``callback(now)`` once ``now >= deadline``."""
        handle = TimerHandle(deadline, callback)
        self._seq += 1
        heapq.heappush(self._heap, (deadline, self._seq, handle))
        return handle

    def next_deadline(self) -> float | None:
        """The earliest live deadline, or None."""
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def fire(self, now: float) -> int:
        """Run every callback due at ``now``; returns how many ran."""
        heap = self._heap
        ran = 0
        while heap and heap[0][0] <= now:
            _, _, handle = heapq.heappop(heap)
            if handle.cancelled:
                continue
            handle.cancelled = True
            callback, handle.callback = handle.callback, _done
            callback(now)
            ran += 1
        return ran

    def __len__(self) -> int:
        return sum(1 for _, _, h in self._heap if not h.cancelled)
