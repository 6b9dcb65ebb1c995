"""What the backends share: the JSON form of a binding and of a user's HA1s, a
change made ready to write, and URL helpers.

Every backend stores a binding as one compact JSON object (every field but
``aor``, which is the key it is stored under; fields equal to their default
are left out), next to the columns or sorted-set scores it is looked up by.
So a field added to :class:`~sipwire.registrar.model.Binding` needs no
schema migration, and a reader ignores fields it does not know (a newer node
may have written them during a rolling upgrade).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sipwire.registrar.model import Binding, BindingChange

__all__ = [
    "decode_binding",
    "decode_ha1",
    "encode_binding",
    "encode_ha1",
    "latest_upserts",
    "pop_query",
    "redact",
]

_KNOWN = frozenset(f.name for f in dataclasses.fields(Binding)) - {"aor"}
_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False)
_decode = json.JSONDecoder().decode


def encode_binding(binding: Binding) -> str:
    """The binding as compact JSON, without ``aor`` and without fields left at their default."""
    b = binding
    data: dict[str, Any] = {
        "key": b.key,
        "contact": b.contact,
        "expires_at": b.expires_at,
        "call_id": b.call_id,
        "cseq": b.cseq,
    }
    if b.q is not None:
        data["q"] = b.q
    if b.path:
        data["path"] = b.path
    if b.instance_id is not None:
        data["instance_id"] = b.instance_id
    if b.reg_id is not None:
        data["reg_id"] = b.reg_id
    if b.transport != "udp":
        data["transport"] = b.transport
    if b.source:
        data["source"] = b.source
    if b.local:
        data["local"] = b.local
    if b.node:
        data["node"] = b.node
    if b.flow is not None:
        data["flow"] = b.flow
    if b.user_agent:
        data["user_agent"] = b.user_agent
    if b.registered_at:
        data["registered_at"] = b.registered_at
    return _encoder.encode(data)


def decode_binding(aor: str, text: str | bytes) -> Binding:
    """The binding :func:`encode_binding` wrote for ``aor``."""
    data: dict[str, Any] = _decode(text if isinstance(text, str) else text.decode())
    path = data.get("path")
    if path is not None:
        data["path"] = tuple(path)
    try:
        return Binding(aor=aor, **data)
    except TypeError:
        # Written by a newer version with fields this one does not know.
        return Binding(aor=aor, **{k: v for k, v in data.items() if k in _KNOWN})


def latest_upserts(aor: str, change: BindingChange) -> list[Binding]:
    """The upserts of ``change``, one per key (the last one wins), checked to belong to ``aor``.

    Raises ValueError for a binding of another AOR: the store keys bindings by
    the ``aor`` argument, so a mismatch is a bug in the caller.
    """
    latest: dict[str, Binding] = {}
    for binding in change.upsert:
        if binding.aor != aor:
            raise ValueError(f"binding of {binding.aor!r} applied to {aor!r}")
        latest.pop(binding.key, None)
        latest[binding.key] = binding
    return list(latest.values())


def encode_ha1(ha1: dict[str, str]) -> str:
    """A user's HA1s (algorithm → hex) as compact JSON."""
    return _encoder.encode(ha1)


def decode_ha1(text: str | bytes) -> dict[str, str]:
    value = _decode(text if isinstance(text, str) else text.decode())
    if not isinstance(value, dict):
        raise ValueError("stored HA1 set is not a JSON object")
    return {str(k): str(v) for k, v in value.items()}


def pop_query(url: str, names: Iterable[str]) -> tuple[str, dict[str, str]]:
    """Remove the query parameters ``names`` from ``url``; return the URL and their values.

    The backends take a few options of their own in the URL (``prefix`` for
    Redis, ``schema`` for PostgreSQL) that their client libraries would reject.
    """
    wanted = set(names)
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    taken = {k: v for k, v in query if k in wanted}
    kept = [(k, v) for k, v in query if k not in wanted]
    return urlunsplit(parts._replace(query=urlencode(kept))), taken


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for logs and ``LocationStore.url``)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
