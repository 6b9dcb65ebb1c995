"""``sipwire serve`` as a registrar, end to end on loopback: real UserAgents and raw UDP.

Store-dependent behaviour runs on SQLite, Redis and PostgreSQL (real servers,
``tests/store/servers.py``); the rest on SQLite.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from sipwire import RequestFailed, UserAgent
from sipwire.message import Response, parse_message
from sipwire.registrar.model import BindingChange
from sipwire.store import LocationStore, StoreUnavailable
from tests.server.helpers import (
    RawClient,
    Running,
    StartServer,
    authorize,
    register,
    register_text,
    renewed,
)
from tests.store.servers import PostgresServer, RedisServer

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

BACKENDS = ["sqlite", "redis", "postgres"]


def agent(user: str = "alice", password: str = "secret", **options: Any) -> UserAgent:
    options.setdefault("listen", ["udp:127.0.0.1:0"])
    return UserAgent(f"sip:{user}@localhost", password=password, **options)


def traced() -> tuple[list[tuple[str, bytes]], Callable[[str, bytes, object], None]]:
    seen: list[tuple[str, bytes]] = []

    def trace(direction: str, data: bytes, peer: object) -> None:
        seen.append((direction, data))

    return seen, trace


def assert_tagged(response: Response) -> None:
    """§8.2.6.2: a final response of a UAS carries a To tag."""
    assert response.to.tag, bytes(response).decode()


# -- registration with digest ---------------------------------------------------------


@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
async def test_register_with_sha256_digest(running: Running) -> None:
    async with agent() as ua:
        registration = await ua.register(running.registrar(), expires=600)
        response = registration.last_response
        assert response is not None and response.status == 200
        assert_tagged(response)
        assert response.headers.get("Date")
        assert "sipwire" in (response.headers.get("Server") or "")
        [contact] = response.contact
        assert contact.expires is not None and 590 <= contact.expires <= 600
    [binding] = await running.bindings()
    assert binding.transport == "udp" and binding.node == "test-node"
    assert binding.source.startswith("127.0.0.1:")
    assert running.server.registrar is not None
    assert running.server.registrar.counts["registered"] == 1
    assert running.server.registrar.locked_aors == 0  # the AOR's lock is gone


async def test_a_phone_that_only_knows_md5(running: Running) -> None:
    client = await RawClient.open()
    try:
        request = register_text(running.port())
        challenge = await client.request(request, running.port())
        assert challenge.status == 401
        offered = challenge.headers.get_all("WWW-Authenticate")
        assert [line.split("algorithm=")[1].split(",")[0] for line in offered] == ["SHA-256", "MD5"]
        assert all('qop="auth"' in line for line in offered)
        response = await client.request(authorize(request, challenge, only="MD5"), running.port())
        assert response.status == 200
        assert_tagged(response)
    finally:
        client.close()
    assert len(await running.bindings()) == 1


async def test_the_algorithms_offered_are_configurable(start_server: StartServer) -> None:
    """``algorithms = ["MD5"]``: for clients that answer the first challenge whatever its
    algorithm (sipp); a SHA-256 credential is then refused."""
    running = await start_server(algorithms=("MD5",))
    seen, trace = traced()
    async with agent(trace=trace) as ua:
        await ua.register(running.registrar())
    [challenge] = [parse_message(d) for way, d in seen if way == "recv" and b" 401 " in d[:12]]
    lines = challenge.headers.get_all("WWW-Authenticate")
    assert len(lines) == 1 and "algorithm=MD5" in lines[0]
    port = running.port()
    client = await RawClient.open()
    try:
        request = register_text(port)
        offered = await client.request(request, port)
        # A SHA-256 answer to a nonce of ours: not an algorithm offered, refused.
        forged = parse_message(bytes(offered))
        assert isinstance(forged, Response)
        forged.headers.set(
            "WWW-Authenticate",
            offered.headers.get_all("WWW-Authenticate")[0].replace("MD5", "SHA-256"),
        )
        refused = await client.request(authorize(request, forged), port)
    finally:
        client.close()
    assert refused.status == 401


async def test_wrong_password_ends_in_request_failed(running: Running) -> None:
    async with agent(password="wrong") as ua:
        with pytest.raises(RequestFailed) as failed:
            await ua.register(running.registrar())
    assert failed.value.status == 401
    assert await running.bindings() == []
    metrics = running.server.metrics.render().decode()
    assert 'sipwire_auth_failures_total{reason="invalid"} 1.0' in metrics


async def test_unknown_user_and_wrong_password_look_the_same(running: Running) -> None:
    """Nothing in the answer tells whether the user exists: the same status, the same
    header lines in the same order, no stale flag, the same challenge but its nonce."""
    client = await RawClient.open()
    answers: list[Response] = []
    try:
        for user, password in (("mallory", "secret"), ("alice", "wrong")):
            request = register_text(running.port(), user=user)
            challenge = await client.request(request, running.port())
            retry = authorize(request, challenge, user, password)
            answers.append(await client.request(retry, running.port()))
    finally:
        client.close()
    unknown, wrong = answers
    assert unknown.status == wrong.status == 401
    assert unknown.headers.keys() == wrong.headers.keys()
    for response in answers:
        assert_tagged(response)
        assert not any("stale" in v.lower() for v in response.headers.get_all("WWW-Authenticate"))

    def without_nonce(response: Response) -> list[str]:
        return [
            ",".join(p for p in line.split(",") if not p.strip().startswith("nonce="))
            for line in response.headers.get_all("WWW-Authenticate")
        ]

    assert without_nonce(unknown) == without_nonce(wrong)


@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
async def test_a_replayed_authorization_is_refused(running: Running) -> None:
    """The same credentials (nonce and nc) sent again in a new transaction get 401."""
    client = await RawClient.open()
    try:
        request = register_text(running.port())
        challenge = await client.request(request, running.port())
        authorized = authorize(request, challenge)
        first = await client.request(authorized, running.port())
        assert first.status == 200
        replay = renewed(authorized, cseq=authorized.cseq.seq)  # new branch, same credentials
        assert replay.headers.get("Authorization") == authorized.headers.get("Authorization")
        again = await client.request(replay, running.port())
    finally:
        client.close()
    assert again.status == 401
    assert not any("stale=true" in v.lower() for v in again.headers.get_all("WWW-Authenticate"))
    metrics = running.server.metrics.render().decode()
    assert 'sipwire_auth_failures_total{reason="replay"} 1.0' in metrics


async def test_a_stale_nonce_is_retried_without_asking_the_user(
    start_server: StartServer,
) -> None:
    """After the nonce's lifetime the server answers stale=true; the agent, which has
    the password, sends a new Authorization with the new nonce at once and succeeds."""
    running = await start_server(nonce_lifetime=0.5)
    role = running.server.registrar
    assert role is not None
    seen, trace = traced()
    async with agent(trace=trace) as ua:
        await ua.register(running.registrar(), expires=600)
        role.clock = lambda: time.time() + 0.8  # the nonce's lifetime has passed
        del seen[:]
        await ua.register(running.registrar(), expires=600)
    sent = [parse_message(d) for way, d in seen if way == "send" and d.startswith(b"REGISTER")]
    received = [parse_message(d) for way, d in seen if way == "recv"]
    nonces = [_nonce(r.headers.get("Authorization") or "") for r in sent]
    assert len(sent) == 2 and nonces[0] and nonces[1] and nonces[0] != nonces[1]
    statuses = [r.status for r in received if isinstance(r, Response)]
    assert statuses == [401, 200]
    challenge = received[0]
    assert isinstance(challenge, Response)
    lines = challenge.headers.get_all("WWW-Authenticate")
    assert lines and all("stale=true" in line for line in lines)
    assert _nonce(lines[0]) == nonces[1]  # the new nonce, answered right away
    metrics = running.server.metrics.render().decode()
    assert 'sipwire_auth_failures_total{reason="stale"} 1.0' in metrics


def _nonce(header: str) -> str:
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name.lower().endswith("nonce") and not name.lower().endswith("cnonce"):
            return value.strip('"')
    return ""


# -- who may register what ------------------------------------------------------------


async def test_a_foreign_domain_gets_404_without_a_challenge(running: Running) -> None:
    seen, trace = traced()
    async with UserAgent(
        "sip:alice@example.org", password="secret", listen=["udp:127.0.0.1:0"], trace=trace
    ) as ua:
        with pytest.raises(RequestFailed) as failed:
            await ua.register(running.registrar())
    assert failed.value.status == 404
    assert [d[:12] for way, d in seen if way == "recv"] == [b"SIP/2.0 404 "]


async def test_another_users_aor_gets_403(running: Running) -> None:
    async with UserAgent(
        "sip:bob@localhost", username="alice", password="secret", listen=["udp:127.0.0.1:0"]
    ) as ua:
        with pytest.raises(RequestFailed) as failed:
            await ua.register(running.registrar())
    assert failed.value.status == 403
    assert isinstance(failed.value.response, Response)
    assert_tagged(failed.value.response)
    assert await running.bindings("sip:bob@localhost") == []


# -- bindings: query, refresh, unregister, *, 423 -------------------------------------


async def test_query_refresh_unregister_and_wildcard(running: Running) -> None:
    port = running.port()
    client = await RawClient.open()
    try:
        ok, sent = await register(
            client, port, register_text(port, contact="<sip:alice@192.0.2.4>", expires=600)
        )
        assert ok.status == 200
        ok, _ = await register(
            client, port, register_text(port, contact="<sip:alice@192.0.2.5>", expires=300)
        )
        assert ok.status == 200 and len(ok.contact) == 2

        # A query (no Contact) lists both, with their remaining time.
        query, _ = await register(client, port, register_text(port, contact=None, expires=None))
        assert query.status == 200
        remaining = {str(c.uri): c.expires for c in query.contact}
        assert set(remaining) == {"sip:alice@192.0.2.4", "sip:alice@192.0.2.5"}
        assert 590 <= (remaining["sip:alice@192.0.2.4"] or 0) <= 600
        assert 290 <= (remaining["sip:alice@192.0.2.5"] or 0) <= 300

        # A refresh with the same Call-ID and a higher CSeq keeps one binding.
        refresh = renewed(sent, cseq=sent.cseq.seq + 5)
        refresh.headers.remove("Authorization")
        ok, _ = await register(client, port, refresh)
        assert ok.status == 200 and len(ok.contact) == 2
        assert running.server.registrar is not None
        assert running.server.registrar.counts["refreshed"] == 1

        # Expires: 0 removes one.
        ok, _ = await register(
            client, port, register_text(port, contact="<sip:alice@192.0.2.5>", expires=0)
        )
        assert ok.status == 200 and [str(c.uri) for c in ok.contact] == ["sip:alice@192.0.2.4"]

        # Contact: * needs Expires: 0 ...
        bad, _ = await register(client, port, register_text(port, contact="*", expires=60))
        assert bad.status == 400
        # ... and removes everything.
        ok, _ = await register(client, port, register_text(port, contact="*", expires=0))
        assert ok.status == 200 and ok.contact == []
    finally:
        client.close()
    assert await running.bindings() == []
    assert running.server.registrar.counts["unregistered"] == 2


async def test_too_brief_an_interval_gets_423_with_min_expires(running: Running) -> None:
    port = running.port()
    client = await RawClient.open()
    try:
        brief, _ = await register(client, port, register_text(port, expires=10))
    finally:
        client.close()
    assert brief.status == 423
    assert brief.headers.get("Min-Expires") == "60"
    assert_tagged(brief)
    assert await running.bindings() == []


async def test_registering_over_tcp_keeps_the_flow(running: Running) -> None:
    async with agent(listen=["tcp:127.0.0.1:0"]) as ua:
        await ua.register(running.registrar("tcp"), expires=600)
        [binding] = await running.bindings()
        assert binding.transport == "tcp" and binding.flow is not None
        registrar = running.server.registrar
        assert registrar is not None and registrar.flows is not None
        assert len(registrar.flows) == 1


# -- the store fails ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["redis", "postgres"])
async def test_store_down_gives_503_then_recovers_with_nothing_lost(
    kind: str, start_server: StartServer
) -> None:
    database: RedisServer | PostgresServer
    database = RedisServer(persistent=True) if kind == "redis" else PostgresServer()
    with database:
        url = database.url(prefix="t:") if isinstance(database, RedisServer) else database.url()
        running = await start_server(store=url)
        port = running.port()
        client = await RawClient.open()
        try:
            ok, sent = await register(client, port, register_text(port, expires=600))
            assert ok.status == 200
            database.pause()
            try:
                started = time.monotonic()
                refused = await client.request(renewed(sent), port, timeout=8)
                took = time.monotonic() - started
            finally:
                database.resume()
            assert refused.status == 503, bytes(refused).decode()
            assert refused.headers.get("Retry-After") == "5"
            assert_tagged(refused)
            assert took < 2.0  # store_timeout is 1 s
            assert running.server.registrar is not None
            assert not running.server.registrar.store_ok

            # Back: the same REGISTER again (a new transaction) succeeds.
            again = renewed(sent, cseq=sent.cseq.seq + 2)
            for _ in range(20):
                ok = await client.request(again, port, timeout=8)
                if ok.status != 503:
                    break
                await asyncio.sleep(0.25)
                again = renewed(again)
            if ok.status == 401:  # a pooled connection lost the nonce record: a new one
                ok = await client.request(authorize(again, ok), port, timeout=8)
            assert ok.status == 200, bytes(ok).decode()
            assert [str(c.uri) for c in ok.contact] == ["sip:alice@192.0.2.4:5060"]
            assert running.server.registrar.store_ok
        finally:
            client.close()
        assert len(await running.bindings()) == 1


async def test_a_store_too_slow_gets_503(running: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    store = running.server.store
    assert store is not None

    async def slow(aor: str, change: BindingChange, now: float) -> list[Any]:
        await asyncio.sleep(5)
        raise AssertionError("never reached")

    monkeypatch.setattr(store, "apply", slow)
    port = running.port()
    client = await RawClient.open()
    try:
        started = time.monotonic()
        refused, _ = await register(client, port, register_text(port))
        assert time.monotonic() - started < 3
    finally:
        client.close()
    assert refused.status == 503 and refused.headers.get("Retry-After")


async def test_store_unavailable_is_503_never_500(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = running.server.store
    assert store is not None

    async def down(name: str, domain: str) -> None:
        raise StoreUnavailable("down for the test")

    monkeypatch.setattr(store, "get_user", down)
    port = running.port()
    client = await RawClient.open()
    try:
        request = register_text(port)
        challenge = await client.request(request, port)  # no store needed to challenge
        assert challenge.status == 401
        refused = await client.request(authorize(request, challenge), port)
    finally:
        client.close()
    assert refused.status == 503


# -- concurrency ----------------------------------------------------------------------


def slowed(store: LocationStore, delay: float) -> Callable[..., Awaitable[Any]]:
    original = store.apply

    async def apply(aor: str, change: BindingChange, now: float) -> Any:
        await asyncio.sleep(delay)
        return await original(aor, change, now)

    return apply


async def test_beyond_max_in_flight_registers_get_503(
    start_server: StartServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    running = await start_server(max_in_flight=1)
    assert running.server.store is not None
    monkeypatch.setattr(running.server.store, "apply", slowed(running.server.store, 0.5))
    port = running.port()
    client = await RawClient.open()
    try:
        first = register_text(port, contact="<sip:alice@192.0.2.4>")
        second = register_text(port, contact="<sip:alice@192.0.2.5>")
        challenges = [await client.request(r, port) for r in (first, second)]
        pending = client.send(authorize(first, challenges[0]), port)
        while running.server.registrar is not None and not running.server.registrar.in_flight:
            await asyncio.sleep(0.01)
        busy = await client.request(authorize(second, challenges[1]), port)
        assert (await asyncio.wait_for(pending, 5)).status == 200
    finally:
        client.close()
    assert busy.status == 503 and busy.headers.get("Retry-After") == "5"
    metrics = running.server.metrics.render().decode()
    assert 'sipwire_shed_requests_total{cause="registrar_busy"} 1.0' in metrics


async def test_registers_for_one_aor_are_serialized(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten REGISTERs of one AOR at once, each adding its own contact: all ten land."""
    assert running.server.store is not None
    monkeypatch.setattr(running.server.store, "apply", slowed(running.server.store, 0.02))
    port = running.port()
    client = await RawClient.open()
    try:
        requests = [register_text(port, contact=f"<sip:alice@192.0.2.{i}>") for i in range(10)]
        challenges = [await client.request(r, port) for r in requests]
        answers = await asyncio.gather(
            *(
                client.request(authorize(r, c), port)
                for r, c in zip(requests, challenges, strict=True)
            )
        )
    finally:
        client.close()
    assert [a.status for a in answers] == [200] * 10
    assert len(await running.bindings()) == 10
    assert running.server.registrar is not None
    assert running.server.registrar.locked_aors == 0


