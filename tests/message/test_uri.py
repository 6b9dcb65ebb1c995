"""URIs: SIP/SIPS (RFC 3261 §19.1), tel (RFC 3966), other schemes; escaping and equality."""

from __future__ import annotations

import pytest

from sipwire import AbsoluteUri, ParseError, SipUri, TelUri, parse_uri
from sipwire.message.uri import escape, to_uri, unescape


def sip(text: str) -> SipUri:
    uri = parse_uri(text)
    assert isinstance(uri, SipUri)
    return uri


def tel(text: str) -> TelUri:
    uri = parse_uri(text)
    assert isinstance(uri, TelUri)
    return uri


# -- parsing --------------------------------------------------------------------


def test_full_sip_uri() -> None:
    u = sip(
        "sip:alice:secretword@atlanta.com:5061;transport=TCP;lr;maddr=239.255.255.1"
        "?subject=project%20x&priority=urgent"
    )
    assert u.scheme == "sip" and not u.secure
    assert u.user == "alice"
    assert u.password == "secretword"
    assert u.host == "atlanta.com"
    assert u.port == 5061
    assert u.host_port == "atlanta.com:5061"
    assert u.params == {"transport": "TCP", "lr": None, "maddr": "239.255.255.1"}
    assert u.transport == "tcp"
    assert u.lr
    assert u.maddr == "239.255.255.1"
    assert u.headers == [("subject", "project x"), ("priority", "urgent")]


def test_minimal_sip_uri() -> None:
    u = sip("sip:atlanta.com")
    assert (u.user, u.password, u.host, u.port, u.params, u.headers) == (
        None,
        None,
        "atlanta.com",
        None,
        {},
        [],
    )
    assert u.transport is None and not u.lr and u.maddr is None


def test_sips_and_scheme_case() -> None:
    u = sip("SIPS:Bob@Biloxi.example.com")
    assert u.scheme == "sips" and u.secure
    assert u.user == "Bob"  # user keeps its case
    assert u.host == "Biloxi.example.com"
    assert str(u) == "sips:Bob@Biloxi.example.com"


def test_param_names_are_lower_cased_values_kept() -> None:
    u = sip("sip:h;Transport=UDP;FOO=Bar")
    assert u.params == {"transport": "UDP", "foo": "Bar"}
    assert u.transport == "udp"


def test_telephone_subscriber_user() -> None:
    u = sip("sip:+1-212-555-1212:1234@gateway.com;user=phone")
    assert u.user == "+1-212-555-1212"
    assert u.password == "1234"
    assert u.params == {"user": "phone"}


def test_empty_password() -> None:
    u = sip("sip:user:@host")
    assert u.password == ""
    assert str(u) == "sip:user:@host"


def test_user_may_contain_semicolon_and_question_mark() -> None:
    u = sip("sip:user;par=u%40example.net@example.com")
    assert u.user == "user;par=u@example.net"
    assert u.params == {}
    assert sip("sip:a?b@h").user == "a?b"


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("sip:[2001:db8::1]", "[2001:db8::1]", None),
        ("sip:u@[2001:db8::1]:5060", "[2001:db8::1]", 5060),
        ("sip:[::ffff:192.0.2.1]:1", "[::ffff:192.0.2.1]", 1),
        ("sip:[2001:db8::10:5070]", "[2001:db8::10:5070]", None),
        ("sip:192.0.2.1:65535", "192.0.2.1", 65535),
        ("sip:a.b-c.example.com.", "a.b-c.example.com.", None),
        ("sip:x", "x", None),
    ],
)
def test_hosts(text: str, host: str, port: int | None) -> None:
    u = sip(text)
    assert (u.host, u.port) == (host, port)
    assert sip(str(u)) == u


def test_ipv6_equality_uses_the_address() -> None:
    a = sip("sip:[2001:DB8:0::1]")
    b = sip("sip:[2001:db8::1]")
    assert a == b
    assert hash(a) == hash(b)
    assert sip("sip:[2001:db8::1]") != sip("sip:[2001:db8::2]")


# -- escaping -------------------------------------------------------------------


def test_unescaping_of_every_component() -> None:
    u = sip("sip:%61l%69ce:p%40ss@h;n%61me=v%61lue%25%34%31?S%75bject=a%20b")
    assert u.user == "alice"
    assert u.password == "p@ss"
    assert u.params == {"name": "value%41"}  # unescaped once only
    assert u.headers == [("Subject", "a b")]


