"""Entry point of the ``sipwire`` command.

``sipwire answer`` runs a user agent server that answers every call (see
sipwire.cli.answer). ``sipwire parse FILE`` reads one SIP message (``-`` for standard input),
parses it and prints a short typed summary. A message that does not parse
is reported as ``Error: parse error: <status> <reason>`` on standard error,
exit code 2. Every command reports errors as one line and exits with the
codes of :mod:`sipwire.cli.common`.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import BinaryIO

import click

from sipwire import ParseError, Request, Response, parse_message
from sipwire.cli.answer import answer
from sipwire.cli.client import call, message, options, register
from sipwire.cli.common import EXIT_USAGE, CommandFailed, SipwireGroup
from sipwire.cli.serve import serve
from sipwire.cli.user import user

__all__ = ["main"]

EXIT_PARSE_ERROR = EXIT_USAGE


def _package_version() -> str:
    try:
        return version("sipwire")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"


def _or_dash(value: object) -> str:
    return "-" if value is None else str(value)


def summarize(msg: Request | Response) -> list[str]:
    """The lines ``sipwire parse`` prints for a parsed message."""
    lines: list[str] = []
    if isinstance(msg, Request):
        lines.append(f"request:  {msg.method} {msg.uri}")
    else:
        lines.append(f"response: {msg.status} {msg.reason}")

    vias = msg.via
    if vias:
        top = vias[0]
        lines.append(
            f"via:      {top.transport} {top.host} port={_or_dash(top.port)} "
            f"branch={_or_dash(top.branch)} (hops={len(vias)})"
        )
    else:
        lines.append("via:      -")

    for label, addr in (("from", msg.from_), ("to", msg.to)):
        name = "" if addr.display_name is None else f'"{addr.display_name}" '
        lines.append(f"{label + ':':<9} {name}<{addr.uri}> tag={_or_dash(addr.tag)}")

    lines.append(f"call-id:  {msg.call_id}")
    cseq = msg.cseq
    lines.append(f"cseq:     {cseq.seq} {cseq.method}")
    lines.append(f"body:     {len(msg.body)} bytes")

    if isinstance(msg, Request):
        from sipwire.message.validate import validate_request

        verdict = validate_request(msg)
        if verdict is None:
            lines.append("validate: ok")
        else:
            lines.append(f"validate: would answer {verdict}")
    return lines


@click.group(cls=SipwireGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_package_version(), "--version", "-V", prog_name="sipwire")
def main() -> None:
    """sipwire: SIP (RFC 3261) tools."""


@main.command()
@click.argument("file", type=click.File("rb"), default="-")
def parse(file: BinaryIO) -> None:
    """Parse one SIP message from FILE (default: - for standard input) and summarize it."""
    data = file.read()
    try:
        msg = parse_message(data)
        lines = summarize(msg)
    except ParseError as exc:
        raise CommandFailed(f"parse error: {exc.status} {exc.reason}", EXIT_PARSE_ERROR) from None
    for line in lines:
        click.echo(line)


main.add_command(answer)
main.add_command(register)
main.add_command(call)
main.add_command(message)
main.add_command(options)
main.add_command(serve)
main.add_command(user)


if __name__ == "__main__":  # pragma: no cover
    main()
