"""The transaction user of ``sipwire serve``: one for the whole server, roles by request.

The :class:`~sipwire.aio.endpoint.Endpoint` hands every transaction-layer
event to :meth:`ServerCore.handle`. A new request goes to the first role
that claims it:

========================================  ============================================
request                                   answered by
========================================  ============================================
a method in ``roles`` (REGISTER)          that role (``registrar.py``), which checks
                                          it as a registrar (§10.3) and answers it
                                          when the store has
ACK (no transaction: for a 2xx)           absorbed: this server sends no 2xx to INVITE
CANCEL                                    200 when its INVITE's transaction is here
                                          (answered already, §9.2), else 481
OPTIONS without a user part in the        200 with Allow, Accept, Supported and Server
Request-URI (the server itself, §11.2)    (checked as a UAS first, §8.2)
a request with a To tag                   481: no dialog lives here (§12.2.2)
anything else                             501 Not Implemented, with Allow (checked as
                                          a proxy first: 483, 420, 416, 400)
========================================  ============================================

With the proxy (``proxy.py``, the default), the proxy takes every request
the registrar does not: ACKs, CANCELs, OPTIONS for users or with a Route,
requests with a To tag and all other methods (it validates them as §16.3
says, and answers or forwards them); and every response and transaction
event, since the client transactions are its own. The server's OPTIONS
then lists the proxy's methods in Allow. Without it (``--no-proxy``), the
table above is the whole story.

Roles answer through :meth:`ServerCore.respond`, which counts the response
and sends it through the transaction with our Server header (added by the
layer to every response; with the proxy, which forwards responses that are
not ours, by ``respond`` alone); a role that answers later (after awaiting
the store) calls ``pump`` after it.

Every final response carries a To tag (§8.2.6.2), derived from the request
(``derived_to_tag``: its Call-ID, From tag and branch), so no random source
is needed and a retransmitted request is answered with the same tag.

Cheap on purpose: one dict look-up per request to find its role, the
validation its role needs, and no allocation beyond the response.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Final, Protocol

from sipwire.errors import ParseError
from sipwire.message import Request, Response, SipUri
from sipwire.message.validate import Policy, Role, check_request
from sipwire.registrar.model import Binding
from sipwire.registrar.rules import derived_to_tag
from sipwire.server.metrics import Metrics
from sipwire.transaction.events import (
    Event,
    RequestReceived,
    TransactionTimedOut,
)
from sipwire.transaction.layer import TransactionLayer
from sipwire.transaction.server import ServerTransaction

__all__ = ["ALLOW", "ProxyHandler", "RequestRole", "ServerCore"]

log = logging.getLogger("sipwire.server")

ALLOW: Final = ("REGISTER", "OPTIONS", "ACK", "CANCEL")
"""Methods this server implements today (the Allow header)."""
NOT_IMPLEMENTED: Final = "Not Implemented - this server is a registrar only"


class RequestRole(Protocol):
    """A role of the server: takes a new request and its server transaction, and
    answers it through ``ServerCore.respond`` (now or later)."""

    def __call__(self, request: Request, tx: ServerTransaction, now: float) -> None: ...


class ProxyHandler(Protocol):
    """The proxy role as the core sees it: a transaction user of its own."""

    @property
    def allow(self) -> tuple[str, ...]: ...

    def handle(self, event: Event, now: float) -> None: ...

    def next_timer(self) -> float | None: ...

    def handle_timer(self, now: float) -> None: ...

    def bindings_changed(
        self, aor: str, bindings: Sequence[Binding] | None, wall: float
    ) -> None: ...


class ServerCore:
    """The one transaction user of the server (see the module docstring)."""

    def __init__(
        self,
        layer: TransactionLayer,
        *,
        user_agent: str = "sipwire",
        extensions: frozenset[str] = frozenset({"path", "outbound"}),
        metrics: Metrics | None = None,
        roles: Mapping[str, RequestRole] | None = None,
    ) -> None:
        self.layer = layer
        self.metrics = metrics or Metrics()
        self.user_agent = user_agent
        self.extensions = extensions
        # Our Server header (§20.35) on every response the layer sends, through a
        # transaction or statelessly (admission's 503s, the 400s of broken requests).
        layer.response_headers = (("server", "Server", user_agent),)
        self.roles: dict[str, RequestRole] = dict(roles or {})
        """Method → the role that answers it (REGISTER → the registrar)."""
        self.pump: Callable[[], None] = lambda: None
        """Sends what a late answer queued (``Endpoint.pump``; set by the server)."""
        self.now: Callable[[], float] = lambda: 0.0
        """The clock of the transaction layer (``Endpoint.now``; set by the server)."""
        self.proxy: ProxyHandler | None = None
        """The proxy role, if any (see the module docstring): ``use_proxy``."""
        self._allow = ", ".join(ALLOW)
        self._options_policy = Policy(
            role=Role.UAS,
            methods=frozenset(ALLOW),
            extensions=extensions,
            accept=(),
        )
        self._proxy_policy = Policy(role=Role.PROXY, extensions=extensions)

    def use_proxy(self, proxy: ProxyHandler) -> None:
        """Hand what the registrar does not take to ``proxy`` (see the module docstring)."""
        self.proxy = proxy
        # A proxy adds no Server header to the responses it forwards (nor to those of
        # its own it sends through its transactions): only the server's answers get it.
        self.layer.response_headers = ()
        allow = list(ALLOW)
        allow += [method for method in proxy.allow if method not in allow]
        self._allow = ", ".join(allow)
        self._options_policy = replace(self._options_policy, methods=frozenset(allow))

    # -- the transaction user protocol ---------------------------------------------------
    def handle(self, event: Event, now: float) -> None:
        """One event of the transaction layer."""
        if type(event) is RequestReceived:
            request = event.request
            self.metrics.request(request.method)
            tx = event.transaction
            if tx is None:
                # An ACK for a 2xx: the proxy routes it end to end; else there is no 2xx
                # of ours it could acknowledge.
                if self.proxy is not None:
                    self.proxy.handle(event, now)
                return
            assert isinstance(tx, ServerTransaction)
            try:
                self._dispatch(event, request, tx, now)
            except ParseError as exc:
                # A header that only broke when a role read it: 400, never an escape.
                if not tx.final_sent:
                    reason = f"Bad Request - {exc.reason}"[:150]
                    with contextlib.suppress(ParseError):  # the tag's headers broke too
                        self.respond(tx, self.reply(request, 400, reason), now)
        elif self.proxy is not None:
            self.proxy.handle(event, now)  # its client transactions, its server ones ending
        elif type(event) is TransactionTimedOut:
            log.debug("transaction gave up: %s (%s)", event.transaction, event.reason)

    def next_timer(self) -> float | None:
        return None if self.proxy is None else self.proxy.next_timer()

    def handle_timer(self, now: float) -> None:
        if self.proxy is not None:
            self.proxy.handle_timer(now)

    def bindings_changed(self, aor: str, bindings: Sequence[Binding] | None, wall: float) -> None:
        """A role changed ``aor``'s bindings in the store (None: a change whose outcome
        is unknown): the proxy's location cache follows."""
        if self.proxy is not None:
            self.proxy.bindings_changed(aor, bindings, wall)

    # -- answering -----------------------------------------------------------------------
    def respond(self, tx: ServerTransaction, response: Response, now: float | None = None) -> bool:
        """Send ``response`` through ``tx``, counted. False when the transaction is
        gone (its connection failed, §17.2.4).

        A final response must carry a To tag (§8.2.6.2): build it with
        :meth:`reply` or ``to_tag=derived_to_tag(request)``."""
        status = response.status
        if status >= 200:
            self.metrics.response(tx.method, status)
        if self.proxy is not None:
            response.headers.add("Server", self.user_agent)
        return self.layer.respond(tx, response, self.now() if now is None else now)

    def reply(
        self,
        request: Request,
        status: int,
        reason: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> Response:
        """A response to ``request`` with the To tag derived from it."""
        return request.reply(status, reason, headers, to_tag=derived_to_tag(request))

    # -- dispatch ------------------------------------------------------------------------
    def _dispatch(
        self, event: RequestReceived, request: Request, tx: ServerTransaction, now: float
    ) -> None:
        method = request.method
        role = self.roles.get(method)
        if role is not None:
            role(request, tx, now)
            return
        if self.proxy is not None:
            if method == "OPTIONS" and _for_server(request) and not request.route:
                self._options(request, tx, now)
            else:
                self.proxy.handle(event, now)
            return
        if method == "CANCEL":
            # §9.2: "If the UAS did not find a matching transaction for the CANCEL
            # according to the procedure above, it SHOULD respond to the CANCEL with a
            # 481". A matching INVITE was answered at once (501): the CANCEL is moot.
            status = 200 if self.layer.find_invite(request) is not None else 481
            self.respond(tx, self.reply(request, status), now)
            return
        if method == "OPTIONS" and _for_server(request):
            self._options(request, tx, now)
            return
        rejection = check_request(request, self._proxy_policy)
        if rejection is not None:
            self.respond(tx, rejection.response(request, to_tag=derived_to_tag(request)), now)
            return
        if request.to.tag is not None:
            # §12.2.2: no dialog (nor proxy to forward it) lives here.
            self.respond(tx, request.reply(481), now)
            return
        self.respond(tx, self.reply(request, 501, NOT_IMPLEMENTED, [("Allow", self._allow)]), now)

    def _options(self, request: Request, tx: ServerTransaction, now: float) -> None:
        """§11.2: the capabilities of the server itself."""
        rejection = check_request(request, self._options_policy)
        if rejection is not None:
            self.respond(tx, rejection.response(request, to_tag=derived_to_tag(request)), now)
            return
        headers = [
            ("Allow", self._allow),
            ("Accept", "application/sdp"),
            ("Supported", ", ".join(sorted(self.extensions))),
        ]
        self.respond(tx, self.reply(request, 200, headers=headers), now)


def _for_server(request: Request) -> bool:
    """True for a request addressed to the server rather than to a user: a SIP
    Request-URI without a user part (``OPTIONS sip:registrar.example.com``)."""
    uri = request.uri
    return isinstance(uri, SipUri) and uri.user is None
