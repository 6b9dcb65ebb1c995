"""The REGISTER client (RFC 3261 §10.2): register, refresh, unregister.

One :class:`Registration` is one (AOR, registrar) pair with its own Call-ID
and rising CSeq (§10.2.4). It refreshes before the granted expiry, takes
``Min-Expires`` from a 423 and tries again (§10.2.8), and removes its
bindings with ``Expires: 0`` (§10.2.2). Authentication is the request
sender's: a 401/407 is answered once per challenge with the account's
(possibly different) auth username.
"""

from __future__ import annotations

import logging
from enum import Enum

from sipwire.core.client import ClientRequest
from sipwire.core.events import RegistrationChanged
from sipwire.core.host import SessionHost
from sipwire.message import Address, Request, Response, SipUri
from sipwire.timerheap import TimerHandle

__all__ = ["Registration", "RegistrationState"]

log = logging.getLogger("sipwire.register")

RETRY_AFTER_FAILURE = 30.0


class RegistrationState(Enum):
    """Where a registration is."""

    UNREGISTERED = "unregistered"
    REGISTERING = "registering"
    REGISTERED = "registered"
    UNREGISTERING = "unregistering"
    FAILED = "failed"


class Registration:
    """Bindings of our Contact(s) to an address of record at one registrar."""

    def __init__(
        self,
        host: SessionHost,
        registrar: SipUri,
        aor: Address,
        *,
        expires: int = 3600,
        contacts: list[str] | None = None,
    ) -> None:
        self.host = host
        self.registrar = registrar
        self.aor = Address(aor.uri, aor.display_name)
        self.expires = expires
        """The expiry we ask for (raised by a 423's Min-Expires)."""
        self.contacts = list(contacts or [])
        """Explicit Contact values; empty: our own Contact for the transport used."""
        self.call_id = host.ids.token()
        self.from_tag = host.ids.token()
        self.cseq = 0
        self.state = RegistrationState.UNREGISTERED
        self.granted: int | None = None
        """The expiry the registrar granted, in seconds."""
        self.bindings: list[Address] = []
        """Every Contact the registrar lists for the AOR in its last 2xx."""
        self.last_response: Response | None = None
        self.request: ClientRequest | None = None
        self._refresh: TimerHandle | None = None
        self._sent_contacts: list[str] = []

    def register(self, now: float) -> ClientRequest:
        """Send a REGISTER binding our contacts for ``expires`` seconds."""
        self.state = RegistrationState.REGISTERING
        return self._send(self.expires, now)

    def unregister(self, now: float) -> ClientRequest:
        """Remove our bindings (``Expires: 0``)."""
        self._cancel_refresh()
        self.state = RegistrationState.UNREGISTERING
        return self._send(0, now)

    def _send(self, expires: int, now: float) -> ClientRequest:
        self.cseq += 1
        config = self.host.config
        headers: list[tuple[str, str]] = [
            ("Max-Forwards", "70"),
            ("From", str(self.aor.with_tag(self.from_tag))),
            ("To", str(self.aor)),
            ("Call-ID", self.call_id),
            ("CSeq", f"{self.cseq} REGISTER"),
        ]
        if config.outbound_proxy is not None:
            headers.append(("Route", str(config.outbound_proxy)))
        contacts = self.contacts or self._sent_contacts
        headers += [("Contact", c) for c in contacts]
        headers += [
            ("Expires", str(expires)),
            ("Allow", ", ".join(config.allow)),
            ("Supported", ", ".join(config.supported)),
            ("User-Agent", config.user_agent),
        ]
        request = Request("REGISTER", self.registrar, headers)
        creq = ClientRequest(request, self, contact_user=None if contacts else config.contact_user)
        self.request = creq
        if self.host.sender.auth is not None:
            self.host.sender.auth.apply(request)
        self.host.sender.send(creq, now)
        if not contacts:
            self._sent_contacts = request.headers.get_all("Contact")
        return creq

    # -- responses ---------------------------------------------------------------------------
    def on_provisional(self, creq: ClientRequest, response: Response, now: float) -> None:
        """A 1xx to our REGISTER: nothing to do."""
        pass

    def on_final(self, creq: ClientRequest, response: Response, now: float) -> None:
        """The final response to our REGISTER: bindings, refresh, 423, failure."""
        if creq.final is not None and creq.final is not response:
            return
        self.cseq = max(self.cseq, creq.request.cseq.seq)
        self.last_response = response
        status = response.status
        if status == 423 and response.min_expires and self.state is RegistrationState.REGISTERING:
            self.expires = max(self.expires, response.min_expires)
            log.info("registrar asks for at least %d s; registering again", self.expires)
            self.register(now)
            return
        if 200 <= status < 300:
            self.bindings = response.contact
            if self.state is RegistrationState.UNREGISTERING:
                self.state = RegistrationState.UNREGISTERED
                self.granted = 0
            else:
                self.state = RegistrationState.REGISTERED
                self.granted = self._granted(response)
                self._schedule_refresh(now, self.granted)
        else:
            was_registered = self.state is RegistrationState.REGISTERING and self.granted
            self.state = RegistrationState.FAILED
            log.info("REGISTER to %s failed: %d %s", self.registrar, status, response.reason)
            if was_registered:
                self._schedule(now + RETRY_AFTER_FAILURE)
        self.host.emit(RegistrationChanged(self, response))

    def _granted(self, response: Response) -> int:
        """§10.2.4: our Contact's expires parameter, else Expires, else what we asked."""
        ours = self.contacts or self._sent_contacts
        our_uris = []
        for text in ours:
            try:
                our_uris.append(Address.parse(text).uri)
            except Exception:
                continue
        for binding in response.contact:
            if binding.uri in our_uris and binding.expires is not None:
                return binding.expires
        if response.expires is not None:
            return response.expires
        return self.expires

    def _schedule_refresh(self, now: float, granted: int) -> None:
        if granted <= 0:
            return
        # Refresh a little before expiry: half-way for short grants, 30 s early otherwise.
        wait = max(granted / 2, granted - 30.0)
        self._schedule(now + wait)

    def _schedule(self, deadline: float) -> None:
        self._cancel_refresh()
        self._refresh = self.host.timers.schedule(deadline, self._on_refresh)

    def _on_refresh(self, now: float) -> None:
        if self.state in (RegistrationState.REGISTERED, RegistrationState.FAILED):
            self.register(now)

    def _cancel_refresh(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
            self._refresh = None

    def close(self) -> None:
        """Stop refreshing (without unregistering)."""
        self._cancel_refresh()
