"""What a stream sends and hands out: playbacks in turn mixed with the application's
audio, a bounded send buffer that makes writers wait, readers that never hold the
stream up."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from sipwire.aio.media.sources import AudioSource, FrameReaders
from sipwire.media.frame import Frame

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(10)]


def ramp(start: int, count: int) -> np.ndarray:
    return np.arange(start, start + count, dtype=np.int16)


async def test_playbacks_play_in_turn_and_finish_when_sent() -> None:
    source = AudioSource(1600)
    first = source.play(ramp(0, 200))
    second = source.play(ramp(1000, 100))
    assert source.pull(160).tolist() == list(range(160))  # type: ignore[union-attr]
    assert not first.done()
    chunk = source.pull(160)
    assert chunk is not None
    assert chunk[:40].tolist() == list(range(160, 200))
    assert chunk[40:140].tolist() == list(range(1000, 1100))
    assert chunk[140:].tolist() == [0] * 20
    assert first.done() and second.done()
    assert source.pull(160) is None


async def test_application_audio_is_mixed_with_what_plays_and_clipped() -> None:
    source = AudioSource(1600)
    source.play(np.full(160, 30000, np.int16))
    assert source.push(np.full(160, 10000, np.int16))
    mixed = source.pull(160)
    assert mixed is not None and mixed.tolist() == [32767] * 160


async def test_a_writer_waits_while_the_buffer_is_full_and_push_drops() -> None:
    source = AudioSource(320)
    await source.write(ramp(0, 320))
    writer = asyncio.ensure_future(source.write(ramp(320, 160)))
    await asyncio.sleep(0.01)
    assert not writer.done()  # backpressure: 320 samples wait already
    assert not source.push(ramp(0, 10))
    assert source.dropped_samples == 10
    source.pull(160)
    await asyncio.wait_for(writer, 1)
    assert source.buffered == 320
    source.close()
    await asyncio.wait_for(source.write(ramp(0, 1000)), 1)  # closed: returns at once


async def test_stop_and_close_end_the_playbacks() -> None:
    source = AudioSource(160)
    playing = source.play(ramp(0, 8000))
    source.stop()
    assert playing.done() and not source.playing
    later = source.play(ramp(0, 8000))
    source.close()
    assert later.done()
    assert source.play(ramp(0, 10)).done()


async def test_a_slow_reader_loses_the_oldest_frames_and_ends_with_the_stream() -> None:
    readers = FrameReaders(limit=3)
    got: list[int] = []

    async def read() -> None:
        async for frame in readers.read():
            got.append(frame.timestamp)

    task = asyncio.ensure_future(read())
    await asyncio.sleep(0)
    for timestamp in range(0, 1600, 160):  # ten frames before the reader runs again
        readers.deliver(Frame(np.zeros(160, np.int16), 8000, timestamp))
    readers.close()
    await asyncio.wait_for(task, 1)
    assert got == [1120, 1280, 1440]
    assert readers.dropped == 7
