"""``sipwire serve``: the registrar and proxy server.

    sipwire serve                                   # localhost, 127.0.0.1:5060 udp/tcp,
                                                    # tls 5061, ws 8088, http 9090, ./data
    sipwire serve --config /etc/sipwire.toml --listen udp:0.0.0.0:5060 --domain example.com
    sipwire serve --routes routes.py                # a Python routing hook
    sipwire serve --stateless                       # a stateless proxy (RFC 3261 §16.11)

Every setting of the configuration file (``sipwire.server.config``) has a
flag that overrides it. It prints where it listens and how to add a user,
then serves until Ctrl-C or SIGTERM: REGISTERs in flight are answered, the
store is closed, and it exits 0. A port in use, a configuration file that
does not load or a store that cannot be reached is one line on standard
error, exit 1.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import secrets
import socket
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from sipwire.aio.listen import advertised_host
from sipwire.cli.answer import event_loop_factory
from sipwire.cli.common import CommandFailed, listen_failure, print_trace, setup_logging
from sipwire.cli.params import ListenType
from sipwire.errors import SipError
from sipwire.server.config import (
    LOG_LEVELS,
    ConfigError,
    ServerConfig,
    default_domains,
    resolve_config,
)
from sipwire.server.serve import ServeError, Server, prepare_shared, run_serve
from sipwire.server.workers import run_workers

__all__ = ["serve"]


def _announce(server: Server) -> None:
    """The lines printed once the server listens: where, what, and how to add a user."""
    shown = []
    for spec in server.listeners:
        host = f"[{spec.host}]" if ":" in spec.host else spec.host
        shown.append(f"{spec.transport}:{host}:{spec.port}")
    if server.http_address is not None:
        host, port = server.http_address
        shown.append(f"http://{f'[{host}]' if ':' in host else host}:{port}/metrics")
    click.echo(f"sipwire serve: listening on {', '.join(shown)}", err=True)
    store = server.store.url if server.store is not None else server.config.store_url
    click.echo(f"serving {', '.join(server.domains)}; store {store}", err=True)
    config = server.config
    if config.sources:
        where = f" --config {config.sources[0]}"
    elif config.default_store and config.data == Path("data"):
        where = ""
    else:
        where = f" {server.url_hint}"
    domain = server.domains[0] if server.domains else "localhost"
    domain_hint = "" if domain == "localhost" else f" --domain {domain}"
    click.echo(
        f"add a user: sipwire user add NAME --password PASSWORD{domain_hint}{where}", err=True
    )


def _verbosity(config: ServerConfig, verbose: int) -> int:
    """-v / -vv win over the file's log_level."""
    return verbose if verbose else LOG_LEVELS.index(config.log_level)


@click.command()
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML configuration file (flags override its settings).",
)
@click.option(
    "--listen",
    "listen",
    type=ListenType(),
    multiple=True,
    help="Where to listen, repeatable: udp|tcp|tls|ws|wss:HOST:PORT [default: udp and tcp "
    "127.0.0.1:5060, tls 127.0.0.1:5061, ws 127.0.0.1:8088].",
)
@click.option(
    "--data",
    type=click.Path(file_okay=False, path_type=Path),
    help="Data directory: the SQLite store and the TLS certificate [default: ./data].",
)
@click.option(
    "--store",
    metavar="URL",
    help="Location store: a file, sqlite:PATH, redis://HOST:PORT/DB or postgresql://... "
    "[default: DATA/sipwire.db].",
)
@click.option(
    "--domain",
    "domains",
    multiple=True,
    help="Domain served, repeatable [default: localhost and every address listened on].",
)
@click.option("--http", metavar="HOST:PORT|off", help="/metrics and /health [127.0.0.1:9090].")
@click.option(
    "--cert",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TLS certificate (PEM) [default: self-signed, made in DATA/tls on first start].",
)
@click.option("--key", type=click.Path(dir_okay=False, path_type=Path), help="Key of --cert.")
@click.option("--min-expires", type=click.IntRange(min=0), help="Shorter gets 423 [60].")
@click.option("--max-expires", type=click.IntRange(min=1), help="Longer is shortened [7200].")
@click.option("--default-expires", type=click.IntRange(min=1), help="When none asked [3600].")
@click.option("--max-contacts", type=click.IntRange(min=1), help="Bindings per AOR [20].")
@click.option(
    "--third-party/--no-third-party",
    default=None,
    help="Let a user register another user's AOR [no].",
)
@click.option("--service-route", multiple=True, help="Service-Route value, repeatable.")
@click.option(
    "--max-in-flight", type=click.IntRange(min=1), help="REGISTERs at once, then 503 [1000]."
)
@click.option(
    "--store-timeout",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds a REGISTER may wait for the store, then 503 [2].",
)
@click.option(
    "--nonce-lifetime",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds a nonce is valid, then stale=true [300].",
)
@click.option(
    "--algorithm",
    "algorithms",
    type=click.Choice(["SHA-256", "MD5", "SHA-512-256"], case_sensitive=False),
    multiple=True,
    help="Digest algorithm offered, repeatable, preferred first [SHA-256, then MD5].",
)
@click.option("--max-transactions", type=click.IntRange(min=1), help="[default: sized from memory]")
@click.option(
    "--max-pending-bytes", type=click.IntRange(min=1), help="[default: sized from memory]"
)
@click.option(
    "--source-rate-limit",
    type=click.FloatRange(min=0, min_open=True),
    metavar="PER_SECOND",
    help="Drop new requests beyond this rate from one address [off].",
)
@click.option("--retry-after", type=click.IntRange(min=1), help="Seconds in 503s [5].")
@click.option(
    "--proxy/--no-proxy",
    default=None,
    help="Forward calls and other requests to registered users and routes [yes]; "
    "--no-proxy: a registrar only.",
)
@click.option("--stateless", is_flag=True, default=None, help="A stateless proxy (§16.11).")
@click.option(
    "--routes",
    "routes_hook",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Python routing hook: a file defining route(request, ctx).",
)
@click.option("--record-route/--no-record-route", default=None, help="Record-Route dialogs [yes].")
@click.option(
    "--forking",
    type=click.Choice(["q", "parallel"]),
    help="Fork by q-value groups, or to every binding at once [q].",
)
@click.option(
    "--trusted",
    multiple=True,
    metavar="ADDRESS",
    help="Source address neither challenged nor refused as relaying (a trunk), repeatable.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Processes sharing the listeners and the store (SO_REUSEPORT) [1].",
)
@click.option("--node", help="This node's name in the bindings [host name and a boot id].")
@click.option("--user-agent", help="Server header [sipwire].")
@click.option("--log-level", type=click.Choice(LOG_LEVELS), help="[warning]; -v is info.")
@click.option(
    "--loop",
    type=click.Choice(["auto", "uvloop", "asyncio"]),
    default="auto",
    show_default=True,
    help="Event loop: uvloop when installed (auto), or the standard asyncio loop.",
)
@click.option("--trace", is_flag=True, help="Print every SIP message on stderr.")
@click.option("-v", "--verbose", count=True, help="-v one line per REGISTER, -vv debug.")
def serve(
    config_file: Path | None,
    loop: str,
    trace: bool,
    verbose: int,
    **settings: Any,
) -> None:
    """Run the registrar and proxy: digest-authenticated REGISTER, calls and other
    requests forwarded to registered users and routes, /metrics and /health."""
    try:
        config = resolve_config(config_file, settings)
    except ConfigError as exc:
        raise CommandFailed(str(exc)) from None
    verbosity = _verbosity(config, verbose)
    setup_logging(verbosity)
    if verbosity < 2:  # websockets' "server listening" lines only at -vv
        logging.getLogger("websockets").setLevel(logging.WARNING)
    loop_factory = event_loop_factory(loop)
    if config.workers > 1:
        _serve_workers(config, loop_factory, trace)
        return
    _serve_one(config, loop_factory, trace, _announce)


