"""TLS files of the command line: checked before anything listens or connects.

``server_context(cert, key)`` loads ``sipwire answer``'s certificate and key
and says which file is wrong and why; ``client_context(ca_file, insecure)``
is what ``--ca-file`` and ``--insecure`` mean for the client commands. Both
raise ``click.BadParameter`` (exit 2, one line).
"""

from __future__ import annotations

import ssl
from pathlib import Path

import click

__all__ = ["INSECURE_WARNING", "client_context", "server_context"]

INSECURE_WARNING = "Warning: --insecure: the server's TLS certificate is not verified"


def _read(path: str, option: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint=option) from None


def _ssl_reason(exc: ssl.SSLError) -> str:
    return (exc.reason or str(exc)).replace("_", " ").lower()


def server_context(cert: str, key: str) -> ssl.SSLContext:
    """A server context with ``cert`` and ``key``; BadParameter naming the file at fault."""
    if b"-----BEGIN CERTIFICATE-----" not in _read(cert, "'--cert'"):
        raise click.BadParameter(f"{cert} holds no PEM certificate", param_hint="'--cert'")
    key_data = _read(key, "'--key'")
    if b"PRIVATE KEY-----" not in key_data:
        raise click.BadParameter(f"{key} holds no PEM private key", param_hint="'--key'")
    if b"ENCRYPTED" in key_data:
        raise click.BadParameter(
            f"{key} is encrypted (give an unencrypted key)", param_hint="'--key'"
        )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key, password=lambda: b"")
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise click.BadParameter(
                f"{key} is not the key of the certificate in {cert}", param_hint="'--key'"
            ) from None
        # Which file: the certificate loads alone into a client context's trust store.
        try:
            ssl.create_default_context().load_verify_locations(cafile=cert)
        except ssl.SSLError as cert_exc:
            raise click.BadParameter(
                f"{cert} is not a valid certificate ({_ssl_reason(cert_exc)})",
                param_hint="'--cert'",
            ) from None
        raise click.BadParameter(
            f"{key} is not a valid private key ({_ssl_reason(exc)})", param_hint="'--key'"
        ) from None
    return context


def client_context(ca_file: str | None, insecure: bool) -> ssl.SSLContext | None:
    """The client context of ``--ca-file`` / ``--insecure``; None for the system's CAs."""
    if insecure:
        if ca_file is not None:
            raise click.UsageError("--insecure and --ca-file exclude each other")
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if ca_file is None:
        return None
    data = _read(ca_file, "'--ca-file'")
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise click.BadParameter(f"{ca_file} holds no PEM certificate", param_hint="'--ca-file'")
    context = ssl.create_default_context()
    try:
        context.load_verify_locations(cafile=ca_file)
    except ssl.SSLError as exc:
        raise click.BadParameter(
            f"{ca_file} is not a valid certificate ({_ssl_reason(exc)})", param_hint="'--ca-file'"
        ) from None
    return context
