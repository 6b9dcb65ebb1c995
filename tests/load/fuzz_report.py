"""What a fuzz run records: its inputs (``.jsonl`` files) and its :class:`FuzzResult`."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["FuzzResult", "Input", "read_inputs", "write_inputs"]


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

    def fail(self, why: str, *, alive: bool, inputs: Sequence[Input]) -> None:
        """Record why the run failed; the inputs sent last go to ``last-batch.jsonl``."""
        self.failure = why
        self.alive = alive
        path = Path(self.out_dir) / "last-batch.jsonl"
        self.failure_file = write_inputs(path, inputs, {"failure": why})

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


def write_inputs(path: Path, inputs: Sequence[Input], note: dict[str, object]) -> str:
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
