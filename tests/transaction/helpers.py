"""Shared helpers for the transaction-layer tests: a manual clock and request builders."""

from __future__ import annotations

from sipwire.message import Request, Response, parse_message
from sipwire.transaction.events import Event
from sipwire.transaction.layer import TransactionLayer
from sipwire.transport.address import Source, Target

UDP_TARGET = Target("udp", "192.0.2.10", 5060)
TCP_TARGET = Target("tcp", "192.0.2.10", 5060)
UDP_SOURCE = Source("udp", "192.0.2.20", 5070, "192.0.2.10", 5060)
TCP_SOURCE = Source("tcp", "192.0.2.20", 40000, "192.0.2.10", 5060, flow=7)


def make_request(
    method: str = "INVITE",
    branch: str = "z9hG4bKabc123",
    *,
    cseq: int = 1,
    cseq_method: str | None = None,
    to_tag: str | None = None,
    via_host: str = "192.0.2.20:5070",
) -> Request:
    """A request as it would arrive from the wire (parsed, so typed views are cached)."""
    to = "<sip:bob@example.com>" + (f";tag={to_tag}" if to_tag else "")
    text = (
        f"{method} sip:bob@example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {via_host};branch={branch}\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:alice@example.com>;tag=f1\r\n"
        f"To: {to}\r\n"
        "Call-ID: call-1@example.com\r\n"
        f"CSeq: {cseq} {cseq_method or method}\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    message = parse_message(text.encode())
    assert isinstance(message, Request)
    return message


def reply(request: Request, status: int, to_tag: str | None = "t1") -> Response:
    """A response to ``request`` as the peer would send it (round-tripped through bytes)."""
    response = request.reply(status, to_tag=to_tag if status > 100 else None)
    parsed = parse_message(bytes(response))
    assert isinstance(parsed, Response)
    return parsed


class Clock:
    """A manual clock driving a TransactionLayer: no sleeping, exact deadlines."""

    def __init__(self, layer: TransactionLayer) -> None:
        self.layer = layer
        self.now = 0.0
        self.log: list[tuple[float, Event]] = []

    def drain(self) -> list[Event]:
        events = self.layer.events()
        self.log.extend((self.now, e) for e in events)
        return events

    def advance_to(self, when: float) -> list[Event]:
        """Fire every timer due up to ``when``, in order, moving the clock along."""
        out: list[Event] = []
        while (deadline := self.layer.next_timer()) is not None and deadline <= when:
            self.now = deadline
            self.layer.handle_timer(deadline)
            out.extend(self.drain())
        self.now = when
        return out

    def run_until_idle(self, limit: float = 1000.0) -> list[Event]:
        return self.advance_to(limit)
