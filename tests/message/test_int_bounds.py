"""Every integer a peer writes is bounded: a value, or ParseError with status 400.

Python's ``int()`` refuses strings of more than 4,300 digits with a plain
ValueError; before ``params.parse_digits`` a CSeq, Max-Forwards,
Content-Length, Expires, RSeq, RAck or numeric parameter that long escaped
the parser as ValueError (a traceback and no 400 on UDP, a dead connection
task on TCP). Each position below is tried with 5,000 digits and with the
value just past its maximum, through the C accelerator (``parse_message``)
and the reference parser (``parse_message_py``), and the lazy typed views
the user-agent core reads later are tried the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sipwire.core.session_timers import parse_session_expires
from sipwire.errors import ParseError
from sipwire.message import Address, Reason, Request, Response, StreamError, StreamParser, Via
from sipwire.message.params import MAX_UINT32, int_param, parse_digits
from sipwire.message.parser import parse_message, parse_message_py
from sipwire.sdp import SdpError, parse_rtpmap, parse_sdp

speedups: ModuleType | None
try:
    from sipwire.message import _speedups as speedups
except ImportError:  # pragma: no cover - depends on the build
    speedups = None

Message = Request | Response
Parser = Callable[[bytes], Message]
PARSERS: list[Parser] = [parse_message, parse_message_py]
PARSER_IDS = ["parse_message", "parse_message_py"]
LONG = "9" * 5000
BODY = b"0123456789"


def request(
    *,
    uri: str = "sip:bob@example.com",
    via: str = "SIP/2.0/UDP h.example.com;branch=z9hG4bKx",
    from_: str = "<sip:alice@example.com>;tag=1",
    cseq: str = "1 OPTIONS",
    extra: str = "",
    content_length: str = "10",
) -> bytes:
    return (
        f"OPTIONS {uri} SIP/2.0\r\nVia: {via}\r\nFrom: {from_}\r\n"
        f"To: <sip:bob@example.com>\r\nCall-ID: x@h\r\nCSeq: {cseq}\r\n{extra}"
        f"Content-Length: {content_length}\r\n\r\n"
    ).encode() + BODY


def response(status: str) -> bytes:
    return (
        f"SIP/2.0 {status} Whatever\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\n"
        "From: <sip:a@b>;tag=1\r\nTo: <sip:b@c>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def _contact(m: Message) -> Address:
    assert m.contact
    return m.contact[0]


def _reason(m: Message) -> Reason:
    assert m.reason_header
    return m.reason_header[0]


@dataclass(frozen=True)
class Position:
    """Where a run of digits goes in a message, and how its value is read back."""

    name: str
    build: Callable[[str], bytes]
    read: Callable[[Message], object]
    maximum: int
    minimum: int = 0
    clamp: bool = False
    """delta-seconds: a larger value reads as the maximum (RFC 3261 §20.19)."""
    max_length: int | None = None
    """The grammar's own bound on the digits (3DIGIT status, 1*5DIGIT ports)."""
    usable: int | None = None
    """A smaller bound the message puts on a valid value (Content-Length: the body)."""

    def expected(self, digits: str) -> int | None:
        """The value ``digits`` must read as, or None for a ParseError: an oracle
        that compares digit strings and never converts more than the maximum's digits."""
        if not digits or (self.max_length is not None and len(digits) > self.max_length):
            return None
        significant = digits.lstrip("0") or "0"
        top = str(self.maximum)
        if len(significant) > len(top) or (len(significant) == len(top) and significant > top):
            return self.maximum if self.clamp else None
        value = int(significant)
        if value < self.minimum or (self.usable is not None and value > self.usable):
            return None
        return value


def _via(m: Message) -> Via:
    via = m.top_via
    assert via is not None
    return via


def _uri_port(m: Message) -> object:
    assert isinstance(m, Request)
    return getattr(m.uri, "port", None)


def _status(m: Message) -> object:
    assert isinstance(m, Response)
    return m.status


def _rack(index: int) -> Callable[[Message], object]:
    def read(m: Message) -> object:
        rack = m.rack
        assert rack is not None
        return rack.rseq if index == 0 else rack.cseq

    return read


