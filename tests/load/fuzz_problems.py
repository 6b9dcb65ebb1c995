"""Blaming the fuzzer's inputs for what the server's log shows (see :mod:`tests.load.fuzz`).

After every UDP window and TCP framing the drivers call
:meth:`ProblemTracker.after`: a new traceback or ERROR record is attributed
to the inputs in flight; they are replayed one by one to find the culprit,
and the inputs are written to ``problem-N.jsonl`` under the output directory.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from tests.load.fuzz_report import FuzzResult, Input, write_inputs
from tests.load.logscan import LogWatcher, ProblemBlock
from tests.load.server import AnswerServer

__all__ = ["MAX_PROBLEMS", "ProblemTracker"]

MAX_PROBLEMS = 25
"""Distinct kinds of problem after which a campaign stops."""


class ProblemTracker:
    """Reads what the server's log gained; records each kind of problem once, with its culprit.

    ``replay`` sends one input again (and waits for a health check after it).
    """

    def __init__(
        self,
        server: AnswerServer,
        result: FuzzResult,
        out_dir: Path,
        replay: Callable[[Input], bool],
    ) -> None:
        self.server = server
        self.result = result
        self.out_dir = out_dir
        self.replay = replay
        self.watch = LogWatcher(server.log_path)
        self.kinds: dict[str, dict[str, object]] = {}

    def after(self, suspects: list[Input], transport: str) -> bool:
        """Read the log; record new problems, isolating the culprit of a new kind.

        True when the campaign should stop (the server died, or too many kinds).
        """
        blocks = self.watch.new_blocks(final=True)
        if not blocks:
            return False
        if any(block.signature not in self.kinds for block in blocks):
            time.sleep(0.05)  # a new kind: let the server finish logging it
            blocks += self.watch.new_blocks(final=True)
        for block in blocks:
            self.record(block, suspects, transport)
        return not self.server.alive() or len(self.kinds) >= MAX_PROBLEMS

    def record(
        self,
        block: ProblemBlock,
        suspects: list[Input],
        transport: str,
        culprit: Input | None = None,
        *,
        isolate: bool = True,
    ) -> None:
        """Count ``block``; a new kind is kept with its suspects (written to problem-N.jsonl)."""
        known = self.kinds.get(block.signature)
        if known is not None:
            known["count"] = int(str(known["count"])) + 1
            return
        entry: dict[str, object] = {
            "signature": block.signature,
            "count": 1,
            "transport": transport,
            "brief": block.brief(),
            "lines": block.lines[:40],
            "suspects": len(suspects),
            "culprit": None,
            "file": "",
            "timer": any("_on_timer" in line or "handle_timer" in line for line in block.lines),
        }
        self.kinds[block.signature] = entry
        self.result.problems.append(entry)
        n = len(self.result.problems)  # before isolating, which may record other kinds
        entry["confirmed"] = False
        if culprit is None and isolate and suspects:
            culprit, entry["confirmed"] = self._isolate(suspects, transport, block.signature)
        if suspects or culprit is not None:
            ordered = ([culprit] if culprit else []) + [s for s in suspects if s is not culprit]
            entry["file"] = write_inputs(
                self.out_dir / f"problem-{n}.jsonl",
                ordered,
                {"log": block.lines, "culprit_first": culprit is not None},
            )
        if culprit is not None:
            (self.out_dir / f"problem-{n}.bin").write_bytes(culprit.data)
            entry["culprit"] = culprit.to_json()

    def _isolate(
        self, suspects: list[Input], transport: str, signature: str
    ) -> tuple[Input | None, bool]:
        """Send the suspects again one at a time: (culprit, confirmed).

        The first input after which the log shows a problem is the candidate.
        It is confirmed when a second replay of it (or of one of the five
        replayed just before it: a problem from a timer shows up late) brings
        the same kind of problem back within a second. What the replays log
        is recorded too.
        """
        deadline = time.monotonic() + 60
        tried: list[Input] = []
        for item in suspects:
            if time.monotonic() > deadline or not self.server.alive():
                return None, False
            self.replay(item)
            tried.append(item)
            time.sleep(0.02)
            found = self.watch.new_blocks(final=True)
            if not found:
                continue
            for block in found:
                self.record(block, [item], transport, item, isolate=False)
            for candidate in [item, *reversed(tried[-6:-1])]:
                if not self.server.alive():
                    break
                self.replay(candidate)
                time.sleep(1.0)
                again = self.watch.new_blocks(final=True)
                for block in again:
                    self.record(block, [candidate], transport, candidate, isolate=False)
                if any(block.signature == signature for block in again):
                    return candidate, True
            return item, False
        return None, False
