"""A small UDP user agent client and health checks for the load tests (test helper).

:class:`UdpUac` is a non-blocking UDP UAC bound to a chosen ``127.0.0.x``:
OPTIONS probes and calls (INVITE, ACK, BYE) with RFC 3261 retransmissions,
each recorded as a :class:`ProbeResult`. :func:`options_ok`,
:func:`calls_ok` and :func:`tcp_options_ok` are the health checks.
"""

from __future__ import annotations

import contextlib
import itertools
import secrets
import select
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.load.sipmsg import SipMessage, build_request, parse_sip, sdp_offer

__all__ = ["ProbeResult", "UdpUac", "calls_ok", "options_ok", "tcp_options_ok"]

T1 = 0.5
T2 = 4.0


@dataclass
class ProbeResult:
    """One OPTIONS or one call of a :class:`UdpUac`, in ``time.monotonic()`` seconds."""

    kind: str
    """"options" or "call"."""
    sent: float
    answered: float | None = None
    """When the 200 (OPTIONS) or the 200 to the INVITE arrived (within the window)."""
    status: int | None = None
    """The first final status received."""
    completed: float | None = None
    """Calls: when the 200 to the BYE arrived."""

    @property
    def ok(self) -> bool:
        if self.answered is None:
            return False
        return self.kind == "options" or self.completed is not None

    @property
    def done_at(self) -> float | None:
        return self.answered if self.kind == "options" else self.completed


@dataclass
class _Txn:
    data: bytes
    deadline: float
    next_send: float
    interval: float
    invite: bool
    on_response: Callable[[SipMessage, float], None]
    provisional: bool = False


@dataclass
class UdpUac:
    """A non-blocking UDP UAC on ``source`` (a 127.0.0.x) towards ``target``.

    :meth:`options` and :meth:`call` start a probe; :meth:`poll` sends,
    retransmits (Timer A/E) and reads until a given time. A probe is answered
    when its 200 arrives within ``window`` seconds of the first send.
    """

    source: str
    target: tuple[str, int]
    window: float = 2.0
    results: list[ProbeResult] = field(default_factory=list)
    requests_received: int = 0
    stray_responses: int = 0

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind((self.source, 0))
        self.sock.setblocking(False)
        self.port = int(self.sock.getsockname()[1])
        self._prefix = secrets.token_hex(4)
        self._counter = itertools.count(1)
        self._txns: dict[str, _Txn] = {}
        # Branch of a finished INVITE -> the ACK to send again when its final response repeats.
        self._acks: dict[str, bytes] = {}
        self.uri = f"sip:answer@{self.target[0]}:{self.target[1]}"

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> UdpUac:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ids(self) -> tuple[str, str, str]:
        n = next(self._counter)
        return f"z9hG4bK{self._prefix}b{n}", f"{self._prefix}-{n}@{self.source}", f"t{n}"

    def _send(self, data: bytes) -> None:
        with contextlib.suppress(BlockingIOError, ConnectionRefusedError):
            self.sock.sendto(data, self.target)

    def _start(
        self,
        branch: str,
        data: bytes,
        now: float,
        invite: bool,
        on_response: Callable[[SipMessage, float], None],
    ) -> None:
        self._txns[branch] = _Txn(data, now + self.window, now + T1, T1, invite, on_response)
        self._send(data)

    def _request(
        self,
        method: str,
        branch: str,
        call_id: str,
        tag: str,
        *,
        uri: str | None = None,
        to_tag: str | None = None,
        cseq: int = 1,
        contact: bool = False,
        body: bytes = b"",
    ) -> bytes:
        return build_request(
            method,
            uri or self.uri,
            via_host=self.source,
            via_port=self.port,
            branch=branch,
            call_id=call_id,
            from_tag=tag,
            to_tag=to_tag,
            cseq=cseq,
            contact=contact,
            body=body,
        )

    def options(self, now: float) -> ProbeResult:
        result = ProbeResult("options", now)
        self.results.append(result)
        branch, call_id, tag = self._ids()

        def on_response(msg: SipMessage, t: float) -> None:
            status = msg.status or 0
            if status >= 200:
                result.status = status
                if status == 200:
                    result.answered = t
                self._txns.pop(branch, None)

        self._start(branch, self._request("OPTIONS", branch, call_id, tag), now, False, on_response)
        return result

    def call(self, now: float) -> ProbeResult:
        """INVITE with SDP; on 200: ACK, then BYE; answered/completed as they come."""
        result = ProbeResult("call", now)
        self.results.append(result)
        branch, call_id, tag = self._ids()
        invite = self._request(
            "INVITE", branch, call_id, tag, contact=True, body=sdp_offer(self.source)
        )

        def on_bye(msg: SipMessage, t: float) -> None:
            if (msg.status or 0) >= 200:
                if msg.status == 200 and t <= result.sent + 2 * self.window:
                    result.completed = t
                self._txns.pop(bye_branch, None)

        bye_branch = branch + "bye"

        def on_invite(msg: SipMessage, t: float) -> None:
            status = msg.status or 0
            txn = self._txns.get(branch)
            if status < 200:
                if txn is not None:
                    txn.provisional = True
                return
            if txn is None:  # a repeated final response: repeat the ACK
                ack = self._acks.get(branch)
                if ack is not None:
                    self._send(ack)
                return
            del self._txns[branch]
            result.status = status
            to_tag = msg.to_tag
            if 200 <= status < 300:
                result.answered = t
                target = msg.contact_uri or self.uri
                ack = self._request(
                    "ACK", branch + "ack", call_id, tag, uri=target, to_tag=to_tag, cseq=1
                )
                bye = self._request(
                    "BYE", bye_branch, call_id, tag, uri=target, to_tag=to_tag, cseq=2
                )
                self._send(ack)
                self._start(bye_branch, bye, t, False, on_bye)
            else:  # §17.1.1.3: the ACK of a non-2xx final response reuses the branch
                ack = self._request("ACK", branch, call_id, tag, to_tag=to_tag, cseq=1)
                self._send(ack)
            self._acks[branch] = ack
            if len(self._acks) > 5000:
                self._acks.pop(next(iter(self._acks)))

        self._start(branch, invite, now, True, on_invite)
        return result

    def pending(self) -> int:
        return len(self._txns)

    def poll(self, until: float, *, until_idle: bool = False) -> None:
        """Send, retransmit and read until ``until`` (monotonic), or no probe is pending."""
        while True:
            now = time.monotonic()
            self._timers(now)
            if now >= until or (until_idle and not self._txns):
                return
            wake = until
            for txn in self._txns.values():
                wake = min(wake, txn.deadline, txn.next_send if not txn.provisional else wake)
            ready, _, _ = select.select([self.sock], [], [], max(0.0, wake - now))
            if ready:
                self._read()

    def run_until_idle(self, limit: float) -> None:
        self.poll(limit, until_idle=True)

    def _read(self) -> None:
        for _ in range(1000):
            try:
                data, _ = self.sock.recvfrom(65536)
            except (BlockingIOError, ConnectionRefusedError):
                return
            msg = parse_sip(data)
            if msg is None:
                continue
            if msg.status is None:
                self.requests_received += 1
                continue
            branch = msg.branch
            txn = self._txns.get(branch)
            if txn is not None:
                txn.on_response(msg, time.monotonic())
            elif branch in self._acks:
                self._send(self._acks[branch])
            else:
                self.stray_responses += 1

    def _timers(self, now: float) -> None:
        for branch, txn in list(self._txns.items()):
            if now >= txn.deadline:
                del self._txns[branch]
            elif not txn.provisional and now >= txn.next_send:
                self._send(txn.data)
                txn.interval = txn.interval * 2 if txn.invite else min(txn.interval * 2, T2)
                txn.next_send = now + txn.interval


