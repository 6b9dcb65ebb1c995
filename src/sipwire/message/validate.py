"""Map a broken or unacceptable message to the RFC's answer.

A server runs ``check_request`` on every parsed request before handing it
to a transaction user. The checks follow RFC 3261 §8.2 (UAS), §16.3
(proxy) and §10.3 (registrar); what a role supports is described by a
:class:`Policy`. A request that failed to parse gets
:func:`rejection_for_error`, a datagram or stream message that is too big
:func:`check_size`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from sipwire.errors import ParseError
from sipwire.message.fields import MediaType
from sipwire.message.message import Request, Response
from sipwire.message.uri import SipUri

__all__ = [
    "KNOWN_METHODS",
    "Policy",
    "Rejection",
    "Role",
    "check_request",
    "check_response",
    "check_size",
    "rejection_for_error",
    "validate_request",
]

KNOWN_METHODS: Final = frozenset(
    {
        "ACK",
        "BYE",
        "CANCEL",
        "INFO",
        "INVITE",
        "MESSAGE",
        "NOTIFY",
        "OPTIONS",
        "PRACK",
        "PUBLISH",
        "REFER",
        "REGISTER",
        "SUBSCRIBE",
        "UPDATE",
    }
)
"""Methods defined by RFC 3261 and its extensions: unsupported ones get 405, others 501."""

# Requests that carry a Contact whose syntax matters to the receiver.
_CONTACT_METHODS: Final = frozenset(
    {
        "INVITE",
        "REGISTER",
        "SUBSCRIBE",
        "NOTIFY",
        "REFER",
        "UPDATE",
    }
)
# Requests whose Require a UAS must not reject (§8.2.2.3).
_NO_REQUIRE_CHECK: Final = frozenset({"ACK", "CANCEL"})
# Requests a UAS answers with an SDP body (checked against Accept, §8.2.3 / RFC 4475 sdp01).
_SDP_ANSWERED: Final = frozenset({"INVITE"})
_SDP: Final = MediaType("application", "sdp")


class Role(enum.Enum):
    """The kind of element that checks the request; the checks differ (§8.2, §16.3)."""

    UAS = "uas"
    UAC = "uac"
    PROXY = "proxy"
    REGISTRAR = "registrar"


_DEFAULT_METHODS: Final[dict[Role, frozenset[str] | None]] = {
    Role.UAS: frozenset({"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS"}),
    Role.UAC: frozenset({"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS"}),
    Role.REGISTRAR: frozenset({"REGISTER", "OPTIONS"}),
    Role.PROXY: None,
}


@dataclass(frozen=True, slots=True)
class Policy:
    """What an element accepts. The defaults describe a basic RFC 3261 UAS."""

    role: Role = Role.UAS
    methods: frozenset[str] | None = None
    """Methods the element implements; ``None`` means the role's default: a UAS
    implements INVITE, ACK, BYE, CANCEL and OPTIONS, a registrar REGISTER and
    OPTIONS, a proxy forwards any method."""
    schemes: frozenset[str] = frozenset({"sip", "sips", "tel"})
    """Request-URI schemes the element serves; others get 416."""
    extensions: frozenset[str] = frozenset()
    """Option tags the element supports (Require / Proxy-Require); others get 420."""
    accept: tuple[str, ...] = ("application/sdp",)
    """Body types a UAS understands; others get 415 with Accept. Empty accepts any."""
    max_size: int = 65536
    """Largest message, in bytes; larger ones get 513."""
    max_body: int | None = None
    """Largest body, in bytes, if smaller than ``max_size``; larger bodies get 413."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """The response a check decided on: status, reason and headers to add."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...] = ()

    def response(self, request: Request, *, to_tag: str | None = None) -> Response:
        """Build the response to ``request`` (§8.2.6)."""
        response = request.reply(self.status, headers=list(self.headers), to_tag=to_tag)
        if self.status == 400 and self.reason:
            response.reason = f"Bad Request - {_phrase_safe(self.reason)}"
        return response


def _phrase_safe(text: str) -> str:
    """A reason that can go into a Reason-Phrase: one line, bounded length."""
    flat = "".join(c if c.isprintable() else " " for c in text)
    return flat[:120]


def rejection_for_error(error: ParseError) -> Rejection:
    """The answer to a request that raised ``error`` while parsing (400, 505, 513 ...)."""
    return Rejection(error.status, error.reason)