def _sub_state(attr: str) -> Callable[[Message], object]:
    def read(m: Message) -> object:
        return getattr(m.subscription_state, attr)

    return read


EAGER = [
    Position("CSeq", lambda d: request(cseq=f"{d} OPTIONS"), lambda m: m.cseq.seq, MAX_UINT32),
    Position(
        "Max-Forwards",
        lambda d: request(extra=f"Max-Forwards: {d}\r\n"),
        lambda m: m.max_forwards,
        255,
    ),
    Position(
        "Content-Length",
        lambda d: request(content_length=d),
        lambda m: m.content_length,
        MAX_UINT32,
        usable=len(BODY),
    ),
    Position(
        "Via port",
        lambda d: request(via=f"SIP/2.0/UDP h.example.com:{d};branch=z9hG4bKx"),
        lambda m: _via(m).port,
        65535,
        max_length=5,
    ),
    Position(
        "Via rport",
        lambda d: request(via=f"SIP/2.0/UDP h.example.com;branch=z9hG4bKx;rport={d}"),
        lambda m: _via(m).rport,
        65535,
    ),
    Position(
        "Via ttl",
        lambda d: request(via=f"SIP/2.0/UDP h.example.com;ttl={d};branch=z9hG4bKx"),
        lambda m: _via(m).ttl,
        255,
    ),
    Position(
        "Request-URI port",
        lambda d: request(uri=f"sip:bob@example.com:{d}"),
        _uri_port,
        65535,
        max_length=5,
    ),
    Position(
        "From URI port",
        lambda d: request(from_=f"<sip:alice@example.com:{d}>;tag=1"),
        lambda m: getattr(m.from_.uri, "port", None),
        65535,
        max_length=5,
    ),
    Position("status code", response, _status, 699, minimum=100, max_length=3),
]


def _lazy(
    name: str, header: str, read: Callable[[Message], object], *, clamp: bool = False
) -> Position:
    """A header the parser leaves alone: the message parses, its typed view is read later."""
    return Position(
        name, lambda d: request(extra=header.format(d) + "\r\n"), read, MAX_UINT32, clamp=clamp
    )


LAZY = [
    _lazy("RSeq", "RSeq: {}", lambda m: m.rseq),
    _lazy("RAck response-num", "RAck: {} 1 INVITE", _rack(0)),
    _lazy("RAck CSeq number", "RAck: 1 {} INVITE", _rack(1)),
    _lazy("Reason cause", "Reason: SIP;cause={}", lambda m: _reason(m).cause),
]
CLAMPED = [
    _lazy("Expires", "Expires: {}", lambda m: m.expires, clamp=True),
    _lazy("Min-Expires", "Min-Expires: {}", lambda m: m.min_expires, clamp=True),
    _lazy(
        "Contact expires",
        "Contact: <sip:a@b>;expires={}",
        lambda m: _contact(m).expires,
        clamp=True,
    ),
    _lazy(
        "Subscription-State expires",
        "Subscription-State: active;expires={}",
        _sub_state("expires"),
        clamp=True,
    ),
    _lazy(
        "Subscription-State retry-after",
        "Subscription-State: terminated;retry-after={}",
        _sub_state("retry_after"),
        clamp=True,
    ),
]
ALL = EAGER + LAZY + CLAMPED


def _names(positions: list[Position]) -> list[str]:
    return [p.name for p in positions]


def _past(position: Position) -> str:
    return str(position.maximum + 1)


def _assert_400(info: pytest.ExceptionInfo[ParseError]) -> None:
    assert type(info.value) is ParseError
    assert info.value.status == 400


def _assert_short_reason(info: pytest.ExceptionInfo[ParseError]) -> None:
    assert len(info.value.reason) < 100, "the reason must not repeat the peer's digits"


def _accelerator_declines(data: bytes) -> None:
    if speedups is not None:
        assert speedups.parse(data) is None


