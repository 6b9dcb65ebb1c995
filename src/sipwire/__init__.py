"""sipwire: the Session Initiation Protocol (RFC 3261) for Python.

The names exported here are the stable public API; submodules hold the rest.
"""

from sipwire.errors import LocalProtocolError, ParseError, RemoteProtocolError, SipError
from sipwire.message import (
    AbsoluteUri,
    Address,
    CSeq,
    Headers,
    Request,
    Response,
    SipUri,
    StreamParser,
    TelUri,
    Uri,
    Via,
    parse_message,
    parse_uri,
)

__all__ = [
    "AbsoluteUri",
    "Address",
    "CSeq",
    "Headers",
    "LocalProtocolError",
    "ParseError",
    "RemoteProtocolError",
    "Request",
    "Response",
    "SipError",
    "SipUri",
    "StreamParser",
    "TelUri",
    "Uri",
    "Via",
    "parse_message",
    "parse_uri",
]
