"""Answers to offers seen before, for :meth:`OfferAnswer.receive_offer_bytes`.

Under load the offers of new calls are mostly byte-identical (sipp sends the
same SDP every call; a trunk sends one of a few), and so is everything our
answer depends on but our RTP ports and the ``o=`` line's session id and
version. An offer is parsed and negotiated as always the first two times a
negotiator with one configuration gets it as its first offer; the second
time, what came of it is kept here: the parsed offer, the per-m-line state,
the negotiated streams, our answer's m-sections, and our answer's bytes with
those per-call values left out. From then on, a negotiator that gets the
same bytes as its first offer takes all that and fills in its own values,
without parsing or negotiating.

What is kept is shared with the call that made it and with every call
answered from it, so it must never change: :class:`OfferAnswer` never
changes a description or a stream once it has taken it (it replaces them,
reads them, and hands out copies), and each call gets its own copies of our
m-sections (its ports go into them), and its own results where its port differs.

Bounded: at most :attr:`AnswerMemo.max_entries` answers (the least recently
used go first), as many hashes of offers seen once, and no offer longer
than :attr:`AnswerMemo.max_offer_bytes`; a peer sending ever new offers
costs a few hundred entries at most, and pushes out no entry for an offer
it sends only once. Offers that do not parse are not kept: each raises its
error afresh.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter
from typing import Final, NamedTuple

from sipwire.sdp.codecs import Codec
from sipwire.sdp.negotiation import NegotiatedStream, _Stream
from sipwire.sdp.session import MediaDescription, SessionDescription

__all__ = ["AnswerMemo", "Answered", "answer_memo"]

MemoKey = tuple[object, ...]
"""The offer's bytes and the negotiator's configuration (``OfferAnswer._memo_key``)."""

Values = tuple[int, int, int, int]
"""A call's own values: the o= line's sess-id and sess-version, our audio and video ports."""


class Answered(NamedTuple):
    """What answering one offer gave, without the values of the call that answered it."""

    offer: SessionDescription
    """The parsed offer: the remote description of each call answered from here."""
    streams: tuple[_Stream, ...]
    """The negotiator's per-m-line memory after the answer."""
    negotiated: tuple[NegotiatedStream, ...]
    """The result; the ``local_port`` of accepted streams is the caller's."""
    media: tuple[MediaDescription, ...]
    """Our answer's m-sections (each call gets copies); accepted ones take its port."""
    template: bytes
    """Our answer's bytes with ``%d`` for each of a call's :data:`Values` (``%%`` for ``%``)."""
    pick: Callable[[Values], tuple[int, ...]]
    """The call's values in the order of the template's ``%d``."""
    codecs: tuple[tuple[Codec, ...], tuple[Codec, ...] | None]
    """The codec tuples whose ids are in the key: kept alive so that no other tuple has them."""

    def render(self, values: Values) -> bytes:
        """Our answer's bytes for a call's ``values``."""
        return self.template % self.pick(values)


def answered(
    offer: SessionDescription,
    streams: tuple[_Stream, ...],
    negotiated: tuple[NegotiatedStream, ...],
    answer: SessionDescription,
    data: bytes,
    values: Values,
    codecs: tuple[tuple[Codec, ...], tuple[Codec, ...] | None],
) -> Answered | None:
    """The memo entry for an answer just made, or None if its bytes do not make a template.

    ``answer`` is our answer, ``data`` its bytes, ``values`` the call's values
    it was made with (plain ints). Those values are in the o= line and in the
    m= lines of accepted streams (the lines after a CRLF that start ``m=``),
    and nowhere else: there the template gets ``%d``. It must give ``data``
    back for ``values``, or there is no entry.
    """
    sections = data.replace(b"%", b"%%").split(b"\r\nm=")
    head = sections[0].split(b"\r\n", 2)  # v=, o=, the rest
    if len(sections) != len(answer.media) + 1 or len(head) != 3:
        return None
    origin = answer.origin
    head[1] = b"".join(
        [
            _escaped(f"o={origin.username} "),
            b"%d %d ",
            _escaped(f"{origin.nettype} {origin.addrtype} {origin.address}"),
        ]
    )
    sections[0] = b"\r\n".join(head)
    order = [0, 1]
    for index, (md, stream) in enumerate(zip(answer.media, negotiated, strict=True), 1):
        if not stream.rejected:
            prefix = _escaped(f"{md.media} {md.port} ")
            if not sections[index].startswith(prefix):
                return None
            sections[index] = _escaped(f"{md.media} ") + b"%d " + sections[index][len(prefix) :]
            order.append(3 if md.media == "video" else 2)
    template = b"\r\nm=".join(sections)
    pick = itemgetter(*order)
    entry = Answered(offer, streams, negotiated, tuple(answer.media), template, pick, codecs)
    try:
        same = entry.render(values) == data
    except (TypeError, ValueError):  # the layout was not the one expected: fields amiss
        return None
    return entry if same else None


def _escaped(text: str) -> bytes:
    """``text`` in bytes as ``bytes()`` of a description gives it, with ``%`` doubled."""
    return text.encode("utf-8", "surrogateescape").replace(b"%", b"%%")


class AnswerMemo:
    """A bounded least-recently-used map from :data:`MemoKey` to :class:`Answered`."""

    def __init__(self, max_entries: int = 256, max_offer_bytes: int = 4096) -> None:
        self.max_entries = max_entries
        self.max_offer_bytes = max_offer_bytes
        """Longer offers are neither looked up nor kept."""
        self.hits = 0
        self.misses = 0
        self._entries: dict[MemoKey, Answered] = {}
        self._seen: dict[int, None] = {}
        """The hashes of keys missed once, oldest first."""

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: MemoKey) -> Answered | None:
        """The entry for ``key`` (now the most recently used), or None."""
        entries = self._entries
        entry = entries.pop(key, None)
        if entry is None:
            self.misses += 1
            return None
        entries[key] = entry  # to the end: the most recently used
        self.hits += 1
        return entry

    def admit(self, key: MemoKey) -> bool:
        """Whether to keep the answer to ``key``, just missed: yes the second time.

        An offer seen once may never come again (each call's own ports and ids);
        making its entry would cost more than the memo saves, and would push out
        entries of the offers that do come again. So the first miss is only
        noted (the key's hash, as many as there may be entries).
        """
        seen = self._seen
        digest = hash(key)
        if digest in seen:
            del seen[digest]
            return True
        seen[digest] = None
        while len(seen) > self.max_entries:
            del seen[next(iter(seen))]
        return False

    def put(self, key: MemoKey, entry: Answered) -> None:
        """Keep ``entry``, dropping the least recently used beyond :attr:`max_entries`."""
        entries = self._entries
        entries.pop(key, None)
        entries[key] = entry
        while len(entries) > self.max_entries:
            del entries[next(iter(entries))]

    def clear(self) -> None:
        """Forget every entry, every key seen (and the counts)."""
        self._entries.clear()
        self._seen.clear()
        self.hits = self.misses = 0


answer_memo: Final = AnswerMemo()
"""The memo every :class:`OfferAnswer` of the process uses."""
