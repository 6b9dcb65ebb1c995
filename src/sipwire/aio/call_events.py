"""What a :class:`~sipwire.aio.call.Call` tells its readers: hold state and the event log.

- :class:`HoldState` is derived from the directions in force after each
  offer/answer exchange (RFC 3264 §8.4): ``REMOTE`` when the peer's session
  description neither receives on any stream it keeps (``a=sendonly`` or
  ``a=inactive``), ``LOCAL`` when we put the peer on hold (``call.hold()``).
  A change is reported as :class:`HoldChanged`.
- :class:`Broadcast` keeps a call's events so that every reader of
  ``call.events()`` sees every one of them, in order, and every reader ends
  when the call does.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import Flag, auto
from typing import TYPE_CHECKING, Generic, TypeVar

from sipwire.core.media import SessionMedia
from sipwire.sdp import SdpError, parse_sdp

if TYPE_CHECKING:
    from sipwire.core.session import InviteSession

__all__ = ["MAX_EVENTS", "Broadcast", "HoldChanged", "HoldState", "hold_state_of"]

MAX_EVENTS = 256
"""Events a call keeps for its readers; a reader that falls further behind skips the oldest."""

T = TypeVar("T")


class HoldState(Flag):
    """Who holds whom in a call; ``HoldState.LOCAL | HoldState.REMOTE`` when both do."""

    NONE = 0
    """Media flows both ways."""
    LOCAL = auto()
    """We put the peer on hold (``call.hold()``; our offer was sendonly or inactive)."""
    REMOTE = auto()
    """The peer put us on hold (its description is sendonly or inactive)."""


@dataclass(slots=True, eq=False)
class HoldChanged:
    """The hold state of the call of ``session`` changed (after an offer/answer exchange)."""

    session: InviteSession
    state: HoldState
    """The new state."""
    previous: HoldState


def _peer_holds(sdp: bytes) -> bool:
    try:
        description = parse_sdp(sdp)
    except SdpError:
        return False
    kept = [m for m in description.media if m.port != 0]
    return bool(kept) and not any(description.effective_direction(m).receives for m in kept)


def hold_state_of(media: SessionMedia) -> HoldState:
    """The hold state the negotiated session descriptions of ``media`` show."""
    state = HoldState.LOCAL if getattr(media, "on_hold", False) else HoldState.NONE
    remote = getattr(media, "remote", None)
    if isinstance(remote, bytes) and remote and _peer_holds(remote):
        state |= HoldState.REMOTE
    return state


class Broadcast(Generic[T]):
    """A bounded log of events that any number of readers iterate, each from the start."""

    def __init__(self, limit: int = MAX_EVENTS) -> None:
        self._items: deque[T] = deque()
        self._first = 0
        """The position of ``_items[0]`` since the log began."""
        self._wake: asyncio.Event | None = None
        self.limit = limit
        self.closed = False
        """No event will follow: readers end once they have read the log."""

    def append(self, item: T) -> None:
        """Add an event for every reader."""
        self._items.append(item)
        if len(self._items) > self.limit:
            self._items.popleft()
            self._first += 1
        self._notify()

    def close(self) -> None:
        """The last event was added."""
        self.closed = True
        self._notify()

    def _notify(self) -> None:
        wake, self._wake = self._wake, None
        if wake is not None:
            wake.set()

    async def reader(self) -> AsyncIterator[T]:
        """Every event kept, then every new one, until the log is closed."""
        position = self._first
        while True:
            position = max(position, self._first)
            offset = position - self._first
            if offset < len(self._items):
                position += 1
                yield self._items[offset]
                continue
            if self.closed:
                return
            if self._wake is None:
                self._wake = asyncio.Event()
            await self._wake.wait()
