"""``sipwire user add | del | list``: the users ``sipwire serve`` authenticates.

    sipwire user add alice --password secret          # in ./data, domain localhost
    echo secret | sipwire user add bob --password - --domain example.com
    sipwire user list
    sipwire user del alice

They work on the store ``sipwire serve`` uses with the same ``--data``,
``--store`` and ``--config``, so ``sipwire user add bob --password x &&
sipwire serve`` in one folder just works (and ``serve`` may be running:
the store serializes the writes). A user is kept as the HA1 of each digest
algorithm (MD5, SHA-256, SHA-512-256) over ``name:domain:password``, the
domain being the realm; the password itself is never stored.

``--password -`` reads the password from the first line of standard input;
without ``--password`` it is asked for (twice, not echoed) when standard
input is a terminal. ``--domain`` defaults to the configuration's first
domain, else ``localhost``.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from sipwire.cli.common import EXIT_USAGE, CommandFailed
from sipwire.cli.params import check_user
from sipwire.registrar.authenticate import make_user
from sipwire.registrar.policy import host_key
from sipwire.server.config import ConfigError, ServerConfig, resolve_config
from sipwire.store import LocationStore, StoreUnavailable, open_store

__all__ = ["user"]

T = TypeVar("T")


def _store_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--data``, ``--store`` and ``--config``, as ``sipwire serve`` has them."""
    command = click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="The configuration file of sipwire serve (its data dir, store and domains).",
    )(command)
    command = click.option("--store", metavar="URL", help="Store URL [default: DATA/sipwire.db].")(
        command
    )
    command = click.option(
        "--data",
        type=click.Path(file_okay=False, path_type=Path),
        help="Data directory of sipwire serve [default: ./data].",
    )(command)
    return command


def _config(config_file: Path | None, data: Path | None, store: str | None) -> ServerConfig:
    try:
        return resolve_config(config_file, {"data": data, "store": store})
    except ConfigError as exc:
        raise CommandFailed(str(exc)) from None


def _domain(config: ServerConfig, domain: str | None) -> str:
    if domain is not None:
        if not domain.strip():
            raise click.BadParameter("empty domain", param_hint="'--domain'")
        return host_key(domain)
    return host_key(config.domains[0]) if config.domains else "localhost"


def _with_store(config: ServerConfig, action: Callable[[LocationStore], Awaitable[T]]) -> T:
    """Open the store of ``config``, run ``action`` on it, close it; one-line errors."""
    if config.default_store:
        try:
            config.data.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CommandFailed(f"cannot create data directory {config.data}: {exc}") from None
    try:
        store = open_store(config.store_url)
    except (ValueError, ImportError) as exc:
        raise CommandFailed(str(exc)) from None

    async def run() -> T:
        await store.open()
        try:
            return await action(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except StoreUnavailable as exc:
        raise CommandFailed(f"store unreachable: {exc.reason}") from None


def _read_password(password: str | None) -> str:
    if password == "-":
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
        if not password:
            raise CommandFailed("no password on standard input", EXIT_USAGE)
        return password
    if password is None:
        if not sys.stdin.isatty():
            raise CommandFailed(
                "no password: give --password PASSWORD, or --password - to read it "
                "from standard input",
                EXIT_USAGE,
            )
        password = str(click.prompt("Password", hide_input=True, confirmation_prompt=True))
    if not password:
        raise CommandFailed("empty password", EXIT_USAGE)
    return password


@click.group()
def user() -> None:
    """Add, remove and list the users of sipwire serve (digest HA1s, never passwords)."""


@user.command("add")
@click.argument("name", callback=check_user)
@click.option(
    "--password",
    help="The password; - reads it from standard input [default: asked for].",
)
@click.option("--domain", help="The user's domain, which is its realm [default: localhost].")
@_store_options
def add(
    name: str,
    password: str | None,
    domain: str | None,
    data: Path | None,
    store: str | None,
    config_file: Path | None,
) -> None:
    """Add user NAME, or change its password."""
    config = _config(config_file, data, store)
    realm = _domain(config, domain)
    secret = _read_password(password)
    new = make_user(name, realm, secret)

    async def put(db: LocationStore) -> bool:
        existed = await db.get_user(name, realm) is not None
        await db.put_user(new)
        return existed

    existed = _with_store(config, put)
    click.echo(f"{'changed the password of' if existed else 'added'} {name}@{realm}")


@user.command("del")
@click.argument("name")
@click.option("--domain", help="The user's domain [default: localhost].")
@_store_options
def delete(
    name: str,
    domain: str | None,
    data: Path | None,
    store: str | None,
    config_file: Path | None,
) -> None:
    """Remove user NAME."""
    config = _config(config_file, data, store)
    realm = _domain(config, domain)

    async def remove(db: LocationStore) -> bool:
        return await db.delete_user(name, realm)

    if not _with_store(config, remove):
        raise CommandFailed(f"no user {name}@{realm}")
    click.echo(f"deleted {name}@{realm}")


@user.command("list")
@click.option("--domain", help="Only this domain's users [default: every domain].")
@_store_options
def list_users(
    domain: str | None,
    data: Path | None,
    store: str | None,
    config_file: Path | None,
) -> None:
    """List the users, one NAME@DOMAIN a line."""
    config = _config(config_file, data, store)
    realm = host_key(domain) if domain is not None else None

    async def users(db: LocationStore) -> list[str]:
        return [f"{u.name}@{u.domain}" for u in await db.users(realm)]

    for line in _with_store(config, users):
        click.echo(line)
