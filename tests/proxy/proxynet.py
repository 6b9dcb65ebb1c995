"""A fake network for proxy tests: user-agent cores, scripted peers and a proxy on one clock.

Built on ``tests/core/uanet.py``: every message goes through ``bytes()`` and
the parser, and ``Net.run`` delivers packets and fires timers in time order.
Here packets also have a transport: a packet to or from an address in
``net.tcp`` travels over "TCP" (its receiver sees a Source with transport
``tcp`` and a flow), anything else over UDP.

- :class:`ProxyNode` runs a :class:`~sipwire.proxy.StatefulProxy` (or a
  :class:`~sipwire.proxy.StatelessProxy`) over a transaction layer and answers
  its questions from dictionaries: ``location`` (AOR → bindings), ``users``,
  ``net.dns``, and a nonce-count memory like the store's.
- :class:`Peer` is a scripted user agent: it answers each new request with
  the responses its script gives, a CANCEL with 200 and 487, and records
  everything.
- ``net.ua(...)`` adds a user-agent core whose AOR is in our domain and
  whose outbound proxy is the proxy.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import replace

from sipwire.auth.digest import DigestAccount, DigestClient
from sipwire.auth.nonce import NonceIssuer
from sipwire.core.client import Listener
from sipwire.dialog.ids import CountingIds
from sipwire.message import Address, Request, Response, parse_message
from sipwire.message.validate import Rejection
from sipwire.proxy import (
    Interface,
    LookupTargets,
    LookupUser,
    ProxyPolicy,
    RequestAnswered,
    ResolveTargets,
    RoutingTable,
    StatefulProxy,
    StatelessProxy,
    UseNonceCount,
)
from sipwire.registrar.authenticate import make_user
from sipwire.registrar.model import Binding, User
from sipwire.transaction.events import SendRequest, SendResponse
from sipwire.transaction.layer import TransactionLayer
from sipwire.transport.address import Source, Target
from sipwire.transport.routing import response_target, stamp_via
from tests.core.uanet import Net, Node

DOMAIN = "example.com"
PROXY_HOST = "127.0.0.1"
PROXY_PORT = 5060
SECRET = b"0123456789abcdef0123456789abcdef"

Script = Callable[[Request], Sequence[tuple[float, int]]]


class ProxyNet(Net):
    """The uanet network, with a transport per packet (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.tcp: set[tuple[str, int]] = set()
        self.proxy_node: ProxyNode | None = None

    def transport_between(self, a: tuple[str, int], b: tuple[str, int]) -> str:
        return "tcp" if a in self.tcp or b in self.tcp else "udp"

    @property
    def proxy(self) -> ProxyNode:
        assert self.proxy_node is not None
        return self.proxy_node

    def attach(self, address: tuple[str, int], node: object) -> None:
        """Put any object with ``deliver``, ``next_timer`` and ``fire`` on the network."""
        self.nodes[address] = node  # type: ignore[assignment]

    def add_proxy(self, **kwargs: object) -> ProxyNode:
        node = ProxyNode(self, **kwargs)  # type: ignore[arg-type]
        self.attach((node.host, node.port), node)
        self.proxy_node = node
        return node

    def ua(
        self,
        name: str,
        port: int,
        *,
        host: str = "127.0.0.1",
        domain: str = DOMAIN,
        password: str | None = None,
        tcp: bool = False,
        outbound: bool = True,
    ) -> Node:
        """A user-agent core ``sip:<name>@<domain>`` whose outbound proxy is the proxy."""
        auth = None
        if password is not None:
            counter = itertools.count(1)
            auth = DigestClient([DigestAccount(name, password)], lambda: f"cn{next(counter)}")
        transport = ";transport=tcp" if tcp else ""
        proxy = Address.parse(f"<sip:{PROXY_HOST}:{PROXY_PORT}{transport};lr>")
        node = Node(self, name, host, port, auth, outbound_proxy=proxy if outbound else None)
        node.core.config = replace(node.core.config, aor=Address.parse(f"sip:{name}@{domain}"))
        if tcp:
            self.tcp.add((host, port))
            node.core.set_listeners({"tcp": Listener("tcp", host, port)})
            node.deliver = _tcp_deliver(node)  # type: ignore[assignment,method-assign]
        self.nodes[(host, port)] = node
        return node

    def peer(
        self,
        port: int,
        script: Script | Sequence[int],
        *,
        host: str = "127.0.0.1",
        tcp: bool = False,
    ) -> Peer:
        peer = Peer(self, host, port, script)
        self.attach((host, port), peer)
        if tcp:
            self.tcp.add((host, port))
        return peer


def _tcp_deliver(node: Node) -> Callable[[bytes, tuple[str, int]], None]:
    """A UA core's deliver over "TCP": its Source says tcp (reliable: no retransmissions)."""

    def deliver(data: bytes, src: tuple[str, int]) -> None:
        message = parse_message(data)
        node.received.append(message)
        source = Source("tcp", src[0], src[1], node.host, node.port, flow=1)
        if isinstance(message, Request):
            stamp_via(message, source)
        node.layer.receive(message, source, node.net.now)
        node.pump()

    return deliver


def binding(
    aor: str,
    contact: str,
    *,
    q: float | None = None,
    source: str = "",
    transport: str = "udp",
    flow: int | None = None,
    path: tuple[str, ...] = (),
    reg_id: int | None = None,
    registered_at: float = 0.0,
) -> Binding:
    """A binding as the registrar would store it (expires in an hour)."""
    return Binding(
        aor=aor,
        contact=contact,
        key=contact,
        expires_at=3600.0,
        call_id="reg",
        cseq=1,
        q=q,
        path=path,
        reg_id=reg_id,
        transport=transport,
        source=source,
        flow=flow,
        registered_at=registered_at,
    )


class ProxyNode:
    """A proxy on the fake network; its edge answers from dictionaries."""

    def __init__(
        self,
        net: ProxyNet,
        *,
        host: str = PROXY_HOST,
        port: int = PROXY_PORT,
        domains: Sequence[str] = (DOMAIN,),
        table: RoutingTable | None = None,
        stateless: bool = False,
        **policy: object,
    ) -> None:
        self.net = net
        self.host, self.port = host, port
        self.layer = TransactionLayer()
        interfaces = (Interface("udp", host, port), Interface("tcp", host, port))
        self.policy = ProxyPolicy(interfaces=interfaces, **policy)  # type: ignore[arg-type]
        self.table = table or RoutingTable(domains=frozenset(domains))
        self.issuer = NonceIssuer(SECRET, lifetime=300)
        self.stateless = stateless
        self.proxy: StatefulProxy | StatelessProxy
        if stateless:
            self.proxy = StatelessProxy(self.policy, self.table, self.issuer)
        else:
            self.proxy = StatefulProxy(
                self.layer, self.policy, self.table, CountingIds("px"), self.issuer
            )
        self.location: dict[str, list[Binding]] = {}
        self.users: dict[tuple[str, str], User] = {}
        self.nonce_counts: dict[str, int] = {}
        self.sent: list[tuple[Request | Response, Target]] = []
        self.received: list[Request | Response] = []
        self.answered: list[RequestAnswered] = []
        self.lookups: list[str] = []
        self.hold_lookups = False
        self.held: list[LookupTargets] = []
        self._flows = itertools.count(100)
        self._flow_of: dict[tuple[str, int], int] = {}

    @property
    def stateful(self) -> StatefulProxy:
        assert isinstance(self.proxy, StatefulProxy)
        return self.proxy

    def add_user(self, name: str, password: str, domain: str = DOMAIN) -> None:
        self.users[(name, domain)] = make_user(name, domain, password)

    def register(self, aor: str, *bindings: Binding) -> None:
        self.location.setdefault(aor, []).extend(bindings)

    # -- the network ----------------------------------------------------------------
    def deliver(self, data: bytes, src: tuple[str, int]) -> None:
        message = parse_message(data)
        self.received.append(message)
        transport = self.net.transport_between(src, (self.host, self.port))
        flow = None
        if transport == "tcp":
            flow = self._flow_of.setdefault(src, next(self._flows))
        source = Source(transport, src[0], src[1], self.host, self.port, flow)
        if isinstance(message, Request):
            stamp_via(message, source)
        now = self.net.now
        if isinstance(self.proxy, StatelessProxy):
            self.proxy.receive(message, source, now)
        else:
            self.layer.receive(message, source, now)
        self.pump()

    def pump(self) -> None:
        now = self.net.now
        proxy = self.proxy
        while True:
            event = self.layer.next_event() if isinstance(proxy, StatefulProxy) else None
            if event is not None:
                if isinstance(event, SendRequest):
                    self._send(event.request, event.target)
                elif isinstance(event, SendResponse):
                    self._send_response(event.response, event.source)
                else:
                    assert isinstance(proxy, StatefulProxy)
                    proxy.handle(event, now)
                continue
            out = proxy.next_event()
            if out is None:
                return
            if isinstance(out, SendRequest):
                self._send(out.request, out.target)
            elif isinstance(out, SendResponse):
                self._send_response(out.response, out.source)
            elif isinstance(out, LookupTargets):
                self.lookups.append(out.aor)
                if self.hold_lookups:
                    self.held.append(out)
                else:
                    proxy.targets_found(out.ticket, list(self.location.get(out.aor, [])), now)
            elif isinstance(out, ResolveTargets):
                proxy.targets_resolved(out.ticket, self.net.dns.get(out.uri.host, []), now)
            elif isinstance(out, LookupUser):
                proxy.user_found(out.ticket, self.users.get((out.username, out.realm)), now)
            elif isinstance(out, UseNonceCount):
                fresh = out.nc > self.nonce_counts.get(out.nonce, 0)
                if fresh:
                    self.nonce_counts[out.nonce] = out.nc
                proxy.nonce_count_used(out.ticket, fresh, now)
            elif isinstance(out, RequestAnswered):
                self.answered.append(out)

    def release_lookups(self) -> None:
        """Answer the location look-ups held back (``hold_lookups``)."""
        held, self.held = self.held, []
        for event in held:
            self.proxy.targets_found(
                event.ticket, list(self.location.get(event.aor, [])), self.net.now
            )
        self.pump()

    def _send(self, message: Request | Response, target: Target) -> None:
        self.sent.append((message, target))
        self.net.transmit(bytes(message), (self.host, self.port), (target.host, target.port))

    def _send_response(self, response: Response, source: Source) -> None:
        target, _ = response_target(response.via[0], source)
        self._send(response, target)

    def next_timer(self) -> float | None:
        times = [t for t in (self.layer.next_timer(), self.proxy.next_timer()) if t is not None]
        return min(times, default=None)

    def fire(self) -> None:
        now = self.net.now
        self.layer.handle_timer(now)
        self.proxy.handle_timer(now)
        self.pump()

    # -- what it sent ---------------------------------------------------------------
    def requests_to(self, port: int, method: str | None = None) -> list[Request]:
        return [
            m
            for m, t in self.sent
            if isinstance(m, Request) and t.port == port and (method is None or m.method == method)
        ]

    def responses_to(self, port: int) -> list[Response]:
        return [m for m, t in self.sent if isinstance(m, Response) and t.port == port]


class Peer:
    """A scripted user agent (see the module docstring)."""

    def __init__(
        self, net: ProxyNet, host: str, port: int, script: Script | Sequence[int], tag: str = ""
    ) -> None:
        self.net = net
        self.host, self.port = host, port
        self.script: Script = script if callable(script) else _fixed(script)
        self.tag = tag or f"peer{port}"
        self.requests: list[Request] = []
        self.responses: list[Response] = []
        self.extra: dict[int, list[tuple[str, str]]] = {}
        """Headers added to responses of a status (e.g. a challenge to a 401)."""
        self.contact = f"<{self.uri}>"
        """The Contact of its 2xx to INVITE."""
        self._pending: list[tuple[float, int, bytes, tuple[str, int]]] = []
        self._seq = 0
        self._final: dict[str, bool] = {}
        self._invites: dict[str, tuple[Request, tuple[str, int]]] = {}

    @property
    def uri(self) -> str:
        return f"sip:peer@{self.host}:{self.port}"

    def __repr__(self) -> str:
        return f"<Peer {self.host}:{self.port}>"

    def methods(self) -> list[str]:
        return [r.method for r in self.requests]

    def deliver(self, data: bytes, src: tuple[str, int]) -> None:
        message = parse_message(data)
        if isinstance(message, Response):
            self.responses.append(message)
            return
        self.requests.append(message)
        branch = message.via[0].branch or ""
        if message.method == "ACK":
            return
        if message.method == "CANCEL":
            self._send(message.reply(200, to_tag=self.tag), src, 0.0)
            invite = self._invites.get(branch)
            if invite is not None and not self._final.get(branch):
                self._final[branch] = True
                self._send(invite[0].reply(487, to_tag=self.tag), invite[1], 0.0)
            return
        if branch in self._final:
            return  # a retransmission: the scripted answers are already on their way
        self._final[branch] = False
        if message.method == "INVITE":
            self._invites[branch] = (message, src)
        for delay, status in self.script(message):
            self._respond(message, status, src, delay)

    def _respond(self, request: Request, status: int, dst: tuple[str, int], delay: float) -> None:
        headers = list(self.extra.get(status, []))
        if 200 <= status < 300 and request.method == "INVITE":
            headers.append(("Contact", self.contact))
        response = request.reply(status, headers=headers, to_tag=self.tag)
        self._seq += 1
        self._pending.append((self.net.now + delay, self._seq, bytes(response), dst))
        self._pending.sort()

    def _send(self, response: Response, dst: tuple[str, int], delay: float) -> None:
        self._seq += 1
        self._pending.append((self.net.now + delay, self._seq, bytes(response), dst))
        self._pending.sort()

    def next_timer(self) -> float | None:
        return self._pending[0][0] if self._pending else None

    def fire(self) -> None:
        while self._pending and self._pending[0][0] <= self.net.now:
            _, _, data, dst = self._pending.pop(0)
            first = data.split(b" ", 2)[1]
            if int(first) >= 200:
                # a final response: a CANCEL arriving later finds it answered
                response = parse_message(data)
                assert isinstance(response, Response)
                self._final[response.via[0].branch or ""] = True
            self.net.transmit(data, (self.host, self.port), dst)


def _fixed(statuses: Sequence[int]) -> Script:
    def script(request: Request) -> list[tuple[float, int]]:
        if request.method != "INVITE":
            return [(0.0, 200)]
        return [(0.0, s) for s in statuses]

    return script


def rejection_status(rejection: Rejection | None) -> int | None:
    return None if rejection is None else rejection.status
