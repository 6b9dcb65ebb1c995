"""Random identifiers for the user agent: tags, Call-IDs, branches, cnonces."""

from __future__ import annotations

import os

__all__ = ["SecretIds"]

_POOL = 4096
_forks = 0
"""Forks this process has gone through (a child's pool must not be its parent's)."""


def _forked() -> None:
    global _forks
    _forks += 1


os.register_at_fork(after_in_child=_forked)


class SecretIds:
    """Tags, Call-IDs and branches from the system's CSPRNG (64 random bits each).

    Random bytes are read from ``os.urandom`` 4 KiB at a time and each byte is
    used once: one system call per 512 tokens instead of one per token. The
    pool is refilled after a fork, so that two processes never share bytes.
    """

    def __init__(self) -> None:
        self._pool = b""
        self._pos = 0
        self._forks = _forks

    def _take(self, count: int) -> bytes:
        pos = self._pos
        if pos + count > len(self._pool) or self._forks != _forks:
            self._pool = os.urandom(_POOL)
            self._forks = _forks
            pos = 0
        self._pos = pos + count
        return self._pool[pos : pos + count]

    def token(self) -> str:
        """64 random bits as hex."""
        return self._take(8).hex()

    def random(self) -> float:
        """A float in [0, 1) with 53 random bits."""
        return (int.from_bytes(self._take(7), "big") >> 3) / (1 << 53)