def test_escape_and_unescape_helpers() -> None:
    assert unescape("a%20b%25") == "a b%"
    assert unescape("plain") == "plain"
    assert unescape("%ff") == "\udcff"
    assert escape("a b@c", "") == "a%20b%40c"
    assert escape("\udcff", "") == "%FF"
    assert escape("\u00e9", "") == "%C3%A9"


def test_serialising_escapes_what_the_grammar_requires() -> None:
    u = SipUri(
        "example.com",
        user="a b@c;d:e%f\u00e9",
        password="p@ss:w",
        params={"x y": "v;w=z", "lr": None},
        headers=[("Subject", "a b&c=d"), ("h", "?")],
    )
    text = str(u)
    assert text == (
        "sip:a%20b%40c;d%3Ae%25f%C3%A9:p%40ss%3Aw@example.com;x%20y=v%3Bw%3Dz;lr"
        "?Subject=a%20b%26c%3Dd&h=?"
    )
    again = sip(text)
    assert again == u
    assert again.user == u.user
    assert again.password == u.password
    assert again.params == u.params
    assert again.headers == u.headers


def test_non_utf8_escape_survives() -> None:
    u = sip("sip:%ff@h")
    assert u.user == "\udcff"
    assert str(u) == "sip:%FF@h"
    assert sip(str(u)) == u


def test_escaped_nul_is_kept() -> None:
    u = sip("sip:null-%00-null@example.com")
    assert u.user == "null-\x00-null"
    assert str(u) == "sip:null-%00-null@example.com"


def test_escaped_and_plain_spellings_are_equal() -> None:
    assert sip("sip:%75ser@example.com") == sip("sip:user@example.com")
    assert sip("sip:h;transport=%54CP").transport == "tcp"


# -- RFC 3261 §19.1.4 -----------------------------------------------------------

EQUAL = [
    ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
    ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"),
    (
        "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
        "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
    ),
    (
        "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
        "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
    ),
    # more from the rules themselves
    ("sip:bob@biloxi.com;lr", "sip:bob@BILOXI.COM;LR"),
    ("sips:bob@biloxi.com", "SIPS:bob@biloxi.com"),
    ("sip:bob@biloxi.com;user=phone", "sip:bob@biloxi.com;USER=Phone"),
]

NOT_EQUAL = [
    # different usernames
    ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
    # can resolve to different ports
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
    # can resolve to different transports
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
    # can resolve to different port and transports
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
    # different header component
    ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
    # even though that's what phone21.boxesbybob.com resolves to
    ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
    # more from the rules themselves
    ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"),
    ("sips:bob@biloxi.com", "sip:bob@biloxi.com"),
    ("sip:alice:pw@atlanta.com", "sip:alice@atlanta.com"),
    ("sip:alice:pw@atlanta.com", "sip:alice:PW@atlanta.com"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com;user=phone"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com;ttl=1"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com;method=INVITE"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com;maddr=192.0.2.1"),
    ("sip:bob@biloxi.com;transport=tcp", "sip:bob@biloxi.com;transport=udp"),
    ("sip:carol@chicago.com?subject=X", "sip:carol@chicago.com?subject=x"),
    ("sip:carol@chicago.com?a=1", "sip:carol@chicago.com?a=1&b=2"),
    ("sip:bob@biloxi.com:5060", "sip:bob@biloxi.com:5061"),
]


@pytest.mark.parametrize(("a", "b"), EQUAL)
def test_equal_uris(a: str, b: str) -> None:
    ua, ub = parse_uri(a), parse_uri(b)
    assert ua == ub
    assert ub == ua
    assert hash(ua) == hash(ub)
    assert len({ua, ub}) == 1


@pytest.mark.parametrize(("a", "b"), NOT_EQUAL)
def test_not_equal_uris(a: str, b: str) -> None:
    ua, ub = parse_uri(a), parse_uri(b)
    assert ua != ub
    assert ub != ua
    assert not ua == ub  # noqa: SIM201


def test_header_names_compare_case_insensitively() -> None:
    assert sip("sip:u@h?Subject=x") == sip("sip:u@h?subject=x")


def test_different_kinds_are_never_equal() -> None:
    assert sip("sip:+1234@h") != tel("tel:+1234")
    assert parse_uri("tel:+1234") != AbsoluteUri("tel", "+1234")
    assert sip("sip:h") != "sip:h"


def test_uris_work_as_dict_keys() -> None:
    bindings = {sip("sip:%61lice@atlanta.com;transport=TCP"): 1}
    assert bindings[sip("sip:alice@AtLanTa.CoM;Transport=tcp;foo=bar")] == 1


# -- tel URIs (RFC 3966) ----------------------------------------------------------


