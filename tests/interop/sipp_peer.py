"""sipp with a scenario of this repository (tests/interop/scenarios), client or server.

:func:`run_sipp_client` runs a client scenario to its end; :class:`SippServer`
runs a server scenario (or sipp's built-in ``uas``) in the background while a
test drives its peer, then collects sipp's exit status and statistics::

    with SippServer(tmp_path, "uas_register_auth.xml",
                    keys={"auth_user": "alice", "auth_password": "secret",
                          "realm": "sipwire.test"}) as server:
        ...  # register with sip:alice@127.0.0.1:{server.port}
        result = server.wait()
    assert result.returncode == 0 and result.successful == 1

Everything is on 127.0.0.1 and bounded in time (``-timeout`` and a wait timeout).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from tests.interop.peerproc import (
    ADDRESS_IN_USE,
    PeerProcess,
    PeerProcessError,
    pick_port,
    port_bound,
    start_retrying,
    wait_until,
)
from tests.interop.sipp import SIPP, SippResult, _last_stats

__all__ = ["SCENARIOS", "SippServer", "run_sipp_client", "scenario_args"]

SCENARIOS = Path(__file__).with_name("scenarios")
HOST = "127.0.0.1"


def scenario_args(scenario: str | Path) -> list[str]:
    """``-sn NAME`` for a built-in scenario (``uac``, ``uas``, ...), else ``-sf FILE``.

    A bare file name is looked up in :data:`SCENARIOS`.
    """
    text = str(scenario)
    if isinstance(scenario, str) and not text.endswith(".xml"):
        return ["-sn", text]
    path = Path(scenario)
    if not path.is_absolute() and not path.exists():
        path = SCENARIOS / path
    return ["-sf", str(path)]


def _key_args(keys: Mapping[str, str]) -> list[str]:
    args: list[str] = []
    for name, value in keys.items():
        args += ["-key", name, value]
    return args


def _result(returncode: int, stat_file: Path, output: str) -> SippResult:
    stats = _last_stats(stat_file)
    return SippResult(
        returncode,
        int(stats.get("SuccessfulCall(C)", "0") or 0),
        int(stats.get("FailedCall(C)", "0") or 0),
        stats,
        output[-3000:],
    )


def _env() -> dict[str, str]:
    return dict(os.environ, TERM="dumb")


def run_sipp_client(
    scenario: str | Path,
    target: str,
    workdir: Path,
    *,
    calls: int = 1,
    transport: str = "u1",
    service: str | None = None,
    auth_user: str | None = None,
    auth_password: str | None = None,
    keys: Mapping[str, str] | None = None,
    extra: Sequence[str] = (),
    timeout: float = 30.0,
    name: str = "client",
) -> SippResult:
    """Run a client scenario against ``target`` (``127.0.0.1:PORT``) to its end.

    ``service`` is ``-s`` (the request-URI / AOR user), ``auth_user`` /
    ``auth_password`` are ``-au`` / ``-ap``; ``keys`` are ``-key`` pairs.
    """
    if SIPP is None:
        raise PeerProcessError("sipp is not installed (Debian: sip-tester)")
    workdir.mkdir(parents=True, exist_ok=True)
    stat_file = workdir / f"{name}_stats.csv"
    args = [
        SIPP,
        *scenario_args(scenario),
        target,
        "-i",
        HOST,
        "-p",
        str(pick_port()),
        "-t",
        transport,
        "-m",
        str(calls),
        "-nostdin",
        "-timeout",
        f"{int(timeout)}s",
        "-timeout_error",
        "-trace_stat",
        "-stf",
        str(stat_file),
        "-trace_err",
        "-trace_msg",
    ]
    if service is not None:
        args += ["-s", service]
    if auth_user is not None:
        args += ["-au", auth_user]
    if auth_password is not None:
        args += ["-ap", auth_password]
    args += _key_args(keys or {})
    args += list(extra)
    proc = subprocess.run(
        args,
        cwd=workdir,
        capture_output=True,
        timeout=timeout + 15,
        env=_env(),
        check=False,
    )
    output = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
    return _result(proc.returncode, stat_file, output)


class SippServer:
    """sipp running a server scenario in the background on ``127.0.0.1:port``.

    Args:
        workdir: where sipp's statistics, error and message logs go.
        scenario: a built-in name (``"uas"``) or a scenario file (a bare name
            is looked up in tests/interop/scenarios).
        port: the SIP port (default: a free one).
        transport: sipp's ``-t`` (``u1`` UDP, ``t1`` TCP).
        calls: sipp exits after this many calls (``-m``).
        keys: ``-key name value`` pairs (uas_register_auth.xml needs
            ``auth_user``, ``auth_password`` and ``realm``).
        timeout: sipp's global ``-timeout`` in seconds (it fails then).
    """

    def __init__(
        self,
        workdir: Path,
        scenario: str | Path = "uas",
        *,
        port: int | None = None,
        transport: str = "u1",
        calls: int = 1,
        keys: Mapping[str, str] | None = None,
        extra: Sequence[str] = (),
        timeout: float = 30.0,
        name: str = "server",
    ) -> None:
        self.workdir = workdir
        self.scenario = scenario
        self.host = HOST
        self._pick_port = port is None
        self.port = port if port is not None else pick_port()
        self.transport = transport
        self.calls = calls
        self.keys = dict(keys or {})
        self.extra = list(extra)
        self.timeout = timeout
        self.stat_file = workdir / f"{name}_stats.csv"
        self.log_path = workdir / f"{name}.log"
        self._proc: PeerProcess | None = None
        self._result: SippResult | None = None

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"{self.host}:{self.port}"

    def uri(self, user: str = "service") -> str:
        """``sip:USER@127.0.0.1:PORT``."""
        return f"sip:{user}@{self.address}"

    def __enter__(self) -> SippServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, timeout: float = 10.0) -> None:
        """Start sipp and wait until its SIP port is bound.

        When the port was picked here and got taken before sipp bound it, sipp
        is started again on a new one.
        """
        if SIPP is None:
            raise PeerProcessError("sipp is not installed (Debian: sip-tester)")

        def output() -> str:
            return self._proc.output() if self._proc is not None else ""

        def reset() -> None:
            if self._proc is not None:
                self._proc.stop()
            self._proc = None

        def repick() -> None:
            self.port = pick_port()

        try:
            start_retrying(
                self._start_once,
                timeout=timeout,
                output=output,
                reset=reset,
                repick=repick if self._pick_port else None,
            )
        except BaseException:
            self.stop()
            raise

    def _start_once(self, deadline: float) -> None:
        assert SIPP is not None
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [
            SIPP,
            *scenario_args(self.scenario),
            "-i",
            self.host,
            "-p",
            str(self.port),
            "-mi",
            self.host,
            "-t",
            self.transport,
            "-m",
            str(self.calls),
            "-nostdin",
            "-timeout",
            f"{int(self.timeout)}s",
            "-timeout_error",
            "-trace_stat",
            "-stf",
            str(self.stat_file),
            "-trace_err",
            "-trace_msg",
            *_key_args(self.keys),
            *self.extra,
        ]
        self._proc = PeerProcess(args, self.log_path, cwd=self.workdir, env=_env())
        self._proc.start()
        wait_until(self._bound, max(deadline - time.monotonic(), 1), what=f"sipp on {self.address}")

    def _bound(self) -> bool | None:
        assert self._proc is not None
        if not self._proc.running() or ADDRESS_IN_USE.search(self._proc.output()):
            raise PeerProcessError(f"sipp did not start:\n{self._proc.tail()}")
        tcp = self.transport.startswith("t")
        return True if port_bound(self.port, tcp=tcp, pid=self._proc.pid) else None

    def wait(self, timeout: float | None = None) -> SippResult:
        """Wait for sipp to finish its calls; return its exit status and statistics."""
        if self._result is not None:
            return self._result
        if self._proc is None:
            raise PeerProcessError("not started")
        limit = self.timeout + 10 if timeout is None else timeout
        proc = self._proc
        try:
            wait_until(
                lambda: True if not proc.running() else None,
                limit,
                interval=0.05,
                what="sipp to finish",
            )
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; sipp's output ends with:\n{proc.tail()}") from None
        status = proc.stop()
        self._result = _result(status if status is not None else -1, self.stat_file, proc.output())
        return self._result

    def stop(self) -> SippResult | None:
        """Stop sipp if it still runs (SIGTERM by PID, then SIGKILL); return the result."""
        if self._proc is None:
            return None
        if self._result is None:
            status = self._proc.stop(5.0)
            self._result = _result(
                status if status is not None else -1, self.stat_file, self._proc.output()
            )
        return self._result
