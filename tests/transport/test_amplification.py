"""The amplification guard: bytes towards an unverified UDP address stay bounded."""

from __future__ import annotations

from sipwire.transport.amplification import AmplificationGuard


def test_an_unverified_address_gets_at_most_three_times_what_it_sent() -> None:
    guard = AmplificationGuard(factor=3.0, allowance=0)
    guard.received("198.51.100.7", 500)  # one forged INVITE
    sent = 0
    while guard.allow("198.51.100.7", 700):  # 200 OK retransmissions
        sent += 700
    assert sent == 1400 and sent <= 3 * 500
    assert guard.refused == 1 and guard.refused_bytes == 700


def test_first_responses_count_against_the_budget_but_are_never_refused() -> None:
    guard = AmplificationGuard(factor=3.0, allowance=0)
    guard.received("198.51.100.7", 300)
    guard.sent("198.51.100.7", 850)  # the 180 and the 200 themselves
    assert not guard.allow("198.51.100.7", 100)  # no retransmission on top


def test_a_verified_address_is_not_limited_and_the_table_is_bounded() -> None:
    guard = AmplificationGuard(factor=3.0, allowance=0, max_addresses=100)
    guard.received("192.0.2.1", 10)
    guard.verified("192.0.2.1")  # it answered one of our requests
    assert all(guard.allow("192.0.2.1", 10_000) for _ in range(100))
    for n in range(1000):
        guard.received(f"10.0.{n // 256}.{n % 256}", 1)
    assert len(guard._ledgers) == 100
