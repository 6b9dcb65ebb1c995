"""WWW-Authenticate, Proxy-Authenticate, Authorization, Proxy-Authorization.

RFC 3261 §25.1 and RFC 7616/8760::

    challenge   = ("Digest" LWS digest-cln *(COMMA digest-cln)) / other-challenge
    credentials = ("Digest" LWS digest-response) / other-response
    auth-param  = auth-param-name EQUAL ( token / quoted-string )

One header line normally carries one challenge; a line that lists several
(``Digest a=1, Basic b=2``) is split where a new scheme starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from sipwire.errors import ParseError
from sipwire.message import grammar
from sipwire.message.params import quote_if_needed, unquote

__all__ = ["Challenge", "Credentials", "parse_challenges"]

_SCHEME_RE: Final = re.compile(rf"[ \t]*({grammar.TOKEN})(?:[ \t]+|$)")
_AUTH_PARAM_RE: Final = re.compile(
    rf"[ \t]*({grammar.TOKEN})[ \t]*=[ \t]*({grammar.QUOTED_STRING}|[^,\s\"]+)[ \t]*(,|$)"
)
# token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_TOKEN68_RE: Final = re.compile(r"([A-Za-z0-9\-._~+/]+=*)[ \t]*(?:,|$)")
# Parameters whose values are sent unquoted by convention (RFC 7616 §3.4).
_UNQUOTED: Final = frozenset({"algorithm", "nc", "qop", "stale"})


@dataclass(slots=True)
class Challenge:
    """An authentication scheme with its parameters (values unquoted).

    Used for both directions: a challenge (``WWW-Authenticate``) and a
    response (``Authorization``), see :data:`Credentials`.
    """

    scheme: str
    params: dict[str, str] = field(default_factory=dict)
    """auth-params, names lower-cased, quoted values unquoted."""

    @classmethod
    def parse(cls, text: str) -> Challenge:
        challenges = parse_challenges([text])
        if len(challenges) != 1:
            raise ParseError(f"expected one authentication challenge: {text!r}")
        return challenges[0]

    @property
    def is_digest(self) -> bool:
        return self.scheme.lower() == "digest"

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")

    @property
    def nonce(self) -> str | None:
        return self.params.get("nonce")

    @property
    def algorithm(self) -> str:
        """The algorithm parameter; MD5 when absent (RFC 7616 §3.3)."""
        return self.params.get("algorithm", "MD5")

    @property
    def qop_options(self) -> list[str]:
        """The qop values offered, e.g. ``["auth", "auth-int"]``."""
        value = self.params.get("qop")
        return [q.strip() for q in value.split(",") if q.strip()] if value else []

    @property
    def stale(self) -> bool:
        return self.params.get("stale", "").lower() == "true"

    def __str__(self) -> str:
        if list(self.params) == ["token68"]:
            return f"{self.scheme} {self.params['token68']}"
        parts = []
        for name, value in self.params.items():
            if name in _UNQUOTED and name != "qop":
                parts.append(f"{name}={quote_if_needed(value)}")
            elif name == "qop" and "," not in value:
                # A challenge quotes its qop list; a response names one qop unquoted.
                parts.append(
                    f"qop={value}"
                    if value in ("auth", "auth-int") and "response" in self.params
                    else f'qop="{value}"'
                )
            else:
                parts.append(f'{name}="{_escape(value)}"')
        return f"{self.scheme} {', '.join(parts)}" if parts else self.scheme


Credentials = Challenge
"""Authorization / Proxy-Authorization values share the Challenge shape."""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def parse_challenges(values: list[str]) -> list[Challenge]:
    """Parse every line of an authentication header into challenges/credentials."""
    out: list[Challenge] = []
    for text in values:
        pos, end = 0, len(text)
        current: Challenge | None = None
        while pos < end:
            param = _AUTH_PARAM_RE.match(text, pos)
            if current is not None and param is not None:
                current.params[param.group(1).lower()] = unquote(param.group(2))
                pos = param.end()
                continue
            scheme = _SCHEME_RE.match(text, pos)
            if scheme is None:
                raise ParseError(f"malformed authentication header: {text!r}")
            current = Challenge(scheme.group(1))
            out.append(current)
            pos = scheme.end()
            # Other schemes may carry a token68 blob (RFC 7235 §2.1) instead of parameters.
            blob = _TOKEN68_RE.match(text, pos)
            if blob is not None:
                current.params["token68"] = blob.group(1)
                pos = blob.end()
            elif pos < end and _AUTH_PARAM_RE.match(text, pos) is None:
                raise ParseError(f"malformed authentication header: {text!r}")
        if current is None:
            raise ParseError(f"empty authentication header: {text!r}")
    return out