def test_global_tel() -> None:
    u = tel("tel:+1-201-555-0123")
    assert u.is_global
    assert u.number == "+1-201-555-0123"
    assert u.digits == "+12015550123"
    assert u.params == {}
    assert u.scheme == "tel"
    assert str(u) == "tel:+1-201-555-0123"


def test_local_tel_with_context() -> None:
    u = tel("tel:7042;phone-context=example.com")
    assert not u.is_global
    assert u.params == {"phone-context": "example.com"}
    assert str(u) == "tel:7042;phone-context=example.com"
    assert tel("tel:863-1234;phone-context=+1-914-555").digits == "8631234"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("tel:+1-201-555-0123", "tel:+1.201.555.0123"),
        ("tel:+1-201-555-0123", "tel:+1(201)5550123"),
        (
            "tel:+12015550123;PHONE-CONTEXT=Example.com",
            "tel:+12015550123;phone-context=example.com",
        ),
        ("tel:863-1234;phone-context=+1-914-555", "tel:8631234;phone-context=+1-914-555"),
        ("tel:7042;a=1;b=2", "tel:7042;b=2;a=1"),
        ("tel:ABC*#;phone-context=x", "tel:abc*#;phone-context=x"),
        ("TEL:+1234", "tel:+1234"),
    ],
)
def test_tel_equal(a: str, b: str) -> None:
    assert tel(a) == tel(b)
    assert hash(tel(a)) == hash(tel(b))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("tel:+1234", "tel:1234"),
        ("tel:+1-201-555-0123;ext=1", "tel:+1-201-555-0123"),
        ("tel:7042;phone-context=a.example.com", "tel:7042;phone-context=b.example.com"),
        ("tel:+1234", "tel:+1235"),
    ],
)
def test_tel_not_equal(a: str, b: str) -> None:
    assert tel(a) != tel(b)


# -- other schemes ------------------------------------------------------------------


def test_absolute_uris() -> None:
    u = parse_uri("URN:service:sos")
    assert u == AbsoluteUri("urn", "service:sos")
    assert str(u) == "urn:service:sos"
    assert hash(u) == hash(AbsoluteUri("urn", "service:sos"))
    assert parse_uri("http://www.example.com/a?b=c") == AbsoluteUri(
        "http", "//www.example.com/a?b=c"
    )
    assert parse_uri("soap.beep://192.0.2.103:3002").scheme == "soap.beep"
    assert parse_uri("isbn:2983792873") != parse_uri("isbn:2983792874")


# -- str() round trips ------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "sip:alice@atlanta.com",
        "sips:alice:secret@atlanta.com:5061",
        "sip:atlanta.com;transport=tcp;lr",
        "sip:u@[2001:db8::1]:5060;maddr=[2001:db8::2]",
        "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
        "sip:user;par=u%40example.net@example.com",
        "sip:%00@host5.example.com",
        "sip:+1-212-555-1212:1234@gateway.com;user=phone",
        "tel:+1-201-555-0123",
        "tel:7042;phone-context=example.com",
        "urn:service:sos",
        "isbn:2983792873",
    ],
)
def test_str_round_trip(text: str) -> None:
    u = parse_uri(text)
    assert str(u) == text
    assert parse_uri(str(u)) == u
    assert repr(u).startswith(type(u).__name__ + "(")


def test_to_uri_and_sipuri_parse() -> None:
    u = to_uri("sip:bob@example.com")
    assert to_uri(u) is u
    assert SipUri.parse("sip:bob@example.com") == u
    with pytest.raises(ParseError) as info:
        SipUri.parse("tel:+1234")
    assert info.value.status == 416


# -- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "nocolon",
        ":foo",
        "sip:",
        "sip:user@",
        "sip:host:99999",
        "sip:host:",
        "sips:host:-1",
        "sip:a b@host",
        "sip:user@host@host",
        "sip:user@host;=x",
        "sip:host;a=b;",
        "sip:h;;x",
        "sip:host;lr=",
        "sip:host?",
        "sip:host?a",
        "sip:host?a=b&",
        "sip:[::1",
        "sip:-host",
        "sip:host-",
        "sip:2001:db8::10",
        "sip:%zz@host",
        "sip:u@h;p=%",
        "sip:u@h;p=%4",
        "sip:<u@h>",
        "tel:",
        "tel:+",
        "tel:+1;;a",
        "tel:+12 34",
        "http:",
        "ht tp:x",
        "1sip:x",
        "urn:has space",
        "urn:has<angle",
    ],
)
def test_malformed_uris_raise_parse_error(text: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_uri(text)
    assert info.value.status == 400
