"""Requests and responses: building, replying, the Headers API, serialising, typed views."""

from __future__ import annotations

import pytest

from sipwire import (
    Address,
    CSeq,
    Headers,
    LocalProtocolError,
    ParseError,
    Request,
    Response,
    SipUri,
    Via,
    parse_message,
    parse_uri,
)
from sipwire.message import Challenge, MediaType

INVITE_HEADERS = [
    ("Via", "SIP/2.0/UDP a.example.com;branch=z9hG4bK1"),
    ("Via", "SIP/2.0/TCP b.example.com:5070;branch=z9hG4bK2;received=192.0.2.4"),
    ("Record-Route", "<sip:p1.example.com;lr>"),
    ("Max-Forwards", "70"),
    ("From", '"Alice" <sip:alice@example.com>;tag=ft'),
    ("To", "<sip:bob@example.com>"),
    ("Call-ID", "c1@example.com"),
    ("CSeq", "1 INVITE"),
    ("Contact", "<sip:alice@192.0.2.1>"),
    ("Subject", "hi"),
]


def invite(body: bytes = b"") -> Request:
    return Request("INVITE", "sip:bob@example.com", headers=INVITE_HEADERS, body=body)


HEAD = (
    b"OPTIONS sip:bob@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP h.example.com;branch=z9hG4bKx\r\n"
    b"From: <sip:alice@example.com>;tag=1\r\n"
    b"To: <sip:bob@example.com>\r\n"
    b"Call-ID: x@h\r\n"
    b"CSeq: 1 OPTIONS\r\n"
)


def parse_with(extra: bytes) -> Request:
    message = parse_message(HEAD + extra + b"Content-Length: 0\r\n\r\n")
    assert isinstance(message, Request)
    return message


# -- building -------------------------------------------------------------------


def test_build_request() -> None:
    r = invite(b"v=0\r\n")
    assert r.method == "INVITE"
    assert r.uri == SipUri("example.com", "bob")
    assert r.version == "SIP/2.0"
    assert r.is_request
    assert r.body == b"v=0\r\n"
    assert r.cseq == CSeq(1, "INVITE")
    assert r.max_forwards == 70
    assert r.call_id == "c1@example.com"
    assert r.from_.display_name == "Alice"
    assert r.to.tag is None
    assert repr(r) == "<Request INVITE sip:bob@example.com>"
    data = bytes(r)
    assert data.startswith(b"INVITE sip:bob@example.com SIP/2.0\r\nVia: ")
    assert data.endswith(b"Subject: hi\r\nContent-Length: 5\r\n\r\nv=0\r\n")


def test_build_request_from_mapping_and_objects() -> None:
    r = Request(
        "OPTIONS",
        parse_uri("sip:bob@example.com"),
        headers={
            "Via": Via("UDP", "192.0.2.1", 5060, {"branch": "z9hG4bKabc", "rport": None}),
            "From": Address(SipUri("example.com", "alice"), "A", {"tag": "t"}),
            "To": Address(SipUri("example.com", "bob")),
            "Call-ID": "id",
            "CSeq": CSeq(7, "OPTIONS"),
            "Max-Forwards": 70,
        },
        body="text",
    )
    assert r.headers.get("Via") == "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc;rport"
    assert r.headers.get("From") == '"A" <sip:alice@example.com>;tag=t'
    assert r.headers.get("Max-Forwards") == "70"
    assert r.body == b"text"
    again = parse_message(bytes(r))
    assert isinstance(again, Request)
    assert again.top_via is not None and again.top_via.wants_rport
    assert again.cseq == CSeq(7, "OPTIONS")


def test_positional_body_is_kept() -> None:
    """Request(method, uri, headers, body) and Response(status, reason, headers, body)."""
    r = Request("MESSAGE", "sip:b@example.com", [("To", "<sip:b@example.com>")], b"hello")
    assert r.body == b"hello"
    s = Response(200, "OK", [("To", "<sip:b@example.com>")], b"hello")
    assert s.body == b"hello"


