"""The command line's errors (issue 11, "CLI errors found"), through the real ``sipwire``.

Every failure is one line on standard error, no traceback, and the exit
status of sipwire.cli.common: 1 failed, 2 wrong command line (found before
any network traffic), 130 Ctrl-C after the clean-up.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from sipwire.cli.main import main
from tests.aio.certs import Pki, make_pki
from tests.cli.cli_helpers import SIPWIRE, answerer, one_line, sipwire, wait_for
from tests.interop.sipp import free_port

pytestmark = pytest.mark.timeout(90)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def silent_udp() -> Iterator[socket.socket]:
    """A UDP socket that never answers: a target that must receive nothing (or time out)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        yield sock


def _received(sock: socket.socket) -> bool:
    try:
        sock.recv(65536)
    except BlockingIOError:
        return False
    return True


# -- sipwire answer: where it cannot listen, certificates ------------------------------------
def test_answer_on_a_port_in_use() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        done = sipwire("answer", "--listen", f"udp:127.0.0.1:{port}")
    assert done.returncode == 1
    line = one_line(done.stderr)
    assert line == f"Error: cannot listen on udp 127.0.0.1:{port}: address already in use"


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_answer_on_an_address_that_is_not_local(transport: str) -> None:
    done = sipwire("answer", "--listen", f"{transport}:192.0.2.1:5060")
    assert done.returncode == 1
    line = one_line(done.stderr)
    where = f"{transport} 192.0.2.1:5060"
    assert line == f"Error: cannot listen on {where}: not a local address of this host"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("other"), ca_name="another CA")


@pytest.mark.parametrize("case", ["junk-cert", "junk-key", "mismatch", "key-as-cert"])
def test_answer_with_a_bad_certificate_or_key(
    case: str, pki: Pki, other_pki: Pki, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    cert, key, culprit = {
        "junk-cert": (junk, pki.server_key, ("--cert", junk)),
        "junk-key": (pki.server_cert, junk, ("--key", junk)),
        "mismatch": (pki.server_cert, other_pki.server_key, ("--key", other_pki.server_key)),
        "key-as-cert": (pki.server_key, pki.server_key, ("--cert", pki.server_key)),
    }[case]
    done = sipwire(
        "answer", "--listen", f"tls:127.0.0.1:{free_port()}", "--cert", str(cert), "--key", str(key)
    )
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert line.startswith(f"Error: Invalid value for '{culprit[0]}': {culprit[1]} ")


# -- no answer, no such name, not a URI --------------------------------------------------------
def test_call_with_nobody_listening_is_408(silent_udp: socket.socket) -> None:
    port = silent_udp.getsockname()[1]
    started = time.monotonic()
    done = sipwire("call", f"sip:x@127.0.0.1:{port}", "--timeout", "2")
    assert time.monotonic() - started < 15
    assert done.returncode == 1
    assert one_line(done.stderr).startswith("Error: 408 Request Timeout")
    assert _received(silent_udp)  # the INVITE went out


@pytest.mark.parametrize("command", [["call"], ["options"], ["message", "TARGET", "hi"]])
def test_a_name_that_does_not_resolve(command: list[str]) -> None:
    args = [a if a != "TARGET" else "sip:x@nonexistent.invalid" for a in command]
    if len(args) == 1:
        args.append("sip:x@nonexistent.invalid")
    done = sipwire(*args, "--timeout", "10")
    assert done.returncode == 1
    assert one_line(done.stderr) == "Error: 503 cannot resolve nonexistent.invalid"


@pytest.mark.parametrize(
    "args", [["call", "bob"], ["options", "bob"], ["message", "bob", "hi"], ["register", "bob"]]
)
def test_a_bare_word_is_not_a_uri(args: list[str]) -> None:
    done = sipwire(*args, "--trace")  # nothing is sent, so nothing is traced
    assert done.returncode == 2
    assert one_line(done.stderr) == "Error: 'bob' is not a SIP URI (try sip:bob@host)"


# -- values checked before any traffic ---------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["call", "TARGET", "--dtmf", "12X"], "--dtmf"),
        (["register", "TARGET", "--expires", "-5"], "--expires"),
        (["call", "TARGET", "--timeout", "0"], "--timeout"),
        (["call", "TARGET", "--duration", "-1"], "--duration"),
        (["call", "TARGET", "--header", "X-No-Colon"], "--header"),
        (["message", "TARGET", "hi", "--content-type", "plain"], "--content-type"),
        (["options", "TARGET", "--listen", "udp:127.0.0.1"], "--listen"),
        (["options", "TARGET", "--listen", "tls:127.0.0.1:0"], "--listen"),
        (["options", "TARGET", "--transport", "sctp"], "--transport"),
        (["options", "TARGET", "--ca-file", "/nonexistent/ca.pem"], "--ca-file"),
        (["call", "TARGET", "--from", "alice"], None),
        (["call", "TARGET", "--proxy", "bob"], None),
        (["answer", "--ring-time", "-1"], "--ring-time"),
        (["answer", "--user", "a b"], "--user"),
        (["answer", "--source-rate-limit", "0"], "--source-rate-limit"),
    ],
)
def test_wrong_values_are_usage_errors_before_any_traffic(
    args: list[str], option: str | None, silent_udp: socket.socket
) -> None:
    target = f"sip:x@127.0.0.1:{silent_udp.getsockname()[1]}"
    timeout = [] if args[0] == "answer" else ["--timeout", "2"]  # a later --timeout wins
    done = sipwire(args[0], *timeout, *(target if a == "TARGET" else a for a in args[1:]))
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert line.startswith("Error: ")
    if option is not None:
        assert option in line
    time.sleep(0.2)
    assert not _received(silent_udp)