@pytest.mark.parametrize("position", EAGER, ids=_names(EAGER))
@pytest.mark.parametrize("parse", PARSERS, ids=PARSER_IDS)
def test_overlong_or_past_maximum_fails_the_parse_with_400(
    position: Position, parse: Parser
) -> None:
    largest = position.maximum if position.usable is None else position.usable
    assert position.read(parse(position.build(str(largest)))) == largest
    for digits in (LONG, _past(position)):
        data = position.build(digits)
        with pytest.raises(ParseError) as info:
            parse(data)
        _assert_400(info)
        if position.max_length is None or len(digits) <= position.max_length:
            assert "out of range" in info.value.reason  # the bound, not another error
            _assert_short_reason(info)
        _accelerator_declines(data)


@pytest.mark.parametrize("position", LAZY, ids=_names(LAZY))
@pytest.mark.parametrize("parse", PARSERS, ids=PARSER_IDS)
def test_lazy_views_raise_parse_error(position: Position, parse: Parser) -> None:
    assert position.read(parse(position.build(str(position.maximum)))) == position.maximum
    for digits in (LONG, _past(position)):
        message = parse(position.build(digits))
        with pytest.raises(ParseError) as info:
            position.read(message)
        _assert_400(info)
        _assert_short_reason(info)


@pytest.mark.parametrize("position", CLAMPED, ids=_names(CLAMPED))
@pytest.mark.parametrize("parse", PARSERS, ids=PARSER_IDS)
def test_delta_seconds_of_any_length_are_capped(position: Position, parse: Parser) -> None:
    """Expires-like values above 2**32-1 read as 2**32-1, as before, however long."""
    for digits in (str(MAX_UINT32), _past(position), LONG, "0" * 5000 + "7"):
        value = position.read(parse(position.build(digits)))
        assert value == (7 if digits.endswith("07") else MAX_UINT32)


@pytest.mark.parametrize("parse", PARSERS, ids=PARSER_IDS)
def test_leading_zeros_of_any_length_still_read(parse: Parser) -> None:
    data = request(cseq="0" * 5000 + "7 OPTIONS", extra=f"Max-Forwards: {'0' * 5000}70\r\n")
    message = parse(data)
    assert (message.cseq.seq, message.max_forwards) == (7, 70)
    _accelerator_declines(data)  # more than 18 digits: Python reads them


def test_contact_q_with_overlong_digits_is_none() -> None:
    message = parse_message(request(extra=f"Contact: <sip:a@b>;q={LONG};expires={LONG}\r\n"))
    assert _contact(message).q is None
    assert _contact(message).expires == MAX_UINT32


def test_constructed_via_accessors_raise_parse_error() -> None:
    """A Via built in code, not parsed, holds what it was given: the views check it."""
    for params in ({"rport": LONG}, {"rport": "65536"}, {"ttl": LONG}, {"ttl": "256"}):
        via = Via("UDP", "h.example.com", None, dict(params))
        with pytest.raises(ParseError) as info:
            _ = via.rport if "rport" in params else via.ttl
        _assert_400(info)


def test_retry_after_and_session_expires_headers_as_the_core_reads_them() -> None:
    """The core reads Retry-After with int_param and Session-Expires itself."""
    assert int_param(LONG) == MAX_UINT32
    assert int_param(str(MAX_UINT32 + 1)) == MAX_UINT32
    assert int_param("120") == 120
    assert parse_session_expires(LONG) is None
    assert parse_session_expires(f"{LONG};refresher=uac") is None


def test_parse_digits() -> None:
    assert parse_digits("0", "x") == 0
    assert parse_digits("0" * 6000, "x") == 0
    assert parse_digits("0" * 6000 + "255", "x", 255) == 255
    assert parse_digits(LONG, "x", 255, clamp=True) == 255
    for bad in ("", " 1", "1 ", "-1", "+1", "1_0", "\u00b2", "\u0663", "0x1"):
        with pytest.raises(ParseError):
            parse_digits(bad, "x")
    for big in ("256", LONG, "1" + "0" * 18):
        with pytest.raises(ParseError) as info:
            parse_digits(big, "x", 255)
        _assert_400(info)