def test_uri_setter() -> None:
    r = parse_with(b"")
    r.uri = "sip:carol@example.com"
    assert bytes(r).startswith(b"OPTIONS sip:carol@example.com SIP/2.0\r\n")


def test_request_uri_text_is_kept_until_changed() -> None:
    data = HEAD.replace(b"sip:bob@example.com SIP", b"sip:%62ob@example.com SIP")
    r = parse_message(data + b"Content-Length: 0\r\n\r\n")
    assert isinstance(r, Request)
    assert bytes(r).startswith(b"OPTIONS sip:%62ob@example.com SIP/2.0")
    assert r.uri == parse_uri("sip:bob@example.com")


def test_build_response() -> None:
    r = Response(180)
    assert r.reason == "Ringing"
    assert not r.is_request
    assert r.is_provisional and not r.is_final
    assert r.status_class == 1
    assert repr(r) == "<Response 180 Ringing>"
    assert Response(299).reason == "OK"  # the class's phrase for an unknown code
    assert Response(486, "").reason == ""
    assert Response(603).is_final
    assert bytes(Response(200, "Fine")).startswith(b"SIP/2.0 200 Fine\r\n")


@pytest.mark.parametrize("status", [0, 99, 700, 1000])
def test_response_status_out_of_range(status: int) -> None:
    with pytest.raises(LocalProtocolError):
        Response(status)


# -- reply (§8.2.6.2) ---------------------------------------------------------------


@pytest.mark.parametrize("status", [100, 101, 180, 200, 299, 300, 404, 503, 699])
def test_reply_copies_headers(status: int) -> None:
    req = invite()
    resp = req.reply(status, to_tag="tt")
    expected = ["via", "via", "from", "to", "call-id", "cseq"]
    if 101 <= status <= 299:
        expected.insert(2, "record-route")
    assert resp.headers.keys() == expected
    assert resp.headers.get_all("via") == req.headers.get_all("via")
    assert resp.headers.get("from") == req.headers.get("from")
    assert resp.call_id == req.call_id
    assert resp.cseq == req.cseq
    assert resp.to.tag == "tt"
    assert resp.to.uri == req.to.uri
    assert "contact" not in resp.headers and "subject" not in resp.headers
    assert resp.status == status


def test_reply_keeps_an_existing_to_tag() -> None:
    req = invite()
    req.headers.set("To", "<sip:bob@example.com>;tag=old")
    assert req.reply(200, to_tag="new").to.tag == "old"
    assert req.reply(200).to.tag == "old"


def test_reply_without_to_tag_leaves_to_alone() -> None:
    req = invite()
    assert req.reply(100).headers.get("To") == "<sip:bob@example.com>"


def test_reply_extra_headers_reason_and_body() -> None:
    req = invite()
    resp = req.reply(200, "Fine", headers={"Contact": "<sip:bob@192.0.2.9>"}, body="x")
    assert resp.reason == "Fine"
    assert resp.headers.keys()[-1] == "contact"
    assert resp.body == b"x"
    assert bytes(resp).endswith(b"Content-Length: 1\r\n\r\nx")


def test_reply_does_not_share_state_with_the_request() -> None:
    req = invite()
    resp = req.reply(180, to_tag="t")
    resp.headers.pop_first_value("Via")
    assert len(req.headers.get_all("via")) == 2
    assert req.to.tag is None


def test_reply_round_trips() -> None:
    resp = invite().reply(200, to_tag="t")
    again = parse_message(bytes(resp))
    assert isinstance(again, Response)
    assert again.status == 200
    assert again.to.tag == "t"
    assert [v.branch for v in again.via] == ["z9hG4bK1", "z9hG4bK2"]


# -- Headers ------------------------------------------------------------------------


