"""What the four transaction state machines share: states, timers, the outbox."""

from __future__ import annotations

import enum
from collections.abc import Hashable
from typing import ClassVar, Protocol

from sipwire.message import Request, Response
from sipwire.transaction.events import Event, TransactionTerminated
from sipwire.transaction.timers import Timer, TimerConfig

__all__ = ["Hooks", "State", "Transaction"]

_RETRANSMIT = frozenset({Timer.A, Timer.E, Timer.G})


class State(enum.Enum):
    """Transaction states of RFC 3261 Figures 5-8 and RFC 6026 (Accepted)."""

    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class Hooks(Protocol):
    """How a transaction reaches the layer that owns it (or a test harness)."""

    def emit(self, event: Event) -> None:
        """Queue an event for the transport or the TU."""

    def schedule(self, transaction: Transaction, timer: Timer, deadline: float) -> None:
        """Note that ``timer`` of ``transaction`` is due at ``deadline``."""

    def terminated(self, transaction: Transaction) -> None:
        """Forget the transaction."""

    def answered(self, transaction: Transaction) -> None:
        """A server transaction sent its final response (it no longer holds its request)."""


class Transaction:
    """State, timers and identity common to client and server transactions.

    Timers are deadlines in the caller's clock: ``handle_timer(now)`` fires
    those that are due, ``next_timer()`` tells when to call it next.
    """

    __slots__ = (
        "_hooks",
        "_interval",
        "_timers",
        "config",
        "key",
        "last_response",
        "method",
        "reliable",
        "state",
    )

    kind: ClassVar[str] = "transaction"
    """``ICT``, ``NICT``, ``IST`` or ``NIST`` (RFC 3261 §17 abbreviations)."""

    def __init__(
        self, key: Hashable, request: Request, reliable: bool, config: TimerConfig, hooks: Hooks
    ) -> None:
        self.key = key
        """The matching key in the layer's table (§17.1.3 / §17.2.3)."""
        self.method = request.method
        """The method of the request that created the transaction."""
        self.reliable = reliable
        """True over TCP, TLS, WS: no retransmission timers (§17.1.1.2)."""
        self.config = config
        self.state = State.TRYING
        self.last_response: Response | None = None
        self._hooks = hooks
        self._timers: dict[Timer, float] = {}
        self._interval = 0.0
        """The current interval of the retransmission timer (A, E or G: one runs at a time)."""

    def __repr__(self) -> str:
        return f"<{self.kind} {self.method} {self.state.value} key={self.key!r}>"

    @property
    def terminated(self) -> bool:
        return self.state is State.TERMINATED

    # -- timers ------------------------------------------------------------------
    def next_timer(self) -> float | None:
        """The earliest deadline of this transaction, or None."""
        return min(self._timers.values()) if self._timers else None

    def timer_deadline(self, timer: Timer) -> float | None:
        """When ``timer`` fires, or None when it is not running."""
        return self._timers.get(timer)

    def handle_timer(self, now: float) -> None:
        """Fire every timer due at ``now``, earliest first."""
        while self._timers and not self.terminated:
            timer, deadline = min(self._timers.items(), key=lambda item: item[1])
            if deadline > now:
                return
            del self._timers[timer]
            self._on_timer(timer, deadline)

    def fire(self, timer: Timer, deadline: float) -> bool:
        """Fire one timer if it is still set for ``deadline`` (used by the layer's heap)."""
        if self._timers.get(timer) != deadline or self.terminated:
            return False
        del self._timers[timer]
        self._on_timer(timer, deadline)
        return True

    def _start(self, timer: Timer, delay: float, now: float) -> None:
        deadline = now + delay
        self._timers[timer] = deadline
        if timer in _RETRANSMIT:
            self._interval = delay
        self._hooks.schedule(self, timer, deadline)

    def _stop(self, *timers: Timer) -> None:
        for timer in timers:
            self._timers.pop(timer, None)

    def _on_timer(self, timer: Timer, now: float) -> None:
        raise NotImplementedError

    # -- outcomes ----------------------------------------------------------------
    def _emit(self, event: Event) -> None:
        self._hooks.emit(event)

    def _terminate(self) -> None:
        if self.terminated:
            return
        self.state = State.TERMINATED
        self._timers.clear()
        self._hooks.terminated(self)
        self._emit(TransactionTerminated(self))
