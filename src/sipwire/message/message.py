"""Request and Response: start line, headers, body, typed views and builders."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from operator import itemgetter
from typing import ClassVar, Final, TypeVar

from sipwire.errors import LocalProtocolError, ParseError
from sipwire.message import address as _address
from sipwire.message import fields as _fields
from sipwire.message.address import Address
from sipwire.message.auth_fields import Challenge, parse_challenges
from sipwire.message.fields import (
    CSeq,
    Event,
    MediaType,
    RAck,
    Reason,
    SubscriptionState,
    Timestamp,
)
from sipwire.message.headers import Headers, HeaderValue
from sipwire.message.reasons import reason_phrase
from sipwire.message.uri import Uri, to_uri
from sipwire.message.via import Via, parse_via_list

__all__ = ["Message", "Request", "Response"]

SIP_VERSION: Final = "SIP/2.0"
T = TypeVar("T")
_MISSING: Final[object] = object()
HeadersArg = Headers | Mapping[str, HeaderValue] | Iterable[tuple[str, HeaderValue]] | None

# Headers §8.2.6.2 copies from a request into its response, in this order.
_COPIED_TO_RESPONSE: Final = ("via", "record-route", "from", "to", "call-id", "cseq")
_COPIED_WITH_RR: Final = frozenset(_COPIED_TO_RESPONSE)
_COPIED_WITHOUT_RR: Final = _COPIED_WITH_RR - {"record-route"}
_KEY_OF: Final = itemgetter(0)
_SHARED_VIEWS: Final = ("via", "from", "call-id", "cseq")
"""Parsed headers a response built by ``reply()`` takes over from its request."""


def _typed(headers: Headers, key: str, parse: Callable[[list[str]], T]) -> T:
    """``headers.typed`` for a key already canonical (the typed views' fast path)."""
    cache = headers._cache
    value = cache.get(key, _MISSING)
    if value is _MISSING:
        items = headers._items
        if key in map(_KEY_OF, items):
            value = cache[key] = parse([v for k, _, v in items if k == key])
        else:
            value = cache[key] = parse([])  # absent (the usual case): no pass in Python
    return value  # type: ignore[return-value]


def _first(values: list[str]) -> str | None:
    if len(values) > 1:
        raise ParseError("header must appear once")
    return values[0].strip() if values else None


def _parse_call_id(values: list[str]) -> str | None:
    return _first(values)


def _parse_single_address(values: list[str]) -> Address | None:
    text = _first(values)
    return None if text is None else _address.parse_address(text)


class Message:
    """What requests and responses share: headers, body and typed header views.

    The typed properties parse their header on first use and cache the
    result; changing the header through ``headers`` drops the cache. A
    missing optional header reads as ``None`` (or an empty list).
    """

    __slots__ = ("body", "headers", "version")

    headers: Headers
    body: bytes
    version: str

    def __init__(self, headers: HeadersArg = None, body: bytes | str = b"") -> None:
        if isinstance(headers, Headers):
            self.headers = headers
        else:
            self.headers = Headers(headers)
        self.body = body.encode() if isinstance(body, str) else body
        self.version = SIP_VERSION

    # -- serialisation -------------------------------------------------------
    def _start_line(self) -> str:
        raise NotImplementedError

    def __bytes__(self) -> bytes:
        """The wire form. Content-Length is written (or corrected) to match the body."""
        body = self.body
        items = self.headers._items
        if "content-length" not in map(_KEY_OF, items):
            # The usual case (every message sipwire builds): one pass, Content-Length last.
            lines = [self._start_line()]
            lines += [f"{name}: {value}" for _, name, value in items]
            lines.append(f"Content-Length: {len(body)}\r\n\r\n")
            return "\r\n".join(lines).encode("utf-8", "surrogateescape") + body
        lines = [self._start_line()]
        has_length = False
        for key, name, value in items:
            if key == "content-length":
                if has_length:
                    continue
                has_length = True
                value = str(len(body))
            lines.append(f"{name}: {value}")
        lines.append("\r\n")
        return "\r\n".join(lines).encode("utf-8", "surrogateescape") + body

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message) or type(self) is not type(other):
            return NotImplemented
        return (
            self._start_line() == other._start_line()
            and self.headers == other.headers
            and self.body == other.body
        )

    __hash__ = None  # type: ignore[assignment]

    # -- typed views -----------------------------------------------------------
    @property
    def via(self) -> list[Via]:
        """Every Via value, top first (§20.42)."""
        value = self.headers._cache.get("via", _MISSING)
        if value is _MISSING:
            value = _typed(self.headers, "via", parse_via_list)
        return value  # type: ignore[return-value]

    @property
    def top_via(self) -> Via | None:
        vias = self.via
        return vias[0] if vias else None

    @property
    def from_(self) -> Address:
        """The From header (§20.20); raises ParseError when the message has none."""
        value = self.headers._cache.get("from", _MISSING)
        if value is _MISSING:
            value = _typed(self.headers, "from", _parse_single_address)
        if value is None:
            raise ParseError("missing From header")
        return value  # type: ignore[return-value]

    @property
    def to(self) -> Address:
        """The To header (§20.39); raises ParseError when the message has none."""
        value = self.headers._cache.get("to", _MISSING)
        if value is _MISSING:
            value = _typed(self.headers, "to", _parse_single_address)
        if value is None:
            raise ParseError("missing To header")
        return value  # type: ignore[return-value]

    @property
    def call_id(self) -> str:
        """The Call-ID (§20.8)."""
        value = self.headers._cache.get("call-id", _MISSING)
        if value is _MISSING:
            value = _typed(self.headers, "call-id", _parse_call_id)
        if value is None:
            raise ParseError("missing Call-ID header")
        return value  # type: ignore[return-value]

    @property
    def cseq(self) -> CSeq:
        """The CSeq (§20.16)."""
        value = self.headers._cache.get("cseq", _MISSING)
        if value is _MISSING:
            value = _typed(self.headers, "cseq", _fields.parse_cseq)
        if value is None:
            raise ParseError("missing CSeq header")
        return value  # type: ignore[return-value]

    @property
    def max_forwards(self) -> int | None:
        return _typed(self.headers, "max-forwards", _parse_max_forwards)

    @property
    def content_length(self) -> int | None:
        """The Content-Length header as received (``len(body)`` is what is sent)."""
        return _typed(self.headers, "content-length", _parse_content_length)

    @property
    def content_type(self) -> MediaType | None:
        value = self.headers._cache.get("content-type", _MISSING)
        if value is _MISSING:
            value = _typed(self.headers, "content-type", _fields.parse_content_type)
        return value  # type: ignore[return-value]

    @property
    def accept(self) -> list[MediaType]:
        return _typed(self.headers, "accept", _fields.parse_accept)

    @property
    def contact(self) -> list[Address]:
        """Contact values; empty for none and for the wildcard (see ``contact_is_wildcard``)."""
        value = self.headers._cache.get("contact", _MISSING)
        if value is _MISSING:
            value = _typed(self.headers, "contact", _address.parse_contact_list)
        return value  # type: ignore[return-value]

    @property
    def contact_is_wildcard(self) -> bool:
        return _address.is_wildcard_contact(self.headers.get_all("contact"))

    @property
    def route(self) -> list[Address]:
        value = self.headers._cache.get("route", _MISSING)
        if value is _MISSING:
            value = _typed(self.headers, "route", _parse_route)
        return value  # type: ignore[return-value]

    @property
    def record_route(self) -> list[Address]:
        value = self.headers._cache.get("record-route", _MISSING)
        if value is _MISSING:
            value = _typed(self.headers, "record-route", _parse_record_route)
        return value  # type: ignore[return-value]

    @property
    def refer_to(self) -> Address | None:
        return _typed(self.headers, "refer-to", _parse_single_address)

    @property
    def expires(self) -> int | None:
        value = self.headers._cache.get("expires", _MISSING)
        if value is _MISSING:
            value = _typed(self.headers, "expires", _parse_expires)
        return value  # type: ignore[return-value]

    @property
    def min_expires(self) -> int | None:
        return _typed(self.headers, "min-expires", _parse_min_expires)

    @property
    def allow(self) -> list[str]:
        value = self.headers._cache.get("allow", _MISSING)
        if value is _MISSING:
            value = _typed(self.headers, "allow", _parse_allow)
        return value  # type: ignore[return-value]

    @property
    def supported(self) -> list[str]:
        value = self.headers._cache.get("supported", _MISSING)
        if value is _MISSING:
            value = _typed(self.headers, "supported", _parse_supported)
        return value  # type: ignore[return-value]

    @property
    def require(self) -> list[str]:
        value = self.headers._cache.get("require", _MISSING)
        if value is _MISSING:
            value = _typed(self.headers, "require", _parse_require)
        return value  # type: ignore[return-value]

    @property
    def proxy_require(self) -> list[str]:
        return _typed(self.headers, "proxy-require", _parse_proxy_require)

    @property
    def unsupported(self) -> list[str]:
        return _typed(self.headers, "unsupported", _parse_unsupported)

    @property
    def www_authenticate(self) -> list[Challenge]:
        return _typed(self.headers, "www-authenticate", parse_challenges)

    @property
    def proxy_authenticate(self) -> list[Challenge]:
        return _typed(self.headers, "proxy-authenticate", parse_challenges)

    @property
    def authorization(self) -> list[Challenge]:
        return _typed(self.headers, "authorization", parse_challenges)

    @property
    def proxy_authorization(self) -> list[Challenge]:
        return _typed(self.headers, "proxy-authorization", parse_challenges)

    @property
    def event(self) -> Event | None:
        return _typed(self.headers, "event", _fields.parse_event)

    @property
    def subscription_state(self) -> SubscriptionState | None:
        return _typed(self.headers, "subscription-state", _fields.parse_subscription_state)

    @property
    def rseq(self) -> int | None:
        return _typed(self.headers, "rseq", _parse_rseq)

    @property
    def rack(self) -> RAck | None:
        return _typed(self.headers, "rack", _fields.parse_rack)

    @property
    def reason_header(self) -> list[Reason]:
        """Reason header values (RFC 3326)."""
        value = self.headers._cache.get("reason", _MISSING)
        if value is _MISSING:
            value = _typed(self.headers, "reason", _fields.parse_reasons)
        return value  # type: ignore[return-value]

    @property
    def timestamp(self) -> Timestamp | None:
        return _typed(self.headers, "timestamp", _fields.parse_timestamp)

    @property
    def user_agent(self) -> str | None:
        return self.headers.get("user-agent")

    @property
    def server(self) -> str | None:
        return self.headers.get("server")


