"""name-addr / addr-spec headers: From, To, Contact, Route, Record-Route, Refer-To ...

RFC 3261 §20.10 and §25.1::

    name-addr    = [ display-name ] LAQUOT addr-spec RAQUOT
    display-name = *(token LWS) / quoted-string
    from-spec    = ( name-addr / addr-spec ) *( SEMI from-param )

Parameters after the URI belong to the header (``tag``, ``q``,
``expires``); parameters inside ``<...>`` belong to the URI. A bare
addr-spec therefore cannot carry URI parameters or headers (RFC 4475
cparam01, regbadct).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from sipwire.errors import ParseError
from sipwire.message import grammar
from sipwire.message.params import (
    PLAIN_PARAMS,
    Params,
    format_params,
    int_param,
    parse_params,
    quote,
    split_plain_params,
    split_values,
)
from sipwire.message.uri import SIP_URI_BODY, Uri, parse_uri, sip_uri_from_groups

__all__ = [
    "Address",
    "is_wildcard_contact",
    "parse_address",
    "parse_address_list",
    "parse_contact_list",
]

_QUOTED_PAIR_RE: Final = re.compile(r"\\(.)", re.S)
# name-addr with a quoted or token display name, then header parameters.
# A run of token characters and blanks is exactly *(token LWS) once stripped.
_NAME_ADDR_RE: Final = re.compile(
    rf'(?:"([^"\\]*(?:\\.[^"\\]*)*)"|([{grammar.TOKEN_CHARS} \t]*))'
    r"[ \t]*<([^<>]*)>(.*)",
    re.S,
)
_BARE_FORBIDDEN: Final = re.compile(r"[\s?,<>\"]")
# Fast paths, one match for the whole header: a name-addr holding a SIP URI,
# and a bare SIP addr-spec (whose user part cannot hold ";", "?" or ",").
_SIP_NAME_ADDR_RE: Final = re.compile(
    rf'(?:"([^"\\]*(?:\\.[^"\\]*)*)"|([{grammar.TOKEN_CHARS} \t]*))'
    rf"[ \t]*<([Ss][Ii][Pp][Ss]?):{SIP_URI_BODY}>{PLAIN_PARAMS}",
    re.S,
)
_SIP_BARE_RE: Final = re.compile(
    r"([Ss][Ii][Pp][Ss]?):(?:([A-Za-z0-9\-_.!~*'()&=+$/%]+)(?::([A-Za-z0-9\-_.!~*'()&=+$%]*))?@)?"
    rf"({grammar.HOST})(?::([0-9]{{1,5}}))?{PLAIN_PARAMS}"
)


@dataclass(slots=True)
class Address:
    """A URI with an optional display name and header parameters.

    ``Address.parse('"Bob" <sip:bob@example.com>;tag=a6c85cf')``;
    ``str()`` always writes the name-addr form with angle brackets.
    """

    uri: Uri
    display_name: str | None = None
    """the display name, unquoted; ``None`` when absent."""
    params: Params = field(default_factory=dict)
    """header parameters (``tag``, ``q``, ``expires`` ...), names lower-cased."""

    @classmethod
    def parse(cls, text: str) -> Address:
        return parse_address(text)

    @classmethod
    def of(cls, value: Address | Uri | str) -> Address:
        """An Address from an Address, a URI object or a URI/name-addr text."""
        if isinstance(value, Address):
            return value
        if isinstance(value, str):
            return parse_address(value)
        return cls(value)

    @property
    def tag(self) -> str | None:
        """The ``tag`` parameter of From/To (§19.3)."""
        return self.params.get("tag")

    @property
    def q(self) -> float | None:
        """The Contact ``q`` preference (0 to 1), if present and well formed."""
        value = self.params.get("q")
        if value is None:
            return None
        try:
            q = float(value)
        except ValueError:
            return None
        return q if 0.0 <= q <= 1.0 else None

    @property
    def expires(self) -> int | None:
        """The Contact ``expires`` parameter in seconds, capped at 2**32-1."""
        return int_param(self.params.get("expires"), "Contact expires")

    def with_tag(self, tag: str) -> Address:
        """A copy with the ``tag`` parameter set."""
        return Address(self.uri, self.display_name, {**self.params, "tag": tag})

    def __str__(self) -> str:
        out = f"<{self.uri}>{format_params(self.params)}"
        if self.display_name is None:
            return out
        return f"{quote(self.display_name)} {out}"


def parse_address(text: str, *, what: str = "address") -> Address:
    """Parse one name-addr or addr-spec with its header parameters."""
    text = text.strip()
    m = _SIP_NAME_ADDR_RE.fullmatch(text)
    if m is not None:
        quoted, token_name, scheme, user, password, host, port, uparams, uheaders, hparams = (
            m.groups()
        )
        uri = sip_uri_from_groups(scheme.lower(), user, password, host, port, uparams, uheaders)
        if quoted is not None:
            display: str | None = _QUOTED_PAIR_RE.sub(r"\1", quoted) if "\\" in quoted else quoted
        else:
            display = token_name.rstrip(" \t") or None
        return Address(uri, display, split_plain_params(hparams) if hparams else {})
    m = _SIP_BARE_RE.fullmatch(text)
    if m is not None:
        scheme, user, password, host, port, hparams = m.groups()
        uri = sip_uri_from_groups(scheme.lower(), user, password, host, port, "", None)
        return Address(uri, None, split_plain_params(hparams) if hparams else {})
    if "<" in text:
        m = _NAME_ADDR_RE.fullmatch(text)
        if m is None:
            raise ParseError(f"malformed {what}: {text!r}")
        quoted, token_name, uri_text, rest = m.groups()
        if quoted is not None:
            display = _QUOTED_PAIR_RE.sub(r"\1", quoted) if "\\" in quoted else quoted
        else:
            display = token_name.rstrip(" \t") or None
        params = parse_params(rest.strip(), what) if rest else {}
        return Address(parse_uri(uri_text), display, params)
    # addr-spec: a bare URI; everything after the first ';' is a header parameter.
    uri_text, semi, rest = text.partition(";")
    uri_text = uri_text.rstrip(" \t")
    if not uri_text or _BARE_FORBIDDEN.search(uri_text):
        raise ParseError(f"malformed {what}: {text!r}")
    params = parse_params(semi + rest, what) if semi else {}
    return Address(parse_uri(uri_text), None, params)


def parse_address_list(values: list[str], what: str = "address") -> list[Address]:
    """Parse header lines holding comma-separated name-addrs (Route, Record-Route ...)."""
    out: list[Address] = []
    for value in values:
        for element in split_values(value, what):
            out.append(parse_address(element, what=what))
    return out


def parse_contact_list(values: list[str]) -> list[Address]:
    """Parse Contact lines; the wildcard ``*`` yields an empty list (see ``is_wildcard``)."""
    if any(v.strip() == "*" for v in values):
        if len(values) != 1:
            raise ParseError("Contact: * must be the only Contact value")
        return []
    return parse_address_list(values, "Contact")


def is_wildcard_contact(values: list[str]) -> bool:
    """True for ``Contact: *`` (§10.2.2 remove all bindings)."""
    return len(values) == 1 and values[0].strip() == "*"
