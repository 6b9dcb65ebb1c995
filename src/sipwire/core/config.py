"""Settings of a user agent core."""

from __future__ import annotations

from dataclasses import dataclass

from sipwire.message import Address

__all__ = ["ALLOW", "SUPPORTED", "UAConfig"]

ALLOW = (
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "PRACK",
    "UPDATE",
    "INFO",
    "MESSAGE",
    "SUBSCRIBE",
    "NOTIFY",
    "REFER",
)
SUPPORTED = ("100rel", "timer", "replaces", "norefersub")


@dataclass(frozen=True, slots=True)
class UAConfig:
    """How a user agent identifies itself and what it offers."""

    aor: Address
    """Our address of record: the From of requests outside dialogs."""
    contact_user: str = "sipwire"
    """User part of our Contact URIs."""
    user_agent: str = "sipwire"
    """User-Agent / Server header value."""
    outbound_proxy: Address | None = None
    """Send every request outside a dialog here (as a pre-loaded Route, §8.1.2)."""
    allow: tuple[str, ...] = ALLOW
    supported: tuple[str, ...] = SUPPORTED
    reliable_provisional: bool = False
    """Send 18x reliably (RFC 3262) when the caller supports 100rel (not only on Require)."""
    session_expires: int | None = 1800
    """Session interval we ask for (RFC 4028); None disables session timers."""
    min_se: int = 90
    """The smallest session interval we accept (Min-SE)."""
    max_sessions: int = 10_000
    max_redirects: int = 5
    merged_memory: int = 4096
    """How many recent requests §8.2.2.2 loop/merge detection remembers."""