def _parse_max_forwards(values: list[str]) -> int | None:
    return _fields.parse_int(values, "Max-Forwards", 255)


def _parse_content_length(values: list[str]) -> int | None:
    return _fields.parse_int(values, "Content-Length")


def _parse_expires(values: list[str]) -> int | None:
    return _fields.parse_delta_seconds(values, "Expires")


def _parse_min_expires(values: list[str]) -> int | None:
    return _fields.parse_delta_seconds(values, "Min-Expires")


def _parse_rseq(values: list[str]) -> int | None:
    return _fields.parse_int(values, "RSeq")


def _parse_route(values: list[str]) -> list[Address]:
    return _address.parse_address_list(values, "Route")


def _parse_record_route(values: list[str]) -> list[Address]:
    return _address.parse_address_list(values, "Record-Route")


def _parse_allow(values: list[str]) -> list[str]:
    return _fields.parse_tokens(values, "Allow")


def _parse_supported(values: list[str]) -> list[str]:
    return _fields.parse_tokens(values, "Supported")


def _parse_require(values: list[str]) -> list[str]:
    return _fields.parse_tokens(values, "Require")


def _parse_proxy_require(values: list[str]) -> list[str]:
    return _fields.parse_tokens(values, "Proxy-Require")


def _parse_unsupported(values: list[str]) -> list[str]:
    return _fields.parse_tokens(values, "Unsupported")


