"""What every ``sipwire`` command shares: exit codes, one-line errors, logging, traces.

Exit codes (the same for every command):

- 0: done;
- 1 (``EXIT_FAILURE``): the command ran and failed: a SIP error response, no
  response (408), nobody reachable (503: the name does not resolve, the
  connection is refused, the TLS certificate does not verify), or the system
  refused what was asked (an address already in use or not local);
- 2 (``EXIT_USAGE``): the command line is wrong, found before any network
  traffic: an unknown option, a value that cannot be right (``--dtmf 12X``,
  ``--expires -5``, a target that is not a SIP URI, a certificate that does
  not load or does not match its key), a message ``parse`` cannot parse;
- 130 (``EXIT_INTERRUPTED``, 128 + SIGINT): Ctrl-C, after the clean-up
  (CANCEL or BYE for a call); 143 (128 + SIGTERM) for SIGTERM to a client
  command.

Every error is one line on standard error, ``Error: <what went wrong>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import re
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import click

from sipwire.errors import SipError

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "CommandFailed",
    "SipwireGroup",
    "TransportFailures",
    "chain_traces",
    "listen_failure",
    "peer_text",
    "print_trace",
    "run_async",
    "setup_logging",
]

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

Trace = Callable[[str, bytes, object], None]
T = TypeVar("T")


class CommandFailed(click.ClickException):
    """A one-line error with an exit code (``EXIT_FAILURE`` unless told)."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _one_line(text: str) -> str:
    return " ".join(text.split())


class SipwireGroup(click.Group):
    """The ``sipwire`` group: every error is one line, Ctrl-C exits 130.

    Click shows a usage error as four lines (usage, hint, blank, error) and
    Ctrl-C as ``Aborted!`` with exit 1; here both follow the module's rule.
    """

    def main(  # type: ignore[override]
        self,
        args: list[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            code = result if isinstance(result, int) else 0
        except (click.exceptions.Abort, KeyboardInterrupt):
            click.echo("Interrupted", err=True)
            code = EXIT_INTERRUPTED
        except click.ClickException as exc:
            click.echo(f"Error: {_one_line(exc.format_message())}", err=True)
            code = exc.exit_code
        if standalone_mode:
            sys.exit(code)
        return code


def setup_logging(verbose: int) -> None:
    """``-v`` info, ``-vv`` debug, else warnings only, on standard error."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for handler in logging.getLogger().handlers:
        # Loggers may be opened wider for TransportFailures; what is shown stays at `level`.
        handler.setLevel(level)


def peer_text(peer: object) -> str:
    """``udp:127.0.0.1:5060`` for a Target or a Source (anything with transport, host, port)."""
    transport, host, port = (getattr(peer, name, None) for name in ("transport", "host", "port"))
    if not (isinstance(transport, str) and isinstance(host, str) and isinstance(port, int)):
        return str(peer)
    shown = f"[{host}]" if ":" in host else host
    return f"{transport}:{shown}:{port}"


def print_trace(direction: str, data: bytes, peer: object) -> None:
    """``--trace``: every SIP message sent and received, on standard error."""
    arrow = "<<<" if direction == "recv" else ">>>"
    text = data.decode("utf-8", "replace")
    sys.stderr.write(f"{arrow} {direction} {peer_text(peer)}\n{text}\n")


def chain_traces(*traces: Trace | None) -> Trace | None:
    """One trace callback that calls each of ``traces`` (None when there is none)."""
    present = [trace for trace in traces if trace is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]

    def both(direction: str, data: bytes, peer: object) -> None:
        for trace in present:
            trace(direction, data, peer)

    return both


_ERRNO = re.compile(r"\[Errno (\d+)\] .*$")
_VERIFY = re.compile(r"certificate verify failed: (.*?)(?: \(_ssl\.c:\d+\))?$")


class TransportFailures(logging.Handler):
    """The sends that failed, as the endpoint logs them, for the final error line.

    A failed send reaches the application only as a local 503 ("Service
    Unavailable"); the reason (refused, TLS certificate not verified ...) is
    in the endpoint's log record ``could not send to TARGET: REASON``.
    """

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.failures: list[tuple[object, str]] = []

    @classmethod
    def install(cls) -> TransportFailures:
        """Listen to ``sipwire.endpoint`` at info level (shown or not, see setup_logging)."""
        handler = cls()
        logger = logging.getLogger("sipwire.endpoint")
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        return handler

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args
        message = str(record.msg)
        if message.startswith("could not send to") and isinstance(args, tuple) and len(args) == 2:
            self.failures.append((args[0], str(args[1])))

    def explain(self) -> str | None:
        """The most telling failure as one line: a TLS verification failure first."""
        for target, reason in self.failures:
            match = _VERIFY.search(reason)
            if match is not None:
                host = getattr(target, "host", target)
                return f"TLS certificate verification failed for {host}: {match.group(1)}"
        if self.failures:
            return _ERRNO.sub(lambda m: os.strerror(int(m.group(1))).lower(), self.failures[-1][1])
        return None


_LISTEN_ERRORS = {
    errno.EADDRINUSE: "address already in use",
    errno.EADDRNOTAVAIL: "not a local address of this host",
    errno.EACCES: "permission denied (a port below 1024 needs privileges)",
}


def listen_failure(exc: SipError) -> str | None:
    """``cannot listen on udp 127.0.0.1:5060: address already in use`` for a failed
    listen (a TransportError whose cause is the OSError), None for other errors."""
    reason = exc.reason
    if not reason.startswith("cannot listen on "):
        return None
    where = reason.split(": ", 1)[0]
    cause = exc.__cause__
    while cause is not None and not (isinstance(cause, OSError) and cause.errno):
        cause = cause.__cause__ or cause.__context__
    if not isinstance(cause, OSError):
        return reason
    known = _LISTEN_ERRORS.get(cause.errno or 0)
    if known is not None:
        return f"{where}: {known}"
    detail = cause.strerror or str(cause)
    return f"{where}: {detail[:1].lower()}{detail[1:]}"


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a client command's coroutine; Ctrl-C and SIGTERM cancel it (its clean-up
    runs: CANCEL or BYE), then exit 130 or 143 with one line."""
    terminated = False

    async def guarded() -> T:
        nonlocal terminated
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()

        def terminate() -> None:
            nonlocal terminated
            terminated = True
            if task is not None:
                task.cancel()

        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, terminate)
        try:
            return await coro
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGTERM)

    try:
        return asyncio.run(guarded())
    except KeyboardInterrupt:
        click.echo("Interrupted", err=True)
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    except asyncio.CancelledError:
        if not terminated:
            raise
        click.echo("Terminated", err=True)
        raise click.exceptions.Exit(EXIT_TERMINATED) from None
