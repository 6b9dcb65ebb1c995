"""sipwire: the Session Initiation Protocol (RFC 3261) for Python.

The names exported here are the stable public API; submodules hold the rest.
"""

from sipwire.aio.call import Call
from sipwire.aio.ua import UserAgent
from sipwire.core.session import CallState
from sipwire.errors import (
    LocalProtocolError,
    ParseError,
    RemoteProtocolError,
    RequestFailed,
    SipError,
)
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
    "Call",
    "CallState",
    "Headers",
    "LocalProtocolError",
    "ParseError",
    "RemoteProtocolError",
    "Request",
    "RequestFailed",
    "Response",
    "SipError",
    "SipUri",
    "StreamParser",
    "TelUri",
    "Uri",
    "UserAgent",
    "Via",
    "parse_message",
    "parse_uri",
]