def test_parse_error_is_one_line_like_the_others() -> None:
    done = subprocess.run(
        [*SIPWIRE, "parse", "-"], input=b"this is not SIP\r\n\r\n", capture_output=True, check=False
    )
    assert done.returncode == 2
    assert re.fullmatch(r"Error: parse error: 400 .+", one_line(done.stderr.decode()))


def test_register_takes_the_aor_once() -> None:
    done = sipwire("register", "sip:alice@127.0.0.1:9", "--from", "sip:bob@127.0.0.1:9")
    assert done.returncode == 2
    assert "deprecated alias" in one_line(done.stderr)
    usage = sipwire("register", "--help").stdout
    assert "--from" not in usage
    assert re.search(r"--expires INTEGER RANGE\s+Seconds the binding should last", usage)


def test_every_option_has_help_and_shows_its_default() -> None:
    assert isinstance(main, click.Group)
    for name, command in main.commands.items():
        for param in command.params:
            if not isinstance(param, click.Option) or param.hidden or param.name == "help":
                continue
            assert param.help, f"sipwire {name} {param.opts[0]} has no help text"
            shown = param.show_default or "default" in param.help
            if param.default not in (None, False, 0, ()) and not param.count:
                assert shown, f"sipwire {name} {param.opts[0]} hides its default"


# -- --transport: the request goes over it -----------------------------------------------------
@pytest.mark.parametrize(
    ("args", "code", "out"),
    [
        (["options", "sip:127.0.0.1:PORT"], 0, "200 OK from sip:127.0.0.1:PORT"),
        (["call", "sip:bob@127.0.0.1:PORT"], 0, "answered in"),
        (["message", "sip:bob@127.0.0.1:PORT", "hi"], 0, "200 OK"),
        (["register", "sip:alice@127.0.0.1:PORT"], 1, None),  # answer is no registrar: 405
    ],
)
def test_transport_tcp_sends_over_tcp(
    args: list[str], code: int, out: str | None, tmp_path: Path
) -> None:
    port = free_port()
    with answerer(tmp_path, f"tcp:127.0.0.1:{port}"):  # no UDP listener at all
        done = sipwire(*(a.replace("PORT", str(port)) for a in args), "--transport", "tcp")
    assert done.returncode == code, done.stderr
    if out is None:
        assert one_line(done.stderr) == "Error: 405 Method Not Allowed"
    else:
        assert out.replace("PORT", str(port)) in done.stdout


@pytest.fixture
def tls_answerer(pki: Pki, tmp_path: Path) -> Iterator[int]:
    port = free_port()
    with answerer(
        tmp_path,
        f"tls:127.0.0.1:{port}",
        extra=("--cert", str(pki.server_cert), "--key", str(pki.server_key)),
    ):
        yield port


@pytest.mark.parametrize("command", ["options", "call"])
def test_tls_with_a_ca_file(command: str, tls_answerer: int, pki: Pki) -> None:
    target = f"sip:bob@127.0.0.1:{tls_answerer}"
    done = sipwire(command, target, "--transport", "tls", "--ca-file", str(pki.ca_cert))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_tls_insecure_warns_in_one_line(tls_answerer: int) -> None:
    done = sipwire("options", f"sip:127.0.0.1:{tls_answerer}", "--transport", "tls", "--insecure")
    assert done.returncode == 0, done.stderr
    assert "not verified" in one_line(done.stderr)