def _serve_one(
    config: ServerConfig,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None,
    trace: bool,
    ready: Callable[[Server], object],
) -> None:
    """Run one server until stopped; CommandFailed when it cannot start."""

    async def main() -> None:
        stats = await run_serve(config, ready=ready, trace=print_trace if trace else None)
        total = sum(stats.registrations.values())
        calls = sum(stats.calls.values())
        also = f" and {calls} calls" if calls else ""
        who = f"worker {config.worker} " if config.workers > 1 else ""
        click.echo(f"{who}stopped after answering {total} REGISTER requests{also}", err=True)

    # Start-up objects stay out of every collection; run_serve collects on a clock.
    gc.collect()
    gc.freeze()
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(main())
    except ServeError as exc:
        raise CommandFailed(str(exc)) from None
    except SipError as exc:
        raise CommandFailed(listen_failure(exc) or exc.reason) from None
    except OSError as exc:
        raise CommandFailed(f"cannot listen: {exc}") from None


def _serve_workers(
    config: ServerConfig,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None,
    trace: bool,
) -> None:
    """``--workers N``: the store prepared once, then N processes (``server.workers``)."""
    node = config.node or f"{socket.gethostname()}-{secrets.token_hex(3)}"
    config = replace(config, node=node)
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(prepare_shared(config))
    except ServeError as exc:
        raise CommandFailed(str(exc)) from None

    def child(index: int, ready: Callable[[], None], ports: tuple[int, ...], fd: int) -> int:
        worker = replace(config, worker=index, channel=ports, channel_fd=fd)
        try:
            _serve_one(worker, loop_factory, trace, lambda _: ready())
        except CommandFailed as exc:
            click.echo(f"Error: worker {index}: {exc.message}", err=True)
            return exc.exit_code
        return 0

    status = run_workers(config.workers, child, lambda: _announce_workers(config))
    if status:
        raise CommandFailed(f"a worker failed (exit status {status})", status)


def _announce_workers(config: ServerConfig) -> None:
    """The lines printed once every worker listens."""
    shown = []
    for spec in config.listen:
        host = f"[{spec.host}]" if ":" in spec.host else spec.host
        shown.append(f"{spec.transport}:{host}:{spec.port}")
    if config.http is not None:
        host, port = config.http
        last = f"-{port + config.workers - 1}" if port else ""
        shown.append(f"http://{f'[{host}]' if ':' in host else host}:{port}{last}/metrics")
    listening = ", ".join(shown)
    click.echo(f"sipwire serve: {config.workers} workers listening on {listening}", err=True)
    domains = config.domains or default_domains(advertised_host(s.host) for s in config.listen)
    click.echo(f"serving {', '.join(domains)}; store {config.store_url}", err=True)
    where = f" --config {config.sources[0]}" if config.sources else f" --data {config.data}"
    domain = domains[0] if domains else "localhost"
    domain_hint = "" if domain == "localhost" else f" --domain {domain}"
    click.echo(
        f"add a user: sipwire user add NAME --password PASSWORD{domain_hint}{where}", err=True
    )
