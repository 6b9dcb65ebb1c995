"""The offer/answer model of RFC 3264, sans-I/O.

:class:`OfferAnswer` is one side of one SIP session's media negotiation. It
is told about the offers and answers that arrive (whatever message carries
them: INVITE, 18x, 2xx, ACK, UPDATE, PRACK) and produces the ones to send.
It keeps the ``o=`` line's session version (RFC 3264 §8: bumped only when
the content changes), the m-line layout of the session (§8: never fewer
m-lines, never reordered) and the dynamic payload type bindings (§8.3.2).

It does no I/O: the addresses and ports are the caller's, who also decides
what to answer when no stream is acceptable (typically 488).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from functools import lru_cache
from typing import Final

from sipwire.sdp.answer_memo import Answered, MemoKey, answer_memo, answered
from sipwire.sdp.codecs import (
    H264,
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    VP8,
    Codec,
    _CodecKey,
    _keyed_media_codecs,
    media_codecs,
)
from sipwire.sdp.negotiation import (
    GlareError,
    NegotiatedStream,
    OfferAnswerError,
    OfferAnswerState,
    _accepted,
    _bind,
    _bind_keyed,
    _describe,
    _is_pt,
    _pick_payload_type,
    _rejected,
    _remote,
    _same_but_version,
    _Stream,
    _with_local_port,
)
from sipwire.sdp.parser import parse_sdp
from sipwire.sdp.session import (
    Attribute,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    SdpError,
    SessionDescription,
    Timing,
)

__all__ = [
    "GlareError",
    "NegotiatedStream",
    "OfferAnswer",
    "OfferAnswerError",
    "OfferAnswerState",
]


# Our own c= and o= lines are the same for many calls (a user agent answers every call
# from one address, often with the same session id); both are immutable, so share them.
_connection_for: Final = lru_cache(maxsize=64)(Connection.for_address)
_origin: Final = lru_cache(maxsize=64)(Origin)
_RTCP_MUX: Final = Attribute("rtcp-mux")


class OfferAnswer:
    """One side of an RFC 3264 offer/answer session.

    ``audio_codecs`` and ``video_codecs`` are in order of preference and
    may include :data:`~sipwire.sdp.codecs.TELEPHONE_EVENT`; video is offered
    and accepted only when ``video_port`` is given. ``session_id`` should be
    unique per session (RFC 8866 §5.2 suggests an NTP timestamp): this module
    reads no clock, so it is the caller's. ``single_codec`` makes answers
    carry one codec (plus telephone-event) instead of every common one.
    ``rtcp_mux`` offers RTP and RTCP on one port (``a=rtcp-mux``, RFC 5761
    §5.1.1) and accepts it in answers when the offer has it; whether it was
    agreed is :func:`~sipwire.sdp.rtp_params.rtp_parameters`' business.
    """

    def __init__(
        self,
        address: str,
        audio_port: int,
        *,
        video_port: int | None = None,
        audio_codecs: Sequence[Codec] = (PCMU, PCMA, TELEPHONE_EVENT),
        video_codecs: Sequence[Codec] = (H264, VP8),
        session_name: str = "sipwire",
        username: str = "-",
        session_id: int = 0,
        session_version: int | None = None,
        direction: Direction = Direction.SENDRECV,
        protos: Collection[str] = ("RTP/AVP",),
        single_codec: bool = False,
        rtcp_mux: bool = False,
    ) -> None:
        for codec in audio_codecs:
            if not codec.is_telephone_event:
                break
        else:
            raise ValueError("audio_codecs needs at least one codec besides telephone-event")
        for port in (audio_port, video_port):
            if port is not None and not 0 < port <= 65535:
                raise ValueError(f"port {port} out of range")
        self.address = address
        self.audio_port = audio_port
        self.video_port = video_port
        self.audio_codecs = tuple(audio_codecs)
        self.video_codecs = tuple(video_codecs)
        self.session_name = session_name
        self.username = username
        self.session_id = session_id
        self.direction = direction
        """The direction we want when not on hold."""
        self.protos = frozenset(protos)
        self.single_codec = single_codec
        self.rtcp_mux = rtcp_mux
        self._version = session_id if session_version is None else session_version
        self._state = OfferAnswerState.IDLE
        self._state_before = OfferAnswerState.IDLE
        self._held = False
        self._streams: list[_Stream] = []
        self._negotiated: list[NegotiatedStream] = []
        self._last_sent: SessionDescription | None = None
        self._local: SessionDescription | None = None
        self._remote: SessionDescription | None = None
        self._pending_offer: SessionDescription | None = None
        self._our_offer: SessionDescription | None = None
        self._last_answer: SessionDescription | None = None

    # -- what the negotiator knows ------------------------------------------------

    @property
    def state(self) -> OfferAnswerState:
        """Where the offer/answer exchange stands."""
        return self._state

    @property
    def negotiated(self) -> list[NegotiatedStream]:
        """The result of the last completed exchange, one entry per m-line."""
        return list(self._negotiated)

    @property
    def local_description(self) -> SessionDescription | None:
        """The last SDP we sent that is in force (our answer, or our answered offer)."""
        return None if self._local is None else self._local.copy()

    @property
    def remote_description(self) -> SessionDescription | None:
        """The peer's SDP in force (its offer or its answer)."""
        return None if self._remote is None else self._remote.copy()

    @property
    def session_version(self) -> int:
        """The ``<sess-version>`` of the last SDP we produced."""
        return self._version

    @property
    def on_hold(self) -> bool:
        """Whether :meth:`hold` was called (and :meth:`resume` not since)."""
        return self._held

    # -- making offers ---------------------------------------------------------

    def create_offer(self) -> SessionDescription:
        """Our offer: the initial one, or a re-offer keeping every m-line in place (§8).

        Raises :class:`OfferAnswerError` while an offer is outstanding.
        """
        self._require_can_offer()
        if self._streams:
            media = [self._reoffer_media(s) for s in self._streams]
        else:
            media = [self._offer_media("audio", "RTP/AVP", None)]
            if self.video_port is not None and self.video_codecs:
                media.append(self._offer_media("video", "RTP/AVP", None))
        offer = self._stamp(self._session(media))
        self._our_offer = offer
        self._last_answer = None
        self._state_before = self._state
        self._state = OfferAnswerState.OFFER_SENT
        return offer.copy()

    def hold(self) -> SessionDescription:
        """A re-offer putting the peer on hold (RFC 3264 §8.4).

        Streams become sendonly, or inactive where the peer already holds us.
        """
        self._require_can_offer()
        self._held = True
        return self.create_offer()

    def resume(self) -> SessionDescription:
        """A re-offer taking the peer off hold: streams back to :attr:`direction`."""
        self._require_can_offer()
        self._held = False
        return self.create_offer()

    def receive_answer(self, answer: SessionDescription) -> list[NegotiatedStream]:
        """Take the answer to our offer and return the negotiated streams.

        Raises :class:`SdpError` (488) if the answer does not fit the offer:
        a different number or kind of m-lines, payload types we did not
        offer, or an accepted stream without a common codec. Receiving the
        same answer again (a reliable 18x, then the 2xx) is harmless.
        """
        if self._state is OfferAnswerState.STABLE and self._last_answer == answer:
            return self.negotiated
        if self._state is not OfferAnswerState.OFFER_SENT or self._our_offer is None:
            raise OfferAnswerError(f"answer received in state {self._state.value}")
        offer = self._our_offer
        if len(answer.media) != len(offer.media):
            raise SdpError(
                f"answer has {len(answer.media)} m-lines, the offer {len(offer.media)}", 488
            )
        streams: list[_Stream] = []
        results: list[NegotiatedStream] = []
        for index, (om, am) in enumerate(zip(offer.media, answer.media, strict=True)):
            stream, result = self._take_answer(index, offer, om, answer, am)
            streams.append(stream)
            results.append(result)
        mine = answer.copy()  # the caller keeps theirs
        self._commit(streams, results, local=offer, remote=mine)
        self._last_answer = mine
        return self.negotiated

    def cancel_offer(self) -> None:
        """Forget our outstanding offer (it was refused: 491, 488, timeout ...)."""
        if self._state is not OfferAnswerState.OFFER_SENT:
            raise OfferAnswerError(f"no offer outstanding in state {self._state.value}")
        self._our_offer = None
        self._state = self._state_before

    # -- answering offers ---------------------------------------------------------

    def receive_offer(self, offer: SessionDescription, *, copy: bool = True) -> SessionDescription:
        """Take the peer's offer and return our answer (:meth:`set_remote_offer` +
        :meth:`create_answer`).

        Raises :class:`GlareError` (491) while our own offer is outstanding.
        ``copy=False`` is for a caller that only serializes the answer: the
        negotiator keeps ``offer`` itself and returns the answer it keeps, so
        neither may be changed afterwards.
        """
        self._set_remote_offer(offer, copy)
        return self._create_answer(copy)

    def receive_offer_bytes(self, body: bytes) -> tuple[bytes, bool]:
        """:meth:`receive_offer` for an offer in bytes: our answer in bytes, and whether
        it accepts a stream (SdpError if the body does not parse).

        A negotiator's first offer is answered from :data:`answer_memo` when the
        same bytes were answered (twice) before with the same configuration: the
        negotiator ends up as :meth:`receive_offer` would leave it, and the bytes
        are the same, without parsing or negotiating again.
        """
        key = None
        values = (self.session_id, self._version, self.audio_port, self.video_port or 0)
        if (
            self._state is OfferAnswerState.IDLE
            and self._last_sent is None  # nothing negotiated or offered: no streams either
            and not self._held
            and type(body) is bytes
            and len(body) <= answer_memo.max_offer_bytes
            and type(values[0]) is int  # the template's %d writes what str() would
            and type(values[1]) is int
            and type(values[2]) is int
            and type(values[3]) is int
        ):
            key = self._memo_key(body)
            entry = answer_memo.get(key)
            if entry is not None:
                return self._answer_from(entry, values)
            if not answer_memo.admit(key):
                key = None
        answer = self.receive_offer(parse_sdp(body), copy=False)
        data = bytes(answer)
        if key is not None and self._remote is not None:
            kept = answered(
                self._remote,
                tuple(self._streams),
                tuple(self._negotiated),
                answer,
                data,
                values,
                self._memo_codecs(),
            )
            if kept is not None:
                answer_memo.put(key, kept)
        return data, any(m.port != 0 for m in answer.media)

    def _memo_codecs(self) -> tuple[tuple[Codec, ...], tuple[Codec, ...] | None]:
        """The codec tuples the negotiation used (video's only when video is on)."""
        return self.audio_codecs, (self.video_codecs if self.video_port is not None else None)

    def _memo_key(self, body: bytes) -> MemoKey:
        """Everything but the per-call values an initial answer to ``body`` depends on.

        The codec tuples go in by id (hashing codecs is dear); the memo entry
        keeps them alive, so a live entry's ids are those of its tuples.
        """
        video = self.video_codecs if self.video_port is not None else None
        return (
            body,
            type(self),  # a subclass may negotiate otherwise
            self.address,
            id(self.audio_codecs),
            None if video is None else id(video),
            self.session_name,
            self.username,
            self.direction._value_,  # a str: the Enum's __hash__ is Python code
            self.protos,
            self.single_codec,
            self.rtcp_mux,
        )

    def _answer_from(
        self, entry: Answered, values: tuple[int, int, int, int]
    ) -> tuple[bytes, bool]:
        """What :meth:`receive_offer_bytes` does for a first offer seen before.

        The same steps as :meth:`_set_remote_offer` and :meth:`_create_answer`,
        with the per-m-line work done: the offer and the streams are shared (this
        class never changes them once taken), the m-sections of our answer are
        this call's copies with its ports, the accepted results get its ports.
        """
        media = [md.copy() for md in entry.media]
        results = list(entry.negotiated)
        accepted = False
        for index, result in enumerate(results):
            if not result.rejected:
                port = self._port_for(result.media)
                media[index].port = port
                accepted = accepted or port != 0
                if result.local_port != port:
                    results[index] = _with_local_port(result, port)
        self._last_answer = None
        self._state_before = self._state
        answer = self._stamp(self._session(media))
        self._commit(list(entry.streams), results, local=answer, remote=entry.offer)
        self._pending_offer = None
        return entry.render(values), accepted

    def set_remote_offer(self, offer: SessionDescription) -> None:
        """Take the peer's offer; the answer comes from :meth:`create_answer`."""
        self._set_remote_offer(offer, True)

    def _set_remote_offer(self, offer: SessionDescription, copy: bool) -> None:
        if self._state is OfferAnswerState.OFFER_SENT:
            raise GlareError()
        if self._state is OfferAnswerState.OFFER_RECEIVED:
            raise OfferAnswerError("offer received before the previous one was answered", 500)
        if len(offer.media) < len(self._streams):
            raise SdpError(
                f"offer has {len(offer.media)} m-lines, the session {len(self._streams)}", 488
            )
        self._pending_offer = offer.copy() if copy else offer
        self._last_answer = None
        self._state_before = self._state
        self._state = OfferAnswerState.OFFER_RECEIVED

    def create_answer(self) -> SessionDescription:
        """Our answer to the offer given to :meth:`set_remote_offer` (RFC 3264 §6).

        Every offered m-line is answered in order; those with an unsupported
        media type or protocol, no common codec, or a second stream of a kind
        already accepted get port 0.
        """
        return self._create_answer(True)

    def _create_answer(self, copy: bool) -> SessionDescription:
        offer = self._pending_offer
        if self._state is not OfferAnswerState.OFFER_RECEIVED or offer is None:
            raise OfferAnswerError(f"no offer to answer in state {self._state.value}")
        taken: set[str] = set()
        media: list[MediaDescription] = []
        streams: list[_Stream] = []
        results: list[NegotiatedStream] = []
        for index, om in enumerate(offer.media):
            md, stream, result = self._answer_media(index, offer, om, taken)
            media.append(md)
            streams.append(stream)
            results.append(result)
        answer = self._stamp(self._session(media))
        self._commit(streams, results, local=answer, remote=offer)
        self._pending_offer = None
        return answer.copy() if copy else answer

    def reject_offer(self) -> None:
        """Drop the peer's offer without answering (the request got 488 or similar)."""
        if self._state is not OfferAnswerState.OFFER_RECEIVED:
            raise OfferAnswerError(f"no offer to reject in state {self._state.value}")
        self._pending_offer = None
        self._state = self._state_before

    # -- internals -------------------------------------------------------------

    def _require_can_offer(self) -> None:
        if self._state is OfferAnswerState.OFFER_SENT:
            raise OfferAnswerError("an offer is already outstanding", 491)
        if self._state is OfferAnswerState.OFFER_RECEIVED:
            raise OfferAnswerError("answer the peer's offer before making one", 500)

    def _codecs_for(self, media: str) -> tuple[Codec, ...]:
        if media == "audio":
            return self.audio_codecs
        if media == "video" and self.video_port is not None:
            return self.video_codecs
        return ()

    def _port_for(self, media: str) -> int:
        return (self.video_port or 0) if media == "video" else self.audio_port

    def _local_direction(self) -> Direction:
        if self._held:
            return self.direction.intersect(Direction.SENDONLY)
        return self.direction

    def _session(self, media: list[MediaDescription]) -> SessionDescription:
        conn = _connection_for(self.address)
        origin = _origin(
            self.username, str(self.session_id), self._version, "IN", conn.addrtype, self.address
        )
        return SessionDescription(
            origin=origin,
            session_name=self.session_name,
            connection=conn,
            times=[Timing()],
            media=media,
        )

    def _stamp(self, sd: SessionDescription) -> SessionDescription:
        """Set the session version: +1 only if the content differs from what we last sent."""
        last = self._last_sent
        if last is not None and not _same_but_version(sd, last):
            self._version += 1
        origin = sd.origin
        if origin.sess_version != self._version:
            sd.origin = _origin(
                origin.username,
                origin.sess_id,
                self._version,
                origin.nettype,
                origin.addrtype,
                origin.address,
            )
        self._last_sent = sd  # callers get copies (or, with copy=False, must not change it)
        return sd

    def _offer_media(self, media: str, proto: str, stream: _Stream | None) -> MediaDescription:
        direction = self._local_direction()
        if self._held and stream is not None and not stream.remote_direction.receives:
            direction = direction.intersect(Direction.RECVONLY)
        bindings = {} if stream is None else stream.bindings
        used: set[int] = set()
        chosen: list[Codec] = []
        for codec in self._codecs_for(media):
            pt = _pick_payload_type(codec, bindings, used)
            if pt is not None:
                used.add(pt)
                chosen.append(codec.with_payload_type(pt))
        md = MediaDescription(
            media, self._port_for(media), proto, [str(c.payload_type) for c in chosen]
        )
        _describe(md, chosen, direction)
        if self.rtcp_mux:
            md.attributes.append(_RTCP_MUX)
        return md

    def _reoffer_media(self, stream: _Stream) -> MediaDescription:
        if stream.rejected or not self._codecs_for(stream.media):
            return MediaDescription(stream.media, 0, stream.proto, list(stream.formats))
        return self._offer_media(stream.media, stream.proto, stream)

    def _answer_media(
        self, index: int, offer: SessionDescription, om: MediaDescription, taken: set[str]
    ) -> tuple[MediaDescription, _Stream, NegotiatedStream]:
        previous = self._streams[index] if index < len(self._streams) else None
        bindings = dict(previous.bindings) if previous and previous.media == om.media else {}
        offered = _keyed_media_codecs(om)
        _bind_keyed(bindings, offered)
        remote_direction, remote = _remote(offer, om)
        chosen: list[Codec] = []
        if om.port != 0 and om.media not in taken and om.proto in self.protos:
            chosen = self._intersect(self._codecs_for(om.media), offered)
        # _intersect puts telephone-event last: a first codec that is not one means a codec.
        if not chosen or chosen[0].is_telephone_event:
            md = MediaDescription(om.media, 0, om.proto, list(om.formats))
            stream = _Stream(om.media, om.proto, list(om.formats), True, remote_direction, bindings)
            return md, stream, _rejected(index, om, om.port, remote)
        taken.add(om.media)
        direction = self._local_direction().intersect(remote_direction.reversed())
        port = self._port_for(om.media)
        md = MediaDescription(om.media, port, om.proto, [str(c.payload_type) for c in chosen])
        _describe(md, chosen, direction)
        if self.rtcp_mux and om.has("rtcp-mux"):
            md.attributes.append(_RTCP_MUX)  # RFC 5761 §5.1.1: the answer accepts it
        stream = _Stream(om.media, om.proto, list(md.formats), False, remote_direction, bindings)
        result = _accepted(index, om, port, remote, om.port, chosen, direction)
        return md, stream, result

    def _intersect(
        self, local: Sequence[Codec], offered: Sequence[tuple[_CodecKey, Codec]]
    ) -> list[Codec]:
        """Common codecs in local order, with the offer's payload types and fmtp (§6.1).

        ``offered`` are the offer's codecs with their keys (``_keyed_media_codecs``).
        """
        codecs: list[Codec] = []
        events: list[Codec] = []
        used: set[int | None] = set()
        for mine in local:
            key = mine.key
            h264 = key[0] == "h264"  # matches() looks further than the key only for H.264
            for their_key, theirs in offered:
                if (
                    their_key == key
                    and theirs.payload_type not in used
                    and (not h264 or mine.matches(theirs))
                ):
                    break
            else:
                continue
            used.add(theirs.payload_type)
            (events if key[0] == "telephone-event" else codecs).append(theirs)
        if self.single_codec:
            codecs = codecs[:1]
        return codecs + events

    def _take_answer(
        self,
        index: int,
        offer: SessionDescription,
        om: MediaDescription,
        answer: SessionDescription,
        am: MediaDescription,
    ) -> tuple[_Stream, NegotiatedStream]:
        where = f"m-line {index + 1}"
        if am.media != om.media or am.proto != om.proto:
            raise SdpError(f"{where}: answered as {am.media} {am.proto}", 488)
        previous = self._streams[index] if index < len(self._streams) else None
        bindings = dict(previous.bindings) if previous and previous.media == om.media else {}
        _bind(bindings, om)
        remote_direction, remote = _remote(answer, am)
        if am.port == 0:
            stream = _Stream(om.media, om.proto, list(om.formats), True, remote_direction, bindings)
            return stream, _rejected(index, om, 0, remote)
        if om.port == 0:
            raise SdpError(f"{where}: answer accepts a stream the offer disabled", 488)
        unknown = [f for f in am.formats if f not in om.formats]
        if unknown:
            raise SdpError(f"{where}: payload types {' '.join(unknown)} not offered", 488)
        offered = {c.payload_type: c for c in media_codecs(om)}
        for codec in media_codecs(am):
            mine = offered.get(codec.payload_type)
            if mine is not None and mine.key != codec.key:
                raise SdpError(
                    f"{where}: payload type {codec.payload_type} offered as {mine}, "
                    f"answered as {codec}",
                    488,
                )
        chosen: list[Codec] = []
        for fmt in am.formats:
            mine = offered.get(int(fmt)) if _is_pt(fmt) else None
            if mine is not None and mine.payload_type is not None:
                chosen.append(mine.with_payload_type(mine.payload_type, am.fmtp(fmt)))
        if not any(not c.is_telephone_event for c in chosen):
            raise SdpError(f"{where}: no codec in common with the offer", 488)
        _bind(bindings, am)
        direction = offer.effective_direction(om).intersect(remote_direction.reversed())
        stream = _Stream(om.media, om.proto, list(om.formats), False, remote_direction, bindings)
        result = _accepted(index, om, om.port, remote, am.port, chosen, direction)
        return stream, result

    def _commit(
        self,
        streams: list[_Stream],
        results: list[NegotiatedStream],
        *,
        local: SessionDescription,
        remote: SessionDescription,
    ) -> None:
        # Never changed once here (replaced, read, copied out): the answer memo shares
        # the offer and the streams of a first answer between calls.
        self._streams = streams
        self._negotiated = results
        self._local = local
        self._remote = remote  # not the caller's (a copy, or given with copy=False)
        self._state = OfferAnswerState.STABLE
