"""Worker processes of ``sipwire serve --workers N``: one server, N processes, one address.

Each worker is a whole server (registrar and proxy) in a process of its own,
with a node name of its own (``NODE/w0``, ``NODE/w1`` ...: the bindings it
takes name it). The workers share the listening addresses (SO_REUSEPORT: the
kernel spreads UDP datagrams by source address, TCP connections as they
come) and the store. What one process cannot do alone goes through a
channel between them: a UDP socket per worker on 127.0.0.1, made by the
parent before it forks (so every worker knows every port):

- a response to a request another worker forwarded: the callee's responses
  are spread by the callee's address, not by who asked. The proxy's branch
  names its worker (``...w3x...``, :class:`WorkerIds`), and a worker hands
  a response whose top Via is another's to that one;
- a request (or a stateless response) that must go out on a connection
  another worker holds: a phone registered over TCP through worker 1 is
  reachable only on that connection (RFC 5626). The binding's node names
  the worker; the bytes are handed to it to write on that connection.

The parent process starts the workers (``fork``), forwards SIGINT and
SIGTERM to them, and exits with the worst of their exit statuses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import signal
import socket
import sys
from collections.abc import Callable
from typing import Final

from sipwire.aio.endpoint import Endpoint
from sipwire.dialog.ids import IdSource
from sipwire.errors import ParseError, SipError
from sipwire.message import Request, Response, parse_message
from sipwire.transport.address import Source, Target

__all__ = [
    "WorkerChannel",
    "WorkerIds",
    "run_workers",
    "worker_node",
    "worker_of_branch",
]

log = logging.getLogger("sipwire.workers")

_HOST: Final = "127.0.0.1"
_MARK: Final = "w"
_BUFFER: Final = 4 * 1024 * 1024
_MAX_DATAGRAM: Final = 1 << 17
_END: Final = "x"


def worker_node(base: str, index: int) -> str:
    """The node name of worker ``index`` of the server ``base``."""
    return f"{base}/w{index}"


def _index_of(base: str, node: str) -> int | None:
    prefix = f"{base}/w"
    if not node.startswith(prefix):
        return None
    rest = node[len(prefix) :]
    return int(rest) if rest.isdigit() else None


class WorkerIds:
    """An IdSource whose tokens name worker ``index`` (``w3x`` then random hex): the
    proxy's branches say which worker holds the client transaction."""

    __slots__ = ("_ids", "_prefix")

    def __init__(self, ids: IdSource, index: int) -> None:
        self._ids = ids
        self._prefix = f"{_MARK}{index}{_END}"

    def token(self) -> str:
        return self._prefix + self._ids.token()

    def random(self) -> float:
        return self._ids.random()


def worker_of_branch(branch: str) -> int | None:
    """The worker a branch of :class:`WorkerIds` names (the token after the last dot of
    a stateful proxy's branch), or None."""
    token = branch.rpartition(".")[2]
    if not token.startswith(_MARK):
        return None
    number, end, _ = token[1:].partition(_END)
    return int(number) if end and number.isdigit() else None


