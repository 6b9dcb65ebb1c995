"""``sipwire answer``: a user agent server that answers every call.

    sipwire answer --listen udp:127.0.0.1:5080 --listen tcp:127.0.0.1:5080

It runs a :class:`~sipwire.UserAgent` that answers OPTIONS with 200, INVITE
with 180 then 200 (with an SDP answer), BYE with 200, CANCEL with 200 and
487, prints every MESSAGE it receives, and answers unknown methods and
broken requests with the RFC's error code, until Ctrl-C (exit 130) or
SIGTERM (exit 0). ``--trace`` prints every SIP message, ``-v`` one line per
request answered.

Audio (RTP on ports from 20000-30000): ``--play FILE`` plays a WAV file to
every caller once answered, ``--record FILE`` records each call (a pattern
with ``{n}`` or ``{call_id}`` for one file per call), ``--echo`` sends back
what it hears; ``--media`` carries audio without them. With audio, each DTMF
digit received (RFC 4733 or INFO) is one line ``DTMF <digit>`` on standard
output, and each call's end one line of media statistics. ``--codecs`` lists
the codecs accepted, in order of preference (``opus`` and ``G722`` need
PyAV: ``pip install 'sipwire[codecs]'``); ``--srtp preferred|required``
answers with SDES-SRTP (RFC 4568), whose keys go only over TLS signalling
unless ``--srtp-insecure-signalling`` lets them go over UDP or TCP too.

A listen address that is taken or not local, or a certificate that does not
load, is one line on standard error (exit 1 and 2).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import ssl
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from types import FrameType
from typing import Literal

import click

from sipwire.aio.gcpolicy import TimedCollection
from sipwire.aio.limits import default_limits
from sipwire.aio.listen import ListenSpec, parse_listen
from sipwire.aio.media.audio import WavWriter
from sipwire.aio.media.config import DtmfReceived, RtpConfig
from sipwire.aio.media.session import MediaEnded, MediaEvent, MediaStarted
from sipwire.aio.transport_base import TransportConfig
from sipwire.aio.ua import UserAgent
from sipwire.cli.common import (
    EXIT_INTERRUPTED,
    CommandFailed,
    chain_traces,
    listen_failure,
    peer_text,
    print_trace,
    setup_logging,
)
from sipwire.cli.media import RecordNames, check_record, load_prompt, media_line
from sipwire.cli.params import ListenType, check_user
from sipwire.cli.tls import server_context
from sipwire.core.sdp_media import MediaConfig, codecs_by_name
from sipwire.errors import SipError
from sipwire.media import wideband
from sipwire.message import Response, parse_message

__all__ = ["AnswerConfig", "AnswerStats", "ListenSpec", "answer", "parse_listen", "run_answer"]

log = logging.getLogger("sipwire.answer")


@dataclass(frozen=True, slots=True)
class AnswerConfig:
    """How ``sipwire answer`` behaves."""

    user: str = "sipwire"
    """User part of our AOR and Contact."""
    user_agent: str = "sipwire"
    """Value of the Server / User-Agent header."""
    ring_time: float = 0.0
    """Seconds between 180 Ringing and 200 OK (0 answers at once)."""
    source_rate_limit: float | None = None
    """New requests per second from one address beyond which they are dropped (None: off)."""
    trace: Callable[[str, bytes, object], None] | None = None
    """Called with every SIP message sent and received (``--trace``, ``-v``)."""
    media: bool = False
    """Carry audio (implied by ``play``, ``record`` and ``echo``)."""
    play: str | None = None
    """WAV file played to every caller once the call is up."""
    record: str | None = None
    """File (or ``{n}``/``{call_id}`` pattern) each call is recorded to."""
    echo: bool = False
    """Send every caller's audio back."""
    rtp: RtpConfig = field(default_factory=RtpConfig)
    """How audio is carried when it is."""
    sdp: MediaConfig = field(default_factory=MediaConfig)
    """The codecs and SRTP accepted (``--codecs``, ``--srtp``)."""

    @property
    def with_media(self) -> bool:
        """Whether calls carry audio (implied by SRTP too: its keys are the media's)."""
        return (
            self.media
            or self.echo
            or self.play is not None
            or self.record is not None
            or self.sdp.srtp != "off"
        )


