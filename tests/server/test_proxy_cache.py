"""The proxy's location cache (``sipwire.server.location``): look-ups it spares the store,
the registrar keeping it exact, the TTL of shared stores on a fake clock.

Plain-data tests of :class:`LocationCache` first, then a real server on
loopback: an external caller sends MESSAGEs to ``alice@localhost``, whose
registered Contact is a UDP socket of the test answering 200.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
import pytest_asyncio

from sipwire.message import Request, parse_message
from sipwire.registrar.model import Binding, BindingChange
from sipwire.server.config import ConfigError, resolve_config
from sipwire.server.location import LocationCache
from sipwire.store import LocationStore
from tests.server.helpers import (
    RawClient,
    Running,
    StartServer,
    make_config,
    new_branch,
    register,
    register_text,
)

AOR = "sip:alice@localhost"


def binding(contact: str, expires_at: float, aor: str = AOR) -> Binding:
    return Binding(
        aor=aor, contact=contact, key=contact, expires_at=expires_at, call_id="c", cseq=1
    )


# -- the cache as plain data ---------------------------------------------------------------


def test_exclusive_entries_live_until_their_bindings_expire() -> None:
    cache = LocationCache(exclusive=True)
    assert cache.get(AOR, 100.0) is None  # a miss: ask the store
    one, two = binding("sip:a@192.0.2.1", 200.0), binding("sip:a@192.0.2.2", 300.0)
    cache.found(AOR, [one, two], cache.stamp(), 100.0)
    assert cache.get(AOR, 150.0) == [one, two]
    assert cache.get(AOR, 200.0) == [two]  # as the store answers: expires_at > now
    assert cache.get(AOR, 300.0) == []  # exact: no binding left, no store needed
    assert (cache.hits, cache.misses) == (3, 1)


def test_exclusive_cache_keeps_aors_without_bindings() -> None:
    cache = LocationCache(exclusive=True)
    cache.found(AOR, [], cache.stamp(), 100.0)
    assert cache.get(AOR, 1e9) == []


def test_changes_of_this_process_replace_an_entry_at_once() -> None:
    cache = LocationCache(exclusive=True)
    old, new = binding("sip:a@192.0.2.1", 500.0), binding("sip:a@192.0.2.9", 500.0)
    cache.found(AOR, [old], cache.stamp(), 100.0)
    cache.changed(AOR, [new], 101.0)
    assert cache.get(AOR, 102.0) == [new]
    cache.changed(AOR, [], 103.0)
    assert cache.get(AOR, 104.0) == []


def test_an_answer_older_than_a_change_is_not_kept() -> None:
    cache = LocationCache(exclusive=True)
    old, new = binding("sip:a@192.0.2.1", 500.0), binding("sip:a@192.0.2.9", 500.0)
    stamp = cache.stamp()  # a look-up asks the store ...
    cache.changed(AOR, [new], 100.0)  # ... the registrar writes meanwhile ...
    cache.found(AOR, [old], stamp, 100.0)  # ... then the older answer arrives
    assert cache.get(AOR, 101.0) == [new]


def test_a_change_of_unknown_outcome_makes_the_store_asked() -> None:
    cache = LocationCache(exclusive=True)
    cache.found(AOR, [binding("sip:a@192.0.2.1", 500.0)], cache.stamp(), 100.0)
    stamp = cache.stamp()
    cache.changed(AOR, None, 101.0)  # an apply that failed or was cut short
    assert cache.get(AOR, 102.0) is None
    cache.found(AOR, [], stamp, 102.0)  # asked before it: ignored
    assert cache.get(AOR, 102.0) is None
    cache.found(AOR, [], cache.stamp(), 103.0)
    assert cache.get(AOR, 103.0) == []


def test_shared_entries_expire_after_the_ttl() -> None:
    cache = LocationCache(exclusive=False, ttl=1.0)
    one = binding("sip:a@192.0.2.1", 500.0)
    cache.found(AOR, [one], cache.stamp(), 100.0)
    assert cache.get(AOR, 100.999) == [one]
    assert cache.get(AOR, 101.0) is None
    cache.changed(AOR, [one], 102.0)  # a REGISTER on this node: used for ttl seconds too
    assert cache.get(AOR, 102.5) == [one]
    assert cache.get(AOR, 103.0) is None


def test_shared_cache_keeps_no_empty_answer() -> None:
    cache = LocationCache(exclusive=False, ttl=1.0)
    cache.found(AOR, [], cache.stamp(), 100.0)
    assert cache.get(AOR, 100.1) is None  # registered elsewhere meanwhile: seen at once
    cache.found(AOR, [binding("sip:a@192.0.2.1", 100.5)], cache.stamp(), 100.0)
    assert cache.get(AOR, 100.6) is None  # its last binding expired
    cache.changed(AOR, [], 100.7)
    assert cache.get(AOR, 100.8) is None


def test_ttl_zero_turns_the_cache_off() -> None:
    cache = LocationCache(exclusive=True, ttl=0.0)
    cache.found(AOR, [binding("sip:a@192.0.2.1", 500.0)], cache.stamp(), 100.0)
    cache.changed(AOR, [binding("sip:a@192.0.2.1", 500.0)], 100.0)
    assert cache.get(AOR, 100.0) is None
    assert len(cache) == 0
    with pytest.raises(ValueError):
        LocationCache(exclusive=True, ttl=-1.0)


def test_the_oldest_entries_make_room_and_answers_in_flight_are_dropped() -> None:
    cache = LocationCache(exclusive=True, max_entries=2)
    for name in ("a", "b"):
        cache.found(f"sip:{name}@x", [], cache.stamp(), 100.0)
    stamp = cache.stamp()
    cache.found("sip:c@x", [], cache.stamp(), 100.0)
    assert len(cache) == 2
    assert cache.get("sip:a@x", 100.0) is None  # dropped
    cache.found("sip:a@x", [], stamp, 100.0)  # asked before the drop: not kept
    assert cache.get("sip:a@x", 100.0) is None
    cache.clear()
    assert len(cache) == 0


def test_the_ttl_is_a_proxy_setting(tmp_path: Path) -> None:
    assert make_config(tmp_path).location_cache_ttl == 1.0
    file = tmp_path / "sipwire.toml"
    file.write_text("[proxy]\nlocation_cache_ttl = 2.5\n")
    assert resolve_config(file, {}).location_cache_ttl == 2.5
    assert make_config(tmp_path, location_cache_ttl=0.0).location_cache_ttl == 0.0
    with pytest.raises(ConfigError, match="location_cache_ttl"):
        make_config(tmp_path, location_cache_ttl=-1.0)


# -- through a server ---------------------------------------------------------------------


@dataclass
class Phone(RawClient):
    """A UDP socket that registers as alice (from the port it listens on, as a phone
    does) and answers 200 to every request."""

    name: str = ""
    received: list[Request] = field(default_factory=list)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        message = parse_message(data)
        if not isinstance(message, Request):
            super().datagram_received(data, addr)
        elif self.transport is not None:
            self.received.append(message)
            self.transport.sendto(bytes(message.reply(200, to_tag=self.name)), addr)

    @property
    def uri(self) -> str:
        return f"sip:alice@127.0.0.1:{self.local_port}"

    @property
    def contact(self) -> str:
        return f"<{self.uri}>"


class CountingStore:
    """The store, with the proxy's ``bindings`` calls counted."""

    def __init__(self, store: LocationStore) -> None:
        self.store = store
        self.lookups = 0

    async def bindings(self, aor: str, now: float) -> list[Binding]:
        self.lookups += 1
        return await self.store.bindings(aor, now)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


