"""SIP, SIPS, tel and absolute URIs (RFC 3261 §19.1, RFC 3966, RFC 3986).

Components are stored unescaped: ``sip:%75ser@example.com`` has the user
``user``. Serialising escapes again only what the grammar requires, so the
text of a URI may change in a round trip while its meaning (and equality
per §19.1.4) does not. Messages keep the original text of headers and of
the Request-URI until they are changed.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import quote as _pct_quote
from urllib.parse import unquote as _pct_unquote

from sipwire.errors import ParseError
from sipwire.message import grammar
from sipwire.message.params import parse_digits

__all__ = ["AbsoluteUri", "SipUri", "TelUri", "Uri", "parse_uri"]

# unreserved = alphanum / mark ; mark = - _ . ! ~ * ' ( )
_MARK: Final = "-_.!~*'()"
# user-unreserved = & = + $ , ; ? /
_USER_SAFE: Final = _MARK + "&=+$,;?/"
# password = *( unreserved / escaped / & = + $ , )
_PASSWORD_SAFE: Final = _MARK + "&=+$,"
# param-unreserved = [ ] / : & + $
_PARAM_SAFE: Final = _MARK + "[]/:&+$"
# hnv-unreserved = [ ] / ? : + $
_HEADER_SAFE: Final = _MARK + "[]/?:+$"

# Character classes of the user, password, uri-parameter and header parts;
# "%" stands for escaped = "%" HEXDIG HEXDIG, checked separately (_BAD_ESCAPE_RE).
_USERC: Final = r"A-Za-z0-9\-_.!~*'()&=+$,;?/%"
_PASSWORDC: Final = r"A-Za-z0-9\-_.!~*'()&=+$,%"
_PARAMC: Final = r"A-Za-z0-9\-_.!~*'()\[\]/:&+$%"
_HNVC: Final = r"A-Za-z0-9\-_.!~*'()\[\]/?:+$%"
_BAD_ESCAPE_RE: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")

# SIP-URI = "sip:" [ userinfo ] hostport uri-parameters [ headers ]   (after the scheme)
# userinfo = ( user / telephone-subscriber ) [ ":" password ] "@"
# uri-parameters = *( ";" uri-parameter ) ; headers = "?" header *( "&" header )
# Six groups: user, password, host, port, uri-parameters, headers. Other
# modules embed this pattern to parse a whole header in one match.
SIP_URI_BODY: Final = (
    rf"(?:([{_USERC}]+)(?::([{_PASSWORDC}]*))?@)?"
    rf"({grammar.HOST})(?::([0-9]{{1,5}}))?"
    rf"((?:;[{_PARAMC}]+(?:=[{_PARAMC}]+)?)*)"
    rf"(?:\?([{_HNVC}]+=[{_HNVC}]*(?:&[{_HNVC}]+=[{_HNVC}]*)*))?"
)
_SIP_URI_RE: Final = re.compile(SIP_URI_BODY)

# RFC 3966: global-number-digits = "+" *phonedigit DIGIT *phonedigit
# local-number-digits = *phonedigit-hex (HEXDIG / "*" / "#") *phonedigit-hex
_TEL_RE: Final = re.compile(
    r"(\+[0-9\-.()]*[0-9][0-9\-.()]*|[0-9A-Fa-f*#\-.()]*[0-9A-Fa-f*#][0-9A-Fa-f*#\-.()]*)"
    rf"((?:;[{_PARAMC}]+(?:=[{_PARAMC}]+)?)*)"
)
_VISUAL_SEPARATORS: Final = str.maketrans("", "", "-.()")
# Parameters that make two SIP URIs differ when only one of them has it (§19.1.4).
_SIGNIFICANT_PARAMS: Final = ("user", "ttl", "method", "maddr", "transport")


def unescape(text: str) -> str:
    """Decode %HH escapes once (RFC 3261 §19.1.2); bytes that are not UTF-8 survive."""
    return _pct_unquote(text, errors="surrogateescape") if "%" in text else text


def escape(text: str, safe: str) -> str:
    """Escape every character outside ``unreserved`` and ``safe`` as %HH of its UTF-8."""
    return _pct_quote(text, safe=safe, errors="surrogateescape")


def _parse_uri_params(text: str) -> dict[str, str | None]:
    params: dict[str, str | None] = {}
    if not text:
        return params
    escaped = "%" in text
    for item in text[1:].split(";"):
        name, eq, value = item.partition("=")
        if escaped:
            name, value = unescape(name), unescape(value)
        params[name.lower()] = value if eq else None
    return params


def _format_uri_params(params: dict[str, str | None]) -> str:
    return "".join(
        f";{escape(k, _PARAM_SAFE)}"
        if v is None
        else f";{escape(k, _PARAM_SAFE)}={escape(v, _PARAM_SAFE)}"
        for k, v in params.items()
    )


def _host_key(host: str) -> str:
    """The comparison form of a host: lower case, IPv6 references normalised."""
    if host.startswith("["):
        try:
            return "[" + ipaddress.IPv6Address(host[1:-1]).compressed + "]"
        except ValueError:
            pass
    return host.lower()


@dataclass(eq=False, slots=True)
class SipUri:
    """A ``sip:`` or ``sips:`` URI (RFC 3261 §19.1.1).

    Equality follows §19.1.4: scheme, user and password compare exactly
    (after unescaping), the host case-insensitively, an explicit port never
    equals an absent one, the ``user``, ``ttl``, ``method``, ``maddr`` and
    ``transport`` parameters must agree when either URI has them, other
    parameters only when both do, and URI headers must all match.
    """

    host: str
    """hostname, IPv4 address or bracketed IPv6 reference (``[2001:db8::1]``)."""
    user: str | None = None
    """the user part, unescaped (may contain ``;`` as in ``sip:user;par=x@host``)."""
    password: str | None = None
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    """uri-parameters, names lower-cased, values unescaped; ``None`` for ``;lr``."""
    headers: list[tuple[str, str]] = field(default_factory=list)
    """the ``?name=value&...`` header part, unescaped."""
    scheme: str = "sip"
    """``"sip"`` or ``"sips"``, lower case."""

    @classmethod
    def parse(cls, text: str) -> SipUri:
        """Parse ``text`` as a SIP or SIPS URI; raise ParseError otherwise."""
        uri = parse_uri(text)
        if not isinstance(uri, SipUri):
            raise ParseError(f"not a SIP URI: {text!r}", 416)
        return uri

    @property
    def secure(self) -> bool:
        """True for ``sips:``."""
        return self.scheme == "sips"

    @property
    def transport(self) -> str | None:
        """The ``transport`` parameter, lower-cased, if present."""
        value = self.params.get("transport")
        return value.lower() if value else None

    @property
    def maddr(self) -> str | None:
        return self.params.get("maddr")

    @property
    def lr(self) -> bool:
        """True when the URI carries the loose-routing ``lr`` parameter."""
        return "lr" in self.params

    @property
    def host_port(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def __str__(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(escape(self.user, _USER_SAFE))
            if self.password is not None:
                out += (":", escape(self.password, _PASSWORD_SAFE))
            out.append("@")
        out.append(self.host if self.port is None else f"{self.host}:{self.port}")
        if self.params:
            out.append(_format_uri_params(self.params))
        if self.headers:
            out.append("?")
            out.append(
                "&".join(
                    f"{escape(n, _HEADER_SAFE)}={escape(v, _HEADER_SAFE)}" for n, v in self.headers
                )
            )
        return "".join(out)

    def __repr__(self) -> str:
        return f"SipUri({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SipUri):
            return NotImplemented
        if (
            self.scheme != other.scheme
            or self.user != other.user
            or self.password != other.password
            or self.port != other.port
            or _host_key(self.host) != _host_key(other.host)
        ):
            return False
        mine = {k: (v.lower() if v else v) for k, v in self.params.items()}
        theirs = {k: (v.lower() if v else v) for k, v in other.params.items()}
        for name in mine.keys() | theirs.keys():
            if name in mine and name in theirs:
                if mine[name] != theirs[name]:
                    return False
            elif name in _SIGNIFICANT_PARAMS:
                return False
        return sorted((n.lower(), v) for n, v in self.headers) == sorted(
            (n.lower(), v) for n, v in other.headers
        )

    def __hash__(self) -> int:
        significant = tuple(
            (self.params.get(p) or "").lower() if p in self.params else None
            for p in _SIGNIFICANT_PARAMS
        )
        return hash((self.scheme, self.user, self.port, _host_key(self.host), significant))


@dataclass(eq=False, slots=True)
class TelUri:
    """A ``tel:`` URI (RFC 3966): a global (``+1-201-555-0123``) or local number."""

    number: str
    """the telephone-subscriber digits as written, visual separators included."""
    params: dict[str, str | None] = field(default_factory=dict)

    scheme = "tel"

    @property
    def is_global(self) -> bool:
        return self.number.startswith("+")

    @property
    def digits(self) -> str:
        """The number without visual separators (``-``, ``.``, ``(``, ``)``)."""
        return self.number.translate(_VISUAL_SEPARATORS)

    def __str__(self) -> str:
        return f"tel:{self.number}{_format_uri_params(self.params)}"

    def __repr__(self) -> str:
        return f"TelUri({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        # RFC 3966 §4: separators ignored, parameters as a set, case-insensitively.
        if not isinstance(other, TelUri):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple[str, frozenset[tuple[str, str | None]]]:
        params = frozenset((k, v.lower() if v else v) for k, v in self.params.items())
        return self.digits.lower(), params


@dataclass(eq=False, slots=True)
class AbsoluteUri:
    """A URI of any other scheme (``http:``, ``urn:``, ``isbn:`` ...), kept opaque."""

    scheme: str
    """lower-cased scheme."""
    opaque: str
    """everything after the first colon, exactly as written."""

    def __str__(self) -> str:
        return f"{self.scheme}:{self.opaque}"

    def __repr__(self) -> str:
        return f"AbsoluteUri({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AbsoluteUri):
            return NotImplemented
        return self.scheme == other.scheme and self.opaque == other.opaque

    def __hash__(self) -> int:
        return hash((self.scheme, self.opaque))


Uri = SipUri | TelUri | AbsoluteUri
_WHITESPACE_RE: Final = re.compile(r"[\s<>\"]")


def sip_uri_from_groups(
    scheme: str,
    user: str | None,
    password: str | None,
    host: str,
    port: str | None,
    params: str,
    headers: str | None,
) -> SipUri:
    """Build a SipUri from the six groups of ``SIP_URI_BODY``; checks escapes and the port."""
    if user is not None and "%" in user:
        if _BAD_ESCAPE_RE.search(user):
            raise ParseError(f"malformed %-escape in URI user: {user!r}")
        user = unescape(user)
    if password is not None and "%" in password:
        if _BAD_ESCAPE_RE.search(password):
            raise ParseError("malformed %-escape in URI password")
        password = unescape(password)
    port_number = None if port is None else parse_digits(port, "URI port", 65535)
    header_list: list[tuple[str, str]] = []
    if headers:
        if "%" in headers and _BAD_ESCAPE_RE.search(headers):
            raise ParseError(f"malformed %-escape in URI headers: {headers!r}")
        for item in headers.split("&"):
            hname, _, hvalue = item.partition("=")
            header_list.append((unescape(hname), unescape(hvalue)))
    if params:
        if "%" in params and _BAD_ESCAPE_RE.search(params):
            raise ParseError(f"malformed %-escape in URI parameters: {params!r}")
        params_dict = _parse_uri_params(params)
    else:
        params_dict = {}
    return SipUri(host, user, password, port_number, params_dict, header_list, scheme)


def parse_uri(text: str) -> Uri:
    """Parse a URI: SIP/SIPS (§19.1), tel (RFC 3966) or any other scheme as AbsoluteUri."""
    colon = text.find(":")
    if colon <= 0:
        raise ParseError(f"URI without a scheme: {text!r}")
    scheme = text[:colon].lower()
    rest = text[colon + 1 :]
    if scheme == "sip" or scheme == "sips":
        m = _SIP_URI_RE.fullmatch(rest)
        if m is None:
            raise ParseError(f"malformed {scheme.upper()} URI: {text!r}")
        return sip_uri_from_groups(scheme, *m.groups())
    if grammar.SCHEME_RE.fullmatch(scheme) is None:
        raise ParseError(f"malformed URI scheme: {text!r}")
    if scheme == "tel":
        m = _TEL_RE.fullmatch(rest)
        if m is None or ("%" in rest and _BAD_ESCAPE_RE.search(rest)):
            raise ParseError(f"malformed tel URI: {text!r}")
        return TelUri(m.group(1), _parse_uri_params(m.group(2)))
    if not rest or _WHITESPACE_RE.search(rest):
        raise ParseError(f"malformed URI: {text!r}")
    return AbsoluteUri(scheme, rest)


def to_uri(value: Uri | str) -> Uri:
    """Accept a URI object or its text; builders use this for convenience."""
    return parse_uri(value) if isinstance(value, str) else value
