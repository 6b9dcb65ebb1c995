"""Client transactions against RFC 3261 Figures 5 and 6 (and RFC 6026 Figure 5),
driven by a manual clock: every retransmission time is asserted exactly."""

from __future__ import annotations

import pytest

from sipwire.errors import LocalProtocolError
from sipwire.transaction.base import State
from sipwire.transaction.client import build_ack
from sipwire.transaction.events import (
    ResponseReceived,
    SendRequest,
    TransactionTerminated,
)
from sipwire.transaction.layer import TransactionLayer
from sipwire.transaction.timers import Timer, TimerConfig
from tests.transaction.helpers import (
    TCP_TARGET,
    UDP_SOURCE,
    UDP_TARGET,
    Clock,
    make_request,
    reply,
)


def _send_times(clock: Clock) -> list[float]:
    return [t for t, e in clock.log if isinstance(e, SendRequest)]


def _start(method: str, target: object = UDP_TARGET) -> tuple[TransactionLayer, Clock]:
    layer = TransactionLayer()
    clock = Clock(layer)
    assert target in (UDP_TARGET, TCP_TARGET)
    layer.send_request(make_request(method), UDP_TARGET if target is UDP_TARGET else TCP_TARGET, 0)
    clock.drain()
    return layer, clock


# -- INVITE client transaction ---------------------------------------------------------------


def test_ict_timer_a_doubles_until_timer_b_times_out() -> None:
    layer, clock = _start("INVITE")
    (tx,) = layer._clients.values()
    assert tx.state is State.CALLING
    assert layer.next_timer() == 0.5
    events = clock.run_until_idle()
    # Sent at 0, then Timer A: 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 (500 ms doubling, no cap).
    assert _send_times(clock) == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    timeout = [e for e in events if isinstance(e, ResponseReceived)]
    assert len(timeout) == 1 and timeout[0].local and timeout[0].response.status == 408
    assert [t for t, e in clock.log if isinstance(e, TransactionTerminated)] == [32.0]
    assert tx.state is State.TERMINATED and len(layer) == 0
    assert layer.next_timer() is None


def test_ict_custom_t1_scales_every_timer() -> None:
    layer = TransactionLayer(TimerConfig(t1=0.1))
    clock = Clock(layer)
    layer.send_request(make_request("INVITE"), UDP_TARGET, 0)
    clock.drain()
    clock.run_until_idle()
    assert _send_times(clock) == pytest.approx([0.0, 0.1, 0.3, 0.7, 1.5, 3.1, 6.3])
    assert [t for t, e in clock.log if isinstance(e, TransactionTerminated)] == [pytest.approx(6.4)]


def test_ict_reliable_transport_has_no_timer_a() -> None:
    layer, clock = _start("INVITE", TCP_TARGET)
    (tx,) = layer._clients.values()
    assert tx.timer_deadline(Timer.A) is None
    assert tx.timer_deadline(Timer.B) == 32.0
    clock.run_until_idle()
    assert _send_times(clock) == [0.0]


def test_ict_provisional_stops_retransmissions_and_timer_b() -> None:
    layer, clock = _start("INVITE")
    (tx,) = layer._clients.values()
    clock.advance_to(0.7)  # one retransmission at 0.5
    layer.receive(reply(tx.request, 180), UDP_SOURCE, 0.7)
    events = clock.drain()
    assert [type(e) for e in events] == [ResponseReceived]
    assert tx.state is State.PROCEEDING
    assert tx.timer_deadline(Timer.A) is None and tx.timer_deadline(Timer.B) is None
    clock.advance_to(100.0)
    assert _send_times(clock) == [0.0, 0.5]
    assert tx.state is State.PROCEEDING  # Proceeding waits for the final response


def test_ict_non_2xx_final_sends_ack_and_waits_timer_d() -> None:
    layer, clock = _start("INVITE")
    (tx,) = layer._clients.values()
    layer.receive(reply(tx.request, 180), UDP_SOURCE, 0.1)
    final = reply(tx.request, 486)
    layer.receive(final, UDP_SOURCE, 0.2)
    events = clock.drain()
    ack_event, response_event = events[1], events[2]
    assert isinstance(ack_event, SendRequest) and ack_event.request.method == "ACK"
    assert isinstance(response_event, ResponseReceived) and response_event.response.status == 486
    assert tx.state is State.COMPLETED
    assert tx.timer_deadline(Timer.D) == pytest.approx(32.2)
    # A retransmitted 486 is ACKed again and not passed to the TU.
    layer.receive(final, UDP_SOURCE, 1.0)
    again = clock.drain()
    assert [type(e) for e in again] == [SendRequest]
    assert isinstance(again[0], SendRequest) and again[0].retransmission
    clock.run_until_idle()
    assert [t for t, e in clock.log if isinstance(e, TransactionTerminated)] == [
        pytest.approx(32.2)
    ]


def test_ict_non_2xx_over_tcp_terminates_at_once() -> None:
    layer, clock = _start("INVITE", TCP_TARGET)
    (tx,) = layer._clients.values()
    layer.receive(reply(tx.request, 503), UDP_SOURCE, 1.0)
    kinds = [type(e) for e in clock.drain()]
    assert kinds == [SendRequest, ResponseReceived, TransactionTerminated]
    assert len(layer) == 0


