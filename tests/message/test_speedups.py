"""Differential tests of the C accelerator against the pure-Python parser.

``_speedups.parse(data)`` may return None (the Python parser then decides),
but when it returns a message, that message must be identical to what
``parse_message_py(data)`` builds: same classes, same attribute values and
types, same dict and list order. Inputs: the torture corpus, the benchmark
messages, examples/invite.sip, generated well-formed messages and mutations
of them, and random bytes.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sipwire.errors import ParseError
from sipwire.message import Request, Response
from sipwire.message.grammar import TOKEN_CHARS
from sipwire.message.headers import canonical_key
from sipwire.message.parser import parse_message, parse_message_py

try:
    from sipwire.message import _speedups
except ImportError:  # pragma: no cover - depends on the build
    pytest.skip("the C accelerator sipwire.message._speedups is not built", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))


# ------------------------------------------------------------------ comparison
def _slot_names(cls: type) -> list[str]:
    names: list[str] = []
    for klass in cls.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        names.extend([slots] if isinstance(slots, str) else slots)
    return [n for n in names if n not in ("__weakref__", "__dict__")]


def _same(a: object, b: object, path: str) -> None:
    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, dict):
        assert isinstance(b, dict)
        assert list(a) == list(b), f"{path}: keys {list(a)} != {list(b)}"
        for key in a:
            _same(key, next(k for k in b if k == key), f"{path}[{key!r}] key")
            _same(a[key], b[key], f"{path}[{key!r}]")
    elif isinstance(a, list | tuple):  # lists, tuples, CSeq (a NamedTuple)
        assert isinstance(b, list | tuple)
        assert len(a) == len(b), f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{path}[{i}]")
    elif isinstance(a, str | bytes | int) or a is None:
        assert a == b, f"{path}: {a!r} != {b!r}"
    else:  # Request, Response, Headers, SipUri, Via, Address: every slot
        names = _slot_names(type(a))
        assert names, f"{path}: unexpected object {a!r}"
        for name in names:
            assert hasattr(a, name) == hasattr(b, name), f"{path}.{name}: set on one side only"
            if hasattr(a, name):
                _same(getattr(a, name), getattr(b, name), f"{path}.{name}")


def assert_same(fast: Request | Response, ref: Request | Response) -> None:
    """The accelerator's message and the reference one are identical in every attribute."""
    assert type(fast) is type(ref)
    if isinstance(fast, Request):
        assert isinstance(ref, Request)
        for name in ("method", "_uri_text", "version"):
            _same(getattr(fast, name), getattr(ref, name), name)
        _same(fast._uri, ref._uri, "uri")
    else:
        assert isinstance(ref, Response)
        for name in ("version", "status", "reason"):
            _same(getattr(fast, name), getattr(ref, name), name)
    _same(fast.headers._items, ref.headers._items, "headers._items")
    _same(fast.headers._cache, ref.headers._cache, "headers._cache")
    _same(fast.body, ref.body, "body")
    _same(fast, ref, "message")  # every remaining slot too


def check(data: bytes) -> bool:
    """Differential check of one input; True when the accelerator took it."""
    fast = _speedups.parse(data)
    if fast is None:
        return False
    try:
        ref = parse_message_py(data)
    except ParseError as exc:  # pragma: no cover - a failure of the accelerator
        pytest.fail(f"the accelerator parsed what Python rejects ({exc}): {data!r}")
    assert_same(fast, ref)
    return True


# ------------------------------------------------------------------ fixed inputs
def _torture_dir() -> Path:
    return Path(os.environ.get("SIPWIRE_TORTURE_DIR") or ROOT.parent / "shared" / "torture")


def _torture_files() -> list[Path]:
    base = _torture_dir()
    patterns = ("rfc4475/*.dat", "rfc4475/wire/*.dat", "rfc5118/*.dat", "rfc5118/wire/*.dat")
    return sorted(p for pattern in patterns for p in base.glob(pattern))


@functools.cache
def _load_bench_messages() -> ModuleType:
    name = "_sipwire_bench_messages"
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / "messages.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _bench_messages() -> list[bytes]:
    return [m.data for m in _load_bench_messages().MESSAGES]


def _bench_variants() -> Iterator[bytes]:
    module = _load_bench_messages()
    for message in module.MESSAGES:
        for data, _ in module.variants(message, 8):
            yield data