def test_headers_lookup() -> None:
    h = Headers(
        [
            ("Via", "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2"),
            ("i", "abc"),
            ("t", "<sip:x@y>"),
            ("X-Custom", "one"),
            ("x-custom", "two"),
        ]
    )
    assert h.get("Call-ID") == h.get("CALL-id") == h.get("i") == h.get("I") == "abc"
    assert h.get("To") == "<sip:x@y>"
    assert h.get("Missing") is None
    assert h.get("Missing", "dflt") == "dflt"
    assert "call-id" in h and "I" in h and "Missing" not in h
    assert 5 not in h
    assert h.get("X-CUSTOM") == "one"
    assert h.get_all("x-custom") == ["one", "two"]
    assert h.get_all("v") == ["SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2"]
    assert h.values("Via") == ["SIP/2.0/UDP a;branch=z9hG4bK1", "SIP/2.0/UDP b;branch=z9hG4bK2"]
    assert h.keys() == ["via", "call-id", "to", "x-custom", "x-custom"]
    assert len(h) == 5
    assert list(h)[1] == ("i", "abc")  # names as written
    assert h.lines()[1] == "i: abc"


def test_values_keeps_commas_inside_quotes_and_brackets() -> None:
    h = Headers([("Contact", '"a, b" <sip:x@y;p=1,2>;q=0.5, <sip:z@w>')])
    assert h.values("m") == ['"a, b" <sip:x@y;p=1,2>;q=0.5', "<sip:z@w>"]


def test_headers_add_prepend_set_remove() -> None:
    h = Headers([("Via", "v1"), ("To", "t"), ("Via", "v2")])
    h.add("Route", "<sip:r2>")
    h.prepend("Route", "<sip:r1>")
    h.prepend("Via", "v0")
    h.prepend("Record-Route", "<sip:rr>")
    assert list(h) == [
        ("Record-Route", "<sip:rr>"),
        ("Via", "v0"),
        ("Via", "v1"),
        ("To", "t"),
        ("Via", "v2"),
        ("Route", "<sip:r1>"),
        ("Route", "<sip:r2>"),
    ]
    h.set("v", "only")
    assert list(h)[1] == ("v", "only")
    assert h.get_all("via") == ["only"]
    h.set("Subject", "new")
    assert list(h)[-1] == ("Subject", "new")
    assert h.remove("route") == 2
    assert h.remove("route") == 0
    assert h.setdefault("Expires", 5) == "5"
    assert h.setdefault("Expires", 7) == "5"
    h.add("Max-Forwards", 70)
    assert h.get("max-forwards") == "70"


def test_pop_first_value() -> None:
    h = Headers([("Via", "SIP/2.0/UDP a, SIP/2.0/UDP b"), ("v", "SIP/2.0/UDP c")])
    assert h.pop_first_value("via") == "SIP/2.0/UDP a"
    assert h.get_all("via") == ["SIP/2.0/UDP b", "SIP/2.0/UDP c"]
    assert h.pop_first_value("via") == "SIP/2.0/UDP b"
    assert h.pop_first_value("v") == "SIP/2.0/UDP c"
    assert h.pop_first_value("via") is None
    assert len(h) == 0


def test_headers_equality_and_copy() -> None:
    assert Headers([("i", "x")]) == Headers([("Call-ID", "x")])
    assert Headers({"A": "1"}) == Headers({"a": "1"})
    assert Headers({"A": "1"}) != Headers({"A": "2"})
    assert Headers([("A", "1"), ("B", "2")]) != Headers([("B", "2"), ("A", "1")])
    h = Headers([("A", "1")])
    c = h.copy()
    c.add("B", "2")
    assert len(h) == 1 and len(c) == 2
    assert "Headers(" in repr(h)


