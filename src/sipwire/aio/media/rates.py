"""Between the application's audio rate and the codec's: :class:`RateAdapter`.

The application hears and speaks at one rate for the whole call
(``RtpConfig.sample_rate``, or the rate of the first codec agreed); the codec
samples at its own (8 kHz G.711, 16 kHz G.722, 48 kHz Opus). When the two
differ, PCM goes through libsoxr's streaming resampler in each direction, so
a re-INVITE that changes the codec changes nothing the application sees:
playbacks, ``send_audio()`` and recordings carry on at their rate.

Sending, the encoder needs exactly one packet's samples: the resampled audio
goes through a small queue. When the filter holds back more than the queue
has (its start, a codec change), more of the application's audio is read
ahead rather than silence sent; what is pending when the codec changes is
carried over to the new codec's rate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import numpy as np
from numpy.typing import NDArray

from sipwire.aio.media.audio import StreamResampler, _to_pcm, resample
from sipwire.media.frame import Frame

__all__ = ["RateAdapter"]

Pcm = NDArray[np.int16]

_READ_AHEAD: Final = 3
"""Packets of the application's audio read ahead at most to fill one packet."""


class RateAdapter:
    """PCM at ``app_rate`` to ``codec_rate`` for the encoder, and frames the decoders
    give (at whatever rate) to ``app_rate``."""

    __slots__ = ("_incoming", "_outgoing", "_queue", "app_rate", "codec_rate")

    def __init__(self, app_rate: int, codec_rate: int) -> None:
        self.app_rate = app_rate
        self.codec_rate = codec_rate
        self._outgoing = StreamResampler(app_rate, codec_rate) if app_rate != codec_rate else None
        self._queue: Pcm | None = None
        self._incoming: dict[int, StreamResampler] = {}

    @property
    def resamples_outgoing(self) -> bool:
        """Whether what is sent is resampled (else it passes as it is)."""
        return self._outgoing is not None

    def app_samples(self, codec_samples: int) -> int:
        """Samples at the application's rate for ``codec_samples`` at the codec's."""
        return codec_samples * self.app_rate // self.codec_rate

    def outgoing(self, pcm: Pcm, samples: int, more: Callable[[], Pcm | None] | None = None) -> Pcm:
        """``samples`` of PCM at the codec's rate for the encoder, from ``pcm`` (about
        that much at the application's rate) and, while the filter holds back too
        much, from ``more()`` (the application's next audio; None: there is none)."""
        resampler = self._outgoing
        if resampler is None:
            return pcm
        queue = resampler(pcm)
        if self._queue is not None and len(self._queue):
            queue = np.concatenate((self._queue, queue))
        for _ in range(_READ_AHEAD):
            if len(queue) >= samples or more is None:
                break
            extra = more()
            if extra is None:
                break
            queue = np.concatenate((queue, resampler(extra)))
        if len(queue) < samples:
            queue = np.concatenate((np.zeros(samples - len(queue), np.int16), queue))
        out, self._queue = queue[:samples], queue[samples:]
        return out

    def switch(self, codec_rate: int) -> RateAdapter:
        """The adapter for a new codec rate, with what this one still holds (the
        filter's tail and the queue) resampled to it: nothing is lost."""
        adapter = RateAdapter(self.app_rate, codec_rate)
        pending: Pcm = np.zeros(0, np.int16)
        if self._outgoing is not None:
            tail = self._outgoing(np.zeros(0, np.int16), end=True)
            queued = self._queue if self._queue is not None else pending
            pending = np.concatenate((queued, tail))
            if len(pending):
                pending = _to_pcm(resample(pending / 32768.0, self.codec_rate, codec_rate))
        adapter._queue = pending
        return adapter

    def incoming(self, frame: Frame) -> Frame:
        """``frame`` at the application's rate (mono)."""
        rate = frame.sample_rate
        if rate == self.app_rate or frame.channels != 1:
            return frame
        resampler = self._incoming.get(rate)
        if resampler is None:
            self._incoming.clear()  # one decoder rate at a time: the codec changed
            resampler = self._incoming[rate] = StreamResampler(rate, self.app_rate)
        return Frame(
            resampler(frame.pcm),
            self.app_rate,
            frame.timestamp,
            frame.clock_rate or rate,
            1,
            frame.concealed,
        )
