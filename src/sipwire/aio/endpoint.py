"""The asyncio glue: transports in, transaction layer and TU in the middle, transports out.

``Endpoint`` owns a :class:`TransportLayer` and a :class:`TransactionLayer`
and drives a transaction user (anything with ``handle(event, now)``,
``next_timer()`` and ``handle_timer(now)``). It keeps exactly one
``loop.call_at`` armed for the earliest deadline of the whole stack, as the
sans-I/O design asks: the layers below never see a clock or a socket.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from sipwire.aio.limits import default_limits
from sipwire.aio.overload import OverloadConfig, OverloadMonitor
from sipwire.aio.transport import TransportLayer
from sipwire.aio.transport_base import TransportConfig, TransportError
from sipwire.errors import ParseError
from sipwire.message import Headers, Request, Response, Via
from sipwire.message.salvage import error_response
from sipwire.transaction.admission import Admission, AdmissionConfig
from sipwire.transaction.events import Event, SendRequest, SendResponse
from sipwire.transaction.layer import TransactionLayer, request_size
from sipwire.transaction.timers import TimerConfig
from sipwire.transport.address import Source, Target
from sipwire.transport.amplification import AmplificationGuard
from sipwire.transport.routing import fallback_target, response_target, stamp_via

__all__ = ["Endpoint", "TransactionUser"]

log = logging.getLogger("sipwire.endpoint")


class TransactionUser(Protocol):
    """What the endpoint drives: a sans-I/O TU such as the UserAgentCore."""

    def handle(self, event: Event, now: float) -> None: ...

    def next_timer(self) -> float | None: ...

    def handle_timer(self, now: float) -> None: ...


class Endpoint:
    """One SIP element on asyncio: listeners, transactions and a TU.

    Load and abuse are handled here, at the edge, with the sans-I/O pieces
    below: new requests pass the transaction layer's
    :class:`~sipwire.transaction.admission.Admission` (limits sized from the
    machine's memory unless ``limits`` is given), an :class:`OverloadMonitor`
    tells it when the process cannot keep up, and an
    :class:`~sipwire.transport.amplification.AmplificationGuard` bounds the
    bytes that retransmissions send towards UDP addresses that never showed
    they want them. ``honour_maddr`` lets a Via's unicast ``maddr`` steer
    responses (off: only multicast ``maddr`` is honoured).
    """

    def __init__(
        self,
        *,
        timers: TimerConfig | None = None,
        transport: TransportConfig | None = None,
        max_transactions: int | None = None,
        limits: AdmissionConfig | None = None,
        overload: OverloadConfig | None = None,
        honour_maddr: bool = False,
    ) -> None:
        admission = Admission(limits or default_limits())
        self.transactions = TransactionLayer(
            timers, max_transactions=max_transactions, admission=admission
        )
        self.transport = TransportLayer(self._on_message, on_error=self._on_error, config=transport)
        self.max_message_size = self.transport.config.max_message_size
        self.tu: TransactionUser | None = None
        self.guard = AmplificationGuard()
        self.honour_maddr = honour_maddr
        self.monitor = OverloadMonitor(admission, self.transactions.__len__, overload)
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._pumping = False
        self._sends: set[asyncio.Task[None]] = set()
        self.sent = 0
        self.received = 0
        self.trace: Callable[[str, bytes, Source | Target], None] | None = None
        """Called with ("recv" | "send", message bytes, peer) for every message."""
        self.request_flow: Callable[[SendRequest], int | None] | None = None
        """The connection a request goes out on (a proxy reaching a phone through the
        flow it registered on, RFC 5626), or None for the usual choice."""
        self.relay_request: Callable[[SendRequest, bytes], bool] | None = None
        """Sees every request to send first; True means it took it (a worker process
        handing it to the one that holds the connection it must go out on)."""
        self.divert: Callable[[Request | Response, Source, float], bool] | None = None
        """Sees every message first (a request after ``stamp_via``); True takes it away
        from the transaction layer (a stateless proxy, §16.11)."""
        self.monitor.start()

    @property
    def admission(self) -> Admission:
        """Admission of new requests (limits, per-source accounting, counters)."""
        return self.transactions.admission

    def now(self) -> float:
        return self._loop.time()

    async def listen(self, transport: str, host: str, port: int) -> tuple[str, int]:
        """Start a listener; returns the bound address."""
        return await self.transport.listen(transport, host, port)

    async def drain(self, timeout: float = 1.0) -> None:
        """Wait (at most ``timeout``) for sends still in progress, e.g. connecting."""
        if self._sends:
            await asyncio.wait(list(self._sends), timeout=timeout)

    async def close(self) -> None:
        self.monitor.stop()
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._sends):
            task.cancel()
        await self.transport.close()

    # -- from the transports --------------------------------------------------------------
    def _on_message(self, message: Request | Response, source: Source) -> None:
        self.received += 1
        if self.trace is not None:
            self.trace("recv", bytes(message), source)
        now = self._loop.time()
        udp = source.flow is None
        if isinstance(message, Request):
            size = None
            if udp:
                size = request_size(message)
                self.guard.received(source.host, size)
            stamp_via(message, source)  # §18.2.1: received / rport
            if self.divert is None or not self.divert(message, source, now):
                self.transactions.receive(message, source, now, size)
        elif self.divert is not None and self.divert(message, source, now):
            pass
        elif self.transactions.receive(message, source, now) and udp:
            self.guard.verified(source.host)  # it answered our request: it is there
        self._pump(now)

    def _on_error(self, data: bytes, error: ParseError, source: Source) -> None:
        """A message that does not parse: answer it when it can be routed, else drop it."""
        if source.flow is None:
            self.guard.received(source.host, len(data))
        response = error_response(data, error)
        if response is None:
            log.info(
                "dropped a malformed message from %s:%d: %s", source.host, source.port, error.reason
            )
            return
        log.info(
            "answering a malformed request from %s:%d with %d: %s",
            source.host,
            source.port,
            response.status,
            error.reason,
        )
        self.transactions.send_stateless_response(response, source)
        self._pump(self._loop.time())

    # -- the event pump ------------------------------------------------------------------------
    def pump(self) -> None:
        """Send what the layers queued and re-arm the timer (after a command to the TU)."""
        if not self._pumping:  # (else the loop running now picks it up)
            self._pump(self._loop.time())

    def _pump(self, now: float) -> None:
        """Deliver every queued event: a loop, never a recursion.

        The TU may call ``pump()`` again from inside ``handle`` (a command it
        runs in reaction to an event queues more events); that inner call
        returns at once and this loop picks the new events up, so no burst of
        messages or timers can deepen the stack. An exception from one event
        is logged and the others are still delivered.
        """
        if self._pumping:
            return
        self._pumping = True
        layer = self.transactions
        tu = self.tu
        try:
            while (event := layer.next_event()) is not None:
                try:
                    if isinstance(event, SendResponse):
                        self._send_response(event)
                    elif isinstance(event, SendRequest):
                        self._send_request(event)
                    elif tu is not None:
                        tu.handle(event, now)
                except Exception:
                    log.exception("error while handling %r", event)
        finally:
            self._pumping = False
            self._arm()

    def _send_response(self, event: SendResponse) -> None:
        response = event.response
        try:
            vias = response.via
        except ParseError:
            vias = []
        if not vias:
            log.info("response %d has no usable Via; not sent", response.status)
            return
        source = event.source
        target, reuse = response_target(vias[0], source, honour_maddr=self.honour_maddr)
        flow = source.flow if reuse else None
        data = bytes(response)
        if response.status >= 200 and event.transaction is not None:
            # A final response is kept (by its transaction, for retransmissions) for up to
            # 64*T1: let go of its parsed views, which are only a cache.
            response.headers._cache.clear()
        if len(data) > self.max_message_size:
            data = self._too_large(response, len(data))
            if not data:
                return
        if flow is None and target.transport == "udp":
            # Retransmissions towards an address that never showed it wants them are
            # bounded (a forged source must not turn us into an amplifier).
            if event.retransmission or target.host != source.host:
                if not self.guard.allow(target.host, len(data)):
                    log.debug("retransmission to unverified %s withheld", target)
                    return
            else:
                self.guard.sent(target.host, len(data))
        if self.trace is not None:
            self.trace("send", data, target)
        if self._send_now(data, target, event, flow):
            return
        self._spawn(self._transmit(data, target, flow, event, fallback=vias[0]))

    def _too_large(self, response: Response, size: int) -> bytes:
        """A response over the size limit: a bare 500 instead, or nothing (logged)."""
        log.warning(
            "response %d of %d bytes exceeds %d bytes; sending 500 instead",
            response.status,
            size,
            self.max_message_size,
        )
        if response.status >= 500:
            return b""
        bare = Response(500, "Server Internal Error - response too large")
        bare.headers = Headers(
            [
                (name, value)
                for key, name, value in response.headers._items
                if key in ("via", "from", "to", "call-id", "cseq")
            ]
        )
        data = bytes(bare)
        if len(data) > self.max_message_size:
            log.warning("even a bare 500 is %d bytes (huge Via/From/To); dropped", len(data))
            return b""
        return data

    def _send_request(self, event: SendRequest) -> None:
        data = bytes(event.request)
        if self.trace is not None:
            self.trace("send", data, event.target)
        if self.relay_request is not None and self.relay_request(event, data):
            return
        flow = None if self.request_flow is None else self.request_flow(event)
        if not self._send_now(data, event.target, event, flow):
            self._spawn(self._transmit(data, event.target, flow, event, fallback=None))

    def _send_now(
        self,
        data: bytes,
        target: Target,
        event: SendRequest | SendResponse,
        flow: int | None = None,
    ) -> bool:
        """Fast path (UDP, or an open connection with room): send synchronously;
        False when it needs the async path."""
        try:
            if not self.transport.sent_nowait(data, target, flow=flow):
                return False
        except TransportError as exc:
            log.info("could not send to %s: %s", target, exc.reason)
            if event.transaction is not None:
                self.transactions.transport_error(event.transaction, self._loop.time())
            return True
        self.sent += 1
        return True

    async def _transmit(
        self,
        data: bytes,
        target: Target,
        flow: int | None,
        event: SendRequest | SendResponse,
        fallback: Via | None,
    ) -> None:
        try:
            await self.transport.send(data, target, flow=flow)
            self.sent += 1
            return
        except TransportError as exc:
            if fallback is not None and flow is not None and isinstance(event, SendResponse):
                # §18.2.2: the connection is gone; open one to where it came from.
                try:
                    await self.transport.send(data, fallback_target(fallback, event.source))
                    self.sent += 1
                    return
                except TransportError:
                    pass
            log.info("could not send to %s: %s", target, exc.reason)
        if event.transaction is not None:
            now = self._loop.time()
            self.transactions.transport_error(event.transaction, now)
            self._pump(now)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self._loop.create_task(coro)
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    # -- the single timer ------------------------------------------------------------------------
    def _arm(self) -> None:
        """Keep one ``call_at`` armed no later than the earliest deadline of the stack.

        A timer already armed for an earlier time is left alone: when it fires
        early, ``_on_timer`` finds nothing due and arms again. Deadlines mostly
        move later (every new transaction adds a later one), so this spares a
        cancel and a new handle per message.
        """
        due = self.transactions.next_timer()
        if self.tu is not None:
            tu_due = self.tu.next_timer()
            if tu_due is not None and (due is None or tu_due < due):
                due = tu_due
        if due is None:
            return
        armed = self._timer_at
        if armed is not None and armed <= due:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = due
        self._timer = self._loop.call_at(due, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        now = self._loop.time()
        try:
            self.transactions.handle_timer(now)
        except Exception:
            log.exception("error in a transaction timer")
        if self.tu is not None:
            try:
                self.tu.handle_timer(now)
            except Exception:
                # The failing callback is gone from the queue; the others still run.
                log.exception("error in a timer of the transaction user")
        self._pump(now)
