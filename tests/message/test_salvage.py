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
