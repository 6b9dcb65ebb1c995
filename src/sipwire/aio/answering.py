"""Incoming calls on asyncio: ``auto_answer``, ``@on_call``, ``incoming()`` and the
unclaimed-call rule (the INVITE part of ``UserAgent`` that answers).

An incoming call that nobody takes is refused with 480 Temporarily Unavailable
``unclaimed_timeout`` seconds after it arrived: one left in ``incoming()``, or
one whose ``on_call`` handler returned without answering or rejecting it (and
did not set ``call.claimed``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from sipwire.aio.call import Call
from sipwire.core.events import IncomingCall
from sipwire.core.session import CallState, InviteSession

__all__ = ["IncomingCallsMixin"]

log = logging.getLogger("sipwire.ua")

_RINGING = frozenset({CallState.INCOMING, CallState.EARLY})


class IncomingCallsMixin:
    """The answering part of :class:`~sipwire.aio.ua.UserAgent`."""

    unclaimed_timeout: float
    calls_answered: int
    _auto_answer: float | None
    _accept_transfers: bool
    _auto_sessions: set[InviteSession]
    _incoming: asyncio.Queue[Call]
    _call_handler: Callable[[Call], Awaitable[None]] | None

    if TYPE_CHECKING:

        def _now(self) -> float: ...

        def _flush(self) -> None: ...

        def _spawn(self, coro: Awaitable[Any]) -> None: ...

        def _wrap(self, session: InviteSession, *, record: bool = True) -> Call: ...

    def auto_answer(self, ring_time: float = 0.0, *, accept_transfers: bool = False) -> None:
        """Answer every incoming call without the application: 180, then 200 after
        ``ring_time`` seconds. ``calls_answered`` and ``calls_completed`` count them.

        REFERs in these calls are declined (603) at once, or followed with
        ``accept_transfers``: nobody is there to decide.
        """
        self._auto_answer = ring_time
        self._accept_transfers = accept_transfers

    def _auto(self, session: InviteSession, ring_time: float) -> None:
        now = self._now()
        session.ring(now)
        if ring_time > 0:
            asyncio.get_running_loop().call_later(ring_time, self._auto_now, session)
        else:
            session.answer(now)
            self.calls_answered += 1

    def _auto_now(self, session: InviteSession) -> None:
        if session.state in _RINGING:
            session.answer(self._now())
            self.calls_answered += 1
            self._flush()

    def _on_incoming(self, event: IncomingCall) -> None:
        session = event.session
        if self._auto_answer is not None:
            self._auto_sessions.add(session)
            self._auto(session, self._auto_answer)
            return
        call = self._wrap(session)
        call.arrived = self._now()
        if self._call_handler is not None:
            self._spawn(self._run_handler(call))
        elif self._incoming.full():
            session.reject(self._now(), 486, "Busy Here")
        else:
            self._incoming.put_nowait(call)
            loop = asyncio.get_running_loop()
            loop.call_later(self.unclaimed_timeout, self._unclaimed, call)

    def _unclaimed(self, call: Call) -> None:
        """Nobody took the call in time: 480 (RFC 3261 §21.4.18)."""
        if not call.claimed and call.state in _RINGING:
            call.session.reject(self._now(), 480, "Temporarily Unavailable")
            self._flush()

    async def _run_handler(self, call: Call) -> None:
        assert self._call_handler is not None
        try:
            await self._call_handler(call)
        except Exception:
            log.exception("call handler failed for %s", call)
            if not call.ended:
                await call.hangup()
            return
        if not call.claimed and call.state in _RINGING:
            # The handler returned without answering: the unclaimed-call treatment.
            delay = max(0.0, call.arrived + self.unclaimed_timeout - self._now())
            asyncio.get_running_loop().call_later(delay, self._unclaimed, call)

    def on_call(
        self, handler: Callable[[Call], Awaitable[None]]
    ) -> Callable[[Call], Awaitable[None]]:
        """Decorator: run ``handler(call)`` as a task for every incoming call.

        A handler that returns without answering or rejecting the call leaves it
        unclaimed: 480 ``unclaimed_timeout`` seconds after it arrived, unless
        ``call.claimed`` is set.
        """
        self._call_handler = handler
        return handler

    async def incoming(self) -> AsyncIterator[Call]:
        """Incoming calls, as they arrive (ringing is up to you: ``call.ring()``)."""
        while True:
            call = await self._incoming.get()
            if call.ended:
                continue  # cancelled, or refused as unclaimed, while it waited
            call.claimed = True
            yield call
