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
            else:
                fast_params = {}
            if port is None:
                return cls(transport.upper(), host, None, fast_params)
            fast_port = int(port)
            if fast_port > 65535:
                raise ParseError(f"Via port out of range: {text!r}")
            return cls(transport.upper(), host, fast_port, fast_params)
        m = _VIA_RE.match(text)
        if m is None:
            raise ParseError(f"malformed Via: {text!r}")
        name, version, transport, host, port = m.groups()
        port_number = None
        if port is not None:
            port_number = int(port)
            if port_number > 65535:
                raise ParseError(f"Via port out of range: {text!r}")
        rest = text[m.end() :]
        params = parse_params(rest, "Via parameter") if rest else {}
        if "branch" in params and not params["branch"]:
            raise ParseError(f"empty Via branch: {text!r}")
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
        """The ``rport`` value filled in by the server (RFC 3581), else None."""
        return int_param(self.params.get("rport"))

    @property
    def wants_rport(self) -> bool:
        """True when the client asked for symmetric response routing (``;rport``)."""
        return "rport" in self.params

    @property
    def maddr(self) -> str | None:
        return self.params.get("maddr")

    @property
    def ttl(self) -> int | None:
        return int_param(self.params.get("ttl"))

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
