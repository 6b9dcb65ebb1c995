"""Which transaction a message belongs to (RFC 3261 §17.1.3, §17.2.3, §9.2).

Keys are plain tuples so the layer can keep its tables in dicts.
"""

from __future__ import annotations

from sipwire.message import MAGIC_COOKIE, Request, Response, Via

__all__ = ["client_key", "invite_key_for", "is_rfc3261_branch", "server_key"]

ClientKey = tuple[str, str]
ServerKey = tuple[str, ...]


def is_rfc3261_branch(via: Via) -> bool:
    """A branch that starts with the magic cookie and has something after it.

    RFC 4475 badbranch: a branch that is exactly ``z9hG4bK`` gets the RFC 2543
    matching rules.
    """
    branch = via.branch
    return branch is not None and branch.startswith(MAGIC_COOKIE) and len(branch) > 7


def client_key(message: Request | Response) -> ClientKey | None:
    """§17.1.3: the top Via branch and the CSeq method (CANCEL shares INVITE's branch)."""
    vias = message.via
    if not vias or vias[0].branch is None:
        return None
    return (vias[0].branch, message.cseq.method)


def _sent_by(via: Via) -> str:
    port = via.port if via.port is not None else ""
    return f"{via.host.lower()}:{port}"


def server_key(request: Request, method: str | None = None) -> ServerKey:
    """§17.2.3: the key a request matches under; ``method`` overrides the request's.

    With an RFC 3261 branch: branch, sent-by and method (ACK matches INVITE).
    Without one (RFC 2543 peers): Request-URI, From tag, Call-ID, CSeq number,
    top Via and method; the To tag of an ACK is checked by the caller.
    """
    if method is None:
        method = "INVITE" if request.method == "ACK" else request.method
    top = request.via[0]
    if is_rfc3261_branch(top):
        return ("3261", top.branch or "", _sent_by(top), method)
    return (
        "2543",
        str(request.uri),
        request.from_.tag or "",
        request.call_id,
        str(request.cseq.seq),
        str(top),
        method,
    )


def invite_key_for(cancel: Request) -> ServerKey:
    """The key of the INVITE server transaction a CANCEL refers to (§9.2)."""
    return server_key(cancel, "INVITE")