EXAMPLE = (ROOT / "examples" / "invite.sip").read_bytes()


@pytest.mark.parametrize("path", _torture_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_torture(path: Path) -> None:
    check(path.read_bytes())


def test_torture_corpus_present() -> None:
    files = _torture_files()
    if not files:
        pytest.skip(f"no torture corpus at {_torture_dir()}")
    taken = sum(check(p.read_bytes()) for p in files)
    assert taken > 0


@pytest.mark.parametrize("index", range(3))
def test_bench_messages_take_fast_path(index: int) -> None:
    data = _bench_messages()[index]
    assert check(data), "the accelerator must parse the benchmark messages"


def test_bench_variants() -> None:
    for data in _bench_variants():
        assert check(data)


def test_example_takes_fast_path() -> None:
    assert check(EXAMPLE)


def test_parse_message_uses_it() -> None:
    message = parse_message(EXAMPLE)
    assert_same(message, parse_message_py(EXAMPLE))
    assert message.via[0].branch == "z9hG4bK776asdhds"


def test_not_bytes() -> None:
    assert _speedups.parse(bytearray(EXAMPLE)) is None  # type: ignore[arg-type]
    assert _speedups.parse(memoryview(EXAMPLE)) is None  # type: ignore[arg-type]


# Hand-picked edges of the fast subset, each with (expected fast?) ----------------
_BASE_HEAD = (
    "INVITE sip:bob@example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP pc33.example.com:5060;branch=z9hG4bK776\r\n"
    "To: Bob <sip:bob@example.com>\r\n"
    'From: "Alice" <sip:alice@example.com>;tag=19\r\n'
    "Call-ID: a84b4c76e66710\r\n"
    "CSeq: 314159 INVITE\r\n"
)


def _msg(extra: str = "", body: bytes = b"", start: str | None = None) -> bytes:
    head = _BASE_HEAD if start is None else start + "\r\n" + _BASE_HEAD.partition("\r\n")[2]
    return (head + extra + "\r\n").encode() + body


EDGES: list[tuple[bytes, bool]] = [
    (_msg(), True),
    (_msg("Content-Length: 3\r\n", b"abcdef"), True),
    (_msg("Content-Length: 9\r\n", b"abc"), False),
    (_msg("Content-Length: 4294967296\r\n"), False),
    (_msg("Content-Length: 00000000000000000000000001\r\n", b"x"), False),
    (_msg("Max-Forwards: 255\r\n"), True),
    (_msg("Max-Forwards: 256\r\n"), False),
    (_msg("Max-Forwards: 7 0\r\n"), False),
    (_msg("Call-ID: again\r\n"), False),
    (_msg("i: again\r\n"), False),
    (_msg("Via : SIP/2.0/TCP h;branch=z9hG4bKx\r\n"), True),
    (_msg("v:SIP/2.0/tcp [2001:db8::1]:5061;received=1.2.3.4;rport\r\n"), True),
    (_msg("Via: SIP/2.0/UDP a, SIP/2.0/UDP b\r\n"), True),
    (_msg("Via: SIP/2.0/UDP a;rport=5,SIP/2.0/TCP b:7;branch=x \t, SIP/2.0/UDP c\r\n"), True),
    (_msg("Via: SIP/2.0/UDP a,, SIP/2.0/UDP b\r\n"), False),
    (_msg("Via: SIP/2.0/UDP a,\r\n"), False),
    (_msg("Via: SIP/2.0/UDP a,\x0cSIP/2.0/UDP b\r\n"), False),
    (_msg("Via: SIP/2.0/UDP a, SIP/2.0/UDP b;x=<y>\r\n"), False),
    (_msg("Via: SIP/2.0/UDP a, SIP/2.0/UDP b:65536\r\n"), False),
    (_msg("Via: SIP/2.0/UDP a:65536\r\n"), False),
    (_msg("Via: SIP/2.0/UDP a;branch=\r\n"), False),
    (_msg("Via: SIP/2.0/UDP a-;branch=x\r\n"), False),
    (_msg("X-\u00e9t\u00e9: caf\u00e9 \u2603\r\n"), False),  # not a token name
    (_msg("Subject: caf\u00e9 \u2603\r\n"), True),
    (_msg("Subject:\r\n"), True),
    (_msg("Subject: a\r\n b\r\n"), False),  # folded
    (_msg(start="SIP/2.0 180 Ringing"), True),
    (_msg(start="SIP/2.0 099 Low"), False),
    (_msg(start="SIP/2.0 200 "), True),
    (_msg(start="SIP/2.0 200"), False),
    (_msg(start="SIP/2.1 200 OK"), False),
    (_msg(start="OPTIONS sips:h:5061;Transport=TLS;lr SIP/2.0"), True),
    (_msg(start="OPTIONS SIP:user:@h SIP/2.0"), True),
    (_msg(start="OPTIONS sip:us%65r@h SIP/2.0"), False),
    (_msg(start="OPTIONS sip:h?subject=x SIP/2.0"), False),
    (_msg(start="OPTIONS sip:h:99999 SIP/2.0"), False),
    (_msg(start="OPTIONS tel:+1234 SIP/2.0"), False),
    (_msg(start="OPTIONS sip:u;a=b@h;p=;x SIP/2.0"), False),
    (_msg(start="OPTIONS sip:u;a=b@h;p;x SIP/2.0"), True),
    (_msg(start="OPTIONS  sip:h SIP/2.0"), False),
    (_msg(start="OPTIONS sip:h SIP/2.0 "), False),
    (b"\r\n" + _msg(), False),
    (_msg().replace(b"\r\n\r\n", b"\n\n"), False),
    (_msg().replace(b"To:", b"To\r:"), False),
    (_msg().replace(b'"Alice" ', b"Alice  Liddell\t"), True),
    (_msg().replace(b'"Alice" ', b'"A \\"q\\"" '), False),
    (_msg().replace(b'"Alice" ', b'"\xc3\xa9l\xc3\xa8ve <x>" '), True),
    (_msg().replace(b'"Alice" ', b'"\xff" '), False),
    (_msg().replace(b"Bob <sip:bob@example.com>", b"sip:bob@example.com:5060;tag=x"), True),
    (_msg().replace(b"<sip:bob@example.com>", b"sip:bob;x@example.com"), False),
    (_msg().replace(b"<sip:bob@example.com>", b"<tel:+1555>"), False),
    (_msg().replace(b"Bob <sip:bob@example.com>", b"sIpS:Bob:pw@[::1]:5"), True),
    (_msg().replace(b"CSeq: 314159", b"CSeq: 4294967296"), False),
    (_msg().replace(b"CSeq: 314159", b"CSeq: 4294967295 \t"), True),
    (_msg().replace(b"a84b4c76e66710", b"a@b@c"), False),
    (_msg().replace(b"a84b4c76e66710", b"<x>@[y]"), True),
]


@pytest.mark.parametrize(("data", "fast"), EDGES)
def test_edges(data: bytes, fast: bool) -> None:
    assert check(data) is fast


def test_key_cache_entry_with_blanks() -> None:
    """A name with trailing blanks takes its key from headers._KEY_CACHE, as in Python."""
    canonical_key("Subject  ")  # caches "Subject  " -> "subject  "
    data = _msg("Subject  : x\r\n")
    assert check(data)
    fast = _speedups.parse(data)
    assert fast is not None
    assert fast.headers._items[-1][:2] == ("subject  ", "Subject  ")


# ------------------------------------------------------------------ generated messages
_TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.!%*_+`'~"
assert re.fullmatch(f"[{TOKEN_CHARS}]+", _TOKEN_ALPHABET)
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_USER_ALPHABET = _ALNUM + "-_.!~*'()&=+$,;?/%"
_PARAMC_ALPHABET = _ALNUM + "-_.!~*'()[]/:&+$%"
_PVAL_ALPHABET = _ALNUM + "-_.!~*'()[]/:&+$%<>=@?{}|^#"

tokens = st.text(_TOKEN_ALPHABET, min_size=1, max_size=10)
labels = st.text(_ALNUM + "-", min_size=1, max_size=8)
hosts = st.one_of(
    st.lists(labels, min_size=1, max_size=4).map(".".join),
    st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t))),
    st.sampled_from(["[2001:db8::1]", "[::1]", "[::ffff:192.0.2.1]", "[1:2:3:4:5:6:7:8]", "a."]),
)
ports = st.one_of(st.just(""), st.integers(0, 70000).map(lambda p: f":{p}"), st.just(":0005"))
blanks = st.sampled_from(["", "", " ", "\t", "  "])


def case_variants(word: str) -> st.SearchStrategy[str]:
    return st.lists(st.booleans(), min_size=len(word), max_size=len(word)).map(
        lambda flips: "".join(
            c.upper() if f else c.lower() for c, f in zip(word, flips, strict=True)
        )
    )


@st.composite
def uri_params(draw: st.DrawFn, value_alphabet: str = _PARAMC_ALPHABET) -> str:
    names = st.one_of(
        st.sampled_from(["lr", "transport", "LR", "Transport", "maddr", "user", "ttl"]),
        st.text(_PARAMC_ALPHABET, min_size=1, max_size=6),
    )
    out = []
    for _ in range(draw(st.integers(0, 3))):
        value = draw(st.one_of(st.none(), st.text(value_alphabet, min_size=0, max_size=6)))
        out.append(f";{draw(names)}" + ("" if value is None else f"={value}"))
    return "".join(out)


@st.composite
def sip_uris(draw: st.DrawFn) -> str:
    scheme = draw(st.one_of(case_variants("sip"), case_variants("sips")))
    userinfo = ""
    if draw(st.booleans()):
        userinfo = draw(st.text(_USER_ALPHABET, min_size=1, max_size=10))
        if draw(st.booleans()):
            userinfo += ":" + draw(st.text(_ALNUM + "&=+$,%", max_size=6))
        userinfo += "@"
    return f"{scheme}:{userinfo}{draw(hosts)}{draw(ports)}{draw(uri_params())}"


@st.composite
def header_params(draw: st.DrawFn) -> str:
    out = []
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.one_of(st.sampled_from(["tag", "TAG", "q", "expires"]), tokens))
        value = draw(st.one_of(st.none(), st.text(_PVAL_ALPHABET, min_size=1, max_size=8)))
        out.append(f";{name}" + ("" if value is None else f"={value}"))
    return "".join(out)


display_names = st.one_of(
    st.just(""),
    st.text(_TOKEN_ALPHABET + " \t", max_size=12).map(lambda s: s.strip(" \t") + " "),
    st.text(
        st.characters(exclude_categories=["Cs"], exclude_characters='\r\n"\\'), max_size=10
    ).map(lambda s: f'"{s}" '),
    st.sampled_from(['"a\\"b" ', '"x" \t', "Bob", '"unterminated ']),
)


@st.composite
def addresses(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 3)) == 0:
        user = draw(st.text(_ALNUM + "-_.!~*'()&=+$/", min_size=1, max_size=8))
        scheme = draw(st.one_of(case_variants("sip"), case_variants("sips")))
        return f"{scheme}:{user}@{draw(hosts)}{draw(ports)}{draw(header_params())}"
    return f"{draw(display_names)}<{draw(sip_uris())}>{draw(header_params())}"


@st.composite
def vias(draw: st.DrawFn) -> str:
    transport = draw(st.one_of(st.sampled_from(["UDP", "tcp", "TLS", "WS", "sctp"]), tokens))
    params = draw(header_params())
    if draw(st.booleans()):
        params = f";branch=z9hG4bK{draw(st.text(_ALNUM, max_size=8))}" + params
    via = f"SIP/2.0/{transport} {draw(hosts)}{draw(ports)}{params}"
    if draw(st.integers(0, 9)) == 0:
        via += ", " + via
    return via


def _name(long: str, compact: str | None = None) -> st.SearchStrategy[str]:
    spellings = case_variants(long)
    if compact is not None:
        spellings = st.one_of(spellings, case_variants(compact))
    return spellings


@st.composite
def header_lines(draw: st.DrawFn, name: str, value: str) -> str:
    trailing = draw(st.sampled_from(["", "", "", " ", "\t"]))
    return f"{name}{trailing}:{draw(blanks) or ' '}{value}{draw(blanks)}\r\n"


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 3)) == 0:
        code = draw(st.one_of(st.integers(100, 699), st.integers(0, 999)))
        reason = draw(st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r\n")))
        start = f"SIP/2.0 {code:03d} {reason}"
    else:
        method = draw(st.one_of(st.sampled_from(["INVITE", "ACK", "REGISTER", "BYE"]), tokens))
        start = f"{method} {draw(sip_uris())} SIP/2.0"
    lines = []
    for _ in range(draw(st.integers(1, 3))):
        lines.append(draw(header_lines(draw(_name("Via", "v")), draw(vias()))))
    lines.append(draw(header_lines(draw(_name("From", "f")), draw(addresses()))))
    lines.append(draw(header_lines(draw(_name("To", "t")), draw(addresses()))))
    word = st.text(_ALNUM + "-.!%*_+`'~()<>:\\\"/[]?{}", min_size=1, max_size=10)
    call_id = draw(word) + (("@" + draw(word)) if draw(st.booleans()) else "")
    lines.append(draw(header_lines(draw(_name("Call-ID", "i")), call_id)))
    seq = draw(st.one_of(st.integers(0, 2**32 - 1), st.integers(0, 2**40)))
    cseq = f"{seq}{draw(st.sampled_from([' ', '  ', chr(9)]))}{draw(tokens)}"
    lines.append(draw(header_lines(draw(_name("CSeq")), cseq)))
    if draw(st.booleans()):
        mf = draw(st.integers(0, 300))
        lines.append(draw(header_lines(draw(_name("Max-Forwards")), str(mf))))
    extra_values = st.text(
        st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"), max_size=20
    )
    for _ in range(draw(st.integers(0, 4))):
        name = draw(st.one_of(tokens, st.sampled_from(["Contact", "m", "Subject", "Route"])))
        lines.append(draw(header_lines(name, draw(extra_values).strip())))
    lines = draw(st.permutations(lines))
    body = draw(st.binary(max_size=40))
    if draw(st.booleans()):
        length = draw(st.one_of(st.just(len(body)), st.integers(0, len(body) + 2)))
        lines.append(draw(header_lines(draw(_name("Content-Length", "l")), str(length))))
    return (start + "\r\n" + "".join(lines) + "\r\n").encode() + body


@SETTINGS
@given(messages())
def test_generated_messages(data: bytes) -> None:
    check(data)


def test_generated_messages_mostly_fast() -> None:
    """The generator mostly stays inside the fast subset, so the test above means something."""
    taken = 0
    samples = 0

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
    @given(messages())
    def run(data: bytes) -> None:
        nonlocal taken, samples
        samples += 1
        taken += check(data)

    run()
    assert taken >= samples // 10, f"only {taken} of {samples} generated messages were fast"


# ------------------------------------------------------------------ mutations
_SPECIAL = [b"\r", b"\n", b"\r\n", b" ", b"\t", b"%", b";", b",", b'"', b"\x00", b"\xff", b"<"]
_SPECIAL += [b">", b":", b"@", b"=", b"?", b"\\", b"[", b"]", b"\xc3", b"\xe2\x98\x83", b"-"]
SEEDS = [*_bench_messages(), EXAMPLE, _msg(), _msg(start="SIP/2.0 200 OK")]


@st.composite
def mutations(draw: st.DrawFn, base: st.SearchStrategy[bytes]) -> bytes:
    data = bytearray(draw(base))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.integers(0, 4))
        pos = draw(st.integers(0, len(data)))
        if kind == 0 and pos < len(data):  # flip bits of one byte
            data[pos] ^= draw(st.integers(1, 255))
        elif kind == 1:
            data[pos:pos] = draw(st.sampled_from(_SPECIAL))
        elif kind == 2:  # delete a few bytes
            del data[pos : pos + draw(st.integers(1, 4))]
        elif kind == 3:  # truncate
            del data[pos:]
        else:  # overwrite with a special byte
            data[pos : pos + 1] = draw(st.sampled_from(_SPECIAL))
    return bytes(data)


@SETTINGS
@given(mutations(st.sampled_from(SEEDS)))
@example(SEEDS[0][:-1])
@example(SEEDS[0].replace(b"Content-Length: 253", b"Content-Length: 254"))
def test_mutated_seeds(data: bytes) -> None:
    check(data)


@SETTINGS
@given(mutations(messages()))
def test_mutated_generated(data: bytes) -> None:
    check(data)


@SETTINGS
@given(st.binary(max_size=300))
@example(b"")
@example(b"SIP/")
@example(b"INVITE sip:a SIP/2.0\r\n\r\n")
def test_random_bytes(data: bytes) -> None:
    check(data)


@SETTINGS
@given(st.binary(max_size=80), st.sampled_from(SEEDS), st.integers(0, 900))
def test_spliced_bytes(noise: bytes, seed: bytes, pos: int) -> None:
    check(seed[:pos] + noise + seed[pos:])
