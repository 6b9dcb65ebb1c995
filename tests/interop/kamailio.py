"""kamailio (Debian 5.6) as a registrar + proxy on loopback, for interop tests.

:class:`Kamailio` runs ``tests/interop/kamailio/kamailio.cfg`` in the foreground
(``-DD -E``) from a run directory of its own, listening on
``udp:127.0.0.1:PORT`` and ``tcp:127.0.0.1:PORT``, with the users given from
Python (no database: the config includes a generated ``users.cfg``)::

    with Kamailio(tmp_path / "kam", [SipUser("alice", "secret", auth_user="1001")]) as kam:
        ...  # register sip:alice@127.0.0.1:{kam.port} with user 1001 / secret
        kam.wait_binding("alice")

Behaviour (see the config's header): REGISTER without credentials -> 401 with
``qop="auth"``; wrong password or unknown auth user -> 403; an auth user that
does not own the To user -> 403; valid -> 200 listing the bindings (usrloc in
memory). INVITE / MESSAGE to a registered user is looked up and relayed
(INVITE record-routed); 404 when there is no binding. OPTIONS to the proxy's
own URI gets 200 (used as the readiness probe). With ``call_auth=True``, other
initial requests need Proxy-Authorization (407 challenge). The auth user name
can differ from the AOR user (``SipUser("alice", "pw", auth_user="1001")``).
Bindings are read back through kamcmd on a ctl socket in the run directory.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from tests.interop.peerproc import (
    PeerProcess,
    PeerProcessError,
    pick_port,
    start_retrying,
    wait_until,
)

__all__ = ["DEFAULT_CFG", "KAMAILIO", "KAMCMD", "Kamailio", "SipUser"]


def _which(name: str) -> str | None:
    found = shutil.which(name)
    if found is None:
        candidate = Path("/usr/sbin") / name
        if candidate.exists():
            found = str(candidate)
    return found


KAMAILIO = _which("kamailio")
KAMCMD = _which("kamcmd")
DEFAULT_CFG = Path(__file__).with_name("kamailio") / "kamailio.cfg"
HOST = "127.0.0.1"
# What may appear inside the generated config's string literals.
_NAME = re.compile(r"^[A-Za-z0-9._~+-]+$")
_SECRET = re.compile(r'^[^"\\$\r\n]+$')
# A unix socket path must fit in sockaddr_un.sun_path (108 bytes with the NUL).
_MAX_SOCKET_PATH = 100


@dataclass(frozen=True)
class SipUser:
    """A user kamailio knows: the AOR user, its password, and its digest user name.

    ``auth_user`` defaults to ``user``; set it to register ``sip:alice@...``
    with the credentials of ``1001``.
    """

    user: str
    password: str
    auth_user: str | None = None

    @property
    def digest_user(self) -> str:
        """The user name in the Authorization header."""
        return self.auth_user if self.auth_user is not None else self.user

    def __post_init__(self) -> None:
        for name in (self.user, self.digest_user):
            if not _NAME.match(name):
                raise ValueError(f"user name {name!r}: use letters, digits and ._~+- only")
        if not _SECRET.match(self.password):
            raise ValueError("password: no quote, backslash, $ or newline")


class Kamailio:
    """A kamailio registrar/proxy on 127.0.0.1, started from Python.

    Args:
        workdir: a directory of its own (created): the config copy, users.cfg,
            the pid file and the log ``kamailio.log`` go there.
        users: :class:`SipUser` objects, or a mapping user -> password.
        port: the SIP port for UDP and TCP (default: a free one).
        realm: the digest realm of the challenges.
        call_auth: challenge (407) initial requests other than REGISTER too.
        cfg: the config template (default: ``tests/interop/kamailio/kamailio.cfg``).
    """

    def __init__(
        self,
        workdir: Path,
        users: Iterable[SipUser] | Mapping[str, str] = (),
        *,
        port: int | None = None,
        realm: str = "sipwire.test",
        call_auth: bool = False,
        cfg: Path = DEFAULT_CFG,
    ) -> None:
        if isinstance(users, Mapping):
            user_list = [SipUser(user, password) for user, password in users.items()]
        else:
            user_list = list(users)
        if not _NAME.match(realm):
            raise ValueError(f"realm {realm!r}: use letters, digits and ._~+- only")
        self.workdir = workdir
        self.users: dict[str, SipUser] = {u.user: u for u in user_list}
        self.host = HOST
        self._pick_port = port is None
        self.port = port if port is not None else pick_port()
        self.realm = realm
        self.call_auth = call_auth
        self.cfg = cfg
        self.log_path = workdir / "kamailio.log"
        self._socket_dir: Path | None = None
        self.ctl_socket = self._ctl_socket_path()
        self._proc: PeerProcess | None = None

    def _ctl_socket_path(self) -> Path:
        path = self.workdir / "kamailio_ctl"
        if len(str(path)) <= _MAX_SOCKET_PATH:
            return path
        self._socket_dir = Path(tempfile.mkdtemp(prefix="kam-"))
        return self._socket_dir / "ctl"

    # ------------------------------------------------------------ addresses

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``: what a UA puts as its registrar / AOR domain."""
        return f"{self.host}:{self.port}"

    @property
    def uri(self) -> str:
        """The proxy's own URI, ``sip:127.0.0.1:PORT``."""
        return f"sip:{self.address}"

    def aor(self, user: str) -> str:
        """The AOR of a user here, e.g. ``sip:alice@127.0.0.1:PORT``."""
        return f"sip:{user}@{self.address}"

    # ------------------------------------------------------------ lifecycle

    def __enter__(self) -> Kamailio:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, timeout: float = 15.0) -> None:
        """Write the config and users, start kamailio, wait until it answers OPTIONS.

        When the port was picked here and got taken before kamailio bound it,
        kamailio is started again on a new one.
        """
        if KAMAILIO is None:
            raise PeerProcessError("kamailio is not installed (Debian: kamailio)")
        if self._proc is not None:
            raise PeerProcessError("already started")

        def reset() -> None:
            self.stop()
            self._proc = None

        def repick() -> None:
            self.port = pick_port()

        try:
            start_retrying(
                self._start_once,
                timeout=timeout,
                output=self.output,
                reset=reset,
                repick=repick if self._pick_port else None,
            )
        except TimeoutError as exc:
            tail = self._proc.tail() if self._proc is not None else ""
            self.stop()
            raise TimeoutError(f"{exc}; kamailio's log ends with:\n{tail}") from None
        except BaseException:
            self.stop()
            raise

    def _start_once(self, deadline: float) -> None:
        assert KAMAILIO is not None
        self.workdir.mkdir(parents=True, exist_ok=True)
        cfg = self.workdir / "kamailio.cfg"
        shutil.copyfile(self.cfg, cfg)
        (self.workdir / "users.cfg").write_text(self._users_cfg())
        self.ctl_socket.unlink(missing_ok=True)
        args = [
            KAMAILIO,
            "-DD",
            "-E",
            "-f",
            str(cfg),
            "-l",
            f"udp:{self.host}:{self.port}",
            "-l",
            f"tcp:{self.host}:{self.port}",
            "-P",
            str(self.workdir / "kamailio.pid"),
            "-Y",
            str(self.workdir),
            "-w",
            str(self.workdir),
            "-m",
            "32",
            "-M",
            "4",
            "-A",
            f'REALM="{self.realm}"',
            "-A",
            f'CTL_SOCKET="unix:{self.ctl_socket}"',
        ]
        if self.call_auth:
            args += ["-A", "WITH_CALL_AUTH"]
        self._proc = PeerProcess(args, self.log_path, cwd=self.workdir)
        self._proc.start()
        wait_until(
            self._probe,
            max(deadline - time.monotonic(), 1),
            interval=0.1,
            what=f"kamailio on {self.address}",
        )
        wait_until(
            lambda: True if self.ctl_socket.exists() else None,
            max(deadline - time.monotonic(), 1),
            what="kamailio's ctl socket",
        )

    def stop(self, timeout: float = 8.0) -> int | None:
        """Stop kamailio (SIGTERM to its PID, SIGKILL to its process group after ``timeout``)."""
        status = self._proc.stop(timeout) if self._proc is not None else None
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
        return status

    @property
    def pid(self) -> int:
        """The PID of kamailio's main process."""
        if self._proc is None:
            raise PeerProcessError("not started")
        return self._proc.pid

    def running(self) -> bool:
        """Whether kamailio is running."""
        return self._proc is not None and self._proc.running()

    def _users_cfg(self) -> str:
        lines = [
            "# Generated by tests/interop/kamailio.py: digest user -> password, AOR user.",
            "route[USERS] {",
        ]
        for user in self.users.values():
            lines += [
                f'\tif ($var(authuser) == "{user.digest_user}") {{',
                f'\t\t$var(pw) = "{user.password}";',
                f'\t\t$var(aor) = "{user.user}";',
                "\t\treturn;",
                "\t}",
            ]
        lines += ["\treturn;", "}", ""]
        return "\n".join(lines)

    def _probe(self) -> bool | None:
        """One OPTIONS to the proxy over UDP: True once it answers 200."""
        assert self._proc is not None
        if not self._proc.running():
            raise PeerProcessError(
                f"kamailio exited ({self._proc.returncode}):\n{self._proc.tail()}"
            )
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((self.host, 0))
            sock.settimeout(0.3)
            local = sock.getsockname()[1]
            branch = "z9hG4bK" + uuid.uuid4().hex
            request = (
                f"OPTIONS {self.uri} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {self.host}:{local};branch={branch};rport\r\n"
                "Max-Forwards: 70\r\n"
                f"From: <sip:probe@{self.host}>;tag={uuid.uuid4().hex[:8]}\r\n"
                f"To: <{self.uri}>\r\n"
                f"Call-ID: {uuid.uuid4().hex}@{self.host}\r\n"
                "CSeq: 1 OPTIONS\r\n"
                "Content-Length: 0\r\n\r\n"
            )
            try:
                sock.sendto(request.encode(), (self.host, self.port))
                data, _ = sock.recvfrom(65536)
            except OSError:
                return None
        return True if data.startswith(b"SIP/2.0 200") else None

    # ------------------------------------------------------------ inspection

    def rpc(self, method: str, *params: str, timeout: float = 5.0) -> str:
        """Run an RPC command through kamcmd on the ctl socket; return its output.

        Raises ``RuntimeError`` when kamcmd fails or kamailio answers an error.
        """
        if KAMCMD is None:
            raise PeerProcessError("kamcmd is not installed (Debian: kamailio)")
        proc = subprocess.run(
            [KAMCMD, "-s", f"unix:{self.ctl_socket}", method, *params],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        out = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
        if proc.returncode != 0 or out.lstrip().startswith("error:"):
            raise RuntimeError(f"kamcmd {method} {' '.join(params)}: {out.strip()}")
        return out

    def bindings(self, user: str) -> list[str]:
        """The contact URIs registered for ``user`` now (``ul.lookup location USER``)."""
        try:
            out = self.rpc("ul.lookup", "location", user)
        except RuntimeError as exc:
            if "not found" in str(exc):
                return []
            raise
        return re.findall(r"^\s*Address:\s*(\S+)\s*$", out, re.MULTILINE)

    def wait_binding(self, user: str, timeout: float = 10.0, *, count: int = 1) -> list[str]:
        """Wait until ``user`` has at least ``count`` bindings; return them."""

        def probe() -> list[str] | None:
            found = self.bindings(user)
            return found if len(found) >= count else None

        return wait_until(probe, timeout, interval=0.1, what=f"a binding of {user}")

    def output(self) -> str:
        """kamailio's log so far."""
        return self._proc.output() if self._proc is not None else ""

    def wait_output(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        """Wait for a regular expression (multiline) in kamailio's log."""
        if self._proc is None:
            raise PeerProcessError("not started")
        return self._proc.wait_output(pattern, timeout)
