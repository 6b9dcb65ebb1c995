"""The audio methods of :class:`~sipwire.Call` (a mixin): play, record, tones,
frames in and out, DTMF both ways, statistics.

They work on the call's :class:`~sipwire.aio.media.session.CallMedia`, which
exists when the agent carries media (``UserAgent(rtp=...)``, the default);
without it they raise :class:`NoMediaError`. Audio may be queued and readers
started before the call is up: media flows once it is answered.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from sipwire.aio.media.audio import StreamResampler, WavWriter, read_wav, resample, tone
from sipwire.aio.media.config import MediaStats
from sipwire.aio.media.session import CallMedia
from sipwire.aio.timeouts import REQUEST_TIMEOUT
from sipwire.errors import LocalProtocolError
from sipwire.media.frame import Frame

if TYPE_CHECKING:
    from sipwire.core.session import InviteSession
    from sipwire.message import Response

__all__ = ["CallAudioMixin", "NoMediaError"]

_DTMF = frozenset("0123456789*#ABCD")


class NoMediaError(LocalProtocolError):
    """The call carries no audio stream (RTP is off, or no port was free)."""


class CallAudioMixin:
    """Audio of a call; mixed into :class:`~sipwire.Call`."""

    session: InviteSession

    if TYPE_CHECKING:

        async def send_info(
            self,
            body: bytes | str,
            content_type: str = ...,
            *,
            timeout: float | None = ...,
        ) -> Response: ...

        def _require_up(self, what: str) -> None: ...

    @property
    def media(self) -> CallMedia | None:
        """The call's media (SDP and audio stream), or None when it carries none."""
        media = self.session.media
        return media if isinstance(media, CallMedia) else None

    def _media(self) -> CallMedia:
        media = self.media
        if media is None:
            raise NoMediaError("this call has no audio stream (the agent runs without RTP)")
        return media

    def _rate(self) -> int:
        """The call's audio rate (``RtpConfig.sample_rate``, or the first codec's)."""
        stream = self._media().stream
        params = stream.params
        return stream.audio_rate(params.codec.sample_rate if params is not None else 8000)

    # -- sending --------------------------------------------------------------------------------
    async def play(self, source: str | Frame | bytes) -> None:
        """Play audio; return once it was sent.

        ``source`` is the path of a WAV file (a str or any ``os.PathLike``; any
        rate and channels, resampled to the codec's rate with libsoxr), a
        :class:`~sipwire.media.Frame` (resampled likewise when its rate is
        another), or bytes of 16-bit little-endian mono PCM at the codec's
        rate. Playbacks queue: a second ``play()`` starts when the first ends.
        It returns early when the call ends or :meth:`stop_playing` is called.
        """
        media = self._media()
        if isinstance(source, Frame | bytes | bytearray):
            pcm = self._pcm(source)
        else:
            path = os.fspath(source)
            pcm = await asyncio.get_running_loop().run_in_executor(
                None, read_wav, path, self._rate()
            )
        await media.stream.source.play(pcm)

    def _pcm(self, audio: Frame | bytes | bytearray | NDArray[np.int16]) -> NDArray[np.int16]:
        """Mono 16-bit PCM at the codec's rate from what the application gave."""
        if isinstance(audio, bytes | bytearray):
            return np.frombuffer(bytes(audio), "<i2").astype(np.int16)
        if not isinstance(audio, Frame):
            return np.asarray(audio, np.int16)
        pcm = audio.pcm
        if audio.channels > 1:
            pcm = pcm.reshape(-1, audio.channels).mean(axis=1).astype(np.int16)
        rate = self._rate()
        if audio.sample_rate != rate:
            samples = resample(pcm.astype(np.float64) / 32768.0, audio.sample_rate, rate)
            pcm = np.clip(np.round(samples * 32767.0), -32768, 32767).astype(np.int16)
        return pcm

    async def play_tone(
        self, frequency: float | list[float], duration: float, *, level: float = 0.5
    ) -> None:
        """Play a sine of ``frequency`` Hz (or the sum of several, such as the
        ``[350, 440]`` of a dial tone) for ``duration`` s at ``level`` of full scale."""
        rate = self._rate()
        frequencies = tuple(frequency) if isinstance(frequency, list) else frequency
        await self.play(Frame(tone(frequencies, duration, rate=rate, level=level), rate))

    def stop_playing(self) -> None:
        """End the playbacks under way and queued."""
        self._media().stream.source.stop()

    async def send_audio(self, audio: Frame | bytes, *, end: bool = False) -> None:
        """Send audio of any length: a :class:`~sipwire.media.Frame` (a numpy int16
        array at the codec's rate is taken too), or bytes of 16-bit little-endian
        mono PCM at the codec's rate (8000 Hz for G.711).

        Frames at another rate go through one streaming resampler (no seams
        between pieces), which holds back about 0.1 s: ``end=True`` on the last
        piece of an utterance lets it all out.

        It is buffered and sent in packet-time slices, mixed with what plays.
        Backpressure: when more than ``RtpConfig.send_buffer`` seconds wait, it
        waits until the stream has taken enough; it never blocks the loop.
        """
        media = self._media()
        rate = self._rate()
        if isinstance(audio, Frame) and audio.sample_rate != rate:
            pcm = audio.pcm
            if audio.channels > 1:
                pcm = pcm.reshape(-1, audio.channels).mean(axis=1).astype(np.int16)
            resampler = media.resampler
            if resampler is None or resampler.rate_in != audio.sample_rate:
                resampler = media.resampler = StreamResampler(audio.sample_rate, rate)
            await media.stream.source.write(resampler(pcm, end=end))
            return
        await media.stream.source.write(self._pcm(audio))

    @property
    def echo(self) -> bool:
        """Send back what is received (after the jitter buffer)."""
        media = self.media
        return media is not None and media.stream.echo

    @echo.setter
    def echo(self, on: bool) -> None:
        self._media().stream.echo = on

    # -- receiving ------------------------------------------------------------------------------
    def record(self, path: str) -> WavWriter:
        """Record what is received to a 16-bit PCM mono WAV file at ``path`` (a str
        or any ``os.PathLike``) until the call ends (or ``stop_recording()``); lost
        packets are in it as concealment."""
        media = self._media()
        writer = WavWriter(path, self._rate())
        if media.closed:
            writer.close()
        else:
            media.stream.recorders.append(writer)
        return writer

    def stop_recording(self) -> None:
        """Finish every recording of the call."""
        stream = self._media().stream
        for writer in stream.recorders:
            writer.close()
        stream.recorders.clear()

    async def audio(self) -> AsyncIterator[Frame]:
        """The received audio as it plays out of the jitter buffer: one
        :class:`~sipwire.media.Frame` per packet time, with its RTP timestamp,
        until the call ends. A reader more than ``RtpConfig.frame_queue`` frames
        behind loses the oldest; it never holds the stream up."""
        async for frame in self._media().stream.readers.read():
            yield frame

    async def dtmf(self) -> AsyncIterator[str]:
        """DTMF digits received, RFC 4733 and INFO alike, in order, until the call ends
        (each reader from the first digit of the call)."""
        async for digit in self._media().digits.reader():
            yield digit

    def media_stats(self) -> MediaStats | None:
        """Packets, loss, jitter, RTT and the peer's reports; None without media."""
        media = self.media
        return None if media is None else media.stats()

    # -- DTMF out -------------------------------------------------------------------------------
    async def send_dtmf(
        self,
        digits: str,
        duration: int = 160,
        *,
        method: str | None = None,
        timeout: float | None = REQUEST_TIMEOUT,
    ) -> None:
        """Send DTMF digits (0-9, *, #, A-D), each ``duration`` milliseconds.

        ``method``: RFC 4733 telephone-events in the RTP stream when they were
        negotiated (``auto``, the default from ``RtpConfig.dtmf_method``),
        else SIP INFO ``application/dtmf-relay``, one request per digit
        (``timeout`` applies to each). Returns once every digit was sent.
        """
        for digit in digits:
            if digit.upper() not in _DTMF:
                raise ValueError(f"not a DTMF digit: {digit!r}")
        if method not in (None, "auto", "rfc4733", "info"):
            raise ValueError(f"DTMF method is auto, rfc4733 or info, not {method!r}")
        self._require_up("send DTMF in")
        media = self.media
        chosen = method or (media.manager.config.dtmf_method if media is not None else "info")
        events = media is not None and media.stream.can_send_events
        if chosen == "rfc4733" and not events:
            raise NoMediaError("telephone-event was not negotiated in this call")
        if chosen != "info" and events and media is not None:
            await media.stream.send_dtmf(digits.upper(), duration / 1000)
            return
        for digit in digits:
            body = f"Signal={digit.upper()}\r\nDuration={duration}\r\n"
            await self.send_info(body, "application/dtmf-relay", timeout=timeout)
