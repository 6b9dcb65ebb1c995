"""What a UAS reads of a new INVITE, read before it answers anything.

Headers are parsed lazily, so a malformed Allow, Supported or Record-Route
would otherwise only be found after the 180 went out, by code that cannot
answer any more. :func:`validate_invite` reads every header an INVITE
session relies on and raises :class:`~sipwire.errors.ParseError` (status
400) for the first that does not parse; the core answers it with 400 and no
session is made.
"""

from __future__ import annotations

from operator import attrgetter

from sipwire.errors import ParseError
from sipwire.message import Request

__all__ = ["validate_invite"]


_READ = tuple(
    attrgetter(name)
    for name in (
        "from_",
        "to",
        "cseq",
        "contact",
        "record_route",
        "route",
        "allow",
        "supported",
        "require",
        "content_type",
        "expires",
    )
)
"""The typed header views an INVITE session reads."""


def validate_invite(request: Request) -> None:
    """Parse every header an INVITE session reads; ParseError for the first bad one."""
    for read in _READ:
        read(request)
    contacts = request.contact
    if contacts and contacts[0].uri.scheme not in ("sip", "sips"):
        raise ParseError("the Contact of an INVITE must be a SIP or SIPS URI")
