"""Client transactions: INVITE (RFC 3261 §17.1.1, Figure 5; RFC 6026 Figure 5)
and non-INVITE (§17.1.2, Figure 6)."""

from __future__ import annotations

from collections.abc import Hashable

from sipwire.message import Request, Response
from sipwire.transaction.base import Hooks, State, Transaction
from sipwire.transaction.events import ResponseReceived, SendRequest
from sipwire.transaction.timers import Timer, TimerConfig
from sipwire.transport.address import Target

__all__ = [
    "ClientTransaction",
    "InviteClientTransaction",
    "NonInviteClientTransaction",
    "build_ack",
]

# Headers an ACK for a non-2xx copies from the INVITE (§17.1.1.3).
_ACK_COPIED = ("call-id", "from", "route", "max-forwards")


def build_ack(request: Request, response: Response) -> Request:
    """The ACK for a non-2xx final response (§17.1.1.3).

    Same Request-URI, Call-ID, From and CSeq number as the INVITE, the To of
    the response (with its tag), one Via equal to the INVITE's top Via, and
    the INVITE's Route headers.
    """
    headers: list[tuple[str, str]] = [("Via", request.headers.values("via")[0])]
    for key, name, value in request.headers._items:
        if key in _ACK_COPIED:
            headers.append((name, value))
    headers.append(("To", response.headers.get("to") or request.headers.get("to") or ""))
    headers.append(("CSeq", f"{request.cseq.seq} ACK"))
    ack = Request("ACK", request.uri, headers)
    ack._uri_text = request._uri_text
    return ack


class ClientTransaction(Transaction):
    """A request sent to ``target``, with its retransmissions and timeout."""

    __slots__ = ("request", "target")

    def __init__(
        self,
        key: Hashable,
        request: Request,
        target: Target,
        config: TimerConfig,
        hooks: Hooks,
    ) -> None:
        super().__init__(key, request, target.reliable, config, hooks)
        self.request = request
        """The request, kept for retransmissions and the ACK of a non-2xx."""
        self.target = target
        """Where the request goes; the transport reuses it for retransmissions."""

    def start(self, now: float) -> None:
        """Send the request and start the timers (entering Calling / Trying)."""
        raise NotImplementedError

    def receive_response(self, response: Response, now: float) -> None:
        raise NotImplementedError

    def transport_error(self, now: float) -> None:
        """The transport could not send: the TU sees a 503 (§8.1.3.1, §17.1.4)."""
        if self.state in (State.CALLING, State.TRYING, State.PROCEEDING):
            self._emit(ResponseReceived(self._local_response(503), self, local=True))
        self._terminate()

    def _send(self, retransmission: bool) -> None:
        self._emit(SendRequest(self.request, self.target, self, retransmission))

    def _local_response(self, status: int) -> Response:
        return self.request.reply(status)


class InviteClientTransaction(ClientTransaction):
    """ICT: Calling → Proceeding → Completed / Accepted → Terminated."""

    __slots__ = ("ack",)

    kind = "ICT"

    def __init__(
        self,
        key: Hashable,
        request: Request,
        target: Target,
        config: TimerConfig,
        hooks: Hooks,
    ) -> None:
        super().__init__(key, request, target, config, hooks)
        self.ack: Request | None = None
        """The ACK sent for a non-2xx final response, kept for retransmissions."""

    def start(self, now: float) -> None:
        self.state = State.CALLING
        self._send(False)
        if not self.reliable:
            self._start(Timer.A, self.config.t1, now)  # §17.1.1.2
        self._start(Timer.B, self.config.timeout, now)

    def receive_response(self, response: Response, now: float) -> None:
        status = response.status
        state = self.state
        if state in (State.CALLING, State.PROCEEDING):
            if status < 200:
                self.state = State.PROCEEDING
                self._stop(Timer.A, Timer.B)
                self._emit(ResponseReceived(response, self))
            elif status < 300:
                # RFC 6026 §7.2: 2xx → Accepted; the TU (UAC core) sends the ACK.
                self.state = State.ACCEPTED
                self._stop(Timer.A, Timer.B)
                self._start(Timer.M, self.config.timeout, now)
                self._emit(ResponseReceived(response, self))
            else:
                self.state = State.COMPLETED
                self._stop(Timer.A, Timer.B)
                self.last_response = response
                self.ack = build_ack(self.request, response)
                self._emit(SendRequest(self.ack, self.target, self))
                self._emit(ResponseReceived(response, self))
                if self.reliable:
                    self._terminate()  # Timer D is zero on reliable transports
                else:
                    self._start(Timer.D, self.config.timer_d, now)
        elif state is State.ACCEPTED:
            if 200 <= status < 300:
                self._emit(ResponseReceived(response, self))  # each 2xx goes to the TU
        elif state is State.COMPLETED and status >= 300 and self.ack is not None:
            # A retransmitted final response: ACK again, do not tell the TU.
            self._emit(SendRequest(self.ack, self.target, self, retransmission=True))

    def _on_timer(self, timer: Timer, now: float) -> None:
        if timer is Timer.A and self.state is State.CALLING:
            self._send(True)
            self._start(Timer.A, 2 * self._interval, now)  # doubles, no cap
        elif timer is Timer.B and self.state is State.CALLING:
            self._emit(ResponseReceived(self._local_response(408), self, local=True))
            self._terminate()
        elif (timer is Timer.D and self.state is State.COMPLETED) or (
            timer is Timer.M and self.state is State.ACCEPTED
        ):
            self._terminate()


class NonInviteClientTransaction(ClientTransaction):
    """NICT: Trying → Proceeding → Completed → Terminated."""

    __slots__ = ()

    kind = "NICT"

    def start(self, now: float) -> None:
        self.state = State.TRYING
        self._send(False)
        if not self.reliable:
            self._start(Timer.E, self.config.t1, now)  # §17.1.2.2
        self._start(Timer.F, self.config.timeout, now)

    def receive_response(self, response: Response, now: float) -> None:
        if self.state not in (State.TRYING, State.PROCEEDING):
            return  # Completed absorbs retransmitted responses
        if response.status < 200:
            self.state = State.PROCEEDING
            self._emit(ResponseReceived(response, self))
            return
        self.state = State.COMPLETED
        self.last_response = response
        self._stop(Timer.E, Timer.F)
        self._emit(ResponseReceived(response, self))
        if self.reliable:
            self._terminate()  # Timer K is zero on reliable transports
        else:
            self._start(Timer.K, self.config.t4, now)

    def _on_timer(self, timer: Timer, now: float) -> None:
        state = self.state
        if timer is Timer.E and state is State.TRYING:
            self._send(True)
            interval = min(2 * self._interval, self.config.t2)
            self._start(Timer.E, interval, now)
        elif timer is Timer.E and state is State.PROCEEDING:
            self._send(True)
            self._start(Timer.E, self.config.t2, now)
        elif timer is Timer.F and state in (State.TRYING, State.PROCEEDING):
            self._emit(ResponseReceived(self._local_response(408), self, local=True))
            self._terminate()
        elif timer is Timer.K and state is State.COMPLETED:
            self._terminate()
