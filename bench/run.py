"""Parse and serialize throughput of sipwire against two pure-Python SIP parsers.

Run as ``.venv/bin/python bench/run.py`` (``make bench``). See bench/README.md.

One unit of parse work is: bytes in, a message object out, then typed access
to the top Via (host, port, branch), From and To (URI user and host, tag),
CSeq (number, method) and Call-ID. Every parser is checked once against the
expected values before it is timed, and every serialized output is parsed
back and checked the same way.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import itertools
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from messages import MESSAGES, BenchMessage, variants

Fields = tuple[object, ...]
PARSER_NAMES: tuple[str, ...] = ("sipwire", "sippy", "sipmessage")
PEERS: tuple[str, ...] = ("sippy", "sipmessage")
VARIANTS = 1024
"""Distinct copies of each message (branch, tag, Call-ID) the parse loop cycles through."""
KINDS: tuple[str, ...] = ("parse", "serialize", "modify+serialize")
KIND_TITLES: dict[str, str] = {
    "parse": "parse + typed access to Via/From/To/CSeq/Call-ID (messages/s)",
    "serialize": "serialize a parsed message to bytes (messages/s)",
    "modify+serialize": "set one header, then serialize to bytes (messages/s)",
}


@dataclass
class Parser:
    """How one library does each unit of work; all callables take and return plain values."""

    name: str
    version: str
    parse: Callable[[bytes], Any]
    """bytes -> message object, the library's normal entry point for received data."""
    access: Callable[[Any], Fields]
    """message -> the fields of ``Expected.as_tuple()``, through the typed API."""
    serialize: Callable[[Any], bytes]
    modify: Callable[[Any], None]
    """Replace (or add) ``X-Bench: 1``; idempotent, so repeating it keeps the size fixed."""

    def work(self, data: bytes) -> Fields:
        return self.access(self.parse(data))

    def modify_serialize(self, msg: Any) -> bytes:
        self.modify(msg)
        return self.serialize(msg)


# ----------------------------------------------------------------- adapters
def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def load_sipwire() -> Parser:
    from sipwire import parse_message

    def access(msg: Any) -> Fields:
        via = msg.via[0]
        from_ = msg.from_
        to = msg.to
        cseq = msg.cseq
        from_uri = from_.uri
        to_uri = to.uri
        return (
            via.host,
            via.port,
            via.branch,
            from_uri.user,
            from_uri.host,
            from_.tag,
            to_uri.user,
            to_uri.host,
            to.tag,
            cseq.seq,
            cseq.method,
            msg.call_id,
        )

    def modify(msg: Any) -> None:
        msg.headers.set("X-Bench", "1")

    return Parser("sipwire", _version("sipwire"), parse_message, access, bytes, modify)


def load_sippy() -> Parser:
    # sippy parses lazily: the constructor splits the head into SipHeader objects
    # and only getHFBody() parses a header's value. The transaction manager
    # decodes the datagram and picks the class by the start line, as done here.
    from sippy.SipHeader import SipHeader
    from sippy.SipRequest import SipRequest
    from sippy.SipResponse import SipResponse

    def parse(data: bytes) -> Any:
        text = data.decode()
        if text.startswith("SIP/2.0 "):
            return SipResponse(text)
        return SipRequest(text)

    def access(msg: Any) -> Fields:
        via = msg.getHFBody("via")  # top Via only: SipMsg.getHFBody(name, idx=0)
        from_ = msg.getHFBody("from")
        to = msg.getHFBody("to")
        cseq = msg.getHFBody("cseq")
        call_id = msg.getHFBody("call-id")
        from_url = from_.getUrl()
        to_url = to.getUrl()
        return (
            via.hostname,
            via.port,
            via.getBranch(),
            from_url.username,
            from_url.host,
            from_.getTag(),
            to_url.username,
            to_url.host,
            to.getTag(),
            cseq.cseq,
            cseq.method,
            str(call_id),
        )

    def serialize(msg: Any) -> bytes:
        # What SipTransactionManager.transmitMsg sends (there with the local address).
        data: bytes = msg.localStr().encode()
        return data

    def modify(msg: Any) -> None:
        msg.delHFs("x-bench")
        msg.appendHeader(SipHeader(name="x-bench", bodys="1"))

    return Parser("sippy", _version("sippy"), parse, access, serialize, modify)


