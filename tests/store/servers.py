"""Real database servers on loopback for the store tests (and the registrar's).

:class:`RedisServer` runs ``redis-server`` and :class:`PostgresServer` runs
PostgreSQL's ``postgres``, each on a free port of 127.0.0.1 with a throwaway
directory of its own, started in a session of their own and stopped by
their PID (never by name). Both can be stopped, killed, paused (SIGSTOP:
the server holds connections but answers nothing) and started again on the
same port and data, for "database down -> 503, then recovery" tests::

    with RedisServer(persistent=True) as redis:
        url = redis.url(prefix="t1:")
        redis.kill()      # SIGKILL: acknowledged writes survive (appendfsync always)
        redis.start()

PostgreSQL refuses to run as root. When the tests run as root (CI
containers), initdb and postgres run as the ``postgres`` user the Debian
package creates, or ``nobody``: :mod:`subprocess` switches user, group and
supplementary groups in the child before exec (no sudo, runuser or setpriv
needed), the data directory is made in a directory every user can traverse
(``/tmp``, not pytest's 0700 ``/tmp/pytest-of-root``) and given to that
user. ``initdb`` runs once per test process into a template that each
server copies (about 0.1 s instead of 1.5 s).

The pytest fixtures ``redis_server`` and ``postgres_server`` (session scope:
the whole run shares one of each) skip the test only when the program is not
installed (Debian: ``redis-server``, ``postgresql``).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any, ClassVar
from urllib.parse import quote

import pytest

from tests.interop.peerproc import pick_port

__all__ = [
    "POSTGRES_BIN",
    "REDIS_SERVER",
    "PostgresServer",
    "RedisServer",
    "ServerError",
    "postgres_server",
    "redis_server",
    "require_postgres",
    "require_redis",
]

HOST = "127.0.0.1"
_ADDRESS_IN_USE = re.compile(r"Address already in use|could not bind|could not create any TCP")


def _find_redis() -> str | None:
    found = shutil.which("redis-server")
    if found is None and Path("/usr/bin/redis-server").exists():
        found = "/usr/bin/redis-server"
    return found


def _find_postgres() -> Path | None:
    """The bin directory of PostgreSQL: on PATH, else Debian's newest /usr/lib/postgresql/N."""
    found = shutil.which("postgres")
    if found is not None:
        real = Path(found).resolve()  # /usr/local/bin/postgres -> /usr/lib/postgresql/15/bin/
        if real.with_name("initdb").exists():
            return real.parent
    versions = []
    for candidate in Path("/usr/lib/postgresql").glob("*/bin/postgres"):
        with contextlib.suppress(ValueError):
            versions.append((float(candidate.parts[-3]), candidate.parent))
    return max(versions)[1] if versions else None


REDIS_SERVER = _find_redis()
POSTGRES_BIN = _find_postgres()


class ServerError(RuntimeError):
    """A server did not start, or did not stop, in time."""


def require_redis() -> str:
    """The redis-server program, or skip the test when it is not installed."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (Debian package redis-server)")
    return REDIS_SERVER


def require_postgres() -> Path:
    """PostgreSQL's bin directory, or skip the test when it is not installed."""
    if POSTGRES_BIN is None:
        pytest.skip("PostgreSQL is not installed (Debian package postgresql)")
    return POSTGRES_BIN


# -- running as someone else than root ---------------------------------------------------


def _unprivileged() -> pwd.struct_passwd | None:
    """Who runs PostgreSQL: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise ServerError("running as root, and there is neither a postgres nor a nobody user")


def _traversable(path: Path) -> bool:
    return all(os.stat(p).st_mode & 0o001 for p in (path, *path.parents))


def _make_workdir(prefix: str, owner: pwd.struct_passwd | None) -> Path:
    """A new 0700 directory that ``owner`` can reach and owns."""
    base = Path(tempfile.gettempdir())
    if owner is not None and not _traversable(base):
        base = next(
            (p for p in map(Path, ("/tmp", "/var/tmp", "/dev/shm")) if _traversable(p)), base
        )
    workdir = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    if owner is not None:
        os.chown(workdir, owner.pw_uid, owner.pw_gid)
    return workdir


def _chown_tree(root: Path, owner: pwd.struct_passwd) -> None:
    os.chown(root, owner.pw_uid, owner.pw_gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            os.chown(os.path.join(dirpath, name), owner.pw_uid, owner.pw_gid, follow_symlinks=False)


def _as(owner: pwd.struct_passwd | None) -> dict[str, Any]:
    """subprocess arguments that run the child as ``owner`` (switched before exec)."""
    if owner is None:
        return {}
    return {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}


def _descendants(pid: int) -> list[int]:
    """The PIDs of the processes below ``pid`` (Linux /proc), children first."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


