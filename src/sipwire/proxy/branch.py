"""Request forwarding for one target (RFC 3261 §16.6 steps 1 to 10) and the branch.

The branch parameter (§16.6 step 8) has two parts, ``z9hG4bK<loop>.<unique>``:

``loop``
    A hash of what decides how this proxy routes the request, as it was
    received: the From tag, the Call-ID, the CSeq number, the Request-URI,
    the Route header values and the Via of the previous hop (its transport,
    sent-by and branch). A request that comes back to this proxy with all
    of these unchanged has looped; one that comes back with any of them
    changed (usually the Request-URI) is spiralling (§16.3 item 4).

    §16.6 step 8 names the To tag, Proxy-Require and Proxy-Authorization
    as well, but also says "CANCEL and ACK requests (for non-2xx responses)
    MUST have the same branch value as the corresponding request": a
    CANCEL carries no Proxy-Authorization, and the ACK of a non-2xx has the
    To tag of the response, which its INVITE had not. So those are left
    out; the stateless mode, where the CANCEL and that ACK are forwarded
    like any request, depends on it.

    When the request returns, its "topmost Via" of the first passage is the
    Via just below ours: :func:`is_loop` hashes with that one.

``unique``
    Stateful: a fresh token per branch (``IdSource``), so every client
    transaction is a new branch, also across spirals. Stateless (§16.11):
    a hash of the received branch (or, for an RFC 2543 request, of the top
    Via, tags, Call-ID, CSeq number and Request-URI), the same for every
    retransmission and for the CANCEL and non-2xx ACK of an INVITE.

The hash is BLAKE2s, written in hexadecimal (§16.6: "Base64 is not
permissible for a token").
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Final

from sipwire.dialog.ids import IdSource
from sipwire.message import MAGIC_COOKIE, Headers, Request, Response, SipUri, Uri, Via
from sipwire.message.message import SIP_VERSION
from sipwire.message.uri import to_uri
from sipwire.transaction.matching import is_rfc3261_branch

__all__ = [
    "DEFAULT_MAX_FORWARDS",
    "add_via",
    "build_cancel",
    "copy_request",
    "is_loop",
    "loop_hash",
    "loop_part",
    "prepare",
    "stateful_branch",
    "stateless_branch",
    "strict_route_fixup",
    "strip_top_via",
]

DEFAULT_MAX_FORWARDS: Final = 70
"""§16.6 step 3: the Max-Forwards a proxy adds when there is none "SHOULD be 70"."""
_SEPARATOR: Final = "."
_LOOP_LENGTH: Final = 16
# §19.1.1 Table 1: parameters and headers a Request-URI may not carry.
_NOT_IN_REQUEST_URI: Final = ("method",)


_URI_TEXTS_KEPT: Final = 4096
_uri_texts: dict[str, str] = {}
"""Request-URI as received -> ``str()`` of its parsed form (a pure function of the text)."""


def _uri_string(request: Request) -> str:
    """``str(request.uri)``, without formatting the URI again when it is still the one
    parsed from a text seen before (``_uri_text`` is dropped whenever the URI is set)."""
    text = request._uri_text
    if text is None:
        return str(request.uri)
    known = _uri_texts.get(text)
    if known is None:
        known = str(request.uri)
        if len(_uri_texts) >= _URI_TEXTS_KEPT:
            _uri_texts.clear()
        _uri_texts[text] = known
    return known


def _digest(*parts: str) -> str:
    text = "\x00".join(parts).encode("utf-8", "surrogateescape")
    return hashlib.blake2s(text, digest_size=_LOOP_LENGTH // 2).hexdigest()


def loop_hash(request: Request, previous: Via) -> str:
    """The loop-detection part of a branch (see the module docstring).

    ``previous`` is the Via of the hop the request came from: its top Via
    when received, the Via just below ours when it comes back.
    """
    return _digest(
        request.from_.tag or "",
        request.call_id,
        str(request.cseq.seq),
        _uri_string(request),
        "\x01".join(request.headers.get_all("route")),
        previous.transport,
        previous.host.lower(),
        "" if previous.port is None else str(previous.port),
        previous.branch or "",
    )


def loop_part(branch: str | None) -> str | None:
    """The loop part of a branch this module made, else None."""
    if branch is None or not branch.startswith(MAGIC_COOKIE):
        return None
    body = branch[len(MAGIC_COOKIE) :]
    loop, sep, _ = body.partition(_SEPARATOR)
    if not sep or len(loop) != _LOOP_LENGTH:
        return None
    return loop


def stateful_branch(loop: str, ids: IdSource) -> str:
    """A branch for one client transaction of a stateful proxy: loop part, fresh token."""
    return f"{MAGIC_COOKIE}{loop}{_SEPARATOR}{ids.token()}"


def stateless_branch(request: Request, loop: str) -> str:
    """A branch that retransmissions, the CANCEL and the non-2xx ACK all get alike (§16.11):
    a hash of the received branch when it has the magic cookie, else of the fields the
    RFC recommends (top Via, To and From tags, Call-ID, CSeq number, Request-URI)."""
    top = request.via[0]
    if is_rfc3261_branch(top):
        unique = _digest("3261", top.branch or "")
    else:
        unique = _digest(
            "2543",
            str(top),
            request.to.tag or "",
            request.from_.tag or "",
            request.call_id,
            str(request.cseq.seq),
            str(request.uri),
        )
    return f"{MAGIC_COOKIE}{loop}{_SEPARATOR}{unique}"


def is_loop(request: Request, ours: Iterable[int]) -> bool:
    """§16.3 item 4: has ``request`` looped through this proxy?

    ``ours`` are the indexes of the Via values this proxy inserted (their
    sent-by is one of its addresses). For each, the branch part of §16.6
    step 8 is computed again, with the Via below it as the previous hop,
    and compared with the one in that Via: equal means a loop; different
    means a spiral, which goes on.
    """
    vias = request.via
    for index in ours:
        if index + 1 >= len(vias):
            continue
        part = loop_part(vias[index].branch)
        if part is not None and part == loop_hash(request, vias[index + 1]):
            return True
    return False


def copy_request(request: Request) -> Request:
    """§16.6 step 1: a copy with every header, in order, and the same body.

    The copy's header lines are the original's, so are their parsed views: the copy
    takes them over (lists copied, as ``Request.reply`` does) rather than parsing its
    Vias, Routes and addresses again; a header changed on either side drops its own
    view only."""
    copy = Request.__new__(Request)
    copy.method = request.method
    copy._uri = request._uri
    copy._uri_text = request._uri_text
    copy.body = request.body
    copy.version = SIP_VERSION
    headers = request.headers
    copy.headers = Headers._from_parsed(list(headers._items))
    cache = headers._cache
    if cache:
        copy.headers._cache = {
            key: list(value) if type(value) is list else value for key, value in cache.items()
        }
    return copy


def _clean_uri(uri: Uri) -> Uri:
    """§16.6 step 2: "If the URI contains any parameters not allowed in a Request-URI,
    they MUST be removed": URI headers and ``method`` (§19.1.1, Table 1)."""
    if not isinstance(uri, SipUri) or not (
        uri.headers or any(p in uri.params for p in _NOT_IN_REQUEST_URI)
    ):
        return uri
    params = {k: v for k, v in uri.params.items() if k not in _NOT_IN_REQUEST_URI}
    return SipUri(uri.host, uri.user, uri.password, uri.port, params, [], uri.scheme)


