"""Mutation fuzzer for ``sipwire answer`` over UDP and TCP.

    python -m tests.load.fuzz --datagrams 1000000 --tcp 10000 --seed 7
    python -m tests.load.fuzz --replay /tmp/sipwire-fuzz-.../problem-1.jsonl

It starts ``sipwire answer -v`` (UDP and TCP on 127.0.0.1, pinned to CPU 0;
the fuzzer pins itself to CPU 1) and sends it mutated messages. The seeds of
the mutations are messages built here (requests of every method, in and out
of dialogs, and responses) and the RFC 4475 / RFC 5118 torture messages,
read at run time from ``--torture`` (default /work/shared/torture, or
$SIPWIRE_TORTURE). Mutations: bit flips, byte insertion and deletion,
duplicated and removed headers, huge or odd numbers (5,000 digits,
negative, Unicode digits) in CSeq / Content-Length / Max-Forwards / Expires
and the like, overlong lines, random Unicode and invalid UTF-8, truncation,
CRLF / LF / CR mixing, compact and long header names, spliced messages,
broken request lines, parameters and SDP bodies; 1 to 4 of them stacked.

UDP: datagrams go out round-robin from 32 source addresses (a busy server
sheds new dialogs from a source above its fair share) in windows of at most
32 datagrams / 48 KiB, each window followed by an OPTIONS "sync" ping from
another socket; the fuzzer waits for the previous window's ping before
sending the next window, so the server's socket buffer is not simply
overflowing (kernel drops are counted from /proc/net/snmp and reported).
Every 10,000 datagrams a health check (a fresh OPTIONS from 127.0.0.3) must
get its 200 within 5 s. 80 % of the 2xx to INVITEs are ACKed, as a UAC
would; the dialogs are remembered, and in-dialog requests (ACK, BYE,
re-INVITE, UPDATE, PRACK, INFO, REFER, NOTIFY...) are fuzzed with their real
tags.

TCP: each framing is a connection carrying 1 to 4 mutated messages (with
bad Content-Length values, keep-alive CRLFs and oversized headers among the
mutations), written in pieces split at random points, then half-closed,
closed, reset or left open (up to 64 at a time); every framing is followed by
a health check: OPTIONS on a fresh connection must get its 200 within 5 s.

After every window (and framing) the fuzzer reads what the server's log
gained. A new traceback or ERROR record is attributed to the inputs in flight;
they are replayed one by one to find the culprit, and the inputs are written
to ``problem-N.jsonl`` under the output directory (``--out``, default
/tmp/sipwire-fuzz-SEED-TIME). When a health check fails, the last batch of
inputs is written to ``last-batch.jsonl``. Every run prints its seed; the
inputs are a function of the seed, except in-dialog requests, whose tags come
from the server.

Isolation: the fuzzer moves itself (and so the server it starts) into a
private network namespace that has only ``lo``: fuzzed Contact,
Record-Route and Via maddr values would otherwise make the server send BYEs,
DNS queries and responses off loopback. Without the privilege to do that it
exits with status 3, unless ``--host-network`` is given.

Exit status: 0 when the server stayed alive, answered every health check,
logged no problem and exited 0 on SIGTERM; 1 otherwise; 3 as above.
"""

from __future__ import annotations

import argparse
import base64
import collections
import contextlib
import ctypes
import fcntl
import itertools
import json
import os
import random
import re
import select
import socket
import struct
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.load.harness import (
    LOAD_CPU,
    AnswerServer,
    LogWatcher,
    ProblemBlock,
    SipMessage,
    build_request,
    log_problems,
    options_ok,
    parse_sip,
    sdp_offer,
    start_answer,
    tcp_options_ok,
)

__all__ = ["FuzzResult", "Input", "Mutator", "run", "enter_private_netns", "main", "seed_corpus"]

TORTURE = Path(os.environ.get("SIPWIRE_TORTURE", "/work/shared/torture"))
MAX_DATAGRAM = 65000
WINDOW_DATAGRAMS = 32
WINDOW_BYTES = 48 * 1024
HEALTH_EVERY = 10_000
PING_TIMEOUT = 5.0
FUZZ_HOST = "127.0.0.5"
FUZZ_SOURCES = 32
"""UDP fuzz sources: FUZZ_HOST and 127.0.2.1-31."""
PING_HOST = "127.0.0.6"
HEALTH_HOST = "127.0.0.3"
TCP_HEALTH_HOST = "127.0.0.4"
MAX_PROBLEMS = 25
"""Distinct kinds of problem after which a campaign stops."""


# ---------------------------------------------------------------- isolation


