"""StreamParser: framing SIP on a byte stream (RFC 3261 §18.3, RFC 5626 keep-alives)."""

from __future__ import annotations

from collections.abc import Sequence

from sipwire import ParseError, Request, StreamParser
from sipwire.message import KeepAlivePing, KeepAlivePong, StreamError, parse_message
from sipwire.message.parser import StreamItem


def message(n: int, body: bytes = b"abc") -> bytes:
    return (
        f"OPTIONS sip:bob@example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/TCP h.example.com;branch=z9hG4bK{n}\r\n"
        f"From: <sip:a@example.com>;tag={n}\r\n"
        f"To: <sip:b@example.com>\r\n"
        f"Call-ID: call-{n}\r\n"
        f"CSeq: {n} OPTIONS\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


M1 = message(1)
M2 = message(2, b"body with\r\n\r\nblank lines\r\n\r\n")
M3 = message(3, b"")


def feed_chunks(chunks: list[bytes], max_size: int = 65536) -> list[StreamItem]:
    parser = StreamParser(max_size=max_size)
    out: list[StreamItem] = []
    for chunk in chunks:
        out.extend(parser.feed(chunk))
    return out


def call_ids(items: Sequence[StreamItem]) -> list[str]:
    ids = []
    for item in items:
        assert isinstance(item, Request), item
        ids.append(item.call_id)
    return ids


def test_one_message() -> None:
    (item,) = StreamParser().feed(M1)
    assert item == parse_message(M1)


def test_two_messages_in_one_chunk() -> None:
    items = StreamParser().feed(M1 + M2)
    assert items == [parse_message(M1), parse_message(M2)]
    assert isinstance(items[1], Request)
    assert items[1].body == b"body with\r\n\r\nblank lines\r\n\r\n"


def test_split_at_every_offset() -> None:
    stream = M1 + M2 + M3
    expected = [parse_message(M1), parse_message(M2), parse_message(M3)]
    for cut in range(len(stream) + 1):
        assert feed_chunks([stream[:cut], stream[cut:]]) == expected, cut


def test_one_byte_at_a_time() -> None:
    stream = M1 + M2 + M3
    parser = StreamParser()
    out: list[StreamItem] = []
    for i in range(len(stream)):
        out.extend(parser.feed(stream[i : i + 1]))
        assert parser.buffered <= len(M2)
    assert out == [parse_message(M1), parse_message(M2), parse_message(M3)]
    assert parser.buffered == 0


def test_split_at_every_offset_in_three_chunks() -> None:
    stream = M1 + M3
    expected = ["call-1", "call-3"]
    for a in range(0, len(stream), 7):
        for b in range(a, len(stream) + 1, 5):
            assert call_ids(feed_chunks([stream[:a], stream[a:b], stream[b:]])) == expected


def test_keepalive_ping_and_pong() -> None:
    parser = StreamParser(client=True)
    assert parser.feed(b"\r\n\r\n") == [KeepAlivePing()]
    assert parser.feed(b"\r\n") == [KeepAlivePong()]
    assert parser.feed(b"\r\n\r\n\r\n") == [KeepAlivePing(), KeepAlivePong()]
    assert parser.buffered == 0
    assert parser.feed(M1) == [parse_message(M1)]


def test_server_side_waits_after_a_trailing_crlf() -> None:
    parser = StreamParser()
    assert parser.feed(b"\r\n\r\n\r\n") == [KeepAlivePing()]
    assert parser.buffered == 2
    assert parser.feed(b"\r\n") == [KeepAlivePing()]
    assert parser.buffered == 0


def test_keepalives_between_messages() -> None:
    items = StreamParser().feed(M1 + b"\r\n\r\n" + M2 + b"\r\n" + M3)
    assert items == [
        parse_message(M1),
        KeepAlivePing(),
        parse_message(M2),
        KeepAlivePong(),
        parse_message(M3),
    ]


def test_ping_split_across_chunks_is_still_a_ping() -> None:
    """A double CRLF that arrives in two TCP segments is one ping (RFC 5626 §3.5.1).

    Answering it as two pongs means the server never answers the client's
    ping, and the client declares the flow dead.
    """
    assert feed_chunks([b"\r\n", b"\r\n"]) == [KeepAlivePing()]
    assert feed_chunks([b"\r", b"\n", b"\r", b"\n"]) == [KeepAlivePing()]
    assert feed_chunks([b"\r\n\r", b"\n"]) == [KeepAlivePing()]


def test_keepalives_split_at_every_offset() -> None:
    stream = M1 + b"\r\n\r\n" + M2 + b"\r\n" + M3
    expected = feed_chunks([stream])
    for cut in range(len(stream) + 1):
        assert feed_chunks([stream[:cut], stream[cut:]]) == expected, cut


def test_client_side_reports_a_trailing_crlf_as_pong_at_once() -> None:
    """A client waits for the pong to its ping (RFC 5626 §4.4.1): no delay."""
    client = StreamParser(client=True)
    assert client.feed(b"\r\n") == [KeepAlivePong()]
    server = StreamParser()
    assert server.feed(b"\r\n") == []
    assert server.feed(M1) == [KeepAlivePong(), parse_message(M1)]


def test_pong_followed_by_message_in_next_chunk() -> None:
    assert feed_chunks([b"\r\n" + M1[:10], M1[10:]]) == [KeepAlivePong(), parse_message(M1)]


def test_missing_content_length_is_fatal() -> None:
    parser = StreamParser()
    no_length = M1.replace(b"Content-Length: 3\r\n", b"")
    (error,) = parser.feed(no_length)
    assert isinstance(error, StreamError)
    assert error.fatal
    assert isinstance(error.error, ParseError)
    assert "content-length" in error.error.reason.lower()
    assert error.data.startswith(b"OPTIONS sip:bob@example.com SIP/2.0\r\n")
    assert parser.failed
    assert parser.feed(M1) == []  # the connection is dead
    assert parser.buffered == 0


def test_bad_content_length_is_fatal() -> None:
    for value in (b"-5", b"x", b"3, 4"):
        data = M1.replace(b"Content-Length: 3", b"Content-Length: " + value)
        (error,) = StreamParser().feed(data)
        assert isinstance(error, StreamError) and error.fatal


def test_conflicting_content_lengths_are_fatal() -> None:
    data = M1.replace(b"Content-Length: 3\r\n", b"Content-Length: 3\r\nl: 5\r\n")
    (error,) = StreamParser().feed(data)
    assert isinstance(error, StreamError) and error.fatal


def test_compact_content_length_frames() -> None:
    data = M1.replace(b"Content-Length: 3\r\n", b"l: 3\r\n")
    assert call_ids(StreamParser().feed(data + data)) == ["call-1", "call-1"]


def test_oversize_message_is_fatal_513_without_buffering() -> None:
    big = message(9, b"x" * 5000)
    parser = StreamParser(max_size=1000)
    out: list[StreamItem] = []
    chunk = 100
    for i in range(0, len(big), chunk):
        out.extend(parser.feed(big[i : i + chunk]))
        assert parser.buffered <= 1000 + chunk
    (error,) = out
    assert isinstance(error, StreamError)
    assert error.fatal and error.error.status == 513
    assert parser.buffered == 0
    assert parser.failed


def test_oversize_detected_from_the_head_alone() -> None:
    head = M1.replace(b"Content-Length: 3", b"Content-Length: 100000")[:-3]
    parser = StreamParser(max_size=300)
    (error,) = parser.feed(head)
    assert isinstance(error, StreamError) and error.fatal and error.error.status == 513
    assert parser.buffered == 0


def test_message_of_exactly_max_size_passes() -> None:
    assert StreamParser(max_size=len(M1)).feed(M1) == [parse_message(M1)]
    (error,) = StreamParser(max_size=len(M1) - 1).feed(M1)
    assert isinstance(error, StreamError) and error.error.status == 513


def test_endless_header_section_is_fatal() -> None:
    parser = StreamParser(max_size=4096)
    out: list[StreamItem] = []
    parser.feed(b"OPTIONS sip:bob@example.com SIP/2.0\r\n")
    line = b"X-Filler: " + b"y" * 90 + b"\r\n"
    for _ in range(100):
        out.extend(parser.feed(line))
        assert parser.buffered <= 4096 + len(line)
        if out:
            break
    (error,) = out
    assert isinstance(error, StreamError)
    assert error.fatal and error.error.status == 513
    assert parser.feed(M1) == []


def test_malformed_message_with_good_framing_is_not_fatal() -> None:
    bad = M1.replace(b"CSeq: 1 OPTIONS", b"CSeq: one")
    parser = StreamParser()
    items = parser.feed(bad + M2)
    assert len(items) == 2
    error, good = items
    assert isinstance(error, StreamError)
    assert not error.fatal
    assert error.error.status == 400
    assert b"CSeq: one" in error.data
    assert good == parse_message(M2)
    assert not parser.failed


def test_malformed_message_split_then_good_one() -> None:
    bad = M1.replace(b"To: <sip:b@example.com>", b"To: <<broken")
    stream = bad + M3
    for cut in range(0, len(stream) + 1, 3):
        items = feed_chunks([stream[:cut], stream[cut:]])
        assert len(items) == 2
        assert isinstance(items[0], StreamError) and not items[0].fatal
        assert items[1] == parse_message(M3)


def test_stray_line_feeds_between_messages_are_skipped() -> None:
    items = StreamParser().feed(b"\n" + M1 + b"\n\n" + M3)
    messages = [i for i in items if isinstance(i, Request)]
    assert call_ids(messages) == ["call-1", "call-3"]
