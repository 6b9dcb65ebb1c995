"""RFC 3263 planner: transport selection (§4.1), port and address (§4.2), SRV order (§4.3)."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

import pytest

from sipwire import SipUri
from sipwire.errors import LocalProtocolError
from sipwire.transport.address import Target
from sipwire.transport.rfc3263 import (
    Answer,
    Family,
    Locator,
    NaptrRecord,
    Query,
    ResolveError,
    SrvRecord,
    TargetSet,
    filter_naptr,
    is_ip_address,
    locate,
    order_srv,
    srv_name,
)

Answers = Mapping[Query, Sequence[Answer]]


class FixedRandom:
    """A RandomSource returning the given values in turn."""

    def __init__(self, *values: float) -> None:
        self.values = list(values)

    def random(self) -> float:
        return self.values.pop(0)


def naptr(order: int, pref: int, service: str, replacement: str) -> NaptrRecord:
    return NaptrRecord(order, pref, "s", service, "", replacement)


def run(
    uri: str,
    answers: Answers | None = None,
    *,
    seed: int = 0,
    transports: Sequence[str] = ("tls", "tcp", "udp"),
    families: Sequence[Family] = ("A", "AAAA"),
) -> list[Target]:
    return locate(
        SipUri.parse(uri),
        answers or {},
        random.Random(seed),
        transports=transports,
        families=families,
    )


def asked(uri: str, answers: Answers | None = None) -> list[Query]:
    """Every query the planner makes for ``uri`` against ``answers``, in order."""
    locator = Locator(SipUri.parse(uri), random.Random(0))
    seen: list[Query] = []
    while not locator.done:
        for query in locator.queries():
            seen.append(query)
            locator.feed(query, (answers or {}).get(query, ()))
    return seen


def q(name: str, rdtype: str) -> Query:
    return Query(name, rdtype)  # type: ignore[arg-type]


# ------------------------------------------------------------ §4.1 numeric IP, port


def test_numeric_ipv4_needs_no_dns() -> None:
    assert asked("sip:192.0.2.1") == []
    assert run("sip:192.0.2.1") == [Target("udp", "192.0.2.1", 5060)]


def test_numeric_ipv6_strips_brackets() -> None:
    assert run("sip:[2001:db8::1]:5070") == [Target("udp", "2001:db8::1", 5070)]


def test_numeric_ip_sips_defaults_to_tls_5061() -> None:
    assert run("sips:192.0.2.1") == [Target("tls", "192.0.2.1", 5061)]


def test_numeric_ip_with_transport_param() -> None:
    assert run("sip:192.0.2.1;transport=tcp") == [Target("tcp", "192.0.2.1", 5060)]
    assert run("sip:192.0.2.1:5080;transport=TCP") == [Target("tcp", "192.0.2.1", 5080)]
    assert run("sips:192.0.2.1;transport=tcp") == [Target("tls", "192.0.2.1", 5061)]


def test_numeric_ip_tcp_only_client_falls_back_to_tcp() -> None:
    assert run("sip:192.0.2.1", transports=("tcp",)) == [Target("tcp", "192.0.2.1", 5060)]


def test_explicit_port_skips_naptr_and_srv() -> None:
    answers = {q("example.com", "A"): ["192.0.2.7"], q("example.com", "AAAA"): ["2001:db8::7"]}
    assert asked("sip:example.com:5070", answers) == [
        q("example.com", "A"),
        q("example.com", "AAAA"),
    ]
    assert run("sip:example.com:5070", answers) == [
        Target("udp", "192.0.2.7", 5070),
        Target("udp", "2001:db8::7", 5070),
    ]
    assert run("sips:example.com:5071", answers)[0] == Target("tls", "192.0.2.7", 5071)


def test_explicit_port_and_transport() -> None:
    answers = {q("example.com", "A"): ["192.0.2.7"]}
    assert run("sip:example.com:5070;transport=tcp", answers) == [Target("tcp", "192.0.2.7", 5070)]


# ---------------------------------------------------------- §4.1 transport param


def test_transport_param_skips_naptr_and_queries_its_srv() -> None:
    answers: dict[Query, list[Answer]] = {
        q("_sip._tcp.example.com", "SRV"): [SrvRecord(0, 0, 5090, "pbx.example.com")],
        q("pbx.example.com", "A"): ["192.0.2.9"],
    }
    assert asked("sip:example.com;transport=tcp", answers)[0] == q("_sip._tcp.example.com", "SRV")
    assert run("sip:example.com;transport=tcp", answers) == [Target("tcp", "192.0.2.9", 5090)]


def test_transport_param_without_srv_uses_a_and_default_port() -> None:
    answers = {q("example.com", "A"): ["192.0.2.1"]}
    assert run("sip:example.com;transport=tcp", answers) == [Target("tcp", "192.0.2.1", 5060)]
    assert run("sip:example.com;transport=tls", answers) == [Target("tls", "192.0.2.1", 5061)]


def test_sips_transport_tcp_means_tls_and_sips_srv() -> None:
    assert asked("sips:example.com;transport=tcp")[0] == q("_sips._tcp.example.com", "SRV")


def test_websocket_transport_srv_names() -> None:
    assert srv_name("ws", "Example.COM.") == "_sip._ws.example.com"
    assert srv_name("wss", "example.com") == "_sips._ws.example.com"
    locator = Locator(
        SipUri.parse("sips:example.com;transport=ws"), FixedRandom(), transports=["wss"]
    )
    assert locator.queries() == [q("_sips._ws.example.com", "SRV")]
    with pytest.raises(ResolveError):  # wss not among the supported transports
        run("sips:example.com;transport=ws")


def test_sips_over_udp_is_refused() -> None:
    with pytest.raises(ResolveError) as info:
        run("sips:example.com;transport=udp")
    assert info.value.status == 503


def test_unknown_or_unsupported_transport_param() -> None:
    with pytest.raises(ResolveError):
        run("sip:example.com;transport=sctp")
    with pytest.raises(ResolveError):
        run("sip:example.com;transport=udp", transports=("tcp",))


# ------------------------------------------------------------- §4.1 NAPTR


ZONE_NAPTR: dict[Query, list[Answer]] = {
    q("example.com", "NAPTR"): [
        naptr(20, 10, "SIP+D2U", "_sip._udp.example.com"),
        naptr(10, 50, "SIP+D2T", "_sip._tcp.example.com"),
        naptr(10, 40, "SIPS+D2T", "_sips._tcp.example.com"),
    ],
    q("_sips._tcp.example.com", "SRV"): [SrvRecord(0, 0, 5061, "tls.example.com")],
    q("_sip._tcp.example.com", "SRV"): [SrvRecord(0, 0, 5060, "tcp.example.com")],
    q("_sip._udp.example.com", "SRV"): [SrvRecord(0, 0, 5060, "udp.example.com")],
    q("tls.example.com", "A"): ["192.0.2.1"],
    q("tcp.example.com", "A"): ["192.0.2.2"],
    q("udp.example.com", "A"): ["192.0.2.3"],
}


def test_naptr_order_then_preference() -> None:
    assert run("sip:example.com", ZONE_NAPTR) == [
        Target("tls", "192.0.2.1", 5061),
        Target("tcp", "192.0.2.2", 5060),
        Target("udp", "192.0.2.3", 5060),
    ]


def test_naptr_queries_first_then_srv_of_replacements_then_addresses() -> None:
    queries = asked("sip:example.com", ZONE_NAPTR)
    assert queries[0] == q("example.com", "NAPTR")
    assert queries[1:4] == [
        q("_sips._tcp.example.com", "SRV"),
        q("_sip._tcp.example.com", "SRV"),
        q("_sip._udp.example.com", "SRV"),
    ]
    assert {x.rdtype for x in queries[4:]} == {"A", "AAAA"}


def test_naptr_sips_uri_keeps_only_sips_services() -> None:
    assert run("sips:example.com", ZONE_NAPTR) == [Target("tls", "192.0.2.1", 5061)]


def test_naptr_service_filtering() -> None:
    records = [
        naptr(10, 10, "SIP+D2S", "_sip._sctp.example.com"),  # SCTP: not supported
        naptr(10, 20, "E2U+sip", "x.example.com"),  # ENUM, not RFC 3263
        NaptrRecord(10, 30, "u", "SIP+D2T", "!^.*$!sip:x@y!", ""),  # not an "s" record
        naptr(10, 40, "sip+d2u", "_sip._udp.example.com"),  # case-insensitive
        naptr(10, 50, "SIP+D2W", "_sip._ws.example.com"),  # RFC 7118
        naptr(10, 60, "SIPS+D2W", "_sips._ws.example.com"),
    ]
    assert filter_naptr(records, secure=False) == [("udp", "_sip._udp.example.com")]
    assert filter_naptr(records, secure=False, transports=("udp", "ws", "wss")) == [
        ("udp", "_sip._udp.example.com"),
        ("ws", "_sip._ws.example.com"),
        ("wss", "_sips._ws.example.com"),
    ]
    assert filter_naptr(records, secure=True, transports=("udp", "ws", "wss")) == [
        ("wss", "_sips._ws.example.com")
    ]


def test_naptr_unsupported_services_only_fall_back_to_srv() -> None:
    answers: dict[Query, list[Answer]] = {
        q("example.com", "NAPTR"): [naptr(10, 10, "SIP+D2S", "_sip._sctp.example.com")],
        q("_sip._udp.example.com", "SRV"): [SrvRecord(0, 0, 5062, "udp.example.com")],
        q("udp.example.com", "A"): ["192.0.2.3"],
    }
    assert run("sip:example.com", answers) == [Target("udp", "192.0.2.3", 5062)]


def test_naptr_sips_with_only_sip_services_falls_back_to_sips_srv() -> None:
    answers: dict[Query, list[Answer]] = {
        q("example.com", "NAPTR"): [naptr(10, 10, "SIP+D2U", "_sip._udp.example.com")],
    }
    assert asked("sips:example.com", answers)[1:] == [
        q("_sips._tcp.example.com", "SRV"),
        q("example.com", "A"),
        q("example.com", "AAAA"),
    ]


def test_naptr_replacement_without_srv_records_falls_back_to_a() -> None:
    answers: dict[Query, list[Answer]] = {
        q("example.com", "NAPTR"): [naptr(10, 10, "SIP+D2T", "_sip._tcp.example.com")],
        q("example.com", "A"): ["192.0.2.5"],
    }
    assert run("sip:example.com", answers) == [Target("udp", "192.0.2.5", 5060)]


# ------------------------------------------------------------- §4.1 no NAPTR → SRV


def test_no_naptr_queries_srv_for_each_supported_transport() -> None:
    assert asked("sip:example.com")[:4] == [
        q("example.com", "NAPTR"),
        q("_sips._tcp.example.com", "SRV"),
        q("_sip._tcp.example.com", "SRV"),
        q("_sip._udp.example.com", "SRV"),
    ]


def test_no_naptr_sips_queries_only_sips_tcp() -> None:
    assert asked("sips:example.com")[:2] == [
        q("example.com", "NAPTR"),
        q("_sips._tcp.example.com", "SRV"),
    ]
    assert asked("sips:example.com")[2:] == [q("example.com", "A"), q("example.com", "AAAA")]


def test_no_naptr_srv_targets_in_client_transport_order() -> None:
    answers = {k: v for k, v in ZONE_NAPTR.items() if k.rdtype != "NAPTR"}
    assert [t.transport for t in run("sip:example.com", answers)] == ["tls", "tcp", "udp"]
    assert [t.transport for t in run("sip:example.com", answers, transports=("udp", "tcp"))] == [
        "udp",
        "tcp",
    ]


def test_no_srv_uses_a_aaaa_default_transport_and_port() -> None:
    answers = {q("example.com", "A"): ["192.0.2.1"], q("example.com", "AAAA"): ["2001:db8::1"]}
    assert run("sip:example.com", answers) == [
        Target("udp", "192.0.2.1", 5060),
        Target("udp", "2001:db8::1", 5060),
    ]
    assert run("sips:example.com", answers) == [
        Target("tls", "192.0.2.1", 5061),
        Target("tls", "2001:db8::1", 5061),
    ]


def test_nothing_resolves_gives_no_targets() -> None:
    assert run("sip:nowhere.example") == []


# ------------------------------------------------------------- §4.2 A / AAAA


def test_ipv6_preference_is_configurable() -> None:
    answers = {q("example.com", "A"): ["192.0.2.1"], q("example.com", "AAAA"): ["2001:db8::1"]}
    assert run("sip:example.com:5060", answers, families=("AAAA", "A")) == [
        Target("udp", "2001:db8::1", 5060),
        Target("udp", "192.0.2.1", 5060),
    ]
    assert run("sip:example.com:5060", answers, families=("A",)) == [
        Target("udp", "192.0.2.1", 5060)
    ]


def test_addresses_keep_resolver_order_and_duplicates_are_dropped() -> None:
    answers: dict[Query, list[Answer]] = {
        q("_sip._udp.example.com", "SRV"): [
            SrvRecord(0, 0, 5060, "a.example.com"),
            SrvRecord(1, 0, 5060, "b.example.com"),
        ],
        q("a.example.com", "A"): ["192.0.2.2", "192.0.2.1"],
        q("b.example.com", "A"): ["192.0.2.1", "192.0.2.3"],
    }
    assert [t.host for t in run("sip:example.com", answers)] == [
        "192.0.2.2",
        "192.0.2.1",
        "192.0.2.3",
    ]


def test_maddr_overrides_host() -> None:
    assert run("sip:alice@example.com;maddr=192.0.2.99") == [Target("udp", "192.0.2.99", 5060)]
    assert run("sip:example.com;maddr=[2001:db8::5]") == [Target("udp", "2001:db8::5", 5060)]
    answers = {q("proxy.example.net", "A"): ["192.0.2.50"]}
    assert asked("sip:example.com;maddr=proxy.example.net")[0] == q("proxy.example.net", "NAPTR")
    assert run("sip:example.com;maddr=proxy.example.net", answers) == [
        Target("udp", "192.0.2.50", 5060)
    ]


def test_is_ip_address() -> None:
    assert is_ip_address("192.0.2.1")
    assert is_ip_address("[::1]")
    assert is_ip_address("2001:db8::1")
    assert not is_ip_address("example.com")
    assert not is_ip_address("999.1.1.1")


# ------------------------------------------------------------- §4.3 / RFC 2782 SRV order


def test_srv_priority_ascending() -> None:
    records = [
        SrvRecord(20, 0, 1, "c"),
        SrvRecord(10, 0, 2, "a"),
        SrvRecord(15, 0, 3, "b"),
    ]
    assert [r.target for r in order_srv(records, random.Random(1))] == ["a", "b", "c"]


def test_srv_weighted_choice_follows_the_running_sum() -> None:
    records = [SrvRecord(0, 10, 1, "a"), SrvRecord(0, 30, 2, "b"), SrvRecord(0, 60, 3, "c")]
    # total 100: pick = int(r * 101); running sums 10, 40, 100.
    assert [r.target for r in order_srv(records, FixedRandom(0.0, 0.0, 0.0))] == ["a", "b", "c"]
    # 0.2 → 20 → "b" (running 40); then a+c total 70: 0.5 → 35 → "c"; then "a".
    assert [r.target for r in order_srv(records, FixedRandom(0.2, 0.5, 0.0))] == ["b", "c", "a"]
    # r close to 1 never overshoots the total.
    assert [r.target for r in order_srv(records, FixedRandom(0.9999999, 0.99, 0.0))] == [
        "c",
        "b",
        "a",
    ]


def test_srv_weighted_choice_is_proportional() -> None:
    records = [SrvRecord(0, 1, 1, "light"), SrvRecord(0, 9, 2, "heavy")]
    rng = random.Random(42)
    firsts = [order_srv(records, rng)[0].target for _ in range(2000)]
    share = firsts.count("heavy") / len(firsts)
    # RFC 2782 draws from [0, total] inclusive: "light" wins on 0 and 1, i.e. 2 in 11.
    assert 0.78 < share < 0.86


def test_srv_weight_zero_is_rarely_first() -> None:
    records = [SrvRecord(0, 10, 1, "weighted"), SrvRecord(0, 0, 2, "zero")]
    # Weight-0 records go to the front of the list: they win only on a draw of 0.
    assert [r.target for r in order_srv(records, FixedRandom(0.0, 0.0))] == ["zero", "weighted"]
    assert [r.target for r in order_srv(records, FixedRandom(0.1, 0.0))] == ["weighted", "zero"]
    rng = random.Random(7)
    firsts = [order_srv(records, rng)[0].target for _ in range(1100)]
    assert firsts.count("zero") < 200


def test_srv_all_weights_zero_keeps_every_record() -> None:
    records = [SrvRecord(0, 0, 1, "a"), SrvRecord(0, 0, 2, "b"), SrvRecord(0, 0, 3, "c")]
    assert sorted(r.target for r in order_srv(records, random.Random(3))) == ["a", "b", "c"]


def test_srv_dot_target_means_no_service() -> None:
    assert order_srv([SrvRecord(0, 0, 0, ".")], random.Random(0)) == []
    answers: dict[Query, list[Answer]] = {
        q("_sip._udp.example.com", "SRV"): [SrvRecord(0, 0, 0, ".")],
        q("example.com", "A"): ["192.0.2.1"],
    }
    assert run("sip:example.com", answers) == [Target("udp", "192.0.2.1", 5060)]


def test_srv_ordering_is_deterministic_with_a_seed() -> None:
    answers: dict[Query, list[Answer]] = {
        q("_sip._udp.example.com", "SRV"): [
            SrvRecord(0, 50, 5060, "a.example.com"),
            SrvRecord(0, 50, 5060, "b.example.com"),
            SrvRecord(1, 0, 5060, "c.example.com"),
        ],
        q("a.example.com", "A"): ["192.0.2.1"],
        q("b.example.com", "A"): ["192.0.2.2"],
        q("c.example.com", "A"): ["192.0.2.3"],
    }
    orders = {tuple(t.host for t in run("sip:example.com", answers, seed=s)) for s in range(20)}
    assert orders == {
        ("192.0.2.1", "192.0.2.2", "192.0.2.3"),
        ("192.0.2.2", "192.0.2.1", "192.0.2.3"),
    }
    assert run("sip:example.com", answers, seed=5) == run("sip:example.com", answers, seed=5)


# ------------------------------------------------------------- Locator protocol


def test_locator_rejects_unexpected_answers() -> None:
    locator = Locator(SipUri.parse("sip:example.com"), random.Random(0))
    assert locator.queries() == [q("example.com", "NAPTR")]
    with pytest.raises(LocalProtocolError):
        locator.feed(q("example.com", "A"), ["192.0.2.1"])
    with pytest.raises(LocalProtocolError):
        locator.feed(q("example.com", "NAPTR"), ["192.0.2.1"])
    with pytest.raises(LocalProtocolError):
        locator.targets()
    assert not locator.done


def test_locator_waits_for_every_query_of_a_stage() -> None:
    locator = Locator(SipUri.parse("sip:example.com"), random.Random(0))
    locator.feed(q("example.com", "NAPTR"), [])
    srv = locator.queries()
    assert len(srv) == 3
    locator.feed(srv[0], [])
    assert locator.queries() == srv[1:]


# ------------------------------------------------------------- TargetSet (§4.3)


def test_target_set_failover() -> None:
    a, b, c = (Target("udp", f"192.0.2.{i}", 5060) for i in (1, 2, 3))
    targets = TargetSet([a, b, a, c])
    assert len(targets) == 3
    assert targets.next() == a
    assert targets.next() == a  # stays until marked
    targets.mark_failed(a)
    assert targets.next() == b
    targets.mark_failed(c)
    assert targets.remaining() == [b]
    targets.mark_failed(b)
    assert targets.next() is None
    assert targets.exhausted
    assert list(targets) == [a, b, c]


def test_empty_target_set_is_exhausted() -> None:
    assert TargetSet([]).exhausted