def enter_private_netns() -> str | None:
    """Move this process into a new network namespace with only ``lo`` (up).

    Returns None on success, else why not. Needs CAP_SYS_ADMIN, or
    unprivileged user namespaces (then a user namespace is made too). Must
    run before any thread is started.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    clone_newnet, clone_newuser = 0x40000000, 0x10000000
    if libc.unshare(clone_newnet) != 0:
        first = os.strerror(ctypes.get_errno())
        uid, gid = os.getuid(), os.getgid()
        if libc.unshare(clone_newuser | clone_newnet) != 0:
            return f"unshare(CLONE_NEWNET): {first}; with CLONE_NEWUSER: " + os.strerror(
                ctypes.get_errno()
            )
        with contextlib.suppress(OSError):
            Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
        Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            request = struct.pack("16sh22x", b"lo", 0)
            flags = struct.unpack("16sh22x", fcntl.ioctl(sock, siocgifflags, request))[1]
            fcntl.ioctl(sock, siocsifflags, struct.pack("16sh22x", b"lo", flags | iff_up))
    except OSError as exc:
        return f"cannot bring lo up in the new namespace: {exc}"
    names = [name for _, name in socket.if_nameindex()]
    if names != ["lo"]:
        return f"the new namespace has interfaces {names}"
    return None


def udp_rcvbuf_errors() -> int:
    """RcvbufErrors of /proc/net/snmp (this network namespace): datagrams the kernel dropped."""
    try:
        lines = Path("/proc/net/snmp").read_text().splitlines()
    except OSError:
        return 0
    udp = [line.split() for line in lines if line.startswith("Udp:")]
    if len(udp) < 2 or "RcvbufErrors" not in udp[0]:
        return 0
    return int(udp[1][udp[0].index("RcvbufErrors")])


# ---------------------------------------------------------------- the seed corpus


@dataclass(frozen=True)
class Seed:
    name: str
    data: bytes
    dialog: bool = False
    """An in-dialog request: @TT@ is the server's To tag, @CID@ / @FT@ the dialog's ids."""


_SDP = sdp_offer("@H@").replace(b"40000", b"@RTP@")


def _msg(first: str, headers: Sequence[str], body: bytes = b"", ctype: str = "") -> bytes:
    lines = [first, *headers]
    if body:
        lines.append(f"Content-Type: {ctype or 'application/sdp'}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _request(
    method: str,
    extra: Sequence[str] = (),
    body: bytes = b"",
    ctype: str = "",
    *,
    uri: str = "sip:answer@@SH@",
    dialog: bool = False,
    cseq: int = 1,
    cseq_method: str | None = None,
) -> bytes:
    to_tag = ";tag=@TT@" if dialog else ""
    headers = [
        "Via: SIP/2.0/UDP @H@:@P@;branch=z9hG4bK@BR@;rport",
        "Max-Forwards: 70",
        'From: "Fuzz" <sip:fuzz@@H@>;tag=@FT@',
        f"To: <sip:answer@@SH@>{to_tag}",
        "Call-ID: @CID@",
        f"CSeq: {cseq} {cseq_method or method}",
        "Contact: <sip:fuzz@@H@:@P@>",
        *extra,
    ]
    return _msg(f"{method} {uri} SIP/2.0", headers, body, ctype)


def _response(status: str, method: str, extra: Sequence[str] = (), body: bytes = b"") -> bytes:
    headers = [
        "Via: SIP/2.0/UDP @SH@;branch=z9hG4bK@BR@;received=127.0.0.1",
        'From: "Fuzz" <sip:fuzz@@H@>;tag=@FT@',
        "To: <sip:answer@@SH@>;tag=@TT@",
        "Call-ID: @CID@",
        f"CSeq: 1 {method}",
        *extra,
    ]
    return _msg(f"SIP/2.0 {status}", headers, body)


def own_corpus() -> list[Seed]:
    """Messages of every kind, with placeholders filled in per datagram."""
    multipart = (
        b"--b1\r\nContent-Type: application/sdp\r\n\r\n"
        + _SDP
        + b"\r\n--b1\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b1--\r\n"
    )
    auth = (
        'Authorization: Digest username="alice", realm="sipwire.test", nonce="abc", '
        'uri="sip:answer@@SH@", response="0123456789abcdef0123456789abcdef", algorithm=MD5, '
        'qop=auth, nc=00000001, cnonce="xyz"'
    )
    out = [
        Seed(
            "invite",
            _request(
                "INVITE",
                ["Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, PRACK", "Supported: timer"],
                _SDP,
            ),
        ),
        Seed(
            "invite-100rel-timer",
            _request(
                "INVITE",
                [
                    "Supported: 100rel, timer, replaces",
                    "Session-Expires: 1800;refresher=uac",
                    "Min-SE: 90",
                    "Record-Route: <sip:127.0.0.9:5060;lr>",
                    "Expires: 120",
                    "Accept: application/sdp",
                    "Priority: urgent",
                ],
                _SDP,
            ),
        ),
        Seed("invite-no-offer", _request("INVITE", ["Require: 100rel"])),
        Seed(
            "invite-multipart",
            _request("INVITE", [], multipart, 'multipart/mixed;boundary="b1"'),
        ),
        Seed(
            "invite-ipv6",
            _request(
                "INVITE",
                ["Route: <sip:[::1]:5060;lr>"],
                _SDP.replace(b"IN IP4 @H@", b"IN IP6 ::1"),
                uri="sip:answer@[::1]",
            ),
        ),
        Seed("options", _request("OPTIONS", ["Accept: application/sdp", "Supported: path"])),
        Seed(
            "register",
            _request(
                "REGISTER",
                ["Expires: 3600", auth, "Path: <sip:127.0.0.9;lr>"],
                uri="sip:@SH@",
            ),
        ),
        Seed("bye-no-dialog", _request("BYE", cseq=2)),
        Seed("cancel", _request("CANCEL", ['Reason: SIP;cause=487;text="gone"'])),
        Seed("ack-no-dialog", _request("ACK")),
        Seed("message", _request("MESSAGE", [], b"hello \xe2\x98\x83 fuzz", "text/plain")),
        Seed(
            "subscribe",
            _request(
                "SUBSCRIBE", ["Event: presence", "Expires: 600", "Accept: application/pidf+xml"]
            ),
        ),
        Seed(
            "notify",
            _request(
                "NOTIFY",
                ["Event: dialog", "Subscription-State: active;expires=60"],
                b"<x/>",
                "application/dialog-info+xml",
            ),
        ),
        Seed("publish", _request("PUBLISH", ["Event: presence", "Expires: 60"], b"<p/>", "a/b")),
        Seed(
            "refer",
            _request(
                "REFER",
                ["Refer-To: <sip:carol@127.0.0.9?Replaces=abc%3Bto-tag%3D1%3Bfrom-tag%3D2>"],
            ),
        ),
        Seed("info", _request("INFO", [], b"Signal=5\r\nDuration=160\r\n", "application/dtmf")),
        Seed("update", _request("UPDATE", [], _SDP)),
        Seed("prack", _request("PRACK", ["RAck: 1 1 INVITE"])),
        Seed("unknown-method", _request("FROBNICATE", ["Require: frob"])),
        Seed("200-invite", _response("200 OK", "INVITE", ["Contact: <sip:x@@H@>"], _SDP)),
        Seed("180", _response("180 Ringing", "INVITE", ["RSeq: 1", "Require: 100rel"])),
        Seed("100", _response("100 Trying", "INVITE")),
        Seed(
            "401",
            _response(
                "401 Unauthorized",
                "REGISTER",
                ['WWW-Authenticate: Digest realm="x", nonce="n", qop="auth", algorithm=SHA-256'],
            ),
        ),
        Seed("486", _response("486 Busy Here", "INVITE", ["Retry-After: 30 (lunch);duration=60"])),
        Seed("302", _response("302 Moved", "INVITE", ["Contact: <sip:a@127.0.0.9>;q=0.7"])),
        Seed("200-options", _response("200 OK", "OPTIONS", ["Allow: INVITE"])),
    ]
    in_dialog = [
        ("ACK", [], b"", "", 1),
        ("BYE", ["Reason: Q.850;cause=16"], b"", "", 3),
        ("INVITE", ["Session-Expires: 90"], _SDP, "", 4),
        ("UPDATE", [], _SDP, "", 5),
        ("PRACK", ["RAck: 1 1 INVITE"], b"", "", 6),
        ("INFO", [], b"Signal=1\r\n", "application/dtmf-relay", 7),
        ("REFER", ["Refer-To: <sip:x@127.0.0.9>", "Refer-Sub: false"], b"", "", 8),
        (
            "NOTIFY",
            ["Event: refer", "Subscription-State: terminated"],
            b"SIP/2.0 200 OK\r\n",
            "message/sipfrag",
            9,
        ),
        ("MESSAGE", [], b"in dialog", "text/plain", 10),
        ("OPTIONS", [], b"", "", 11),
        ("CANCEL", [], b"", "", 1),
    ]
    for method, extra, body, ctype, cseq in in_dialog:
        data = _request(method, extra, body, ctype, dialog=True, cseq=cseq)
        out.append(Seed(f"dialog-{method.lower()}", data, dialog=True))
    return out


def torture_corpus(root: Path) -> list[Seed]:
    """The RFC 4475 / RFC 5118 messages (raw and wire forms), read as bytes at run time."""
    out: list[Seed] = []
    for rfc in ("rfc4475", "rfc5118"):
        manifest = root / rfc / "manifest.json"
        if not manifest.exists():
            continue
        for entry in json.loads(manifest.read_text(encoding="utf-8")):
            for key in ("file", "wire_file"):
                name = entry.get(key)
                if name and (root / rfc / name).exists():
                    out.append(Seed(f"{rfc}/{name}", (root / rfc / name).read_bytes()))
        for extra in sorted((root / rfc / "extra").glob("*.dat")):
            out.append(Seed(f"{rfc}/extra/{extra.name}", extra.read_bytes()))
    return out


def seed_corpus(torture: Path = TORTURE) -> list[Seed]:
    return own_corpus() + torture_corpus(torture)


# ---------------------------------------------------------------- mutations

_HEADER_LINE = re.compile(rb"\r?\n([^\r\n]+)")
_NUMERIC = re.compile(
    rb"(?im)^((?:cseq|content-length|l|max-forwards|expires|retry-after|rseq|rack|"
    rb"session-expires|x|min-se|min-expires)[ \t]*:[ \t]*)(\d+)"
)
_ANY_NUMBER = re.compile(rb"\d+")
_WEIRD_NUMBERS = [
    b"-1",
    b"-0",
    b"0",
    b"00000000000000000000000001",
    b"4294967295",
    b"4294967296",
    b"18446744073709551616",
    b"9" * 40,
    b"1_000",
    b"+1",
    b"0x10",
    b"1e3",
    b"1.5",
    b" 1 2",
    b"",
    b"NaN",
    "\u0663\u0664".encode(),  # Arabic-Indic digits: int() takes them
    "\uff11\uff12".encode(),  # full-width digits
    b"1\x00",
]
_SPECIAL_BYTES = b"\x00\r\n\t :;,<>\"'\\%@=?&[]{}#/\x7f\x80\xff\xc0\xe2"
_UNICODE_SAMPLES = [
    "\u00e9",
    "\u2603",
    "\U0001f600",
    "\u202e",
    "\u200b",
    "\ufeff",
    "\u00a0",
    "\u3000",
    "\u0130",
    "\u1e9e",
    "\u0000",
    "\uffff",
]
_INVALID_UTF8 = [
    b"\xc0\x80",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xff\xfe",
    b"\x80",
    b"\xe2\x82",
]
_COMPACT = {
    b"call-id": b"i",
    b"contact": b"m",
    b"content-encoding": b"e",
    b"content-length": b"l",
    b"content-type": b"c",
    b"from": b"f",
    b"subject": b"s",
    b"supported": b"k",
    b"to": b"t",
    b"via": b"v",
    b"refer-to": b"r",
    b"referred-by": b"b",
    b"session-expires": b"x",
    b"event": b"o",
    b"allow-events": b"u",
}
_LONG = {short: long for long, short in _COMPACT.items()}
_METHODS = [
    b"INVITE",
    b"ACK",
    b"BYE",
    b"CANCEL",
    b"OPTIONS",
    b"REGISTER",
    b"PRACK",
    b"UPDATE",
    b"INFO",
    b"REFER",
    b"NOTIFY",
    b"SUBSCRIBE",
    b"MESSAGE",
    b"invite",
    b"",
    b"IN VITE",
    b"X" * 300,
    b"INVITE\x00",
    "INVIT\u00c9".encode(),
]
_URIS = [
    b"sip:",
    b"sips:a@127.0.0.1",
    b"tel:+1-555",
    b"sip:a@[::1",
    b"sip:a@127.0.0.1:99999",
    b"sip:%00@127.0.0.1",
    b"sip:a@127.0.0.1;maddr=127.0.0.2;lr;transport=sctp",
    b"mailto:x@y",
    b"*",
    b"sip:a@b@c",
    b"sip:" + b"a" * 5000 + b"@127.0.0.1",
    b"<sip:a@127.0.0.1>",
    b"sip:a@127.0.0.1?Route=%3Csip:x%3E&body=hi",
]
_VERSIONS = [
    b"SIP/2.0",
    b"SIP/2.1",
    b"SIP/3.0",
    b"sip/2.0",
    b"SIP/2.0 ",
    b"SIP/20",
    b"HTTP/1.1",
    b"SIP/2.0/UDP",
    b"",
]
_PARAMS = [
    b";tag=",
    b";tag=a;tag=b",
    b";branch=",
    b";branch=z9hG4bK",
    b";rport=abc",
    b";rport=0",
    b";received=::1",
    b";received=[::1]",
    b";maddr=127.0.0.9",
    b";ttl=999",
    b";lr",
    b";q=2.5",
    b";expires=-5",
    b";=",
    b";" * 200,
    b";a=" + b"b" * 3000,
    b";transport=tls",
    b"%",
    b';a="unterminated',
]


def _header_spans(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of every header line (not the first line) of the head."""
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        head_end = len(data)
    spans = []
    for match in _HEADER_LINE.finditer(data, 0, head_end):
        spans.append((match.start(1), match.end(1)))
    return spans


