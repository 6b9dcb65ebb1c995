"""The server's TLS certificate: a self-signed one made on first start, or the configured one.

``sipwire serve`` with tls or wss listeners and no ``cert``/``key`` uses
``DATA/tls/cert.pem`` and ``DATA/tls/key.pem``, generated the first time
(EC P-256, ten years, subjectAltName ``localhost``, the machine's host name,
127.0.0.1, ::1 and the addresses listened on) and reused afterwards, so that
a client that pinned it keeps trusting it. The key file is created mode
0600 and both files are written whole (a temporary file renamed), so a crash
never leaves half a certificate.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import socket
import ssl
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CertificateError", "ensure_certificate", "server_context"]

VALIDITY = datetime.timedelta(days=3650)


class CertificateError(ValueError):
    """A certificate or key that cannot be loaded or written (one line, for the CLI)."""


def ensure_certificate(directory: Path, hosts: Iterable[str] = ()) -> tuple[Path, Path]:
    """``(cert, key)`` in ``directory/tls``: made now unless both files exist already."""
    tls_dir = directory / "tls"
    cert_path, key_path = tls_dir / "cert.pem", tls_dir / "key.pem"
    if cert_path.is_file() and key_path.is_file():
        return cert_path, key_path
    try:
        tls_dir.mkdir(parents=True, exist_ok=True)
        cert_pem, key_pem = _self_signed(hosts)
        _write(key_path, key_pem, 0o600)
        _write(cert_path, cert_pem, 0o644)
    except OSError as exc:
        raise CertificateError(f"cannot write the TLS certificate in {tls_dir}: {exc}") from None
    return cert_path, key_path


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A TLS server context presenting ``cert``; CertificateError saying what is wrong."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key, password=lambda: b"")
    except FileNotFoundError as exc:
        raise CertificateError(f"TLS certificate or key not found: {exc.filename}") from None
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "reason", None) or str(exc)
        raise CertificateError(
            f"cannot load TLS certificate {cert} with key {key}: {reason}"
        ) from None
    return context


def _self_signed(hosts: Iterable[str]) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    hostname = socket.gethostname()
    names: dict[str, None] = dict.fromkeys(["localhost", hostname])
    addresses: dict[str, None] = dict.fromkeys(["127.0.0.1", "::1"])
    for host in hosts:
        host = host.strip("[]")
        if host in ("0.0.0.0", "::"):
            continue
        try:
            ipaddress.ip_address(host)
        except ValueError:
            names.setdefault(host, None)
        else:
            addresses.setdefault(host, None)
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in names if n]
    alt_names += [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"sipwire {hostname}"[:64])])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write ``path`` whole: a temporary file with ``mode``, renamed over it."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
