"""Reading the log of ``sipwire answer -v`` for signs of a bug (test helper).

- :func:`log_problems` lists the lines of a log that show a bug: tracebacks,
  "never retrieved", RecursionError, records at ERROR level or above
  (:func:`is_problem` decides for one line).
- :class:`LogWatcher` reads what a log gained since the last call, as lines
  or as :class:`ProblemBlock` s (a problem line and its traceback);
  :func:`summarize_blocks` groups blocks by signature.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "LogWatcher",
    "ProblemBlock",
    "is_problem",
    "log_problem_blocks",
    "log_problems",
    "summarize_blocks",
]

_LEVEL = re.compile(rb"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ \S+ (ERROR|CRITICAL) ")
_MARKERS = (
    b"Traceback",
    b"never retrieved",
    b"RecursionError",
    b"Exception ignored",
    b"Fatal Python error",
)


def is_problem(line: bytes) -> bool:
    """Whether one log line shows a bug (see :func:`log_problems`)."""
    return any(marker in line for marker in _MARKERS) or _LEVEL.match(line) is not None


def log_problems(path: Path) -> list[str]:
    """The lines of a ``sipwire answer -v`` log that show a bug.

    A line counts when it contains "Traceback", "never retrieved",
    "RecursionError", "Exception ignored" or "Fatal Python error", or when it
    is a log record at ERROR or CRITICAL level (``log.exception`` and
    asyncio's "Exception in callback" are ERROR). The log can be large (an
    INFO line per dropped datagram): it is read line by line.
    """
    found: list[str] = []
    with path.open("rb") as f:
        for line in f:
            if is_problem(line):
                found.append(line.rstrip(b"\r\n").decode("utf-8", "replace"))
    return found


_RECORD = re.compile(rb"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ |listening on |answered \d+ calls)")
"""A log record, or one of the lines ``sipwire answer`` prints itself: the end of a traceback."""
_NUMBERS = re.compile(r"0x[0-9a-fA-F]+|\d+")


@dataclass
class ProblemBlock:
    """One problem in a log: the ERROR record or bare line, and its traceback."""

    lines: list[str]

    @property
    def exception(self) -> str:
        """The last unindented line of the traceback (``ValueError: ...``)."""
        for line in reversed(self.lines[1:]):
            if line and not line[0].isspace() and not line.startswith("Traceback"):
                return line[:300]
        return self.lines[0][:300]

    @property
    def where(self) -> str:
        """The innermost ``File ..., line N, in f`` of the traceback."""
        for line in reversed(self.lines):
            if line.lstrip().startswith("File "):
                return line.strip()[:300]
        return ""

    @property
    def signature(self) -> str:
        return _NUMBERS.sub("N", f"{self.exception.split(':')[0]} @ {self.where}")

    def brief(self) -> str:
        head = self.lines[0][:200]
        return f"{head}\n    {self.where}\n    {self.exception}"


class LogWatcher:
    """Reads what a log gained since the last call, as lines or as problem blocks."""

    CHUNK = 8 << 20

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self._partial = b""
        self._open: list[str] | None = None

    def new_lines(self) -> list[bytes]:
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read(self.CHUNK)
        self.offset += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()
        return lines

    def new_problems(self) -> list[str]:
        return [
            line.rstrip(b"\r").decode("utf-8", "replace")
            for line in self.new_lines()
            if is_problem(line)
        ]

    def new_blocks(self, *, final: bool = False) -> list[ProblemBlock]:
        """Problem blocks completed since the last call (``final``: also the one still open).

        A block starts at a problem line (see :func:`is_problem`) and takes the
        lines that follow it up to the next log record; a traceback of
        thousands of lines (recursion) keeps its first 10 and last 30 lines.
        """
        done: list[ProblemBlock] = []
        while True:
            lines = self.new_lines()
            for raw in lines:
                record = _RECORD.match(raw) is not None
                if record and self._open is not None:
                    done.append(ProblemBlock(self._open))
                    self._open = None
                if self._open is not None:
                    self._open.append(raw.rstrip(b"\r").decode("utf-8", "replace")[:500])
                    if len(self._open) > 80:
                        del self._open[10:-30]
                elif is_problem(raw):
                    self._open = [raw.rstrip(b"\r").decode("utf-8", "replace")[:500]]
            if not final or not lines:
                break
        if final and self._open is not None:
            done.append(ProblemBlock(self._open))
            self._open = None
        return done


def log_problem_blocks(path: Path) -> list[ProblemBlock]:
    """Every problem block of a log (see :meth:`LogWatcher.new_blocks`)."""
    return LogWatcher(path).new_blocks(final=True)


def summarize_blocks(blocks: Sequence[ProblemBlock], limit: int = 10) -> str:
    """Distinct problems by signature, most frequent first, with a count each."""
    groups: dict[str, list[ProblemBlock]] = {}
    for block in blocks:
        groups.setdefault(block.signature, []).append(block)
    ordered = sorted(groups.values(), key=len, reverse=True)
    out = [f"{len(blocks)} problem blocks, {len(groups)} distinct"]
    for group in ordered[:limit]:
        out.append(f"  {len(group)} x {group[0].brief()}")
    return "\n".join(out)