class Request(Message):
    """A SIP request.

    ``Request("OPTIONS", "sip:bob@example.com", headers={"Max-Forwards": 70})``;
    ``bytes(request)`` is its wire form and ``request.reply(200)`` builds a
    response that copies what §8.2.6.2 asks for.
    """

    __slots__ = ("_uri", "_uri_text", "method")

    is_request: ClassVar[bool] = True

    def __init__(
        self,
        method: str,
        uri: Uri | str,
        headers: HeadersArg = None,
        body: bytes | str = b"",
    ) -> None:
        super().__init__(headers, body)
        self.method = method
        """The method, case-sensitive (§7.1): ``INVITE``, ``REGISTER`` ..."""
        self._uri = to_uri(uri)
        self._uri_text: str | None = None

    @property
    def uri(self) -> Uri:
        """The Request-URI."""
        return self._uri

    @uri.setter
    def uri(self, value: Uri | str) -> None:
        self._uri = to_uri(value)
        self._uri_text = None

    def _start_line(self) -> str:
        uri = self._uri_text if self._uri_text is not None else str(self._uri)
        return f"{self.method} {uri} {self.version}"

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri}>"

    def reply(
        self,
        status: int,
        reason: str | None = None,
        headers: HeadersArg = None,
        body: bytes | str = b"",
        *,
        to_tag: str | None = None,
    ) -> Response:
        """Build a response to this request (§8.2.6.2).

        Via, From, To, Call-ID and CSeq are copied (Record-Route too for
        2xx/18x responses to requests that may create a dialog, §12.1.1);
        ``to_tag`` adds a tag to the To header unless it already has one.
        ``headers`` are added after the copied ones.
        """
        copied = _COPIED_WITH_RR if 100 < status < 300 else _COPIED_WITHOUT_RR
        items = [item for item in self.headers._items if item[0] in copied]
        if to_tag is not None:
            for i, item in enumerate(items):
                if item[0] == "to":  # only the first To line
                    if self.to.tag is None:
                        # A header parameter after a name-addr or an addr-spec alike (§20).
                        items[i] = ("to", item[1], f"{item[2].rstrip()};tag={to_tag}")
                    break
        if headers is not None:
            extra = headers if isinstance(headers, Headers) else Headers(headers)
            items += extra._items
        if not 100 <= status <= 699:
            raise LocalProtocolError(f"status code out of range: {status}")
        response = Response.__new__(Response)
        response.headers = Headers._from_parsed(items)
        response.body = body.encode() if isinstance(body, str) else body
        response.version = SIP_VERSION
        response.status = status
        response.reason = reason_phrase(status) if reason is None else reason
        # The copied lines are the same text: so are their parsed views.
        cache = self.headers._cache
        if cache:
            views = response.headers._cache
            for key in _SHARED_VIEWS:
                value = cache.get(key, _MISSING)
                if value is not _MISSING:
                    views[key] = list(value) if isinstance(value, list) else value
        return response


class Response(Message):
    """A SIP response: ``Response(180)`` or ``request.reply(180)``."""

    __slots__ = ("reason", "status")

    is_request: ClassVar[bool] = False

    def __init__(
        self,
        status: int,
        reason: str | None = None,
        headers: HeadersArg = None,
        body: bytes | str = b"",
    ) -> None:
        super().__init__(headers, body)
        if not 100 <= status <= 699:
            raise LocalProtocolError(f"status code out of range: {status}")
        self.status = status
        """The status code, 100 to 699."""
        self.reason = reason_phrase(status) if reason is None else reason
        """The reason phrase (free text, may be empty)."""

    @property
    def status_class(self) -> int:
        """1 for provisional, 2 for success ... 6 for global failure."""
        return self.status // 100

    @property
    def is_provisional(self) -> bool:
        return self.status < 200

    @property
    def is_final(self) -> bool:
        return self.status >= 200

    def _start_line(self) -> str:
        return f"{self.version} {self.status} {self.reason}"

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason}>"