@pytest.mark.parametrize("trust", ["system", "other-ca"])
def test_tls_certificate_that_does_not_verify(
    trust: str, tls_answerer: int, other_pki: Pki
) -> None:
    extra = ("--ca-file", str(other_pki.ca_cert)) if trust == "other-ca" else ()
    done = sipwire(
        "call", f"sip:bob@127.0.0.1:{tls_answerer}", "--transport", "tls", "--timeout", "5", *extra
    )
    assert done.returncode == 1
    line = one_line(done.stderr)
    assert line.startswith("Error: TLS certificate verification failed for 127.0.0.1: "), line


# -- Ctrl-C --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_call_cancels_then_exits(sig: int, code: int, tmp_path: Path) -> None:
    port = free_port()
    with answerer(tmp_path, f"udp:127.0.0.1:{port}", extra=("--ring-time", "30", "-v")) as server:
        err = tmp_path / "call.err"
        with err.open("wb") as sink:
            caller = subprocess.Popen(
                [*SIPWIRE, "call", f"sip:bob@127.0.0.1:{port}", "--trace", "--timeout", "60"],
                stdout=subprocess.DEVNULL,
                stderr=sink,
            )
        try:
            wait_for(err, "SIP/2.0 180 Ringing")
            caller.send_signal(sig)
            assert caller.wait(20) == code
        finally:
            if caller.poll() is None:
                caller.kill()
        trace = err.read_text()
        assert "Traceback" not in trace
        assert ">>> send" in trace and "CANCEL sip:bob@127.0.0.1" in trace
        log = wait_for(server.stderr, "INVITE from")
        assert re.search(r"CANCEL from sip:\S+ \(udp:127\.0\.0\.1:\d+\): 200 OK", log), log
        assert re.search(r"INVITE from sip:\S+ \(udp:127\.0\.0\.1:\d+\): 487 ", log), log


def test_answer_exits_130_on_ctrl_c(tmp_path: Path) -> None:
    with answerer(tmp_path, f"udp:127.0.0.1:{free_port()}") as server:
        assert server.stop(signal.SIGINT) == 130
        assert "Traceback" not in server.err()


def test_answer_bot_example_has_no_traceback_on_ctrl_c(tmp_path: Path) -> None:
    out, err = tmp_path / "bot.out", tmp_path / "bot.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        bot = subprocess.Popen(
            [sys.executable, "-u", str(EXAMPLES / "answer_bot.py"), "--listen",
             f"udp:127.0.0.1:{free_port()}"],
            stdout=stdout,
            stderr=stderr,
        )  # fmt: skip
    try:
        wait_for(out, "listening on")
        bot.send_signal(signal.SIGINT)
        assert bot.wait(20) == 130
    finally:
        if bot.poll() is None:
            bot.kill()
    assert "Traceback" not in err.read_text()
    assert "KeyboardInterrupt" not in err.read_text()


# -- sipwire answer: --trace, -v, and the Server header on every response ---------------------
def test_answer_traces_logs_requests_and_sends_server_everywhere(tmp_path: Path) -> None:
    port = free_port()
    with answerer(tmp_path, f"udp:127.0.0.1:{port}", extra=("--trace", "-v")) as server:
        done = sipwire("call", f"sip:bob@127.0.0.1:{port}", "--trace", "--duration", "0.2")
        assert done.returncode == 0, done.stderr
        log = wait_for(server.stderr, "BYE from")
    assert "<<< recv" in log and ">>> send" in log and "INVITE sip:bob@127.0.0.1" in log
    assert re.search(r"INVITE from sip:\S+ \(udp:127\.0\.0\.1:\d+\): 200 OK", log)
    assert re.search(r"ACK from sip:\S+ \(udp:127\.0\.0\.1:\d+\)", log)
    assert re.search(r"BYE from sip:\S+ \(udp:127\.0\.0\.1:\d+\): 200 OK", log)
    # What the caller received: "<<< recv PEER", then the message (newlines as text).
    received = [block.split("\n", 1)[1] for block in done.stderr.split("<<< recv ")[1:]]
    responses = [text for text in received if text.startswith("SIP/2.0 ")]
    statuses = [text.split("\n", 1)[0] for text in responses]
    assert any(s.startswith("SIP/2.0 180") for s in statuses), statuses
    assert any(s.startswith("SIP/2.0 200") for s in statuses), statuses
    for text in responses:
        if not text.startswith("SIP/2.0 100"):
            assert "\nServer: sipwire\n" in text, text
