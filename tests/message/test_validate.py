"""check_request / check_size / check_response and the responses they build."""

from __future__ import annotations

import pytest

from sipwire import ParseError, Request, Response, parse_message
from sipwire.message.validate import (
    KNOWN_METHODS,
    Policy,
    Rejection,
    Role,
    check_request,
    check_response,
    check_size,
    rejection_for_error,
    validate_request,
)


def request(
    method: str = "INVITE",
    uri: str = "sip:bob@example.com",
    extra: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    cseq_method: str | None = None,
) -> Request:
    headers = [
        ("Via", "SIP/2.0/UDP a.example.com;branch=z9hG4bK1"),
        ("Max-Forwards", "70"),
        ("From", "<sip:alice@example.com>;tag=ft"),
        ("To", "<sip:bob@example.com>"),
        ("Call-ID", "c1@example.com"),
        ("CSeq", f"1 {cseq_method or method}"),
        *(extra or []),
    ]
    req = parse_message(bytes(Request(method, uri, headers=headers, body=body)))
    assert isinstance(req, Request)
    return req


def status(rejection: Rejection | None) -> int | None:
    return None if rejection is None else rejection.status


def test_good_request_passes() -> None:
    assert check_request(request()) is None
    assert validate_request(request()) is None
    assert check_request(request("OPTIONS", "tel:+1234")) is None
    assert check_request(request("ACK", "sips:bob@example.com")) is None


def test_400_from_parse_error() -> None:
    rejection = rejection_for_error(ParseError("malformed CSeq: 'x'"))
    assert (rejection.status, rejection.reason) == (400, "malformed CSeq: 'x'")
    assert rejection_for_error(ParseError("too big", 513)).status == 513
    assert rejection_for_error(ParseError("version", 505)).status == 505


def test_505_version() -> None:
    data = bytes(request()).replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1)
    req = parse_message(data)
    assert isinstance(req, Request)
    assert status(check_request(req)) == 505
    assert status(check_request(req, Policy(role=Role.PROXY, methods=None))) == 505


def test_416_scheme() -> None:
    rejection = check_request(request(uri="mailto:bob@example.com"))
    assert rejection is not None and rejection.status == 416
    assert status(check_request(request(uri="tel:+1"), Policy(schemes=frozenset({"sip"})))) == 416


def test_400_uri_headers() -> None:
    assert status(check_request(request(uri="sip:bob@example.com?Route=%3Csip:x%3E"))) == 400


def test_420_with_unsupported() -> None:
    rejection = check_request(request(extra=[("Require", "100rel, foo")]))
    assert rejection is not None and rejection.status == 420
    assert dict(rejection.headers)["Unsupported"] == "100rel, foo"
    allowed = Policy(extensions=frozenset({"100rel", "foo"}))
    assert check_request(request(extra=[("Require", "100rel, foo")]), allowed) is None
    partial = check_request(
        request(extra=[("Require", "100rel, foo")]), Policy(extensions=frozenset({"100rel"}))
    )
    assert partial is not None and dict(partial.headers)["Unsupported"] == "foo"


def test_require_is_not_checked_for_ack_and_cancel() -> None:
    assert check_request(request("ACK", extra=[("Require", "foo")])) is None
    assert check_request(request("CANCEL", extra=[("Require", "foo")])) is None


def test_proxy_checks_proxy_require_not_require() -> None:
    proxy = Policy(role=Role.PROXY, methods=None)
    assert check_request(request(extra=[("Require", "foo")]), proxy) is None
    rejection = check_request(request(extra=[("Proxy-Require", "bar")]), proxy)
    assert rejection is not None and rejection.status == 420
    assert dict(rejection.headers)["Unsupported"] == "bar"


def test_513_size() -> None:
    rejection = check_size(70000)
    assert rejection is not None and rejection.status == 513
    assert check_size(65536) is None
    assert status(check_size(101, Policy(max_size=100))) == 513
    assert check_size(100, Policy(max_size=100)) is None


def test_413_body() -> None:
    policy = Policy(max_body=10, accept=())
    assert status(check_request(request(body=b"x" * 11), policy)) == 413
    assert check_request(request(body=b"x" * 10), policy) is None


def test_483_proxy() -> None:
    proxy = Policy(role=Role.PROXY, methods=None)
    zero = request("INVITE", extra=[])
    zero.headers.set("Max-Forwards", "0")
    assert status(check_request(zero, proxy)) == 483
    assert check_request(zero) is None  # a UAS processes it
    one = request()
    one.headers.set("Max-Forwards", "1")
    assert check_request(one, proxy) is None


def test_483_proxy_options() -> None:
    """RFC 4475 §3.3.11 zeromf: OPTIONS with Max-Forwards 0 must not be forwarded.

    ``None`` tells a proxy to go ahead and forward; the RFC wants 483 (or,
    per RFC 3261 §16.3 item 2, the proxy answering the OPTIONS itself).
    """
    zero = request("OPTIONS")
    zero.headers.set("Max-Forwards", "0")
    assert status(check_request(zero, Policy(role=Role.PROXY, methods=None))) == 483


