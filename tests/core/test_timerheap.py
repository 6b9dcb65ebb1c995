"""The core's timer queue: order, cancellation, and no pile of cancelled entries."""

from __future__ import annotations

from sipwire.timerheap import TimerHeap


def test_callbacks_run_in_deadline_order_and_cancelled_ones_never() -> None:
    heap = TimerHeap()
    ran: list[str] = []
    heap.schedule(3.0, lambda now: ran.append("c"))
    b = heap.schedule(2.0, lambda now: ran.append("b"))
    heap.schedule(1.0, lambda now: ran.append("a"))
    b.cancel()
    b.cancel()  # twice is harmless
    assert heap.next_deadline() == 1.0 and len(heap) == 2
    assert heap.fire(10.0) == 2
    assert ran == ["a", "c"] and len(heap) == 0 and heap.next_deadline() is None


def test_cancelled_entries_do_not_pile_up() -> None:
    """Ten thousand calls each cancel a session timer due in half an hour: the queue
    stays small instead of holding them all until their deadline."""
    heap = TimerHeap()
    keep = heap.schedule(5000.0, lambda now: None)
    for n in range(10_000):
        heap.schedule(1800.0 + n, lambda now: None).cancel()
    assert len(heap) == 1
    assert len(heap._heap) < 2 * TimerHeap.COMPACT_MIN
    assert heap.next_deadline() == 5000.0 and not keep.cancelled


def test_a_callback_may_schedule_and_cancel_while_firing() -> None:
    heap = TimerHeap()
    ran: list[float] = []
    victims = [heap.schedule(2.0 + n, lambda now: ran.append(-1)) for n in range(600)]

    def first(now: float) -> None:
        ran.append(now)
        for victim in victims:  # enough to rebuild the queue mid-fire
            victim.cancel()
        heap.schedule(now + 0.5, lambda at: ran.append(at))

    heap.schedule(1.0, first)
    assert heap.fire(1.0) == 1
    assert heap.fire(1000.0) == 1
    assert ran == [1.0, 1000.0]  # the one scheduled mid-fire ran, and no victim
