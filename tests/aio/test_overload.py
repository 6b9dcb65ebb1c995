"""The overload monitor: overload from CPU share, and memory given back as a load drains."""

from __future__ import annotations

import time

import pytest

from sipwire.aio.overload import OverloadConfig, OverloadMonitor
from sipwire.transaction.admission import Admission


def test_memory_is_given_back_at_each_tenth_of_a_draining_load() -> None:
    sizes = iter([0, 5000, 5000, 400, 400, 400, 400, 30, 30, 30, 2, 2, 2, 2, 2000])
    size = [0]
    monitor = OverloadMonitor(Admission(), lambda: size[0], OverloadConfig(trim_after=1.0))
    collections: list[int] = []
    monitor.collect = lambda: collections.append(size[0])
    monitor._trim = None
    now = 0.0
    for value in sizes:
        size[0] = value
        monitor._maybe_trim(now)
        now += 1.0
    # at a tenth of the peak (400), at a tenth of that (30), then the load is over
    assert collections == [400, 30]
    assert monitor._peak == 2000 and monitor._trimmed_at is None  # a new load starts


def test_overload_follows_the_cpu_share_with_hold_time(monkeypatch: pytest.MonkeyPatch) -> None:
    admission = Admission()
    monitor = OverloadMonitor(admission, lambda: 0, OverloadConfig(hold=2.0, window=0.5))
    monitor._samples = [(0.0, 0.0)]
    clock = {"cpu": 0.0}
    monkeypatch.setattr(time, "process_time", lambda: clock["cpu"])
    now = 0.0
    states = []
    for busy in [1.0] * 10 + [0.2] * 40:  # one second at full CPU, then mostly idle
        now += 0.1
        clock["cpu"] += 0.1 * busy
        monitor._expected = now  # no loop lag
        monitor._measure(now)
        states.append(admission.overloaded)
    assert states[4] is True  # overloaded within half a second of full CPU
    assert states[20] is True  # held at least two seconds
    assert states[-1] is False  # and over once the CPU share stays low