@dataclass(slots=True)
class AnswerStats:
    """What ``sipwire answer`` did."""

    calls_answered: int = 0
    calls_completed: int = 0
    """Answered calls that the caller ended with BYE."""
    messages: int = 0
    digits: int = 0
    """DTMF digits received."""
    recordings: list[str] = field(default_factory=list)
    """Files recorded to."""


class AnswerMedia:
    """What ``sipwire answer`` does with each call's audio: play, record, echo, print."""

    def __init__(self, config: AnswerConfig, stats: AnswerStats) -> None:
        self.config = config
        self.stats = stats
        self.prompt = load_prompt(config.play) if config.play is not None else None
        self.names = RecordNames(config.record) if config.record is not None else None

    def __call__(self, event: MediaEvent) -> None:
        if isinstance(event, MediaStarted):
            stream = event.media.stream
            stream.echo = self.config.echo
            if self.names is not None:
                name = self.names.next(event.session.call_id)
                try:
                    stream.recorders.append(WavWriter(name))
                    self.stats.recordings.append(name)
                except OSError as exc:
                    log.warning("cannot record to %s: %s", name, exc)
            if self.prompt is not None:
                stream.source.play(self.prompt)
        elif isinstance(event, DtmfReceived):
            self.stats.digits += 1
            click.echo(f"DTMF {event.digit}")
        elif isinstance(event, MediaEnded):
            click.echo(media_line(event.stats, event.session.call_id))


async def run_answer(
    listens: list[ListenSpec],
    config: AnswerConfig,
    transport: TransportConfig,
    *,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
) -> AnswerStats:
    """Run the answering user agent until ``stop`` is set (or SIGINT/SIGTERM)."""
    first = listens[0]
    host = f"[{first.host}]" if ":" in first.host else first.host
    limits = default_limits()
    if config.source_rate_limit is not None:
        limits = replace(limits, source_rate_limit=config.source_rate_limit)
    ua = UserAgent(
        f"sip:{config.user}@{host}",
        listen=[str(spec) for spec in listens],
        transport=transport,
        user_agent=config.user_agent,
        limits=limits,
        trace=config.trace,
        rtp=config.rtp if config.with_media else None,
        media=config.sdp,
    )
    stats = AnswerStats()
    if ua.media is not None:
        ua.media.listeners.append(AnswerMedia(config, stats))
    ua.auto_answer(config.ring_time)

    async def print_messages() -> None:
        async for request in ua.messages():
            stats.messages += 1
            text = request.body.decode("utf-8", "replace")
            click.echo(f"MESSAGE from {request.from_.uri}: {text}")

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    collector = TimedCollection()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Not available off the main thread (tests run the server in a task).
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        async with ua:
            for listener in ua.listeners.values():
                shown = f"[{listener.host}]" if ":" in listener.host else listener.host
                click.echo(f"listening on {listener.transport}:{shown}:{listener.port}", err=True)
            printer = asyncio.ensure_future(print_messages())
            collector.start()
            if ua.endpoint is not None:
                ua.endpoint.monitor.collect = collector.collect_all
            if ready is not None:
                ready.set()
            await stop.wait()
            printer.cancel()
            stats.calls_answered = ua.calls_answered
            stats.calls_completed = ua.calls_completed
    finally:
        collector.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    return stats


def event_loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The loop factory for ``--loop``: uvloop's when asked for (or auto and installed)."""
    if name == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if name == "uvloop":
            raise click.UsageError("uvloop is not installed") from None
        return None
    return uvloop.new_event_loop


