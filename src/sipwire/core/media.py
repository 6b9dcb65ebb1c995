"""The session description seen from the INVITE session: offers and answers as bytes.

:class:`SessionMedia` is what an :class:`~sipwire.core.session.InviteSession`
asks when an offer or answer must be made or has arrived (RFC 3264); it
raises :class:`MediaError` for a body it cannot accept, which the session
turns into 488 (or a BYE/CANCEL where there is no request left to reject).
:class:`SdpMedia` implements it with ``sipwire.sdp``; :class:`StaticMedia`
answers everything with fixed bodies, for tests and simple tools.
"""

from __future__ import annotations

from typing import Protocol

from sipwire.errors import SipError

__all__ = ["MediaError", "SessionMedia", "StaticMedia"]


class MediaError(SipError):
    """An offer or answer that cannot be accepted (answered 488 Not Acceptable Here)."""

    def __init__(self, reason: str, status: int = 488) -> None:
        super().__init__(reason, status)


class SessionMedia(Protocol):
    """Offer/answer for one INVITE session (bodies are complete SDP documents)."""

    content_type: str

    def create_offer(self) -> bytes:
        """An offer (initial, or a re-offer keeping the m-lines, RFC 3264 §8)."""
        ...

    def receive_offer(self, body: bytes) -> bytes:
        """Take the peer's offer and return our answer; MediaError if unacceptable."""
        ...

    def receive_answer(self, body: bytes) -> None:
        """Take the peer's answer to our last offer; MediaError if unacceptable."""
        ...

    def offer_rejected(self) -> None:
        """Our last offer got a non-2xx answer (488, 491 ...): forget it (RFC 3264 §8)."""
        ...

    def hold(self) -> bytes:
        """A re-offer that puts the peer on hold (sendonly, or inactive)."""
        ...

    def resume(self) -> bytes:
        """A re-offer that takes the peer off hold (sendrecv)."""
        ...


class StaticMedia:
    """Fixed bodies: ``offer`` for every offer, ``answer`` for every answer.

    It keeps what the peer sent in ``remote`` and ``on_hold`` so that tests
    and tools can see what happened.
    """

    content_type = "application/sdp"

    def __init__(self, offer: bytes = b"", answer: bytes | None = None) -> None:
        self.offer = offer
        self.answer = offer if answer is None else answer
        self.remote: bytes | None = None
        self.on_hold = False
        self.offers_made = 0
        self.offers_rejected = 0

    def create_offer(self) -> bytes:
        """The fixed offer."""
        self.offers_made += 1
        return self.offer

    def receive_offer(self, body: bytes) -> bytes:
        """Keep the offer; return the fixed answer."""
        if not body.strip():
            raise MediaError("empty offer")
        self.remote = body
        return self.answer

    def receive_answer(self, body: bytes) -> None:
        """Keep the answer."""
        if not body.strip():
            raise MediaError("empty answer")
        self.remote = body

    def offer_rejected(self) -> None:
        """Count the rejected offer."""
        self.offers_rejected += 1

    def hold(self) -> bytes:
        """The fixed offer, marked on hold."""
        self.on_hold = True
        return self.create_offer()

    def resume(self) -> bytes:
        """The fixed offer, marked off hold."""
        self.on_hold = False
        return self.create_offer()
