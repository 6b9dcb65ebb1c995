"""``sipwire register | call | message | options``: the user agent from the shell.

Each command runs one :class:`~sipwire.UserAgent` for as long as it needs,
prints one line of result on standard output, and exits 0 on success or 1
with a one-line reason on standard error. ``--trace`` prints every SIP
message sent and received on standard error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from sipwire.aio.listen import local_address_for
from sipwire.aio.ua import UserAgent
from sipwire.errors import RequestFailed, SipError
from sipwire.message import Address, SipUri, parse_uri

__all__ = ["call", "message", "options", "register"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Common:
    """Options every client command takes."""

    aor: str | None
    user: str | None
    password: str | None
    listen: tuple[str, ...]
    transport: str
    proxy: str | None
    trace: bool
    timeout: float


def _options(func: Callable[..., Any]) -> Callable[..., Any]:
    decorators = [
        click.option("--from", "from_aor", metavar="AOR", help="Our address of record (From)."),
        click.option("--user", help="Auth username (default: the AOR's user)."),
        click.option("--password", help="Password for digest authentication."),
        click.option(
            "--listen",
            multiple=True,
            metavar="TRANSPORT:HOST:PORT",
            help="Local address, repeatable (default: the address that reaches the target).",
        ),
        click.option(
            "--transport",
            type=click.Choice(["udp", "tcp", "tls"]),
            default="udp",
            show_default=True,
            help="Transport of the default listener.",
        ),
        click.option("--proxy", metavar="URI", help="Outbound proxy for every request."),
        click.option("--trace", is_flag=True, help="Print every SIP message on stderr."),
        click.option(
            "--timeout", type=float, default=32.0, show_default=True, help="Seconds to wait."
        ),
        click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug)."),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def _common(kwargs: dict[str, Any]) -> Common:
    verbose = kwargs.pop("verbose")
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return Common(
        aor=kwargs.pop("from_aor"),
        user=kwargs.pop("user"),
        password=kwargs.pop("password"),
        listen=kwargs.pop("listen"),
        transport=kwargs.pop("transport"),
        proxy=kwargs.pop("proxy"),
        trace=kwargs.pop("trace"),
        timeout=kwargs.pop("timeout"),
    )


def _host_of(uri_text: str) -> str:
    try:
        uri = parse_uri(uri_text)
    except SipError:
        return "127.0.0.1"
    if isinstance(uri, SipUri):
        host = uri.maddr or uri.host
        try:
            socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host.strip("[]"))
            return host
        except OSError:
            return "127.0.0.1"
    return "127.0.0.1"


def _trace(direction: str, data: bytes, peer: object) -> None:
    arrow = "<<<" if direction == "recv" else ">>>"
    text = data.decode("utf-8", "replace")
    sys.stderr.write(f"{arrow} {direction} {peer}\n{text}\n")


def _user_agent(common: Common, toward: str) -> UserAgent:
    host = local_address_for(_host_of(common.proxy or toward))
    shown = f"[{host}]" if ":" in host else host
    listen = common.listen or (f"{common.transport}:{shown}:0",)
    aor = common.aor or f"sip:sipwire@{shown}"
    if not aor.startswith(("sip:", "sips:", "<", '"')):
        aor = f"sip:{aor}"
    return UserAgent(
        aor,
        username=common.user,
        password=common.password,
        listen=listen,
        outbound_proxy=common.proxy,
        trace=_trace if common.trace else None,
    )


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except RequestFailed as exc:
        raise click.ClickException(f"{exc.status} {exc.reason}") from None
    except (SipError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None


def _target(text: str) -> str:
    """Accept ``bob@host`` and ``host`` as well as full URIs."""
    if text.startswith(("sip:", "sips:", "tel:")):
        return text
    return f"sip:{text}"


@click.command()
@click.argument("aor")
@click.option("--registrar", metavar="URI", help="Registrar URI (default: the AOR's domain).")
@click.option("--expires", type=int, default=3600, show_default=True)
@click.option("--unregister", is_flag=True, help="Remove the binding instead.")
@_options
def register(
    aor: str, registrar: str | None, expires: int, unregister: bool, **kwargs: Any
) -> None:
    """Register AOR at a registrar (digest authentication with --user/--password)."""
    common = _common(kwargs)
    aor = _target(aor)
    common = _with_aor(common, aor)
    address = Address.parse(aor)
    registrar_uri = _target(registrar) if registrar else f"sip:{address.uri.host_port}"  # type: ignore[union-attr]

    async def run() -> str:
        async with _user_agent(common, registrar_uri) as ua:
            started = time.monotonic()
            registration = await asyncio.wait_for(
                ua.register(registrar_uri, expires=expires), common.timeout
            )
            if unregister:
                await asyncio.wait_for(ua.unregister(registration), common.timeout)
                return f"unregistered {aor} at {registrar_uri}"
            registration.close()
            elapsed = (time.monotonic() - started) * 1000
            bindings = ", ".join(str(b.uri) for b in registration.bindings) or "-"
            return (
                f"registered {aor} at {registrar_uri} for {registration.granted} s "
                f"in {elapsed:.1f} ms (bindings: {bindings})"
            )

    click.echo(_run(_timed(run(), common.timeout)))


def _with_aor(common: Common, aor: str) -> Common:
    return Common(
        aor=aor,
        user=common.user,
        password=common.password,
        listen=common.listen,
        transport=common.transport,
        proxy=common.proxy,
        trace=common.trace,
        timeout=common.timeout,
    )


async def _timed(coro: Coroutine[Any, Any, T], timeout: float) -> T:
    try:
        return await asyncio.wait_for(coro, timeout + 5)
    except TimeoutError:
        raise click.ClickException(f"no answer within {timeout} s") from None


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise click.BadParameter(f"expected NAME: VALUE, got {text!r}")
    return name.strip(), value.strip()


@click.command()
@click.argument("target")
@click.option("--duration", type=float, default=0.0, show_default=True, help="Seconds to talk.")
@click.option("--header", "headers", multiple=True, metavar="'NAME: VALUE'", help="Extra header.")
@click.option("--dtmf", metavar="DIGITS", help="Send these digits (INFO) once answered.")
@_options
def call(
    target: str, duration: float, headers: tuple[str, ...], dtmf: str | None, **kwargs: Any
) -> None:
    """Call TARGET, stay DURATION seconds, hang up."""
    common = _common(kwargs)
    target = _target(target)
    extra = [_header(h) for h in headers]

    async def run() -> str:
        async with _user_agent(common, target) as ua:
            started = time.monotonic()
            placed = await ua.call(target, timeout=common.timeout, headers=extra)
            if dtmf:
                await placed.send_dtmf(dtmf)
            answered = (time.monotonic() - started) * 1000
            ended_by_peer = False
            with contextlib.suppress(TimeoutError):
                await placed.wait_ended(duration)
                ended_by_peer = True
            if not ended_by_peer:
                await placed.hangup()
                with contextlib.suppress(TimeoutError):
                    await placed.wait_ended(common.timeout)
            who = "the peer" if ended_by_peer else "us"
            return f"call to {target} answered in {answered:.1f} ms; ended by {who}"

    click.echo(_run(_timed(run(), common.timeout + duration)))


@click.command()
@click.argument("target")
@click.argument("text")
@click.option("--content-type", default="text/plain;charset=UTF-8", show_default=True)
@_options
def message(target: str, text: str, content_type: str, **kwargs: Any) -> None:
    """Send TEXT to TARGET as a SIP MESSAGE (RFC 3428)."""
    common = _common(kwargs)
    target = _target(target)

    async def run() -> str:
        async with _user_agent(common, target) as ua:
            response = await asyncio.wait_for(
                ua.message(target, text, content_type=content_type), common.timeout
            )
            return f"{response.status} {response.reason}"

    click.echo(_run(_timed(run(), common.timeout)))


@click.command()
@click.argument("target")
@_options
def options(target: str, **kwargs: Any) -> None:
    """Ping TARGET with OPTIONS; print the status and the round-trip time."""
    common = _common(kwargs)
    target = _target(target)

    async def run() -> str:
        async with _user_agent(common, target) as ua:
            started = time.monotonic()
            response = await asyncio.wait_for(ua.options(target), common.timeout)
            rtt = (time.monotonic() - started) * 1000
            if not 200 <= response.status < 300:
                raise RequestFailed(response.status, response.reason, response)
            agent = response.server or response.user_agent or "-"
            allow = ", ".join(response.allow) or "-"
            return (
                f"{response.status} {response.reason} from {target} in {rtt:.2f} ms "
                f"(server: {agent}; allow: {allow})"
            )

    click.echo(_run(_timed(run(), common.timeout)))
