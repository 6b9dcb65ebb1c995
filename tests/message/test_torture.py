"""RFC 4475 and RFC 5118 torture messages against the parser and the request checks.

The corpus lives outside the repository (``$SIPWIRE_TORTURE_DIR``, else
``<repo>/../shared/torture``); see its README for the manifest fields.

Each message gets an *outcome* compared with the manifest's ``expect`` /
``alt_expect``:

* ``parse_message`` raises ParseError -> ``ignore-response`` for a status
  line, ``respond-505`` for status 505, else ``reject-<status>``;
* it parses -> a response goes through ``check_response`` (a reason means
  ``ignore-response``), a request through ``check_request`` with the role
  the manifest names (a 400 Rejection is ``reject-400``, others
  ``respond-<status>``, ``None`` is ``parse``).

The role policies describe real elements: a UA and a registrar that
implement every standard method, and a proxy, which forwards any method
(``methods=None``). Where the manifest says ``parse`` but names a role that
answers with an error (intmeth: a UAS answers 501), the ``parse`` outcome is
what every *other* element does (a proxy forwards intmeth, an endpoint
processes zeromf), and the role's answer is asserted separately.
Whether ``Policy(role=...)`` alone picks sensible methods is tested in
test_validate.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sipwire import ParseError, parse_message
from sipwire.message import Request, Response
from sipwire.message.address import Address
from sipwire.message.uri import AbsoluteUri, SipUri
from sipwire.message.validate import KNOWN_METHODS, Policy, Role, check_request, check_response

_env = os.environ.get("SIPWIRE_TORTURE_DIR")
TORTURE_DIR = (
    Path(_env) if _env else Path(__file__).resolve().parents[2] / ".." / "shared" / "torture"
)

if not (TORTURE_DIR / "rfc4475" / "manifest.json").is_file():
    pytest.skip(
        "RFC 4475/5118 torture corpus not found: set SIPWIRE_TORTURE_DIR to the folder holding "
        f"rfc4475/ and rfc5118/ (looked in {TORTURE_DIR})",
        allow_module_level=True,
    )

Entry = dict[str, Any]


def _load(rfc: str) -> list[Entry]:
    entries: list[Entry] = json.loads(
        (TORTURE_DIR / rfc / "manifest.json").read_text(encoding="utf-8")
    )
    for entry in entries:
        entry["rfc"] = rfc
    return entries


RFC4475 = _load("rfc4475")
RFC5118 = _load("rfc5118")
ALL = RFC4475 + RFC5118
BY_NAME = {e["name"]: e for e in ALL}


def wire_bytes(entry: Entry) -> bytes:
    """The message as it travels: the wire_file variant where there is one."""
    name: str = entry.get("wire_file") or entry["file"]
    rfc: str = entry["rfc"]
    return (TORTURE_DIR / rfc / name).read_bytes()


def raw_bytes(entry: Entry) -> bytes:
    rfc: str = entry["rfc"]
    name: str = entry["file"]
    return (TORTURE_DIR / rfc / name).read_bytes()


def load(name: str) -> Request | Response:
    return parse_message(wire_bytes(BY_NAME[name]))


def load_request(name: str) -> Request:
    message = load(name)
    assert isinstance(message, Request)
    return message


def load_response(name: str) -> Response:
    message = load(name)
    assert isinstance(message, Response)
    return message


ROLES = {None: Role.UAS, "uas": Role.UAS, "proxy": Role.PROXY, "registrar": Role.REGISTRAR}


def policy_for(role: Role) -> Policy:
    if role is Role.PROXY:
        return Policy(role=role, methods=None)
    # mpart01 is a MESSAGE with a multipart body that must be accepted: the UA
    # here understands multipart/mixed (invut's unknown type still gets 415).
    return Policy(role=role, methods=KNOWN_METHODS, accept=("application/sdp", "multipart/mixed"))


def main_role(entry: Entry) -> Role:
    role = ROLES[entry["response_role"]]
    response = entry["response"]
    if entry["expect"] == "parse" and response is not None and response >= 300:
        # The named role answers with an error (asserted in test_role_response);
        # every other element processes the message.
        return Role.UAS if role is Role.PROXY else Role.PROXY
    return role


def outcome(data: bytes, policy: Policy) -> str:
    try:
        message = parse_message(data)
    except ParseError as err:
        if data.startswith(b"SIP/"):
            return "ignore-response"
        if err.status == 505:
            return "respond-505"
        return f"reject-{err.status}"
    if isinstance(message, Response):
        return "ignore-response" if check_response(message) is not None else "parse"
    rejection = check_request(message, policy)
    if rejection is None:
        return "parse"
    if rejection.status == 400:
        return "reject-400"
    return f"respond-{rejection.status}"


def _ids(entries: list[Entry]) -> list[str]:
    return [e["name"] for e in entries]


def test_corpus_sizes() -> None:
    assert len(RFC4475) == 49
    assert len(RFC5118) == 12


@pytest.mark.parametrize("entry", ALL, ids=_ids(ALL))
def test_outcome(entry: Entry) -> None:
    got = outcome(wire_bytes(entry), policy_for(main_role(entry)))
    allowed = [entry["expect"], *entry["alt_expect"]]
    assert got in allowed, f"{entry['name']}: got {got}, expected one of {allowed}"


ROLE_ENTRIES = [
    e for e in ALL if e["expect"] == "parse" and e["response"] is not None and e["response_role"]
]


@pytest.mark.parametrize("entry", ROLE_ENTRIES, ids=_ids(ROLE_ENTRIES))
def test_role_response(entry: Entry) -> None:
    """intmeth/esc02 501 at a UAS, zeromf 483 at a proxy, cparam01 200 at a registrar ..."""
    request = parse_message(wire_bytes(entry))
    assert isinstance(request, Request)
    rejection = check_request(request, policy_for(ROLES[entry["response_role"]]))
    if entry["response"] == 200:
        assert rejection is None
    else:
        assert rejection is not None
        assert rejection.status == entry["response"]


def test_role_entries_cover_the_manifest() -> None:
    assert {e["name"] for e in ROLE_ENTRIES} == {
        "intmeth",
        "esc02",
        "unksm2",
        "zeromf",
        "cparam01",
        "cparam02",
        "regescrt",
    }


PARSED = [e for e in ALL if e["expect"] == "parse" or "parse" in e["alt_expect"]]


def _parses(entry: Entry) -> Request | Response | None:
    try:
        return parse_message(wire_bytes(entry))
    except ParseError:
        return None


@pytest.mark.parametrize("entry", ALL, ids=_ids(ALL))
def test_round_trip(entry: Entry) -> None:
    message = _parses(entry)
    if message is None:
        return
    again = parse_message(bytes(message))
    if message.content_length is None:
        # Serialising adds Content-Length: compare after one normalising pass.
        assert again.content_length == len(message.body)
        assert parse_message(bytes(again)) == again
        assert again.body == message.body
    else:
        assert again == message
    assert bytes(parse_message(bytes(again))) == bytes(again)


@pytest.mark.parametrize("name", [e["name"] for e in ALL if e["expect"] == "parse"])
def test_must_parse(name: str) -> None:
    message = load(name)
    assert isinstance(message, (Request, Response))


# -- bare-LF archive files of RFC 5118 ----------------------------------------
# The §4.10 pair lacks the empty line closing the header section, and
# ipv6-in-sdp / mult-ip-in-sdp carry a Content-Length larger than their LF
# body (README): those four are not valid even with bare LF allowed.
_RAW_BROKEN = {
    "ipv6-bug-abnf-3-colons",
    "ipv6-correct-abnf-2-colons",
    "ipv6-in-sdp",
    "mult-ip-in-sdp",
}
RAW_OK = [e for e in RFC5118 if e["expect"] == "parse" and e["name"] not in _RAW_BROKEN]
RAW_BROKEN = [e for e in RFC5118 if e["name"] in _RAW_BROKEN]


def test_raw_lists() -> None:
    assert len(RAW_OK) == 7
    assert len(RAW_BROKEN) == 4


@pytest.mark.parametrize("entry", RAW_OK, ids=_ids(RAW_OK))
def test_raw_bare_lf_parses(entry: Entry) -> None:
    data = raw_bytes(entry)
    assert b"\r" not in data
    raw = parse_message(data)
    wire = parse_message(wire_bytes(entry))
    # Same headers; Content-Length differs where CRLF made the body longer.
    assert [h for h in raw.headers if h[0] != "Content-Length"] == [
        h for h in wire.headers if h[0] != "Content-Length"
    ]
    assert raw.body == wire.body.replace(b"\r\n", b"\n")
    assert raw.content_length == len(raw.body)


@pytest.mark.parametrize("entry", RAW_BROKEN, ids=_ids(RAW_BROKEN))
def test_raw_broken_files_reject(entry: Entry) -> None:
    with pytest.raises(ParseError):
        parse_message(raw_bytes(entry))


def test_raw_ipv6_bad_rejects() -> None:
    with pytest.raises(ParseError) as info:
        parse_message(raw_bytes(BY_NAME["ipv6-bad"]))
    assert info.value.status == 400


def test_baddn_archive_copy_lacks_the_empty_line() -> None:
    entry = BY_NAME["baddn"]
    assert entry["wire_file"] == "wire/baddn.dat"
    assert raw_bytes(entry) + b"\r\n" == wire_bytes(entry)
    with pytest.raises(ParseError):
        parse_message(raw_bytes(entry))


# -- key fields, message by message -------------------------------------------


def _sip(uri: object) -> SipUri:
    assert isinstance(uri, SipUri), uri
    return uri


def check_wsinv() -> None:
    m = load_request("wsinv")
    assert m.method == "INVITE"
    uri = _sip(m.uri)
    assert (uri.user, uri.host, uri.params) == (
        "vivekg",
        "chair-dnrc.example.com",
        {"unknownparam": None},
    )
    assert _sip(m.to.uri).user == "vivekg"
    assert m.to.tag == "1918181833n"
    assert m.to.display_name is None
    assert m.from_.display_name == 'J Rosenberg \\"'
    assert _sip(m.from_.uri).user == "jdrosen"
    assert m.from_.tag == "98asjd8"
    assert m.max_forwards == 68
    assert (m.cseq.seq, m.cseq.method) == (9, "INVITE")
    assert m.call_id == "wsinv.ndaksdj@192.0.2.1"
    assert m.content_length == 150 == len(m.body)
    assert m.body.startswith(b"v=0\r\n") and m.body.endswith(b"a=rtpmap:31 LPC\r\n")
    vias = m.via
    assert [(v.protocol, v.transport, v.host, v.port, v.branch) for v in vias] == [
        ("SIP/2.0", "UDP", "192.0.2.2", None, "390skdjuw"),
        ("SIP/2.0", "TCP", "spindle.example.com", None, "z9hG4bK9ikj8"),
        ("SIP/2.0", "UDP", "192.168.255.111", None, "z9hG4bK30239"),
    ]
    # The v: line carries two values; the Via line one.
    assert len(m.headers.get_all("via")) == 2
    assert len(m.headers.values("v")) == 3
    assert m.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    assert m.headers.get("unknownheaderwithunusualvalue") == ";;,,;;,;"
    assert m.headers.get("subject") == ""
    assert m.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert m.content_type is not None and m.content_type.mime == "application/sdp"
    (route,) = m.route
    assert _sip(route.uri).params == {"lr": None, "unknownwith": "value", "unknown-no-value": None}
    assert _sip(route.uri).lr
    (contact,) = m.contact
    assert contact.display_name == 'Quoted string ""'
    assert _sip(contact.uri).user == "jdrosen"
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    assert contact.q == pytest.approx(0.33)
    # Header order is kept (by canonical key) as in the message.
    assert m.headers.keys() == [
        "to",
        "from",
        "max-forwards",
        "call-id",
        "content-length",
        "cseq",
        "via",
        "subject",
        "newfangledheader",
        "unknownheaderwithunusualvalue",
        "content-type",
        "route",
        "via",
        "contact",
    ]


def check_intmeth() -> None:
    m = load_request("intmeth")
    method = "!interesting-Method0123456789_*+`.%indeed'~"
    assert m.method == method
    uri = _sip(m.uri)
    assert uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert uri.host == "example.com" and uri.port is None and uri.params == {}
    assert m.top_via is not None
    assert m.top_via.transport == "TCP"
    assert m.top_via.branch == "z9hG4bK-.!%66*_+`'~"
    assert m.to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert _sip(m.to.uri).user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert m.from_.display_name == "token1~` token2'+_ token3*%!.-"
    assert m.from_.tag == "_token~1'+`*%!-."
    assert m.from_.params["fromparam''~+*_!.-%"] == (
        '"\u0440\u0430\u0431\u043e\u0442\u0430\u044e\u0449\u0438\u0439"'
    )
    assert m.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert (m.cseq.seq, m.cseq.method) == (139122385, method)
    assert m.max_forwards == 255
    assert m.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff\u5927\u505c\u96fb"
    assert m.body == b""


def check_esc01() -> None:
    m = load_request("esc01")
    assert _sip(m.uri).user == "sips:user@example.com"
    assert _sip(m.uri).host == "example.net"
    assert _sip(m.to.uri).user == "user"
    assert _sip(m.from_.uri).user == "I have spaces"
    assert m.from_.tag == "938"
    assert m.call_id == "esc01.239409asdfakjkn23onasd0-3234"
    assert m.content_type is not None and m.content_type.mime == "application/sdp"
    (contact,) = m.contact
    curi = _sip(contact.uri)
    assert curi.user == "caller"
    # Unescaped once only: %25%34%31 is "%41", not "A".
    assert curi.params == {"lr": None, "name": "value%41"}
    assert curi.lr
    assert curi == SipUri("host5.example.net", "caller", params={"lr": None, "name": "value%41"})


def check_escnull() -> None:
    m = load_request("escnull")
    assert m.method == "REGISTER"
    assert _sip(m.to.uri).user == "null-\x00-null"
    assert _sip(m.from_.uri).user == "null-\x00-null"
    assert m.to.uri == m.from_.uri
    first, second = m.contact
    assert _sip(first.uri).user == "\x00"
    assert _sip(second.uri).user == "\x00\x00"
    assert first.uri != second.uri
    assert m.content_length == 0


def check_esc02() -> None:
    m = load_request("esc02")
    assert m.method == "RE%47IST%45R"
    assert m.cseq.method == "RE%47IST%45R"
    assert m.to.display_name == "%Z%45"
    assert m.from_.display_name == "%Z%45"
    assert m.top_via is not None and m.top_via.branch == "z9hG4bK209%fzsnel234"
    assert [_sip(c.uri).user for c in m.contact] == ["alias1", "alias3"]
    assert m.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"
    assert "c%6fntact" in m.headers


def check_lwsdisp() -> None:
    m = load_request("lwsdisp")
    assert m.from_.display_name == "caller"
    assert str(m.from_.uri) == "sip:caller@example.com"
    assert m.from_.tag == "323"


def check_longreq() -> None:
    m = load_request("longreq")
    display = "I have a user name of " + "extreme" * 10 + " proportion"
    assert m.to.display_name == display
    to_uri = _sip(m.to.uri)
    assert to_uri.port == 6000
    assert to_uri.params == {
        "unknownparam1": "very" + "long" * 20 + "value",
        "longparam" + "name" * 25: "shortvalue",
        "very" + "long" * 25 + "parameternamewithnovalue": None,
    }
    caller = "amazinglylongcallername" * 5
    assert _sip(m.from_.uri).user == caller
    assert m.from_.tag == "1" + "298" * 50 + "2424"
    assert m.from_.params["unknownheaderparam" + "name" * 20] == (
        "unknowheaderparam" + "value" * 15
    )
    assert "unknownvalueless" + "paramname" * 10 in m.from_.params
    assert m.call_id == "longreq.one" + "really" * 20 + "longcallid"
    assert m.cseq.seq == 3882340
    vias = m.via
    assert len(vias) == 34
    assert [v.host for v in vias[:33]] == [f"sip{n}.example.com" for n in range(33, 0, -1)]
    last = vias[-1]
    assert last.host == "host.example.com" and last.received == "192.0.2.5"
    assert last.branch is not None and last.branch.startswith("verylonglong")
    assert len(last.branch) > 200
    assert _sip(m.contact[0].uri).user == caller
    assert m.content_length == 150 == len(m.body)


def check_dblreq() -> None:
    m = load_request("dblreq")
    assert m.method == "REGISTER"
    assert m.body == b""
    assert m.content_length == 0
    assert m.call_id == "dblreq.0ha0isndaksdj99sdfafnl3lk233412"
    assert b"INVITE" not in bytes(m)
    (contact,) = m.contact
    assert str(contact.uri) == "sip:j.user@host.example.com"


def check_semiuri() -> None:
    m = load_request("semiuri")
    uri = _sip(m.uri)
    assert uri.user == "user;par=u@example.net"
    assert uri.host == "example.com"
    assert uri.params == {}
    assert [a.mime for a in m.accept] == [
        "application/sdp",
        "application/pkcs7-mime",
        "multipart/mixed",
        "multipart/signed",
        "message/sip",
        "message/sipfrag",
    ]
    assert m.max_forwards == 3


def check_transports() -> None:
    m = load_request("transports")
    assert [v.transport for v in m.via] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    assert [v.host for v in m.via] == [f"t{n}.example.com" for n in range(1, 6)]
    assert m.call_id == "transports.kijh4akdnaqjkwendsasfdj"


def check_mpart01() -> None:
    m = load_request("mpart01")
    assert m.method == "MESSAGE"
    assert m.content_length == len(m.body) == 553
    assert b"\x00" in m.body
    assert m.body.startswith(b"--7a9cbec02ceef655\r\n")
    assert m.content_type is not None and m.content_type.mime == "multipart/mixed"
    assert m.content_type.params == {"boundary": "7a9cbec02ceef655"}
    assert m.top_via is not None and m.top_via.port == 5070 and m.top_via.wants_rport
    assert m.user_agent == "SIPimp.org/0.2.5 (curses)"


def check_unreason() -> None:
    m = load_response("unreason")
    assert m.status == 200
    assert m.reason == (
        "= 2**3 * 5**2 \u043d\u043e \u0441\u0442\u043e \u0434\u0435\u0432\u044f\u043d\u043e"
        "\u0441\u0442\u043e \u0434\u0435\u0432\u044f\u0442\u044c - \u043f\u0440\u043e\u0441"
        "\u0442\u043e\u0435"
    )
    assert m.content_length == 154 == len(m.body)


def check_noreason() -> None:
    m = load_response("noreason")
    assert m.status == 100
    assert m.reason == ""
    assert m.to.tag == "902jndnke3"


def check_badbranch() -> None:
    m = load_request("badbranch")
    assert m.top_via is not None
    assert m.top_via.branch == "z9hG4bK"
    assert m.top_via.is_rfc3261_branch


def check_unksm2() -> None:
    m = load_request("unksm2")
    assert m.to.uri.scheme == "isbn"
    assert m.to.uri == AbsoluteUri("isbn", "2983792873")
    assert m.from_.uri == AbsoluteUri("http", "//www.example.com")
    assert m.from_.tag == "3234233"
    assert [c.uri for c in m.contact] == [AbsoluteUri("name", "John_Smith")]


def check_cparam01() -> None:
    m = load_request("cparam01")
    (contact,) = m.contact
    assert _sip(contact.uri).params == {}
    assert _sip(contact.uri).user == "+19725552222"
    assert "unknownparam" in contact.params


def check_cparam02() -> None:
    m = load_request("cparam02")
    (contact,) = m.contact
    assert _sip(contact.uri).params == {"unknownparam": None}
    assert contact.params == {}


def check_regescrt() -> None:
    m = load_request("regescrt")
    (contact,) = m.contact
    assert _sip(contact.uri).headers == [("Route", "<sip:sip.example.com>")]
    assert m.content_length == 0


def check_inv2543() -> None:
    m = load_request("inv2543")
    data = wire_bytes(BY_NAME["inv2543"])
    assert m.body == data[data.index(b"\r\n\r\n") + 4 :]
    assert m.body.startswith(b"v=0\r\n")
    assert m.max_forwards is None
    assert m.content_length is None
    assert m.top_via is not None and m.top_via.branch is None
    assert not m.top_via.is_rfc3261_branch
    assert m.from_.tag is None
    assert _sip(m.to.uri).params == {}
    assert m.to.params == {"user": "phone"}  # a bare addr-spec: header parameter
    assert _sip(m.from_.uri).params == {"user": "phone"}
    (rr,) = m.record_route
    assert _sip(rr.uri).maddr == "ss1.example.com"


def check_zeromf() -> None:
    m = load_request("zeromf")
    assert m.max_forwards == 0
    assert m.method == "OPTIONS"


def check_bcast() -> None:
    m = load_response("bcast")
    assert [v.host for v in m.via] == ["192.0.2.198", "255.255.255.255"]
    assert check_response(m, role=Role.PROXY) is not None


def check_regaut01() -> None:
    m = load_request("regaut01")
    (cred,) = m.authorization
    assert cred.scheme == "NoOneKnowsThisScheme"
    assert not cred.is_digest


def check_baddate() -> None:
    m = load_request("baddate")
    assert m.headers.get("Date") == "Fri, 01 Jan 2010 16:00:00 EST"


def check_bext01() -> None:
    m = load_request("bext01")
    assert m.require == ["nothingSupportsThis", "nothingSupportsThisEither"]
    assert m.proxy_require == ["noProxiesSupportThis", "norDoAnyProxiesSupportThis"]


def check_sdp01() -> None:
    m = load_request("sdp01")
    assert [a.mime for a in m.accept] == ["text/nobodyknowsthis"]


def check_unkscm() -> None:
    m = load_request("unkscm")
    assert m.uri == AbsoluteUri("nobodyknowsthisscheme", "totallyopaquecontent")


def check_novelsc() -> None:
    m = load_request("novelsc")
    assert m.uri.scheme == "soap.beep"


# RFC 5118 ---------------------------------------------------------------------


def _contact_host(m: Request | Response) -> str:
    return _sip(m.contact[0].uri).host


def check_ipv6_good() -> None:
    m = load_request("ipv6-good")
    uri = _sip(m.uri)
    assert (uri.user, uri.host, uri.port) == (None, "[2001:db8::10]", None)
    assert m.top_via is not None
    assert (m.top_via.host, m.top_via.port) == ("[2001:db8::9:1]", None)
    assert _contact_host(m) == "[2001:db8::1]"
    assert m.contact[0].display_name == "Caller"


def check_port_ambiguous() -> None:
    uri = _sip(load_request("port-ambiguous").uri)
    assert uri.host == "[2001:db8::10:5070]"
    assert uri.port is None


def check_port_unambiguous() -> None:
    uri = _sip(load_request("port-unambiguous").uri)
    assert uri.host == "[2001:db8::10]"
    assert uri.port == 5070
    assert uri.host_port == "[2001:db8::10]:5070"


def check_via_received_param_with_delim() -> None:
    m = load_request("via-received-param-with-delim")
    assert m.top_via is not None
    assert m.top_via.host == "[2001:db8::9:1]"
    assert m.top_via.received == "[2001:db8::9:255]"
    assert m.top_via.branch == "z9hG4bKas3-111"
    assert _sip(m.uri).host == "[2001:db8::10]"


def check_via_received_param_no_delim() -> None:
    m = load_request("via-received-param-no-delim")
    assert m.top_via is not None
    assert m.top_via.received == "2001:db8::9:255"
    assert m.top_via.branch == "z9hG4bKas3"
    assert _contact_host(m) == "[2001:db8::9:1]"


def check_ipv6_in_sdp() -> None:
    m = load_request("ipv6-in-sdp")
    assert _sip(m.uri).host == "[2001:db8::10]"
    assert _sip(m.to.uri).host == "[2001:db8::10]"
    assert m.top_via is not None and m.top_via.host == "[2001:db8::20]"
    assert _contact_host(m) == "[2001:db8::20]"
    assert m.content_length == len(m.body) == 251
    assert b"c=IN IP6 2001:db8::20\r\n" in m.body


def check_mult_ip_in_header() -> None:
    m = load_request("mult-ip-in-header")
    assert [(v.transport, v.host, v.port, v.received) for v in m.via] == [
        ("UDP", "[2001:db8::9:1]", 6050, None),
        ("UDP", "192.0.2.1", None, None),
        ("TCP", "[2001:db8::9:255]", None, "192.0.2.200"),
    ]
    assert m.via[2].branch == "z9hG4bK451jj"
    assert m.to.tag == "9817--94"


def check_mult_ip_in_sdp() -> None:
    m = load_request("mult-ip-in-sdp")
    assert m.content_length == len(m.body) == 189
    assert b"c=IN IP6 2001:db8::1\r\n" in m.body
    assert _contact_host(m) == "[2001:db8::9:1]"


def check_ipv4_mapped_ipv6() -> None:
    m = load_request("ipv4-mapped-ipv6")
    assert [(v.host, v.port, v.branch) for v in m.via] == [
        ("[::ffff:192.0.2.10]", 19823, "z9hG4bKbh19"),
        ("[::ffff:192.0.2.2]", None, "z9hG4bKas3-111"),
    ]
    assert _contact_host(m) == "[::ffff:192.0.2.2]"
    assert m.contact[0].display_name == "T. desk phone"
    assert m.content_length == len(m.body) == 245


def check_ipv6_bug_abnf_3_colons() -> None:
    m = load_request("ipv6-bug-abnf-3-colons")
    assert _sip(m.uri).host == "[2001:db8:::192.0.2.1]"
    assert _sip(m.to.uri).host == "[2001:db8:::192.0.2.1]"


def check_ipv6_correct_abnf_2_colons() -> None:
    m = load_request("ipv6-correct-abnf-2-colons")
    assert _sip(m.uri).host == "[2001:db8::192.0.2.1]"
    assert m.uri == SipUri("[2001:db8:0::192.0.2.1]", "user")


CHECKS: dict[str, Callable[[], None]] = {
    "wsinv": check_wsinv,
    "intmeth": check_intmeth,
    "esc01": check_esc01,
    "escnull": check_escnull,
    "esc02": check_esc02,
    "lwsdisp": check_lwsdisp,
    "longreq": check_longreq,
    "dblreq": check_dblreq,
    "semiuri": check_semiuri,
    "transports": check_transports,
    "mpart01": check_mpart01,
    "unreason": check_unreason,
    "noreason": check_noreason,
    "badbranch": check_badbranch,
    "unksm2": check_unksm2,
    "cparam01": check_cparam01,
    "cparam02": check_cparam02,
    "regescrt": check_regescrt,
    "inv2543": check_inv2543,
    "zeromf": check_zeromf,
    "bcast": check_bcast,
    "regaut01": check_regaut01,
    "baddate": check_baddate,
    "bext01": check_bext01,
    "sdp01": check_sdp01,
    "unkscm": check_unkscm,
    "novelsc": check_novelsc,
    "ipv6-good": check_ipv6_good,
    "port-ambiguous": check_port_ambiguous,
    "port-unambiguous": check_port_unambiguous,
    "via-received-param-with-delim": check_via_received_param_with_delim,
    "via-received-param-no-delim": check_via_received_param_no_delim,
    "ipv6-in-sdp": check_ipv6_in_sdp,
    "mult-ip-in-header": check_mult_ip_in_header,
    "mult-ip-in-sdp": check_mult_ip_in_sdp,
    "ipv4-mapped-ipv6": check_ipv4_mapped_ipv6,
    "ipv6-bug-abnf-3-colons": check_ipv6_bug_abnf_3_colons,
    "ipv6-correct-abnf-2-colons": check_ipv6_correct_abnf_2_colons,
}


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_key_fields(name: str) -> None:
    CHECKS[name]()


def test_every_must_parse_message_has_field_checks() -> None:
    must_parse = {e["name"] for e in ALL if e["expect"] == "parse"}
    assert must_parse <= set(CHECKS)


# -- rejections: the reason is the right one ------------------------------------


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("badinv01", "via"),
        ("clerr", "content-length"),
        ("ncl", "content-length"),
        ("scalar02", "cseq"),
        ("scalarlg", "cseq"),
        ("multi01", "duplicate"),
        ("mcl01", "content-length"),
        ("insuf", "missing"),
        ("bigcode", "status"),
        ("ipv6-bad", "uri"),
    ],
)
def test_parse_error_reason(name: str, fragment: str) -> None:
    with pytest.raises(ParseError) as info:
        load(name)
    assert fragment in info.value.reason.lower()
    assert info.value.status == 400


def test_badvers_parses_and_answers_505() -> None:
    m = load_request("badvers")
    assert m.version == "SIP/7.0"
    rejection = check_request(m)
    assert rejection is not None and rejection.status == 505


def test_mismatch02_501_lists_allow() -> None:
    rejection = check_request(load_request("mismatch02"), policy_for(Role.UAS))
    assert rejection is not None and rejection.status == 501
    assert dict(rejection.headers)["Allow"]


def test_bext01_unsupported_header() -> None:
    m = load_request("bext01")
    uas = check_request(m, policy_for(Role.UAS))
    assert uas is not None and uas.status == 420
    assert dict(uas.headers)["Unsupported"] == "nothingSupportsThis, nothingSupportsThisEither"
    proxy = check_request(m, policy_for(Role.PROXY))
    assert proxy is not None and proxy.status == 420
    assert dict(proxy.headers)["Unsupported"] == "noProxiesSupportThis, norDoAnyProxiesSupportThis"


def test_rejection_responses_copy_the_request() -> None:
    m = load_request("invut")
    rejection = check_request(m, policy_for(Role.UAS))
    assert rejection is not None and rejection.status == 415
    response = rejection.response(m, to_tag="abc")
    assert response.status == 415
    assert response.headers.get("Accept") == "application/sdp, multipart/mixed"
    assert response.to.tag == "abc"
    assert response.call_id == m.call_id
    again = parse_message(bytes(response))
    assert again.headers.get("Content-Length") == "0"
    assert parse_message(bytes(again)) == again


def test_addresses_are_addresses() -> None:
    m = load_request("wsinv")
    assert isinstance(m.to, Address)
    assert isinstance(m.from_, Address)
