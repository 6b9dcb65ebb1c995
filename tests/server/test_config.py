"""The configuration of ``sipwire serve``: defaults, the TOML file, flags over both; the
default domains; the self-signed certificate made once and reused."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
from cryptography import x509

from sipwire.aio.listen import ListenSpec
from sipwire.server.config import (
    DEFAULT_HTTP,
    DEFAULT_LISTEN,
    ConfigError,
    ServerConfig,
    default_domains,
    parse_http,
    resolve_config,
)
from sipwire.server.serve import Server
from sipwire.server.tls import ensure_certificate
from tests.server.helpers import make_config

FULL = """
domains = ["example.com", "Example.ORG"]
listen = ["udp:0.0.0.0:5070", "tls:[::1]:5071"]
data = "state"
store = "redis://127.0.0.1:6379/2"
http = "off"
log_level = "info"
node = "sip1"
user_agent = "acme"

[tls]
cert = "certs/server.pem"
key = "certs/server.key"

[registrar]
min_expires = 120
max_expires = 600
default_expires = 300
max_contacts = 5
third_party = true
service_route = ["<sip:orig@proxy.example.com;lr>"]
max_in_flight = 50
store_timeout = 0.5
nonce_lifetime = 60
algorithms = ["MD5"]

[limits]
max_transactions = 1000
max_pending_bytes = 1048576
source_rate_limit = 25
retry_after = 10
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sipwire.toml"
    path.write_text(text)
    return path


def test_defaults() -> None:
    config = resolve_config(None, {})
    assert config.listen == DEFAULT_LISTEN
    assert [str(s) for s in config.listen] == [
        "udp:127.0.0.1:5060",
        "tcp:127.0.0.1:5060",
        "tls:127.0.0.1:5061",
        "ws:127.0.0.1:8088",
    ]
    assert config.data == Path("data")
    assert config.store_url == "data/sipwire.db" and config.default_store
    assert config.http == DEFAULT_HTTP == ("127.0.0.1", 9090)
    assert config.domains == ()
    assert (config.min_expires, config.max_expires, config.default_expires) == (60, 7200, 3600)
    policy = config.policy(default_domains(["127.0.0.1"]))
    assert policy.domains == {"localhost", "127.0.0.1"}
    assert policy.require_auth and not policy.allow_third_party


def test_every_setting_of_the_file(tmp_path: Path) -> None:
    config = resolve_config(write(tmp_path, FULL), {})
    assert config.domains == ("example.com", "Example.ORG")
    assert config.listen == (ListenSpec("udp", "0.0.0.0", 5070), ListenSpec("tls", "::1", 5071))
    assert config.data == tmp_path / "state"  # relative to the file
    assert config.store_url == "redis://127.0.0.1:6379/2" and not config.default_store
    assert config.http is None
    assert config.cert == tmp_path / "certs/server.pem"
    assert config.key == tmp_path / "certs/server.key"
    assert (config.log_level, config.node, config.user_agent) == ("info", "sip1", "acme")
    assert (config.min_expires, config.max_expires, config.default_expires) == (120, 600, 300)
    assert config.max_contacts == 5 and config.third_party
    assert config.service_route == ("<sip:orig@proxy.example.com;lr>",)
    assert (config.max_in_flight, config.store_timeout, config.nonce_lifetime) == (50, 0.5, 60)
    assert config.algorithms == ("MD5",)
    assert (config.max_transactions, config.max_pending_bytes) == (1000, 1048576)
    assert (config.source_rate_limit, config.retry_after) == (25.0, 10)
    assert config.sources == (str(tmp_path / "sipwire.toml"),)
    policy = config.policy(config.domains)
    assert policy.domains == {"example.com", "example.org"}
    assert policy.allow_third_party and policy.service_route == config.service_route