def test_typed_cache_is_dropped_on_change() -> None:
    m = parse_with(b"Expires: 5\r\nContact: <sip:a@b>\r\n")
    assert m.call_id == "x@h"
    assert m.expires == 5
    assert len(m.contact) == 1
    m.headers.set("i", "new-id")
    assert m.call_id == "new-id"
    m.headers.set("Expires", "10")
    assert m.expires == 10
    m.headers.add("m", "<sip:c@d>")
    assert len(m.contact) == 2
    m.headers.prepend("To", "<sip:z@example.com>;tag=9")
    with pytest.raises(ParseError):
        _ = m.to  # two To headers now
    m.headers.remove("to")
    with pytest.raises(ParseError):
        _ = m.to
    m.headers.set("t", "<sip:z@example.com>;tag=9")
    assert m.to.tag == "9"
    m.headers.pop_first_value("Via")
    assert m.via == []
    assert m.top_via is None


# -- serialisation --------------------------------------------------------------------


def test_content_length_added_and_corrected() -> None:
    r = Request("OPTIONS", "sip:a@b", headers=[("Call-ID", "x")], body=b"abc")
    assert bytes(r).endswith(b"Call-ID: x\r\nContent-Length: 3\r\n\r\nabc")
    r.headers.add("l", "99")
    assert bytes(r).endswith(b"Call-ID: x\r\nl: 3\r\n\r\nabc")
    r.headers.add("Content-Length", "5")
    assert bytes(r).count(b"Content-Length") == 0
    assert bytes(r).count(b"l: 3") == 1
    r.body = b""
    assert bytes(r).endswith(b"l: 0\r\n\r\n")


def test_round_trip_of_parsed_message() -> None:
    data = HEAD + b"Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
    m = parse_message(data)
    assert bytes(m) == data
    assert parse_message(bytes(m)) == m


def test_equality() -> None:
    assert invite() == invite()
    assert invite(b"x") != invite(b"y")
    assert invite() != Response(200)
    assert invite() != "INVITE"
    with pytest.raises(TypeError):
        hash(invite())


# -- parsing details ---------------------------------------------------------------------


def test_header_folding() -> None:
    m = parse_with(b"Subject: a\r\n  b\r\n\tc\r\nX-Empty:\r\n")
    assert m.headers.get("subject") == "a b c"
    assert m.headers.get("x-empty") == ""


def test_bare_lf_line_endings() -> None:
    data = (HEAD + b"Subject: a\r\n b\r\nContent-Length: 3\r\n\r\nabc").replace(b"\r\n", b"\n")
    m = parse_message(data)
    assert m.headers.get("subject") == "a b"
    assert m.body == b"abc"
    assert m.cseq == CSeq(1, "OPTIONS")
    assert b"\r\nSubject: a b\r\n" in bytes(m)


def test_mixed_crlf_in_bare_lf_message() -> None:
    data = HEAD.replace(b"\r\n", b"\n", 2) + b"Content-Length: 0\n\n"
    assert parse_message(data).call_id == "x@h"


def test_leading_crlf_is_skipped() -> None:
    assert parse_message(b"\r\n\r\n" + HEAD + b"Content-Length: 0\r\n\r\n").call_id == "x@h"


def test_body_after_content_length_is_discarded() -> None:
    m = parse_message(HEAD + b"Content-Length: 2\r\n\r\nabcdef")
    assert m.body == b"ab"


def test_no_content_length_body_is_rest_of_datagram() -> None:
    m = parse_message(HEAD + b"\r\nabc\r\n")
    assert m.body == b"abc\r\n"
    assert m.content_length is None


def test_utf8_display_names_and_reason_phrase() -> None:
    m = parse_message(
        HEAD.replace(b"<sip:alice", '"Bj\u00f6rk \u5927" <sip:alice'.encode())
        + b"Content-Length: 0\r\n\r\n"
    )
    assert m.from_.display_name == "Bj\u00f6rk \u5927"
    data = (
        "SIP/2.0 486 Occup\u00e9 ici\r\n".encode()
        + HEAD.split(b"\r\n", 1)[1]
        + b"Content-Length: 0\r\n\r\n"
    )
    resp = parse_message(data)
    assert isinstance(resp, Response)
    assert resp.reason == "Occup\u00e9 ici"
    assert bytes(resp) == data
    built = Response(486, "Besch\u00e4ftigt")
    assert bytes(built).startswith("SIP/2.0 486 Besch\u00e4ftigt\r\n".encode())


