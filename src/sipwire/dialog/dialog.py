"""Dialog state (RFC 3261 §12): identifiers, sequence numbers, route set, target.

A :class:`Dialog` is pure data plus the rules of §12 that act on it:

- created by a UAC from a response with a To tag (§12.1.2) or by a UAS from
  the request it answers (§12.1.1);
- builds requests inside the dialog (§12.2.1.1), loose or strict routing;
- checks requests received inside it (§12.2.2: CSeq order);
- refreshes its remote target from target-refresh requests and responses
  (§12.2.1.2, §12.2.2).

Sending, retransmitting and timers are the UA core's business.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from sipwire.message import Address, Request, Response, SipUri, Uri

__all__ = ["Dialog", "DialogId", "DialogState", "TARGET_REFRESH_METHODS"]

DialogId = tuple[str, str, str]
"""(Call-ID, local tag, remote tag), §12."""

TARGET_REFRESH_METHODS = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})
"""Methods whose requests and 2xx responses may change the remote target (§12.2, RFC 6665)."""


class DialogState(Enum):
    """§12: a dialog is early until a 2xx arrives, then confirmed."""

    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


@dataclass(slots=True, eq=False)
class Dialog:
    """A peer-to-peer SIP relationship between two user agents (§12)."""

    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: Address
    """Our From (UAC) or To (UAS) address, without tag."""
    remote_uri: Address
    remote_target: Uri
    """The remote Contact: where in-dialog requests go (before the route set)."""
    local_seq: int
    """The last CSeq number we used; the next request uses local_seq + 1."""
    remote_seq: int | None = None
    """The highest CSeq number received from the peer, None before the first."""
    route_set: list[Address] = field(default_factory=list)
    secure: bool = False
    state: DialogState = DialogState.EARLY
    is_uac: bool = True

    @property
    def id(self) -> DialogId:
        """(Call-ID, local tag, remote tag)."""
        return (self.call_id, self.local_tag, self.remote_tag)

    # -- creation -------------------------------------------------------------------
    @classmethod
    def from_uac(cls, request: Request, response: Response) -> Dialog:
        """The dialog a UAC creates from a 2xx or 18x with a To tag (§12.1.2)."""
        contacts = response.contact
        remote_target: Uri = contacts[0].uri if contacts else request.uri
        local = request.from_
        remote = response.to
        return cls(
            call_id=request.call_id,
            local_tag=local.tag or "",
            remote_tag=remote.tag or "",
            local_uri=Address(local.uri, local.display_name),
            remote_uri=Address(remote.uri, remote.display_name),
            remote_target=remote_target,
            local_seq=request.cseq.seq,
            remote_seq=None,
            route_set=list(reversed(response.record_route)),
            secure=isinstance(request.uri, SipUri) and request.uri.secure,
            state=DialogState.CONFIRMED if 200 <= response.status < 300 else DialogState.EARLY,
            is_uac=True,
        )

    @classmethod
    def from_uas(cls, request: Request, local_tag: str, *, confirmed: bool = False) -> Dialog:
        """The dialog a UAS creates when it answers ``request`` with a tagged 18x/2xx."""
        contacts = request.contact
        remote_target: Uri = contacts[0].uri if contacts else request.from_.uri
        remote = request.from_
        local = request.to
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=remote.tag or "",
            local_uri=Address(local.uri, local.display_name),
            remote_uri=Address(remote.uri, remote.display_name),
            remote_target=remote_target,
            local_seq=0,
            remote_seq=request.cseq.seq,
            route_set=list(request.record_route),
            secure=isinstance(request.uri, SipUri) and request.uri.secure,
            state=DialogState.CONFIRMED if confirmed else DialogState.EARLY,
            is_uac=False,
        )

    # -- the UAC side ---------------------------------------------------------------------
    def next_seq(self) -> int:
        """Take the next local CSeq number (§12.2.1.1)."""
        self.local_seq += 1
        return self.local_seq

    def create_request(
        self,
        method: str,
        *,
        seq: int | None = None,
        headers: list[tuple[str, str]] | None = None,
        body: bytes | str = b"",
    ) -> Request:
        """A request inside this dialog (§12.2.1.1), without Via (the sender stamps it).

        Request-URI and Route follow the route set: loose routing when its
        first entry has ``lr``, the §12.2.1.1 strict-routing rewrite otherwise.
        ``seq`` defaults to the next local CSeq number (ACK and CANCEL pass the
        INVITE's).
        """
        if seq is None:
            seq = self.next_seq()
        uri: Uri = self.remote_target
        routes = [str(r) for r in self.route_set]
        first = self.route_set[0].uri if self.route_set else None
        if isinstance(first, SipUri) and not first.lr:
            # Strict routing: the first route becomes the Request-URI and the
            # remote target goes last in Route.
            uri = first
            routes = [*routes[1:], f"<{self.remote_target}>"]
        items: list[tuple[str, str]] = [
            ("Max-Forwards", "70"),
            ("From", str(self.local_uri.with_tag(self.local_tag))),
            ("To", str(self.remote_uri.with_tag(self.remote_tag))),
            ("Call-ID", self.call_id),
            ("CSeq", f"{seq} {method}"),
        ]
        items += [("Route", r) for r in routes]
        items += headers or []
        return Request(method, uri, items, body)

    def next_hop(self) -> Uri:
        """The URI whose targets an in-dialog request goes to (§8.1.2)."""
        if self.route_set:
            return self.route_set[0].uri
        return self.remote_target

    # -- the UAS side ----------------------------------------------------------------------
    def check_request(self, request: Request) -> int | None:
        """§12.2.2: None when ``request`` may proceed, else the status to reject it with.

        A CSeq lower than the last one seen gets 500; ACK and CANCEL reuse the
        INVITE's number and are not checked.
        """
        if request.method in ("ACK", "CANCEL"):
            return None
        seq = request.cseq.seq
        if self.remote_seq is not None and seq <= self.remote_seq:
            return 500
        self.remote_seq = seq
        return None

    def refresh_target(self, message: Request | Response) -> None:
        """Take the Contact of a target-refresh request or its 2xx as the new remote target."""
        contacts = message.contact
        if contacts:
            self.remote_target = contacts[0].uri

    def matches(self, message: Request | Response) -> bool:
        """True when ``message`` belongs to this dialog (Call-ID and both tags)."""
        if message.call_id != self.call_id:
            return False
        if isinstance(message, Request):
            return message.to.tag == self.local_tag and message.from_.tag == self.remote_tag
        return message.from_.tag == self.local_tag and message.to.tag == self.remote_tag