# -- what is not for the registrar ----------------------------------------------------


async def test_options_to_the_server_is_answered(running: Running) -> None:
    async with agent() as ua:
        response = await ua.options(running.registrar())
    assert response.status == 200
    assert_tagged(response)
    assert "REGISTER" in (response.headers.get("Allow") or "")
    assert response.headers.get("Accept") and response.headers.get("Supported")
    assert response.headers.get_all("Server") == ["sipwire"]


async def test_invite_and_other_requests_get_the_interim_status(start_server: StartServer) -> None:
    running = await start_server(proxy=False)  # a registrar only
    async with agent() as ua:
        with pytest.raises(RequestFailed) as failed:
            await ua.call(f"sip:bob@127.0.0.1:{running.port()}", timeout=10)
        assert failed.value.status == 501
        message = await ua.request(
            "MESSAGE", f"sip:bob@127.0.0.1:{running.port()}", body="hi", check=False
        )
        assert message.status == 501 and "REGISTER" in (message.headers.get("Allow") or "")
        assert_tagged(message)
        # OPTIONS for a user is the proxy's business: the interim status too.
        options = await ua.options(f"sip:bob@127.0.0.1:{running.port()}")
        assert options.status == 501
    port = running.port()
    client = await RawClient.open()
    try:
        cancel = register_text(port)
        text = bytes(cancel).decode().replace("REGISTER", "CANCEL")
        answer = await client.request(text.encode(), port)
        assert answer.status == 481
        assert_tagged(answer)
        bye = bytes(register_text(port)).decode().replace("REGISTER", "BYE")
        bye = bye.replace("To: <sip:alice@localhost>", "To: <sip:alice@localhost>;tag=x1")
        in_dialog = await client.request(bye.encode(), port)
        assert in_dialog.status == 481
    finally:
        client.close()
    metrics = running.server.metrics.render().decode()
    assert 'sipwire_responses_total{method="INVITE",status="501"} 1.0' in metrics


async def test_a_clean_stop_answers_the_registers_in_flight(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = running.server
    assert server.store is not None and server.registrar is not None
    monkeypatch.setattr(server.store, "apply", slowed(server.store, 0.3))
    port = running.port()
    client = await RawClient.open()
    try:
        request = register_text(port)
        challenge = await client.request(request, port)
        pending = client.send(authorize(request, challenge), port)
        while not server.registrar.in_flight:
            await asyncio.sleep(0.01)
        await server.close()
        answered = await asyncio.wait_for(pending, 5)
    finally:
        client.close()
    assert answered.status == 200
    assert server.store is not None
