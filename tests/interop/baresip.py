"""baresip (Debian ``baresip-core`` 1.0.0) as a headless SIP peer for interop tests.

:class:`Baresip` runs one baresip with a configuration directory of its own
(``-f DIR``), SIP on ``127.0.0.1:PORT`` (UDP and TCP), no sound device (a 440 Hz
sine, or a WAV file, as the source; an ``aubridge`` sink as the player) and only
the G.711 codecs, and drives it through the ``ctrl_tcp`` module (JSON in
netstrings on a TCP port of 127.0.0.1)::

    with Baresip(tmp_path / "bob", user="bob", auto_answer=True) as bob:
        bob.dial("sip:service@127.0.0.1:5070")
        bob.wait_event("CALL_ESTABLISHED")
        bob.hangup()
        bob.wait_event("CALL_CLOSED")

What baresip 1.0.0 offers, and how this harness uses it:

* Commands (``ctrl_tcp`` ``{"command": ..., "params": ...}``): ``dial URI``,
  ``accept``, ``hangup``, ``uanew ACCOUNT-LINE``, ``message TEXT`` (module
  ``contact``: sends a MESSAGE to the *current contact*), ``contact_next`` /
  ``contact_prev``, ``insmod`` / ``rmmod``, ``reginfo``, ``listcalls``, ``quit``.
* Events (``{"event": true, "type": ...}``): ``REGISTERING``, ``REGISTER_OK``,
  ``REGISTER_FAIL``, ``UNREGISTERING``, ``CALL_INCOMING``, ``CALL_RINGING``,
  ``CALL_PROGRESS``, ``CALL_ESTABLISHED``, ``CALL_CLOSED``, ``CALL_LOCAL_SDP``,
  ``CALL_REMOTE_SDP``, ``CALL_RTPESTAB``, ``CALL_RTCP``, ``CALL_DTMF_START`` ... .
  There is **no event for a received MESSAGE**: the ``menu`` module prints
  ``<from-uri>: "<text>"`` on stdout (through the ``stdio`` UI module, which is
  loaded for that, on a stdin pipe that stays open); :meth:`Baresip.wait_message`
  waits for that line.
* The account is created with ``uanew`` once the control channel is up (the
  accounts file stays empty), so that ``REGISTERING`` / ``REGISTER_OK`` are seen.
* ``message`` can only address the current contact of the ``contact`` module,
  whose list is read from ``DIR/contacts`` when the module loads. Targets given
  in ``contacts=`` are in that list from the start and :meth:`Baresip.message`
  selects them with ``contact_next`` / ``contact_prev``; for any other URI it
  rewrites the file and reloads the module (``rmmod``/``insmod contact``), which
  must not happen while an earlier MESSAGE of this baresip is still unanswered
  (its response handler lives in that module): list the targets up front.
* The ``ausine`` source only runs at 48 kHz stereo: the config sets
  ``ausrc_srate 48000`` and ``ausrc_channels 2`` and baresip resamples to 8 kHz.
  ``net_interface 127.0.0.1`` makes the SDP and RTP use loopback too.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import threading
import time
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from tests.interop.peerproc import (
    ADDRESS_IN_USE,
    PeerProcess,
    PeerProcessError,
    ephemeral_port_range,
    pick_port,
    port_bound,
    start_retrying,
    wait_until,
)

__all__ = [
    "BARESIP",
    "Baresip",
    "BaresipError",
    "BaresipEvent",
    "ReceivedMessage",
]

BARESIP = shutil.which("baresip")
HOST = "127.0.0.1"
_MODULE_DIRS = (
    Path("/usr/lib/baresip/modules"),
    Path("/usr/local/lib/baresip/modules"),
    Path("/usr/lib64/baresip/modules"),
)
# What baresip prints when the ctrl_tcp module could not listen (it carries on without it).
_CTRL_FAILED = re.compile(r"^ctrl_tcp: failed to listen|^module ctrl_tcp\.so: ", re.MULTILINE)
# menu's message handler prints: <peer uri>: "<text>"
_MESSAGE_LINE = re.compile(r'^(?P<peer>sips?:\S+): "(?P<text>.*)"$', re.MULTILINE)

Transport = Literal["udp", "tcp"]
EventMatch = str | Callable[["BaresipEvent"], bool]


class BaresipError(RuntimeError):
    """baresip refused a command, or its control channel broke."""


@dataclass(frozen=True)
class BaresipEvent:
    """One ctrl_tcp event, e.g. ``type="CALL_ESTABLISHED"``, ``peeruri="sip:..."``."""

    type: str
    klass: str = ""
    accountaor: str = ""
    direction: str = ""
    peeruri: str = ""
    id: str = ""
    param: str = ""
    data: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BaresipEvent:
        def text(key: str) -> str:
            value = data.get(key, "")
            return value if isinstance(value, str) else str(value)

        return cls(
            type=text("type"),
            klass=text("class"),
            accountaor=text("accountaor"),
            direction=text("direction"),
            peeruri=text("peeruri"),
            id=text("id"),
            param=text("param"),
            data=data,
        )


@dataclass(frozen=True)
class ReceivedMessage:
    """A SIP MESSAGE baresip received: the sender's URI and the body text."""

    peer: str
    text: str


