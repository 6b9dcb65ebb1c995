"""The Via header (RFC 3261 §20.42, §18.2.1; RFC 3581 rport)::

via-parm      = sent-protocol LWS sent-by *( SEMI via-params )
sent-protocol = protocol-name SLASH protocol-version SLASH transport
via-params    = via-ttl / via-maddr / via-received / via-branch / via-extension
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
    parse_digits,
    parse_params,
    split_plain_params,
    split_values,
)

__all__ = ["MAGIC_COOKIE", "Via", "parse_via_list"]

MAGIC_COOKIE: Final = "z9hG4bK"
"""Branch prefix that marks an RFC 3261 branch (§8.1.1.7)."""

_VIA_RE = grammar.VIA_RE
# The usual form in one match: "SIP/2.0/UDP host:port;branch=z9hG4bK..;rport".
_VIA_FAST_RE: Final = re.compile(
    rf"SIP/2\.0/([{grammar.TOKEN_CHARS}]+) ({grammar.HOST})(?::([0-9]{{1,5}}))?{PLAIN_PARAMS}"
)
MAX_PORT: Final = 65535
MAX_TTL: Final = 255
"""via-ttl = "ttl" EQUAL ttl; ttl = 1*3DIGIT ; 0 to 255 (§25.1)."""


def _check_numbers(params: Params) -> None:
    """Range-check the numeric Via parameters that hold digits.

    ``rport`` is a port (RFC 3581 §3) and ``ttl`` at most 255 (§20.42):
    digits beyond either are a ParseError (400) when the Via is parsed, so
    that routing a response never meets them. Values that are not digits
    at all read as None through the properties, as before.
    """
    for name, maximum in (("rport", MAX_PORT), ("ttl", MAX_TTL)):
        value = params.get(name)
        if value and value.isascii() and value.isdigit():
            parse_digits(value, f"Via {name}", maximum)


@dataclass(slots=True)
class Via:
    """One Via value: ``SIP/2.0/UDP host:port;branch=...``."""

    transport: str
    """UDP, TCP, TLS, SCTP, WS, WSS or any token, upper-cased."""
    host: str
    """sent-by host; IPv6 references keep their brackets."""
    port: int | None = None
    params: Params = field(default_factory=dict)
    protocol: str = "SIP/2.0"
    """protocol-name/protocol-version, normally ``SIP/2.0``."""

    @classmethod
    def parse(cls, text: str) -> Via:
        """Parse a single via-parm (no commas)."""
        fast = _VIA_FAST_RE.fullmatch(text)
        if fast is not None:
            transport, host, port, params_text = fast.groups()
            if params_text:
                fast_params = split_plain_params(params_text)
                if fast_params.get("branch", "x") == "":
                    raise ParseError(f"empty Via branch: {text!r}")
                _check_numbers(fast_params)
            else:
                fast_params = {}
            if port is None:
                return cls(transport.upper(), host, None, fast_params)
            fast_port = parse_digits(port, "Via port", MAX_PORT)
            return cls(transport.upper(), host, fast_port, fast_params)
        m = _VIA_RE.match(text)
        if m is None:
            raise ParseError(f"malformed Via: {text!r}")
        name, version, transport, host, port = m.groups()
        port_number = None if port is None else parse_digits(port, "Via port", MAX_PORT)
        rest = text[m.end() :]
        params = parse_params(rest, "Via parameter") if rest else {}
        if "branch" in params and not params["branch"]:
            raise ParseError(f"empty Via branch: {text!r}")
        _check_numbers(params)
        protocol = "SIP/2.0" if name == "SIP" and version == "2.0" else f"{name}/{version}"
        return cls(transport.upper(), host, port_number, params, protocol)

    @property
    def branch(self) -> str | None:
        """The branch parameter; RFC 3261 branches start with ``z9hG4bK``."""
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        """The ``received`` parameter a server adds (§18.2.1)."""
        return self.params.get("received")

    @property
    def rport(self) -> int | None:
        """The ``rport`` value filled in by the server (RFC 3581), else None.

        ParseError when it holds digits beyond 65535 (a parsed Via never does).
        """
        return int_param(self.params.get("rport"), "Via rport", MAX_PORT, clamp=False)

    @property
    def wants_rport(self) -> bool:
        """True when the client asked for symmetric response routing (``;rport``)."""
        return "rport" in self.params

    @property
    def maddr(self) -> str | None:
        return self.params.get("maddr")

    @property
    def ttl(self) -> int | None:
        """The multicast ``ttl`` (§20.42), 0 to 255; ParseError beyond."""
        return int_param(self.params.get("ttl"), "Via ttl", MAX_TTL, clamp=False)

    @property
    def sent_by(self) -> tuple[str, int | None]:
        return self.host, self.port

    @property
    def is_rfc3261_branch(self) -> bool:
        branch = self.branch
        return branch is not None and branch.startswith(MAGIC_COOKIE)

    def __str__(self) -> str:
        sent_by = self.host if self.port is None else f"{self.host}:{self.port}"
        return f"{self.protocol}/{self.transport} {sent_by}{format_params(self.params)}"


def parse_via_list(values: list[str]) -> list[Via]:
    """Parse every Via line of a message, each split at its commas."""
    out: list[Via] = []
    for value in values:
        if "," in value:
            out.extend(Via.parse(part) for part in split_values(value, "Via"))
        else:
            out.append(Via.parse(value))
    return out