def test_invalid_utf8_survives() -> None:
    data = HEAD + b"X-Bin: \xff\xfe\r\nContent-Length: 0\r\n\r\n"
    m = parse_message(data)
    assert bytes(m) == data


def test_address_str_round_trip_with_awkward_display_name() -> None:
    a = Address(SipUri("example.com", "bob"), 'Bob "the" \\ Bu\u00f1uel\x07', {"tag": "x"})
    text = str(a)
    assert text.startswith('"Bob \\"the\\" \\\\ Bu\u00f1uel')
    again = Address.parse(text)
    assert again == a
    assert Address.of("sip:bob@example.com") == Address(SipUri("example.com", "bob"))
    assert Address.of(a) is a
    assert Address.of(SipUri("h")).uri == SipUri("h")
    assert a.with_tag("y").tag == "y" and a.tag == "x"


# -- typed views -----------------------------------------------------------------------


def test_contact_views() -> None:
    m = parse_with(
        b'Contact: <sip:a@b>;q=0.5;expires=99999999999, "x,y" <sip:c@d>;q=2\r\n'
        b"m: sip:e@f;expires=60\r\n"
    )
    first, second, third = m.contact
    assert (first.q, first.expires) == (0.5, 2**32 - 1)
    assert second.display_name == "x,y"
    assert second.q is None  # out of range
    assert third.expires == 60
    assert third.params == {"expires": "60"}
    assert not m.contact_is_wildcard


def test_contact_wildcard() -> None:
    m = parse_with(b"Contact: *\r\nExpires: 0\r\n")
    assert m.contact == []
    assert m.contact_is_wildcard
    assert m.expires == 0
    bad = parse_with(b"Contact: *\r\nContact: <sip:a@b>\r\n")
    with pytest.raises(ParseError):
        _ = bad.contact


def test_no_contact() -> None:
    m = parse_with(b"")
    assert m.contact == []
    assert not m.contact_is_wildcard


def test_route_and_record_route() -> None:
    m = parse_with(
        b"Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n"
        b"Route: <sip:p3.example.com>\r\n"
        b"Record-Route: <sip:r1.example.com;lr>\r\n"
    )
    assert [str(r.uri) for r in m.route] == [
        "sip:p1.example.com;lr",
        "sip:p2.example.com;lr",
        "sip:p3.example.com",
    ]
    assert [isinstance(r.uri, SipUri) and r.uri.lr for r in m.route] == [True, True, False]
    assert [str(r.uri) for r in m.record_route] == ["sip:r1.example.com;lr"]
    assert parse_with(b"").route == []


def test_cseq() -> None:
    assert parse_with(b"").cseq == CSeq(1, "OPTIONS")
    assert str(CSeq(4711, "INVITE")) == "4711 INVITE"
    assert CSeq.parse("  0009 \t INVITE ") == CSeq(9, "INVITE")
    assert CSeq.parse("4294967295 ACK").seq == 2**32 - 1
    for bad in ["4294967296 ACK", "1", "x INVITE", "1 IN VITE", ""]:
        with pytest.raises(ParseError):
            CSeq.parse(bad)


def test_expires_and_min_expires() -> None:
    m = parse_with(b"Expires: 10000000000000000000000\r\nMin-Expires: 60\r\n")
    assert m.expires == 2**32 - 1
    assert m.min_expires == 60
    assert parse_with(b"").expires is None
    with pytest.raises(ParseError):
        _ = parse_with(b"Expires: soon\r\n").expires
    with pytest.raises(ParseError):
        _ = parse_with(b"Expires: -1\r\n").expires