@pytest.mark.parametrize(
    "method", sorted(KNOWN_METHODS - {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS"})
)
def test_405_known_method(method: str) -> None:
    rejection = check_request(request(method))
    assert rejection is not None and rejection.status == 405
    assert dict(rejection.headers)["Allow"] == "ACK, BYE, CANCEL, INVITE, OPTIONS"


def test_501_unknown_method() -> None:
    rejection = check_request(request("NEWMETHOD"))
    assert rejection is not None and rejection.status == 501
    assert dict(rejection.headers)["Allow"] == "ACK, BYE, CANCEL, INVITE, OPTIONS"
    assert status(check_request(request("register"))) == 501  # methods are case-sensitive


def test_allow_reflects_policy_methods() -> None:
    rejection = check_request(request("BYE"), Policy(methods=frozenset({"INVITE", "ACK"})))
    assert rejection is not None and dict(rejection.headers)["Allow"] == "ACK, INVITE"


def test_policy_methods_none_means_the_roles_default() -> None:
    rejection = check_request(request("NEWMETHOD"), Policy(methods=None))
    assert rejection is not None and rejection.status == 501
    assert check_request(request("NEWMETHOD"), Policy(role=Role.PROXY, methods=None)) is None


def test_registrar_role_accepts_register_by_default() -> None:
    """A Policy whose role is REGISTRAR must not answer REGISTER with 405."""
    register = request("REGISTER", "sip:example.com")
    assert check_request(register, Policy(role=Role.REGISTRAR)) is None


def test_proxy_role_forwards_unknown_methods_by_default() -> None:
    """§16: a proxy forwards methods it does not know (RFC 4475 intmeth); no 501."""
    assert check_request(request("NEWMETHOD"), Policy(role=Role.PROXY)) is None


def test_400_cseq_mismatch() -> None:
    rejection = check_request(request("OPTIONS", cseq_method="INVITE"))
    assert rejection is not None and rejection.status == 400
    assert "cseq" in rejection.reason.lower()


def test_400_malformed_contact() -> None:
    assert status(check_request(request(extra=[("Contact", "<sip:a@b>;;")]))) == 400


def test_400_malformed_require() -> None:
    assert status(check_request(request(extra=[("Require", "a b")]))) == 400


def test_415_with_accept() -> None:
    rejection = check_request(
        request(extra=[("Content-Type", "application/unknownformat")], body=b"x")
    )
    assert rejection is not None and rejection.status == 415
    assert dict(rejection.headers)["Accept"] == "application/sdp"
    ok = check_request(request(extra=[("Content-Type", "application/SDP")], body=b"v=0\r\n"))
    assert ok is None
    anything = Policy(accept=())
    assert (
        check_request(
            request(extra=[("Content-Type", "application/unknownformat")], body=b"x"), anything
        )
        is None
    )


def test_406_with_accept() -> None:
    rejection = check_request(request(extra=[("Accept", "text/nobodyKnowsThis")]))
    assert rejection is not None and rejection.status == 406
    headers = dict(rejection.headers)
    assert headers["Accept"] == "application/sdp"
    assert headers["Warning"].startswith("399 ")
    assert check_request(request(extra=[("Accept", "application/*")])) is None
    assert check_request(request(extra=[("Accept", "*/*")])) is None
    assert check_request(request(extra=[("Accept", "text/plain, application/sdp")])) is None
    assert check_request(request("OPTIONS", extra=[("Accept", "text/x")])) is None


def test_registrar_to_must_be_sip() -> None:
    registrar = Policy(role=Role.REGISTRAR, methods=KNOWN_METHODS)
    req = request("REGISTER", "sip:example.com")
    assert check_request(req, registrar) is None
    req.headers.set("To", "isbn:2983792873")
    assert status(check_request(req, registrar)) == 400


def test_rejection_response() -> None:
    req = request()
    rejection = check_request(req, Policy(methods=frozenset({"OPTIONS"})))
    assert rejection is not None and rejection.status == 405
    response = rejection.response(req, to_tag="x1")
    assert isinstance(response, Response)
    assert response.status == 405
    assert response.reason == "Method Not Allowed"
    assert response.headers.get("Allow") == "OPTIONS"
    assert response.to.tag == "x1"
    assert response.call_id == req.call_id
    assert response.cseq == req.cseq
    assert response.headers.get_all("via") == req.headers.get_all("via")
    again = parse_message(bytes(response))
    assert isinstance(again, Response) and again.status == 405


def test_400_response_reason_phrase_names_the_problem() -> None:
    req = request()
    response = Rejection(400, "malformed\r\nCSeq\x00").response(req)
    assert response.reason.startswith("Bad Request - malformed")
    assert "\r" not in response.reason and "\n" not in response.reason
    assert "\x00" not in response.reason
    again = parse_message(bytes(response))
    assert isinstance(again, Response) and again.reason == response.reason
    long = Rejection(400, "x" * 500).response(req)
    assert len(long.reason) < 200


def test_check_response() -> None:
    one = request().reply(200)
    assert check_response(one) is None
    two = request().reply(200)
    two.headers.add("Via", "SIP/2.0/UDP b.example.com;branch=z9hG4bK2")
    assert check_response(two) is not None
    assert check_response(two, role=Role.PROXY) is None
    assert check_response(one, role=Role.PROXY) is not None
    bcast = request().reply(200)
    bcast.headers.add("Via", "SIP/2.0/UDP 255.255.255.255;branch=z9hG4bK2")
    assert check_response(bcast, role=Role.PROXY) is not None
    received = request().reply(200)
    received.headers.add("Via", "SIP/2.0/UDP h;branch=z9hG4bK2;received=255.255.255.255")
    assert check_response(received, role=Role.PROXY) is not None