class RequestLog:
    """``-v``: one line per request answered (method, From, peer, the final status sent),
    and one per ACK; retransmissions are not repeated."""

    def __init__(self, logger: logging.Logger = log, memory: int = 1024) -> None:
        self.log = logger
        self._seen: OrderedDict[tuple[str, int, str], None] = OrderedDict()
        self._memory = memory

    def __call__(self, direction: str, data: bytes, peer: object) -> None:
        if direction == "send":
            if data.startswith(b"SIP/2.0 ") and data[8:9] != b"1":
                self._response(data, peer)
        elif data.startswith(b"ACK "):
            try:
                ack = parse_message(data)
                self.log.info("ACK from %s (%s)", ack.from_.uri, peer_text(peer))
            except SipError:
                pass

    def _response(self, data: bytes, peer: object) -> None:
        try:
            response = parse_message(data)
            if not isinstance(response, Response):
                return
            key = (response.via[0].branch or "", response.status, str(response.cseq))
            if key in self._seen:
                return
            self._seen[key] = None
            while len(self._seen) > self._memory:
                self._seen.popitem(last=False)
            self.log.info(
                "%s from %s (%s): %d %s",
                response.cseq.method,
                response.from_.uri,
                peer_text(peer),
                response.status,
                response.reason,
            )
        except (SipError, IndexError):
            pass


