"""Overload detection at the I/O edge, and giving memory back after a load.

:class:`OverloadMonitor` wakes every ``interval`` seconds and measures two
things the sans-I/O core cannot: the share of one CPU the process used
over the last ``window`` (``time.process_time``), and how late the event
loop ran the wake-up. When either passes its high mark the element is
overloaded: :class:`~sipwire.transaction.admission.Admission` then sheds
new dialogs from the sources that offer more than their fair share. It
stays overloaded for at least ``hold`` seconds and until the CPU share
falls under the low mark.

A UDP server cannot see its socket's queue, so the CPU share is the signal
that matters: a process that is busy all the time is falling behind.

Every change, and every shedding, is logged (at most once per
``report_every`` seconds for the counters) on ``sipwire.overload``.

After a load (the transaction tables fell to a tenth of their peak and
stayed there for ``trim_after`` seconds, and again at each further tenth)
the monitor runs a full garbage collection and asks the C library to return
free memory to the system (``malloc_trim``, where there is one), so that the
resident size goes back near its baseline.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from sipwire.transaction.admission import Admission, AdmissionStats

__all__ = ["OverloadConfig", "OverloadMonitor"]

log = logging.getLogger("sipwire.overload")


@dataclass(frozen=True, slots=True)
class OverloadConfig:
    """When the edge calls the element overloaded."""

    interval: float = 0.1
    """Seconds between measurements."""
    window: float = 0.5
    """Seconds over which the CPU share is averaged."""
    cpu_high: float = 0.9
    """Share of one CPU at or above which the element is overloaded."""
    cpu_low: float = 0.6
    """Share of one CPU below which an overload may end."""
    lag_high: float = 0.1
    """Seconds of event-loop lag at or above which the element is overloaded."""
    hold: float = 2.0
    """Seconds an overload lasts at least."""
    report_every: float = 10.0
    """Seconds between log lines about shed requests."""
    trim_after: float = 5.0
    """Seconds of calm after a load before memory is given back."""
    trim_min_peak: int = 2000
    """Transactions a load must have reached for a trim to be worth it."""


def _malloc_trim() -> Callable[[], None] | None:
    try:
        libc = ctypes.CDLL(None)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    return lambda: trim(0) and None


class OverloadMonitor:
    """Measures CPU share and loop lag, sets ``admission.overloaded``, trims after loads."""

    def __init__(
        self,
        admission: Admission,
        size: Callable[[], int],
        config: OverloadConfig | None = None,
    ) -> None:
        self.admission = admission
        self.config = config or OverloadConfig()
        self._size = size
        """The number of transactions now (for the memory trim)."""
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._samples: list[tuple[float, float]] = []
        self._expected = 0.0
        self._since = 0.0
        self._reported = AdmissionStats()
        self._reported_at = 0.0
        self._refreshed_at = 0.0
        self._peak = 0
        self._trimmed_at: int | None = None
        self._calm_since: float | None = None
        self._trim = _malloc_trim()
        self.collect: Callable[[], object] = gc.collect
        """Runs a full garbage collection after a load (replaced when collection is timed)."""
        self.cpu = 0.0
        """The last CPU share measured (1.0 = one core)."""
        self.lag = 0.0
        """The last event-loop lag measured, in seconds."""

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        now = loop.time()
        self._samples = [(now, time.process_time())]
        self._reported_at = now
        self._schedule(now)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _schedule(self, now: float) -> None:
        assert self._loop is not None
        self._expected = now + self.config.interval
        self._handle = self._loop.call_at(self._expected, self._tick)

    def _tick(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        try:
            self._measure(now)
            self._report(now)
            self._maybe_trim(now)
        except Exception:
            log.exception("overload monitor")
        self._schedule(now)

    def _measure(self, now: float) -> None:
        config = self.config
        self.lag = max(0.0, now - self._expected)
        samples = self._samples
        samples.append((now, time.process_time()))
        while len(samples) > 2 and samples[1][0] <= now - config.window:
            samples.pop(0)
        (t0, c0), (t1, c1) = samples[0], samples[-1]
        self.cpu = (c1 - c0) / (t1 - t0) if t1 > t0 else 0.0
        admission = self.admission
        if now - self._refreshed_at >= config.window:
            admission.refresh(now)
            self._refreshed_at = now
        high = self.cpu >= config.cpu_high or self.lag >= config.lag_high
        if high:
            self._since = now
            if not admission.overloaded:
                admission.set_overloaded(True, now)
                log.warning(
                    "overloaded (CPU %.0f%%, loop lag %.3f s, %d sources): new dialogs from "
                    "sources above their fair share get 503",
                    100 * self.cpu,
                    self.lag,
                    admission.sources,
                )
        elif (
            admission.overloaded and self.cpu < config.cpu_low and now - self._since >= config.hold
        ):
            admission.set_overloaded(False, now)
            log.warning("overload over (CPU %.0f%%)", 100 * self.cpu)

    def _report(self, now: float) -> None:
        stats = self.admission.stats
        if stats.total == self._reported.total or now - self._reported_at < (
            self.config.report_every
        ):
            return
        old = self._reported
        log.warning(
            "shed %d new requests in %.0f s: tables full %d, pending bytes %d, "
            "holdings %d, unverified sources %d, overload %d; dropped over the "
            "per-source rate limit %d",
            stats.total - old.total,
            now - self._reported_at,
            stats.shed_tables_full - old.shed_tables_full,
            stats.shed_pending_bytes - old.shed_pending_bytes,
            stats.shed_holdings - old.shed_holdings,
            stats.shed_unverified - old.shed_unverified,
            stats.shed_overload - old.shed_overload,
            stats.dropped_rate_limit - old.dropped_rate_limit,
        )
        self._reported = replace(stats)
        self._reported_at = now

    def _maybe_trim(self, now: float) -> None:
        """Give memory back as a load drains: when the transactions fall to a tenth of
        the load's peak, and again each time they fall to a tenth of the last trim
        (what the last calls of a flood held is returned too)."""
        size = self._size()
        if size > self._peak:
            self._peak = size
            self._trimmed_at = None
        if self._peak < self.config.trim_min_peak:
            return
        level = self._peak if self._trimmed_at is None else self._trimmed_at
        if size * 10 > level:
            self._calm_since = None
            return
        if self._calm_since is None:
            self._calm_since = now
            return
        if now - self._calm_since < self.config.trim_after:
            return
        started = time.perf_counter()
        self.collect()
        if self._trim is not None:
            with contextlib.suppress(Exception):
                self._trim()
        log.info(
            "load draining (peak %d transactions, %d now): memory given back in %.3f s",
            self._peak,
            size,
            time.perf_counter() - started,
        )
        self._calm_since = None
        if size * 100 <= self._peak:
            self._peak = size  # the load is over
            self._trimmed_at = None
        else:
            self._trimmed_at = max(size, 1)