def _module_path() -> Path | None:
    for directory in _MODULE_DIRS:
        if (directory / "ctrl_tcp.so").exists():
            return directory
    return None


class _Netstrings:
    """Splits a byte stream into netstrings (``<len>:<payload>,``)."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        while True:
            colon = self._buf.find(b":")
            if colon < 0:
                return out
            length = int(self._buf[:colon])
            end = colon + 1 + length
            if len(self._buf) < end + 1:
                return out
            out.append(self._buf[colon + 1 : end])
            self._buf = self._buf[end + 1 :]


class Baresip:
    """A baresip user agent on 127.0.0.1, driven over ctrl_tcp.

    Args:
        workdir: a directory of its own (created): config, accounts, contacts
            and the output log ``baresip.log`` go there.
        user: the user part of the AOR.
        registrar: ``"127.0.0.1:PORT"`` of a registrar to register with (the AOR
            is then ``sip:USER@127.0.0.1:PORT``); None for no registration (the
            AOR is ``sip:USER@127.0.0.1``, ``regint=0``).
        password: the digest password (``auth_pass``), for a registrar or for
            a proxy that challenges calls (no ``;``, ``>``, ``"`` or spaces:
            it goes into the account line as it is).
        auth_user: the digest user name when it differs from ``user``.
        regint: the registration interval asked for, in seconds.
        auto_answer: answer incoming calls at once (``answermode=auto``),
            else they ring until :meth:`answer`.
        transport: the transport for the registrar / outbound proxy
            (``;transport=`` of the AOR); baresip listens on UDP and TCP anyway.
        outbound: a proxy URI every request is sent through (``outbound=``).
        port: the SIP port for UDP and TCP (default: a free one; baresip also
            listens on ``port + 1`` for TLS); ``ctrl_port`` likewise.
        contacts: URIs :meth:`message` will address (see the module docstring).
        audio_file: a 16-bit PCM WAV to send instead of a 440 Hz sine; it must
            last longer than the calls (baresip stops the source at its end).
        dump_dir: where baresip's ``sndfile`` module writes the audio of each
            call as WAV files, what it decoded in ``*-dec.wav`` (baresip's
            only way to record without a sound card).
        sip_trace: print every SIP message in the log (``-s``).
        account_params: more ``;name=value`` account parameters, verbatim.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        user: str = "bob",
        registrar: str | None = None,
        password: str | None = None,
        auth_user: str | None = None,
        regint: int = 600,
        auto_answer: bool = False,
        transport: Transport = "udp",
        outbound: str | None = None,
        port: int | None = None,
        ctrl_port: int | None = None,
        contacts: Sequence[str] = (),
        audio_file: Path | None = None,
        dump_dir: Path | None = None,
        sip_trace: bool = True,
        account_params: str = "",
    ) -> None:
        self.workdir = workdir
        self.user = user
        self.registrar = registrar
        self.password = password
        self.auth_user = auth_user
        self.regint = regint if registrar else 0
        self.auto_answer = auto_answer
        self.transport: Transport = transport
        self.outbound = outbound
        self.host = HOST
        self._pick_ports = port is None and ctrl_port is None
        self.port = port if port is not None else pick_port(span=2)
        self.ctrl_port = ctrl_port if ctrl_port is not None else self._pick_ctrl_port()
        if self.ctrl_port in (self.port, self.port + 1):
            raise ValueError(f"ctrl_port {self.ctrl_port}: baresip's SIP listens there")
        self.audio_file = audio_file
        self.dump_dir = dump_dir
        self.sip_trace = sip_trace
        self.account_params = account_params
        self.log_path = workdir / "baresip.log"
        self._contacts: list[str] = list(dict.fromkeys(contacts))
        self._current_contact = 0
        self._proc: PeerProcess | None = None
        self._sock: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self._cond = threading.Condition()
        self._events: list[BaresipEvent] = []
        self._consumed: set[int] = set()
        self._responses: dict[str, dict[str, Any]] = {}
        self._reader_error: str | None = None
        self._token = 0
        self._send_lock = threading.Lock()

    # ------------------------------------------------------------ addresses

    @property
    def domain(self) -> str:
        """The host part of the AOR: the registrar's ``host:port``, else 127.0.0.1."""
        return self.registrar or self.host

    @property
    def aor(self) -> str:
        """The address of record, e.g. ``sip:alice@127.0.0.1:5060`` or ``sip:bob@127.0.0.1``."""
        return f"sip:{self.user}@{self.domain}"

    def direct_uri(self, transport: Transport = "udp") -> str:
        """A URI that reaches this baresip directly, without a registrar."""
        uri = f"sip:{self.user}@{self.host}:{self.port}"
        return uri + (";transport=tcp" if transport == "tcp" else "")

    @property
    def sip_uri(self) -> str:
        """``sip:USER@127.0.0.1:PORT``: dial this to reach baresip directly over UDP."""
        return self.direct_uri("udp")

    def account_line(self) -> str:
        """The baresip account line given to ``uanew``."""
        uri = f"sip:{self.user}@{self.domain}"
        if self.transport == "tcp":
            uri += ";transport=tcp"
        params = [
            f"regint={self.regint}",
            f"answermode={'auto' if self.auto_answer else 'manual'}",
            "audio_codecs=PCMU,PCMA",
            "mwi=no",
            "call_transfer=no",
            "pubint=0",
        ]
        if self.password is not None:
            params.append(f"auth_pass={self.password}")
        if self.auth_user is not None:
            params.append(f"auth_user={self.auth_user}")
        if self.outbound is not None:
            params.append(f'outbound="{self.outbound}"')
        line = f"<{uri}>;" + ";".join(params)
        if self.account_params:
            line += ";" + self.account_params.lstrip(";")
        return line

    # ------------------------------------------------------------ lifecycle

    def __enter__(self) -> Baresip:
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
        """Write the config, start baresip, connect ctrl_tcp and create the account.

        With a registrar, registration is under way when this returns: use
        :meth:`wait_registered`. When its ports were picked here and one was
        taken before baresip bound it, baresip is started again on new ones.
        """
        if BARESIP is None:
            raise PeerProcessError("baresip is not installed (Debian: baresip-core)")
        if self._proc is not None:
            raise BaresipError("already started")

        def reset() -> None:
            self.stop()
            self._proc = None

        def repick() -> None:
            self.port = pick_port(span=2)
            self.ctrl_port = self._pick_ctrl_port()

        try:
            start_retrying(
                self._start_once,
                timeout=timeout,
                output=self.output,
                reset=reset,
                repick=repick if self._pick_ports else None,
            )
        except BaseException:
            self.stop()
            raise

    def _start_once(self, deadline: float) -> None:
        with self._cond:
            self._events.clear()
            self._consumed.clear()
            self._responses.clear()
            self._reader_error = None
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        assert BARESIP is not None
        args = [BARESIP, "-f", str(self.workdir)]
        if self.sip_trace:
            args.append("-s")
        self._proc = PeerProcess(args, self.log_path, cwd=self.workdir, stdin_pipe=True)
        self._proc.start()
        self._proc.wait_output(r"^baresip is ready\.", max(deadline - time.monotonic(), 1))
        self._check_ctrl_listening()
        self._connect(deadline)
        self.command("uanew", self.account_line(), timeout=max(deadline - time.monotonic(), 1))

    def stop(self, timeout: float = 6.0) -> int | None:
        """Stop baresip (SIGTERM; a second one after half the timeout; then SIGKILL).

        On the first SIGTERM baresip unregisters and waits for the answer: stop
        it before its registrar, or this takes half the timeout. Returns its
        exit status. Safe to call twice.
        """
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        status: int | None = None
        if self._proc is not None:
            status = self._proc.stop(timeout, term_signals=2)
        if self._reader is not None:
            self._reader.join(timeout=2)
            self._reader = None
        return status

    @property
    def pid(self) -> int:
        """baresip's PID."""
        if self._proc is None:
            raise BaresipError("not started")
        return self._proc.pid

    def running(self) -> bool:
        """Whether baresip is running."""
        return self._proc is not None and self._proc.running()

    def _write_config(self) -> None:
        module_path = _module_path()
        if self.audio_file is not None:
            with wave.open(str(self.audio_file), "rb") as wav:
                srate, channels = wav.getframerate(), wav.getnchannels()
            source = f"aufile,{self.audio_file}"
        else:
            srate, channels = 48000, 2  # all that ausine supports
            source = "ausine,440"
        rtp_low, rtp_high = ephemeral_port_range()
        lines = [
            "poll_method\t\tepoll",
            f"sip_listen\t\t{self.host}:{self.port}",
            f"net_interface\t\t{self.host}",
            f"dns_server\t\t{self.host}:53",
            "call_local_timeout\t120",
            "call_max_calls\t\t4",
            f"audio_player\t\taubridge,play{self.port}",
            f"audio_source\t\t{source}",
            f"audio_alert\t\taubridge,alert{self.port}",
            f"ausrc_srate\t\t{srate}",
            f"ausrc_channels\t\t{channels}",
            "audio_level\t\tno",
            "rtcp_mux\t\tno",
            "jitter_buffer_delay\t1-10",
            # RTP in the kernel's ephemeral range, away from the ports pick_port() gives
            # (baresip tries other RTP ports when one is taken).
            f"rtp_ports\t\t{rtp_low}-{rtp_high}",
            "rtp_stats\t\tno",
        ]
        if module_path is not None:
            lines.append(f"module_path\t\t{module_path}")
        if self.dump_dir is not None:
            self.dump_dir.mkdir(parents=True, exist_ok=True)
            lines += ["module\t\t\tsndfile.so", f"snd_path\t\t{self.dump_dir}"]
        lines += [
            "module\t\t\tstdio.so",
            "module\t\t\tg711.so",
            "module\t\t\tausine.so",
            "module\t\t\taufile.so",
            "module\t\t\taubridge.so",
            "module_tmp\t\taccount.so",
            "module_app\t\tcontact.so",
            "module_app\t\tmenu.so",
            "module_app\t\tctrl_tcp.so",
            f"ctrl_tcp_listen\t\t{self.host}:{self.ctrl_port}",
            "statmode_default\toff",
            "menu_bell\t\tno",
            "redial_attempts\t\t0",
        ]
        (self.workdir / "config").write_text("\n".join(lines) + "\n")
        (self.workdir / "accounts").write_text("# created with uanew by the harness\n")
        self._write_contacts()

    def _write_contacts(self) -> None:
        lines = [f'"c{i}" <{uri}>' for i, uri in enumerate(self._contacts)]
        (self.workdir / "contacts").write_text("\n".join(lines) + "\n")
        current = self.workdir / "current_contact"
        if self._contacts:
            current.write_text(self._contacts[0])
        else:
            current.unlink(missing_ok=True)
        self._current_contact = 0

    # ------------------------------------------------------------ ctrl_tcp

    def _pick_ctrl_port(self) -> int:
        """A port for ctrl_tcp that baresip's SIP transports do not take (``port`` for
        UDP and TCP, ``port + 1`` for TLS)."""
        return pick_port(avoid=(self.port, self.port + 1))

    def _check_ctrl_listening(self) -> None:
        """Fail unless ctrl_tcp listens on ``ctrl_port`` in baresip itself.

        baresip 1.0.0 only logs a module that fails to load ("ctrl_tcp: failed
        to listen on TCP ... (Address already in use)") and prints "baresip is
        ready." all the same; a connection to ``ctrl_port`` would then reach
        whoever holds that port (baresip's own TLS listener on ``port + 1``
        closes it at the first bytes: "ctrl_tcp connection closed"). The
        PeerProcessError carries baresip's output, so ``start_retrying`` sees
        "Address already in use" and starts again on other ports.
        """
        assert self._proc is not None
        failed = _CTRL_FAILED.search(self._proc.output()) is not None
        if failed or not port_bound(self.ctrl_port, tcp=True, host=self.host, pid=self._proc.pid):
            raise PeerProcessError(
                f"baresip's ctrl_tcp does not listen on {self.host}:{self.ctrl_port}:\n"
                f"{self._proc.tail()}"
            )

    def _connect(self, deadline: float) -> None:
        def attempt() -> socket.socket | None:
            assert self._proc is not None
            if not self._proc.running():
                raise PeerProcessError(
                    f"baresip exited ({self._proc.returncode}):\n{self._proc.tail()}"
                )
            try:
                return socket.create_connection((self.host, self.ctrl_port), timeout=1)
            except OSError:
                if ADDRESS_IN_USE.search(self._proc.output()):
                    raise PeerProcessError(
                        f"baresip could not bind a port:\n{self._proc.tail()}"
                    ) from None
                return None

        sock = wait_until(
            attempt, max(deadline - time.monotonic(), 1), what="baresip's ctrl_tcp port"
        )
        sock.settimeout(None)
        self._sock = sock
        self._reader = threading.Thread(
            target=self._read_loop, args=(sock,), name=f"baresip-ctrl-{self.port}", daemon=True
        )
        self._reader.start()

    def _read_loop(self, sock: socket.socket) -> None:
        parser = _Netstrings()
        error = "ctrl_tcp connection closed"
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                for payload in parser.feed(data):
                    self._dispatch(json.loads(payload.decode("utf-8", errors="replace")))
        except (OSError, ValueError) as exc:
            error = f"ctrl_tcp connection failed: {exc!r}"
        with self._cond:
            self._reader_error = error
            self._cond.notify_all()

    def _dispatch(self, message: dict[str, Any]) -> None:
        with self._cond:
            if message.get("event"):
                self._events.append(BaresipEvent.from_json(message))
            elif message.get("response"):
                self._responses[str(message.get("token", ""))] = message
            self._cond.notify_all()

    def command(self, command: str, params: str | None = None, timeout: float = 5.0) -> str:
        """Run a baresip command (a long name, without the slash) and return its output.

        Raises :class:`BaresipError` if baresip answers ``ok: false`` or not in time.
        """
        sock = self._sock
        if sock is None:
            raise BaresipError("not connected")
        with self._send_lock:
            self._token += 1
            token = str(self._token)
        request: dict[str, str] = {"command": command, "token": token}
        if params is not None:
            request["params"] = params
        payload = json.dumps(request).encode()
        with self._send_lock:
            sock.sendall(str(len(payload)).encode() + b":" + payload + b",")
        deadline = time.monotonic() + timeout
        with self._cond:
            while token not in self._responses:
                if self._reader_error is not None:
                    raise BaresipError(f"{command}: {self._reader_error}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise BaresipError(f"{command}: no response in {timeout:g} s")
                self._cond.wait(remaining)
            response = self._responses.pop(token)
        data = response.get("data", "")
        text = data if isinstance(data, str) else json.dumps(data)
        if not response.get("ok", False):
            raise BaresipError(f"{command} {params or ''}: {text}".strip())
        return text

    # ------------------------------------------------------------ actions

    def dial(self, uri: str) -> None:
        """Call ``uri`` (``dial``); follow it with ``wait_event("CALL_ESTABLISHED")``."""
        self.command("dial", uri)

    def answer(self) -> None:
        """Answer the incoming call (``accept``)."""
        self.command("accept")

    def hangup(self) -> None:
        """Hang up the current call, or reject the ringing one (``hangup``)."""
        self.command("hangup")

    def message(self, uri: str, text: str) -> None:
        """Send a SIP MESSAGE with ``text`` (text/plain) to ``uri``.

        Uses the ``contact`` module's ``message`` command, which addresses the
        current contact: see the module docstring about ``contacts=``.
        """
        if uri not in self._contacts:
            self._contacts.append(uri)
            self._write_contacts()
            self.workdir.joinpath("current_contact").write_text(uri)
            self._current_contact = len(self._contacts) - 1
            self.command("rmmod", "contact")
            self.command("insmod", "contact")
        else:
            self._select_contact(self._contacts.index(uri))
        self.command("message", text)

    def _select_contact(self, index: int) -> None:
        while self._current_contact != index:
            if self._current_contact < index:
                self.command("contact_next")
                self._current_contact += 1
            else:
                self.command("contact_prev")
                self._current_contact -= 1
        listing = self.command("contacts")
        expected = f"<{self._contacts[index]}>"
        if not any(line.startswith(">") and expected in line for line in listing.splitlines()):
            raise BaresipError(f"could not select contact {expected}:\n{listing}")

    # ------------------------------------------------------------ waiting

    @property
    def events(self) -> list[BaresipEvent]:
        """Every ctrl_tcp event received so far, oldest first."""
        with self._cond:
            return list(self._events)

    def wait_event(self, match: EventMatch, timeout: float = 10.0) -> BaresipEvent:
        """Wait for an event: a type name (``"CALL_ESTABLISHED"``) or a predicate.

        Returns the oldest matching event not yet returned by an earlier
        ``wait_event`` (each event is returned once), so waiting twice for
        ``CALL_ESTABLISHED`` waits for two calls. Raises ``TimeoutError``.
        """
        predicate: Callable[[BaresipEvent], bool]
        if isinstance(match, str):
            wanted = match

            def by_type(event: BaresipEvent) -> bool:
                return event.type == wanted

            predicate = by_type
            what = wanted
        else:
            predicate = match
            what = getattr(match, "__name__", "event")
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for index, event in enumerate(self._events):
                    if index not in self._consumed and predicate(event):
                        self._consumed.add(index)
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = ", ".join(e.type for e in self._events) or "none"
                    raise TimeoutError(
                        f"baresip {self.user}: no {what} event in {timeout:g} s "
                        f"(events seen: {seen})"
                    )
                if self._reader_error is not None and not self.running():
                    raise BaresipError(f"baresip exited: {self._reader_error}")
                self._cond.wait(min(remaining, 0.5))

    def wait_registered(self, timeout: float = 10.0) -> BaresipEvent:
        """Wait for ``REGISTER_OK``; raise :class:`BaresipError` on ``REGISTER_FAIL``."""
        event = self.wait_event(lambda e: e.type in ("REGISTER_OK", "REGISTER_FAIL"), timeout)
        if event.type == "REGISTER_FAIL":
            raise BaresipError(f"registration of {self.aor} failed: {event.param}")
        return event

    def output(self) -> str:
        """baresip's stdout and stderr so far (SIP trace included), colour codes removed."""
        return self._proc.output() if self._proc is not None else ""

    def wait_output(self, pattern: str | re.Pattern[str], timeout: float = 10.0) -> re.Match[str]:
        """Wait for a regular expression (multiline) in baresip's output."""
        if self._proc is None:
            raise BaresipError("not started")
        return self._proc.wait_output(pattern, timeout)

    def received_messages(self) -> list[ReceivedMessage]:
        """The MESSAGEs received so far (one-line texts), oldest first."""
        return [
            ReceivedMessage(m.group("peer"), m.group("text"))
            for m in _MESSAGE_LINE.finditer(self.output())
        ]

    def wait_message(self, text: str | None = None, timeout: float = 10.0) -> ReceivedMessage:
        """Wait for a received MESSAGE whose body is ``text`` (any body if None)."""

        def probe() -> ReceivedMessage | None:
            for received in self.received_messages():
                if text is None or received.text == text:
                    return received
            if not self.running():
                raise BaresipError(f"baresip exited:\n{self.output()[-3000:]}")
            return None

        try:
            return wait_until(probe, timeout, what=f"MESSAGE {text!r} at {self.user}")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; output ends with:\n{self.output()[-3000:]}") from None
