"""Garbage collection on a clock, for server processes.

CPython's collector runs after every so many allocations. A SIP server
allocates without pause and keeps each call's transactions for 64*T1, so
the collector keeps walking the same live objects: measured under sipp, it
took about 12 % of ``sipwire answer``'s CPU. sipwire's per-call objects do
not form reference cycles (reference counting frees them; a test guards
this), so the collector only has to catch the rare cycle, and it can do
that on a clock instead.

:class:`TimedCollection` turns the automatic collector off and runs the
young generation every ``young`` seconds, the middle one every ``middle``
seconds and a full collection every ``full`` seconds, logging pauses longer
than ``slow`` seconds on ``sipwire.gc``. ``stop()`` turns the automatic
collector back on. Library users keep CPython's default; ``sipwire answer``
and ``sipwire serve`` use this.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

__all__ = ["TimedCollection"]

log = logging.getLogger("sipwire.gc")


class TimedCollection:
    """Collections every ``young`` / ``middle`` / ``full`` seconds instead of by allocation."""

    def __init__(
        self, *, young: float = 1.0, middle: float = 10.0, full: float = 60.0, slow: float = 0.1
    ) -> None:
        self.young = young
        self.middle = middle
        self.full = full
        self.slow = slow
        self.collections = [0, 0, 0]
        """Collections run per generation."""
        self.pause = 0.0
        """Seconds spent collecting in all."""
        self._handle: asyncio.TimerHandle | None = None
        self._was_enabled = False
        self._last_middle = 0.0
        self._last_full = 0.0

    def start(self) -> None:
        """Disable the automatic collector and start the clock."""
        loop = asyncio.get_running_loop()
        self._was_enabled = gc.isenabled()
        gc.disable()
        now = loop.time()
        self._last_middle = self._last_full = now
        self._handle = loop.call_later(self.young, self._tick)

    def stop(self) -> None:
        """Stop the clock and give collection back to the interpreter."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._was_enabled:
            gc.enable()

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        generation = 0
        if now - self._last_full >= self.full:
            generation = 2
            self._last_full = self._last_middle = now
        elif now - self._last_middle >= self.middle:
            generation = 1
            self._last_middle = now
        started = time.perf_counter()
        found = gc.collect(generation)
        took = time.perf_counter() - started
        self.collections[generation] += 1
        self.pause += took
        if took >= self.slow:
            log.info(
                "generation %d collection took %.3f s (%d unreachable)", generation, took, found
            )
        self._handle = loop.call_later(self.young, self._tick)
