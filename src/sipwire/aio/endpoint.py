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

from sipwire.aio.transport import TransportLayer
from sipwire.aio.transport_base import TransportConfig, TransportError
from sipwire.errors import ParseError
from sipwire.message import Request, Response, Via
from sipwire.message.salvage import error_response
from sipwire.transaction.events import Event, SendRequest, SendResponse
from sipwire.transaction.layer import TransactionLayer
from sipwire.transaction.timers import TimerConfig
from sipwire.transport.address import Source, Target
from sipwire.transport.routing import fallback_target, response_target, stamp_via

__all__ = ["Endpoint", "TransactionUser"]

log = logging.getLogger("sipwire.endpoint")


class TransactionUser(Protocol):
    """What the endpoint drives: a sans-I/O TU such as the UserAgentCore."""

    def handle(self, event: Event, now: float) -> None: ...

    def next_timer(self) -> float | None: ...

    def handle_timer(self, now: float) -> None: ...


class Endpoint:
    """One SIP element on asyncio: listeners, transactions and a TU."""

    def __init__(
        self,
        *,
        timers: TimerConfig | None = None,
        transport: TransportConfig | None = None,
        max_transactions: int = 100_000,
    ) -> None:
        self.transactions = TransactionLayer(timers, max_transactions=max_transactions)
        self.transport = TransportLayer(self._on_message, on_error=self._on_error, config=transport)
        self.tu: TransactionUser | None = None
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._sends: set[asyncio.Task[None]] = set()
        self.sent = 0
        self.received = 0
        self.trace: Callable[[str, bytes, Source | Target], None] | None = None
        """Called with ("recv" | "send", message bytes, peer) for every message."""

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
        if isinstance(message, Request):
            stamp_via(message, source)  # §18.2.1: received / rport
        self.transactions.receive(message, source, now)
        self._pump(now)

    def _on_error(self, data: bytes, error: ParseError, source: Source) -> None:
        """A message that does not parse: answer it when it can be routed, else drop it."""
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
        self._pump(self._loop.time())

    def _pump(self, now: float) -> None:
        layer = self.transactions
        tu = self.tu
        while (event := layer.next_event()) is not None:
            if isinstance(event, SendResponse):
                self._send_response(event)
            elif isinstance(event, SendRequest):
                self._send_request(event)
            elif tu is not None:
                tu.handle(event, now)
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
        target, reuse = response_target(vias[0], event.source)
        flow = event.source.flow if reuse else None
        data = bytes(response)
        if self.trace is not None:
            self.trace("send", data, target)
        if flow is None and self._send_now(data, target, event):
            return
        self._spawn(self._transmit(data, target, flow, event, fallback=vias[0]))

    def _send_request(self, event: SendRequest) -> None:
        data = bytes(event.request)
        if self.trace is not None:
            self.trace("send", data, event.target)
        if not self._send_now(data, event.target, event):
            self._spawn(self._transmit(data, event.target, None, event, fallback=None))

    def _send_now(self, data: bytes, target: Target, event: SendRequest | SendResponse) -> bool:
        """UDP fast path: send synchronously; False when it needs the async path."""
        try:
            sent = self.transport.send_nowait(data, target)
        except TransportError as exc:
            log.info("could not send to %s: %s", target, exc.reason)
            if event.transaction is not None:
                self.transactions.transport_error(event.transaction, self._loop.time())
            return True
        if sent is None:
            return False
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
            if fallback is not None and flow is not None:
                # §18.2.2: the connection is gone; try the Via's sent-by instead.
                try:
                    await self.transport.send(data, fallback_target(fallback))
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
        deadlines = [self.transactions.next_timer()]
        if self.tu is not None:
            deadlines.append(self.tu.next_timer())
        due = min((d for d in deadlines if d is not None), default=None)
        if due == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = due
        if due is not None:
            self._timer = self._loop.call_at(due, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        now = self._loop.time()
        self.transactions.handle_timer(now)
        if self.tu is not None:
            self.tu.handle_timer(now)
        self._pump(now)
