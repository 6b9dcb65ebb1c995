"""Location service and user storage for the registrar and proxy (see ``base.py``).

``open_store(url)`` returns an unopened :class:`LocationStore` for a URL: a
path or ``sqlite:///path/to/file.db`` (the default, embedded), ``redis://``
or ``postgresql://`` (several nodes sharing state). The backends are
imported only when asked for, so ``import sipwire.store`` needs neither
redis-py nor asyncpg (the extras ``sipwire[redis]`` and ``sipwire[postgres]``).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urlsplit

from sipwire.store.base import Binding, BindingChange, LocationStore, StoreUnavailable, User

__all__ = ["Binding", "BindingChange", "LocationStore", "StoreUnavailable", "User", "open_store"]

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")
_KNOWN = ("sqlite", "redis", "rediss", "postgres", "postgresql")


def open_store(url: str) -> LocationStore:
    """The store a URL names, not yet opened (``await store.open()`` connects).

    - ``/var/lib/sipwire/registrar.db``, ``registrar.db``: SQLite, that file;
    - ``sqlite:///abs/path.db`` (three slashes: absolute), ``sqlite:relative.db``,
      ``sqlite::memory:``; option ``?synchronous=FULL``;
    - ``redis://host:port/db``, ``rediss://...`` (TLS); option ``?prefix=...``;
    - ``postgresql://user@host:port/db``, ``postgres://...``; option ``?schema=...``.

    Raises ValueError for any other scheme, and ImportError naming the extra
    to install when redis-py or asyncpg is missing.
    """
    url = url.strip()
    if not url:
        raise ValueError("empty store URL")
    scheme = ""
    match = _SCHEME.match(url)
    # "name:x.db" with no "//" after an unknown scheme is a file name, like "a:b.db".
    if match and (match.group(1).lower() in _KNOWN or url[match.end() :].startswith("//")):
        scheme = match.group(1).lower()
    if not scheme:
        from sipwire.store.sqlite import SqliteStore

        return SqliteStore(url)
    if scheme == "sqlite":
        return _sqlite(url)
    if scheme in ("redis", "rediss"):
        try:
            from sipwire.store.redis import RedisStore
        except ImportError as exc:
            raise _missing("redis", "redis", exc) from exc
        return RedisStore(url)
    if scheme in ("postgres", "postgresql"):
        try:
            from sipwire.store.postgres import PostgresStore
        except ImportError as exc:
            raise _missing("postgres", "asyncpg", exc) from exc
        return PostgresStore(url)
    raise ValueError(
        f"store URL {url.split('@')[-1]!r}: unknown scheme {scheme!r} "
        "(use a file path, sqlite:, redis://, rediss://, postgresql:// or postgres://)"
    )


def _sqlite(url: str) -> LocationStore:
    from sipwire.store.sqlite import SqliteStore

    parts = urlsplit(url)
    if parts.netloc:
        raise ValueError(
            f"store URL {url!r}: write sqlite:///absolute/path.db or sqlite:relative/path.db"
        )
    path = unquote(parts.path)
    if path.startswith("//"):  # sqlite:////abs.db, as SQLAlchemy writes it
        path = path[1:]
    if not path:
        raise ValueError(f"store URL {url!r}: no file name")
    options = dict(parse_qsl(parts.query))
    unknown = set(options) - {"synchronous"}
    if unknown:
        raise ValueError(f"store URL {url!r}: unknown option(s) {', '.join(sorted(unknown))}")
    return SqliteStore(path, synchronous=options.get("synchronous", "NORMAL"))


def _missing(extra: str, module: str, exc: ImportError) -> ImportError:
    return ImportError(
        f"this store needs the Python package {module!r}: pip install 'sipwire[{extra}]' ({exc})"
    )
