"""Random identifiers for the user agent: tags, Call-IDs, branches, cnonces."""

from __future__ import annotations

import secrets

__all__ = ["SecretIds"]


class SecretIds:
    """Tags, Call-IDs and branches from ``secrets`` (at least 64 random bits each)."""

    def token(self) -> str:
        """64 random bits as hex."""
        return secrets.token_hex(8)

    def random(self) -> float:
        """A float in [0, 1) from the system's CSPRNG."""
        return secrets.randbits(53) / (1 << 53)
