"""The life of a call's media: ports released, hold and resume, a changed codec
or address applied to the running stream, media timeout, frames in and out."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import random
import socket

import numpy as np
import pytest

from sipwire import Call, Frame, MediaConfig, MediaTimeout, RequestFailed, UserAgent, tone
from sipwire.media import PCMA
from sipwire.sdp import PCMA as SDP_PCMA
from sipwire.sdp import PCMU as SDP_PCMU
from sipwire.sdp import TELEPHONE_EVENT
from tests.aio.media.helpers import (
    agents,
    band_share,
    connect,
    peak_frequency,
    rtp_config,
    uri_of,
    wait_until,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


async def test_ports_are_released_after_every_call() -> None:
    async with agents(rtp_config(), rtp_config()) as (a, b):
        b.auto_answer()
        assert a.media is not None and b.media is not None
        for _ in range(40):
            call = await a.call(uri_of(b, "bob"), timeout=5)
            assert len(a.media.allocator.in_use) == 1
            await call.hangup()
            await wait_until(lambda: not b.media.allocator.in_use)
            assert not a.media.allocator.in_use
        assert not a.media.calls and not b.media.calls
        assert not a.media.running and not b.media.running


async def test_ports_of_calls_that_fail_are_released() -> None:
    pcma_only = MediaConfig(codecs=("PCMA",))
    async with agents(a_media=MediaConfig(codecs=("PCMU",)), b_media=pcma_only) as (a, b):
        b.auto_answer()
        assert a.media is not None and b.media is not None
        with pytest.raises(RequestFailed) as refused:  # no codec in common: 488
            await a.call(uri_of(b, "bob"), timeout=5)
        assert refused.value.status == 488
        with pytest.raises(ValueError):
            await a.call("not a uri", timeout=5)
        await wait_until(lambda: not a.media.allocator.in_use and not b.media.allocator.in_use)
        assert not a.media.calls and not b.media.calls

    async with agents() as (a, b):
        assert a.media is not None and b.media is not None

        @b.on_call
        async def busy(call: Call) -> None:
            await call.reject(486)

        with pytest.raises(RequestFailed):
            await a.call(uri_of(b, "bob"), timeout=5)
        await wait_until(lambda: not a.media.allocator.in_use and not b.media.allocator.in_use)


async def test_a_small_port_range_is_shared_in_turn_and_never_exceeded() -> None:
    config = rtp_config()
    two_pairs = MediaConfig(rtp_port_min=29990, rtp_port_max=29993)
    a = UserAgent("sip:alice@127.0.0.1", rtp=config, media=two_pairs)
    b = UserAgent("sip:bob@127.0.0.1", rtp=config)
    async with a, b:
        b.auto_answer()
        assert a.media is not None
        calls = [await a.call(uri_of(b, "bob"), timeout=5) for _ in range(2)]
        ports = {c.media.sockets.port for c in calls if c.media is not None}
        assert len(ports) == 2
        third = await a.call(uri_of(b, "bob"), timeout=5)
        assert third.media is None  # no pair left: the call goes on without audio
        for call in [*calls, third]:
            await call.hangup()
        again = await a.call(uri_of(b, "bob"), timeout=5)
        assert again.media is not None
        await again.hangup()


async def test_hold_stops_the_held_sides_sending_and_resume_restarts_it() -> None:
    async with agents() as (a, b):
        call_a, call_b = await connect(a, b)
        media_b = call_b.media
        assert media_b is not None
        await wait_until(lambda: media_b.stream.packets_sent > 5)
        await call_a.hold()
        await wait_until(
            lambda: media_b.stream.params is not None and not media_b.stream.params.sends
        )
        held = media_b.stream.packets_sent
        await asyncio.sleep(0.2)
        assert media_b.stream.packets_sent == held
        await call_a.resume()
        await wait_until(lambda: media_b.stream.packets_sent > held + 5)
        await call_a.hangup()


async def test_a_new_codec_and_address_apply_to_the_running_stream() -> None:
    async with agents() as (a, b):
        call_a, call_b = await connect(a, b)
        media_a, media_b = call_a.media, call_b.media
        assert media_a is not None and media_b is not None
        stream = media_a.stream
        assert stream.params is not None
        # What a re-offer agreeing on PCMA, to a new address, leaves the stream with.
        other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        other.bind(("127.0.0.1", 0))
        other.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            moved = dataclasses.replace(
                stream.params, codec=PCMA, payload_type=8, remote=other.getsockname()
            )
            stream.configure(moved, stream.transform)
            data, _ = await asyncio.wait_for(loop.sock_recvfrom(other, 2048), 2)
            assert data[1] & 0x7F == 8
        finally:
            other.close()
        back = dataclasses.replace(moved, remote=("127.0.0.1", media_b.sockets.port))
        stream.configure(back, stream.transform)
        received = media_b.stream.packets_received
        await wait_until(lambda: media_b.stream.packets_received > received + 5)
        await call_a.hangup()


async def test_silence_from_the_peer_is_a_media_timeout_and_may_hang_up() -> None:
    async with agents(
        rtp_config(media_timeout=0.3, hangup_on_timeout=True),
        rtp_config(send_silence=False),
    ) as (a, b):
        call_a, _ = await connect(a, b)
        events = []

        async def watch() -> None:
            async for event in call_a.events():
                if isinstance(event, MediaTimeout):
                    events.append(event)

        watcher = asyncio.ensure_future(watch())
        await call_a.wait_ended(5)
        await asyncio.wait_for(watcher, 5)
        assert len(events) == 1 and events[0].seconds >= 0.3
        assert call_a.end_status == 200


async def test_frames_sent_by_the_application_come_out_as_frames_with_timestamps() -> None:
    async with agents() as (a, b):
        call_a, call_b = await connect(a, b)
        frames = []

        async def read() -> None:
            async for frame in call_b.audio():
                if np.abs(frame.pcm).max() > 1000:
                    frames.append(frame)
                if len(frames) == 40:
                    return

        reader = asyncio.ensure_future(read())
        pcm = tone(600.0, 1.0)
        for start in range(0, len(pcm), 800):  # 100 ms at a time, with backpressure
            await call_a.send_audio(pcm[start : start + 800].tobytes())
        await asyncio.wait_for(reader, 5)
        stamps = [frame.timestamp for frame in frames]
        assert stamps == sorted(stamps)
        assert all(later - earlier == 160 for earlier, later in itertools.pairwise(stamps))
        joined = np.concatenate([frame.pcm for frame in frames])
        assert abs(peak_frequency(joined) - 600.0) < 15.0
        await call_a.hangup()


async def test_garbage_and_strangers_are_dropped_and_counted() -> None:
    async with agents() as (a, b):
        call_a, call_b = await connect(a, b)
        media_b = call_b.media
        assert media_b is not None
        await wait_until(lambda: media_b.stream.packets_received > 5)
        stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        stranger.bind(("127.0.0.1", 0))
        target = ("127.0.0.1", media_b.sockets.port)
        rng = random.Random(4)
        try:
            for size in range(0, 300, 3):
                stranger.sendto(bytes(rng.getrandbits(8) for _ in range(size)), target)
            valid = bytes([0x80, 0x00, 0x12, 0x34]) + bytes(8) + bytes(160)
            stranger.sendto(valid, target)  # RTP, but not from the latched source
            stranger.sendto(bytes([0x80, 0x63]) + bytes(170), target)  # unknown payload type
            if media_b.sockets.rtcp is not None:
                stranger.sendto(b"\x81\xc9\x00\x07" + bytes(5), (target[0], target[1] + 1))
            await wait_until(lambda: media_b.stream.dropped >= 90)
        finally:
            stranger.close()
        received = media_b.stream.packets_received
        await wait_until(lambda: media_b.stream.packets_received > received + 5)
        assert not call_b.ended and media_b.stream.active
        await call_a.hangup()


async def test_frames_at_another_rate_are_resampled_without_seams() -> None:
    async with agents() as (a, b):
        call_a, call_b = await connect(a, b)
        loud: list[np.ndarray] = []

        async def read() -> None:
            async for frame in call_b.audio():
                if np.abs(frame.pcm).max() > 1000:
                    loud.append(frame.pcm)
                if len(loud) == 45:
                    return

        reader = asyncio.ensure_future(read())
        pcm = tone(600.0, 1.0, rate=16000)
        pieces = range(0, len(pcm), 320)  # 20 ms at 16 kHz
        for start in pieces:
            last = start + 320 >= len(pcm)
            await call_a.send_audio(Frame(pcm[start : start + 320], 16000), end=last)
        await asyncio.wait_for(reader, 5)
        joined = np.concatenate(loud[2:-2])
        assert abs(peak_frequency(joined) - 600.0) < 15.0
        assert band_share(joined, 550.0, 650.0) > 0.95  # no clicks at the seams
        await call_a.hangup()


async def test_a_re_invite_changes_the_codec_and_the_address_of_the_running_stream() -> None:
    async with agents() as (a, b):
        call_a, call_b = await connect(a, b)
        media_a, media_b = call_a.media, call_b.media
        assert media_a is not None and media_b is not None
        assert media_a.stats().codec == "PCMU/8000"
        # Both sides now prefer PCMA; B's re-offer puts it first, A's answer agrees.
        for media in (media_a, media_b):
            media.negotiator.audio_codecs = (SDP_PCMA, SDP_PCMU, TELEPHONE_EVENT)
        assert (await call_b.reinvite()).status == 200
        assert media_a.stats().codec == "PCMA/8000"
        assert media_b.stats().codec == "PCMA/8000"
        received = media_b.stream.packets_received
        await wait_until(lambda: media_b.stream.packets_received > received + 10)
        assert media_b.stream.dropped == 0  # PCMA packets, decoded as such
        # B moves its media to another port: A sends there from then on.
        other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        other.bind(("127.0.0.1", 0))
        other.setblocking(False)
        try:
            media_b.negotiator.audio_port = other.getsockname()[1]
            assert (await call_b.reinvite()).status == 200
            assert media_a.stream.target == other.getsockname()
            loop = asyncio.get_running_loop()
            data, _ = await asyncio.wait_for(loop.sock_recvfrom(other, 2048), 2)
            assert data[1] & 0x7F == 8
        finally:
            other.close()
        await call_a.hangup()
