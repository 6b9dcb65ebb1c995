"""Helpers of the server tests: a server in-process, raw SIP over UDP, digest answers.

``start_server`` (a fixture of ``conftest.py``) runs a :class:`Server` on
free loopback ports; :class:`RawClient` sends hand-written requests over UDP
and returns the response with the same branch; :func:`authorize` answers a
401 with sipwire's own ``DigestClient``, as a phone would; :func:`query`
fetches an AOR's bindings with an authenticated REGISTER without Contact.
:func:`serve_process` runs the real ``sipwire serve`` command in a
subprocess (for what needs a process: ``kill -9``, other programs as peers).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from sipwire.aio.listen import ListenSpec
from sipwire.auth import DigestAccount, DigestClient
from sipwire.message import Request, Response, parse_message
from sipwire.registrar.authenticate import make_user
from sipwire.server.config import ServerConfig
from sipwire.server.serve import Server
from sipwire.store import Binding

__all__ = [
    "LOOPBACK",
    "PASSWORDS",
    "RawClient",
    "Running",
    "StartServer",
    "make_config",
    "ServeProcess",
    "authorize",
    "new_branch",
    "query",
    "register_text",
    "serve_process",
]

PASSWORDS = {"alice": "secret", "bob": "hunter2"}
"""Users every test server has, in domain localhost."""

LOOPBACK = (ListenSpec("udp", "127.0.0.1", 0), ListenSpec("tcp", "127.0.0.1", 0))

_counter = itertools.count(1)


def make_config(tmp_path: Path, store_url: str | None = None, **settings: Any) -> ServerConfig:
    """A ServerConfig for tests: loopback, free ports, data in ``tmp_path/data``."""
    values: dict[str, Any] = {
        "listen": LOOPBACK,
        "data": tmp_path / "data",
        "store": store_url,
        "http": ("127.0.0.1", 0),
        "store_timeout": 1.0,
        "node": "test-node",
    }
    values.update(settings)
    return ServerConfig(**values).check()


def new_branch() -> str:
    return f"z9hG4bK{secrets.token_hex(8)}"


@dataclass
class Running:
    """A server started by the ``start_server`` fixture."""

    server: Server

    def port(self, transport: str = "udp") -> int:
        for spec in self.server.listeners:
            if spec.transport == transport:
                return spec.port
        raise LookupError(transport)

    def registrar(self, transport: str = "udp") -> str:
        """The URI to REGISTER at: our listener, by address."""
        suffix = "" if transport == "udp" else f";transport={transport}"
        return f"sip:127.0.0.1:{self.port(transport)}{suffix}"

    @property
    def http(self) -> tuple[str, int]:
        address = self.server.http_address
        assert address is not None
        return address

    async def bindings(self, aor: str = "sip:alice@localhost") -> list[Binding]:
        assert self.server.store is not None
        return await self.server.store.bindings(aor, time.time())

    async def add_user(self, name: str, password: str, domain: str = "localhost") -> None:
        assert self.server.store is not None
        await self.server.store.put_user(make_user(name, domain, password))


StartServer = Callable[..., Awaitable[Running]]
"""The ``start_server`` fixture: ``await start_server(**settings)``."""


def register_text(
    port: int,
    *,
    user: str = "alice",
    domain: str = "localhost",
    contact: str | None = "<sip:alice@192.0.2.4:5060>",
    expires: int | None = 600,
    call_id: str | None = None,
    cseq: int = 1,
    branch: str | None = None,
    local_port: int = 5060,
    extra: tuple[tuple[str, str], ...] = (),
    host: str = "127.0.0.1",
) -> Request:
    """A REGISTER for ``user@domain`` sent to our listener at ``host:port``."""
    lines = [
        f"REGISTER sip:{host}:{port} SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch={branch or new_branch()};rport",
        "Max-Forwards: 70",
        f"To: <sip:{user}@{domain}>",
        f"From: <sip:{user}@{domain}>;tag=t{next(_counter)}",
        f"Call-ID: {call_id or secrets.token_hex(8)}@test",
        f"CSeq: {cseq} REGISTER",
    ]
    if contact is not None:
        lines.append(f"Contact: {contact}")
    if expires is not None:
        lines.append(f"Expires: {expires}")
    lines += [f"{name}: {value}" for name, value in extra]
    lines += ["Content-Length: 0", "", ""]
    message = parse_message("\r\n".join(lines).encode())
    assert isinstance(message, Request)
    return message


def authorize(
    request: Request,
    challenge: Response,
    username: str = "alice",
    password: str = "secret",
    *,
    only: str | None = None,
    client: DigestClient | None = None,
) -> Request:
    """``request`` answered to ``challenge`` by a DigestClient, with the next CSeq and a
    new branch (a new transaction, as §22.2 says). ``only``: answer only the challenge
    of this algorithm (a phone that knows nothing else)."""
    if only is not None:
        lines = [
            v for v in challenge.headers.get_all("WWW-Authenticate") if f"algorithm={only}" in v
        ]
        assert lines, f"no {only} challenge"
        challenge = parse_message(bytes(challenge))  # type: ignore[assignment]
        challenge.headers.remove("WWW-Authenticate")
        for line in lines:
            challenge.headers.add("WWW-Authenticate", line)
    client = client or DigestClient(
        [DigestAccount(username, password)], lambda: secrets.token_hex(8)
    )
    retry = client.authorize(request, challenge)
    assert retry is not None, "the client could not answer the challenge"
    return renewed(retry)


def renewed(request: Request, cseq: int | None = None) -> Request:
    """``request`` as a new transaction: a new branch, CSeq + 1 (or ``cseq``)."""
    copy = parse_message(bytes(request))
    assert isinstance(copy, Request)
    via = copy.headers.get("Via")
    assert via is not None
    head, _, _ = via.partition(";branch=")
    copy.headers.set("Via", f"{head};branch={new_branch()};rport")
    number = copy.cseq.seq + 1 if cseq is None else cseq
    copy.headers.set("CSeq", f"{number} {copy.method}")
    return parse_message(bytes(copy))  # type: ignore[return-value]


@dataclass
class RawClient(asyncio.DatagramProtocol):
    """A UDP socket that sends requests and matches responses by branch."""

    waiting: dict[str, asyncio.Future[Response]] = field(default_factory=dict)
    responses: list[Response] = field(default_factory=list)
    transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def open(cls) -> RawClient:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_datagram_endpoint(cls, local_addr=("127.0.0.1", 0))
        return protocol

    @property
    def local_port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        message = parse_message(data)
        if not isinstance(message, Response):
            return
        self.responses.append(message)
        if message.status < 200:
            return
        branch = message.via[0].branch or ""
        future = self.waiting.pop(branch, None)
        if future is not None and not future.done():
            future.set_result(message)

    def send(
        self, request: Request | bytes, port: int, host: str = "127.0.0.1"
    ) -> asyncio.Future[Response]:
        """Send ``request`` to ``host:port``; the future gets its final response."""
        data = bytes(request)
        message = parse_message(data)
        branch = message.via[0].branch or ""
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self.waiting[branch] = future
        assert self.transport is not None
        self.transport.sendto(data, (host, port))
        return future

    async def request(
        self,
        request: Request | bytes,
        port: int,
        timeout: float = 5.0,
        *,
        host: str = "127.0.0.1",
    ) -> Response:
        return await asyncio.wait_for(self.send(request, port, host), timeout)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def register(
    client: RawClient,
    port: int,
    request: Request,
    username: str = "alice",
    password: str = "secret",
    *,
    host: str = "127.0.0.1",
    timeout: float = 5.0,
) -> tuple[Response, Request]:
    """Send ``request``, answer its 401, return the final response and the request sent."""
    response = await client.request(request, port, timeout, host=host)
    if response.status != 401:
        return response, request
    retry = authorize(request, response, username, password)
    return await client.request(retry, port, timeout, host=host), retry


async def query(
    client: RawClient,
    port: int,
    user: str = "alice",
    password: str = "secret",
    *,
    host: str = "127.0.0.1",
    domain: str = "localhost",
) -> list[str]:
    """The Contact URIs the registrar at ``host:port`` lists for ``user@domain``: an
    authenticated REGISTER without Contact (§10.2.3), which must get a 200."""
    request = register_text(port, user=user, domain=domain, contact=None, expires=None, host=host)
    response, _ = await register(client, port, request, user, password, host=host)
    assert response.status == 200, bytes(response).decode()
    return sorted(str(contact.uri) for contact in response.contact)


# -- sipwire serve as a process --------------------------------------------------------

SIPWIRE = [sys.executable, "-m", "sipwire.cli.main"]
_READY = "add a user:"
_IN_USE = re.compile(r"address already in use", re.IGNORECASE)


@dataclass
class ServeProcess:
    """A running ``sipwire serve``: its process, UDP port and standard error."""

    proc: subprocess.Popen[bytes]
    host: str
    port: int
    stderr: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def err(self) -> str:
        return self.stderr.read_text(errors="replace")

    def kill(self) -> None:
        """``kill -9``: no chance to answer, flush or close anything."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM (a clean stop), then SIGKILL after ``timeout``; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait(timeout=10)


