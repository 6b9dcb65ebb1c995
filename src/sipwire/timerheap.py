"""One timer queue, for the user-agent core (sessions, registrations ...) and the
proxy (Timer C of every branch, §16.6 step 11): both below the I/O edge, beside
each other in the layers, so the queue sits under both.

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

    __slots__ = ("callback", "cancelled", "deadline", "heap")

    def __init__(
        self, deadline: float, callback: Callable[[float], None], heap: TimerHeap | None = None
    ) -> None:
        self.deadline = deadline
        self.callback = callback
        self.cancelled = False
        self.heap = heap
        """The queue the handle still waits in (None once fired or cancelled)."""

    def cancel(self) -> None:
        """Make sure the callback never runs (and let go of it: the owner usually
        keeps the handle, and a bound method in it would make a reference cycle)."""
        if self.cancelled:
            return
        self.cancelled = True
        self.callback = _done
        heap, self.heap = self.heap, None
        if heap is not None:
            heap._cancelled_one()


class TimerHeap:
    """Deadlines in order; cancelled entries are skipped lazily, and the queue is
    rebuilt without them once they are the majority (a session timer cancelled
    at the end of a call would otherwise wait in it for half an hour)."""

    COMPACT_MIN = 256
    """Below this many entries the queue is never rebuilt."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._seq = 0
        self._cancelled = 0

    def schedule(self, deadline: float, callback: Callable[[float], None]) -> TimerHandle:
        """Run ``callback(now)`` once ``now >= deadline``."""
        handle = TimerHandle(deadline, callback, self)
        self._seq += 1
        heapq.heappush(self._heap, (deadline, self._seq, handle))
        return handle

    def _cancelled_one(self) -> None:
        self._cancelled += 1
        heap = self._heap
        if self._cancelled * 2 > len(heap) >= self.COMPACT_MIN:
            self._heap = [entry for entry in heap if not entry[2].cancelled]
            heapq.heapify(self._heap)
            self._cancelled = 0

    def next_deadline(self) -> float | None:
        """The earliest live deadline, or None."""
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
            self._cancelled -= 1
        return heap[0][0] if heap else None

    def fire(self, now: float) -> int:
        """Run every callback due at ``now``; returns how many ran."""
        heap = self._heap
        ran = 0
        while heap and heap[0][0] <= now:
            _, _, handle = heapq.heappop(heap)
            if handle.cancelled:
                self._cancelled -= 1
                continue
            handle.heap = None
            handle.cancelled = True
            callback, handle.callback = handle.callback, _done
            callback(now)
            ran += 1
            heap = self._heap  # a callback may have compacted the queue
        return ran

    def __len__(self) -> int:
        return len(self._heap) - self._cancelled