def check_size(size: int, policy: Policy | None = None) -> Rejection | None:
    """513 Message Too Large for a message above the policy's ``max_size`` (§18.1.1)."""
    limit = (policy or Policy()).max_size
    if size > limit:
        return Rejection(513, f"message of {size} bytes exceeds {limit}")
    return None


def check_request(request: Request, policy: Policy | None = None) -> Rejection | None:
    """Run the RFC's request checks for ``policy.role``; ``None`` means go ahead.

    Order: version (505), method (405/501), CSeq method (400), Request-URI
    (400/416), Max-Forwards at a proxy (483), Require / Proxy-Require (420),
    Contact syntax (400), body size and type (413/415), Accept (406),
    registrar To (400).
    """
    policy = policy or Policy()
    if request.version != "SIP/2.0":
        return Rejection(505, f"{request.version} is not supported")
    method = request.method
    methods = policy.methods if policy.methods is not None else _DEFAULT_METHODS[policy.role]
    if methods is not None and method not in methods:
        allow = ", ".join(sorted(methods))
        status = 405 if method in KNOWN_METHODS else 501
        return Rejection(status, f"{method} not supported", (("Allow", allow),))
    try:
        return _check_parsed(request, policy)
    except ParseError as exc:
        return Rejection(400, exc.reason)


def _check_parsed(request: Request, policy: Policy) -> Rejection | None:
    method = request.method
    if request.cseq.method != method:
        return Rejection(400, "CSeq method does not match the request method")
    uri = request.uri
    if uri.scheme not in policy.schemes:
        return Rejection(416, f"URI scheme {uri.scheme} not supported")
    if isinstance(uri, SipUri) and uri.headers:
        return Rejection(400, "Request-URI must not contain headers")
    role = policy.role
    if role is Role.PROXY:
        # §16.3 item 2: never forward at Max-Forwards 0 (an OPTIONS may be answered
        # by the proxy itself; 483 is the answer in every case here).
        if request.max_forwards == 0:
            return Rejection(483, "Max-Forwards reached 0")
        unknown = [t for t in request.proxy_require if t not in policy.extensions]
        if unknown:
            return Rejection(420, "unsupported extension", (("Unsupported", ", ".join(unknown)),))
        return None
    if method not in _NO_REQUIRE_CHECK:
        unknown = [t for t in request.require if t not in policy.extensions]
        if unknown:
            return Rejection(420, "unsupported extension", (("Unsupported", ", ".join(unknown)),))
    if method in _CONTACT_METHODS:
        _ = request.contact  # raises ParseError on a malformed Contact
    if policy.max_body is not None and len(request.body) > policy.max_body:
        return Rejection(413, f"body of {len(request.body)} bytes exceeds {policy.max_body}")
    if role is Role.REGISTRAR:
        if method == "REGISTER" and not isinstance(request.to.uri, SipUri):
            return Rejection(400, "address-of-record must be a SIP or SIPS URI")
        return None
    content_type = request.content_type
    if (
        request.body
        and policy.accept
        and content_type is not None
        and content_type.mime not in policy.accept
        and method not in _NO_REQUIRE_CHECK
    ):
        return Rejection(
            415, f"{content_type.mime} not supported", (("Accept", ", ".join(policy.accept)),)
        )
    if method in _SDP_ANSWERED and "accept" in request.headers:
        accepted = request.accept
        if accepted and not any(a.matches(_SDP) for a in accepted):
            return Rejection(
                406,
                "no acceptable answer type",
                (
                    ("Accept", "application/sdp"),
                    ("Warning", '399 - "Accept header excludes application/sdp"'),
                ),
            )
    return None


def check_response(response: Response, *, role: Role = Role.UAC) -> str | None:
    """Why a received response must be dropped, or ``None`` to process it.

    A UAC discards responses with more than one Via (§8.1.3.3); a proxy
    discards responses whose next hop would be a broadcast address (RFC 4475
    bcast) or that carry no Via for it to remove.
    """
    vias = response.via
    if role is not Role.PROXY:
        if len(vias) != 1:
            return "response with more than one Via"
        return None
    if len(vias) < 2:
        return "response without a Via for the next hop"
    next_hop = vias[1].received or vias[1].host
    if next_hop == "255.255.255.255":
        return "next hop is the broadcast address"
    return None


def validate_request(request: Request, policy: Policy | None = None) -> int | None:
    """Shorthand for ``check_request``: the status code of the rejection, or None."""
    rejection = check_request(request, policy)
    return None if rejection is None else rejection.status
