"""Command-line values checked before any network traffic (click callbacks and types).

A value that cannot be right is a usage error (exit 2, one line): a target
that is not a SIP URI, ``--dtmf 12X``, a listen address that does not parse.
"""

from __future__ import annotations

import ipaddress
import re

import click

from sipwire.aio.listen import ListenSpec, parse_listen
from sipwire.errors import SipError
from sipwire.message import Address, SipUri, parse_uri

__all__ = [
    "DTMF_DIGITS",
    "MAX_EXPIRES",
    "ListenType",
    "check_address",
    "check_aor",
    "check_content_type",
    "check_dtmf",
    "check_headers",
    "check_proxy",
    "check_target",
    "check_user",
    "sip_target",
    "with_transport",
]

DTMF_DIGITS = "0123456789*#ABCD"
MAX_EXPIRES = 2**32 - 1
"""The largest Expires value (RFC 3261 §20.19)."""

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$")
_CONTENT_TYPE = re.compile(rf"^{_TOKEN}/{_TOKEN}\s*(;.*)?$")
_HEADER_NAME = re.compile(rf"^{_TOKEN}$")
_USER = re.compile(r"^[A-Za-z0-9\-_.!~*'()&=+$,;?/%]+$")


def _looks_like_host(text: str) -> bool:
    """``example.com``, ``127.0.0.1:5080``, ``[::1]``, ``localhost``: a host, not a user."""
    match = _HOST.match(text)
    if match is None:
        return False
    host, port = match.group(1), match.group(2)
    if port or host.startswith("[") or "." in host or host.lower() == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def sip_target(text: str, *, schemes: tuple[str, ...] = ("sip", "sips", "tel")) -> str:
    """``text`` as a URI: ``bob@host`` and ``host[:port]`` get ``sip:`` in front.

    A bare word (``bob``) is refused: it is a user without a host, and sending
    it to DNS as a host name would only fail later and less clearly.
    """
    text = text.strip()
    scheme = text.partition(":")[0].lower()
    if scheme in ("sip", "sips", "tel"):
        if scheme not in schemes:
            raise click.UsageError(f"{text!r} is not a SIP URI (sip: or sips:)")
        try:
            parse_uri(text)
        except SipError as exc:
            raise click.UsageError(f"{text!r} is not a SIP URI: {exc.reason}") from None
        return text
    if "@" in text or _looks_like_host(text):
        try:
            parse_uri(f"sip:{text}")
        except SipError:
            pass
        else:
            return f"sip:{text}"
    user = text.partition("@")[0] or "user"
    raise click.UsageError(f"{text!r} is not a SIP URI (try sip:{user}@host)")


def with_transport(text: str, transport: str | None) -> str:
    """``text`` with ``;transport=`` added when ``transport`` is given and it names none.

    ``text`` is a URI or a name-addr (``<sip:proxy;lr>``); the result is of the same kind.
    """
    if transport is None:
        return text
    if text.startswith(("<", '"')):
        address = Address.parse(text)
        if isinstance(address.uri, SipUri) and address.uri.transport is None:
            address.uri.params["transport"] = transport
        return str(address)
    uri = parse_uri(text)
    if not isinstance(uri, SipUri) or uri.transport is not None:
        return text
    uri.params["transport"] = transport
    return str(uri)


def check_target(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Callback: a target URI (``sip:``, ``sips:`` or ``tel:``)."""
    return None if value is None else sip_target(value)


def check_aor(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Callback: an address of record, a ``sip:`` or ``sips:`` URI."""
    return None if value is None else sip_target(value, schemes=("sip", "sips"))


def check_address(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Callback: ``--from``: a SIP URI, or a name-addr (``"Alice" <sip:alice@host>``)."""
    if value is None:
        return None
    if not value.startswith(("<", '"')):
        return sip_target(value, schemes=("sip", "sips"))
    try:
        address = Address.parse(value)
    except SipError as exc:
        raise click.BadParameter(f"{value!r}: {exc.reason}") from None
    if not isinstance(address.uri, SipUri):
        raise click.BadParameter(f"{value!r} is not a SIP address")
    return value


def check_proxy(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Callback: ``--proxy``: a SIP URI (its parameters, ``;lr`` included, stay in
    the URI) or a name-addr; returned as a name-addr."""
    if value is None:
        return None
    if value.startswith(("<", '"')):
        return check_address(ctx, param, value)
    return f"<{sip_target(value, schemes=('sip', 'sips'))}>"


def check_dtmf(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Callback: ``--dtmf``: digits 0-9, *, # and A-D (a-d accepted)."""
    if value is None:
        return None
    bad = [c for c in value if c.upper() not in DTMF_DIGITS]
    if not value or bad:
        shown = ", ".join(repr(c) for c in dict.fromkeys(bad)) or "nothing"
        raise click.BadParameter(f"{value!r} has {shown}; DTMF digits are 0-9, *, # and A-D")
    return value


def check_headers(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> list[tuple[str, str]]:
    """Callback: repeated ``--header 'NAME: VALUE'``."""
    headers: list[tuple[str, str]] = []
    for text in value:
        name, sep, content = text.partition(":")
        name = name.strip()
        if not sep or not _HEADER_NAME.match(name):
            raise click.BadParameter(f"expected NAME: VALUE, got {text!r}")
        if "\r" in content or "\n" in content:
            raise click.BadParameter(f"a header value is one line: {text!r}")
        headers.append((name, content.strip()))
    return headers


def check_content_type(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """Callback: ``--content-type``: ``type/subtype[;parameters]``."""
    if not _CONTENT_TYPE.match(value):
        raise click.BadParameter(f"expected TYPE/SUBTYPE[;PARAMETERS], got {value!r}")
    return value


def check_user(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """Callback: the user part of a SIP URI (RFC 3261 §25.1 ``user``)."""
    if not _USER.match(value):
        raise click.BadParameter(f"{value!r} is not a SIP user name")
    return value


class ListenType(click.ParamType):
    """``TRANSPORT:HOST:PORT`` (``udp:127.0.0.1:5080``, ``tls:[::1]:5061``)."""

    name = "TRANSPORT:HOST:PORT"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> ListenSpec:
        if isinstance(value, ListenSpec):
            return value
        try:
            return parse_listen(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
