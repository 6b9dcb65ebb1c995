"""Property tests: generated messages and URIs round-trip; garbage raises only ParseError."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sipwire import Address, ParseError, Request, Response, SipUri, StreamParser, Via, parse_message
from sipwire.message import CSeq, Message, parse_uri
from sipwire.message.grammar import TOKEN_CHARS
from sipwire.message.headers import canonical_key

SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.!%*_+`'~"
assert re.fullmatch(f"[{TOKEN_CHARS}]+", _TOKEN_ALPHABET)
_WORD_EXTRA = '()<>:\\"/[]?{}'

# Any character a str can hold that UTF-8 can encode (no lone surrogates).
_CHARS = st.characters(exclude_categories=["Cs"])
# Text that fits on one header line.
_LINE_CHARS = st.characters(exclude_categories=["Cs"], exclude_characters="\r\n")

tokens = st.text(_TOKEN_ALPHABET, min_size=1, max_size=12)
methods = st.one_of(
    st.sampled_from(["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "MESSAGE"]),
    tokens,
)
labels = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
hostnames = st.lists(labels, min_size=1, max_size=4).map(".".join)
ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
ipv6 = st.sampled_from(["[2001:db8::1]", "[::1]", "[::ffff:192.0.2.1]", "[2001:db8:0:0:1:0:0:1]"])
hosts = st.one_of(hostnames, ipv4, ipv6)
ports = st.one_of(st.none(), st.integers(0, 65535))
param_names = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_.!~*'", min_size=1, max_size=8)
uri_params = st.dictionaries(
    param_names, st.one_of(st.none(), st.text(_CHARS, min_size=1, max_size=8)), max_size=4
)
uri_headers = st.lists(
    st.tuples(st.text(_CHARS, min_size=1, max_size=6), st.text(_CHARS, max_size=6)), max_size=3
)


@st.composite
def sip_uris(draw: st.DrawFn) -> SipUri:
    user = draw(st.one_of(st.none(), st.text(_CHARS, min_size=1, max_size=12)))
    password = draw(st.one_of(st.none(), st.text(_CHARS, max_size=8))) if user else None
    return SipUri(
        host=draw(hosts),
        user=user,
        password=password,
        port=draw(ports),
        params=draw(uri_params),
        headers=draw(uri_headers),
        scheme=draw(st.sampled_from(["sip", "sips"])),
    )


@given(sip_uris())
@SETTINGS
def test_sip_uri_round_trip(uri: SipUri) -> None:
    text = str(uri)
    again = parse_uri(text)
    assert isinstance(again, SipUri)
    assert again == uri
    assert hash(again) == hash(uri)
    assert (again.user, again.password, again.host, again.port) == (
        uri.user,
        uri.password,
        uri.host,
        uri.port,
    )
    assert again.params == uri.params
    assert again.headers == uri.headers
    assert str(again) == text


# Header values ---------------------------------------------------------------------

simple_uris = st.builds(
    SipUri,
    host=hosts,
    user=st.one_of(st.none(), st.text(_TOKEN_ALPHABET, min_size=1, max_size=8)),
    port=ports,
    params=st.dictionaries(param_names, st.one_of(st.none(), tokens), max_size=2),
)
display_names = st.one_of(st.none(), st.text(_LINE_CHARS, max_size=16))
tags = st.text(_TOKEN_ALPHABET, min_size=1, max_size=10)


@st.composite
def addresses(draw: st.DrawFn) -> Address:
    params: dict[str, str | None] = {}
    tag = draw(st.one_of(st.none(), tags))
    if tag is not None:
        params["tag"] = tag
    return Address(draw(simple_uris), draw(display_names), params)


@st.composite
def vias(draw: st.DrawFn) -> Via:
    params: dict[str, str | None] = {"branch": "z9hG4bK" + draw(tokens)}
    rport = draw(st.sampled_from(["absent", "flag", "value"]))
    if rport == "flag":
        params["rport"] = None
    elif rport == "value":
        params["rport"] = str(draw(st.integers(1, 65535)))
    return Via(
        draw(st.sampled_from(["UDP", "TCP", "TLS", "SCTP", "WS", "WSS"])),
        draw(st.one_of(hostnames, ipv4, ipv6)),
        draw(ports),
        params,
    )


call_ids = st.tuples(
    st.text(_TOKEN_ALPHABET + _WORD_EXTRA, min_size=1, max_size=16),
    st.one_of(st.none(), st.text(_TOKEN_ALPHABET + _WORD_EXTRA, min_size=1, max_size=8)),
).map(lambda t: t[0] if t[1] is None else f"{t[0]}@{t[1]}")

_RESERVED = {"via", "from", "to", "call-id", "cseq", "max-forwards", "content-length"}
extra_names = tokens.filter(lambda n: canonical_key(n) not in _RESERVED)
extra_values = st.text(_LINE_CHARS, max_size=30).map(lambda v: v.strip(" \t"))
extra_headers = st.lists(st.tuples(extra_names, extra_values), max_size=5)
bodies = st.binary(max_size=200)


@st.composite
def common_headers(draw: st.DrawFn, method: str) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = [
        ("Via", str(v)) for v in draw(st.lists(vias(), min_size=1, max_size=3))
    ]
    headers += [
        ("From", str(draw(addresses()))),
        ("To", str(draw(addresses()))),
        ("Call-ID", draw(call_ids)),
        ("CSeq", str(CSeq(draw(st.integers(0, 2**32 - 1)), method))),
    ]
    if draw(st.booleans()):
        headers.append(("Max-Forwards", str(draw(st.integers(0, 255)))))
    headers += draw(extra_headers)
    return draw(st.permutations(headers))


@st.composite
def requests(draw: st.DrawFn) -> Request:
    method = draw(methods)
    body = draw(bodies)
    headers = draw(common_headers(method))
    headers.append(("Content-Length", str(len(body))))
    return Request(method, draw(sip_uris()), headers=headers, body=body)


@st.composite
def responses(draw: st.DrawFn) -> Response:
    body = draw(bodies)
    headers = draw(common_headers(draw(methods)))
    headers.append(("Content-Length", str(len(body))))
    reason = draw(st.text(_LINE_CHARS, max_size=20))
    return Response(draw(st.integers(100, 699)), reason, headers=headers, body=body)


def _same_typed(a: Message, b: Message) -> None:
    assert a.via == b.via
    assert a.from_ == b.from_
    assert a.to == b.to
    assert a.call_id == b.call_id
    assert a.cseq == b.cseq
    assert a.max_forwards == b.max_forwards


@given(requests())
@SETTINGS
def test_request_round_trip(request: Request) -> None:
    data = bytes(request)
    again = parse_message(data)
    assert again == request
    assert isinstance(again, Request)
    assert again.method == request.method
    assert again.uri == request.uri
    assert again.body == request.body
    _same_typed(again, request)
    assert bytes(again) == data


@given(responses())
@SETTINGS
def test_response_round_trip(response: Response) -> None:
    data = bytes(response)
    again = parse_message(data)
    assert again == response
    assert isinstance(again, Response)
    assert (again.status, again.reason) == (response.status, response.reason)
    _same_typed(again, response)
    assert bytes(again) == data


@given(addresses())
@SETTINGS
def test_display_names_survive(address: Address) -> None:
    again = Address.parse(str(address))
    assert again == address


# -- fuzzing: nothing but ParseError ---------------------------------------------------

_SEED = (
    b"INVITE sip:bob@example.com;transport=tcp SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1;rport=5;ttl=3;received=1.2.3.4\r\n"
    b"v: SIP/2.0/TCP b.example.com, SIP/2.0/UDP c;branch=z9hG4bK2\r\n"
    b'From: "A \\"q\\"" <sip:alice@example.com>;tag=1\r\n'
    b"t: sip:bob@example.com\r\n"
    b"i: abc@def\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Max-Forwards: 70\r\n"
    b'm: <sip:a@b>;q=0.5;expires=60, "x" <sip:c@d;lr>\r\n'
    b"Route: <sip:p1;lr>, <sip:p2;lr>\r\nRecord-Route: <sip:r;lr>\r\n"
    b"Expires: 60\r\nMin-Expires: 5\r\nAllow: INVITE, ACK\r\nk: 100rel\r\nRequire: timer\r\n"
    b'WWW-Authenticate: Digest realm="r", nonce="n", qop="auth,auth-int", Basic abc=\r\n'
    b'Authorization: Digest username="u", response="x", qop=auth, nc=00000001\r\n'
    b"o: presence;id=1\r\nSubscription-State: active;expires=60;retry-after=5\r\n"
    b"r: <sip:c@d>\r\nRSeq: 5\r\nRAck: 5 1 INVITE\r\n"
    b'Reason: Q.850;cause=16;text="x"\r\nTimestamp: 1.5 0.2\r\n'
    b"c: application/sdp;charset=utf-8\r\nAccept: application/sdp, */*\r\n"
    b"User-Agent: x\r\nServer: y\r\n"
    b"l: 4\r\n\r\nv=0\r\n"
)
_SEED_RESPONSE = (
    b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\n"
    b"To: <sip:b@c>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
)
assert isinstance(parse_message(_SEED), Request)
assert isinstance(parse_message(_SEED_RESPONSE), Response)


def _touch(value: Any) -> None:
    """Read the derived properties of a typed value."""
    for name in (
        "rport",
        "ttl",
        "branch",
        "received",
        "maddr",
        "wants_rport",
        "sent_by",
        "is_rfc3261_branch",
        "q",
        "expires",
        "tag",
        "state",
        "retry_after",
        "reason",
        "cause",
        "text",
        "id",
        "package",
        "qop_options",
        "stale",
        "algorithm",
        "realm",
        "mime",
        "digits",
        "transport",
        "lr",
        "host_port",
        "is_global",
    ):
        if hasattr(type(value), name):
            getattr(value, name)
    if hasattr(value, "uri"):
        _touch(value.uri)
    str(value)


_PROPERTIES = (
    "via",
    "top_via",
    "from_",
    "to",
    "call_id",
    "cseq",
    "max_forwards",
    "content_length",
    "content_type",
    "accept",
    "contact",
    "contact_is_wildcard",
    "route",
    "record_route",
    "refer_to",
    "expires",
    "min_expires",
    "allow",
    "supported",
    "require",
    "proxy_require",
    "unsupported",
    "www_authenticate",
    "proxy_authenticate",
    "authorization",
    "proxy_authorization",
    "event",
    "subscription_state",
    "rseq",
    "rack",
    "reason_header",
    "timestamp",
    "user_agent",
    "server",
)


def _access_everything(message: Message) -> None:
    for name in _PROPERTIES:
        try:
            value = getattr(message, name)
            for item in value if isinstance(value, list) else [value]:
                _touch(item)
        except ParseError:
            pass
    if isinstance(message, Request):
        _touch(message.uri)
    bytes(message)


def _parse_or_parse_error(data: bytes) -> None:
    try:
        message = parse_message(data)
    except ParseError:
        return
    _access_everything(message)


@given(st.binary(max_size=300))
@SETTINGS
def test_random_bytes(data: bytes) -> None:
    _parse_or_parse_error(data)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from([_SEED, _SEED_RESPONSE])))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "dup"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[pos:pos] = draw(
                st.sampled_from(
                    [
                        b";",
                        b",",
                        b"\r\n",
                        b"\n",
                        b" ",
                        b'"',
                        b"<",
                        b">",
                        b":",
                        b"=",
                        b"\x00",
                        b"\xff",
                        b"%",
                        b"[",
                        b"\\",
                        b"\r\n ",
                        "\u00b2".encode(),
                        b"9" * 12,
                    ]
                )
            )
        elif kind == "delete" and data:
            del data[pos : pos + draw(st.integers(1, 8))]
        elif kind == "truncate":
            del data[pos:]
        elif kind == "dup":
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 20))]
    return bytes(data)


@given(mutated())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_messages(data: bytes) -> None:
    _parse_or_parse_error(data)


_TYPED_NAMES = [
    "Via",
    "Contact",
    "Route",
    "Expires",
    "Allow",
    "WWW-Authenticate",
    "Authorization",
    "Event",
    "Subscription-State",
    "Refer-To",
    "RSeq",
    "RAck",
    "Reason",
    "Timestamp",
    "Content-Type",
    "Accept",
    "Require",
    "Min-Expires",
]
_TYPED_PIECES = st.sampled_from(
    [
        "sip:a@b",
        "<sip:a@b>",
        ";",
        ",",
        "=",
        '"',
        "\\",
        " ",
        "1",
        "0.5",
        "Digest",
        "x",
        "tag",
        "expires",
        "rport",
        "ttl",
        "cause",
        "retry-after",
        "q",
        "\u00b2",
        "\u0663",
        "/",
        "*",
        "%",
    ]
)


@given(
    st.lists(
        st.tuples(st.sampled_from(_TYPED_NAMES), st.lists(_TYPED_PIECES, max_size=8).map("".join)),
        max_size=4,
    )
)
@SETTINGS
def test_typed_views_of_odd_values(extra: list[tuple[str, str]]) -> None:
    head, _, _ = _SEED_RESPONSE.partition(b"Content-Length")
    lines = b"".join(f"{n}: {v}\r\n".encode() for n, v in extra)
    _parse_or_parse_error(head + lines + b"Content-Length: 0\r\n\r\n")


_PARAM_HEADERS = {
    "Via": "SIP/2.0/UDP h.example.com",
    "Contact": "<sip:a@b>",
    "Subscription-State": "active",
    "Reason": "SIP",
    "Event": "presence",
    "Content-Type": "text/plain",
}
_ODD_VALUES = st.one_of(
    st.sampled_from(["1", "0", "0.5", "\u00b2", "\u0663", "1\u00b2", "99999999999999999999"]),
    st.text(_TOKEN_ALPHABET + "\u00b2\u0663\u00e9", min_size=1, max_size=6),
)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(sorted(_PARAM_HEADERS)),
            st.lists(
                st.tuples(
                    st.sampled_from(
                        [
                            "rport",
                            "ttl",
                            "expires",
                            "retry-after",
                            "cause",
                            "q",
                            "id",
                            "reason",
                            "text",
                            "branch",
                            "received",
                        ]
                    ),
                    _ODD_VALUES,
                ),
                max_size=3,
            ),
        ),
        min_size=1,
        max_size=3,
    )
)
@SETTINGS
def test_typed_views_of_odd_parameters(extra: list[tuple[str, list[tuple[str, str]]]]) -> None:
    """Numeric parameters holding non-ASCII digits ('\u00b2'.isdigit() is True) ..."""
    head, _, _ = _SEED_RESPONSE.partition(b"Content-Length")
    lines = b"".join(
        (
            f"{name}: {_PARAM_HEADERS[name]}" + "".join(f";{k}={v}" for k, v in params) + "\r\n"
        ).encode()
        for name, params in extra
    )
    _parse_or_parse_error(head + lines + b"Content-Length: 0\r\n\r\n")


@given(st.lists(st.binary(max_size=60), max_size=8), st.integers(50, 400))
@SETTINGS
def test_stream_parser_never_raises_on_garbage(chunks: list[bytes], max_size: int) -> None:
    parser = StreamParser(max_size=max_size)
    for chunk in chunks:
        parser.feed(chunk)
        assert parser.buffered <= max_size + len(chunk) + 4


@given(st.lists(mutated(), min_size=1, max_size=3), st.data())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_stream_parser_never_raises_on_mutated_messages(
    messages: list[bytes], data: st.DataObject
) -> None:
    stream = b"".join(messages)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    parser = StreamParser()
    start = 0
    for cut in [*cuts, len(stream)]:
        parser.feed(stream[start:cut])
        start = cut


@given(st.lists(requests(), min_size=1, max_size=3), st.data())
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_stream_parser_frames_generated_messages(
    messages: list[Request], data: st.DataObject
) -> None:
    stream = b"".join(bytes(m) for m in messages)
    assume(len(stream) < 60000)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=5)))
    parser = StreamParser()
    out: list[object] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        out.extend(parser.feed(stream[start:cut]))
        start = cut
    assert out == messages
