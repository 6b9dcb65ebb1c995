"""RFC 3263 over real DNS: sipwire.aio.dns.Resolver against a loopback DNS server."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from sipwire import SipUri
from sipwire.aio.dns import ResolveError, Resolver
from sipwire.errors import SipError
from sipwire.transport.address import Target
from sipwire.transport.rfc3263 import Query, SrvRecord
from tests.aio.dnsserver import DnsServer, Record

ZONE: list[Record] = [
    # NAPTR → SRV → A chain (RFC 3263 §4.1 example, one order, three preferences).
    ("example.test", "NAPTR", '50 50 "s" "SIPS+D2T" "" _sips._tcp.example.test.'),
    ("example.test", "NAPTR", '90 50 "s" "SIP+D2T" "" _sip._tcp.example.test.'),
    ("example.test", "NAPTR", '100 50 "s" "SIP+D2U" "" _sip._udp.example.test.'),
    ("_sips._tcp.example.test", "SRV", "0 0 5061 tls1.example.test."),
    ("_sip._tcp.example.test", "SRV", "0 0 5060 tcp1.example.test."),
    ("_sip._udp.example.test", "SRV", "0 0 5060 udp1.example.test."),
    ("tls1.example.test", "A", "192.0.2.1"),
    ("tls1.example.test", "AAAA", "2001:db8::1"),
    ("tcp1.example.test", "A", "192.0.2.2"),
    ("udp1.example.test", "A", "192.0.2.3"),
    # SRV only: two priorities.
    ("srv.test", "TXT", '"the name exists: its NAPTR query gets NODATA"'),
    ("_sip._udp.srv.test", "SRV", "20 0 5080 backup.srv.test."),
    ("_sip._udp.srv.test", "SRV", "10 0 5070 primary.srv.test."),
    ("primary.srv.test", "A", "198.51.100.1"),
    ("backup.srv.test", "A", "198.51.100.2"),
    # A/AAAA only.
    ("plain.test", "A", "203.0.113.5"),
    ("plain.test", "AAAA", "2001:db8::5"),
    # A SIPS URI: the SIP+D2U record is ignored.
    ("secure.test", "NAPTR", '10 10 "s" "SIP+D2U" "" _sip._udp.secure.test.'),
    ("secure.test", "NAPTR", '10 20 "s" "SIPS+D2T" "" _sips._tcp.secure.test.'),
    ("_sip._udp.secure.test", "SRV", "0 0 5060 udp.secure.test."),
    ("_sips._tcp.secure.test", "SRV", "0 0 5063 tls.secure.test."),
    ("udp.secure.test", "A", "192.0.2.30"),
    ("tls.secure.test", "A", "192.0.2.31"),
    # Short TTLs, for expiry.
    ("brief.test", "A", "192.0.2.77", 1),
]


@pytest_asyncio.fixture
async def server() -> AsyncIterator[DnsServer]:
    async with DnsServer(ZONE, negative_ttl=60) as srv:
        yield srv


def make_resolver(server: DnsServer, **kwargs: object) -> Resolver:
    return Resolver(
        [server.host],
        port=server.port,
        timeout=1.0,
        lifetime=2.0,
        rng=random.Random(1),
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.mark.asyncio
async def test_naptr_srv_a_chain(server: DnsServer) -> None:
    targets = await make_resolver(server).resolve("sip:alice@example.test")
    assert targets == [
        Target("tls", "192.0.2.1", 5061),
        Target("tls", "2001:db8::1", 5061),
        Target("tcp", "192.0.2.2", 5060),
        Target("udp", "192.0.2.3", 5060),
    ]
    assert server.queries[0] == ("example.test", "NAPTR")
    assert server.count(rdtype="SRV") == 3
    assert server.count("tls1.example.test", "AAAA") == 1


@pytest.mark.asyncio
async def test_srv_only(server: DnsServer) -> None:
    targets = await make_resolver(server).resolve(SipUri.parse("sip:srv.test"))
    assert targets == [
        Target("udp", "198.51.100.1", 5070),
        Target("udp", "198.51.100.2", 5080),
    ]
    # No NAPTR (NODATA) → SRV for each supported transport (§4.1).
    assert server.count("srv.test", "NAPTR") == 1
    assert server.count("_sips._tcp.srv.test", "SRV") == 1
    assert server.count("_sip._tcp.srv.test", "SRV") == 1


@pytest.mark.asyncio
async def test_a_and_aaaa_only(server: DnsServer) -> None:
    assert await make_resolver(server).resolve("sip:plain.test") == [
        Target("udp", "203.0.113.5", 5060),
        Target("udp", "2001:db8::5", 5060),
    ]
    assert await make_resolver(server, families=("AAAA", "A")).resolve("sip:plain.test") == [
        Target("udp", "2001:db8::5", 5060),
        Target("udp", "203.0.113.5", 5060),
    ]


@pytest.mark.asyncio
async def test_explicit_port_queries_only_addresses(server: DnsServer) -> None:
    targets = await make_resolver(server).resolve("sip:plain.test:5090;transport=tcp")
    assert targets[0] == Target("tcp", "203.0.113.5", 5090)
    assert {t for _, t in server.queries} == {"A", "AAAA"}


@pytest.mark.asyncio
async def test_numeric_ip_makes_no_query(server: DnsServer) -> None:
    assert await make_resolver(server).resolve("sips:[2001:db8::9]") == [
        Target("tls", "2001:db8::9", 5061)
    ]
    assert server.queries == []


@pytest.mark.asyncio
async def test_sips_uses_only_sips_services(server: DnsServer) -> None:
    assert await make_resolver(server).resolve("sips:bob@secure.test") == [
        Target("tls", "192.0.2.31", 5063)
    ]
    assert server.count("_sip._udp.secure.test") == 0


@pytest.mark.asyncio
async def test_nxdomain_raises_resolve_error(server: DnsServer) -> None:
    with pytest.raises(ResolveError) as info:
        await make_resolver(server).resolve("sip:nobody@missing.test")
    assert isinstance(info.value, SipError)
    assert info.value.status == 503
    assert server.count("missing.test", "NAPTR") == 1
    assert server.count("missing.test", "A") == 1


@pytest.mark.asyncio
async def test_unanswered_server_raises_resolve_error() -> None:
    # A bound socket that never answers: every query times out.
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
    )
    try:
        port = transport.get_extra_info("sockname")[1]
        resolver = Resolver(["127.0.0.1"], port=port, timeout=0.1, lifetime=0.2)
        with pytest.raises(ResolveError):
            await resolver.resolve("sip:example.test")
        assert resolver.cache_entries == 0  # failures are not cached
    finally:
        transport.close()


@pytest.mark.asyncio
async def test_failover_to_next_target(server: DnsServer) -> None:
    targets = await make_resolver(server).target_set("sip:srv.test")
    first = targets.next()
    assert first == Target("udp", "198.51.100.1", 5070)
    targets.mark_failed(first)  # e.g. Timer B fired (§4.3)
    assert targets.next() == Target("udp", "198.51.100.2", 5080)
    targets.mark_failed(Target("udp", "198.51.100.2", 5080))
    assert targets.next() is None


@pytest.mark.asyncio
async def test_cache_serves_second_resolve_without_queries(server: DnsServer) -> None:
    resolver = make_resolver(server)
    first = await resolver.resolve("sip:example.test")
    sent = len(server.queries)
    assert sent > 0
    assert await resolver.resolve("sip:example.test") == first
    assert len(server.queries) == sent  # positive and negative answers cached
    # Another URI sharing names reuses the cached records.
    await resolver.resolve("sip:example.test;transport=tcp")
    assert len(server.queries) == sent
    resolver.clear_cache()
    await resolver.resolve("sip:example.test")
    assert len(server.queries) == 2 * sent


@pytest.mark.asyncio
async def test_cache_expires_with_ttl(server: DnsServer) -> None:
    resolver = make_resolver(server)
    await resolver.resolve("sip:brief.test:5060")
    await resolver.resolve("sip:brief.test:5060")
    assert server.count("brief.test", "A") == 1
    await asyncio.sleep(1.1)
    await resolver.resolve("sip:brief.test:5060")
    assert server.count("brief.test", "A") == 2
    assert server.count("brief.test", "AAAA") == 1  # negative TTL 60 s still valid


@pytest.mark.asyncio
async def test_cache_is_bounded(server: DnsServer) -> None:
    resolver = make_resolver(server, cache_size=2)
    await resolver.resolve("sip:example.test")
    assert resolver.cache_entries == 2


@pytest.mark.asyncio
async def test_lookup_returns_records(server: DnsServer) -> None:
    resolver = make_resolver(server)
    assert set(await resolver.lookup(Query("_sip._udp.srv.test", "SRV"))) == {
        SrvRecord(20, 0, 5080, "backup.srv.test"),
        SrvRecord(10, 0, 5070, "primary.srv.test"),
    }
    assert await resolver.lookup(Query("nothing.test", "A")) == []