@dataclass
class Setup:
    running: Running
    client: RawClient
    phones: tuple[Phone, Phone]
    counting: CountingStore

    @property
    def port(self) -> int:
        return self.running.port()

    async def register(self, phone: Phone, expires: int = 600) -> None:
        request = register_text(
            self.port, contact=phone.contact, expires=expires, local_port=phone.local_port
        )
        response, _ = await register(phone, self.port, request)
        assert response.status == 200, bytes(response).decode()

    async def message(self) -> int:
        """A MESSAGE to alice from another operator's caller: the final status."""
        text = (
            "MESSAGE sip:alice@localhost SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.client.local_port};branch={new_branch()};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:carol@caller.example>;tag={secrets.token_hex(4)}\r\n"
            "To: <sip:alice@localhost>\r\n"
            f"Call-ID: {secrets.token_hex(8)}@test\r\n"
            "CSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n"
        )
        response = await self.client.request(text.encode(), self.port)
        return response.status


@contextlib.asynccontextmanager
async def serving(start_server: StartServer, **settings: Any) -> AsyncIterator[Setup]:
    """A server (``settings``), its store counted, two phones and a caller."""
    running = await start_server(**settings)
    proxy = running.server.proxy
    assert proxy is not None
    counting = CountingStore(proxy.store)
    proxy.store = cast(LocationStore, counting)
    loop = asyncio.get_running_loop()
    phones = []
    for name in ("one", "two"):
        _, phone = await loop.create_datagram_endpoint(
            lambda name=name: Phone(name=name),  # type: ignore[misc]
            local_addr=("127.0.0.1", 0),
        )
        phones.append(phone)
    client = await RawClient.open()
    try:
        yield Setup(running, client, (phones[0], phones[1]), counting)
    finally:
        client.close()
        for phone in phones:
            assert phone.transport is not None
            phone.transport.close()


