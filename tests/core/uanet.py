"""A fake UDP network of user-agent cores on a manual clock, for dialog-layer tests.

Every message goes through ``bytes()`` and ``parse_message`` on its way, so
the tests exercise the wire form. ``Net.run(until)`` delivers packets and
fires timers in time order; ``Net.intercept`` can drop, hold or rewrite any
packet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sipwire.auth.digest import DigestClient
from sipwire.core.client import Listener
from sipwire.core.config import UAConfig
from sipwire.core.events import ResolveTargets, UAEvent
from sipwire.core.media import StaticMedia
from sipwire.core.ua import UserAgentCore
from sipwire.dialog.ids import CountingIds
from sipwire.message import Address, Request, Response, parse_message
from sipwire.transaction.events import SendRequest, SendResponse
from sipwire.transaction.layer import TransactionLayer
from sipwire.transport.address import Source, Target
from sipwire.transport.routing import response_target, stamp_via

OFFER = b"v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
ANSWER = b"v=0\r\no=b 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n"


@dataclass(order=True)
class Packet:
    at: float
    seq: int
    data: bytes = field(compare=False)
    src: tuple[str, int] = field(compare=False)
    dst: tuple[str, int] = field(compare=False)


class Node:
    """One user agent on the fake network."""

    def __init__(
        self,
        net: Net,
        name: str,
        host: str,
        port: int,
        auth: DigestClient | None = None,
        **config: object,
    ) -> None:
        self.net = net
        self.name = name
        self.host, self.port = host, port
        self.layer = TransactionLayer()
        aor = Address.parse(f"sip:{name}@{host}:{port}")
        cfg = UAConfig(aor=aor, contact_user=name, **config)  # type: ignore[arg-type]
        self.media: list[StaticMedia] = []
        self.core = UserAgentCore(
            self.layer, cfg, CountingIds(prefix=f"{name}-"), media_factory=self._media, auth=auth
        )
        self.core.set_listeners({"udp": Listener("udp", host, port)})
        self.events: list[UAEvent] = []
        self.sent: list[Request | Response] = []
        self.received: list[Request | Response] = []

    def _media(self) -> StaticMedia:
        media = StaticMedia(ANSWER)
        self.media.append(media)
        return media

    @property
    def uri(self) -> str:
        return f"sip:{self.name}@{self.host}:{self.port}"

    def pump(self) -> None:
        now = self.net.now
        while True:
            event = self.layer.next_event()
            if event is None:
                break
            if isinstance(event, SendRequest):
                self._send(event.request, (event.target.host, event.target.port))
            elif isinstance(event, SendResponse):
                via = event.response.via[0]
                target, _ = response_target(via, event.source)
                self._send(event.response, (target.host, target.port))
            else:
                self.core.handle(event, now)
        while (ua_event := self.core.next_event()) is not None:
            if isinstance(ua_event, ResolveTargets):
                targets = self.net.dns.get(ua_event.uri.host, [])
                self.core.targets_resolved(ua_event.request, targets, now)
                self.pump()
                continue
            self.events.append(ua_event)

    def _send(self, message: Request | Response, dst: tuple[str, int]) -> None:
        self.sent.append(message)
        self.net.transmit(bytes(message), (self.host, self.port), dst)

    def deliver(self, data: bytes, src: tuple[str, int]) -> None:
        message = parse_message(data)
        self.received.append(message)
        source = Source("udp", src[0], src[1], self.host, self.port)
        if isinstance(message, Request):
            stamp_via(message, source)
        self.layer.receive(message, source, self.net.now)
        self.pump()

    def next_timer(self) -> float | None:
        times = [t for t in (self.layer.next_timer(), self.core.next_timer()) if t is not None]
        return min(times, default=None)

    def fire(self) -> None:
        now = self.net.now
        self.layer.handle_timer(now)
        self.core.handle_timer(now)
        self.pump()

    def events_of(self, kind: type) -> list[UAEvent]:
        return [e for e in self.events if isinstance(e, kind)]

    def sent_methods(self) -> list[str]:
        return [m.method if isinstance(m, Request) else str(m.status) for m in self.sent]


Handler = Callable[[Request], list[Response]]


class Scripted:
    """A stateless peer that answers each request with what ``handler`` returns."""

    def __init__(self, net: Net, host: str, port: int, handler: Handler) -> None:
        self.net = net
        self.host, self.port = host, port
        self.handler = handler
        self.requests: list[Request] = []

    def deliver(self, data: bytes, src: tuple[str, int]) -> None:
        message = parse_message(data)
        if isinstance(message, Request):
            self.requests.append(message)
            for response in self.handler(message):
                self.net.transmit(bytes(response), (self.host, self.port), src)

    def next_timer(self) -> float | None:
        return None

    def fire(self) -> None:
        pass

    def methods(self) -> list[str]:
        return [r.method for r in self.requests]


class Net:
    """Nodes by address, packets in flight, one clock."""

    def __init__(self, latency: float = 0.01) -> None:
        self.now = 0.0
        self.latency = latency
        self.nodes: dict[tuple[str, int], Node | Scripted] = {}
        self.dns: dict[str, list[Target]] = {}
        """Host name → RFC 3263 targets, for ResolveTargets."""
        self.inflight: list[Packet] = []
        self._seq = 0
        self.intercept: Callable[[Packet], bool] | None = None
        """Return False to drop a packet."""
        self.trace: list[tuple[float, str, str]] = []

    def add(
        self,
        name: str,
        port: int,
        *,
        host: str = "127.0.0.1",
        auth: DigestClient | None = None,
        **config: object,
    ) -> Node:
        node = Node(self, name, host, port, auth, **config)
        self.nodes[(host, port)] = node
        return node

    def script(self, port: int, handler: Handler, *, host: str = "127.0.0.1") -> Scripted:
        node = Scripted(self, host, port, handler)
        self.nodes[(host, port)] = node
        return node

    def transmit(self, data: bytes, src: tuple[str, int], dst: tuple[str, int]) -> None:
        self._seq += 1
        packet = Packet(self.now + self.latency, self._seq, data, src, dst)
        if self.intercept is not None and not self.intercept(packet):
            return
        self.inflight.append(packet)

    def run(self, until: float) -> None:
        """Deliver packets and fire timers in time order up to ``until``."""
        while True:
            self.inflight.sort()
            next_packet = self.inflight[0].at if self.inflight else None
            timers = [(t, n) for n in self.nodes.values() if (t := n.next_timer()) is not None]
            next_timer = min(timers, key=lambda x: x[0]) if timers else None
            candidates = [x for x in (next_packet, next_timer and next_timer[0]) if x is not None]
            if not candidates or min(candidates) > until:
                self.now = until
                return
            if next_packet is not None and (next_timer is None or next_packet <= next_timer[0]):
                packet = self.inflight.pop(0)
                self.now = max(self.now, packet.at)
                node = self.nodes.get(packet.dst)
                first = packet.data.split(b"\r\n", 1)[0].decode()
                self.trace.append((self.now, f"{packet.src[1]}->{packet.dst[1]}", first))
                if node is not None:
                    node.deliver(packet.data, packet.src)
            else:
                assert next_timer is not None
                self.now = max(self.now, next_timer[0])
                next_timer[1].fire()

    def step(self, seconds: float) -> None:
        self.run(self.now + seconds)

    def first_lines(self) -> list[str]:
        return [line for _, _, line in self.trace]


def target_of(node: Node) -> Target:
    return Target("udp", node.host, node.port)
