"""Micro-benchmark: the SDP answer path of an incoming call, in µs per answer.

Times what ``sipwire answer`` does for each INVITE with an offer: a fresh
:class:`~sipwire.core.sdp_media.SdpMedia` for the call (``aio/ua.py``
``_new_media``), then ``receive_offer(body)`` (``core/in_dialog.py``
``give_answer``), which parses the offer, negotiates and serializes the
answer.

Two offers: the one sipp sends (one PCMU stream) and a baresip/linphone
style one (several codecs, telephone-event, rtcp-mux, ICE-less extras).

    .venv/bin/python bench/sdp_answer.py [--repeat 7] [--time 0.3] [--cpu N] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import time

from sipwire.core.sdp_media import MediaConfig, SdpMedia

SIPP_OFFER = (
    b"v=0\r\n"
    b"o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n"
    b"s=-\r\n"
    b"c=IN IP4 127.0.0.1\r\n"
    b"t=0 0\r\n"
    b"m=audio 6000 RTP/AVP 0\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
)

BARESIP_OFFER = (
    b"v=0\r\n"
    b"o=- 1830297478 3402127219 IN IP4 192.168.1.20\r\n"
    b"s=baresip 3.10.1\r\n"
    b"c=IN IP4 192.168.1.20\r\n"
    b"t=0 0\r\n"
    b"a=tool:baresip 3.10.1\r\n"
    b"m=audio 10064 RTP/AVP 111 9 0 8 101\r\n"
    b"b=AS:128\r\n"
    b"a=rtpmap:111 opus/48000/2\r\n"
    b"a=fmtp:111 stereo=1;sprop-stereo=1\r\n"
    b"a=rtpmap:9 G722/8000\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-15\r\n"
    b"a=rtcp-mux\r\n"
    b"a=ssrc:1928421355 cname:4a1b3c2d-e5f6\r\n"
    b"a=label:1\r\n"
    b"a=sendrecv\r\n"
    b"a=ptime:20\r\n"
)

OFFERS = {"sipp": SIPP_OFFER, "baresip": BARESIP_OFFER}
CONFIG = MediaConfig()


def answer_once(offer: bytes) -> bytes:
    """One call's worth of SDP work, as ``sipwire answer`` does it."""
    return SdpMedia(CONFIG, address="127.0.0.1", audio_port=20000).receive_offer(offer)


def _loop(offer: bytes, n: int) -> float:
    media = SdpMedia
    config = CONFIG
    start = time.perf_counter()
    for _ in range(n):
        media(config, address="127.0.0.1", audio_port=20000).receive_offer(offer)
    return time.perf_counter() - start


def measure(offer: bytes, repeat: int, seconds: float) -> float:
    """Best µs per answer over ``repeat`` runs of about ``seconds`` each."""
    n = 100
    while _loop(offer, n) < seconds / 4:
        n *= 2
    n = max(1, int(n * seconds / max(_loop(offer, n), 1e-9)))
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        best = min(best, _loop(offer, n) / n)
    return best * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--time", type=float, default=0.3, help="seconds per run")
    ap.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: the last)")
    ap.add_argument("--profile", action="store_true", help="cProfile each offer instead")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[-1] if args.cpu is None else args.cpu})
    for name, offer in OFFERS.items():
        answer_once(offer)  # fail loudly before timing
        if args.profile:
            prof = cProfile.Profile()
            prof.enable()
            _loop(offer, 20000)
            prof.disable()
            print(f"== {name}")
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)
            continue
        us = measure(offer, args.repeat, args.time)
        print(f"{name:8s} {len(offer):4d} B offer  {us:7.2f} µs/answer  {1e6 / us:9.0f} answers/s")


if __name__ == "__main__":
    main()
