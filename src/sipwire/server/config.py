"""The configuration of ``sipwire serve`` (and ``sipwire user``): TOML, flags, defaults.

Precedence: a command-line flag beats the configuration file, which beats
the default. :func:`resolve_config` applies it::

    config = resolve_config(Path("sipwire.toml"), {"listen": (spec,), "domains": ("example.com",)})

The file (every key optional; relative paths are relative to the file)::

    domains = ["example.com"]            # --domain (repeatable)
    listen = ["udp:0.0.0.0:5060", "tcp:0.0.0.0:5060", "tls:0.0.0.0:5061", "ws:0.0.0.0:8088"]
    data = "/var/lib/sipwire"            # --data: SQLite file, TLS certificate
    store = "redis://127.0.0.1:6379/0"   # --store: default SQLite in the data dir
    http = "127.0.0.1:9090"              # --http: /metrics and /health; "off" for none
    log_level = "info"                   # --log-level, -v: warning, info, debug
    node = "sip1"                        # --node: this node's name in the bindings
    user_agent = "sipwire"               # --user-agent: the Server header
    workers = 1                          # --workers: processes sharing the listeners

    [tls]                                # --cert, --key: default self-signed in the data dir
    cert = "cert.pem"
    key = "key.pem"

    [registrar]
    min_expires = 60                     # --min-expires: shorter gets 423
    max_expires = 7200                   # --max-expires: longer is shortened to it
    default_expires = 3600               # --default-expires
    max_contacts = 20                    # --max-contacts: bindings per AOR
    third_party = false                  # --third-party: register another user's AOR
    service_route = []                   # --service-route (repeatable), RFC 3608
    max_in_flight = 1000                 # --max-in-flight: beyond it 503
    store_timeout = 2.0                  # --store-timeout: a slower store gets 503
    nonce_lifetime = 300                 # --nonce-lifetime: then stale=true
    algorithms = ["SHA-256", "MD5"]      # --algorithm (repeatable): digest, preferred first

    [proxy]                              # the proxy role (sipwire.server.proxy)
    enabled = true                       # --proxy / --no-proxy: false is a registrar only
    stateless = false                    # --stateless: RFC 3261 §16.11, no transactions
    hook = "routes.py"                   # --routes: a Python routing hook, route(request, ctx)
    record_route = true                  # --record-route / --no-record-route
    forking = "q"                        # --forking: by q-value groups, or "parallel"
    timer_c = 185.0                      # seconds, more than 3 minutes (§16.6 step 11)
    max_branches = 16                    # targets one request is forked to
    max_redirects = 0                    # 3xx Contacts recursed on; 0: 3xx go upstream
    trusted = ["192.0.2.10"]             # --trusted: sources neither challenged nor refused
    reveal_unknown_users = true          # 404 for an unknown user to a caller of its domain
    location_cache_ttl = 1.0             # seconds a look-up is reused with a shared store or
                                         # workers > 1; exact with SQLite and 1 worker; 0: off

    [[routes]]                           # static routes (sipwire.proxy.routes): by prefix
    name = "pstn"                        # of the Request-URI user or by domain, to gateways
    prefixes = ["+49"]
    gateways = ["sip:gw1.carrier.net", "sip:gw2.carrier.net"]

    [default]                            # the route of what is neither ours nor routed;
    gateways = ["sip:upstream.example"]  # omit it to follow the Request-URI (RFC 3263)

    [limits]                             # admission (sipwire.transaction.admission)
    max_transactions = 200000            # --max-transactions; default sized from RAM
    max_pending_bytes = 67108864         # --max-pending-bytes
    source_rate_limit = 50.0             # --source-rate-limit: new requests/s per address
    retry_after = 5                      # --retry-after: seconds in every 503

The Digest realm of a domain is the domain itself (one realm per domain):
users are stored by domain with HA1 over ``name:domain:password``, so a
realm other than the domain would invalidate every stored HA1. The nonce
secret is not configured: it lives in the store (``LocationStore.secret``),
shared by exactly the nodes that share the nonce counts it protects.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from sipwire.aio.listen import ListenSpec, parse_listen
from sipwire.auth.ha1 import BASE_ALGORITHMS
from sipwire.proxy.policy import TIMER_C_MINIMUM
from sipwire.proxy.routes import StaticRoute
from sipwire.registrar.policy import RegistrarPolicy, host_key

__all__ = [
    "DEFAULT_HTTP",
    "DEFAULT_LISTEN",
    "LOG_LEVELS",
    "ConfigError",
    "ServerConfig",
    "default_domains",
    "load_config_file",
    "parse_http",
    "resolve_config",
]

DEFAULT_LISTEN: Final = (
    ListenSpec("udp", "127.0.0.1", 5060),
    ListenSpec("tcp", "127.0.0.1", 5060),
    ListenSpec("tls", "127.0.0.1", 5061),
    ListenSpec("ws", "127.0.0.1", 8088),
)
DEFAULT_HTTP: Final = ("127.0.0.1", 9090)
LOG_LEVELS: Final = ("warning", "info", "debug")
DATABASE_NAME: Final = "sipwire.db"


class ConfigError(ValueError):
    """A configuration that cannot be right: one line saying what and where."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything ``sipwire serve`` needs to know (see the module docstring for the file)."""

    listen: tuple[ListenSpec, ...] = DEFAULT_LISTEN
    """SIP listeners; port 0 picks a free one (tests)."""
    data: Path = Path("data")
    """Data directory: the SQLite store (unless ``store``) and the generated certificate."""
    store: str | None = None
    """Store URL (``sqlite:...``, ``redis://...``, ``postgresql://...``); None: the SQLite
    file in ``data``."""
    domains: tuple[str, ...] = ()
    """Domains served; empty: ``localhost`` and every address listened on."""
    http: tuple[str, int] | None = DEFAULT_HTTP
    """Address of /metrics and /health; None: no HTTP."""
    cert: Path | None = None
    """TLS certificate (PEM) for tls/wss listeners; None: self-signed, made in ``data``."""
    key: Path | None = None
    """Its private key (PEM, unencrypted)."""
    log_level: str = "warning"
    node: str | None = None
    """This node's name in the bindings it takes (flows are only usable on it); None:
    the host name and a boot id."""
    user_agent: str = "sipwire"
    min_expires: int = 60
    max_expires: int = 7200
    default_expires: int = 3600
    max_contacts: int = 20
    third_party: bool = False
    service_route: tuple[str, ...] = ()
    max_in_flight: int = 1000
    """REGISTERs being processed at once (waiting for the store); beyond it 503."""
    store_timeout: float = 2.0
    """Seconds one REGISTER may spend waiting for the store; then 503."""
    nonce_lifetime: float = 300.0
    algorithms: tuple[str, ...] = ("SHA-256", "MD5")
    """Digest algorithms offered, most preferred first (RFC 8760 §2.3)."""
    max_transactions: int | None = None
    max_pending_bytes: int | None = None
    source_rate_limit: float | None = None
    retry_after: int = 5
    proxy: bool = True
    """Run the proxy role: requests not for the registrar are forwarded (False: 501)."""
    stateless: bool = False
    """A stateless proxy (RFC 3261 §16.11) rather than a stateful, forking one."""
    routes_hook: Path | None = None
    """A Python file defining ``route(request, ctx)`` (``--routes``)."""
    record_route: bool = True
    forking: str = "q"
    timer_c: float = 185.0
    max_branches: int = 16
    max_redirects: int = 0
    trusted: tuple[str, ...] = ()
    reveal_unknown_users: bool = True
    location_cache_ttl: float = 1.0
    """Seconds the proxy reuses an AOR's bindings read from a shared store (Redis,
    PostgreSQL) or with ``workers`` > 1, where other processes change them too. With
    SQLite and one worker the cache follows the registrar's writes and is exact
    whatever this is (above 0). 0 turns the cache off (``sipwire.server.location``)."""
    routes: tuple[StaticRoute, ...] = ()
    """The ``[[routes]]`` of the file."""
    default_route: StaticRoute | None = None
    """The ``[default]`` route of the file."""
    workers: int = 1
    """Processes serving the same listeners and store (``server.workers``); more than
    one needs fixed ports (no port 0) and no ws/wss listener."""
    worker: int = field(default=0, compare=False)
    """This process's index among ``workers`` (set by the parent process)."""
    channel: tuple[int, ...] = field(default=(), compare=False)
    """The ports of every worker's channel socket (set by the parent process)."""
    channel_fd: int = field(default=-1, compare=False)
    """This worker's channel socket, made by the parent (set by the parent process)."""
    sources: tuple[str, ...] = field(default=(), compare=False)
    """Where the settings came from (the file, if any), for messages."""

    @property
    def store_url(self) -> str:
        """The store's URL: ``store``, or the SQLite file in the data directory."""
        if self.store:
            return self.store
        # A plain path: open_store takes it as a SQLite file whatever characters it has.
        return str(self.data / DATABASE_NAME)

    @property
    def default_store(self) -> bool:
        """True when the store is the SQLite file of the data directory."""
        return not self.store

    def policy(self, domains: Iterable[str]) -> RegistrarPolicy:
        """The registrar policy for ``domains`` (the configured or the default ones)."""
        try:
            return RegistrarPolicy(
                domains=frozenset(domains),
                min_expires=self.min_expires,
                max_expires=self.max_expires,
                default_expires=self.default_expires,
                max_contacts=self.max_contacts,
                allow_third_party=self.third_party,
                service_route=self.service_route,
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def check(self) -> ServerConfig:
        """Raise ConfigError for values that cannot work together; return self."""
        if not self.listen:
            raise ConfigError("no listen address")
        if self.log_level not in LOG_LEVELS:
            raise ConfigError(f"log_level must be one of {', '.join(LOG_LEVELS)}")
        if (self.cert is None) != (self.key is None):
            raise ConfigError("tls cert and key go together: give both or neither")
        for name in ("max_in_flight", "max_contacts", "retry_after"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1")
        for name in ("store_timeout", "nonce_lifetime"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive")
        if self.workers < 1:
            raise ConfigError("workers must be at least 1")
        if self.workers > 1:
            for spec in self.listen:
                if spec.port == 0:
                    raise ConfigError("--workers needs fixed ports: no listen port 0")
                if spec.transport in ("ws", "wss"):
                    raise ConfigError("--workers: ws and wss listeners are not shared yet")
        if self.stateless and not self.proxy:
            raise ConfigError("stateless is a mode of the proxy: it cannot be disabled too")
        if self.forking not in ("q", "parallel"):
            raise ConfigError("forking must be q or parallel")
        if self.timer_c <= TIMER_C_MINIMUM:
            raise ConfigError("timer_c must be more than 180 seconds (RFC 3261 §16.6)")
        if self.location_cache_ttl < 0:
            raise ConfigError("location_cache_ttl cannot be negative (0 turns the cache off)")
        if self.max_branches < 1 or self.max_redirects < 0:
            raise ConfigError("max_branches must be at least 1, max_redirects at least 0")
        if not self.algorithms:
            raise ConfigError("algorithms: offer at least one digest algorithm")
        for name in self.algorithms:
            if name not in BASE_ALGORITHMS:
                raise ConfigError(
                    f"unknown digest algorithm {name!r} (one of {', '.join(BASE_ALGORITHMS)})"
                )
        if self.source_rate_limit is not None and self.source_rate_limit <= 0:
            raise ConfigError("source_rate_limit must be positive")
        for name in ("max_transactions", "max_pending_bytes"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be at least 1")
        self.policy(self.domains or ("localhost",))  # expiry bounds, Service-Route syntax
        return self


def default_domains(hosts: Iterable[str]) -> tuple[str, ...]:
    """``localhost`` and ``hosts`` (the addresses listened on), without repeats."""
    found: dict[str, None] = {"localhost": None}
    for host in hosts:
        found.setdefault(host_key(host.strip("[]")), None)
    return tuple(found)


def parse_http(text: str) -> tuple[str, int] | None:
    """``HOST:PORT`` (``[::1]:9090`` for IPv6) or ``off``; ValueError otherwise."""
    text = text.strip()
    if text.lower() in ("off", "none", "no", ""):
        return None
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise ValueError(f"expected [HOST]:PORT, got {text!r}")
        port_text = rest[1:]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            raise ValueError(f"expected HOST:PORT or off, got {text!r}")
    if not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"expected HOST:PORT or off, got {text!r}")
    return host, int(port_text)


# -- the file ---------------------------------------------------------------------------


def _string(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("a string")
    return value


def _strings(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError("a list of strings")
    return tuple(value)


def _integer(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("an integer")
    return value


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("a number")
    return float(value)


def _boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError("true or false")
    return value


def _listens(value: object) -> tuple[ListenSpec, ...]:
    return tuple(parse_listen(text) for text in _strings(value))


def _http(value: object) -> tuple[str, int] | None:
    if value is False:
        return None
    return parse_http(_string(value))


def _level(value: object) -> str:
    level = _string(value).lower()
    if level not in LOG_LEVELS:
        raise ValueError(f"one of {', '.join(LOG_LEVELS)}")
    return level


def _routes(value: object) -> tuple[StaticRoute, ...]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise TypeError("an array of tables ([[routes]])")
    return tuple(
        StaticRoute.from_mapping(item, default_name=f"route{i + 1}") for i, item in enumerate(value)
    )


def _route(value: object) -> StaticRoute:
    if not isinstance(value, dict):
        raise TypeError("a table ([default])")
    return StaticRoute.from_mapping(value, default_name="default")


_PATHS: Final = frozenset({"data", "cert", "key", "routes_hook"})
_TABLES: Final = frozenset({"default"})
"""Tables of the file that are one setting, not a section of settings."""

_SETTINGS: Final[Mapping[str, Mapping[str, tuple[str, Callable[[object], object]]]]] = {
    "": {
        "domains": ("domains", _strings),
        "listen": ("listen", _listens),
        "data": ("data", _string),
        "store": ("store", _string),
        "http": ("http", _http),
        "log_level": ("log_level", _level),
        "node": ("node", _string),
        "user_agent": ("user_agent", _string),
        "workers": ("workers", _integer),
        "routes": ("routes", _routes),
        "default": ("default_route", _route),
    },
    "tls": {
        "cert": ("cert", _string),
        "key": ("key", _string),
    },
    "registrar": {
        "min_expires": ("min_expires", _integer),
        "max_expires": ("max_expires", _integer),
        "default_expires": ("default_expires", _integer),
        "max_contacts": ("max_contacts", _integer),
        "third_party": ("third_party", _boolean),
        "service_route": ("service_route", _strings),
        "max_in_flight": ("max_in_flight", _integer),
        "store_timeout": ("store_timeout", _number),
        "nonce_lifetime": ("nonce_lifetime", _number),
        "algorithms": ("algorithms", _strings),
    },
    "proxy": {
        "enabled": ("proxy", _boolean),
        "stateless": ("stateless", _boolean),
        "hook": ("routes_hook", _string),
        "record_route": ("record_route", _boolean),
        "forking": ("forking", _string),
        "timer_c": ("timer_c", _number),
        "max_branches": ("max_branches", _integer),
        "max_redirects": ("max_redirects", _integer),
        "trusted": ("trusted", _strings),
        "reveal_unknown_users": ("reveal_unknown_users", _boolean),
        "location_cache_ttl": ("location_cache_ttl", _number),
    },
    "limits": {
        "max_transactions": ("max_transactions", _integer),
        "max_pending_bytes": ("max_pending_bytes", _integer),
        "source_rate_limit": ("source_rate_limit", _number),
        "retry_after": ("retry_after", _integer),
    },
}


def load_config_file(path: Path) -> dict[str, Any]:
    """The settings of a TOML file as ServerConfig field values (only those it sets).

    Raises ConfigError naming the file and the key for a file that cannot be
    read or parsed, an unknown key, or a value of the wrong kind.
    """
    try:
        with path.open("rb") as file:
            document = tomllib.load(file)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    base = path.parent
    values: dict[str, Any] = {}
    for key, value in document.items():
        if isinstance(value, dict) and key not in _TABLES:
            section = _SETTINGS.get(key)
            if section is None or key == "":
                raise ConfigError(f"config file {path}: unknown section [{key}]")
            items = [(f"{key}.{name}", section.get(name), v) for name, v in value.items()]
        else:
            items = [(key, _SETTINGS[""].get(key), value)]
        for where, setting, raw in items:
            if setting is None:
                raise ConfigError(f"config file {path}: unknown setting {where}")
            name, convert = setting
            try:
                converted = convert(raw)
            except TypeError as exc:
                raise ConfigError(f"config file {path}: {where} must be {exc}") from None
            except ValueError as exc:
                raise ConfigError(f"config file {path}: {where}: {exc}") from None
            if name in _PATHS:
                converted = base / Path(str(converted)).expanduser()
            values[name] = converted
    return values


def resolve_config(file: Path | None, overrides: Mapping[str, Any]) -> ServerConfig:
    """Defaults, then ``file``'s settings, then ``overrides`` (flags; None values are
    "not given"). Raises ConfigError for a bad file, an unknown name or a bad value."""
    values: dict[str, Any] = {}
    sources: tuple[str, ...] = ()
    if file is not None:
        values.update(load_config_file(file))
        sources = (str(file),)
    known = {f.name for f in dataclasses.fields(ServerConfig)}
    for name, value in overrides.items():
        if name not in known:
            raise ConfigError(f"unknown setting {name}")
        if name == "http" and isinstance(value, str):
            try:
                values[name] = parse_http(value)  # "off" gives None: no HTTP
            except ValueError as exc:
                raise ConfigError(f"--http: {exc}") from None
            continue
        if value is None or (isinstance(value, tuple) and not value):
            continue
        values[name] = value
    for name in _PATHS:
        if name in values and not isinstance(values[name], Path):
            values[name] = Path(values[name])
    return ServerConfig(**values, sources=sources).check()
