"""Identifiers a user agent makes up: tags, Call-IDs, branches, cnonces.

Sans-I/O: the randomness comes from the caller. ``IdSource`` is anything
with ``token()`` (a fresh random word) and ``random()`` (a float in [0, 1),
for RFC 2782 weights and the §14.1 glare back-off). The asyncio edge passes
:class:`sipwire.aio` 's ``secrets``-based source; tests pass a counter.
"""

from __future__ import annotations

from typing import Protocol

from sipwire.message.via import MAGIC_COOKIE

__all__ = ["CountingIds", "IdSource", "new_branch"]


class IdSource(Protocol):
    """Where tags, Call-IDs and branches come from."""

    def token(self) -> str:
        """A fresh, unguessable token (at least 32 bits of randomness, §19.3)."""
        ...

    def random(self) -> float:
        """A float in [0, 1)."""
        ...


def new_branch(ids: IdSource) -> str:
    """A §8.1.1.7 branch: the magic cookie then a fresh token."""
    return MAGIC_COOKIE + ids.token()


class CountingIds:
    """A deterministic IdSource for tests: ``t1``, ``t2`` ...; ``random()`` from a list."""

    def __init__(self, prefix: str = "t", randoms: list[float] | None = None) -> None:
        self.prefix = prefix
        self.count = 0
        self.randoms = list(randoms or [])

    def token(self) -> str:
        """The next counter value with the prefix."""
        self.count += 1
        return f"{self.prefix}{self.count}"

    def random(self) -> float:
        """The next queued value, else 0.5."""
        return self.randoms.pop(0) if self.randoms else 0.5
