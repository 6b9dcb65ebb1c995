"""Two sipwire agents with audio on loopback, a lossy relay between them, and the
FFT the audio tests look for tones with."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from sipwire import Call, MediaConfig, RtpConfig, UserAgent
from sipwire.media.rtcp import is_rtcp

Address = tuple[str, int]

FAST_RTCP = 0.5
"""The RTCP interval of the tests (seconds): reports arrive within a short call."""


def peak_frequency(pcm: NDArray[np.int16], rate: int = 8000) -> float:
    """The frequency (Hz) of the strongest bin of ``pcm``'s spectrum (DC excluded)."""
    samples = pcm.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    spectrum[:5] = 0.0
    return float(np.argmax(spectrum)) * rate / len(samples)


def band_share(pcm: NDArray[np.int16], low: float, high: float, rate: int = 8000) -> float:
    """The share of the signal's energy between ``low`` and ``high`` Hz."""
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(pcm), 1 / rate)
    total = float(spectrum[1:].sum()) or 1.0
    return float(spectrum[(freqs >= low) & (freqs <= high)].sum()) / total


def uri_of(ua: UserAgent, user: str) -> str:
    host, port = ua.contact_address
    return f"sip:{user}@{host}:{port}"


def rtp_config(**changes: object) -> RtpConfig:
    """The tests' RtpConfig: fast RTCP, the rest as given."""
    values: dict[str, object] = {"rtcp_interval": FAST_RTCP}
    values.update(changes)
    return RtpConfig(**values)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def agents(
    a_rtp: RtpConfig | None = None,
    b_rtp: RtpConfig | None = None,
    *,
    a_media: MediaConfig | None = None,
    b_media: MediaConfig | None = None,
) -> AsyncIterator[tuple[UserAgent, UserAgent]]:
    """Two started agents, A and B, with audio."""
    a = UserAgent("sip:alice@127.0.0.1", rtp=a_rtp or rtp_config(), media=a_media)
    b = UserAgent("sip:bob@127.0.0.1", rtp=b_rtp or rtp_config(), media=b_media)
    async with a, b:
        yield a, b


async def connect(a: UserAgent, b: UserAgent) -> tuple[Call, Call]:
    """A calls B, B answers: both calls, up."""

    async def answer() -> Call:
        async for incoming in b.incoming():
            await incoming.answer()
            return incoming
        raise AssertionError("no call")

    answering = asyncio.ensure_future(answer())
    placed = await a.call(uri_of(b, "bob"), timeout=5)
    return placed, await asyncio.wait_for(answering, 5)


async def wait_until(check: object, timeout: float = 5.0, step: float = 0.05) -> None:
    """Poll ``check()`` until it is true; AssertionError after ``timeout`` s."""
    assert callable(check)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"not true within {timeout} s: {check}")
        await asyncio.sleep(step)


@dataclass
class LossyRelay:
    """A UDP relay both agents advertise in their SDP (``RtpConfig.advertise``).

    Packets from one registered agent go to the other. RTP from ``lossy``'s
    side is dropped with probability ``loss`` and, with ``reorder``, a packet
    is held back and sent after the next one; the random choices come from a
    seeded generator, so every run drops the same packets. RTCP passes.
    """

    loss: float = 0.1
    reorder: float = 0.1
    seed: int = 13
    lossy: str = "a"
    peers: dict[str, Address] = field(default_factory=dict)
    forwarded: int = 0
    dropped: int = 0
    reordered: int = 0

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.address: Address = self.sock.getsockname()
        self._random = random.Random(self.seed)
        self._held: bytes | None = None

    def advertise_for(self, name: str) -> object:
        """An ``RtpConfig.advertise`` hook: remembers the agent's socket, shows the relay."""

        def advertise(host: str, port: int) -> tuple[str, int]:
            self.peers[name] = (host, port)
            return self.address

        return advertise

    def start(self) -> None:
        asyncio.get_running_loop().add_reader(self.sock.fileno(), self._readable)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
        self.sock.close()

    def _readable(self) -> None:
        while True:
            try:
                data, source = self.sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue
            self._relay(data, source)

    def _relay(self, data: bytes, source: Address) -> None:
        names = [name for name, address in self.peers.items() if address == source]
        if not names or len(self.peers) < 2:
            return
        sender = names[0]
        target = next(address for name, address in self.peers.items() if name != sender)
        if sender == self.lossy and not is_rtcp(data):
            self.forwarded += 1
            if self._random.random() < self.loss:
                self.dropped += 1
                return
            if self._held is None and self._random.random() < self.reorder:
                self._held = data
                self.reordered += 1
                return
            self.sock.sendto(data, target)
            held, self._held = self._held, None
            if held is not None:
                self.sock.sendto(held, target)
            return
        self.sock.sendto(data, target)