def test_ack_for_non_2xx_follows_17_1_1_3() -> None:
    invite = make_request("INVITE")
    invite.headers.add("Route", "<sip:proxy.example.com;lr>")
    response = reply(invite, 404, to_tag="x9")
    ack = build_ack(invite, response)
    assert ack.method == "ACK"
    assert str(ack.uri) == str(invite.uri)
    assert [str(v) for v in ack.via] == [str(invite.via[0])]
    assert ack.to.tag == "x9"
    assert ack.from_ == invite.from_ and ack.call_id == invite.call_id
    assert ack.cseq.seq == invite.cseq.seq and ack.cseq.method == "ACK"
    assert [str(r.uri) for r in ack.route] == ["sip:proxy.example.com;lr"]
    assert ack.body == b""


def test_ict_2xx_goes_to_accepted_and_passes_every_2xx() -> None:
    layer, clock = _start("INVITE")
    (tx,) = layer._clients.values()
    ok = reply(tx.request, 200)
    layer.receive(ok, UDP_SOURCE, 1.0)
    assert tx.state is State.ACCEPTED
    assert [type(e) for e in clock.drain()] == [ResponseReceived]
    # RFC 6026: a retransmitted 2xx (or one from another fork) still reaches the TU.
    other_fork = reply(tx.request, 200, to_tag="t2")
    layer.receive(other_fork, UDP_SOURCE, 2.0)
    events = clock.drain()
    assert len(events) == 1 and isinstance(events[0], ResponseReceived)
    assert events[0].response.to.tag == "t2" and events[0].transaction is tx
    assert tx.timer_deadline(Timer.M) == 33.0
    clock.run_until_idle()
    assert tx.state is State.TERMINATED
    # After Timer M, 2xx retransmissions arrive without a transaction.
    layer.receive(ok, UDP_SOURCE, 40.0)
    (stray,) = clock.drain()
    assert isinstance(stray, ResponseReceived) and stray.transaction is None


def test_ict_transport_error_reports_503() -> None:
    layer, clock = _start("INVITE")
    (tx,) = layer._clients.values()
    layer.transport_error(tx, 0.0)
    events = clock.drain()
    assert isinstance(events[0], ResponseReceived)
    assert events[0].local and events[0].response.status == 503
    assert isinstance(events[1], TransactionTerminated)
    assert len(layer) == 0


# -- non-INVITE client transaction -----------------------------------------------------------


def test_nict_timer_e_doubles_to_t2_then_timer_f() -> None:
    _layer, clock = _start("OPTIONS")
    clock.run_until_idle()
    # Sent at 0, Timer E: 0.5, 1.5, 3.5, 7.5 then every T2 = 4 s until Timer F at 32 s.
    assert _send_times(clock) == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    (timeout,) = [e for _, e in clock.log if isinstance(e, ResponseReceived)]
    assert timeout.local and timeout.response.status == 408
    assert [t for t, e in clock.log if isinstance(e, TransactionTerminated)] == [32.0]


def test_nict_proceeding_retransmits_every_t2() -> None:
    layer, clock = _start("REGISTER")
    (tx,) = layer._clients.values()
    clock.advance_to(0.6)  # retransmission at 0.5, next due 1.5
    layer.receive(reply(tx.request, 100), UDP_SOURCE, 0.6)
    assert tx.state is State.PROCEEDING
    clock.advance_to(12.0)
    # 1.5 was armed in Trying; from then on Proceeding resets E to T2.
    assert _send_times(clock) == [0.0, 0.5, 1.5, 5.5, 9.5]


def test_nict_final_response_then_timer_k() -> None:
    layer, clock = _start("BYE")
    (tx,) = layer._clients.values()
    ok = reply(tx.request, 200)
    layer.receive(ok, UDP_SOURCE, 0.2)
    assert [type(e) for e in clock.drain()] == [ResponseReceived]
    assert tx.state is State.COMPLETED and tx.timer_deadline(Timer.K) == pytest.approx(5.2)
    layer.receive(ok, UDP_SOURCE, 1.0)  # absorbed
    assert clock.drain() == []
    clock.run_until_idle()
    assert tx.state is State.TERMINATED
    assert _send_times(clock) == [0.0]


def test_nict_over_tcp_no_timer_e_and_k_zero() -> None:
    layer, clock = _start("OPTIONS", TCP_TARGET)
    (tx,) = layer._clients.values()
    assert tx.timer_deadline(Timer.E) is None
    layer.receive(reply(tx.request, 200), UDP_SOURCE, 0.1)
    assert [type(e) for e in clock.drain()] == [ResponseReceived, TransactionTerminated]


def test_response_with_other_method_does_not_match() -> None:
    layer, clock = _start("INVITE")
    (tx,) = layer._clients.values()
    cancel_response = reply(make_request("CANCEL", cseq_method="CANCEL"), 200)
    layer.receive(cancel_response, UDP_SOURCE, 0.1)
    (event,) = clock.drain()
    assert isinstance(event, ResponseReceived) and event.transaction is None
    assert tx.state is State.CALLING


def test_send_request_refuses_ack_and_duplicate_branch() -> None:
    layer = TransactionLayer()
    with pytest.raises(LocalProtocolError):
        layer.send_request(make_request("ACK"), UDP_TARGET, 0)
    layer.send_request(make_request("OPTIONS"), UDP_TARGET, 0)
    with pytest.raises(LocalProtocolError):
        layer.send_request(make_request("OPTIONS"), UDP_TARGET, 0)