def parse_codecs(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> tuple[str, ...] | None:
    """``--codecs``: comma-separated names sipwire knows, opus and G722 only with PyAV."""
    if value is None:
        return None
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    if not names:
        raise click.BadParameter("no codec named", ctx, param)
    try:
        codecs_by_name(names)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None
    wide = [name for name in names if name.lower() in ("opus", "g722")]
    if wide and not wideband.available():
        raise click.BadParameter(
            f"{', '.join(wide)} need PyAV: pip install 'sipwire[codecs]'", ctx, param
        )
    if not any(name.lower() != "telephone-event" for name in names):
        raise click.BadParameter("telephone-event alone carries no audio", ctx, param)
    return names


@click.command()
@click.option(
    "--listen",
    "listens",
    type=ListenType(),
    multiple=True,
    help="Where to listen, repeatable: udp|tcp|tls|ws|wss:HOST:PORT "
    "[default: udp:127.0.0.1:5060 and tcp:127.0.0.1:5060].",
)
@click.option(
    "--cert",
    type=click.Path(exists=True, dir_okay=False),
    help="TLS certificate chain (PEM), for tls and wss listeners.",
)
@click.option(
    "--key",
    type=click.Path(exists=True, dir_okay=False),
    help="TLS private key (PEM, unencrypted) of --cert.",
)
@click.option(
    "--ring-time",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Seconds of 180 Ringing before the 200 OK.",
)
@click.option(
    "--user",
    default="sipwire",
    show_default=True,
    callback=check_user,
    help="User part of our AOR and Contact.",
)
@click.option(
    "--loop",
    type=click.Choice(["auto", "uvloop", "asyncio"]),
    default="auto",
    show_default=True,
    help="Event loop: uvloop when installed (auto), or the standard asyncio loop.",
)
@click.option(
    "--source-rate-limit",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="PER_SECOND",
    help="Drop new requests beyond this many per second from one address "
    "(like kamailio's pike) [default: off].",
)
@click.option(
    "--play",
    type=click.Path(exists=True, dir_okay=False),
    help="Play this WAV file (any rate and channels) to every caller once answered.",
)
@click.option(
    "--record",
    metavar="FILE",
    callback=check_record,
    help="Record each call to this WAV file; {n} or {call_id} in the name: one file per call.",
)
@click.option("--echo", is_flag=True, help="Send every caller's audio back to it.")
@click.option(
    "--media",
    is_flag=True,
    help="Carry audio (RTP) without --play/--record/--echo: DTMF lines, statistics.",
)
@click.option(
    "--codecs",
    metavar="LIST",
    callback=parse_codecs,
    help="Codecs accepted, comma-separated, preferred first: PCMU, PCMA, G722, opus, "
    "telephone-event (G722 and opus need PyAV) [default: PCMU,PCMA,G722,telephone-event].",
)
@click.option(
    "--srtp",
    type=click.Choice(["off", "preferred", "required"]),
    default="off",
    show_default=True,
    help="SDES-SRTP (implies --media): 'required' refuses plain RTP with 488, "
    "'preferred' answers offered crypto with SRTP and plain RTP with RTP.",
)
@click.option(
    "--srtp-insecure-signalling",
    is_flag=True,
    help="With --srtp: send the SDES keys over UDP/TCP signalling too (whoever sees "
    "the SIP can decrypt the media) [default: keys only over tls/wss].",
)
@click.option("--trace", is_flag=True, help="Print every SIP message on stderr.")
@click.option("-v", "--verbose", count=True, help="Log more (-v one line per request, -vv debug).")
def answer(
    listens: tuple[ListenSpec, ...],
    cert: str | None,
    key: str | None,
    ring_time: float,
    user: str,
    loop: str,
    source_rate_limit: float | None,
    play: str | None,
    record: str | None,
    echo: bool,
    media: bool,
    codecs: tuple[str, ...] | None,
    srtp: Literal["off", "preferred", "required"],
    srtp_insecure_signalling: bool,
    trace: bool,
    verbose: int,
) -> None:
    """Answer every call: a user agent server for tests and demos."""
    setup_logging(verbose)
    specs = list(listens) or [
        ListenSpec("udp", "127.0.0.1", 5060),
        ListenSpec("tcp", "127.0.0.1", 5060),
    ]
    if srtp_insecure_signalling and srtp == "off":
        raise click.UsageError("--srtp-insecure-signalling needs --srtp preferred or required")
    sdp = MediaConfig(srtp=srtp, srtp_insecure_signalling=srtp_insecure_signalling)
    if codecs is not None:
        sdp = replace(sdp, codecs=codecs)
    loop_factory = event_loop_factory(loop)
    server_ctx: ssl.SSLContext | None = None
    if any(s.transport in ("tls", "wss") for s in specs):
        if not (cert and key):
            raise click.UsageError("tls and wss listeners need --cert and --key")
        server_ctx = server_context(cert, key)
    transport = TransportConfig(tls_server_context=server_ctx)
    config = AnswerConfig(
        user=user,
        ring_time=ring_time,
        source_rate_limit=source_rate_limit,
        trace=chain_traces(print_trace if trace else None, RequestLog() if verbose >= 1 else None),
        media=media,
        play=play,
        record=record,
        echo=echo,
        sdp=sdp,
    )
    interrupted = False

    def note_interrupt(signum: int, frame: FrameType | None) -> None:
        nonlocal interrupted
        interrupted = True

    async def serve() -> AnswerStats:
        ready = asyncio.Event()
        server = asyncio.ensure_future(run_answer(specs, config, transport, ready=ready))
        started = asyncio.ensure_future(ready.wait())
        await asyncio.wait([server, started], return_when=asyncio.FIRST_COMPLETED)
        started.cancel()
        if ready.is_set():
            # run_answer stops on SIGINT through the loop's handler (the wake-up fd);
            # this Python-level handler runs too and only notes that it was SIGINT.
            signal.signal(signal.SIGINT, note_interrupt)
        return await server

    # Keep the start-up objects out of every collection; run_answer collects on a
    # clock instead of by allocation count (sipwire.aio.gcpolicy).
    gc.collect()
    gc.freeze()
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            tu = runner.run(serve())
    except SipError as exc:
        raise CommandFailed(listen_failure(exc) or exc.reason) from None
    except OSError as exc:
        raise CommandFailed(f"cannot listen: {exc}") from None
    click.echo(f"answered {tu.calls_answered} calls, {tu.calls_completed} ended with BYE", err=True)
    if interrupted:
        raise click.exceptions.Exit(EXIT_INTERRUPTED)
