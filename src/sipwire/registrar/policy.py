"""What a registrar accepts: its domains, expiry bounds, limits and options (RFC 3261 §10.3).

One frozen :class:`RegistrarPolicy` describes a registrar; the rules in
``rules.py`` and the digest decision in ``authenticate.py`` read it and
never change it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Final

from sipwire.errors import ParseError
from sipwire.message.address import parse_address
from sipwire.message.uri import SipUri

__all__ = ["ONE_HOUR", "RegistrarPolicy", "host_key"]

ONE_HOUR: Final = 3600
"""§10.3 step 7: a 423 is only allowed for requested intervals below one hour."""


def host_key(host: str) -> str:
    """The comparison form of a host: lower case, IPv6 references compressed (§19.1.4)."""
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            return "[" + ipaddress.IPv6Address(text[1:-1]).compressed + "]"
        except ValueError:
            return text.lower()
    return text.lower()


@dataclass(frozen=True, slots=True)
class RegistrarPolicy:
    """How a registrar treats REGISTER requests (RFC 3261 §10.3; RFC 3327, 3608, 5626).

    ``RegistrarPolicy(domains={"example.com"})`` serves one domain with the
    defaults below. Every interval is in seconds.
    """

    domains: AbstractSet[str] = field(default_factory=frozenset)
    """Domains (host names or addresses) whose bindings this registrar keeps (§10.3:
    "A registrar has to know ... the set of domain(s) for which it maintains
    bindings"). The Request-URI host (step 1) and the To host (step 5) must be
    one of them, else 404. Compared case-insensitively; any iterable is accepted."""
    min_expires: int = 60
    """Shortest interval accepted: a shorter one (above 0, below one hour) gets 423
    Interval Too Brief with Min-Expires (§10.3 step 7). 0 turns the check off."""
    max_expires: int = 7200
    """Longest interval granted: a longer request is silently shortened to it (§10.3
    step 7: "The registrar MAY choose an expiration less than the requested")."""
    default_expires: int = 3600
    """Interval requested on behalf of a Contact without ``expires`` in a request
    without Expires (§10.3 step 7: "a locally-configured default value")."""
    max_contacts: int = 20
    """Most bindings one AOR may hold. A REGISTER that would add one beyond it gets
    403 Forbidden: a limit of this registrar that no retry, later or elsewhere,
    lifts (§21.4.4: "the request SHOULD NOT be repeated"). 503 would announce a
    temporary overload (§21.5.4) and send clients to another node (RFC 3263),
    which enforces the same limit."""
    require_auth: bool = True
    """Authenticate every REGISTER with Digest (§10.3 step 3, §22)."""
    allow_third_party: bool = False
    """Let one user register bindings for another's AOR (§10.3 step 4). Off: the
    user part of the To AOR must be the authenticated user, else 403."""
    service_route: tuple[str, ...] = ()
    """Service-Route values returned in every 200 (RFC 3608 §6.3), in order; each
    a name-addr with a SIP URI carrying ``;lr``."""
    path_requires_support: bool = True
    """A REGISTER with Path from a UA without ``Supported: path`` gets 420 Bad
    Extension (the policy RFC 3327 §5.3 recommends, which shows the UA that a proxy
    inserted Path). Off: the Path is stored anyway, but not echoed."""
    extensions: AbstractSet[str] = frozenset({"path", "outbound"})
    """Option tags a Require may name (§10.3 step 2, §8.2.2.3); others get 420."""

    def __post_init__(self) -> None:
        domains: object = self.domains
        if isinstance(domains, str):  # a common slip: {"example.com"} was meant
            raise TypeError("domains must be a set of host names, not one string")
        object.__setattr__(self, "domains", frozenset(host_key(d) for d in self.domains))
        object.__setattr__(self, "service_route", tuple(self.service_route))
        object.__setattr__(self, "extensions", frozenset(self.extensions))
        if not 0 <= self.min_expires <= self.default_expires <= self.max_expires:
            raise ValueError(
                "need 0 <= min_expires <= default_expires <= max_expires, got "
                f"{self.min_expires}, {self.default_expires}, {self.max_expires}"
            )
        if self.max_contacts < 1:
            raise ValueError(f"max_contacts must be at least 1: {self.max_contacts}")
        for value in self.service_route:
            _check_route(value)

    def serves(self, host: str) -> bool:
        """True when ``host`` is one of :attr:`domains`."""
        return host_key(host) in self.domains

    def realm_for(self, domain: str) -> str:
        """The Digest realm of ``domain``: one realm per domain, the domain itself
        in lower case (§22.1: a realm is "globally unique"; the domain is)."""
        return host_key(domain)


def _check_route(value: str) -> None:
    """RFC 3608 §6.3: a Service-Route element has the syntax of a Route element with ``;lr``."""
    try:
        address = parse_address(value, what="Service-Route")
    except ParseError as exc:
        raise ValueError(f"malformed Service-Route value {value!r}: {exc.reason}") from None
    if not isinstance(address.uri, SipUri) or not address.uri.lr:
        raise ValueError(f"Service-Route value needs a SIP URI with ;lr: {value!r}")
