"""Micro-benchmark of the media layer's per-packet paths, in µs per operation.

    .venv/bin/python bench/media_packets.py [--number N]

Measures what every RTP packet of a G.711 call costs on its way through
the sans-I/O layer: parse and serialize an RTP packet (a 160-octet
payload, 20 ms), make one with RtpSender, encode and decode a 20 ms frame
in µ-law and A-law (the decoder includes the PLC's history update),
RtcpSession.received_rtp (RFC 3550 A.1 + A.8 per packet), and one jitter
buffer put + get (the get includes the decode). Each figure is the best of
five runs. A G.711 call is 50 packets/s each way: 300 calls are 15,000
packets/s each way, about 66 µs of one core per packet for everything,
socket I/O included.
"""

from __future__ import annotations

import argparse
import random
import timeit
from collections.abc import Callable
from functools import partial

import numpy as np

from sipwire.media.codecs import PCMA, PCMU
from sipwire.media.jitter import JitterBuffer
from sipwire.media.rtp import RtpPacket, RtpSender, parse_rtp
from sipwire.media.statistics import RtcpSession


def _best(stmt: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(stmt, number=number, repeat=5)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20000, help="operations per run")
    args = parser.parse_args()
    number = args.number

    rng = random.Random(7)
    pcm = (8000 * np.sin(2 * np.pi * 1000 * np.arange(160) / 8000)).astype(np.int16)
    ulaw = PCMU.encoder().encode(pcm)
    packet = RtpPacket(0, 1234, 567890, 0x11223344, ulaw, False)
    data = bytes(packet)
    sender = RtpSender(rng, 0)
    encoders = {"PCMU": PCMU.encoder(), "PCMA": PCMA.encoder()}
    decoders = {"PCMU": PCMU.decoder(), "PCMA": PCMA.decoder()}
    payloads = {name: enc.encode(pcm) for name, enc in encoders.items()}

    rows: list[tuple[str, float]] = [
        ("RTP parse (172 bytes)", _best(lambda: parse_rtp(data), number)),
        ("RTP serialize", _best(lambda: bytes(packet), number)),
        ("RtpSender.packet + bytes", _best(lambda: bytes(sender.packet(ulaw, 160)), number)),
    ]
    for name in ("PCMU", "PCMA"):
        encode = encoders[name].encode
        decode, payload = decoders[name].decode, payloads[name]
        rows.append((f"{name} encode 20 ms", _best(partial(encode, pcm), number)))
        rows.append(
            (f"{name} decode 20 ms (+PLC history)", _best(partial(decode, payload), number))
        )

    session = RtcpSession(rng, 1, "bench@example.org", 8000, 0.0, probation=0)
    clock = [0.0]
    seq = [0]

    def receive() -> None:
        seq[0] += 1
        clock[0] += 0.02
        packet.sequence_number = seq[0] & 0xFFFF
        packet.timestamp = (seq[0] * 160) & 0xFFFFFFFF
        session.received_rtp(packet, clock[0])

    rows.append(("RtcpSession.received_rtp", _best(receive, number)))

    jitter = JitterBuffer({0: PCMU.decoder()})
    stream = RtpSender(rng, 0)
    now = [0.0]

    def put_get() -> None:
        now[0] += 0.02
        jitter.put(stream.packet(ulaw, 160), now[0])
        jitter.get(now[0])

    put_get_us = _best(put_get, number)
    # put_get also made the packet (RtpSender.packet): take that out.
    make_us = _best(lambda: stream.packet(ulaw, 160), number)
    rows.append(("JitterBuffer put + get (decode incl.)", put_get_us - make_us))
    assert jitter.stats.played > 0 and jitter.stats.lost == 0, jitter.stats

    width = max(len(name) for name, _ in rows)
    print(f"{'operation':<{width}}  µs/op")
    for name, micros in rows:
        print(f"{name:<{width}}  {micros:6.2f}")


if __name__ == "__main__":
    main()