class WorkerChannel:
    """This worker's end of the channel between the workers (see the module docstring).

    Datagrams are a header line and the message's bytes:
    ``R transport host port`` (a message received from that source, for you) or
    ``S transport host port flow`` (write this on your connection ``flow``).
    """

    def __init__(
        self, endpoint: Endpoint, index: int, ports: tuple[int, ...], fd: int, base: str
    ) -> None:
        self.endpoint = endpoint
        self.index = index
        self.ports = ports
        self.count = len(ports)
        self.base = base
        self._fd = fd
        self.relayed = 0
        """Messages handed to other workers."""
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def address(self, index: int) -> tuple[str, int]:
        return (_HOST, self.ports[index])

    async def open(self) -> None:
        """Take this worker's socket (made by the parent) and read it on the running loop
        (a plain socket and ``add_reader``: as cheap on uvloop as on asyncio)."""
        sock = socket.socket(fileno=os.dup(self._fd))
        sock.setblocking(False)
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._readable)

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(sock.fileno())
            sock.close()

    def _readable(self) -> None:
        sock = self._sock
        while sock is not None:
            try:
                data, addr = sock.recvfrom(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("worker channel: %s", exc)
                return
            if addr[0] == _HOST and addr[1] in self.ports:
                self.datagram_received(data)
            # else: not from a worker of this server (another local program): ignored

    # -- which worker ----------------------------------------------------------------------
    def worker_of(self, node: str) -> int | None:
        """The index of the worker named ``node`` when it is another of this server's."""
        index = _index_of(self.base, node)
        if index is None or index == self.index or not 0 <= index < self.count:
            return None
        return index

    def owner_of(self, message: Request | Response) -> int | None:
        """The other worker a response belongs to (its top Via's branch), or None."""
        if not isinstance(message, Response):
            return None
        try:
            top = message.via[0]
        except (ParseError, IndexError):
            return None
        index = worker_of_branch(top.branch or "")
        if index is None or index == self.index or not 0 <= index < self.count:
            return None
        return index

    # -- handing over ----------------------------------------------------------------------
    def hand_message(self, index: int, message: Request | Response, source: Source) -> None:
        """Give worker ``index`` a message this one received from ``source``."""
        head = f"R {source.transport} {source.host} {source.port}\n"
        self._send(index, head.encode() + bytes(message))

    def hand_send(self, index: int, data: bytes, target: Target, flow: int) -> None:
        """Have worker ``index`` write ``data`` on its connection ``flow`` to ``target``."""
        head = f"S {target.transport} {target.host} {target.port} {flow}\n"
        self._send(index, head.encode() + data)

    def _send(self, index: int, payload: bytes) -> None:
        if self._sock is None:
            return
        try:
            self._sock.sendto(payload, self.address(index))
            self.relayed += 1
        except OSError as exc:  # gone, or its queue is full: like a datagram lost
            log.warning("worker %d unreachable: %s", index, exc)

    # -- taking over -----------------------------------------------------------------------
    def datagram_received(self, data: bytes) -> None:
        head, _, body = data.partition(b"\n")
        fields = head.decode("ascii", "replace").split()
        try:
            if fields[0] == "R" and len(fields) == 4:
                message = parse_message(body)
                source = Source(fields[1], fields[2], int(fields[3]))
                self.endpoint.transport.deliver(message, source)
            elif fields[0] == "S" and len(fields) == 5:
                target = Target(fields[1], fields[2], int(fields[3]))
                self._write(body, target, int(fields[4]))
        except (IndexError, ValueError, ParseError) as exc:
            log.warning("bad datagram from another worker: %s", exc)

    def _write(self, data: bytes, target: Target, flow: int) -> None:
        transport = self.endpoint.transport
        try:
            if transport.send_nowait(data, target, flow=flow) is not None:
                return
        except SipError as exc:
            log.info("could not send to %s for another worker: %s", target, exc.reason)
            return

        async def later() -> None:
            with contextlib.suppress(SipError):
                if transport.connection(flow) is not None:
                    await transport.send(data, target, flow=flow)

        task = asyncio.ensure_future(later())
        task.add_done_callback(lambda t: t.cancelled() or t.exception())


def _channel_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((_HOST, 0))
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, option, _BUFFER)
    return sock


Child = Callable[[int, Callable[[], None], tuple[int, ...], int], int]
"""``child(index, ready, channel_ports, channel_fd)``: runs worker ``index``."""


def run_workers(count: int, child: Child, on_ready: Callable[[], None]) -> int:
    """Fork ``count`` workers, each running ``child(index, ready, ports, fd)``:
    ``ready()`` once it listens, ``ports`` those of every worker's channel socket and
    ``fd`` its own (see :class:`WorkerChannel`); its return value is the worker's exit
    status. ``on_ready`` is called once all are ready. SIGINT and SIGTERM are passed
    on to the workers. Returns the worst exit status (a signal counts as 1)."""
    sockets = [_channel_socket() for _ in range(count)]
    ports = tuple(int(sock.getsockname()[1]) for sock in sockets)
    read_end, write_end = os.pipe()
    pids: list[int] = []
    for index in range(count):
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            status = 1
            try:

                def notify() -> None:
                    os.write(write_end, b"r")

                status = child(index, notify, ports, sockets[index].fileno())
            except BaseException:
                log.exception("worker %d failed", index)
            finally:
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
                    sys.stderr.flush()
                os._exit(status)
        pids.append(pid)
    os.close(write_end)
    for sock in sockets:
        sock.close()

    def forward(signum: int, frame: object) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    statuses: dict[int, int] = {}
    try:
        ready = 0
        while ready < count and not statuses:
            readable, _, _ = select.select([read_end], [], [], 0.2)
            if readable:
                ready += len(os.read(read_end, count - ready))
            for pid in pids:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    statuses[pid] = status  # a worker ended before all were ready
        if ready == count and not statuses:
            on_ready()
        else:
            forward(signal.SIGTERM, None)
        worst = 0 if ready == count else 1
        for pid in pids:
            if pid not in statuses:
                statuses[pid] = os.waitpid(pid, 0)[1]
            code = os.waitstatus_to_exitcode(statuses[pid])
            worst = max(worst, code if code >= 0 else 1)
        return worst
    finally:
        os.close(read_end)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
