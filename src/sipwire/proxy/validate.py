"""Request validation before proxying (RFC 3261 §16.3).

"Before an element can proxy a request, it MUST verify the message's
validity": :func:`check` runs the checks and returns the answer of the
first one that fails, or None (loop detection, the costliest, runs last):

1. reasonable syntax: whatever this proxy reads (From, To, Call-ID, CSeq,
   Via, Route, Max-Forwards, Proxy-Require) must parse: else 400;
2. URI scheme: sip, sips or tel, else 416;
3. Max-Forwards: 0 means "MUST NOT forward"; an OPTIONS at 0 "MAY" be
   answered by the proxy itself (§11: 200 with Allow), anything else gets
   483 (Too Many Hops);
4. loop detection with the branch of §16.6 step 8 (``branch.is_loop``):
   482 (Loop Detected) for a loop, nothing for a spiral;
5. Proxy-Require naming an option tag we do not understand: 420 with
   Unsupported.

Item 6 (Proxy-Authorization) is the authentication of ``authz.py``, which
needs the routing decision first. A merged request is not an error for a
proxy (§16.3: it "MUST NOT treat merged requests as an error condition").
"""

from __future__ import annotations

import functools
from collections.abc import Set as AbstractSet

from sipwire.errors import ParseError
from sipwire.message import Request
from sipwire.message.validate import Policy, Rejection, Role, check_request
from sipwire.proxy.branch import is_loop
from sipwire.proxy.policy import ProxyPolicy

__all__ = ["check", "options_answer", "our_vias"]


@functools.lru_cache(maxsize=8)
def _message_policy(extensions: AbstractSet[str]) -> Policy:
    """The message layer's checks of a proxy supporting ``extensions`` (made once)."""
    return Policy(role=Role.PROXY, extensions=frozenset(extensions))


def our_vias(request: Request, policy: ProxyPolicy) -> list[int]:
    """Indexes of the Via values this proxy inserted (by their sent-by)."""
    return [i for i, via in enumerate(request.via) if policy.sent_by_us(via)]


def options_answer(policy: ProxyPolicy) -> Rejection:
    """The 200 to an OPTIONS this proxy answers itself (§11.2): Allow, Accept, Supported."""
    headers = [("Allow", ", ".join(policy.allow)), ("Accept", "application/sdp")]
    if policy.extensions:
        headers.append(("Supported", ", ".join(sorted(policy.extensions))))
    return Rejection(200, "OK", tuple(headers))


def check(request: Request, policy: ProxyPolicy, *, loops: bool = True) -> Rejection | None:
    """§16.3 items 1 to 5 (see the module docstring); None: the request may be proxied.

    The answer is a :class:`~sipwire.message.validate.Rejection`; for an
    OPTIONS at Max-Forwards 0 it is a 200 (:func:`options_answer`), the one
    case where passing the checks is not the point. ``loops=False`` skips
    loop detection (an ACK is never answered).
    """
    try:
        # Item 1: what the proxy reads must parse.
        request.from_  # noqa: B018
        request.to  # noqa: B018
        request.route  # noqa: B018
        if not request.via:
            return Rejection(400, "missing Via header")
        mf = request.max_forwards
    except ParseError as exc:
        return Rejection(400, exc.reason)
    if mf == 0 and request.method == "OPTIONS":
        # Item 3: "If the request was for OPTIONS, the element MAY act as the final
        # recipient and respond per Section 11."
        return options_answer(policy)
    # Items 1, 2, 3 and 5 as the message layer checks them for a proxy: version (505),
    # CSeq (400), scheme (416), URI headers (400), Max-Forwards 0 (483), Proxy-Require
    # (420 with Unsupported).
    rejection = check_request(request, _message_policy(policy.extensions))
    if rejection is not None:
        return rejection
    if loops:
        try:
            looped = is_loop(request, our_vias(request, policy))
        except ParseError as exc:
            return Rejection(400, exc.reason)
        if looped:
            # Item 4: "If a loop is detected, the element MAY return a 482."
            return Rejection(482, "Loop Detected")
    return None
