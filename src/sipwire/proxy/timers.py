"""One timer queue for the proxy's own timers (Timer C of every branch).

The transaction layer runs Timers A to M; the proxy adds Timer C (§16.6
step 11, §16.8). ``schedule(deadline, callback)`` returns a handle whose
``cancel()`` drops it; the proxy's ``handle_timer(now)`` calls ``fire``.
Time is a number passed in.

Most Timer C deadlines are cancelled long before they are due (a branch
answers within seconds, the timer is set for minutes): the queue is rebuilt
without them once they are the majority, so that its size follows the
calls in progress, not the calls of the last three minutes.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

__all__ = ["TimerHandle", "Timers"]

_COMPACT_MIN = 256


class TimerHandle:
    """A scheduled callback; ``cancel()`` makes sure it never runs."""

    __slots__ = ("callback", "deadline", "queue")

    def __init__(
        self, deadline: float, callback: Callable[[float], None], queue: Timers | None
    ) -> None:
        self.deadline = deadline
        self.callback: Callable[[float], None] | None = callback
        self.queue = queue

    @property
    def cancelled(self) -> bool:
        return self.callback is None

    def cancel(self) -> None:
        if self.callback is None:
            return
        self.callback = None
        queue, self.queue = self.queue, None
        if queue is not None:
            queue._cancelled_one()


class Timers:
    """Deadlines in order; cancelled entries are skipped, or swept out in bulk."""

    __slots__ = ("_cancelled", "_heap", "_seq")

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
        if self._cancelled * 2 > len(self._heap) >= _COMPACT_MIN:
            self._heap = [entry for entry in self._heap if not entry[2].cancelled]
            heapq.heapify(self._heap)
            self._cancelled = 0

    def next_deadline(self) -> float | None:
        """The earliest live deadline, or None."""
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
            self._cancelled -= 1
        return heap[0][0] if heap else None

    def fire(self, now: float) -> None:
        """Run every callback due at ``now``."""
        while self._heap and self._heap[0][0] <= now:
            _, _, handle = heapq.heappop(self._heap)
            callback = handle.callback
            if callback is None:
                self._cancelled -= 1
                continue
            handle.callback = None
            handle.queue = None
            callback(now)

    def __len__(self) -> int:
        return len(self._heap) - self._cancelled
