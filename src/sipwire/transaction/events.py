"""What the transaction layer asks of the transport and tells the TU.

One dataclass per event (pull them with ``TransactionLayer.next_event``); they
are plain slotted classes rather than frozen ones, which cost three times as much
to create on a path that makes several per message: treat them as read-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sipwire.message import Request, Response
from sipwire.transport.address import Source, Target

if TYPE_CHECKING:
    from sipwire.transaction.base import Transaction

__all__ = [
    "Event",
    "RequestReceived",
    "ResponseReceived",
    "SendRequest",
    "SendResponse",
    "TransactionTerminated",
    "TransactionTimedOut",
]


@dataclass(slots=True, eq=False)
class Event:
    """Base of every transaction-layer event."""


@dataclass(slots=True, eq=False)
class SendRequest(Event):
    """Transmit ``request`` to ``target`` (first sending, retransmission or ACK)."""

    request: Request
    target: Target
    transaction: Transaction | None
    """The client transaction, or None for an ACK to a 2xx sent by the TU."""
    retransmission: bool = False


@dataclass(slots=True, eq=False)
class SendResponse(Event):
    """Transmit ``response`` back towards where its request came from (§18.2.2).

    ``source`` is how the request arrived; the transport chooses the address
    from the top Via (received, rport, maddr) or reuses the connection.
    """

    response: Response
    source: Source
    transaction: Transaction | None
    retransmission: bool = False


@dataclass(slots=True, eq=False)
class RequestReceived(Event):
    """A request for the TU: a new server transaction, or an ACK to a 2xx.

    ``transaction`` is None for requests that have none (ACK for a 2xx,
    §17.2.3) and for requests that arrive when the layer is full.
    """

    request: Request
    source: Source
    transaction: Transaction | None


@dataclass(slots=True, eq=False)
class ResponseReceived(Event):
    """A response for the TU.

    ``transaction`` is None for a response no client transaction matches
    (a 2xx retransmission after the transaction ended, or a 2xx from another
    fork: §13.2.2.4 and RFC 6026 §7.2 leave it to the UAC core). ``local``
    marks a response the layer made up: 408 on timeout, 503 on a transport
    error (§8.1.3.1).
    """

    response: Response
    transaction: Transaction | None
    local: bool = False


@dataclass(slots=True, eq=False)
class TransactionTimedOut(Event):
    """A server transaction gave up: no ACK arrived before Timer H (§17.2.1),
    or a response could not be sent."""

    transaction: Transaction
    reason: str


@dataclass(slots=True, eq=False)
class TransactionTerminated(Event):
    """The transaction reached Terminated and left the layer's tables."""

    transaction: Transaction
