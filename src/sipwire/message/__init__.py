"""The syntax layer of RFC 3261: messages, headers and URIs, as pure data.

Nothing here does I/O or reads a clock.
"""

from sipwire.message.address import Address
from sipwire.message.auth_fields import Challenge, Credentials
from sipwire.message.fields import (
    CSeq,
    Event,
    MediaType,
    RAck,
    Reason,
    SubscriptionState,
    Timestamp,
)
from sipwire.message.headers import Headers
from sipwire.message.message import Message, Request, Response
from sipwire.message.parser import (
    MAX_MESSAGE_SIZE,
    KeepAlivePing,
    KeepAlivePong,
    StreamError,
    StreamParser,
    parse_message,
)
from sipwire.message.uri import AbsoluteUri, SipUri, TelUri, Uri, parse_uri
from sipwire.message.via import MAGIC_COOKIE, Via

__all__ = [
    "MAGIC_COOKIE",
    "MAX_MESSAGE_SIZE",
    "AbsoluteUri",
    "Address",
    "CSeq",
    "Challenge",
    "Credentials",
    "Event",
    "Headers",
    "KeepAlivePing",
    "KeepAlivePong",
    "MediaType",
    "Message",
    "RAck",
    "Reason",
    "Request",
    "Response",
    "SipUri",
    "StreamError",
    "StreamParser",
    "SubscriptionState",
    "TelUri",
    "Timestamp",
    "Uri",
    "Via",
    "parse_message",
    "parse_uri",
]