def prepare(
    request: Request,
    uri: Uri | str | None = None,
    *,
    routes: Sequence[str] = (),
    add_headers: Sequence[tuple[str, str]] = (),
    remove_headers: Sequence[str] = (),
    max_forwards: int = DEFAULT_MAX_FORWARDS,
) -> tuple[Request, bool]:
    """§16.6 steps 1, 2, 3, 5 and 6: the request for one target, before its next hop.

    ``uri`` is the target (None keeps the Request-URI, text and all);
    ``routes`` are pushed ahead of any Route values (step 6, e.g. the Path of
    a binding, RFC 3327 §5.3); ``add_headers`` / ``remove_headers`` are the
    optional headers of step 5. A first Route without ``lr`` (a strict router)
    is handled as step 6 says: the Request-URI goes last into Route and that
    first Route value becomes the Request-URI. Record-Route (step 4) and Via
    (step 8) are added per transmission, once the next hop is known.

    Returns the copy and whether step 6 reformatted it for a strict router
    (then step 7 resolves its Request-URI rather than its first Route).
    """
    copy = copy_request(request)
    if uri is not None:
        copy.uri = _clean_uri(to_uri(uri))
    headers = copy.headers
    # Step 3: Max-Forwards, decremented, or added.
    current = copy.max_forwards
    headers.set("Max-Forwards", str(max_forwards if current is None else max(current - 1, 0)))
    for name in remove_headers:
        headers.remove(name)
    for name, value in add_headers:
        headers.add(name, value)
    for value in reversed(routes):
        headers.prepend("Route", value)
    return copy, strict_route_fixup(copy)


def strict_route_fixup(copy: Request) -> bool:
    """§16.6 step 6: the first Route is a strict router (no ``lr``): "place the
    Request-URI into the Route header field as the last value", then "place the first
    Route header field value into the Request-URI and remove that value". True when
    it did so."""
    routes = copy.route
    if not routes:
        return False
    first = routes[0].uri
    if not isinstance(first, SipUri) or first.lr:
        return False
    values = [str(a) for a in routes[1:]] + [f"<{copy.uri}>"]
    copy.headers.remove("Route")
    for value in values:
        copy.headers.add("Route", value)
    copy.uri = first
    return True


def add_via(copy: Request, via: Via) -> None:
    """§16.6 step 8: our Via before the existing values (the parsed Vias, when known,
    kept with ours on top: the transaction layer reads them at once)."""
    headers = copy.headers
    vias = headers._cache.get("via")
    headers.prepend("Via", via)
    if type(vias) is list:
        headers._cache["via"] = [via, *vias]


def build_cancel(forwarded: Request) -> Request:
    """The CANCEL of a branch (§9.1): the forwarded INVITE's Request-URI, Call-ID, To,
    From, CSeq number, top Via (so, its branch) and Route, with Max-Forwards 70."""
    items: list[tuple[str, str]] = [("Via", forwarded.headers.values("via")[0])]
    for key, name, value in forwarded.headers._items:
        if key in ("route", "from", "to", "call-id"):
            items.append((name, value))
    items.append(("CSeq", f"{forwarded.cseq.seq} CANCEL"))
    items.append(("Max-Forwards", str(DEFAULT_MAX_FORWARDS)))
    cancel = Request("CANCEL", forwarded.uri, Headers(items))
    cancel._uri_text = forwarded._uri_text
    return cancel


def strip_top_via(response: Response) -> Response:
    """§16.7 step 3: the response without its topmost Via (changed in place; its parsed
    Vias, when known, lose their first one too)."""
    headers = response.headers
    vias = headers._cache.get("via")
    if headers.pop_first_value("via") is not None and type(vias) is list and vias:
        headers._cache["via"] = vias[1:]
    return response
