"""The header section of a message: ordered, duplicates kept, names case-insensitive.

Each header line is kept as written (name and value, after unfolding), so
unknown headers serialise byte-exact. Lookups go through a canonical key:
the lower-case long name, with the compact forms of RFC 3261 §7.3.3 and
later RFCs mapped to it (``v`` is ``via``, ``i`` is ``call-id`` ...).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from operator import itemgetter
from typing import Final, TypeVar

from sipwire.message.params import split_values

__all__ = ["COMPACT_FORMS", "Headers", "canonical_key"]

T = TypeVar("T")

# Compact forms: RFC 3261 §7.3.3 (c e f i k l m s t v), RFC 3265/6665 (o u),
# RFC 3515 (r), RFC 3892 (b), RFC 4028 (x), RFC 4474 (y n), RFC 3841 (a j d).
COMPACT_FORMS: Final[Mapping[str, str]] = {
    "a": "accept-contact",
    "b": "referred-by",
    "c": "content-type",
    "d": "request-disposition",
    "e": "content-encoding",
    "f": "from",
    "i": "call-id",
    "j": "reject-contact",
    "k": "supported",
    "l": "content-length",
    "m": "contact",
    "n": "identity-info",
    "o": "event",
    "r": "refer-to",
    "s": "subject",
    "t": "to",
    "u": "allow-events",
    "v": "via",
    "x": "session-expires",
    "y": "identity",
}

# How serialisers spell the names sipwire itself writes.
_DISPLAY_NAMES: Final[Mapping[str, str]] = {
    "call-id": "Call-ID",
    "cseq": "CSeq",
    "www-authenticate": "WWW-Authenticate",
    "rack": "RAck",
    "rseq": "RSeq",
    "mime-version": "MIME-Version",
    "sip-etag": "SIP-ETag",
    "sip-if-match": "SIP-If-Match",
}

_MISSING: Final = object()
_KEY_OF: Final = itemgetter(0)

_KEY_CACHE: dict[str, str] = {}
_KEY_CACHE_LIMIT: Final = 4096


def canonical_key(name: str) -> str:
    """The lookup key of a header name: lower case, compact form expanded."""
    key = _KEY_CACHE.get(name)
    if key is None:
        lowered = name.lower()
        key = COMPACT_FORMS.get(lowered, lowered)
        if len(_KEY_CACHE) < _KEY_CACHE_LIMIT:
            _KEY_CACHE[name] = key
    return key


def display_name(key: str) -> str:
    """The conventional spelling of a canonical key (``call-id`` -> ``Call-ID``)."""
    return _DISPLAY_NAMES.get(key) or "-".join(p.capitalize() for p in key.split("-"))


HeaderValue = object  # anything with a str() form: str, Via, Address, CSeq, int ...


class Headers:
    """Ordered header lines with case-insensitive, compact-form-aware lookup.

    ``Headers([("Via", "SIP/2.0/UDP h;branch=z9hG4bK1"), ("To", "<sip:b@h>")])``
    or ``Headers({"To": "<sip:b@h>"})``. Values given as objects (Via, Address,
    CSeq, int ...) are stored as their ``str()``.

    Typed views parsed from a header are cached here and dropped whenever a
    line with that name changes.
    """

    __slots__ = ("_cache", "_items")

    def __init__(
        self,
        items: Iterable[tuple[str, HeaderValue]] | Mapping[str, HeaderValue] | None = None,
    ) -> None:
        self._items: list[tuple[str, str, str]] = []
        """(canonical key, name as written, value) per header line."""
        self._cache: dict[str, object] = {}
        if items is not None:
            # (a list first: isinstance against the Mapping ABC is the slow check)
            pairs = (
                items
                if type(items) is list
                else items.items()
                if isinstance(items, Mapping)
                else items
            )
            self._items = [(canonical_key(name), name, str(value)) for name, value in pairs]

    @classmethod
    def _from_parsed(cls, items: list[tuple[str, str, str]]) -> Headers:
        headers = cls.__new__(cls)
        headers._items = items
        headers._cache = {}
        return headers

    # -- reading -----------------------------------------------------------
    def __iter__(self) -> Iterator[tuple[str, str]]:
        """Yield (name as written, value) per line, in order."""
        for _, name, value in self._items:
            yield name, value

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return canonical_key(name) in map(_KEY_OF, self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return [(k, v) for k, _, v in self._items] == [(k, v) for k, _, v in other._items]

    def __repr__(self) -> str:
        return f"Headers({list(self)!r})"

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of the first line named ``name`` (any spelling), else ``default``."""
        key = canonical_key(name)
        items = self._items
        if key not in map(_KEY_OF, items):
            return default
        for k, _, value in items:
            if k == key:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        """The values of every line named ``name``, in order (not split at commas)."""
        key = canonical_key(name)
        return [value for k, _, value in self._items if k == key]

    def values(self, name: str) -> list[str]:
        """Every list element of ``name``: all lines, each split at its separating commas."""
        out: list[str] = []
        for value in self.get_all(name):
            out.extend(split_values(value, name))
        return out

    def keys(self) -> list[str]:
        """Canonical keys of the lines, in order (duplicates kept)."""
        return [k for k, _, _ in self._items]

    def typed(self, name: str, parse: Callable[[list[str]], T]) -> T:
        """Parse every line of ``name`` with ``parse`` once and cache the result."""
        key = canonical_key(name)
        value = self._cache.get(key, _MISSING)
        if value is _MISSING:
            items = self._items
            values = [v for k, _, v in items if k == key] if key in map(_KEY_OF, items) else []
            value = self._cache[key] = parse(values)
        return value  # type: ignore[return-value]

    # -- writing -----------------------------------------------------------
    def add(self, name: str, value: HeaderValue) -> None:
        """Append a line after all others."""
        key = canonical_key(name)
        self._cache.pop(key, None)
        self._items.append((key, name, str(value)))

    def prepend(self, name: str, value: HeaderValue) -> None:
        """Insert a line before the first line of the same name (or at the top).

        This is how a proxy adds its Via and Record-Route (§16.6).
        """
        key = canonical_key(name)
        self._cache.pop(key, None)
        for i, (k, _, _) in enumerate(self._items):
            if k == key:
                self._items.insert(i, (key, name, str(value)))
                return
        self._items.insert(0, (key, name, str(value)))

    def set(self, name: str, value: HeaderValue) -> None:
        """Replace every line of ``name`` with one line, kept where the first one was."""
        key = canonical_key(name)
        self._cache.pop(key, None)
        line = (key, name, str(value))
        for i, (k, _, _) in enumerate(self._items):
            if k == key:
                self._items[i] = line
                self._items[i + 1 :] = [it for it in self._items[i + 1 :] if it[0] != key]
                return
        self._items.append(line)

    def setdefault(self, name: str, value: HeaderValue) -> str:
        """Add ``name`` if it is absent; return its (first) value."""
        existing = self.get(name)
        if existing is None:
            self.add(name, value)
            return str(value)
        return existing

    def remove(self, name: str) -> int:
        """Delete every line of ``name``; return how many there were."""
        key = canonical_key(name)
        self._cache.pop(key, None)
        before = len(self._items)
        self._items = [it for it in self._items if it[0] != key]
        return before - len(self._items)

    def pop_first_value(self, name: str) -> str | None:
        """Remove and return the first list element of ``name``.

        Works whether the element has a line of its own or shares one with
        others (``Via: a, b``); used to strip the top Via of a response.
        """
        key = canonical_key(name)
        for i, (k, n, value) in enumerate(self._items):
            if k == key:
                self._cache.pop(key, None)
                parts = split_values(value, name)
                if len(parts) == 1:
                    del self._items[i]
                else:
                    self._items[i] = (k, n, ", ".join(parts[1:]))
                return parts[0]
        return None

    def copy(self) -> Headers:
        return Headers._from_parsed(list(self._items))

    def lines(self) -> list[str]:
        """``Name: value`` per line, as serialised."""
        return [f"{name}: {value}" for _, name, value in self._items]
