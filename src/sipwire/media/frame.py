"""An audio frame: what the jitter buffer plays out and what an application
sends (the later asyncio API, ``call.audio()`` and ``send_audio()``, carries these)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["Frame"]


@dataclass(slots=True, eq=False)
class Frame:
    """Some milliseconds of 16-bit linear PCM. A value: treat it as read-only
    (not frozen only because a frozen dataclass costs twice the time to make,
    and one is made per packet).

    ``pcm`` holds ``samples * channels`` int16 values, interleaved when
    there is more than one channel. ``timestamp`` is where the frame starts
    in RTP units of ``clock_rate`` (the codec's RTP clock, which is not
    always the sample rate: G.722 has 8000 for 16 kHz audio); it is
    *extended*, never wrapped to 32 bits, so it grows for the whole stream.
    """

    pcm: NDArray[np.int16]
    sample_rate: int
    timestamp: int = 0
    clock_rate: int = 0
    """RTP clock rate of ``timestamp``; 0 means the same as ``sample_rate``."""
    channels: int = 1
    concealed: bool = False
    """True when packet-loss concealment made the frame (or silence stood in)."""

    @property
    def samples(self) -> int:
        """Samples per channel."""
        return len(self.pcm) // self.channels

    @property
    def duration(self) -> float:
        """Seconds of audio."""
        return len(self.pcm) / (self.sample_rate * self.channels)

    @property
    def time(self) -> float:
        """``timestamp`` in seconds (of the sender's media clock)."""
        return self.timestamp / (self.clock_rate or self.sample_rate)

    @classmethod
    def silence(
        cls, samples: int, sample_rate: int, timestamp: int = 0, clock_rate: int = 0
    ) -> Frame:
        """``samples`` of digital silence."""
        return cls(np.zeros(samples, np.int16), sample_rate, timestamp, clock_rate, 1, True)
