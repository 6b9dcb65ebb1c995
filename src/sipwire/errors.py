"""Exceptions shared by every layer of sipwire.

Errors know the SIP status code that answers them (the idea of h11's
``error_status_hint``): a layer raises, the boundary above it turns the
exception into the RFC's response or a logged drop.
"""

from __future__ import annotations

__all__ = [
    "LocalProtocolError",
    "ParseError",
    "RemoteProtocolError",
    "RequestFailed",
    "SipError",
]


class SipError(Exception):
    """Base class of every exception sipwire raises on purpose."""

    def __init__(self, reason: str, status: int = 500) -> None:
        super().__init__(reason)
        self.reason = reason
        """Human-readable reason, short enough to go into a Reason-Phrase or Warning."""
        self.status = status
        """The SIP status code that answers the error (400, 420, 505 ...)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason!r}, status={self.status})"


class RemoteProtocolError(SipError):
    """The peer sent something that breaks the protocol."""


class LocalProtocolError(SipError):
    """The application asked sipwire to do something the protocol forbids."""


class ParseError(RemoteProtocolError, ValueError):
    """Bytes that are not a well-formed SIP message, URI or header value.

    ``status`` is the response a server sends back for a request that fails
    this way: 400 for syntax, 505 for an unsupported SIP version, 513 for a
    message that is too large.
    """

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason, status)


class RequestFailed(SipError):
    """A request got a final response other than 2xx (or failed locally: 408, 503).

    ``status`` and ``reason`` are the response's; ``response`` is the whole
    response when there is one.
    """

    def __init__(self, status: int, reason: str, response: object | None = None) -> None:
        super().__init__(reason, status)
        self.response = response

    def __str__(self) -> str:
        return f"{self.status} {self.reason}"
