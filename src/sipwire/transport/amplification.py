"""A bound on what we send towards addresses that have not shown they want it.

Over UDP the source address of a request can be forged: a 500-byte INVITE
"from" a victim would otherwise earn the victim a 180, a 200 retransmitted
ten times and a BYE. :class:`AmplificationGuard` keeps, per remote address,
the bytes received from it and the bytes sent to it, and refuses a send
that would take what was sent beyond ``factor`` times what was received
(plus a small ``allowance``), the rule QUIC uses before it has validated an
address (RFC 9000 §8). An address is *verified*, and no longer limited,
once it answered one of our requests (its response matched our client
transaction: it received our branch).

Sans-I/O and pure: the I/O edge calls :meth:`received` for every datagram,
:meth:`verified` when a response matches, and asks :meth:`allow` before a
retransmission or any other send the peer did not directly ask for. Only
the first transmission of a response to a request is always allowed, so a
request can never be left without an answer.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["AmplificationGuard"]


@dataclass(slots=True)
class _Ledger:
    received: int = 0
    sent: int = 0
    verified: bool = False


class AmplificationGuard:
    """Per-address byte ledgers, bounded in number (least recently used forgotten)."""

    def __init__(
        self, *, factor: float = 3.0, allowance: int = 2048, max_addresses: int = 65536
    ) -> None:
        self.factor = factor
        self.allowance = allowance
        self.max_addresses = max_addresses
        self.refused = 0
        """Sends refused since start."""
        self.refused_bytes = 0
        self._ledgers: OrderedDict[str, _Ledger] = OrderedDict()

    def _ledger(self, host: str) -> _Ledger:
        ledgers = self._ledgers
        ledger = ledgers.get(host)
        if ledger is None:
            ledger = ledgers[host] = _Ledger()
            if len(ledgers) > self.max_addresses:
                ledgers.popitem(last=False)
        else:
            ledgers.move_to_end(host)
        return ledger

    def received(self, host: str, nbytes: int) -> None:
        """``nbytes`` arrived from ``host``."""
        self._ledger(host).received += nbytes

    def verified(self, host: str) -> None:
        """``host`` showed it receives what we send (it answered our request)."""
        self._ledger(host).verified = True

    def is_verified(self, host: str) -> bool:
        ledger = self._ledgers.get(host)
        return ledger is not None and ledger.verified

    def sent(self, host: str, nbytes: int) -> None:
        """``nbytes`` went to ``host`` without asking (a first response: always sent)."""
        ledger = self._ledgers.get(host)
        if ledger is not None and not ledger.verified:
            ledger.sent += nbytes

    def allow(self, host: str, nbytes: int) -> bool:
        """May ``nbytes`` more go to ``host``? Counts them when they may."""
        ledger = self._ledger(host)
        if ledger.verified:
            return True
        if ledger.sent + nbytes > self.factor * ledger.received + self.allowance:
            self.refused += 1
            self.refused_bytes += nbytes
            return False
        ledger.sent += nbytes
        return True
