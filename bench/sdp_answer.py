"""Micro-benchmark: the SDP answer path of an incoming call, in µs (or instructions) per answer.

Times what ``sipwire answer`` does for each INVITE with an offer: a fresh
:class:`~sipwire.core.sdp_media.SdpMedia` for the call (``aio/ua.py``
``_new_media``, the next RTP port each time), then ``receive_offer(body)``
(``core/in_dialog.py`` ``give_answer``), which parses the offer, negotiates
and serializes the answer, or answers an offer seen before from the memo.

Two offers: the one sipp sends (one PCMU stream) and a baresip/linphone
style one (several codecs, telephone-event, rtcp-mux, ICE-less extras).
Each in two cases:

- ``sipp``, ``baresip``: every call's offer is new (its o= session version
  differs), so every answer takes the full path: parse, negotiate, serialize;
- ``sipp-repeat``, ``baresip-repeat``: every call's offer has the same bytes
  (what sipp sends, or a trunk that sends the same offer), in a bytes object
  of its own as a received message gives it.

Wall time on a shared machine is noisy; ``--instructions`` counts
instructions per answer under valgrind instead (the difference between two
run lengths, which cancels start-up).

    .venv/bin/python bench/sdp_answer.py [--repeat 7] [--time 0.3] [--cpu N] [--profile]
    .venv/bin/python bench/sdp_answer.py --instructions [--case sipp-repeat]
    .venv/bin/python bench/sdp_answer.py --count N --case sipp-repeat   # what valgrind runs
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import re
import subprocess
import sys
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
CASES = [*OFFERS, *(f"{name}-repeat" for name in OFFERS)]
CONFIG = MediaConfig()
POOL = 8192
"""At most this many offers are made up front; longer loops go round them again."""
_VERSION = re.compile(rb"(o=\S+ \S+ )(\d+)")


def offers_for(case: str, n: int) -> list[bytes]:
    """The offers of ``n`` successive calls (up to :data:`POOL` of them), each its own object."""
    name, _, repeat = case.partition("-")
    offer = OFFERS[name]
    count = min(n, POOL)
    if repeat:  # the same bytes; a fresh object, as a parsed message gives it (hash not cached)
        return [bytes(bytearray(offer)) for _ in range(count)]
    return [_VERSION.sub(rb"\g<1>%d" % (1000 + i), offer, count=1) for i in range(count)]


def answer_once(offer: bytes, port: int = 20000) -> bytes:
    """One call's worth of SDP work, as ``sipwire answer`` does it."""
    return SdpMedia(CONFIG, address="127.0.0.1", audio_port=port).receive_offer(offer)


def _loop(bodies: list[bytes], n: int) -> float:
    media = SdpMedia
    config = CONFIG
    size = len(bodies)
    start = time.perf_counter()
    for i in range(n):  # successive calls get successive even RTP ports, as _new_media gives
        media(config, address="127.0.0.1", audio_port=20000 + 2 * (i % 5000)).receive_offer(
            bodies[i % size]
        )
    return time.perf_counter() - start


def measure(case: str, repeat: int, seconds: float) -> float:
    """Best µs per answer over ``repeat`` runs of about ``seconds`` each."""
    bodies = offers_for(case, POOL)
    n = 100
    while _loop(bodies, n) < seconds / 4:
        n *= 2
    n = max(1, int(n * seconds / max(_loop(bodies, n), 1e-9)))
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        best = min(best, _loop(bodies, n) / n)
    return best * 1e6


def run_count(case: str, n: int) -> None:
    """Answer ``n`` calls of ``case`` and nothing else (what ``--instructions`` runs)."""
    bodies = offers_for(case, max(n, 1))
    answer_once(bodies[0])  # warm the caches (and fail loudly)
    _loop(bodies, n)


def instructions(case: str, short: int = 2000, long: int = 6000) -> float:
    """Instructions per answer: valgrind's count for ``long`` answers minus ``short``."""
    counts = []
    for n in (short, long):
        command = [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
            sys.executable,
            __file__,
            "--count",
            str(n),
            "--case",
            case,
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
        if found is None:
            raise RuntimeError(f"no instruction count in valgrind's output:\n{done.stderr}")
        counts.append(int(found.group(1).replace(",", "")))
    return (counts[1] - counts[0]) / (long - short)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--time", type=float, default=0.3, help="seconds per run")
    ap.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: the last)")
    ap.add_argument("--profile", action="store_true", help="cProfile each case instead")
    ap.add_argument("--case", choices=CASES, action="append", help="only these cases")
    ap.add_argument("--instructions", action="store_true", help="count instructions (valgrind)")
    ap.add_argument("--count", type=int, default=None, help="answer N calls of --case, no output")
    args = ap.parse_args()
    cases = args.case or CASES
    if args.count is not None:
        run_count(cases[0], args.count)
        return
    if args.instructions:
        for case in cases:
            print(f"{case:15s} {instructions(case):9.0f} instructions/answer", flush=True)
        return
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[-1] if args.cpu is None else args.cpu})
    for case in cases:
        bodies = offers_for(case, POOL)
        answer_once(bodies[0])  # fail loudly before timing
        if args.profile:
            prof = cProfile.Profile()
            prof.enable()
            _loop(bodies, 20000)
            prof.disable()
            print(f"== {case}")
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)
            continue
        us = measure(case, args.repeat, args.time)
        size = len(bodies[0])
        print(f"{case:15s} {size:4d} B offer  {us:7.2f} µs/answer  {1e6 / us:9.0f} answers/s")


if __name__ == "__main__":
    main()
