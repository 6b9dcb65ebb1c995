"""Garbage collection on a clock, for server processes.

CPython's collector runs after every so many allocations. A SIP server
allocates without pause and keeps each call's transactions for 64*T1, so
the collector keeps walking the same live objects: under sipp at 1,000
calls/s it took about 12 % of ``sipwire answer``'s CPU, and its full
collections paused the process for over a second, long enough for peers to
retransmit (T1 is 500 ms) and tip a loaded server into collapse.

sipwire's per-call objects form no reference cycles (reference counting
frees them; ``tests/aio/test_no_cycles.py`` guards this), so the collector
only has to catch the rare cycle, and it can do that on a clock:
:class:`TimedCollection` turns the automatic collector off, runs a
young-generation collection every ``young`` seconds and then *freezes* what
survived (``gc.freeze``: moved out of every generation, still freed by
reference counting when it dies), so each young collection walks only what
was allocated since the last one. Every ``full`` seconds, and whenever
:meth:`collect_all` is called (the overload monitor does after a load), the
frozen objects are unfrozen and a full collection runs: a cycle that formed
among old objects waits at most that long. Pauses longer than ``slow``
seconds are logged on ``sipwire.gc``.

``stop()`` gives collection back to the interpreter. Library users keep
CPython's default; ``sipwire answer`` and ``sipwire serve`` use this.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

__all__ = ["TimedCollection"]

log = logging.getLogger("sipwire.gc")


class TimedCollection:
    """Young collections every ``young`` seconds, a full one every ``full`` seconds."""

    def __init__(self, *, young: float = 1.0, full: float = 600.0, slow: float = 0.1) -> None:
        self.young = young
        self.full = full
        self.slow = slow
        self.collections = [0, 0]
        """Young and full collections run."""
        self.pause = 0.0
        """Seconds spent collecting in all."""
        self._handle: asyncio.TimerHandle | None = None
        self._was_enabled = False
        self._last_full = 0.0

    def start(self) -> None:
        """Disable the automatic collector and start the clock."""
        loop = asyncio.get_running_loop()
        self._was_enabled = gc.isenabled()
        gc.disable()
        self._last_full = loop.time()
        self._handle = loop.call_later(self.young, self._tick)

    def stop(self) -> None:
        """Stop the clock, unfreeze, and give collection back to the interpreter."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        gc.unfreeze()
        if self._was_enabled:
            gc.enable()

    def collect_all(self) -> int:
        """A full collection now (everything unfrozen first, frozen again after)."""
        started = time.perf_counter()
        gc.unfreeze()
        found = gc.collect()
        gc.freeze()
        self._note(2, started, found)
        self.collections[1] += 1
        return found

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if now - self._last_full >= self.full:
            self._last_full = now
            self.collect_all()
        else:
            started = time.perf_counter()
            found = gc.collect(0)
            gc.freeze()
            self.collections[0] += 1
            self._note(0, started, found)
        self._handle = loop.call_later(self.young, self._tick)

    def _note(self, generation: int, started: float, found: int) -> None:
        took = time.perf_counter() - started
        self.pause += took
        if took >= self.slow:
            log.info("generation %d collected in %.3f s (%d unreachable)", generation, took, found)
