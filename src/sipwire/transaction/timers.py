"""RFC 3261 §17 timer values (Table 4) and the timer names the state machines use."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Timer", "TimerConfig"]


class Timer(enum.Enum):
    """Timers of RFC 3261 Table 4, RFC 6026 (L, M) and the 100 Trying delay."""

    A = "A"  # INVITE request retransmit interval, UDP only
    B = "B"  # INVITE transaction timeout
    D = "D"  # wait time for response retransmits (ICT Completed)
    E = "E"  # non-INVITE request retransmit interval, UDP only
    F = "F"  # non-INVITE transaction timeout
    G = "G"  # INVITE response retransmit interval (IST Completed)
    H = "H"  # wait time for ACK receipt
    I = "I"  # noqa: E741 - the RFC's name; wait time for ACK retransmits
    J = "J"  # wait time for non-INVITE request retransmits
    K = "K"  # wait time for response retransmits (NICT Completed)
    L = "L"  # RFC 6026: IST Accepted, wait for INVITE retransmits
    M = "M"  # RFC 6026: ICT Accepted, wait for 2xx retransmits
    TRYING = "Trying"  # §17.2.1: send 100 Trying if the TU has not answered in 200 ms

    # Members are singletons compared by identity: hash them by identity too, in C
    # (Enum's own __hash__ is a Python function, and timers are dict keys on a hot path).
    __hash__ = object.__hash__


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """T1, T2 and T4 of RFC 3261 §17.1.1.1 (seconds), and values derived from them."""

    t1: float = 0.5
    """RTT estimate; retransmissions start at T1 and timeouts are 64*T1."""
    t2: float = 4.0
    """Maximum retransmit interval for non-INVITE requests and INVITE responses."""
    t4: float = 5.0
    """Maximum duration a message remains in the network."""
    trying_delay: float = 0.2
    """How long an INVITE server transaction waits for the TU before sending 100 Trying."""
    timer_d: float = 32.0
    """Timer D on unreliable transports: at least 32 s (§17.1.1.2)."""

    @property
    def timeout(self) -> float:
        """64*T1: Timers B, F, H, J, L and M."""
        return 64 * self.t1