def load_sipmessage() -> Parser:
    from sipmessage import Message, Via

    def access(msg: Any) -> Fields:
        # Message.via parses every Via line; the top one is all we need, so parse
        # only the first line (same public API, never slower for sipmessage).
        via = Via.parse_many(msg.headers["Via"])[0]
        from_ = msg.from_address
        to = msg.to_address
        cseq = msg.cseq
        return (
            via.host,
            via.port,
            via.parameters.get("branch"),
            from_.uri.user,
            from_.uri.host,
            from_.parameters.get("tag"),
            to.uri.user,
            to.uri.host,
            to.parameters.get("tag"),
            cseq.sequence,
            cseq.method,
            msg.call_id,
        )

    def modify(msg: Any) -> None:
        msg.headers.set("X-Bench", "1")

    return Parser("sipmessage", _version("sipmessage"), Message.parse, access, bytes, modify)


LOADERS: dict[str, Callable[[], Parser]] = {
    "sipwire": load_sipwire,
    "sippy": load_sippy,
    "sipmessage": load_sipmessage,
}


# ----------------------------------------------------------------- cases
@dataclass
class Case:
    """One timed loop: a callable applied to each of ``args`` in turn, best rate kept."""

    kind: str
    message: BenchMessage
    parser: str
    fn: Callable[[Any], object]
    args: list[Any]
    iterations: int = 0
    best: float = 0.0
    """Best (highest) messages per second over the repeats."""
    rates: list[float] = field(default_factory=list)


class Verification(Exception):
    pass


def _check_fields(what: str, got: Fields, want: Fields) -> None:
    if got != want:
        pairs = enumerate(zip(got, want, strict=False))
        diff = [f"#{i}: got {g!r}, want {w!r}" for i, (g, w) in pairs if g != w]
        if len(got) != len(want):
            diff.append(f"got {len(got)} fields, want {len(want)}")
        raise Verification(f"{what}: " + "; ".join(diff))


def build_cases(parser: Parser, message: BenchMessage, notes: list[str]) -> list[Case]:
    """Verify ``parser`` on ``message`` and return its timed cases.

    Parse problems raise Verification; serialize problems only drop those cases.
    """
    want = message.expected.as_tuple()
    what = f"{parser.name} {message.name}"
    copies = variants(message, VARIANTS)
    for data, expected in [(message.data, want), *copies]:
        try:
            got = parser.work(data)
        except Exception as exc:
            raise Verification(f"{what}: parse raised {exc!r}") from exc
        _check_fields(what, got, expected)
    cases = [Case("parse", message, parser.name, parser.work, [data for data, _ in copies])]

    # Serialize the message in the state the parse case leaves it in (typed
    # headers already read), which is how a stack sends what it received.
    for kind, fn in (
        ("serialize", parser.serialize),
        ("modify+serialize", parser.modify_serialize),
    ):
        try:
            msg = parser.parse(message.data)
            parser.access(msg)
            out = fn(msg)
            again = fn(msg)
            if out != again:
                raise Verification("two calls gave different bytes")
            _check_fields("reparse", parser.work(out), want)
            if kind == "modify+serialize" and b"x-bench: 1\r\n" not in out.lower():
                raise Verification("the X-Bench header is missing from the output")
        except Exception as exc:
            notes.append(f"{what} {kind}: skipped ({exc!r})")
            continue
        cases.append(Case(kind, message, parser.name, fn, [msg]))
    return cases


# ----------------------------------------------------------------- timing
def _loop(fn: Callable[[Any], object], args: list[Any], n: int) -> float:
    it = itertools.islice(itertools.cycle(args), n)
    t0 = time.perf_counter()
    for arg in it:
        fn(arg)
    return time.perf_counter() - t0


def calibrate(case: Case, target: float) -> None:
    """Pick the iteration count that makes one run last about ``target`` seconds."""
    n = 1
    floor = min(target / 4, 0.05)
    while True:
        elapsed = _loop(case.fn, case.args, n)
        if elapsed >= floor:
            break
        n *= 2 if elapsed > floor / 8 else 8
    case.iterations = max(1, math.ceil(n * target / elapsed))


def run_all(cases: Sequence[Case], repeat: int, target: float) -> None:
    # Group so that each repeat runs (kind, message) with every parser back to
    # back; rotating the parser order each repeat spreads drift evenly.
    groups: dict[tuple[str, str], list[Case]] = {}
    for case in cases:
        groups.setdefault((case.kind, case.message.name), []).append(case)
    for case in cases:
        calibrate(case, target)
    for r in range(repeat):
        for group in groups.values():
            k = r % len(group)
            for case in group[k:] + group[:k]:
                gc.collect()
                elapsed = _loop(case.fn, case.args, case.iterations)
                rate = case.iterations / elapsed
                case.rates.append(rate)
                case.best = max(case.best, rate)


# ----------------------------------------------------------------- report
def _fmt_rate(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:,.0f}"