def test_option_tag_lists() -> None:
    m = parse_with(
        b"Allow: INVITE, ACK,OPTIONS\r\nAllow: BYE\r\nSupported: 100rel, timer\r\n"
        b"k: path\r\nRequire: 100rel\r\nUnsupported: foo\r\nProxy-Require: bar\r\n"
    )
    assert m.allow == ["INVITE", "ACK", "OPTIONS", "BYE"]
    assert m.supported == ["100rel", "timer", "path"]
    assert m.require == ["100rel"]
    assert m.unsupported == ["foo"]
    assert m.proxy_require == ["bar"]
    empty = parse_with(b"Allow:\r\nSupported: \r\n")
    assert empty.allow == [] and empty.supported == [] and empty.require == []
    with pytest.raises(ParseError):
        _ = parse_with(b"Require: a b\r\n").require


def test_www_authenticate_several_challenges() -> None:
    m = parse_with(
        b'WWW-Authenticate: Digest realm="atlanta.com", nonce="84a4cc6f", '
        b'qop="auth,auth-int", algorithm=MD5, stale=TRUE, Basic realm="x"\r\n'
        b'WWW-Authenticate: Digest realm="b", domain="sip:ss1.carrier.com", opaque=""\r\n'
    )
    first, second, third = m.www_authenticate
    assert first.is_digest and first.scheme == "Digest"
    assert first.realm == "atlanta.com" and first.nonce == "84a4cc6f"
    assert first.qop_options == ["auth", "auth-int"]
    assert first.algorithm == "MD5"
    assert first.stale
    assert (second.scheme, second.params, second.is_digest) == ("Basic", {"realm": "x"}, False)
    assert third.params == {"realm": "b", "domain": "sip:ss1.carrier.com", "opaque": ""}
    assert third.algorithm == "MD5" and not third.stale and third.qop_options == []
    for c in (first, second, third):
        assert Challenge.parse(str(c)) == c


def test_proxy_authenticate_and_authorization() -> None:
    m = parse_with(
        b'Proxy-Authenticate: Digest realm="a", nonce="n", qop="auth"\r\n'
        b'Authorization: Digest username="bob", realm="biloxi.com", nonce="dcd98b", '
        b'uri="sip:bob@biloxi.com", qop=auth, nc=00000001, cnonce="0a4f113b", '
        b'response="6629fae4", opaque="5ccc069c"\r\n'
        b'Proxy-Authorization: Digest username="a\\"b", realm="r", response="x"\r\n'
    )
    (pa,) = m.proxy_authenticate
    assert pa.qop_options == ["auth"]
    assert 'qop="auth"' in str(pa)  # a challenge quotes its qop
    (cred,) = m.authorization
    assert cred.params["username"] == "bob"
    assert cred.params["uri"] == "sip:bob@biloxi.com"
    assert cred.params["nc"] == "00000001"
    text = str(cred)
    assert "qop=auth," in text and "nc=00000001" in text  # a response names qop unquoted
    assert Challenge.parse(text) == cred
    (pz,) = m.proxy_authorization
    assert pz.params["username"] == 'a"b'
    assert Challenge.parse(str(pz)) == pz
    with pytest.raises(ParseError):
        _ = parse_with(b"Authorization: ,\r\n").authorization


