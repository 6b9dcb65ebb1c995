"""The fuzzer's mutations (see :mod:`tests.load.fuzz`).

:data:`MUTATIONS` maps a name to a weight and a function ``(rng, data,
mutator) -> data``: bit flips, byte insertion and deletion, duplicated and
removed headers, huge or odd numbers, overlong lines, random Unicode and
invalid UTF-8, truncation, CRLF / LF / CR mixing, compact and long header
names, spliced messages, broken request lines, parameters and SDP bodies.
:class:`Mutator` draws a seed of the corpus, fills in its placeholders and
stacks mutations on it.
"""

from __future__ import annotations

import collections
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.load.corpus import Seed

__all__ = ["FUZZ_HOST", "MAX_DATAGRAM", "MUTATIONS", "Mutation", "Mutator"]

MAX_DATAGRAM = 65000
FUZZ_HOST = "127.0.0.5"
"""The address the fuzzed messages name as their sender (the first UDP fuzz source)."""

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
