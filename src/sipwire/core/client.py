"""The UAC core's request sending (RFC 3261 §8.1): targets, Via, retries.

A :class:`ClientRequest` is one request as the application sees it. The
:class:`RequestSender` hides what happens underneath:

- RFC 3263 targets for the next hop (§8.1.2), asked of the I/O edge with a
  ``ResolveTargets`` event when DNS is needed;
- a fresh Via branch for every client transaction (§8.1.1.7), with the
  sent-by of the listener for the chosen transport and ``rport`` (RFC 3581);
- 401/407: a new request with credentials and CSeq + 1 (§22.2, RFC 7616);
- 408/503 from a timeout, a transport error or a 503 answer: the same
  request to the next target (RFC 3263 §4.3);
- 3xx outside a dialog: the Contacts, best q first (§8.1.3.4).

Whatever is left reaches the request's sink: provisional responses as they
come, then exactly one final response.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from sipwire.dialog.dialog import Dialog
from sipwire.dialog.ids import IdSource, new_branch
from sipwire.errors import SipError
from sipwire.message import Address, Request, Response, SipUri, Uri
from sipwire.transaction.client import ClientTransaction
from sipwire.transaction.events import ResponseReceived
from sipwire.transaction.layer import TransactionLayer
from sipwire.transport.address import RELIABLE, Target
from sipwire.transport.rfc3263 import Locator, TargetSet
from sipwire.transport.routing import choose_transport

if TYPE_CHECKING:
    from sipwire.auth.digest import DigestClient

__all__ = ["ClientRequest", "Listener", "RequestSender", "ResponseSink"]

log = logging.getLogger("sipwire.uac")

MAX_AUTH_ATTEMPTS = 3


class ResponseSink(Protocol):
    """Who hears the responses of a ClientRequest."""

    def on_provisional(self, request: ClientRequest, response: Response, now: float) -> None:
        """A 1xx for ``request``."""

    def on_final(self, request: ClientRequest, response: Response, now: float) -> None:
        """The final response for ``request`` (after every retry)."""


@dataclass(frozen=True, slots=True)
class Listener:
    """A local address we receive on, for Via sent-by and Contact."""

    transport: str
    host: str
    port: int

    @property
    def hostport(self) -> str:
        """``host:port`` for a Via sent-by or a Contact (IPv6 in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(slots=True, eq=False)
class ClientRequest:
    """One request and its retries, as one unit for the application."""

    request: Request
    """The request as last sent (CSeq, Via and credentials change on retries)."""
    sink: ResponseSink
    dialog: Dialog | None = None
    next_hop: Uri | None = None
    """Send here instead of the dialog's or the Request-URI's next hop (outbound proxy)."""
    contact_user: str | None = None
    """Fill Contact with this user when the request needs one and has none."""
    targets: TargetSet | None = None
    target: Target | None = None
    transaction: ClientTransaction | None = None
    final: Response | None = None
    provisional: Response | None = None
    auth_attempts: int = 0
    redirects: int = 0
    redirect_queue: list[Uri] = field(default_factory=list)
    tried: list[Uri] = field(default_factory=list)
    cancelled: bool = False

    @property
    def method(self) -> str:
        """The request's method."""
        return self.request.method

    @property
    def done(self) -> bool:
        """True once the final response is known."""
        return self.final is not None


class RequestSender:
    """Sends ClientRequests through the transaction layer and handles the retries."""

    def __init__(
        self,
        layer: TransactionLayer,
        ids: IdSource,
        *,
        auth: DigestClient | None = None,
        emit_resolve: Callable[[ClientRequest, SipUri], None],
        max_redirects: int = 5,
    ) -> None:
        self.layer = layer
        self.ids = ids
        self.auth = auth
        self.listeners: dict[str, Listener] = {}
        self._emit_resolve = emit_resolve
        self.max_redirects = max_redirects
        self._by_transaction: dict[int, ClientRequest] = {}
        self.transports: tuple[str, ...] = ("udp", "tcp", "tls", "ws", "wss")

    def set_listeners(self, listeners: Mapping[str, Listener]) -> None:
        """Where we receive, per transport."""
        self.listeners = dict(listeners)

    # -- starting ----------------------------------------------------------------------
    def send(self, creq: ClientRequest, now: float) -> None:
        """Send ``creq`` to the targets of its next hop."""
        uri = _hop(creq)
        if not isinstance(uri, SipUri):
            self._fail(creq, 416, f"cannot route to {uri}", now)
            return
        try:
            locator = Locator(uri, self.ids, transports=self.transports)
        except SipError as exc:  # e.g. an unknown transport= parameter (RFC 3263 §4.1)
            self._fail(creq, exc.status, exc.reason, now)
            return
        if locator.done:
            self.targets_resolved(creq, locator.targets(), now)
        else:
            self._emit_resolve(creq, uri)

    def targets_resolved(self, creq: ClientRequest, targets: list[Target], now: float) -> None:
        """RFC 3263 targets for ``creq`` are known (empty: the name does not resolve)."""
        if creq.done:
            return
        usable = [t for t in targets if self._listener(t.transport) is not None]
        if not usable:
            if targets:
                reason = f"no listener for {', '.join(sorted({t.transport for t in targets}))}"
            else:
                hop = _hop(creq)
                host = (hop.maddr or hop.host) if isinstance(hop, SipUri) else str(hop)
                reason = f"cannot resolve {host}"
            self._fail(creq, 503, reason, now)
            return
        creq.targets = TargetSet(usable)
        self._transmit(creq, now)

    def _transmit(self, creq: ClientRequest, now: float) -> None:
        assert creq.targets is not None
        target = creq.targets.next()
        if target is None:
            self._fail(creq, 503, "every target failed", now)
            return
        creq.target = target
        request = creq.request
        if creq.contact_user is not None and "contact" not in request.headers:
            request.headers.add("Contact", self.contact(creq.contact_user, target.transport))
        wire = self._stamp_via(request, target)
        # §18.1.1: a request larger than 1300 bytes goes over TCP.
        if (
            target.transport == "udp"
            and self._listener("tcp") is not None
            and choose_transport(len(bytes(request)), "udp") == "tcp"
        ):
            wire = self._stamp_via(request, Target("tcp", target.host, target.port))
        try:
            transaction = self.layer.send_request(request, wire, now)
        except SipError as exc:
            self._fail(creq, 500, exc.reason, now)
            return
        if creq.transaction is not None:
            self._by_transaction.pop(id(creq.transaction), None)
        creq.transaction = transaction
        self._by_transaction[id(transaction)] = creq

    def _stamp_via(self, request: Request, target: Target) -> Target:
        """Put our Via with a fresh branch on top for a send to ``target``."""
        listener = self._listener(target.transport)
        assert listener is not None
        via = f"SIP/2.0/{target.transport.upper()} {listener.hostport};rport;branch="
        request.headers.remove("Via")
        request.headers.prepend("Via", via + new_branch(self.ids))
        return target

    def send_ack(self, ack: Request, dialog: Dialog, fallback: Target | None) -> Target | None:
        """Send the ACK for a 2xx (§13.2.2.4): no transaction, a fresh branch.

        It goes to the dialog's next hop when that needs no DNS, else where the
        INVITE went.
        """
        target = fallback
        uri = dialog.next_hop()
        if isinstance(uri, SipUri):
            try:
                locator: Locator | None = Locator(uri, self.ids, transports=self.transports)
            except SipError:
                locator = None
            if locator is not None and locator.done and locator.targets():
                target = locator.targets()[0]
        if target is None:
            return None
        if self._listener(target.transport) is None:
            return None
        self._stamp_via(ack, target)
        self.layer.send_ack(ack, target)
        return target

    def forget(self, transaction: object) -> None:
        """A client transaction ended: drop its mapping."""
        self._by_transaction.pop(id(transaction), None)

    def _listener(self, transport: str) -> Listener | None:
        """The listener whose address goes in the Via for ``transport``.

        Connection-oriented transports work without a listener of their own:
        the response comes back on the connection (§18.2.2), so the sent-by of
        another listener will do.
        """
        listener = self.listeners.get(transport)
        if listener is None and transport in RELIABLE:
            listener = next(iter(self.listeners.values()), None)
        return listener

    def contact(self, user: str, transport: str) -> str:
        """Our Contact for ``transport``: ``<sip:user@host:port;transport=...>``.

        Without a listener for ``transport`` the Contact names one we have, so
        that requests inside the dialog reach us.
        """
        listener = self.listeners.get(transport) or next(iter(self.listeners.values()), None)
        if listener is None:
            return f"<sip:{user}@127.0.0.1>"
        transport = listener.transport
        scheme = "sips" if transport in ("tls", "wss") else "sip"
        param = "" if transport == "udp" else f";transport={transport}"
        return f"<{scheme}:{user}@{listener.hostport}{param}>"

    def _fail(self, creq: ClientRequest, status: int, reason: str, now: float) -> None:
        log.info("%s %s failed locally: %d %s", creq.method, creq.request.uri, status, reason)
        self._finish(creq, creq.request.reply(status, reason), now)

    def _finish(self, creq: ClientRequest, response: Response, now: float) -> None:
        creq.final = response
        keep = creq.method == "INVITE" and 200 <= response.status < 300  # 2xx retransmissions
        if creq.transaction is not None and not keep:
            self._by_transaction.pop(id(creq.transaction), None)
        creq.sink.on_final(creq, response, now)

    # -- responses -----------------------------------------------------------------------
    def owner(self, event: ResponseReceived) -> ClientRequest | None:
        """The ClientRequest a transaction's response belongs to."""
        if event.transaction is None:
            return None
        return self._by_transaction.get(id(event.transaction))

    def on_response(self, creq: ClientRequest, event: ResponseReceived, now: float) -> None:
        """A response for ``creq``'s transaction: retry, or pass it to the sink."""
        response = event.response
        status = response.status
        if status < 200:
            creq.provisional = response
            creq.sink.on_provisional(creq, response, now)
            return
        if creq.final is not None and status >= 300:
            return  # a late response after we gave up locally
        if status >= 300 and self._retry(creq, response, event.local, now):
            return
        if 200 <= status < 300 and creq.method == "INVITE" and creq.final is not None:
            creq.sink.on_final(creq, response, now)  # another 2xx (fork or retransmission)
            return
        self._finish(creq, response, now)

    def _retry(self, creq: ClientRequest, response: Response, local: bool, now: float) -> bool:
        status = response.status
        if creq.cancelled:
            return False
        if (status == 503 or (local and status == 408)) and creq.provisional is None:
            if creq.targets is not None and creq.target is not None:
                creq.targets.mark_failed(creq.target)
                if creq.targets.next() is not None:
                    log.info("%s to %s failed (%d); next target", creq.method, creq.target, status)
                    self._transmit(creq, now)
                    return True
            return False
        if status in (401, 407) and self.auth is not None:
            if creq.auth_attempts >= MAX_AUTH_ATTEMPTS:
                return False
            retried = self.auth.authorize(creq.request, response)
            if retried is None:
                return False
            creq.auth_attempts += 1
            seq = creq.dialog.next_seq() if creq.dialog is not None else creq.request.cseq.seq + 1
            retried.headers.set("CSeq", f"{seq} {creq.method}")
            creq.request = retried
            creq.provisional = None
            self._transmit(creq, now)
            return True
        if 300 <= status < 400 and creq.dialog is None:
            return self._redirect(creq, response, now)
        return False

    def _redirect(self, creq: ClientRequest, response: Response, now: float) -> bool:
        contacts = sorted(response.contact, key=lambda a: -(a.q if a.q is not None else 1.0))
        creq.tried.append(creq.request.uri)
        for contact in contacts:
            uri = contact.uri
            if uri not in creq.tried and uri not in creq.redirect_queue:
                creq.redirect_queue.append(uri)
        if not creq.redirect_queue or creq.redirects >= self.max_redirects:
            return False
        creq.redirects += 1
        uri = creq.redirect_queue.pop(0)
        request = creq.request
        request.uri = uri
        request.headers.set("CSeq", f"{request.cseq.seq + 1} {creq.method}")
        request.headers.remove("Authorization")
        request.headers.remove("Proxy-Authorization")
        creq.provisional = None
        creq.targets = None
        log.info("%s redirected (%d) to %s", creq.method, response.status, uri)
        self.send(creq, now)
        return True


def _hop(creq: ClientRequest) -> Uri:
    """Where ``creq`` goes next: the outbound proxy, the dialog's next hop or §8.1.2's."""
    if creq.next_hop is not None:
        return creq.next_hop
    return creq.dialog.next_hop() if creq.dialog is not None else _next_hop(creq.request)


def _next_hop(request: Request) -> Uri:
    """§8.1.2: the first Route if it is a loose router, else the Request-URI."""
    routes: list[Address] = request.route
    if routes:
        return routes[0].uri
    return request.uri