def test_a_flag_beats_the_file_which_beats_the_default(tmp_path: Path) -> None:
    path = write(tmp_path, "[registrar]\nmin_expires = 120\nmax_in_flight = 50\n")
    assert resolve_config(None, {}).min_expires == 60  # default
    from_file = resolve_config(path, {"min_expires": None, "domains": ()})  # flags not given
    assert from_file.min_expires == 120 and from_file.max_in_flight == 50
    flagged = resolve_config(
        path,
        {
            "min_expires": 300,
            "listen": (ListenSpec("tcp", "127.0.0.1", 5080),),
            "domains": ("a.example",),
            "data": Path("elsewhere"),
            "http": "off",
            "third_party": False,
        },
    )
    assert flagged.min_expires == 300 and flagged.max_in_flight == 50
    assert flagged.listen == (ListenSpec("tcp", "127.0.0.1", 5080),)
    assert flagged.domains == ("a.example",)
    assert flagged.data == Path("elsewhere") and flagged.http is None
    assert not flagged.third_party
    assert resolve_config(path, {"http": "[::1]:9191"}).http == ("::1", 9191)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("nonsense = 1\n", "unknown setting nonsense"),
        ("[registrar]\nmin_expire = 1\n", "unknown setting registrar.min_expire"),
        ("[proxies]\nx = 1\n", "unknown section [proxies]"),
        ("[proxy]\nx = 1\n", "unknown setting proxy.x"),
        ('[registrar]\nmin_expires = "60"\n', "registrar.min_expires must be an integer"),
        ('listen = ["udp:nowhere"]\n', "listen"),
        ("domains = [1]\n", "domains must be a list of strings"),
        ('log_level = "loud"\n', "log_level"),
        ("http = 'localhost'\n", "http"),
        ("[registrar]\nmin_expires = 7200\nmax_expires = 60\n", "min_expires"),
        ('[registrar]\nservice_route = ["<sip:p.example.com>"]\n', ";lr"),
        ('[tls]\ncert = "a.pem"\n', "cert and key go together"),
        ("[registrar]\nmax_in_flight = 0\n", "max_in_flight"),
        ('[registrar]\nalgorithms = ["SHA1"]\n', "unknown digest algorithm 'SHA1'"),
        ("[registrar]\nalgorithms = []\n", "at least one digest algorithm"),
        ("domains = [\n", "config file"),
    ],
)
def test_bad_files_say_what_is_wrong(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(ConfigError, match=None) as caught:
        resolve_config(write(tmp_path, text), {})
    assert says in str(caught.value)
    assert "\n" not in str(caught.value).strip()


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        resolve_config(tmp_path / "absent.toml", {})


def test_http_addresses() -> None:
    assert parse_http("127.0.0.1:9090") == ("127.0.0.1", 9090)
    assert parse_http("[::1]:80") == ("::1", 80)
    assert parse_http("off") is None
    for bad in ("9090", "host:", "host:99999", "[::1]"):
        with pytest.raises(ValueError):
            parse_http(bad)


def test_default_domains_are_localhost_and_the_listen_addresses() -> None:
    assert default_domains(["127.0.0.1", "127.0.0.1", "::1", "Host.Example"]) == (
        "localhost",
        "127.0.0.1",
        "::1",
        "host.example",
    )


@pytest.mark.asyncio
async def test_a_server_serves_its_listen_addresses_by_default(tmp_path: Path) -> None:
    async with Server(make_config(tmp_path, None)) as server:
        assert server.domains == ("localhost", "127.0.0.1")
    async with Server(make_config(tmp_path, None, domains=("example.com",))) as server:
        assert server.domains == ("example.com",)


# -- the self-signed certificate ------------------------------------------------------


def test_the_certificate_is_made_once_and_reused(tmp_path: Path) -> None:
    cert, key = ensure_certificate(tmp_path, ["127.0.0.1", "0.0.0.0", "sip.example.com"])
    assert cert == tmp_path / "tls" / "cert.pem" and key == tmp_path / "tls" / "key.pem"
    assert key.stat().st_mode & 0o777 == 0o600
    first = cert.read_bytes(), key.read_bytes()
    assert ensure_certificate(tmp_path, ["127.0.0.1"]) == (cert, key)
    assert (cert.read_bytes(), key.read_bytes()) == first
    names = x509.load_pem_x509_certificate(first[0]).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert "sip.example.com" in names.value.get_values_for_type(x509.DNSName)
    assert "localhost" in names.value.get_values_for_type(x509.DNSName)


@pytest.mark.asyncio
async def test_a_tls_listener_gets_the_generated_certificate_across_restarts(
    tmp_path: Path,
) -> None:
    tls = (ListenSpec("tls", "127.0.0.1", 0),)
    config = make_config(tmp_path, None, listen=tls)
    seen: list[bytes] = []
    for _ in range(2):
        async with Server(config) as server:
            assert server.certificate is not None
            port = server.listeners[0].port
            context = ssl.create_default_context(cafile=server.certificate[0])
            # The certificate presented is the one in the data dir, and it verifies.
            _, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=context, server_hostname="localhost"
            )
            peer = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
            writer.close()
            seen.append(peer)
    assert seen[0] == seen[1]
    assert (tmp_path / "data" / "tls" / "cert.pem").exists()


def test_config_is_frozen() -> None:
    config = ServerConfig()
    with pytest.raises(AttributeError):
        config.min_expires = 1  # type: ignore[misc]
