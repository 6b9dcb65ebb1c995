"""Registration (RFC 3261 §10) on asyncio: the REGISTER part of ``UserAgent``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any

from sipwire.aio.timeouts import REQUEST_TIMEOUT, within
from sipwire.aio.transport_base import TransportError
from sipwire.core.events import RegistrationChanged
from sipwire.core.register import Registration, RegistrationState
from sipwire.core.ua import UserAgentCore
from sipwire.errors import RequestFailed
from sipwire.message import Address, Response

if TYPE_CHECKING:
    from sipwire.aio.endpoint import Endpoint

__all__ = ["RegistrationsMixin"]

log = logging.getLogger("sipwire.ua")


class RegistrationsMixin:
    """The REGISTER part of :class:`~sipwire.aio.ua.UserAgent`."""

    aor: Address
    endpoint: Endpoint | None
    _registrations: dict[int, tuple[Registration, asyncio.Future[Response]]]

    if TYPE_CHECKING:

        def _now(self) -> float: ...

        def _flush(self) -> None: ...

        def _core(self) -> UserAgentCore: ...

        def _spawn(self, coro: Awaitable[Any]) -> None: ...

    def _on_registration_changed(self, event: RegistrationChanged) -> None:
        entry = self._registrations.get(id(event.registration))
        if entry is not None and event.response is not None and not entry[1].done():
            entry[1].set_result(event.response)

    async def register(
        self,
        registrar: str | None = None,
        *,
        expires: int = 3600,
        contacts: Sequence[str] = (),
        keepalive: float | None = None,
        timeout: float | None = REQUEST_TIMEOUT,
    ) -> Registration:
        """Register our AOR at ``registrar`` (default: the AOR's domain) and keep it fresh.

        ``contacts`` binds these Contact values instead of our own (several
        are allowed). ``keepalive`` sends a CRLF keep-alive (RFC 5626 §4.4.1)
        to the registrar every so many seconds, keeping NAT bindings and
        connections open. Returns once the registrar answers 2xx; raises
        RequestFailed otherwise (408 after ``timeout``, and no refreshes then).
        """
        uri = registrar or f"sip:{self.aor.uri.host_port}"  # type: ignore[union-attr]
        core = self._core()
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        registration = core.register(
            uri, self._now(), expires=expires, contacts=list(contacts) or None
        )
        self._registrations[id(registration)] = (registration, future)
        self._flush()
        try:
            response = await within(future, timeout)
        except RequestFailed:
            registration.close()
            self._registrations.pop(id(registration), None)
            raise
        if registration.state is not RegistrationState.REGISTERED:
            raise RequestFailed(response.status, response.reason, response)
        if keepalive is not None:
            self._spawn(self._keepalive(registration, keepalive))
        return registration

    async def _keepalive(self, registration: Registration, interval: float) -> None:
        """CRLF keep-alives towards the registrar while the registration lasts."""
        while registration.state in (
            RegistrationState.REGISTERED,
            RegistrationState.REGISTERING,
        ):
            await asyncio.sleep(interval)
            creq = registration.request
            endpoint = self.endpoint
            if creq is None or creq.target is None or endpoint is None:
                continue
            try:
                await endpoint.transport.send(b"\r\n\r\n", creq.target)
            except TransportError as exc:
                log.info("keep-alive to %s failed: %s", creq.target, exc.reason)

    async def unregister(
        self, registration: Registration, *, timeout: float | None = REQUEST_TIMEOUT
    ) -> Response:
        """Remove the bindings of ``registration`` (Expires: 0); RequestFailed unless 2xx."""
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._registrations[id(registration)] = (registration, future)
        registration.unregister(self._now())
        self._flush()
        try:
            response = await within(future, timeout)
        finally:
            self._registrations.pop(id(registration), None)
        if not 200 <= response.status < 300:
            raise RequestFailed(response.status, response.reason, response)
        return response
