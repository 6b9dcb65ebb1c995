"""Server transactions against RFC 3261 Figures 7 and 8 and RFC 6026 Figure 7."""

from __future__ import annotations

import pytest

from sipwire.errors import LocalProtocolError
from sipwire.message import Request
from sipwire.transaction.base import State
from sipwire.transaction.events import (
    RequestReceived,
    SendResponse,
    TransactionTerminated,
    TransactionTimedOut,
)
from sipwire.transaction.layer import TransactionLayer
from sipwire.transaction.server import InviteServerTransaction, ServerTransaction
from sipwire.transaction.timers import Timer
from tests.transaction.helpers import TCP_SOURCE, UDP_SOURCE, Clock, make_request, reply


def _receive(
    method: str, source: object = UDP_SOURCE
) -> tuple[TransactionLayer, Clock, ServerTransaction]:
    layer = TransactionLayer()
    clock = Clock(layer)
    layer.receive(make_request(method), UDP_SOURCE if source is UDP_SOURCE else TCP_SOURCE, 0.0)
    (event,) = layer.events()
    assert isinstance(event, RequestReceived) and event.transaction is not None
    assert isinstance(event.transaction, ServerTransaction)
    _REQUESTS.clear()
    _REQUESTS[id(event.transaction)] = event.transaction.request
    return layer, clock, event.transaction


def _req(tx: ServerTransaction) -> Request:
    """The request a server transaction was made for (kept by the test: the
    transaction lets go of it once its final response is out)."""
    request = tx.request or _REQUESTS.get(id(tx))
    assert request is not None
    return request


_REQUESTS: dict[int, Request | None] = {}


def _sent(clock: Clock) -> list[tuple[float, int]]:
    return [(t, e.response.status) for t, e in clock.log if isinstance(e, SendResponse)]


# -- INVITE server transaction ---------------------------------------------------------------


def test_ist_sends_100_trying_after_200_ms_without_tu_answer() -> None:
    _layer, clock, tx = _receive("INVITE")
    assert tx.state is State.PROCEEDING
    clock.advance_to(0.199)
    assert _sent(clock) == []
    clock.advance_to(0.2)
    assert _sent(clock) == [(0.2, 100)]


def test_ist_no_100_when_tu_answers_in_time() -> None:
    layer, clock, tx = _receive("INVITE")
    layer.respond(tx, _req(tx).reply(180, to_tag="a"), 0.05)
    clock.drain()
    clock.advance_to(5.0)
    assert _sent(clock) == [(0.0, 180)]


def test_ist_retransmitted_invite_gets_last_provisional() -> None:
    layer, clock, tx = _receive("INVITE")
    layer.respond(tx, _req(tx).reply(180, to_tag="a"), 0.0)
    layer.receive(make_request("INVITE"), UDP_SOURCE, 1.0)
    clock.drain()
    assert [s for _, s in _sent(clock)] == [180, 180]
    retransmission = [e for _, e in clock.log if isinstance(e, SendResponse)][1]
    assert retransmission.retransmission
    # ... and the TU did not see the retransmitted INVITE
    assert not [e for _, e in clock.log if isinstance(e, RequestReceived)]


def test_ist_final_non_2xx_timer_g_doubles_to_t2_until_timer_h() -> None:
    layer, clock, tx = _receive("INVITE")
    layer.respond(tx, _req(tx).reply(486, to_tag="a"), 0.0)
    clock.drain()
    assert tx.state is State.COMPLETED
    clock.run_until_idle()
    # Timer G: 0.5, 1.5, 3.5, 7.5, then every T2 = 4 s; Timer H at 64*T1 = 32 s.
    times = [t for t, status in _sent(clock)]
    assert times == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    (failure,) = [e for _, e in clock.log if isinstance(e, TransactionTimedOut)]
    assert "Timer H" in failure.reason
    assert [t for t, e in clock.log if isinstance(e, TransactionTerminated)] == [32.0]


def test_ist_ack_confirms_then_timer_i() -> None:
    layer, clock, tx = _receive("INVITE")
    layer.respond(tx, _req(tx).reply(603, to_tag="a"), 0.0)
    clock.drain()
    clock.advance_to(1.0)  # one retransmission at 0.5
    ack = make_request("ACK", to_tag="a")
    layer.receive(ack, UDP_SOURCE, 1.0)
    assert tx.state is State.CONFIRMED
    assert tx.timer_deadline(Timer.G) is None and tx.timer_deadline(Timer.H) is None
    assert tx.timer_deadline(Timer.I) == 6.0
    layer.receive(ack, UDP_SOURCE, 2.0)  # absorbed
    layer.receive(make_request("INVITE"), UDP_SOURCE, 2.0)  # absorbed too
    clock.run_until_idle()
    assert _sent(clock) == [(0.0, 603), (0.5, 603)]
    assert not [e for _, e in clock.log if isinstance(e, RequestReceived)]
    assert [t for t, e in clock.log if isinstance(e, TransactionTerminated)] == [6.0]


def test_ist_retransmitted_invite_in_completed_repeats_final() -> None:
    layer, clock, tx = _receive("INVITE")
    layer.respond(tx, _req(tx).reply(404, to_tag="a"), 0.0)
    layer.receive(make_request("INVITE"), UDP_SOURCE, 0.1)
    clock.drain()
    assert _sent(clock) == [(0.0, 404), (0.0, 404)]