@pytest.mark.parametrize(
    ("text", "blob"),
    [
        ("Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
        ("Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
        ("Bearer abc.def-ghi=", "abc.def-ghi="),
    ],
)
def test_token68_credentials(text: str, blob: str) -> None:
    """RFC 7235 token68 (base64 with '=' padding) is one opaque blob, kept exactly."""
    cred = Challenge.parse(text)
    assert cred.params == {"token68": blob}
    assert str(cred) == text


def test_event_and_subscription_state() -> None:
    m = parse_with(
        b"Event: presence;id=7\r\n"
        b"Subscription-State: Active;expires=600;retry-after=5;reason=timeout\r\n"
    )
    assert m.event is not None
    assert (m.event.package, m.event.id, str(m.event)) == ("presence", "7", "presence;id=7")
    o = parse_with(b"o: dialog\r\n").event
    assert o is not None and o.package == "dialog" and o.id is None
    s = m.subscription_state
    assert s is not None
    assert (s.state, s.expires, s.retry_after, s.reason) == ("active", 600, 5, "timeout")
    assert parse_with(b"").event is None


def test_refer_to() -> None:
    m = parse_with(b"Refer-To: <sip:c@d?Replaces=abc%40x>\r\n")
    assert m.refer_to is not None
    uri = m.refer_to.uri
    assert isinstance(uri, SipUri) and uri.headers == [("Replaces", "abc@x")]
    r = parse_with(b"r: sip:e@f\r\n").refer_to
    assert r is not None and str(r.uri) == "sip:e@f"
    assert parse_with(b"").refer_to is None


def test_rseq_and_rack() -> None:
    m = parse_with(b"RSeq: 988789\r\nRAck: 776656 1 INVITE\r\n")
    assert m.rseq == 988789
    assert m.rack is not None
    assert (m.rack.rseq, m.rack.cseq, m.rack.method) == (776656, 1, "INVITE")
    assert str(m.rack) == "776656 1 INVITE"
    with pytest.raises(ParseError):
        _ = parse_with(b"RAck: 1 INVITE\r\n").rack
    with pytest.raises(ParseError):
        _ = parse_with(b"RSeq: 4294967296\r\n").rseq


def test_reason_header() -> None:
    m = parse_with(
        b'Reason: Q.850;cause=16;text="Terminated", SIP;cause=200;text="Call completed elsewhere"'
        b"\r\n"
    )
    assert [(r.protocol, r.cause, r.text) for r in m.reason_header] == [
        ("Q.850", 16, "Terminated"),
        ("SIP", 200, "Call completed elsewhere"),
    ]
    assert str(m.reason_header[0]) == 'Q.850;cause=16;text="Terminated"'
    assert parse_with(b"").reason_header == []


def test_timestamp() -> None:
    t = parse_with(b"Timestamp: 54.2 0.5\r\n").timestamp
    assert t is not None and (t.value, t.delay, str(t)) == ("54.2", "0.5", "54.2 0.5")
    t = parse_with(b"Timestamp: 54\r\n").timestamp
    assert t is not None and (t.value, t.delay) == ("54", None)
    with pytest.raises(ParseError):
        _ = parse_with(b"Timestamp: soon\r\n").timestamp


def test_content_type_and_accept() -> None:
    m = parse_with(
        b"Content-Type: Application/SDP; charset=UTF-8\r\n"
        b"Accept: application/sdp;level=1, application/*, */*\r\n"
    )
    ct = m.content_type
    assert ct is not None
    assert ct.mime == "application/sdp" and ct.params == {"charset": "UTF-8"}
    assert ct == MediaType("application", "sdp")
    assert [a.mime for a in m.accept] == ["application/sdp", "application/*", "*/*"]
    assert m.accept[0].params == {"level": "1"}
    assert all(a.matches(ct) for a in m.accept)
    assert not MediaType("text", "*").matches(ct)
    c = parse_with(b"c: text/plain\r\n").content_type
    assert c is not None and c.mime == "text/plain"
    assert parse_with(b"Accept:\r\n").accept == []
    with pytest.raises(ParseError):
        _ = parse_with(b"Content-Type: text\r\n").content_type


def test_user_agent_and_server() -> None:
    m = parse_with(b"User-Agent: Softphone Beta1.5\r\nServer: HomeServer v2\r\n")
    assert m.user_agent == "Softphone Beta1.5"
    assert m.server == "HomeServer v2"
    assert parse_with(b"").user_agent is None


def test_content_length_and_max_forwards_views() -> None:
    m = parse_with(b"Max-Forwards: 0070\r\n")
    assert m.max_forwards == 70
    assert m.content_length == 0


def test_missing_mandatory_headers_raise_on_built_messages() -> None:
    r = Request("OPTIONS", "sip:a@b")
    for name in ("from_", "to", "call_id", "cseq"):
        with pytest.raises(ParseError):
            getattr(r, name)
    assert r.via == [] and r.top_via is None and r.max_forwards is None


# -- parse errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\r\n\r\n",
        HEAD,  # no empty line
        HEAD.replace(b"Call-ID: x@h\r\n", b"") + b"\r\n",
        HEAD.replace(b"CSeq: 1 OPTIONS", b"CSeq: x") + b"\r\n",
        HEAD + b"Bad Header: x\r\n\r\n",
        HEAD + b"NoColon\r\n\r\n",
        HEAD + b"Max-Forwards: 256\r\n\r\n",
        HEAD + b"Content-Length: 5\r\n\r\nab",
        HEAD + b"Content-Length: x\r\n\r\n",
        HEAD + b"Call-ID: y\r\n\r\n",
        HEAD + b"X: a\rb\r\n\r\n",
        b"OPTIONS  sip:a@b SIP/2.0\r\n" + HEAD.split(b"\r\n", 1)[1] + b"\r\n",
        b"SIP/2.0 20 OK\r\n" + HEAD.split(b"\r\n", 1)[1] + b"\r\n",
        b"SIP/2.0 099 Low\r\n" + HEAD.split(b"\r\n", 1)[1] + b"\r\n",
        HEAD.replace(b"Via: SIP/2.0/UDP h.example.com;branch=z9hG4bKx\r\n", b"") + b"\r\n",
    ],
)
def test_parse_errors(data: bytes) -> None:
    with pytest.raises(ParseError) as info:
        parse_message(data)
    assert info.value.status == 400


