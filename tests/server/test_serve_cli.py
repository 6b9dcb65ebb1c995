"""``sipwire serve`` as a process: what it prints, the client against it, a clean stop,
and one-line errors (port in use, bad config, unreachable store)."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sipwire.registrar.authenticate import make_user
from sipwire.server.serve import Server, ServeStats, run_serve
from tests.cli.cli_helpers import SIPWIRE, one_line, sipwire
from tests.interop.peerproc import pick_port
from tests.server.helpers import RawClient, make_config, register, register_text

pytestmark = pytest.mark.timeout(90)


@contextmanager
def serving(cwd: Path, *args: str) -> Iterator[tuple[subprocess.Popen[bytes], Path, int]]:
    """``sipwire serve ARGS`` on a free UDP/TCP port and HTTP port, in ``cwd``."""
    port, http = pick_port(), pick_port()
    err = cwd / "serve.err"
    command = [
        *SIPWIRE,
        "serve",
        "--listen",
        f"udp:127.0.0.1:{port}",
        "--listen",
        f"tcp:127.0.0.1:{port}",
        "--http",
        f"127.0.0.1:{http}",
        *args,
    ]
    with err.open("wb") as stderr:
        proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + 20
        while "add a user" not in err.read_text():
            assert proc.poll() is None, err.read_text()
            assert time.monotonic() < deadline, err.read_text()
            time.sleep(0.05)
        yield proc, err, port
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_prints_where_registers_and_stops_cleanly(tmp_path: Path, sig: int) -> None:
    added = sipwire(
        "user", "add", "alice", "--password", "secret", "--data", str(tmp_path / "data")
    )
    assert added.returncode == 0, added.stderr
    with serving(tmp_path, "-v") as (proc, err, port):
        lines = err.read_text().splitlines()
        assert lines[0].startswith("sipwire serve: listening on udp:127.0.0.1:")
        assert "http://127.0.0.1:" in lines[0]
        assert lines[1].startswith("serving localhost, 127.0.0.1; store sqlite:data/sipwire.db")
        assert lines[2] == "add a user: sipwire user add NAME --password PASSWORD"
        target = f"sip:127.0.0.1:{port}"
        ok = sipwire("register", "sip:alice@localhost", "--password", "secret", "--proxy", target)
        assert ok.returncode == 0, ok.stderr
        wrong = sipwire("register", "sip:alice@localhost", "--password", "nope", "--proxy", target)
        assert wrong.returncode == 1 and "401" in one_line(wrong.stderr)
        proc.send_signal(sig)
        assert proc.wait(20) == 0
    text = err.read_text()
    assert "Traceback" not in text
    assert "outcome=registered status=200" in text  # the -v line per REGISTER
    assert "stopped after answering 4 REGISTER requests" in text


def test_trace_prints_every_message(tmp_path: Path) -> None:
    with serving(tmp_path, "--trace") as (proc, err, port):
        result = sipwire("options", f"sip:127.0.0.1:{port}")
        assert result.returncode == 0, result.stderr
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    text = err.read_text()
    assert "<<< recv udp:127.0.0.1:" in text and "OPTIONS sip:127.0.0.1" in text
    assert ">>> send udp:127.0.0.1:" in text and "SIP/2.0 200 OK" in text


def test_errors_at_start_are_one_line(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        result = sipwire(
            "serve", "--listen", f"udp:127.0.0.1:{port}", "--http", "off", "--data", str(tmp_path)
        )
    assert result.returncode == 1
    assert (
        one_line(result.stderr)
        == f"Error: cannot listen on udp 127.0.0.1:{port}: address already in use"
    )

    bad = tmp_path / "bad.toml"
    bad.write_text("[registrar]\nmin_expires = 'x'\n")
    result = sipwire("serve", "--config", str(bad))
    assert result.returncode == 1
    assert "registrar.min_expires must be an integer" in one_line(result.stderr)

    result = sipwire("serve", "--store", "redis://127.0.0.1:1/0", "--http", "off")
    assert result.returncode == 1
    assert one_line(result.stderr).startswith("Error: store unreachable: ")

    http_port = pick_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", http_port))
        busy.listen()
        result = sipwire(
            "serve",
            "--listen",
            f"udp:127.0.0.1:{pick_port()}",
            "--http",
            f"127.0.0.1:{http_port}",
            "--data",
            str(tmp_path),
        )
    assert result.returncode == 1
    assert (
        one_line(result.stderr)
        == f"Error: cannot listen on http 127.0.0.1:{http_port}: address already in use"
    )


@pytest.mark.asyncio
async def test_run_serve_in_process(tmp_path: Path) -> None:
    """``run_serve`` is the command without the process: ready, then stop."""
    stop = asyncio.Event()
    started: list[Server] = []
    task = asyncio.ensure_future(
        run_serve(make_config(tmp_path, None), ready=started.append, stop=stop)
    )
    while not started:
        assert not task.done(), task.exception()
        await asyncio.sleep(0.01)
    [server] = started
    assert server.store is not None
    await server.store.put_user(make_user("alice", "localhost", "secret"))
    port = server.listeners[0].port
    client = await RawClient.open()
    try:
        ok, _ = await register(client, port, register_text(port))
    finally:
        client.close()
    assert ok.status == 200
    stop.set()
    stats = await asyncio.wait_for(task, 10)
    assert isinstance(stats, ServeStats)
    assert stats.registrations["registered"] == 1 and stats.registrations["challenged"] == 1
