"""How long the asyncio API waits: the defaults and the one error for giving up.

The rule itself is documented once, in :mod:`sipwire.aio.ua`: every method
that sends a request and waits for its outcome takes ``timeout=`` (seconds,
None for no limit) and raises ``RequestFailed(408, "Request Timeout (no final
response in N s)")`` when it expires.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from sipwire.errors import RequestFailed

__all__ = ["CALL_TIMEOUT", "REQUEST_TIMEOUT", "TRANSFER_TIMEOUT", "timed_out", "within"]

T = TypeVar("T")

REQUEST_TIMEOUT = 32.0
"""Requests (REGISTER, MESSAGE, OPTIONS, SUBSCRIBE, NOTIFY, re-INVITE, INFO, BYE ...):
64*T1, the time a transaction gives up by itself (Timer F)."""
CALL_TIMEOUT = 60.0
"""``call()`` and ``wait_answered()``: a minute of ringing, then CANCEL."""
TRANSFER_TIMEOUT = 90.0
"""``transfer()``: the REFER, then the transferee's own call to the target (which may
ring for a minute) until the final NOTIFY."""


def timed_out(timeout: float) -> RequestFailed:
    """The error of a wait that expired."""
    return RequestFailed(408, f"Request Timeout (no final response in {timeout:g} s)")


async def within(awaitable: Awaitable[T], timeout: float | None) -> T:
    """``await awaitable``, or :func:`timed_out` after ``timeout`` seconds (None: no limit)."""
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except TimeoutError:
        raise timed_out(timeout or 0.0) from None