def test_ist_over_tcp_no_timer_g_and_i_zero() -> None:
    layer, _clock, tx = _receive("INVITE", TCP_SOURCE)
    layer.respond(tx, _req(tx).reply(486, to_tag="a"), 0.0)
    assert tx.timer_deadline(Timer.G) is None and tx.timer_deadline(Timer.H) == 32.0
    layer.receive(make_request("ACK", to_tag="a"), TCP_SOURCE, 0.3)
    assert tx.state is State.TERMINATED


def test_ist_2xx_accepted_absorbs_invites_passes_acks_until_timer_l() -> None:
    layer, clock, tx = _receive("INVITE")
    ok = _req(tx).reply(200, to_tag="a")
    layer.respond(tx, ok, 0.0)
    assert tx.state is State.ACCEPTED and tx.timer_deadline(Timer.L) == 32.0
    layer.respond(tx, ok, 0.5)  # the TU's 2xx retransmission (§13.3.1.4) goes out
    layer.receive(make_request("INVITE"), UDP_SOURCE, 0.6)  # absorbed (RFC 6026)
    ack = make_request("ACK", to_tag="a")  # an ACK with the INVITE's branch
    layer.receive(ack, UDP_SOURCE, 0.7)
    clock.drain()
    assert _sent(clock) == [(0.0, 200), (0.0, 200)]
    (ack_event,) = [e for _, e in clock.log if isinstance(e, RequestReceived)]
    assert ack_event.request.method == "ACK" and ack_event.transaction is None
    with pytest.raises(LocalProtocolError):
        layer.respond(tx, _req(tx).reply(486), 1.0)
    clock.run_until_idle()
    assert [t for t, e in clock.log if isinstance(e, TransactionTerminated)] == [32.0]


def test_ist_transport_error() -> None:
    layer, clock, tx = _receive("INVITE")
    layer.respond(tx, _req(tx).reply(500), 0.0)
    layer.transport_error(tx, 0.0)
    kinds = [type(e) for e in clock.drain()]
    assert kinds == [SendResponse, TransactionTimedOut, TransactionTerminated]


# -- non-INVITE server transaction -----------------------------------------------------------


def test_nist_trying_absorbs_then_repeats_final_until_timer_j() -> None:
    layer, clock, tx = _receive("OPTIONS")
    assert tx.state is State.TRYING
    layer.receive(make_request("OPTIONS"), UDP_SOURCE, 0.5)
    assert clock.drain() == []  # Trying absorbs
    layer.respond(tx, _req(tx).reply(200), 1.0)
    layer.receive(make_request("OPTIONS"), UDP_SOURCE, 2.0)
    clock.drain()
    assert _sent(clock) == [(0.0, 200), (0.0, 200)]
    assert tx.state is State.COMPLETED and tx.timer_deadline(Timer.J) == 33.0
    clock.run_until_idle()
    assert [t for t, e in clock.log if isinstance(e, TransactionTerminated)] == [33.0]


def test_nist_proceeding_repeats_provisional() -> None:
    layer, clock, tx = _receive("REGISTER")
    layer.respond(tx, _req(tx).reply(100), 0.0)
    assert tx.state is State.PROCEEDING
    layer.receive(make_request("REGISTER"), UDP_SOURCE, 0.5)
    clock.drain()
    assert [s for _, s in _sent(clock)] == [100, 100]


def test_nist_reliable_terminates_on_final() -> None:
    layer, clock, tx = _receive("BYE", TCP_SOURCE)
    layer.respond(tx, _req(tx).reply(200), 0.0)
    assert [type(e) for e in clock.drain()] == [SendResponse, TransactionTerminated]
    assert len(layer) == 0


def test_nist_refuses_second_final() -> None:
    layer, _clock, tx = _receive("OPTIONS")
    layer.respond(tx, _req(tx).reply(200), 0.0)
    with pytest.raises(LocalProtocolError):
        layer.respond(tx, _req(tx).reply(500), 0.0)


def test_response_goes_back_to_the_source() -> None:
    layer, clock, tx = _receive("OPTIONS", TCP_SOURCE)
    layer.respond(tx, _req(tx).reply(200), 0.0)
    (sent,) = [e for _, e in clock.log if isinstance(e, SendResponse)] or [
        e for e in clock.drain() if isinstance(e, SendResponse)
    ]
    assert sent.source == TCP_SOURCE and sent.source.flow == 7


def test_ack_for_2xx_without_transaction_reaches_tu() -> None:
    layer = TransactionLayer()
    ack = make_request("ACK", branch="z9hG4bKnew-ack", to_tag="a")
    layer.receive(ack, UDP_SOURCE, 0.0)
    (event,) = layer.events()
    assert isinstance(event, RequestReceived) and event.transaction is None
    assert len(layer) == 0


def test_invite_server_transaction_type() -> None:
    _layer, _clock, tx = _receive("INVITE")
    assert isinstance(tx, InviteServerTransaction) and tx.kind == "IST"
    assert reply(_req(tx), 180).status == 180
