"""``sipwire serve``: the registrar server (the proxy comes as a second role of it).

    sipwire serve                                   # localhost, 127.0.0.1:5060 udp/tcp,
                                                    # tls 5061, ws 8088, http 9090, ./data
    sipwire serve --config /etc/sipwire.toml --listen udp:0.0.0.0:5060 --domain example.com

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
from pathlib import Path
from typing import Any

import click

from sipwire.cli.answer import event_loop_factory
from sipwire.cli.common import CommandFailed, listen_failure, print_trace, setup_logging
from sipwire.cli.params import ListenType
from sipwire.errors import SipError
from sipwire.server.config import LOG_LEVELS, ConfigError, ServerConfig, resolve_config
from sipwire.server.serve import ServeError, Server, run_serve

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
    """Run the registrar: digest-authenticated REGISTER, OPTIONS, /metrics and /health."""
    try:
        config = resolve_config(config_file, settings)
    except ConfigError as exc:
        raise CommandFailed(str(exc)) from None
    verbosity = _verbosity(config, verbose)
    setup_logging(verbosity)
    if verbosity < 2:  # websockets' "server listening" lines only at -vv
        logging.getLogger("websockets").setLevel(logging.WARNING)
    loop_factory = event_loop_factory(loop)

    async def main() -> None:
        stats = await run_serve(config, ready=_announce, trace=print_trace if trace else None)
        total = sum(stats.registrations.values())
        click.echo(f"stopped after answering {total} REGISTER requests", err=True)

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