def test_stream_content_length_overlong_is_a_fatal_400() -> None:
    for digits in (LONG, str(MAX_UINT32 + 1)):
        items = StreamParser().feed(request(content_length=digits))
        assert len(items) == 1 and isinstance(items[0], StreamError)
        assert items[0].fatal
        assert items[0].error.status == 400


def test_stream_content_length_with_leading_zeros() -> None:
    items = StreamParser().feed(request(content_length="0" * 5000 + "10"))
    assert len(items) == 1 and isinstance(items[0], Request)
    assert items[0].body == BODY


SDP = (
    "v=0\r\no=- 1 {version} IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n"
    "b=AS:{bandwidth}\r\nt={start} 0\r\nm=audio {port} RTP/AVP 0\r\n"
)
_SDP_OK = {"version": "1", "bandwidth": "64", "start": "0", "port": "49170"}


@pytest.mark.parametrize("field", sorted(_SDP_OK))
def test_sdp_overlong_numbers_are_sdp_errors(field: str) -> None:
    """SDP fields were bounded before (by digit count); kept here as a guard."""
    assert parse_sdp(SDP.format(**_SDP_OK)).media[0].port == 49170
    with pytest.raises(SdpError) as info:
        parse_sdp(SDP.format(**{**_SDP_OK, field: LONG}))
    assert isinstance(info.value, ParseError) and info.value.status == 400


def test_sdp_rtpmap_overlong_clock_rate_is_skipped() -> None:
    with pytest.raises(SdpError):
        parse_rtpmap(f"0 PCMU/{LONG}")
    with pytest.raises(SdpError):
        parse_rtpmap(f"0 PCMU/8000/{LONG}")
    sdp = parse_sdp(SDP.format(**_SDP_OK) + f"a=rtpmap:0 PCMU/{LONG}\r\n")
    assert sdp.media[0].rtpmap() == {}


# -- property: any digit string is a value or a ParseError ------------------------------------

DIGITS = st.one_of(
    st.text("0123456789", max_size=25),
    st.integers(0, 2**40).map(str),
    st.builds(lambda n, d: d * n, st.integers(0, 6000), st.sampled_from("0123456789")),
    st.builds(
        lambda zeros, tail: "0" * zeros + tail,
        st.integers(0, 5988),
        st.text("0123456789", max_size=12),
    ),
)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))


def _outcome(parse: Parser, position: Position, data: bytes) -> int | None:
    """The value read at ``position``, or None for a ParseError; anything else propagates."""
    try:
        value = position.read(parse(data))
    except ParseError as exc:
        assert type(exc) is ParseError and exc.status == 400
        return None
    assert type(value) is int
    return value


@given(st.sampled_from(ALL), DIGITS)
@example(EAGER[0], "9" * 6000)
@example(EAGER[0], "")
@example(CLAMPED[0], "0" * 6000)
@SETTINGS
def test_any_digit_string_gives_a_value_or_parse_error(position: Position, digits: str) -> None:
    data = position.build(digits)
    expected = position.expected(digits)
    for parse in PARSERS:
        assert _outcome(parse, position, data) == expected, (parse.__name__, position.name)


@given(DIGITS)
@example("9" * 6000)
@SETTINGS
def test_stream_content_length_gives_a_message_or_a_stream_error(digits: str) -> None:
    data = request(content_length=digits)
    items = StreamParser().feed(data)
    value = Position("Content-Length", str.encode, lambda m: None, MAX_UINT32).expected(digits)
    body_start = len(data) - len(BODY)
    if value is None:
        assert len(items) == 1 and isinstance(items[0], StreamError) and items[0].fatal
        assert type(items[0].error) is ParseError and items[0].error.status == 400
    elif body_start + value > 65536:
        assert len(items) == 1 and isinstance(items[0], StreamError) and items[0].fatal
        assert items[0].error.status == 513
    elif value > len(BODY):
        assert items == []  # waits for the rest of the body
    else:  # a message; the octets after its body start the next one
        assert items and isinstance(items[0], Request) and items[0].body == BODY[:value]