# -- one server process ----------------------------------------------------------------


class _Server:
    """A server program with its output in ``workdir/server.log``, started and stopped by PID."""

    name: ClassVar[str] = "server"

    def __init__(self, port: int | None, owner: pwd.struct_passwd | None = None) -> None:
        self.owner = owner
        self.workdir = _make_workdir(f"sipwire-{self.name}-", owner)
        self.log_path = self.workdir / "server.log"
        self.port = port if port is not None else pick_port()
        self._may_repick = port is None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_offset = 0

    # subclasses
    def _command(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise ServerError(f"{self.name} is not running")
        return self._proc.pid

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def output(self) -> str:
        """What the server printed since it was last started."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._log_offset)
                return log.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and wait until it answers. A port taken before the server
        bound it is replaced by another one, on the first start only."""
        if self.running():
            raise ServerError(f"{self.name} is already running")
        deadline = time.monotonic() + timeout
        for attempt in range(3):
            self._spawn()
            try:
                self._wait_ready(deadline)
            except ServerError:
                output = self.output()
                self._terminate()
                if self._may_repick and attempt < 2 and _ADDRESS_IN_USE.search(output):
                    self.port = pick_port()
                    continue
                raise
            self._may_repick = False
            return

    def _spawn(self) -> None:
        self._log = self.log_path.open("ab")
        self._log_offset = self._log.tell()
        self._proc = subprocess.Popen(
            self._command(),
            cwd=self.workdir,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"},
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **_as(self.owner),
        )

    def _wait_ready(self, deadline: float) -> None:
        while True:
            if self._proc is not None and self._proc.poll() is not None:
                raise ServerError(
                    f"{self.name} exited ({self._proc.returncode}):\n{self.output()[-3000:]}"
                )
            if self._ready():
                return
            if time.monotonic() > deadline:
                raise ServerError(f"{self.name} did not start in time:\n{self.output()[-3000:]}")
            time.sleep(0.02)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        """Send ``sig`` to the server and wait for it to exit (SIGKILL to its process
        group after ``timeout``). Returns its exit status, None if it was not started."""
        proc = self._proc
        if proc is None:
            return None
        try:
            if proc.poll() is None:
                self._signal_all(signal.SIGCONT)  # a paused server cannot exit
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self._terminate()
        finally:
            self._close_log()
        return proc.returncode

    def kill(self) -> None:
        """Crash the server: SIGKILL, no chance to flush or save anything."""
        self.stop(signal.SIGKILL)

    def restart(self, timeout: float = 30.0) -> None:
        self.stop()
        self.start(timeout)

    def pause(self) -> None:
        """SIGSTOP the server and its children: connections stay open, nothing answers."""
        self._signal_all(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal_all(signal.SIGCONT)

    def _signal_all(self, sig: int) -> None:
        # By PID, not by process group: PostgreSQL's backends each lead a group of their own.
        for pid in (self.pid, *_descendants(self.pid)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def _terminate(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # its group: the server and its children
            proc.wait(timeout=10)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def close(self) -> None:
        """Stop the server and delete its directory."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> _Server:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class RedisServer(_Server):
    """``redis-server`` on 127.0.0.1.

    Without persistence (the default) a restart starts empty; with
    ``persistent=True`` it writes an append-only file fsync'ed at every write
    (``appendfsync always``), so whatever it acknowledged survives ``kill()``.
    """

    name = "redis"

    def __init__(self, port: int | None = None, *, persistent: bool = False) -> None:
        self.program = require_redis()
        self.persistent = persistent
        super().__init__(port)

    def _command(self) -> list[str]:
        args = [self.program, "--port", str(self.port), "--bind", HOST, "--dir", str(self.workdir)]
        args += ["--save", "", "--daemonize", "no"]
        if self.persistent:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        return args

    def _ready(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")  # not "-LOADING ..."
        except OSError:
            return False

    def url(self, db: int = 0, *, prefix: str | None = None) -> str:
        """``redis://127.0.0.1:PORT/DB``, with ``?prefix=`` for RedisStore when given."""
        url = f"redis://{HOST}:{self.port}/{db}"
        return url if prefix is None else f"{url}?prefix={quote(prefix, safe='')}"

    def __enter__(self) -> RedisServer:
        super().__enter__()
        return self


class PostgresServer(_Server):
    """PostgreSQL on 127.0.0.1 (and a unix socket in its directory), user ``sipwire``
    with trust authentication, ``fsync=off`` unless ``fsync=True``."""

    name = "postgres"
    USER = "sipwire"
    _templates: ClassVar[dict[Path, Path]] = {}

    def __init__(self, port: int | None = None, *, fsync: bool = False) -> None:
        self.bin = require_postgres()
        self.fsync = fsync
        owner = _unprivileged()
        super().__init__(port, owner)
        self.data = self.workdir / "data"
        shutil.copytree(self._template(self.bin, owner), self.data, symlinks=True)
        if owner is not None:
            _chown_tree(self.data, owner)

    @classmethod
    def _template(cls, bin_dir: Path, owner: pwd.struct_passwd | None) -> Path:
        """A freshly initdb'ed cluster, made once per process and copied by each server."""
        if bin_dir in cls._templates:
            return cls._templates[bin_dir] / "data"
        workdir = _make_workdir("sipwire-pgtemplate-", owner)
        atexit.register(shutil.rmtree, workdir, True)
        result = subprocess.run(
            [
                str(bin_dir / "initdb"),
                *("-D", str(workdir / "data"), "-U", cls.USER, "--auth=trust"),
                *("--encoding=UTF8", "--no-locale", "--no-sync"),
            ],
            cwd=workdir,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            **_as(owner),
        )
        if result.returncode != 0:
            raise ServerError(f"initdb failed ({result.returncode}):\n{result.stderr[-3000:]}")
        cls._templates[bin_dir] = workdir
        return workdir / "data"

    def _command(self) -> list[str]:
        args = [str(self.bin / "postgres"), "-D", str(self.data), "-k", str(self.workdir)]
        args += ["-h", HOST, "-p", str(self.port)]
        settings = {
            "fsync": "on" if self.fsync else "off",
            "full_page_writes": "on" if self.fsync else "off",
            "shared_buffers": "32MB",
            "dynamic_shared_memory_type": "mmap",  # no /dev/shm needed (small in containers)
            "max_connections": "100",
        }
        for name, value in settings.items():
            args += ["-c", f"{name}={value}"]
        return args

    def _ready(self) -> bool:
        return "database system is ready to accept connections" in self.output()

    def stop(self, sig: int = signal.SIGINT, timeout: float = 10.0) -> int | None:
        """Stop PostgreSQL: SIGINT is its "fast" shutdown (disconnects clients, then a
        clean checkpoint); SIGTERM ("smart") would wait for every client to leave."""
        return super().stop(sig, timeout)

    def kill(self) -> None:
        """Crash PostgreSQL: "immediate" shutdown (SIGQUIT), every process exits at once
        without a checkpoint and the next start runs crash recovery. (SIGKILL of the
        postmaster alone would leave its backends running.)"""
        self.stop(signal.SIGQUIT)

    def url(self, database: str = "postgres", *, schema: str | None = None) -> str:
        """``postgresql://sipwire@127.0.0.1:PORT/DATABASE``, with ``?schema=`` when given."""
        url = f"postgresql://{self.USER}@{HOST}:{self.port}/{database}"
        return url if schema is None else f"{url}?schema={schema}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL with psql (over TCP, as ``sipwire``) and return its output."""
        result = subprocess.run(
            [
                str(self.bin / "psql"),
                *("-h", HOST, "-p", str(self.port), "-U", self.USER, "-d", database),
                *("-v", "ON_ERROR_STOP=1", "-At", "-c", sql),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if result.returncode != 0:
            raise ServerError(f"psql failed: {result.stderr}")
        return result.stdout

    def __enter__(self) -> PostgresServer:
        super().__enter__()
        return self


# -- fixtures --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server (no persistence) for the whole test run; use a key prefix per test."""
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL for the whole test run; use a schema (or database) per test."""
    with PostgresServer() as server:
        yield server
