"""``sipwire answer``: a user agent server that answers every call.

    sipwire answer --listen udp:127.0.0.1:5080 --listen tcp:127.0.0.1:5080

It runs a :class:`~sipwire.UserAgent` that answers OPTIONS with 200, INVITE
with 180 then 200 (with an SDP answer), BYE with 200, CANCEL with 200 and
487, prints every MESSAGE it receives, and answers unknown methods and
broken requests with the RFC's error code, until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import ssl
from collections.abc import Callable
from dataclasses import dataclass, replace

import click

from sipwire.aio.gcpolicy import TimedCollection
from sipwire.aio.limits import default_limits
from sipwire.aio.listen import ListenSpec, parse_listen
from sipwire.aio.transport_base import TransportConfig
from sipwire.aio.ua import UserAgent

__all__ = ["AnswerConfig", "AnswerStats", "ListenSpec", "answer", "parse_listen", "run_answer"]

log = logging.getLogger("sipwire.answer")


class _ListenType(click.ParamType):
    name = "SCHEME:HOST:PORT"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> ListenSpec:
        if isinstance(value, ListenSpec):
            return value
        try:
            return parse_listen(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


@dataclass(frozen=True, slots=True)
class AnswerConfig:
    """How ``sipwire answer`` behaves."""

    user: str = "sipwire"
    """User part of our AOR and Contact."""
    user_agent: str = "sipwire"
    """Value of the Server / User-Agent header."""
    ring_time: float = 0.0
    """Seconds between 180 Ringing and 200 OK (0 answers at once)."""
    source_rate_limit: float | None = None
    """New requests per second from one address beyond which they are dropped (None: off)."""


@dataclass(slots=True)
class AnswerStats:
    """What ``sipwire answer`` did."""

    calls_answered: int = 0
    calls_completed: int = 0
    """Answered calls that the caller ended with BYE."""
    messages: int = 0


async def run_answer(
    listens: list[ListenSpec],
    config: AnswerConfig,
    transport: TransportConfig,
    *,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
) -> AnswerStats:
    """Run the answering user agent until ``stop`` is set (or SIGINT/SIGTERM)."""
    first = listens[0]
    host = f"[{first.host}]" if ":" in first.host else first.host
    limits = default_limits()
    if config.source_rate_limit is not None:
        limits = replace(limits, source_rate_limit=config.source_rate_limit)
    ua = UserAgent(
        f"sip:{config.user}@{host}",
        listen=[str(spec) for spec in listens],
        transport=transport,
        user_agent=config.user_agent,
        limits=limits,
    )
    stats = AnswerStats()
    ua.auto_answer(config.ring_time)

    async def print_messages() -> None:
        async for request in ua.messages():
            stats.messages += 1
            text = request.body.decode("utf-8", "replace")
            click.echo(f"MESSAGE from {request.from_.uri}: {text}")

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    collector = TimedCollection()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Not available off the main thread (tests run the server in a task).
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        async with ua:
            for listener in ua.listeners.values():
                shown = f"[{listener.host}]" if ":" in listener.host else listener.host
                click.echo(f"listening on {listener.transport}:{shown}:{listener.port}", err=True)
            printer = asyncio.ensure_future(print_messages())
            collector.start()
            if ua.endpoint is not None:
                ua.endpoint.monitor.collect = collector.collect_all
            if ready is not None:
                ready.set()
            await stop.wait()
            printer.cancel()
            stats.calls_answered = ua.calls_answered
            stats.calls_completed = ua.calls_completed
    finally:
        collector.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    return stats


def event_loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The loop factory for ``--loop``: uvloop's when asked for (or auto and installed)."""
    if name == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if name == "uvloop":
            raise click.UsageError("uvloop is not installed") from None
        return None
    return uvloop.new_event_loop


@click.command()
@click.option(
    "--listen",
    "listens",
    type=_ListenType(),
    multiple=True,
    help="Where to listen, repeatable: udp|tcp|tls|ws|wss:HOST:PORT "
    "(default udp:127.0.0.1:5060 and tcp:127.0.0.1:5060).",
)
@click.option("--cert", type=click.Path(exists=True, dir_okay=False), help="TLS certificate (PEM).")
@click.option("--key", type=click.Path(exists=True, dir_okay=False), help="TLS private key (PEM).")
@click.option("--ring-time", type=float, default=0.0, show_default=True, help="Seconds of 180.")
@click.option("--user", default="sipwire", show_default=True, help="User part of our Contact.")
@click.option(
    "--loop",
    type=click.Choice(["auto", "uvloop", "asyncio"]),
    default="auto",
    show_default=True,
    help="Event loop: uvloop when installed (auto), or the standard asyncio loop.",
)
@click.option(
    "--source-rate-limit",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Drop new requests beyond this many per second from one address "
    "(like kamailio's pike; off by default).",
)
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug).")
def answer(
    listens: tuple[ListenSpec, ...],
    cert: str | None,
    key: str | None,
    ring_time: float,
    user: str,
    loop: str,
    source_rate_limit: float | None,
    verbose: int,
) -> None:
    """Answer every call: a user agent server for tests and demos."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    specs = list(listens) or [
        ListenSpec("udp", "127.0.0.1", 5060),
        ListenSpec("tcp", "127.0.0.1", 5060),
    ]
    server_context: ssl.SSLContext | None = None
    if any(s.transport in ("tls", "wss") for s in specs):
        if not (cert and key):
            raise click.UsageError("tls and wss listeners need --cert and --key")
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_context.load_cert_chain(cert, key)
    transport = TransportConfig(tls_server_context=server_context)
    config = AnswerConfig(user=user, ring_time=ring_time, source_rate_limit=source_rate_limit)
    # Keep the start-up objects out of every collection; run_answer collects on a
    # clock instead of by allocation count (sipwire.aio.gcpolicy).
    gc.collect()
    gc.freeze()
    try:
        with asyncio.Runner(loop_factory=event_loop_factory(loop)) as runner:
            tu = runner.run(run_answer(specs, config, transport))
    except OSError as exc:
        raise click.ClickException(f"cannot listen: {exc}") from None
    click.echo(f"answered {tu.calls_answered} calls, {tu.calls_completed} ended with BYE", err=True)