def _start_serve(
    cwd: Path, args: tuple[str, ...], host: str, port: int, timeout: float, attempt: int
) -> ServeProcess:
    stderr = cwd / f"serve-{port}-{attempt}-{time.monotonic_ns()}.err"
    command = [*SIPWIRE, "serve", "--listen", f"udp:{host}:{port}", "--http", "off", *args]
    with stderr.open("wb") as err:
        proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
    running = ServeProcess(proc, host, port, stderr)
    deadline = time.monotonic() + timeout
    while _READY not in running.err():
        if proc.poll() is not None or time.monotonic() > deadline:
            running.stop(1.0)
            raise RuntimeError(f"sipwire serve did not start:\n{running.err()[-2000:]}")
        time.sleep(0.05)
    return running


@contextlib.contextmanager
def serve_process(
    cwd: Path,
    *args: str,
    host: str = "127.0.0.1",
    port: int | None = None,
    timeout: float = 20.0,
) -> Iterator[ServeProcess]:
    """``sipwire serve --listen udp:HOST:PORT --http off ARGS`` in ``cwd``, ready to answer
    (it printed how to add a user); stopped with SIGTERM (or found dead) on exit.

    Without ``port``, a free one is picked (again when it was taken before the
    server bound it)."""
    from tests.interop.peerproc import pick_port

    running: ServeProcess | None = None
    for attempt in range(3):
        try:
            running = _start_serve(cwd, args, host, port or pick_port(), timeout, attempt)
            break
        except RuntimeError as exc:
            if port is not None or attempt == 2 or not _IN_USE.search(str(exc)):
                raise
    assert running is not None
    try:
        yield running
    finally:
        running.stop()
