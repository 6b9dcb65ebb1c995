"""Choosing the best final response of a response context (RFC 3261 §16.7 steps 6, 7)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from sipwire.message import Request, Response
from sipwire.registrar.rules import derived_to_tag

__all__ = ["choose_best"]

# §16.7 step 6: within the 4xx class, "preference to responses that provide information
# affecting resubmission of this request, such as 401, 407, 415, 420, and 484".
_PREFERRED: Final = (407, 401, 415, 420, 484)
_CHALLENGES: Final = ("www-authenticate", "proxy-authenticate")


def choose_best(responses: Sequence[Response], request: Request, *, cancelled: bool) -> Response:
    """§16.7 step 6 over the final responses kept (our Via already removed).

    None at all: 408. Else a 6xx if any; else the lowest class, preferring
    407, 401, 415, 420 and 484 among 4xx; a 5xx other than 503 when there is
    one, and a 503 turned into 500 otherwise ("If the only response that was
    received is a 503, the proxy SHOULD generate a 500"). A cancelled
    request gets 487 unless a 6xx came. A chosen 401 or 407 carries the
    WWW-Authenticate and Proxy-Authenticate values of every other 401 and 407
    too (step 7).
    """
    six = [r for r in responses if r.status >= 600]
    if six:
        best = six[0]
    elif cancelled:
        best = next(
            (r for r in responses if r.status == 487),
            None,
        ) or request.reply(487, to_tag=derived_to_tag(request))
    elif not responses:
        return request.reply(408, to_tag=derived_to_tag(request))
    else:
        lowest = min(r.status // 100 for r in responses)
        klass = [r for r in responses if r.status // 100 == lowest]
        best = next((r for s in _PREFERRED for r in klass if r.status == s), klass[0])
        if lowest == 5 and best.status == 503:
            others = [r for r in klass if r.status != 503]
            if others:
                best = others[0]
            else:
                best.status = 500
                best.reason = "Server Internal Error - downstream unavailable"
    if best.status in (401, 407):
        for other in responses:
            if other is best or other.status not in (401, 407):
                continue
            for key, name, value in other.headers._items:
                if key in _CHALLENGES:
                    best.headers.add(name, value)
    return best
