"""SDES-SRTP in offer/answer: :class:`SdesOfferAnswer` (RFC 4568 with RFC 3264).

An :class:`~sipwire.sdp.offer_answer.OfferAnswer` that puts ``a=crypto``
lines in its offers and answers and tells, in each
:class:`~sipwire.sdp.negotiation.NegotiatedStream`'s ``srtp``, the keys the
stream is protected with (:class:`~sipwire.sdp.negotiation.SrtpKeys`).

Two modes:

``"required"``
    Offers are ``RTP/SAVP`` with one ``a=crypto`` line per suite. An answer
    without a matching crypto line is refused (:class:`SdpError` 488); an
    offered stream without a usable crypto line (``RTP/AVP`` without
    ``a=crypto``, or ``RTP/SAVP`` with none sipwire can do) is rejected
    (port 0, so an offer with nothing else gets 488).
``"preferred"``
    Best-effort SRTP: offers are ``RTP/AVP`` *carrying* the ``a=crypto``
    lines. A peer that does SDES answers with a crypto line and the stream
    is SRTP; one that does not ignores the unknown attribute and the stream
    is plain RTP. This is the interoperable choice: an ``RTP/SAVP`` offer is
    rejected outright by plain-RTP peers (and a second, fallback offer needs
    another round trip), while ``RTP/AVP`` with ``a=crypto`` is what
    Asterisk-era phones and baresip's ``srtp`` encryption send and accept.
    Offered ``RTP/SAVP`` streams are answered with SRTP in both modes.

Keys: the offerer's lines carry its keys for what it sends; the answer
names the chosen tag and suite with the answerer's key. Ours come from
``key_source(n)`` (n random bytes, the caller's CSPRNG: this package reads no
random source). Our offered keys are kept across re-offers, the agreed line
first, so a hold or a codec change keeps the SRTP state; :meth:`rekey`
makes the next offer carry new keys. When the peer's offer changes its key
(or suite), our answer carries a new key too: each new agreement is a new
pair of keys. The answer memo of the plain negotiator is not used: an
answer carries a fresh key, never one copied from another call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Literal

from sipwire.sdp.crypto import (
    SUITES,
    CryptoAttribute,
    answer_crypto,
    choose_crypto,
    crypto_attributes,
    usable,
)
from sipwire.sdp.negotiation import NegotiatedStream, SrtpKeys, _rejected, _remote, _Stream
from sipwire.sdp.offer_answer import OfferAnswer
from sipwire.sdp.parser import parse_sdp
from sipwire.sdp.session import MediaDescription, SdpError, SessionDescription

__all__ = ["SAVP", "SrtpMode", "SdesOfferAnswer"]

SAVP = "RTP/SAVP"
AVP = "RTP/AVP"
SrtpMode = Literal["preferred", "required"]


class SdesOfferAnswer(OfferAnswer):
    """:class:`OfferAnswer` with SDES-SRTP (see the module docstring).

    ``suites`` are the crypto suites of :data:`~sipwire.sdp.crypto.SUITES`
    to offer and accept, in order of preference; the other arguments are
    :class:`OfferAnswer`'s (``protos`` is set here: RTP/AVP and RTP/SAVP).
    """

    def __init__(
        self,
        address: str,
        audio_port: int,
        *,
        mode: SrtpMode,
        suites: Sequence[str],
        key_source: Callable[[int], bytes],
        **options: object,
    ) -> None:
        if mode not in ("preferred", "required"):
            raise ValueError(f"SRTP mode is 'preferred' or 'required', not {mode!r}")
        unknown = [suite for suite in suites if suite not in SUITES]
        if unknown or not suites:
            raise ValueError(f"crypto suites: {unknown or 'none'}; known: {', '.join(SUITES)}")
        options["protos"] = (AVP, SAVP)
        super().__init__(address, audio_port, **options)  # type: ignore[arg-type]
        self.mode: SrtpMode = mode
        self.suites = tuple(suites)
        self._key_source = key_source
        self._offered: dict[str, list[CryptoAttribute]] = {}
        """Our crypto lines per media kind, as last offered (kept for re-offers)."""
        self._rekey = False

    def rekey(self) -> None:
        """Make the next offer carry new keys (RFC 4568 §7.1.4: the answer re-keys)."""
        self._offered.clear()
        self._rekey = True

    def _key(self, suite: str) -> bytes:
        length = SUITES[suite].key_salt_length
        key = self._key_source(length)
        if len(key) != length:
            raise ValueError(f"key_source gave {len(key)} bytes, {length} were asked")
        return key

    def _agreed(self, media: str) -> SrtpKeys | None:
        for stream in self.negotiated:
            if stream.media == media and not stream.rejected and stream.srtp is not None:
                return stream.srtp
        return None

    def _our_lines(self, media: str) -> list[CryptoAttribute]:
        """The crypto lines to offer for ``media``: the agreed one first, then the
        other suites (the keys of earlier offers, or new ones)."""
        agreed = None if self._rekey else self._agreed(media)
        kept = {line.suite: line for line in self._offered.get(media, ())}
        lines: list[CryptoAttribute] = []
        if agreed is not None:
            lines.append(CryptoAttribute(agreed.tag, agreed.suite, agreed.local_key))
        tags = {line.tag for line in lines}
        for suite in self.suites:
            if agreed is not None and suite == agreed.suite:
                continue
            line = kept.get(suite)
            if line is None or line.tag in tags:
                tag = max(tags | {line.tag for line in kept.values()}, default=0) + 1
                line = CryptoAttribute(tag, suite, self._key(suite))
            tags.add(line.tag)
            lines.append(line)
        self._offered[media] = lines
        return lines

    # -- offers --------------------------------------------------------------------------------
    def _offer_media(self, media: str, proto: str, stream: _Stream | None) -> MediaDescription:
        if stream is None and proto == AVP and self.mode == "required":
            proto = SAVP
        md = super()._offer_media(media, proto, stream)
        md.attributes.extend(line.attribute() for line in self._our_lines(media))
        return md

    def receive_answer(self, answer: SessionDescription) -> list[NegotiatedStream]:
        """Take the answer (see :class:`OfferAnswer`); a re-key asked for is done once
        an answer took it (an offer refused, 491 or 488, is made again with it)."""
        negotiated = super().receive_answer(answer)
        self._rekey = False
        return negotiated

    def _take_answer(
        self,
        index: int,
        offer: SessionDescription,
        om: MediaDescription,
        answer: SessionDescription,
        am: MediaDescription,
    ) -> tuple[_Stream, NegotiatedStream]:
        stream, result = super()._take_answer(index, offer, om, answer, am)
        if result.rejected:
            return stream, result
        where = f"m-line {index + 1}"
        ours = {line.tag: line for line in crypto_attributes(om.get_all("crypto"))}
        theirs = crypto_attributes(am.get_all("crypto"))
        if not theirs:
            if om.proto == SAVP or (ours and self.mode == "required"):
                raise SdpError(f"{where}: the answer has no a=crypto: SRTP is required", 488)
            return stream, result
        for line in theirs:
            mine = ours.get(line.tag)
            if mine is not None and mine.suite == line.suite and usable(line, self.suites):
                keys = SrtpKeys(line.suite, line.tag, mine.key_salt, line.key_salt)
                return stream, replace(result, srtp=keys)
        raise SdpError(f"{where}: the answer's a=crypto matches no offered line", 488)

    # -- answers -------------------------------------------------------------------------------
    def receive_offer_bytes(self, body: bytes) -> tuple[bytes, bool]:
        """:meth:`OfferAnswer.receive_offer` for bytes (never from the answer memo)."""
        answer = self.receive_offer(parse_sdp(body), copy=False)
        return bytes(answer), any(m.port != 0 for m in answer.media)

    def _answer_media(
        self, index: int, offer: SessionDescription, om: MediaDescription, taken: set[str]
    ) -> tuple[MediaDescription, _Stream, NegotiatedStream]:
        chosen = choose_crypto(crypto_attributes(om.get_all("crypto")), self.suites)
        secure = chosen is not None and om.proto in (AVP, SAVP)
        if om.port != 0 and not secure and (om.proto == SAVP or self.mode == "required"):
            return self._reject(index, offer, om)
        md, stream, result = super()._answer_media(index, offer, om, taken)
        if result.rejected or chosen is None or not secure:
            return md, stream, result
        previous = self._agreed(om.media)
        if previous is not None and (previous.tag, previous.suite, previous.remote_key) == (
            chosen.tag,
            chosen.suite,
            chosen.key_salt,
        ):
            key = previous.local_key  # the same offer again (a hold, a refresh): same keys
        else:
            key = self._key(chosen.suite)
        line = answer_crypto(chosen, key)
        md.attributes.append(line.attribute())
        keys = SrtpKeys(chosen.suite, chosen.tag, key, chosen.key_salt)
        return md, stream, replace(result, srtp=keys)

    def _reject(
        self, index: int, offer: SessionDescription, om: MediaDescription
    ) -> tuple[MediaDescription, _Stream, NegotiatedStream]:
        """Port 0 for an m-line that SRTP policy refuses (RFC 3264 §6)."""
        remote_direction, remote = _remote(offer, om)
        previous = self._streams[index] if index < len(self._streams) else None
        bindings = dict(previous.bindings) if previous and previous.media == om.media else {}
        md = MediaDescription(om.media, 0, om.proto, list(om.formats))
        stream = _Stream(om.media, om.proto, list(om.formats), True, remote_direction, bindings)
        return md, stream, _rejected(index, om, om.port, remote)
