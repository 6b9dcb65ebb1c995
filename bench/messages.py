"""The three benchmark messages, as wire bytes, with the values a parser must read back.

Every line ends in CRLF and Content-Length matches the body; both are checked
at import so an edit that breaks either fails loudly instead of skewing a run.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Expected:
    """What typed access to Via/From/To/CSeq/Call-ID must return for a message."""

    via_host: str
    via_port: int | None
    via_branch: str
    from_user: str
    from_host: str
    from_tag: str
    to_user: str
    to_host: str
    to_tag: str | None
    cseq: int
    method: str
    call_id: str

    def as_tuple(self) -> tuple[object, ...]:
        return (
            self.via_host,
            self.via_port,
            self.via_branch,
            self.from_user,
            self.from_host,
            self.from_tag,
            self.to_user,
            self.to_host,
            self.to_tag,
            self.cseq,
            self.method,
            self.call_id,
        )


@dataclass(frozen=True, slots=True)
class BenchMessage:
    name: str
    data: bytes
    expected: Expected


# A typical initial INVITE from a UA, with an SDP offer (RFC 3665 style).
INVITE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>\r\n"
    b'From: "Alice" <sip:alice@atlanta.example.com>;tag=1928301774\r\n'
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@pc33.atlanta.example.com:5060;transport=udp>\r\n"
    b"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, REFER\r\n"
    b"Supported: replaces, timer\r\n"
    b"User-Agent: ExamplePhone/2.1\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 253\r\n"
    b"\r\n"
    b"v=0\r\n"
    b"o=alice 2890844526 2890844526 IN IP4 pc33.atlanta.example.com\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.101\r\n"
    b"t=0 0\r\n"
    b"m=audio 49172 RTP/AVP 0 8 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-15\r\n"
    b"a=ptime:20\r\n"
    b"a=sendrecv\r\n"
)

# The 200 OK to that INVITE after two record-routing proxies: three Vias,
# two Record-Routes, a Contact and the SDP answer.
OK_200 = (
    b"SIP/2.0 200 OK\r\n"
    b"Via: SIP/2.0/UDP server10.biloxi.example.com;branch=z9hG4bK4b43c2ff8.1"
    b";received=192.0.2.3\r\n"
    b"Via: SIP/2.0/UDP bigbox3.site3.atlanta.example.com;branch=z9hG4bK77ef4c2312983.1"
    b";received=192.0.2.2\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds"
    b";received=192.0.2.1;rport=5060\r\n"
    b"Record-Route: <sip:server10.biloxi.example.com;lr>\r\n"
    b"Record-Route: <sip:bigbox3.site3.atlanta.example.com;lr>\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n"
    b'From: "Alice" <sip:alice@atlanta.example.com>;tag=1928301774\r\n'
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:bob@192.0.2.4>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 138\r\n"
    b"\r\n"
    b"v=0\r\n"
    b"o=bob 2808844564 2808844564 IN IP4 biloxi.example.com\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.4\r\n"
    b"t=0 0\r\n"
    b"m=audio 3456 RTP/AVP 0\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
)

# A REGISTER retried with digest credentials (RFC 3261 §22.4, RFC 8760 style).
REGISTER = (
    b"REGISTER sip:registrar.biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP bobspc.biloxi.example.com:5061;branch=z9hG4bKnashds7;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>\r\n"
    b"From: Bob <sip:bob@biloxi.example.com>;tag=456248\r\n"
    b"Call-ID: 843817637684230@998sdasdh09\r\n"
    b"CSeq: 1827 REGISTER\r\n"
    b"Contact: <sip:bob@192.0.2.4:5061;transport=tcp>;expires=3600\r\n"
    b'Authorization: Digest username="bob", realm="biloxi.example.com",'
    b' nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="sip:registrar.biloxi.example.com",'
    b' response="245f23415f11432b3434341c022", algorithm=MD5, cnonce="0a4f113b",'
    b' qop=auth, nc=00000001, opaque="5ccc069c403ebaf9f0171e9517f40e41"\r\n'
    b"Expires: 7200\r\n"
    b"User-Agent: ExamplePhone/2.1\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)

MESSAGES: tuple[BenchMessage, ...] = (
    BenchMessage(
        "INVITE",
        INVITE,
        Expected(
            via_host="pc33.atlanta.example.com",
            via_port=5060,
            via_branch="z9hG4bK776asdhds",
            from_user="alice",
            from_host="atlanta.example.com",
            from_tag="1928301774",
            to_user="bob",
            to_host="biloxi.example.com",
            to_tag=None,
            cseq=314159,
            method="INVITE",
            call_id="a84b4c76e66710@pc33.atlanta.example.com",
        ),
    ),
    BenchMessage(
        "200-OK",
        OK_200,
        Expected(
            via_host="server10.biloxi.example.com",
            via_port=None,
            via_branch="z9hG4bK4b43c2ff8.1",
            from_user="alice",
            from_host="atlanta.example.com",
            from_tag="1928301774",
            to_user="bob",
            to_host="biloxi.example.com",
            to_tag="a6c85cf",
            cseq=314159,
            method="INVITE",
            call_id="a84b4c76e66710@pc33.atlanta.example.com",
        ),
    ),
    BenchMessage(
        "REGISTER",
        REGISTER,
        Expected(
            via_host="bobspc.biloxi.example.com",
            via_port=5061,
            via_branch="z9hG4bKnashds7",
            from_user="bob",
            from_host="biloxi.example.com",
            from_tag="456248",
            to_user="bob",
            to_host="biloxi.example.com",
            to_tag=None,
            cseq=1827,
            method="REGISTER",
            call_id="843817637684230@998sdasdh09",
        ),
    ),
)


def variants(message: BenchMessage, count: int) -> list[tuple[bytes, tuple[object, ...]]]:
    """``count`` copies of ``message`` that differ in Via branch, From tag and Call-ID.

    Real traffic never repeats these values, so a parser that memoises header
    values gains nothing from it; cycling through distinct copies keeps such a
    cache from flattering the numbers. Each copy keeps the original length and
    comes with its own expected values.
    """
    exp = message.expected
    tokens = (exp.via_branch, exp.from_tag, exp.call_id)
    out: list[tuple[bytes, tuple[object, ...]]] = []
    for i in range(count):
        data = message.data
        new = tuple(t[:-4] + f"{i:04x}" for t in tokens)
        for old_token, new_token in zip(tokens, new, strict=True):
            assert message.data.count(old_token.encode()) == 1, old_token
            data = data.replace(old_token.encode(), new_token.encode())
        assert len(data) == len(message.data)
        branch, from_tag, call_id = new
        expected = Expected(
            exp.via_host,
            exp.via_port,
            branch,
            exp.from_user,
            exp.from_host,
            from_tag,
            exp.to_user,
            exp.to_host,
            exp.to_tag,
            exp.cseq,
            exp.method,
            call_id,
        )
        out.append((data, expected.as_tuple()))
    return out


def _check(message: BenchMessage) -> None:
    head, sep, body = message.data.partition(b"\r\n\r\n")
    assert sep, f"{message.name}: no blank line after the headers"
    lines = head.split(b"\r\n")
    assert all(b"\n" not in line and b"\r" not in line for line in lines), (
        f"{message.name}: bare CR or LF in the head"
    )
    lengths = [
        int(line.split(b":", 1)[1]) for line in lines if line.lower().startswith(b"content-length:")
    ]
    assert lengths == [len(body)], (
        f"{message.name}: Content-Length {lengths} but the body has {len(body)} bytes"
    )
    assert not body or body.endswith(b"\r\n"), f"{message.name}: body must end in CRLF"


for _message in MESSAGES:
    _check(_message)
