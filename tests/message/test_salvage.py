"""Responses to requests that do not parse (sipwire.message.salvage)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sipwire.errors import ParseError
from sipwire.message import Response, parse_message
from sipwire.message.salvage import error_response

TORTURE = Path(
    os.environ.get(
        "SIPWIRE_TORTURE_DIR", Path(__file__).resolve().parents[2] / ".." / "shared" / "torture"
    )
)


def _error(data: bytes) -> ParseError:
    with pytest.raises(ParseError) as info:
        parse_message(data)
    return info.value


def _torture(name: str) -> bytes:
    path = TORTURE / "rfc4475" / f"{name}.dat"
    if not path.exists():
        pytest.skip("RFC 4475 torture corpus not found: set SIPWIRE_TORTURE_DIR")
    return path.read_bytes()


def test_oversized_cseq_gets_400_copying_the_raw_headers() -> None:
    data = _torture("scalar02")
    response = error_response(data, _error(data))
    assert response is not None and response.status == 400
    assert "CSeq" in response.reason
    wire = bytes(response)
    assert b"CSeq: 36893488147419103232 REGISTER\r\n" in wire
    assert b"Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bK342sdfoi3\r\n" in wire
    assert b"Call-ID: scalar02.23o0pd9vanlq3wnrlnewofjas9ui32\r\n" in wire
    assert wire.startswith(b"SIP/2.0 400 Bad Request - ")


def test_content_length_beyond_the_datagram_gets_400() -> None:
    data = _torture("clerr")
    response = error_response(data, _error(data))
    assert response is not None and response.status == 400
    assert response.via[0].branch is not None


def test_unroutable_or_incomplete_requests_are_dropped() -> None:
    for name in ("badinv01", "insuf"):  # broken Via; no From/To/Call-ID
        data = _torture(name)
        assert error_response(data, _error(data)) is None


def test_responses_are_never_answered() -> None:
    data = _torture("bigcode")
    assert error_response(data, _error(data)) is None


def test_response_type() -> None:
    data = _torture("scalar02")
    assert isinstance(error_response(data, _error(data)), Response)


def _broken(branch: str = "z9hG4bKbroken1", to: str = "<sip:bob@example.com>") -> bytes:
    """A REGISTER whose CSeq number overflows: it fails to parse, but can be answered."""
    return (
        "REGISTER sip:example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.4:5060;branch={branch}\r\n"
        "Max-Forwards: 70\r\n"
        f"To: {to}\r\n"
        "From: <sip:bob@example.com>;tag=f1\r\n"
        "Call-ID: broken-call@192.0.2.4\r\n"
        "CSeq: 99999999999999999999999 REGISTER\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def test_the_400_carries_a_to_tag_derived_from_the_request() -> None:
    """§8.2.6.2: every final response of a UAS carries a To tag; a retransmission of the
    broken request gets the same tag, another request another one."""
    data = _broken()
    first = error_response(data, _error(data))
    again = error_response(data, _error(data))
    assert first is not None and again is not None and first.status == 400
    tag = first.to.tag
    assert tag and again.to.tag == tag
    assert f"To: <sip:bob@example.com>;tag={tag}\r\n".encode() in bytes(first)
    other = _broken(branch="z9hG4bKbroken2")
    answered = error_response(other, _error(other))
    assert answered is not None and answered.to.tag not in (None, tag)
    # The torture corpus' 400 gets one too.
    torture = _torture("scalar02")
    response = error_response(torture, _error(torture))
    assert response is not None and response.to.tag


def test_a_to_tag_already_there_is_kept() -> None:
    data = _broken(to="<sip:bob@example.com>;tag=abc")
    response = error_response(data, _error(data))
    assert response is not None and response.to.tag == "abc"
    assert bytes(response).count(b"tag=") == 2  # From's and To's, nothing added
    # A "tag=" inside the URI or the display name is no tag of the To header.
    data = _broken(to='"x;tag=1" <sip:bob@example.com;tag=2>')
    response = error_response(data, _error(data))
    assert response is not None and response.to.tag not in (None, "1", "2")
