"""The location service and user store: one interface, several backends.

A registrar keeps, per address-of-record (AOR), the *bindings* of RFC 3261
§10: the Contact URIs where the AOR's user can be reached, each with its
expiry, q-value, the Call-ID/CSeq that last set it (§10.3 step 7), the Path
it came with (RFC 3327), its RFC 5626 instance-id and reg-id, and the flow
it arrived on (the source address, transport and connection, for phones
behind NAT whose Contact is a private address).

Backends (``sqlite.py``, ``redis.py``, ``postgres.py``) implement
:class:`LocationStore`; :func:`sipwire.store.open_store` picks one from a
URL. Every method is a coroutine, and every backend passes the same test
suite (``tests/store/``).

Times are wall-clock seconds since the epoch (``time.time()``), passed in
by the caller, so that bindings survive restarts and several nodes share
them. A binding whose ``expires_at`` is not after ``now`` does not exist:
no method returns it, whether or not the backend has purged it yet.

Errors: a backend that cannot reach its database raises
:class:`StoreUnavailable` (the registrar answers 500/503 with Retry-After);
it never returns partial results.
"""

from __future__ import annotations

import abc

from sipwire.errors import SipError
from sipwire.registrar.model import Binding, BindingChange, User

__all__ = ["Binding", "BindingChange", "LocationStore", "StoreUnavailable", "User"]


class StoreUnavailable(SipError):
    """The database did not answer (down, slow past its timeout, or refusing)."""

    def __init__(self, reason: str, status: int = 503) -> None:
        super().__init__(reason, status)


class LocationStore(abc.ABC):
    """Bindings by AOR, users, and digest nonce-count state, behind one interface."""

    url: str = ""

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect, and create or migrate the schema."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections; pending writes are finished first."""

    @abc.abstractmethod
    async def ping(self) -> bool:
        """True when the database answers (the ``/health`` check)."""

    # -- bindings ---------------------------------------------------------------------
    @abc.abstractmethod
    async def bindings(self, aor: str, now: float) -> list[Binding]:
        """The unexpired bindings of ``aor``, in no particular order."""

    @abc.abstractmethod
    async def apply(self, aor: str, change: BindingChange, now: float) -> list[Binding]:
        """Apply ``change`` to ``aor`` atomically and durably; return its unexpired bindings.

        When this returns, the change survives a crash of the process (SQLite:
        committed in WAL mode; PostgreSQL: committed; Redis: acknowledged by
        the server). An upsert replaces the binding with the same ``key``.

        In order: ``remove_all`` or ``remove`` (unknown keys are ignored), then
        ``upsert`` (the last of several with one key wins), then the AOR's
        bindings expired at ``now`` are deleted. Applies to one AOR from several
        tasks or nodes are serialized: none is lost. Raises ValueError when an
        upserted binding's ``aor`` is not ``aor``. After :class:`StoreUnavailable`
        the change may or may not have been applied.
        """

    @abc.abstractmethod
    async def aors(self, now: float, limit: int = 1000) -> list[str]:
        """AORs with at least one unexpired binding (at most ``limit``)."""

    @abc.abstractmethod
    async def purge(self, now: float) -> int:
        """Delete expired bindings (and nonce records); return how many bindings this
        call removed. Run it now and then: until then expired bindings take room,
        though no method returns them."""

    # -- users ----------------------------------------------------------------------------
    @abc.abstractmethod
    async def put_user(self, user: User) -> None:
        """Add a user, or replace the one with the same name and domain."""

    @abc.abstractmethod
    async def get_user(self, name: str, domain: str) -> User | None: ...

    @abc.abstractmethod
    async def delete_user(self, name: str, domain: str) -> bool:
        """Remove a user; False when there was none."""

    @abc.abstractmethod
    async def users(self, domain: str | None = None) -> list[User]: ...

    # -- digest nonce counts (RFC 7616 §3.4.5: a replayed nc is refused) -------------
    @abc.abstractmethod
    async def use_nonce_count(self, nonce: str, nc: int, expires_at: float) -> bool:
        """Record that ``nc`` was used with ``nonce``; False when it was not greater
        than every nc used with that nonce before (a replay). The record may be
        dropped after ``expires_at`` (when the nonce itself expires)."""

    @abc.abstractmethod
    async def secret(self, name: str) -> bytes:
        """The secret called ``name`` (32 random bytes), made on first use.

        Every store object that shares this one's nonce-count records gets the
        same secret: the registrar signs its nonces with it, so that the nodes
        sharing a database accept each other's nonces, and a nonce can never
        outlive the records that protect it from replay. Redis and PostgreSQL
        keep it in the database (made once, by whichever node asks first);
        SQLite keeps nonce counts in the memory of the store object, and its
        secret with them: a new one per open store (after a restart, nonces
        issued before it are refused and the client is challenged afresh).
        """