Mutation = Callable[[random.Random, bytes, "Mutator"], bytes]


def _bitflip(rng: random.Random, data: bytes, m: Mutator) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if buf:
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
    return bytes(buf)


def _byte_set(rng: random.Random, data: bytes, m: Mutator) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if buf:
            buf[rng.randrange(len(buf))] = rng.choice(_SPECIAL_BYTES)
    return bytes(buf)


def _insert(rng: random.Random, data: bytes, m: Mutator) -> bytes:
    at = rng.randint(0, len(data))
    if rng.random() < 0.5:
        chunk = bytes(rng.choice(_SPECIAL_BYTES) for _ in range(rng.randint(1, 8)))
    else:
        chunk = rng.randbytes(rng.randint(1, 64))
    return data[:at] + chunk + data[at:]


def _delete(rng: random.Random, data: bytes, m: Mutator) -> bytes:
    if not data:
        return data
    at = rng.randrange(len(data))
    size = rng.choice([1, 1, 2, 4, 16, 64, 512])
    return data[:at] + data[at + size :]


def _dup_header(rng: random.Random, data: bytes, m: Mutator) -> bytes:
    spans = _header_spans(data)
    if not spans:
        return data
    start, end = rng.choice(spans)
    line = data[start:end] + b"\r\n"
    times = rng.choice([1, 1, 2, 10, 100, 1000])
    times = min(times, max(1, (MAX_DATAGRAM - len(data)) // max(len(line), 1)))
    return data[:start] + line * times + data[start:]


def _remove_header(rng: random.Random, data: bytes, m: Mutator) -> bytes:
    spans = _header_spans(data)
    if not spans:
        return data
    start, end = rng.choice(spans)
    if data[end : end + 2] == b"\r\n":
        end += 2
    return data[:start] + data[end:]


def _huge_number(rng: random.Random, data: bytes, m: Mutator) -> bytes:
    r = rng.random()
    if r < 0.4:
        value = rng.choice([b"9", b"1", b"0"]) * 5000
    elif r < 0.5:
        value = b"-" + b"9" * rng.choice([1, 20, 5000])
    else:
        value = rng.choice(_WEIRD_NUMBERS)
    matches = list(_NUMERIC.finditer(data))
    if matches and rng.random() < 0.8:
        match = rng.choice(matches)
        return data[: match.start(2)] + value + data[match.end(2) :]
    numbers = list(_ANY_NUMBER.finditer(data))
    if not numbers:
        return data
    match = rng.choice(numbers)
    return data[: match.start()] + value + data[match.end() :]


def _long_line(rng: random.Random, data: bytes, m: Mutator) -> bytes:
    size = rng.choice([1000, 8000, 30000, 60000])
    r = rng.random()
    if r < 0.3:
        filler = rng.choice([b"a", b" ", b"\t", b",", b";", b"%", b"<"]) * size
    elif r < 0.5:
        filler = b",127.0.0.1:5060" * (size // 16)
    elif r < 0.7:
        filler = b";p=v" * (size // 4)
    else:
        filler = b"Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx\r\n" * (size // 44)
    spans = _header_spans(data)
    if spans and rng.random() < 0.8:
        _, end = rng.choice(spans)
        return data[:end] + filler + data[end:]
    line_end = data.find(b" SIP/2.0")
    at = line_end if line_end > 0 else rng.randint(0, len(data))
    return data[:at] + filler + data[at:]


def _unicode(rng: random.Random, data: bytes, m: Mutator) -> bytes:
    pieces = []
    for _ in range(rng.randint(1, 6)):
        if rng.random() < 0.3:
            pieces.append(rng.choice(_INVALID_UTF8))
        elif rng.random() < 0.5:
            pieces.append(rng.choice(_UNICODE_SAMPLES).encode("utf-8", "surrogatepass"))
        else:
            code = rng.randrange(0x80, 0x110000)
            if 0xD800 <= code < 0xE000:
                code = 0x10FFFF
            pieces.append(chr(code).encode())
    chunk = b"".join(pieces)
    spans = _header_spans(data)
    if spans and rng.random() < 0.7:
        start, end = rng.choice(spans)
        at = rng.randint(start, end)
    else:
        at = rng.randint(0, len(data))
    return data[:at] + chunk + data[at:]


def _truncate(rng: random.Random, data: bytes, m: Mutator) -> bytes:
    return data[: rng.randint(0, len(data))]


def _line_endings(rng: random.Random, data: bytes, m: Mutator) -> bytes:
    r = rng.random()
    if r < 0.25:
        return data.replace(b"\r\n", b"\n")
    if r < 0.45:
        parts = data.split(b"\r\n")
        seps = [rng.choice([b"\r\n", b"\n", b"\r", b"\n\r", b"\r\r\n"]) for _ in parts[1:]]
        out = [parts[0]]
        for sep, part in zip(seps, parts[1:], strict=True):
            out += [sep, part]
        return b"".join(out)
    if r < 0.6:
        return data.replace(b"\r\n\r\n", b"\r\n", 1)  # no blank line after the headers
    if r < 0.75:
        return b"\r\n" * rng.randint(1, 4) + data  # keep-alive CRLFs first
    if r < 0.9:
        spans = _header_spans(data)  # fold a header (obsolete line folding)
        if spans:
            start, end = rng.choice(spans)
            at = rng.randint(start, end)
            return data[:at] + rng.choice([b"\r\n ", b"\r\n\t", b"\r\n", b"\n "]) + data[at:]
        return data
    return data + b"\r\n\r\n"


def _content_length(rng: random.Random, data: bytes, m: Mutator) -> bytes:
    head, sep, body = data.partition(b"\r\n\r\n")
    value = rng.choice(
        [
            b"-1",
            b"-" + b"9" * 30,
            str(len(body) + rng.randint(1, 5000)).encode(),
            str(max(0, len(body) - rng.randint(1, 50))).encode(),
            b"0",
            b"1" * 5000,
            b"70000",
            b"",
            b"12, 13",
            b"0x20",
        ]
    )
    new, count = re.subn(
        rb"(?im)^(content-length|l)[ \t]*:[^\r\n]*", b"Content-Length: " + value, head
    )
    if count == 0 or rng.random() < 0.2:
        new = head + b"\r\nContent-Length: " + value  # missing or duplicated
    return new + sep + body


def _compact(rng: random.Random, data: bytes, m: Mutator) -> bytes:
    def swap(match: re.Match[bytes]) -> bytes:
        name = match.group(1)
        lower = name.lower()
        if lower in _COMPACT and rng.random() < 0.7:
            new = _COMPACT[lower]
        elif lower in _LONG and rng.random() < 0.7:
            new = _LONG[lower]
        else:
            new = bytes(c ^ 0x20 if rng.random() < 0.3 and chr(c).isalpha() else c for c in name)
        return b"\n" + new + rng.choice([b":", b" :", b"\t: ", b":  "])

    return re.sub(rb"\n([A-Za-z-]+)[ \t]*:", swap, data)


def _splice(rng: random.Random, data: bytes, m: Mutator) -> bytes:
    other = m.base(rng)
    if rng.random() < 0.4:
        return data + other  # two messages in one datagram
    return data[: rng.randint(0, len(data))] + other[rng.randint(0, len(other)) :]


def _swap_lines(rng: random.Random, data: bytes, m: Mutator) -> bytes:
    head, sep, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    if len(lines) < 3:
        return data
    if rng.random() < 0.3:
        i = rng.randrange(1, len(lines))
        lines[0], lines[i] = lines[i], lines[0]  # the request line moves down
    else:
        rest = lines[1:]
        rng.shuffle(rest)
        lines[1:] = rest
    return b"\r\n".join(lines) + sep + body


def _request_line(rng: random.Random, data: bytes, m: Mutator) -> bytes:
    line, sep, rest = data.partition(b"\r\n")
    parts = line.split(b" ")
    r = rng.random()
    if len(parts) >= 3 and not line.startswith(b"SIP/"):
        if r < 0.35:
            parts[0] = rng.choice(_METHODS)
        elif r < 0.7:
            parts[1] = rng.choice(_URIS)
        else:
            parts[-1] = rng.choice(_VERSIONS)
        joiner = rng.choice([b" ", b" ", b"  ", b"\t"])
        return joiner.join(parts) + sep + rest
    status = rng.choice([b"000", b"099", b"700", b"1000", b"2OO", b"-200", b"", b"200 OK extra"])
    return b"SIP/2.0 " + status + b" Fuzz" + sep + rest


def _params(rng: random.Random, data: bytes, m: Mutator) -> bytes:
    spans = _header_spans(data)
    if not spans:
        return data
    start, end = rng.choice(spans)
    at = end if rng.random() < 0.6 else rng.randint(start, end)
    return data[:at] + rng.choice(_PARAMS) + data[at:]


def _sdp(rng: random.Random, data: bytes, m: Mutator) -> bytes:
    r = rng.random()
    if r < 0.25:
        return re.sub(
            rb"m=audio \d+", b"m=audio " + rng.choice([b"-1", b"99999", b"9" * 5000]), data
        )
    if r < 0.45:
        return data.replace(
            b"m=audio", b"m=audio 4 RTP/AVP 0\r\nm=audio" * rng.choice([1, 50, 2000]), 1
        )
    if r < 0.6:
        return data.replace(b"v=0\r\n", b"", 1)
    if r < 0.75:
        return data.replace(b"IN IP4", rng.choice([b"IN IP6", b"IN IP9", b"IN", b"IN IP4 ::1"]))
    if r < 0.9:
        return data.replace(
            b"a=rtpmap:0 PCMU/8000",
            b"a=rtpmap:"
            + rng.choice([b"", b"x y", b"0", b"999999999999 A/0", b"0 PCMU/-8000/99999"]),
        )
    return data.replace(b"t=0 0", b"t=" + b"9" * 5000 + b" 0")


MUTATIONS: dict[str, tuple[int, Mutation]] = {
    "bitflip": (10, _bitflip),
    "byte_set": (6, _byte_set),
    "insert": (8, _insert),
    "delete": (8, _delete),
    "dup_header": (6, _dup_header),
    "remove_header": (8, _remove_header),
    "huge_number": (10, _huge_number),
    "long_line": (3, _long_line),
    "unicode": (6, _unicode),
    "truncate": (5, _truncate),
    "line_endings": (8, _line_endings),
    "content_length": (8, _content_length),
    "compact": (6, _compact),
    "splice": (5, _splice),
    "swap_lines": (3, _swap_lines),
    "request_line": (6, _request_line),
    "params": (7, _params),
    "sdp": (4, _sdp),
}


@dataclass
class Mutator:
    """Draws a seed, fills in its placeholders and stacks 0 to 4 mutations on it."""

    rng: random.Random
    corpus: list[Seed]
    host: str = FUZZ_HOST
    port: int = 5060
    server: str = "127.0.0.1:5060"
    dialogs: collections.deque[tuple[bytes, bytes, bytes]] = field(
        default_factory=lambda: collections.deque(maxlen=512)
    )
    counter: int = 0
    tag: str = "f"

    def __post_init__(self) -> None:
        self._names = list(MUTATIONS)
        self._weights = [MUTATIONS[name][0] for name in self._names]
        self._dialog_seeds = [s for s in self.corpus if s.dialog]
        self._other_seeds = [s for s in self.corpus if not s.dialog]

    def fill(self, rng: random.Random, seed: Seed) -> bytes:
        """The seed's placeholders replaced: fresh ids mostly, sometimes reused ones."""
        data = seed.data
        self.counter += 1
        fresh = rng.random() < 0.8
        ident = f"{self.tag}{self.counter:x}" if fresh else f"{self.tag}r{rng.randrange(8)}"
        call_id, from_tag, to_tag = f"{ident}@fuzz".encode(), ident.encode(), b"nosuchtag"
        pick = rng.random()  # drawn whatever the pool holds: the rng sequence stays seed-only
        if seed.dialog and self.dialogs:
            call_id, from_tag, to_tag = self.dialogs[int(pick * len(self.dialogs))]
        if b"@" not in data:
            return data
        return (
            data.replace(b"@BR@", f"{ident}b{rng.randrange(4)}".encode())
            .replace(b"@CID@", call_id)
            .replace(b"@FT@", from_tag)
            .replace(b"@TT@", to_tag)
            .replace(b"@RTP@", b"40000")
            .replace(b"@SH@", self.server.encode())
            .replace(b"@H@", self.host.encode())
            .replace(b"@P@", str(self.port).encode())
        )

    def base(self, rng: random.Random) -> bytes:
        r = rng.random()
        pool = self._dialog_seeds if r < 0.15 and self._dialog_seeds else self._other_seeds
        return self.fill(rng, rng.choice(pool))

    def next(self) -> tuple[bytes, list[str]]:
        rng = self.rng
        r = rng.random()
        pool = self._dialog_seeds if r < 0.15 and self._dialog_seeds else self._other_seeds
        seed = rng.choice(pool)
        data = self.fill(rng, seed)
        applied = [seed.name]
        count = rng.choice([0, 1, 1, 1, 2, 2, 3, 4])
        for name in rng.choices(self._names, self._weights, k=count):
            data = MUTATIONS[name][1](rng, data, self)
            applied.append(name)
        if len(data) > MAX_DATAGRAM:
            data = data[:MAX_DATAGRAM]
            applied.append("cut")
        return data, applied


# ---------------------------------------------------------------- bookkeeping


@dataclass
class Input:
    """One fuzz input: a datagram, or a TCP framing (chunks and how it ended)."""

    transport: str
    index: int
    data: bytes
    mutations: list[str]
    chunks: list[int] = field(default_factory=list)
    """TCP: sizes of the writes."""
    close: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "transport": self.transport,
            "index": self.index,
            "mutations": self.mutations,
            "chunks": self.chunks,
            "close": self.close,
            "data_b64": base64.b64encode(self.data).decode(),
            "preview": self.data[:300].decode("utf-8", "backslashreplace"),
        }

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Input:
        chunks = obj.get("chunks") or []
        mutations = obj.get("mutations") or []
        assert isinstance(chunks, list) and isinstance(mutations, list)
        return cls(
            str(obj["transport"]),
            int(str(obj["index"])),
            base64.b64decode(str(obj["data_b64"])),
            [str(m) for m in mutations],
            [int(c) for c in chunks],
            str(obj.get("close", "")),
        )


@dataclass
class Problem:
    lines: list[str]
    transport: str
    culprit: Input | None
    suspects: int
    file: str


@dataclass
class FuzzResult:
    seed: int
    out_dir: str
    datagrams: int = 0
    datagram_bytes: int = 0
    udp_seconds: float = 0.0
    windows: int = 0
    ping_retransmissions: int = 0
    kernel_drops: int = 0
    health_checks: int = 0
    health_failures: int = 0
    responses: dict[str, int] = field(default_factory=dict)
    requests_from_server: int = 0
    dialogs_seen: int = 0
    framings: int = 0
    tcp_bytes: int = 0
    tcp_seconds: float = 0.0
    tcp_health_checks: int = 0
    tcp_health_failures: int = 0
    rss_start_kib: int = 0
    rss_peak_kib: int = 0
    rss_end_kib: int = 0
    alive: bool = True
    exit_status: int | None = None
    problems: list[dict[str, object]] = field(default_factory=list)
    problem_lines: int = 0
    failure: str = ""
    failure_file: str = ""

    @property
    def ok(self) -> bool:
        return (
            self.alive
            and not self.failure
            and self.health_failures == 0
            and self.tcp_health_failures == 0
            and self.problem_lines == 0
            and self.exit_status == 0
        )

    def summary(self) -> str:
        udp_rate = self.datagrams / self.udp_seconds if self.udp_seconds else 0.0
        tcp_rate = self.framings / self.tcp_seconds if self.tcp_seconds else 0.0
        lines = [
            f"seed {self.seed}; output {self.out_dir}",
            f"udp: {self.datagrams} datagrams ({self.datagram_bytes / 1e6:.1f} MB) in "
            f"{self.udp_seconds:.1f} s = {udp_rate:.0f}/s; {self.windows} windows, "
            f"{self.ping_retransmissions} ping retransmissions, {self.kernel_drops} dropped by the "
            f"kernel (RcvbufErrors); health {self.health_checks - self.health_failures}/"
            f"{self.health_checks}",
            f"      responses {dict(sorted(self.responses.items()))}; "
            f"{self.requests_from_server} requests from the server; "
            f"{self.dialogs_seen} dialogs fuzzed in",
            f"tcp: {self.framings} framings ({self.tcp_bytes / 1e6:.1f} MB) in "
            f"{self.tcp_seconds:.1f} s = {tcp_rate:.0f}/s; health "
            f"{self.tcp_health_checks - self.tcp_health_failures}/{self.tcp_health_checks}",
            f"RSS KiB: start {self.rss_start_kib}, peak {self.rss_peak_kib}, "
            f"end {self.rss_end_kib}",
            f"server alive {self.alive}, exit status {self.exit_status}, "
            f"{self.problem_lines} problem lines in its log, {len(self.problems)} problems",
        ]
        if self.failure:
            lines.append(f"FAILURE: {self.failure} (inputs: {self.failure_file})")
        for n, problem in enumerate(self.problems, 1):
            lines.append(
                f"problem {n}: {problem['count']} x, {problem['transport']}; "
                f"inputs: {problem['file'] or '-'}"
            )
            lines += [f"  | {line}" for line in str(problem["brief"]).splitlines()]
            culprit = problem.get("culprit")
            if isinstance(culprit, dict):
                how = (
                    "confirmed by a second replay"
                    if problem.get("confirmed")
                    else "NOT confirmed: in flight when it was logged"
                )
                lines.append(
                    f"  culprit ({how}) {culprit['transport']} #{culprit['index']} "
                    f"{culprit['mutations']}: {str(culprit['preview'])[:200]!r}"
                )
            elif problem["suspects"]:
                lines.append(f"  culprit not isolated among {problem['suspects']} inputs")
            if problem.get("timer") and not problem.get("confirmed"):
                lines.append(
                    "  raised in a timer: the input that armed it may have come seconds "
                    "earlier (retransmission, session refresh); see the log"
                )
        return "\n".join(lines)


def _write_inputs(path: Path, inputs: Sequence[Input], note: dict[str, object]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        f.write(json.dumps({"note": note}) + "\n")
        for item in inputs:
            f.write(json.dumps(item.to_json()) + "\n")
    return str(path)


def read_inputs(path: Path) -> list[Input]:
    out = []
    for line in path.read_text().splitlines():
        obj = json.loads(line)
        if "note" not in obj:
            out.append(Input.from_json(obj))
    return out


# ---------------------------------------------------------------- the campaigns


class Campaign:
    """Drives one server: UDP windows, TCP framings, problem attribution."""

    def __init__(self, server: AnswerServer, result: FuzzResult, out_dir: Path, seed: int) -> None:
        self.server = server
        self.result = result
        self.out_dir = out_dir
        self.watch = LogWatcher(server.log_path)
        self.target = ("127.0.0.1", server.port)
        # Datagrams go out round-robin from FUZZ_SOURCES addresses: a busy server sheds new
        # dialogs from a source above its fair share, and one source would be shed at once.
        self.fuzz_socks: list[socket.socket] = []
        for n in range(FUZZ_SOURCES):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            sock.bind((FUZZ_HOST if n == 0 else f"127.0.2.{n}", 0))
            sock.setblocking(False)
            self.fuzz_socks.append(sock)
        self.fuzz = self.fuzz_socks[0]
        self.ping = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.ping.bind((PING_HOST, 0))
        self.ping.setblocking(False)
        self.ping_port = int(self.ping.getsockname()[1])
        self.ping_count = 0
        self.answered: set[str] = set()
        """Branches of the pings answered 200 and not waited for yet."""
        self.mutator = Mutator(
            random.Random(seed),
            seed_corpus(),
            host=FUZZ_HOST,
            port=int(self.fuzz.getsockname()[1]),
            server=f"127.0.0.1:{server.port}",
            tag=f"s{seed:x}-",
        )
        self.tcp_rng = random.Random(seed * 7919 + 1)
        self.ack_rng = random.Random(seed * 7919 + 2)
        self.acks_sent = 0
        self.held: collections.deque[socket.socket] = collections.deque()
        self.kinds: dict[str, dict[str, object]] = {}
        self.tcp_sources = [f"127.0.1.{n}" for n in range(1, 251)]

    def close(self) -> None:
        for sock in self.fuzz_socks:
            sock.close()
        self.ping.close()
        while self.held:
            self.held.popleft().close()

    # ---- UDP

    def _drain(self, sock: socket.socket) -> None:
        result = self.result
        for _ in range(5000):
            try:
                data = sock.recv(65536)
            except (BlockingIOError, ConnectionRefusedError):
                return
            if data.startswith(b"SIP/2.0 "):
                code = data[8:11].decode("ascii", "replace")
                key = code[0] + "xx" if code[:1].isdigit() else "?"
                result.responses[key] = result.responses.get(key, 0) + 1
                if code == "200" and b" INVITE\r\n" in data:
                    msg = parse_sip(data)
                    if msg is not None and msg.to_tag:
                        tag = _TAG_OF_FROM.search(msg.header("from"))
                        self.mutator.dialogs.append(
                            (
                                msg.call_id.encode(),
                                (tag.group(1) if tag else "").encode(),
                                msg.to_tag.encode(),
                            )
                        )
                        result.dialogs_seen += 1
                        if self.ack_rng.random() < 0.8:  # as a UAC would; the rest time out
                            self._ack(msg)
            else:
                result.requests_from_server += 1

    def _ack(self, response: SipMessage) -> None:
        """ACK a 2xx to an INVITE, from the response's own From, To, Call-ID and CSeq."""
        self.acks_sent += 1
        seq = (response.header("cseq").split() or ["1"])[0]
        uri = response.contact_uri or f"sip:answer@127.0.0.1:{self.target[1]}"
        ack = (
            f"ACK {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {FUZZ_HOST}:{self.mutator.port};branch=z9hG4bKack{self.acks_sent}"
            ";rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: {response.header('from')}\r\n"
            f"To: {response.header('to')}\r\n"
            f"Call-ID: {response.call_id}\r\n"
            f"CSeq: {seq} ACK\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        with contextlib.suppress(OSError):
            self.fuzz.sendto(ack.encode("utf-8", "surrogateescape"), self.target)

    def _ping_request(self) -> tuple[bytes, str]:
        self.ping_count += 1
        branch = f"z9hG4bKping{self.ping_count}"
        data = build_request(
            "OPTIONS",
            f"sip:answer@127.0.0.1:{self.target[1]}",
            via_host=PING_HOST,
            via_port=self.ping_port,
            branch=branch,
            call_id=f"ping{self.ping_count}@fuzz",
            from_tag="ping",
        )
        return data, branch

    def send_ping(self) -> tuple[bytes, str, float]:
        data, branch = self._ping_request()
        with contextlib.suppress(BlockingIOError, ConnectionRefusedError):
            self.ping.sendto(data, self.target)
        return data, branch, time.monotonic()

    def wait_ping(self, ping: tuple[bytes, str, float], timeout: float = PING_TIMEOUT) -> bool:
        """Wait for the 200 to ``ping`` (retransmitted every 0.5 s), draining the fuzz socket."""
        data, branch, sent = ping
        deadline = sent + timeout
        retransmit = sent + 0.5
        if branch in self.answered:  # read while waiting for the ping before
            self.answered.discard(branch)
            return True
        while True:
            now = time.monotonic()
            if now >= deadline:
                return False
            if now >= retransmit:
                self.result.ping_retransmissions += 1
                with contextlib.suppress(BlockingIOError, ConnectionRefusedError):
                    self.ping.sendto(data, self.target)
                retransmit = now + 0.5
            ready, _, _ = select.select(
                [self.ping, *self.fuzz_socks], [], [], max(0.0, min(deadline, retransmit) - now)
            )
            for sock in ready:
                if sock is not self.ping:
                    self._drain(sock)
            if self.ping in ready:
                while True:
                    try:
                        answer = self.ping.recv(65536)
                    except (BlockingIOError, ConnectionRefusedError):
                        break
                    if answer.startswith(b"SIP/2.0 200"):
                        msg = parse_sip(answer)
                        if msg is not None:
                            self.answered.add(msg.branch)
            if branch in self.answered:
                self.answered.discard(branch)
                return True

    def udp(self, count: int, *, stop_at: float) -> None:
        result = self.result
        mutator = self.mutator
        batch: list[Input] = []  # since the last health check
        windows: collections.deque[list[Input]] = collections.deque(maxlen=3)
        previous: tuple[bytes, str, float] | None = None
        drops_before = udp_rcvbuf_errors()
        started = time.monotonic()
        sent = 0
        next_health = HEALTH_EVERY
        try:
            while sent < count and time.monotonic() < stop_at:
                window: list[Input] = []
                size = 0
                while sent < count and len(window) < WINDOW_DATAGRAMS and size < WINDOW_BYTES:
                    data, applied = mutator.next()
                    item = Input("udp", sent, data, applied)
                    sock = self.fuzz_socks[sent % FUZZ_SOURCES]
                    try:
                        sock.sendto(data, self.target)
                    except BlockingIOError:
                        self._drain(sock)
                    except OSError as exc:  # EMSGSIZE and the like: not sent, not counted
                        item.mutations.append(f"not sent: {exc.strerror}")
                    window.append(item)
                    size += len(data)
                    sent += 1
                    result.datagram_bytes += len(data)
                result.datagrams = sent
                result.windows += 1
                batch.extend(window)
                windows.append(window)
                ping = self.send_ping()
                if previous is not None and not self.wait_ping(previous):
                    self._fail_udp("a sync OPTIONS got no 200 within 5 s", batch)
                    return
                previous = ping
                if self._problems_after(
                    [item for window in reversed(windows) for item in window], "udp"
                ):
                    return
                if sent >= next_health or sent >= count:
                    next_health += HEALTH_EVERY
                    if not self.wait_ping(ping):
                        self._fail_udp("a sync OPTIONS got no 200 within 5 s", batch)
                        return
                    previous = None
                    result.health_checks += 1
                    if not self.server.alive():
                        result.alive = False
                        self._fail_udp("the server died", batch)
                        return
                    if options_ok(self.server.port, source=HEALTH_HOST, timeout=5.0) is None:
                        result.health_failures += 1
                        self._fail_udp("health check: OPTIONS from 127.0.0.3 unanswered", batch)
                        return
                    result.rss_peak_kib = max(result.rss_peak_kib, self.server.rss_kib())
                    if self._problems_after(
                        [item for window in reversed(windows) for item in window], "udp"
                    ):
                        return
                    batch = []
            if previous is not None and not self.wait_ping(previous):
                self._fail_udp("a sync OPTIONS got no 200 within 5 s", batch)
        finally:
            result.udp_seconds = time.monotonic() - started
            result.kernel_drops = udp_rcvbuf_errors() - drops_before

    def _fail_udp(self, why: str, batch: list[Input]) -> None:
        self.result.failure = why
        self.result.alive = self.server.alive()
        path = self.out_dir / "last-batch.jsonl"
        self.result.failure_file = _write_inputs(path, batch, {"failure": why})

    # ---- problems

    def _problems_after(self, suspects: list[Input], transport: str) -> bool:
        """Read the log; record new problems, isolating the culprit of a new kind.

        True when the campaign should stop (the server died, or too many kinds).
        """
        blocks = self.watch.new_blocks(final=True)
        if not blocks:
            return False
        if any(block.signature not in self.kinds for block in blocks):
            time.sleep(0.05)  # a new kind: let the server finish logging it
            blocks += self.watch.new_blocks(final=True)
        for block in blocks:
            self._record(block, suspects, transport)
        return not self.server.alive() or len(self.kinds) >= MAX_PROBLEMS

    def _record(
        self,
        block: ProblemBlock,
        suspects: list[Input],
        transport: str,
        culprit: Input | None = None,
        *,
        isolate: bool = True,
    ) -> None:
        known = self.kinds.get(block.signature)
        if known is not None:
            known["count"] = int(str(known["count"])) + 1
            return
        entry: dict[str, object] = {
            "signature": block.signature,
            "count": 1,
            "transport": transport,
            "brief": block.brief(),
            "lines": block.lines[:40],
            "suspects": len(suspects),
            "culprit": None,
            "file": "",
            "timer": any("_on_timer" in line or "handle_timer" in line for line in block.lines),
        }
        self.kinds[block.signature] = entry
        self.result.problems.append(entry)
        n = len(self.result.problems)  # before isolating, which may record other kinds
        entry["confirmed"] = False
        if culprit is None and isolate and suspects:
            culprit, entry["confirmed"] = self._isolate(suspects, transport, block.signature)
        if suspects or culprit is not None:
            ordered = ([culprit] if culprit else []) + [s for s in suspects if s is not culprit]
            entry["file"] = _write_inputs(
                self.out_dir / f"problem-{n}.jsonl",
                ordered,
                {"log": block.lines, "culprit_first": culprit is not None},
            )
        if culprit is not None:
            (self.out_dir / f"problem-{n}.bin").write_bytes(culprit.data)
            entry["culprit"] = culprit.to_json()

    def _replay(self, item: Input) -> None:
        if item.transport == "udp":
            with contextlib.suppress(OSError):
                self.fuzz.sendto(item.data, self.target)
            self.wait_ping(self.send_ping())
        else:
            self._tcp_send(item, keep=False)
            tcp_options_ok(self.server.port, source=TCP_HEALTH_HOST, timeout=2.0)

    def _isolate(
        self, suspects: list[Input], transport: str, signature: str
    ) -> tuple[Input | None, bool]:
        """Send the suspects again one at a time: (culprit, confirmed).

        The first input after which the log shows a problem is the candidate.
        It is confirmed when a second replay of it (or of one of the five
        replayed just before it: a problem from a timer shows up late) brings
        the same kind of problem back within a second. What the replays log
        is recorded too.
        """
        deadline = time.monotonic() + 60
        tried: list[Input] = []
        for item in suspects:
            if time.monotonic() > deadline or not self.server.alive():
                return None, False
            self._replay(item)
            tried.append(item)
            time.sleep(0.02)
            found = self.watch.new_blocks(final=True)
            if not found:
                continue
            for block in found:
                self._record(block, [item], transport, item, isolate=False)
            for candidate in [item, *reversed(tried[-6:-1])]:
                if not self.server.alive():
                    break
                self._replay(candidate)
                time.sleep(1.0)
                again = self.watch.new_blocks(final=True)
                for block in again:
                    self._record(block, [candidate], transport, candidate, isolate=False)
                if any(block.signature == signature for block in again):
                    return candidate, True
            return item, False
        return None, False

    # ---- TCP

    def _tcp_framing(self, index: int) -> Input:
        rng = self.tcp_rng
        mutator = self.mutator
        parts: list[bytes] = []
        applied: list[str] = []
        for _ in range(rng.choice([1, 1, 2, 3, 4])):
            r = rng.random()
            if r < 0.1:
                parts.append(b"\r\n" * rng.randint(1, 3))  # keep-alives
                applied.append("crlf")
                continue
            base = mutator.base(rng).replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP")
            if r < 0.25:
                parts.append(base)
                applied.append("valid")
                continue
            data, names = mutator.next()
            data = data.replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP")
            if rng.random() < 0.2:
                data = _content_length(rng, data, mutator)
                names.append("content_length")
            if rng.random() < 0.03:
                data = data.replace(b"\r\n", b"\r\nX-Pad: " + b"p" * 70000 + b"\r\n", 1)
                names.append("oversized")
            parts.append(data)
            applied.append("+".join(names))
        stream = b"".join(parts)
        cuts = sorted(rng.randrange(len(stream) + 1) for _ in range(rng.choice([0, 1, 2, 5, 20])))
        chunks = [b - a for a, b in itertools.pairwise([0, *cuts, len(stream)]) if b > a]
        close = rng.choices(["shutdown", "close", "reset", "hold"], [40, 35, 15, 10])[0]
        return Input("tcp", index, stream, applied, chunks, close)

    def _tcp_send(self, item: Input, *, keep: bool) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((self.tcp_sources[item.index % len(self.tcp_sources)], 0))
            sock.settimeout(2.0)
            sock.connect(self.target)
            at = 0
            for n, size in enumerate(item.chunks):
                sock.sendall(item.data[at : at + size])
                at += size
                if n and n % 4 == 0:
                    time.sleep(0.0005)  # now and then let the server read a piece alone
            if item.close == "hold" and keep:
                self.held.append(sock)
                if len(self.held) > 64:
                    self.held.popleft().close()
                return
            if item.close == "reset":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif item.close == "shutdown":
                sock.shutdown(socket.SHUT_WR)
                sock.settimeout(0.01)
                with contextlib.suppress(OSError):
                    while sock.recv(65536):
                        pass
        except OSError:
            pass
        sock.close()

    def tcp(self, count: int, *, stop_at: float) -> None:
        result = self.result
        started = time.monotonic()
        recent: collections.deque[Input] = collections.deque(maxlen=8)
        try:
            for index in range(count):
                if time.monotonic() >= stop_at:
                    break
                item = self._tcp_framing(index)
                recent.append(item)
                self._tcp_send(item, keep=True)
                result.framings += 1
                result.tcp_bytes += len(item.data)
                result.tcp_health_checks += 1
                if not tcp_options_ok(self.server.port, source=TCP_HEALTH_HOST, timeout=5.0):
                    result.tcp_health_failures += 1
                    result.alive = self.server.alive()
                    result.failure = "TCP health check: no 200 on a fresh connection within 5 s"
                    result.failure_file = _write_inputs(
                        self.out_dir / "last-batch.jsonl", list(recent), {"failure": result.failure}
                    )
                    return
                if self._problems_after([item, *reversed(recent)][:4], "tcp"):
                    return
                if index % 500 == 0:
                    result.rss_peak_kib = max(result.rss_peak_kib, self.server.rss_kib())
        finally:
            result.tcp_seconds = time.monotonic() - started


_TAG_OF_FROM = re.compile(r";\s*tag=([^;,\s>]+)", re.IGNORECASE)


# ---------------------------------------------------------------- entry points


def run(
    datagrams: int,
    framings: int,
    seed: int,
    out_dir: Path,
    *,
    max_seconds: float = 3600.0,
) -> FuzzResult:
    """Start a server, fuzz it over UDP then TCP, stop it; the result."""
    out_dir.mkdir(parents=True, exist_ok=True)
    result = FuzzResult(seed, str(out_dir))
    stop_at = time.monotonic() + max_seconds
    with start_answer(out_dir / "answer.log") as server:
        result.rss_start_kib = server.rss_kib()
        campaign = Campaign(server, result, out_dir, seed)
        try:
            if datagrams:
                campaign.udp(datagrams, stop_at=stop_at)
            if framings and server.alive() and not result.failure:
                campaign.tcp(framings, stop_at=stop_at)
        finally:
            campaign.close()
        result.rss_end_kib = server.rss_kib()
        result.rss_peak_kib = max(result.rss_peak_kib, result.rss_end_kib, result.rss_start_kib)
        result.alive = result.alive and server.alive()
        result.exit_status = server.stop()
    # What the log says after the last check (and at shutdown) has no input to blame.
    time.sleep(0.1)
    for block in campaign.watch.new_blocks(final=True):
        campaign._record(block, [], "after the last check / shutdown", isolate=False)
    result.problem_lines = len(log_problems(server.log_path))
    return result


def replay(path: Path, out_dir: Path) -> int:
    """Send the inputs of a problem / batch file to a fresh server, one at a time."""
    inputs = read_inputs(path)
    result = FuzzResult(0, str(out_dir))
    with start_answer(out_dir / "answer.log") as server:
        campaign = Campaign(server, result, out_dir, 0)
        try:
            for item in inputs:
                if item.transport == "udp":
                    with contextlib.suppress(OSError):
                        campaign.fuzz.sendto(item.data, campaign.target)
                    answered = campaign.wait_ping(campaign.send_ping())
                else:
                    campaign._tcp_send(item, keep=False)
                    answered = tcp_options_ok(server.port, source=TCP_HEALTH_HOST)
                time.sleep(0.05)
                found = campaign.watch.new_blocks(final=True)
                print(
                    f"{item.transport} #{item.index} {item.mutations}: "
                    f"{'answered' if answered else 'NO ANSWER'}, {len(found)} problems"
                )
                for block in found:
                    print("  | " + block.brief().replace("\n", "\n  | "))
        finally:
            campaign.close()
        status = server.stop()
    print(f"server exit status {status}; log {out_dir / 'answer.log'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.load.fuzz", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--datagrams", type=int, default=100_000)
    parser.add_argument("--tcp", type=int, default=2_000, help="TCP framings")
    parser.add_argument("--seed", type=int, default=None, help="default: random (printed)")
    parser.add_argument("--out", type=Path, default=None, help="output directory")
    parser.add_argument("--json", type=Path, default=None, help="write the result here")
    parser.add_argument("--max-seconds", type=float, default=3600.0)
    parser.add_argument("--replay", type=Path, default=None, help="a .jsonl written by a run")
    parser.add_argument(
        "--keep-log", action="store_true", help="keep the server log of a clean run too"
    )
    parser.add_argument(
        "--host-network",
        action="store_true",
        help="run without a private network namespace (fuzzed Contacts, Routes and "
        "maddr can then make the server send off loopback)",
    )
    args = parser.parse_args(argv)
    why = enter_private_netns()
    if why is not None and not args.host_network:
        print(f"fuzz: no private network namespace ({why}); see --host-network", file=sys.stderr)
        return 3
    with contextlib.suppress(OSError, AttributeError):
        if (os.cpu_count() or 1) > LOAD_CPU:
            os.sched_setaffinity(0, {LOAD_CPU})
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    out_dir = args.out or Path(f"/tmp/sipwire-fuzz-{seed}-{int(time.time())}")
    if args.replay is not None:
        return replay(args.replay, out_dir)
    print(
        f"fuzz: seed {seed}, {args.datagrams} datagrams, {args.tcp} TCP framings, "
        f"output {out_dir} (reproduce: --seed {seed})",
        flush=True,
    )
    result = run(args.datagrams, args.tcp, seed, out_dir, max_seconds=args.max_seconds)
    print(result.summary(), flush=True)
    payload = dict(result.__dict__, ok=result.ok)
    if args.json is not None:
        args.json.write_text(json.dumps(payload, indent=1))
    (out_dir / "result.json").write_text(json.dumps(payload, indent=1))
    if result.ok and not args.keep_log:
        (out_dir / "answer.log").unlink(missing_ok=True)  # ~1 KB per datagram
    elif not result.ok:
        print(f"fuzz: FAILED; inputs and log under {out_dir}", flush=True)
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
