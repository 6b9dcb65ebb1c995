"""Matching (§17.1.3, §17.2.3, §9.2), table limits, and two layers talking over a
lossy fake wire: transactions still complete through retransmission."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from sipwire.message import Request, Response, parse_message
from sipwire.transaction.base import State
from sipwire.transaction.events import (
    Event,
    RequestReceived,
    ResponseReceived,
    SendRequest,
    SendResponse,
    TransactionTerminated,
)
from sipwire.transaction.layer import TransactionLayer
from sipwire.transaction.matching import server_key
from sipwire.transaction.server import InviteServerTransaction, ServerTransaction
from sipwire.transport.address import Source, Target
from tests.transaction.helpers import UDP_SOURCE, UDP_TARGET, make_request


def test_server_matching_uses_branch_sent_by_and_method() -> None:
    layer = TransactionLayer()
    layer.receive(make_request("INVITE"), UDP_SOURCE, 0)
    layer.receive(make_request("INVITE", via_host="192.0.2.99:5070"), UDP_SOURCE, 0)
    layer.receive(make_request("OPTIONS", cseq_method="OPTIONS"), UDP_SOURCE, 0)
    created = [e for e in layer.events() if isinstance(e, RequestReceived)]
    # Same branch, other sent-by: another transaction; same branch, other method: another.
    assert len(created) == 3 and len(layer) == 3


def test_cancel_has_its_own_transaction_and_finds_its_invite() -> None:
    layer = TransactionLayer()
    layer.receive(make_request("INVITE"), UDP_SOURCE, 0)
    (invite_event,) = layer.events()
    assert isinstance(invite_event, RequestReceived)
    cancel = make_request("CANCEL")
    layer.receive(cancel, UDP_SOURCE, 1)
    (cancel_event,) = layer.events()
    assert isinstance(cancel_event, RequestReceived)
    assert cancel_event.transaction is not invite_event.transaction
    assert layer.find_invite(cancel) is invite_event.transaction
    assert layer.find_invite(make_request("CANCEL", branch="z9hG4bKother")) is None


def test_rfc2543_matching_without_magic_cookie() -> None:
    layer = TransactionLayer()
    old = make_request("INVITE", branch="1234")
    layer.receive(old, UDP_SOURCE, 0)
    (event,) = layer.events()
    assert isinstance(event, RequestReceived)
    tx = event.transaction
    assert isinstance(tx, InviteServerTransaction)
    assert server_key(old)[0] == "2543"
    layer.respond(tx, old.reply(486, to_tag="zz"), 0)
    layer.events()
    layer.receive(make_request("ACK", branch="1234", to_tag="zz"), UDP_SOURCE, 0.1)
    assert tx.state is State.CONFIRMED
    # badbranch (RFC 4475): a bare magic cookie is not an RFC 3261 branch.
    assert server_key(make_request("OPTIONS", branch="z9hG4bK"))[0] == "2543"


def test_full_table_answers_503_statelessly() -> None:
    layer = TransactionLayer(max_transactions=2)
    for i in range(3):
        layer.receive(make_request("OPTIONS", branch=f"z9hG4bKfull{i}"), UDP_SOURCE, 0)
    events = layer.events()
    assert sum(isinstance(e, RequestReceived) for e in events) == 2
    (busy,) = [e for e in events if isinstance(e, SendResponse)]
    assert busy.response.status == 503 and busy.response.headers.get("Retry-After") == "5"
    assert busy.transaction is None


def test_next_timer_skips_stopped_timers() -> None:
    layer = TransactionLayer()
    tx = layer.send_request(make_request("OPTIONS"), UDP_TARGET, 0)
    assert layer.next_timer() == 0.5
    ok = parse_message(bytes(tx.request.reply(200)))
    assert isinstance(ok, Response)
    layer.receive(ok, UDP_SOURCE, 0.1)
    # E and F were stopped; only Timer K (T4 = 5 s after 0.1) remains.
    assert layer.next_timer() == pytest.approx(5.1)


# -- two layers over a lossy wire --------------------------------------------------------------


@dataclass
class Wire:
    """Connects a client layer and a server layer; drops a share of the packets."""

    client: TransactionLayer
    server: TransactionLayer
    loss: float
    rng: random.Random
    now: float = 0.0
    dropped: int = 0
    delivered: int = 0
    tu_events: list[tuple[str, Event]] = field(default_factory=list)

    client_source = Source("udp", "192.0.2.10", 5060, "192.0.2.20", 5070)
    server_source = Source("udp", "192.0.2.20", 5070, "192.0.2.10", 5060)

    def _lost(self) -> bool:
        if self.rng.random() < self.loss:
            self.dropped += 1
            return True
        self.delivered += 1
        return False

    def pump(self) -> None:
        """Move every queued event: transmissions cross the wire, the rest goes to the TUs."""
        progress = True
        while progress:
            progress = False
            for name, layer in (("client", self.client), ("server", self.server)):
                for event in layer.events():
                    progress = True
                    self._route(name, event)

    def _route(self, side: str, event: Event) -> None:
        if isinstance(event, SendRequest | SendResponse):
            message: Request | Response = (
                event.request if isinstance(event, SendRequest) else event.response
            )
            if self._lost():
                return
            wire_copy = parse_message(bytes(message))
            if side == "client":
                self.server.receive(wire_copy, self.server_source, self.now)
            else:
                self.client.receive(wire_copy, self.client_source, self.now)
            return
        self.tu_events.append((side, event))
        if side == "server" and isinstance(event, RequestReceived):
            self._server_tu(event)

    def _server_tu(self, event: RequestReceived) -> None:
        """A UAS that answers at once: 180 then 486 for INVITE, 200 otherwise."""
        transaction = event.transaction
        if not isinstance(transaction, ServerTransaction):
            return
        request = event.request
        if request.method == "INVITE":
            self.server.respond(transaction, request.reply(180, to_tag="uas"), self.now)
            self.server.respond(transaction, request.reply(486, to_tag="uas"), self.now)
        else:
            self.server.respond(transaction, request.reply(200, to_tag="uas"), self.now)

    def run(self, until: float) -> None:
        self.pump()
        while True:
            deadlines = [d for d in (self.client.next_timer(), self.server.next_timer()) if d]
            if not deadlines or min(deadlines) > until:
                return
            self.now = min(deadlines)
            self.client.handle_timer(self.now)
            self.server.handle_timer(self.now)
            self.pump()


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("method", ["OPTIONS", "INVITE"])
def test_transactions_complete_over_a_lossy_wire(method: str, seed: int) -> None:
    wire = Wire(TransactionLayer(), TransactionLayer(), loss=0.3, rng=random.Random(seed))
    request = make_request(method, branch=f"z9hG4bKlossy{seed}", via_host="192.0.2.10:5060")
    tx = wire.client.send_request(request, Target("udp", "192.0.2.20", 5070), 0.0)
    wire.run(until=40.0)
    finals = [
        e.response.status
        for side, e in wire.tu_events
        if side == "client" and isinstance(e, ResponseReceived) and e.response.status >= 200
    ]
    expected = 486 if method == "INVITE" else 200
    # With 30 % loss each way the final response still reaches the TU, exactly once.
    assert finals == [expected], (wire.dropped, wire.delivered)
    assert tx.state is State.TERMINATED
    # Everything is cleaned up once Timers D/K and H/I/J have run.
    wire.run(until=200.0)
    assert len(wire.client) == 0 and len(wire.server) == 0
    terminated = [e for _, e in wire.tu_events if isinstance(e, TransactionTerminated)]
    assert len(terminated) == 2


def test_lossless_wire_has_no_retransmissions() -> None:
    wire = Wire(TransactionLayer(), TransactionLayer(), loss=0.0, rng=random.Random(0))
    request = make_request("OPTIONS", via_host="192.0.2.10:5060")
    wire.client.send_request(request, Target("udp", "192.0.2.20", 5070), 0.0)
    wire.run(until=100.0)
    assert wire.delivered == 2  # the request and the 200


def test_a_server_transaction_lets_go_of_its_request_once_answered() -> None:
    """A NIST waits out Timer J for 64*T1 after its final response: it holds its
    response, not the request (which may be large), and the bytes are accounted."""
    layer = TransactionLayer()
    request = make_request("OPTIONS", branch="z9hG4bKbig")
    request.body = b"x" * 60_000
    layer.receive(request, UDP_SOURCE, 0)
    (event,) = layer.events()
    assert isinstance(event, RequestReceived) and isinstance(event.transaction, ServerTransaction)
    tx = event.transaction
    assert layer.pending_bytes >= 60_000
    layer.respond(tx, request.reply(200, to_tag="t"), 0)
    assert tx.request is None and tx.last_response is not None
    assert layer.pending_bytes == 0 and len(layer) == 1  # still absorbing retransmissions


def test_requests_waiting_for_an_answer_are_bounded_in_bytes() -> None:
    from sipwire.transaction.admission import Admission, AdmissionConfig

    layer = TransactionLayer(admission=Admission(AdmissionConfig(max_pending_bytes=100_000)))
    for i in range(3):
        request = make_request("OPTIONS", branch=f"z9hG4bKpend{i}")
        request.body = b"x" * 60_000  # the TU has not answered yet
        layer.receive(request, UDP_SOURCE, 0)
    events = layer.events()
    assert sum(isinstance(e, RequestReceived) for e in events) == 2
    (busy,) = [e for e in events if isinstance(e, SendResponse)]
    assert busy.response.status == 503 and busy.transaction is None
    assert layer.admission.stats.shed_pending_bytes == 1