def options_ok(
    port: int, *, source: str = "127.0.0.3", host: str = "127.0.0.1", timeout: float = 2.0
) -> float | None:
    """Health check: an OPTIONS from ``source`` answered 200 within ``timeout``: its latency."""
    with UdpUac(source, (host, port), window=timeout) as uac:
        result = uac.options(time.monotonic())
        uac.run_until_idle(time.monotonic() + timeout + 0.5)
    return None if result.answered is None else result.answered - result.sent


def calls_ok(port: int, count: int, *, source: str = "127.0.0.3", window: float = 2.0) -> int:
    """``count`` calls one after another from ``source``; how many completed."""
    ok = 0
    with UdpUac(source, ("127.0.0.1", port), window=window) as uac:
        for _ in range(count):
            result = uac.call(time.monotonic())
            uac.run_until_idle(time.monotonic() + 2 * window + 1)
            ok += result.ok
    return ok


def tcp_options_ok(
    port: int, *, source: str = "127.0.0.4", host: str = "127.0.0.1", timeout: float = 5.0
) -> bool:
    """Health check over a fresh TCP connection: OPTIONS answered 200 within ``timeout``.

    The connection is closed with a reset (SO_LINGER 0) so that thousands of
    checks leave no TIME_WAIT behind.
    """
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_BIND_ADDRESS_NO_PORT, 1)
        sock.bind((source, 0))
        sock.settimeout(timeout)
        try:
            sock.connect((host, port))
            local_port = int(sock.getsockname()[1])
            branch = "z9hG4bKtcp" + secrets.token_hex(6)
            request = build_request(
                "OPTIONS",
                f"sip:answer@{host}:{port};transport=tcp",
                via_host=source,
                via_port=local_port,
                branch=branch,
                call_id=secrets.token_hex(8) + "@" + source,
                from_tag=secrets.token_hex(4),
                transport="TCP",
            )
            sock.sendall(request)
            data = b""
            while b"\r\n\r\n" not in data:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                sock.settimeout(remaining)
                chunk = sock.recv(65536)
                if not chunk:
                    return False
                data += chunk
        except OSError:
            return False
    msg = parse_sip(data)
    return msg is not None and msg.status == 200 and msg.branch == branch