def _fmt_ratio(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}"


def _geomean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def report(kind: str, cases: Sequence[Case]) -> float | None:
    """Print one table; return the geometric mean of ``x best-peer`` (None if undefined)."""
    best: dict[tuple[str, str], float] = {
        (c.message.name, c.parser): c.best for c in cases if c.kind == kind
    }
    header = (
        f"{'message':<9} {'bytes':>5} {'sipwire/s':>10} {'sippy/s':>10} {'sipmessage/s':>12}"
        f" {'x sippy':>8} {'x sipmessage':>12} {'x best-peer':>11}"
    )
    print(f"\n{KIND_TITLES[kind]}")
    print(header)
    print("-" * len(header))
    ratios: list[float] = []
    for message in MESSAGES:
        rate = {p: best.get((message.name, p)) for p in PARSER_NAMES}
        own = rate["sipwire"]
        peer_rates = [r for p in PEERS if (r := rate[p]) is not None]

        def ratio(other: float | None, own: float | None = own) -> float | None:
            return None if own is None or other is None else own / other

        x_best = ratio(max(peer_rates)) if len(peer_rates) == len(PEERS) else None
        if x_best is not None:
            ratios.append(x_best)
        print(
            f"{message.name:<9} {len(message.data):>5} {_fmt_rate(own):>10}"
            f" {_fmt_rate(rate['sippy']):>10} {_fmt_rate(rate['sipmessage']):>12}"
            f" {_fmt_ratio(ratio(rate['sippy'])):>8}"
            f" {_fmt_ratio(ratio(rate['sipmessage'])):>12} {_fmt_ratio(x_best):>11}"
        )
    if len(ratios) != len(MESSAGES):
        return None
    return _geomean(ratios)


# ----------------------------------------------------------------- main
def pin(cpu: int | None) -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity on this platform)"
    allowed = sorted(os.sched_getaffinity(0))
    if cpu is None:
        cpu = allowed[-1]
    os.sched_setaffinity(0, {cpu})
    return f"pinned to CPU {cpu} (of {allowed})"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: the last one)")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per case (best is kept)")
    ap.add_argument("--time", type=float, default=0.3, help="seconds per timed run")
    ap.add_argument("--quick", action="store_true", help="smoke test: 2 short runs per case")
    ap.add_argument(
        "--only",
        action="append",
        metavar="PARSER",
        help="measure only these parsers (repeatable or comma-separated): "
        + ", ".join(PARSER_NAMES),
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.repeat = min(args.repeat, 2)
        args.time = min(args.time, 0.02)
    only: list[str] = []
    for item in args.only or [",".join(PARSER_NAMES)]:
        only += [name.strip() for name in item.split(",") if name.strip()]
    unknown = sorted(set(only) - set(PARSER_NAMES))
    if unknown:
        ap.error(f"unknown parser(s) {unknown}; choose from {list(PARSER_NAMES)}")
    args.only = [name for name in PARSER_NAMES if name in only]
    if args.repeat < 1 or args.time <= 0:
        ap.error("--repeat must be >= 1 and --time > 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    status = 0
    pinned = pin(args.cpu)

    parsers: list[Parser] = []
    for name in args.only:
        try:
            parsers.append(LOADERS[name]())
        except ImportError as exc:
            hint = "pip install -e '.[bench]'" if name != "sipwire" else "pip install -e ."
            print(f"!! {name} is not importable ({exc}); skipped. Install it with: {hint}")
            status = 1

    notes: list[str] = []
    cases: list[Case] = []
    for parser in parsers:
        for message in MESSAGES:
            try:
                cases += build_cases(parser, message, notes)
            except Verification as exc:
                print(f"!! verification failed, not timed: {exc}")
                status = 1

    print(
        f"sipwire bench: Python {platform.python_version()} ({platform.python_implementation()}),"
        f" {pinned}, gc on, best of {args.repeat} x ~{args.time:g}s"
    )
    print("parsers: " + ", ".join(f"{p.name} {p.version}" for p in parsers))
    if not cases:
        print("nothing to measure")
        return 1
    sys.stdout.flush()

    run_all(cases, args.repeat, args.time)

    geomeans = {kind: report(kind, cases) for kind in KINDS}
    for note in notes:
        print(f"note: {note}")
    print()
    for kind in ("serialize", "modify+serialize"):
        gm = geomeans[kind]
        print(f"geomean x best-peer, {kind}: {_fmt_ratio(gm)}")
    gm = geomeans["parse"]
    print(f"geomean x best-peer, parse + typed access: {_fmt_ratio(gm)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