def test_max_size() -> None:
    data = HEAD + b"Content-Length: 0\r\n\r\n"
    with pytest.raises(ParseError) as info:
        parse_message(data, max_size=len(data) - 1)
    assert info.value.status == 513
    assert parse_message(data, max_size=len(data)).call_id == "x@h"


def test_version_is_kept() -> None:
    m = parse_message(HEAD.replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1) + b"\r\n")
    assert m.version == "SIP/3.0"
    assert bytes(m).startswith(b"OPTIONS sip:bob@example.com SIP/3.0\r\n")


@pytest.mark.parametrize(
    ("header", "read"),
    [
        ("Via: SIP/2.0/UDP h;branch=z9hG4bK1;rport=\u00b2", "via.rport"),
        ("Via: SIP/2.0/UDP h;branch=z9hG4bK1;ttl=\u00b2", "via.ttl"),
        ("Contact: <sip:a@b>;expires=\u00b2", "contact.expires"),
        ("Subscription-State: active;expires=\u00b2", "subscription_state.expires"),
        ("Subscription-State: active;retry-after=\u00b2", "subscription_state.retry_after"),
        ("Reason: SIP;cause=\u00b2", "reason_header.cause"),
    ],
)
def test_unicode_digit_parameters_raise_nothing_but_parse_error(header: str, read: str) -> None:
    """'\u00b2'.isdigit() is True, int('\u00b2') raises ValueError: want ParseError or None."""
    data = HEAD.replace(b"Via: SIP/2.0/UDP h.example.com;branch=z9hG4bKx\r\n", b"")
    if not header.startswith("Via"):
        data += b"Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
    m = parse_message(data + header.encode() + b"\r\nContent-Length: 0\r\n\r\n")
    prop, attr = read.split(".")
    value = getattr(m, prop)
    item = value[0] if isinstance(value, list) else value
    try:
        result = getattr(item, attr)
    except ParseError:
        return
    assert result is None
