"""``sipwire register | call | message | options``: the user agent from the shell.

Each command runs one :class:`~sipwire.UserAgent` for as long as it needs,
prints one line of result on standard output and exits 0, or prints one
line ``Error: ...`` on standard error and exits with the codes of
:mod:`sipwire.cli.common` (1 failed, 2 wrong command line, 130 Ctrl-C).
Arguments are checked before any network traffic. ``--trace`` prints every
SIP message sent and received on standard error.

``--transport tcp`` (or ``udp``, ``tls``) means "send the request over
that transport": ``;transport=`` is added to the target URI, or to the
outbound proxy with ``--proxy``, unless it names one already. TLS verifies
the server's certificate against the system's CAs, ``--ca-file``'s, or not
at all with ``--insecure``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import click

from sipwire.aio.call import Call
from sipwire.aio.listen import ListenSpec, local_address_for
from sipwire.aio.transport_base import TransportConfig
from sipwire.aio.ua import UserAgent
from sipwire.cli.common import (
    CommandFailed,
    TransportFailures,
    listen_failure,
    print_trace,
    run_async,
    setup_logging,
)
from sipwire.cli.media import RecordNames, check_record, load_prompt, media_line
from sipwire.cli.params import (
    MAX_EXPIRES,
    ListenType,
    check_address,
    check_aor,
    check_content_type,
    check_dtmf,
    check_headers,
    check_proxy,
    check_target,
    with_transport,
)
from sipwire.cli.tls import INSECURE_WARNING, client_context
from sipwire.errors import RequestFailed, SipError
from sipwire.media.frame import Frame
from sipwire.message import Address, SipUri, parse_uri

__all__ = ["call", "message", "options", "register"]

T = TypeVar("T")

HANGUP_GRACE = 5.0
"""Seconds Ctrl-C waits for the CANCEL or BYE to complete."""


@dataclass(frozen=True, slots=True)
class Common:
    """Options every client command takes."""

    aor: str | None
    user: str | None
    password: str | None
    listen: tuple[ListenSpec, ...]
    transport: str | None
    proxy: str | None
    trace: bool
    timeout: float
    tls: ssl.SSLContext | None

    def route(self, uri: str) -> str:
        """``uri`` as the request goes: with ``;transport=`` unless a proxy takes it there."""
        return uri if self.proxy is not None else with_transport(uri, self.transport)


def _check_listen(
    ctx: click.Context, param: click.Parameter, value: tuple[ListenSpec, ...]
) -> tuple[ListenSpec, ...]:
    for spec in value:
        if spec.transport in ("tls", "wss"):
            raise click.BadParameter(
                f"{spec}: a client has no certificate to listen with; "
                "send over TLS with --transport tls"
            )
    return value


def _options(*, from_hidden: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    decorators = [
        click.option(
            "--from",
            "from_aor",
            metavar="AOR",
            callback=check_address,
            hidden=from_hidden,
            help="Our address of record, the From (default: sip:sipwire@<local address>).",
        ),
        click.option("--user", help="Auth username for digest (default: the AOR's user)."),
        click.option("--password", help="Password for digest authentication (401/407)."),
        click.option(
            "--listen",
            multiple=True,
            type=ListenType(),
            callback=_check_listen,
            help="Local address, repeatable: udp|tcp|ws:HOST:PORT, port 0 for any "
            "(default: the address that reaches the target, any port, on --transport).",
        ),
        click.option(
            "--transport",
            type=click.Choice(["udp", "tcp", "tls"]),
            help="Send the request over this transport: adds ;transport= to the target "
            "(or to --proxy) unless it has one [default: RFC 3263's choice, UDP for sip:].",
        ),
        click.option(
            "--proxy", metavar="URI", callback=check_proxy, help="Outbound proxy for every request."
        ),
        click.option(
            "--ca-file",
            type=click.Path(exists=True, dir_okay=False),
            help="Verify TLS servers against the CA certificates in this PEM file "
            "(default: the system's CAs).",
        ),
        click.option(
            "--insecure",
            is_flag=True,
            help="Do not verify TLS certificates (self-signed test servers only).",
        ),
        click.option("--trace", is_flag=True, help="Print every SIP message on stderr."),
        click.option(
            "--timeout",
            type=click.FloatRange(min=0, min_open=True),
            default=32.0,
            show_default=True,
            help="Seconds to wait for the final response (then 408).",
        ),
        click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug)."),
    ]

    def apply(func: Callable[..., Any]) -> Callable[..., Any]:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply


def _common(kwargs: dict[str, Any]) -> Common:
    setup_logging(kwargs.pop("verbose"))
    transport: str | None = kwargs.pop("transport")
    proxy: str | None = kwargs.pop("proxy")
    insecure: bool = kwargs.pop("insecure")
    tls = client_context(kwargs.pop("ca_file"), insecure)
    if insecure:
        click.echo(INSECURE_WARNING, err=True)
    return Common(
        aor=kwargs.pop("from_aor"),
        user=kwargs.pop("user"),
        password=kwargs.pop("password"),
        listen=kwargs.pop("listen"),
        transport=transport,
        proxy=with_transport(proxy, transport) if proxy is not None else None,
        trace=kwargs.pop("trace"),
        timeout=kwargs.pop("timeout"),
        tls=tls,
    )


def _host_of(uri_text: str) -> str:
    try:
        uri = Address.parse(uri_text).uri if uri_text.startswith("<") else parse_uri(uri_text)
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


def _user_agent(common: Common, toward: str, *, media: bool = False) -> UserAgent:
    host = local_address_for(_host_of(common.proxy or toward))
    shown = f"[{host}]" if ":" in host else host
    # A client sends TLS without a certificate of its own: it listens on TCP.
    kind = "tcp" if common.transport == "tls" else (common.transport or "udp")
    listen = [str(spec) for spec in common.listen] or [f"{kind}:{shown}:0"]
    aor = common.aor or f"sip:sipwire@{shown}"
    config = TransportConfig(tls_client_context=common.tls) if common.tls is not None else None
    return UserAgent(
        aor,
        username=common.user,
        password=common.password,
        listen=listen,
        outbound_proxy=common.proxy,
        transport=config,
        trace=print_trace if common.trace else None,
        rtp=media,
    )


def _timed_out(timeout: float) -> RequestFailed:
    return RequestFailed(408, f"Request Timeout (no final response in {timeout:g} s)")


async def _within(awaitable: Awaitable[T], timeout: float) -> T:
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except TimeoutError:
        raise _timed_out(timeout) from None


def _is_timeout(exc: RequestFailed) -> bool:
    """A wait ran out with no final response (no response object): 408 from the API's
    timeout rule, or 487 "Request Terminated (timeout)" from ``UserAgent.call``
    before that rule (it CANCELled first); both are shown as 408."""
    if exc.response is not None:
        return False
    return exc.status == 408 or (exc.status == 487 and "timeout" in exc.reason.lower())


def _describe(exc: RequestFailed, failures: TransportFailures, timeout: float) -> str:
    if _is_timeout(exc):
        return str(exc) if exc.status == 408 else str(_timed_out(timeout))
    if exc.status == 503:
        detail = failures.explain()
        if detail is not None and detail.startswith("TLS certificate"):
            return detail
        if detail is not None:
            return f"{exc} ({detail})"
    return str(exc)


def _run(coro: Coroutine[Any, Any, str], common: Common) -> str:
    failures = TransportFailures.install()
    try:
        return run_async(coro)
    except RequestFailed as exc:
        raise CommandFailed(_describe(exc, failures, common.timeout)) from None
    except SipError as exc:
        raise CommandFailed(listen_failure(exc) or exc.reason) from None
    except (ValueError, OSError) as exc:
        raise CommandFailed(str(exc) or type(exc).__name__) from None


async def _end_calls(ua: UserAgent, grace: float) -> None:
    """Ctrl-C: CANCEL the calls that ring, BYE the ones that are up, wait for the end."""
    for placed in ua.calls:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(placed.hangup(), grace)
        with contextlib.suppress(TimeoutError):
            await placed.wait_ended(grace)


@click.command()
@click.argument("aor", required=False, callback=check_aor)
@click.option(
    "--registrar",
    metavar="URI",
    callback=check_target,
    help="Registrar URI (default: the AOR's domain).",
)
@click.option(
    "--expires",
    type=click.IntRange(1, MAX_EXPIRES),
    default=3600,
    show_default=True,
    help="Seconds the binding should last; the registrar may grant less (--unregister removes it).",
)
@click.option("--unregister", is_flag=True, help="Remove the binding instead.")
@_options(from_hidden=True)
def register(
    aor: str | None, registrar: str | None, expires: int, unregister: bool, **kwargs: Any
) -> None:
    """Register AOR (sip:user@domain) at a registrar; digest auth with --user/--password."""
    from_aor: str | None = kwargs["from_aor"]
    if from_aor is not None:  # --from AOR: the deprecated spelling of the argument
        if aor is not None and aor != from_aor:
            raise click.UsageError("give the AOR once (--from is a deprecated alias of AOR)")
        aor = from_aor
        click.echo("Warning: register --from is deprecated; give the AOR as the argument", err=True)
    if aor is None:
        raise click.UsageError("Missing argument 'AOR'.")
    common = replace(_common(kwargs), aor=aor)
    address = Address.parse(aor)
    registrar_uri = registrar or f"sip:{address.uri.host_port}"  # type: ignore[union-attr]
    next_hop = common.route(registrar_uri)

    async def run() -> str:
        async with _user_agent(common, next_hop) as ua:
            started = time.monotonic()
            registration = await _within(ua.register(next_hop, expires=expires), common.timeout)
            if unregister:
                await _within(ua.unregister(registration), common.timeout)
                return f"unregistered {aor} at {next_hop}"
            registration.close()
            elapsed = (time.monotonic() - started) * 1000
            bindings = ", ".join(str(b.uri) for b in registration.bindings) or "-"
            return (
                f"registered {aor} at {next_hop} for {registration.granted} s "
                f"in {elapsed:.1f} ms (bindings: {bindings})"
            )

    click.echo(_run(run(), common))


@click.command()
@click.argument("target", callback=check_target)
@click.option(
    "--duration",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Seconds to talk once answered, then BYE.",
)
@click.option(
    "--header",
    "headers",
    multiple=True,
    metavar="'NAME: VALUE'",
    callback=check_headers,
    help="Extra header on the INVITE, repeatable.",
)
@click.option(
    "--dtmf",
    metavar="DIGITS",
    callback=check_dtmf,
    help="Send these digits (0-9 * # A-D) once answered: RFC 4733 when the call carries "
    "audio and telephone-event was agreed, else INFO.",
)
@click.option(
    "--dtmf-method",
    type=click.Choice(["auto", "rfc4733", "info"]),
    default="auto",
    show_default=True,
    help="How --dtmf goes.",
)
@click.option(
    "--play",
    type=click.Path(exists=True, dir_okay=False),
    help="Play this WAV file (any rate and channels) once answered; with no --duration "
    "the call ends when it was played.",
)
@click.option(
    "--record", metavar="FILE", callback=check_record, help="Record the call to this WAV file."
)
@click.option(
    "--media",
    is_flag=True,
    help="Carry audio (RTP) without --play/--record: DTMF lines, statistics.",
)
@_options()
def call(
    target: str,
    duration: float,
    headers: list[tuple[str, str]],
    dtmf: str | None,
    dtmf_method: str,
    play: str | None,
    record: str | None,
    media: bool,
    **kwargs: Any,
) -> None:
    """Call TARGET, stay DURATION seconds, hang up (Ctrl-C: CANCEL or BYE, exit 130).

    With audio (--play, --record, --media), each DTMF digit received is a line
    ``DTMF <digit>``, and the end of the call a line of media statistics.
    """
    common = _common(kwargs)
    uri = common.route(target)
    with_media = media or play is not None or record is not None
    prompt = load_prompt(play) if play is not None else None

    async def print_digits(placed: Call) -> None:
        async for digit in placed.dtmf():
            click.echo(f"DTMF {digit}")

    async def talk(ua: UserAgent) -> str:
        started = time.monotonic()
        placed = await ua.call(uri, timeout=common.timeout, headers=headers)
        answered = (time.monotonic() - started) * 1000
        printer = None
        if placed.media is not None:
            printer = asyncio.ensure_future(print_digits(placed))
            if record is not None:
                placed.record(RecordNames(record).next(placed.call_id))
        if dtmf:
            await placed.send_dtmf(dtmf, method=dtmf_method)
        ended_by_peer = False
        with contextlib.suppress(TimeoutError):
            if prompt is not None and placed.media is not None and duration == 0:
                playing = asyncio.ensure_future(placed.play(Frame(prompt, 8000)))
                ending = asyncio.ensure_future(placed.wait_ended())
                await asyncio.wait([playing, ending], return_when=asyncio.FIRST_COMPLETED)
                playing.cancel()
                ending.cancel()
                ended_by_peer = placed.ended
                if not ended_by_peer:
                    await asyncio.sleep(0.1)  # the last packets leave
            else:
                if prompt is not None and placed.media is not None:
                    placed.media.stream.source.play(prompt)
                await placed.wait_ended(duration)
                ended_by_peer = True
        if not ended_by_peer:
            await placed.hangup()
            with contextlib.suppress(TimeoutError):
                await placed.wait_ended(common.timeout)
        if printer is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(printer, 1.0)
        stats = placed.media_stats()
        if stats is not None and stats.codec is not None:
            click.echo(media_line(stats, placed.call_id))
        who = "the peer" if ended_by_peer else "us"
        return f"call to {target} answered in {answered:.1f} ms; ended by {who}"

    async def run() -> str:
        async with _user_agent(common, uri, media=with_media) as ua:
            try:
                return await talk(ua)
            except asyncio.CancelledError:
                await _end_calls(ua, min(common.timeout, HANGUP_GRACE))
                raise

    click.echo(_run(run(), common))


@click.command()
@click.argument("target", callback=check_target)
@click.argument("text")
@click.option(
    "--content-type",
    default="text/plain;charset=UTF-8",
    show_default=True,
    callback=check_content_type,
    help="Content-Type of TEXT.",
)
@_options()
def message(target: str, text: str, content_type: str, **kwargs: Any) -> None:
    """Send TEXT to TARGET as a SIP MESSAGE (RFC 3428)."""
    common = _common(kwargs)
    uri = common.route(target)

    async def run() -> str:
        async with _user_agent(common, uri) as ua:
            response = await _within(
                ua.message(uri, text, content_type=content_type), common.timeout
            )
            return f"{response.status} {response.reason}"

    click.echo(_run(run(), common))


@click.command()
@click.argument("target", callback=check_target)
@_options()
def options(target: str, **kwargs: Any) -> None:
    """Ping TARGET with OPTIONS; print the status and the round-trip time."""
    common = _common(kwargs)
    uri = common.route(target)

    async def run() -> str:
        async with _user_agent(common, uri) as ua:
            started = time.monotonic()
            response = await _within(ua.options(uri), common.timeout)
            rtt = (time.monotonic() - started) * 1000
            if not 200 <= response.status < 300:
                raise RequestFailed(response.status, response.reason, response)
            agent = response.server or response.user_agent or "-"
            allow = ", ".join(response.allow) or "-"
            return (
                f"{response.status} {response.reason} from {target} in {rtt:.2f} ms "
                f"(server: {agent}; allow: {allow})"
            )

    click.echo(_run(run(), common))
