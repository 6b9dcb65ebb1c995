"""What a stream sends and where what it receives goes.

- :class:`AudioSource`: the PCM a stream sends, one packet time at a time:
  the queued playbacks (``call.play()``, tones) in order, mixed with the
  application's own audio (``call.send_audio()``), which is buffered up to
  a bound; a writer that gets ahead waits (backpressure), echo drops.
- :class:`FrameReaders`: the readers of ``call.audio()``; each has a
  bounded queue, and a reader that falls behind loses its oldest frames
  (counted), never stalls the stream.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator

import numpy as np
from numpy.typing import NDArray

from sipwire.media.frame import Frame

__all__ = ["AudioSource", "FrameReaders"]

Pcm = NDArray[np.int16]


class _Playback:
    __slots__ = ("done", "pcm", "position")

    def __init__(self, pcm: Pcm, done: asyncio.Future[None]) -> None:
        self.pcm = pcm
        self.position = 0
        self.done = done


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class AudioSource:
    """Playbacks in turn, mixed with a bounded buffer of application audio."""

    def __init__(self, buffer_samples: int) -> None:
        self.buffer_samples = max(1, buffer_samples)
        self._playbacks: deque[_Playback] = deque()
        self._chunks: deque[Pcm] = deque()
        self._buffered = 0
        self._space: asyncio.Event | None = None
        self.dropped_samples = 0
        """Samples ``push()`` refused because the buffer was full."""
        self.closed = False

    @property
    def playing(self) -> bool:
        """Whether a playback is queued or under way."""
        return bool(self._playbacks)

    @property
    def buffered(self) -> int:
        """Samples of application audio waiting to be sent."""
        return self._buffered

    def play(self, pcm: Pcm) -> asyncio.Future[None]:
        """Queue ``pcm`` after the playbacks already queued; the future is done when
        its last sample was sent (or the stream closed, or ``stop()`` was called)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.closed or len(pcm) == 0:
            done.set_result(None)
        else:
            self._playbacks.append(_Playback(pcm, done))
        return done

    def stop(self) -> None:
        """End every playback now."""
        while self._playbacks:
            _settle(self._playbacks.popleft().done)

    def push(self, pcm: Pcm) -> bool:
        """Buffer ``pcm`` unless that would pass the bound (then drop it: False)."""
        if self.closed:
            return False
        if self._buffered + len(pcm) > self.buffer_samples:
            self.dropped_samples += len(pcm)
            return False
        if len(pcm):
            self._chunks.append(pcm)
            self._buffered += len(pcm)
        return True

    async def write(self, pcm: Pcm) -> None:
        """Buffer ``pcm``, first waiting while the buffer holds more than its bound."""
        while (
            not self.closed
            and self._buffered > 0
            and (self._buffered + len(pcm) > self.buffer_samples)
        ):
            if self._space is None:
                self._space = asyncio.Event()
            await self._space.wait()
        if self.closed or len(pcm) == 0:
            return
        self._chunks.append(pcm)
        self._buffered += len(pcm)

    def _take_buffer(self, count: int) -> Pcm | None:
        if not self._buffered:
            return None
        chunks = self._chunks
        if len(chunks[0]) == count:  # the common case: a frame in, a frame out
            self._buffered -= count
            self._wake_writer()
            return chunks.popleft()
        out = np.zeros(count, np.int16)
        filled = 0
        chunks = self._chunks
        while filled < count and chunks:
            chunk = chunks[0]
            take = min(count - filled, len(chunk))
            out[filled : filled + take] = chunk[:take]
            filled += take
            if take == len(chunk):
                chunks.popleft()
            else:
                chunks[0] = chunk[take:]
        self._buffered -= filled
        self._wake_writer()
        return out

    def _wake_writer(self) -> None:
        space = self._space
        if space is not None:
            self._space = None
            space.set()

    def _take_playback(self, count: int) -> Pcm | None:
        if not self._playbacks:
            return None
        first = self._playbacks[0]
        end = first.position + count
        if end < len(first.pcm):  # within one playback: a view, no copy
            pcm = first.pcm[first.position : end]
            first.position = end
            return pcm
        out = np.zeros(count, np.int16)
        filled = 0
        while filled < count and self._playbacks:
            playback = self._playbacks[0]
            take = min(count - filled, len(playback.pcm) - playback.position)
            out[filled : filled + take] = playback.pcm[playback.position : playback.position + take]
            playback.position += take
            filled += take
            if playback.position >= len(playback.pcm):
                self._playbacks.popleft()
                _settle(playback.done)
        return out

    def pull(self, count: int) -> Pcm | None:
        """The next ``count`` samples to send, or None when there is nothing to send."""
        played = self._take_playback(count)
        own = self._take_buffer(count)
        if played is None:
            return own
        if own is None:
            return played
        mixed = played.astype(np.int32) + own
        out: Pcm = np.clip(mixed, -32768, 32767).astype(np.int16)
        return out

    def close(self) -> None:
        """The stream ended: playbacks end, writers return, nothing more is taken."""
        self.closed = True
        self.stop()
        self._chunks.clear()
        self._buffered = 0
        space, self._space = self._space, None
        if space is not None:
            space.set()


class _Reader:
    __slots__ = ("frames", "wake")

    def __init__(self, limit: int) -> None:
        self.frames: deque[Frame] = deque(maxlen=limit)
        self.wake: asyncio.Event | None = None


class FrameReaders:
    """Readers of the frames a stream plays out, each with a bounded queue."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._readers: list[_Reader] = []
        self.dropped = 0
        """Frames readers lost for being too far behind."""
        self.closed = False

    def __bool__(self) -> bool:
        return bool(self._readers)

    def deliver(self, frame: Frame) -> None:
        """Give ``frame`` to every reader."""
        for reader in self._readers:
            if len(reader.frames) == self.limit:
                self.dropped += 1
            reader.frames.append(frame)
            wake, reader.wake = reader.wake, None
            if wake is not None:
                wake.set()

    def close(self) -> None:
        """No frame will follow: readers end once they have read theirs."""
        self.closed = True
        for reader in self._readers:
            wake, reader.wake = reader.wake, None
            if wake is not None:
                wake.set()

    async def read(self) -> AsyncIterator[Frame]:
        """Frames from now on until the stream ends."""
        reader = _Reader(self.limit)
        self._readers.append(reader)
        try:
            while True:
                if reader.frames:
                    yield reader.frames.popleft()
                    continue
                if self.closed:
                    return
                reader.wake = asyncio.Event()
                await reader.wake.wait()
        finally:
            self._readers.remove(reader)
