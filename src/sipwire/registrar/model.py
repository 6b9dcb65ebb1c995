"""What a registrar keeps: bindings of AORs to contacts, and users (RFC 3261 §10).

A *binding* maps an address-of-record (AOR) to a Contact where its user can
be reached, with its expiry, q-value, the Call-ID/CSeq that last set it
(§10.3 step 7), the Path it came with (RFC 3327), its RFC 5626 instance-id
and reg-id, and the flow it arrived on (source address, transport and
connection: for phones behind NAT whose Contact is a private address).

Plain frozen data: the sans-I/O registrar computes them, the stores
(``sipwire.store``) persist them. Times are wall-clock seconds since the
epoch, passed in by the caller, so that bindings survive restarts and
several nodes can share them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Binding", "BindingChange", "User"]


@dataclass(frozen=True, slots=True)
class Binding:
    """One Contact registered for an AOR (RFC 3261 §10.3)."""

    aor: str
    """The canonical address of record, e.g. ``sip:alice@example.com``."""
    contact: str
    """The Contact value as registered (``<sip:alice@192.0.2.4:5060;ob>;+sip.instance=...``)."""
    key: str
    """Identity of the binding within the AOR: the Contact URI compared as §19.1.4
    says, or ``instance-id/reg-id`` for an RFC 5626 registration (computed by the
    registrar; the store only uses it as a key)."""
    expires_at: float
    call_id: str
    cseq: int
    q: float | None = None
    path: tuple[str, ...] = ()
    """Path header values of the REGISTER, in order (RFC 3327)."""
    instance_id: str | None = None
    reg_id: int | None = None
    transport: str = "udp"
    """How the REGISTER arrived: udp, tcp, tls, ws, wss."""
    source: str = ""
    """``host:port`` the REGISTER came from (the received address)."""
    local: str = ""
    """``host:port`` it arrived at (the listener of the node that took it)."""
    node: str = ""
    """The node that took the REGISTER (a flow is only usable on that node)."""
    flow: int | None = None
    """The connection it came on (stream transports), on ``node``."""
    user_agent: str = ""
    registered_at: float = 0.0

    def remaining(self, now: float) -> int:
        """Seconds left, rounded down (what the 200 to REGISTER reports)."""
        return max(0, int(self.expires_at - now))


@dataclass(frozen=True, slots=True)
class BindingChange:
    """What one REGISTER does to an AOR: keys to remove, bindings to add or refresh."""

    remove: tuple[str, ...] = ()
    upsert: tuple[Binding, ...] = ()
    remove_all: bool = False
    """``Contact: *`` with ``Expires: 0`` (§10.3 step 6)."""


@dataclass(frozen=True, slots=True)
class User:
    """A subscriber: digest HA1 per algorithm, never the password (RFC 7616 §3.4.2)."""

    name: str
    domain: str
    ha1: dict[str, str] = field(default_factory=dict)
    """Algorithm name (``MD5``, ``SHA-256``, ``SHA-512-256``) → HA1 in lower-case hex,
    computed over ``name:realm:password`` with realm = ``domain``."""