@pytest_asyncio.fixture
async def setup(start_server: StartServer) -> AsyncIterator[Setup]:
    async with serving(start_server) as ready:
        yield ready


@pytest.mark.asyncio
@pytest.mark.timeout(30)
async def test_cached_bindings_spare_the_store(setup: Setup) -> None:
    proxy = setup.running.server.proxy
    assert proxy is not None and proxy.cache.exclusive  # SQLite, one worker
    one, _ = setup.phones
    await setup.register(one)
    for _ in range(3):
        assert await setup.message() == 200
    assert len(one.received) == 3
    assert setup.counting.lookups == 0  # the REGISTER filled the cache
    proxy.cache.clear()
    for _ in range(3):
        assert await setup.message() == 200
    assert setup.counting.lookups == 1
    assert len(one.received) == 6


@pytest.mark.asyncio
@pytest.mark.timeout(30)
async def test_a_register_on_this_node_updates_the_cache_at_once(setup: Setup) -> None:
    one, two = setup.phones
    await setup.register(one)
    assert await setup.message() == 200
    await setup.register(one, expires=0)
    await setup.register(two)
    assert await setup.message() == 200
    assert (len(one.received), len(two.received)) == (1, 1)
    await setup.register(two, expires=0)
    assert await setup.message() == 480  # no binding left: known without the store
    assert setup.counting.lookups == 0


@pytest.mark.asyncio
@pytest.mark.timeout(30)
async def test_a_shared_store_is_asked_again_after_the_ttl(setup: Setup) -> None:
    proxy = setup.running.server.proxy
    assert proxy is not None
    # As with Redis, PostgreSQL or --workers N: another process changes bindings too.
    proxy.cache = LocationCache(exclusive=False, ttl=1.0)
    start = time.time()
    wall = [start]
    proxy.clock = lambda: wall[0]
    registrar = setup.running.server.registrar
    assert registrar is not None
    registrar.clock = proxy.clock  # the bindings it writes expire on the same clock
    one, two = setup.phones
    await setup.register(one)
    assert await setup.message() == 200
    assert setup.counting.lookups == 0
    # Another node moves alice to the second phone, behind this node's back.
    store = setup.counting.store
    moved = binding(two.uri, wall[0] + 600)
    await store.apply(AOR, BindingChange(upsert=(moved,), remove_all=True), wall[0])
    wall[0] = start + 0.5
    assert await setup.message() == 200  # within the TTL: still the first phone
    assert (len(one.received), len(two.received), setup.counting.lookups) == (2, 0, 0)
    wall[0] = start + 1.0  # the TTL is over
    assert await setup.message() == 200
    assert (len(one.received), len(two.received), setup.counting.lookups) == (2, 1, 1)
    assert await setup.message() == 200
    assert setup.counting.lookups == 1


@pytest.mark.asyncio
@pytest.mark.timeout(30)
async def test_without_the_cache_every_call_asks_the_store(start_server: StartServer) -> None:
    async with serving(start_server, location_cache_ttl=0.0) as setup:
        one, _ = setup.phones
        await setup.register(one)
        for _ in range(3):
            assert await setup.message() == 200
        assert setup.counting.lookups == 3


@pytest.mark.asyncio
@pytest.mark.timeout(30)
@pytest.mark.parametrize("store_url", ["redis"], indirect=True)
async def test_a_shared_store_gets_the_ttl(start_server: StartServer) -> None:
    running = await start_server(location_cache_ttl=2.0)
    proxy = running.server.proxy
    assert proxy is not None
    assert not proxy.cache.exclusive
    assert proxy.cache.ttl == 2.0
