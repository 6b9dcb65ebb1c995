"""Server transactions: INVITE (RFC 3261 §17.2.1, Figure 7; RFC 6026 Figure 7)
and non-INVITE (§17.2.2, Figure 8)."""

from __future__ import annotations

from collections.abc import Hashable

from sipwire.errors import LocalProtocolError
from sipwire.message import Request, Response
from sipwire.transaction.base import Hooks, State, Transaction
from sipwire.transaction.events import (
    RequestReceived,
    SendResponse,
    TransactionTimedOut,
)
from sipwire.transaction.timers import Timer, TimerConfig
from sipwire.transport.address import Source

__all__ = ["InviteServerTransaction", "NonInviteServerTransaction", "ServerTransaction"]


class ServerTransaction(Transaction):
    """A received request, the responses the TU sends to it and their retransmissions."""

    __slots__ = ("pending_size", "request", "source")

    def __init__(
        self,
        key: Hashable,
        request: Request,
        source: Source,
        config: TimerConfig,
        hooks: Hooks,
    ) -> None:
        super().__init__(key, request, source.reliable, config, hooks)
        self.request: Request | None = request
        """The request until the final response is sent; then None (the TU has it if it
        needs it), so that a transaction waiting out Timer J, I or L holds only its
        key and what it retransmits."""
        self.source = source
        """How the request arrived; responses go back that way (§18.2.2)."""
        self.pending_size = 0
        """Bytes of the request counted against the layer's budget until it is answered."""

    @property
    def final_sent(self) -> bool:
        """True once a final response went out (or the transaction ended)."""
        return self.state not in (State.TRYING, State.PROCEEDING)

    def start(self, now: float) -> None:
        """Hand the request to the TU."""
        assert self.request is not None
        self._emit(RequestReceived(self.request, self.source, self))

    def _answered(self) -> None:
        """The final response is out: let go of the request."""
        self.request = None
        self._hooks.answered(self)

    def send_response(self, response: Response, now: float) -> None:
        """Send a response from the TU through this transaction."""
        raise NotImplementedError

    def receive_request(self, request: Request, source: Source, now: float) -> None:
        """A retransmission of the request (or, for INVITE, the ACK) arrived."""
        raise NotImplementedError

    def transport_error(self, now: float) -> None:
        """A response could not be sent: tell the TU, give up (§17.2.4)."""
        self._emit(TransactionTimedOut(self, "transport error"))
        self._terminate()

    def _send(self, response: Response, retransmission: bool = False) -> None:
        self._emit(SendResponse(response, self.source, self, retransmission))


class InviteServerTransaction(ServerTransaction):
    """IST: Proceeding → Completed → Confirmed, or Proceeding → Accepted (RFC 6026)."""

    __slots__ = ()

    kind = "IST"

    def start(self, now: float) -> None:
        self.state = State.PROCEEDING
        # §17.2.1: 100 Trying unless the TU answers within 200 ms.
        self._start(Timer.TRYING, self.config.trying_delay, now)
        super().start(now)

    def send_response(self, response: Response, now: float) -> None:
        status = response.status
        if self.state is State.PROCEEDING:
            self._stop(Timer.TRYING)
            self.last_response = response
            self._send(response)
            if status < 200:
                return
            if status < 300:
                self.state = State.ACCEPTED  # RFC 6026 §7.1
                self.last_response = None  # the TU retransmits its 2xx itself
                self._answered()
                self._start(Timer.L, self.config.timeout, now)
                return
            self.state = State.COMPLETED
            self._answered()
            if not self.reliable:
                self._start(Timer.G, self.config.t1, now)
            self._start(Timer.H, self.config.timeout, now)
        elif self.state is State.ACCEPTED and 200 <= status < 300:
            self._send(response, retransmission=True)  # the TU retransmits 2xx (§13.3.1.4)
        else:
            raise LocalProtocolError(
                f"cannot send {status} in the {self.state.value} state of an INVITE transaction"
            )

    def receive_request(self, request: Request, source: Source, now: float) -> None:
        state = self.state
        if request.method == "ACK":
            if state is State.COMPLETED:
                self.state = State.CONFIRMED
                self._stop(Timer.G, Timer.H)
                if self.reliable:
                    self._terminate()  # Timer I is zero on reliable transports
                else:
                    self._start(Timer.I, self.config.t4, now)
            elif state is State.ACCEPTED:
                # RFC 6026 §7.1: an ACK in Accepted goes to the TU.
                self._emit(RequestReceived(request, source, None))
            return
        # A retransmitted INVITE: repeat the last response; Accepted absorbs it.
        if state in (State.PROCEEDING, State.COMPLETED) and self.last_response is not None:
            self._send(self.last_response, retransmission=True)

    def transport_error(self, now: float) -> None:
        if self.state is State.ACCEPTED:
            # The TU retransmits 2xx itself; tell it, keep absorbing retransmissions.
            self._emit(TransactionTimedOut(self, "transport error"))
            return
        super().transport_error(now)

    def _on_timer(self, timer: Timer, now: float) -> None:
        state = self.state
        if (
            timer is Timer.TRYING
            and state is State.PROCEEDING
            and self.last_response is None
            and self.request is not None
        ):
            trying = self.request.reply(100)
            self.last_response = trying
            self._send(trying)
        elif timer is Timer.G and state is State.COMPLETED and self.last_response is not None:
            self._send(self.last_response, retransmission=True)
            self._start(Timer.G, min(2 * self._interval, self.config.t2), now)
        elif timer is Timer.H and state is State.COMPLETED:
            self._emit(TransactionTimedOut(self, "no ACK received (Timer H)"))
            self._terminate()
        elif (timer is Timer.I and state is State.CONFIRMED) or (
            timer is Timer.L and state is State.ACCEPTED
        ):
            self._terminate()


class NonInviteServerTransaction(ServerTransaction):
    """NIST: Trying → Proceeding → Completed → Terminated."""

    __slots__ = ()

    kind = "NIST"

    def send_response(self, response: Response, now: float) -> None:
        if self.state not in (State.TRYING, State.PROCEEDING):
            raise LocalProtocolError(
                f"cannot send {response.status} in the {self.state.value} state"
            )
        self.last_response = response
        self._send(response)
        if response.status < 200:
            self.state = State.PROCEEDING
            return
        self.state = State.COMPLETED
        self._answered()
        if self.reliable:
            self._terminate()  # Timer J is zero on reliable transports
        else:
            self._start(Timer.J, self.config.timeout, now)

    def receive_request(self, request: Request, source: Source, now: float) -> None:
        # Trying absorbs retransmissions; later states repeat the last response.
        if self.state in (State.PROCEEDING, State.COMPLETED) and self.last_response is not None:
            self._send(self.last_response, retransmission=True)

    def _on_timer(self, timer: Timer, now: float) -> None:
        if timer is Timer.J and self.state is State.COMPLETED:
            self._terminate()
