"""A tiny authoritative DNS server on 127.0.0.1 for tests (UDP, ephemeral port).

It serves a fixed zone given as records ``(name, type, rdata)`` or
``(name, type, rdata, ttl)`` in zone-file syntax, answers NOERROR with no
data (plus an SOA, for negative caching) for a known name without records
of the asked type, and NXDOMAIN for an unknown name. Every question is
recorded in ``queries`` so tests can count what a resolver actually asked::

    async with DnsServer([("example.test", "A", "192.0.2.1")]) as server:
        resolver = Resolver([server.host], port=server.port)
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from types import TracebackType
from typing import cast

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

__all__ = ["DnsServer", "Record"]

Record = tuple[str, str, str] | tuple[str, str, str, int]
"""(owner name, record type, rdata text[, ttl])."""


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self._server = server
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, int]) -> None:
        reply = self._server.answer(data)
        if reply is not None and self._transport is not None:
            self._transport.sendto(reply, addr)


class DnsServer:
    """Authoritative UDP DNS server for a fixed set of records.

    ``ttl`` is the default TTL of records given without one; negative
    answers carry an SOA whose TTL and minimum are ``negative_ttl``.
    """

    def __init__(
        self, records: Iterable[Record], *, ttl: int = 300, negative_ttl: int = 60
    ) -> None:
        grouped: dict[tuple[dns.name.Name, dns.rdatatype.RdataType], tuple[int, list[str]]] = {}
        for record in records:
            name = dns.name.from_text(record[0])
            rdtype = dns.rdatatype.from_text(record[1])
            rttl = record[3] if len(record) == 4 else ttl
            _, datas = grouped.setdefault((name, rdtype), (rttl, []))
            datas.append(record[2])
        self.zone: dict[tuple[dns.name.Name, dns.rdatatype.RdataType], dns.rrset.RRset] = {
            key: dns.rrset.from_text(key[0], rttl, "IN", key[1], *datas)
            for key, (rttl, datas) in grouped.items()
        }
        self.names = {name for name, _ in self.zone}
        self.soa = dns.rrset.from_text(
            dns.name.root,
            negative_ttl,
            "IN",
            "SOA",
            f"ns.test. hostmaster.test. 1 3600 600 86400 {negative_ttl}",
        )
        self.queries: list[tuple[str, str]] = []
        """Every question received, as (name without final dot, type), in order."""
        self.host = "127.0.0.1"
        self.port = 0
        self._transport: asyncio.DatagramTransport | None = None

    def answer(self, wire: bytes) -> bytes | None:
        """The wire-format response to one query, or None for garbage."""
        try:
            query = dns.message.from_wire(wire)
        except Exception:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return response.to_wire()
        question = query.question[0]
        self.queries.append(
            (
                question.name.to_text(omit_final_dot=True).lower(),
                dns.rdatatype.to_text(question.rdtype),
            )
        )
        rrset = self.zone.get((question.name, question.rdtype))
        if rrset is not None:
            response.answer.append(rrset)
        else:
            if question.name not in self.names:
                response.set_rcode(dns.rcode.NXDOMAIN)
            response.authority.append(self.soa)
        return response.to_wire()

    def count(self, name: str | None = None, rdtype: str | None = None) -> int:
        """How many queries matched ``name`` and/or ``rdtype`` (all when both None)."""
        return sum(
            1
            for qname, qtype in self.queries
            if (name is None or qname == name) and (rdtype is None or qtype == rdtype)
        )

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=(self.host, 0)
        )
        self._transport = transport
        self.port = transport.get_extra_info("sockname")[1]

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    async def __aenter__(self) -> DnsServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
