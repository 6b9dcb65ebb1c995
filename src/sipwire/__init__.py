"""sipwire: the Session Initiation Protocol (RFC 3261) for Python.

The names exported here are the stable public API; submodules hold the rest.
Every type that a public method of the asyncio API takes or returns, and
every event a call yields, is importable from here.
"""

from sipwire.aio.call import Call, CallEvent, CallStateError
from sipwire.aio.call_events import HoldChanged, HoldState
from sipwire.aio.media import (
    CallMedia,
    DtmfReceived,
    MediaEnded,
    MediaStarted,
    MediaStats,
    MediaTimeout,
    NoMediaError,
    PacketTransform,
    RtpConfig,
    WavWriter,
    read_wav,
    tone,
)
from sipwire.aio.subscriptions import IncomingSubscription
from sipwire.aio.transfer import TransferRequest
from sipwire.aio.transport_base import TransportConfig
from sipwire.aio.ua import UserAgent
from sipwire.core.events import (
    CallReplaced,
    CallStateChanged,
    InDialogRequest,
    MediaChanged,
    TransferProgress,
)
from sipwire.core.media import SessionMedia
from sipwire.core.register import Registration, RegistrationState
from sipwire.core.sdp_media import MediaConfig
from sipwire.core.session import CallState
from sipwire.core.subscription import Subscription, SubState
from sipwire.errors import (
    LocalProtocolError,
    ParseError,
    RemoteProtocolError,
    RequestFailed,
    SipError,
)
from sipwire.media.frame import Frame
from sipwire.message import (
    AbsoluteUri,
    Address,
    CSeq,
    Headers,
    Reason,
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
from sipwire.transaction.admission import AdmissionConfig

__all__ = [
    "AbsoluteUri",
    "Address",
    "AdmissionConfig",
    "CSeq",
    "Call",
    "CallEvent",
    "CallReplaced",
    "CallMedia",
    "CallState",
    "CallStateChanged",
    "CallStateError",
    "DtmfReceived",
    "Headers",
    "Frame",
    "HoldChanged",
    "HoldState",
    "InDialogRequest",
    "IncomingSubscription",
    "LocalProtocolError",
    "MediaChanged",
    "MediaConfig",
    "MediaEnded",
    "MediaStarted",
    "MediaStats",
    "MediaTimeout",
    "NoMediaError",
    "PacketTransform",
    "ParseError",
    "Reason",
    "Registration",
    "RegistrationState",
    "RemoteProtocolError",
    "Request",
    "RequestFailed",
    "RtpConfig",
    "Response",
    "SessionMedia",
    "SipError",
    "SipUri",
    "StreamParser",
    "SubState",
    "Subscription",
    "TelUri",
    "TransferProgress",
    "TransferRequest",
    "TransportConfig",
    "Uri",
    "UserAgent",
    "Via",
    "WavWriter",
    "parse_message",
    "parse_uri",
    "read_wav",
    "tone",
]
