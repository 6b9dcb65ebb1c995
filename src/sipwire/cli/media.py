"""Audio options shared by ``sipwire call`` and ``sipwire answer``.

``--record`` takes a file name, or a pattern with ``{n}`` (the call's number,
from 1) and ``{call_id}`` (its Call-ID, made safe for a file name) for one
file per call. A plain name is written exactly by the first call; a later
call writes ``NAME-2.wav``, ``NAME-3.wav`` ... beside it rather than over it.
"""

from __future__ import annotations

import os
import re

import click
import numpy as np
from numpy.typing import NDArray

from sipwire.aio.media.audio import WavFormatError, read_wav
from sipwire.aio.media.config import MediaStats
from sipwire.cli.common import CommandFailed

__all__ = ["RecordNames", "load_prompt", "media_line"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._@-]")
_FIELDS = ("{n}", "{call_id}")


class RecordNames:
    """The file each call records to, from ``--record``'s name or pattern."""

    def __init__(self, template: str) -> None:
        self.template = template
        self.count = 0

    @property
    def is_pattern(self) -> bool:
        """Whether the name has ``{n}`` or ``{call_id}``."""
        return any(field in self.template for field in _FIELDS)

    def next(self, call_id: str) -> str:
        """The name for the next call."""
        self.count += 1
        if self.is_pattern:
            safe = _UNSAFE.sub("_", call_id)
            return self.template.replace("{n}", str(self.count)).replace("{call_id}", safe)
        if self.count == 1:
            return self.template
        stem, extension = os.path.splitext(self.template)
        return f"{stem}-{self.count}{extension}"


def check_record(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--record``: only ``{n}`` and ``{call_id}`` may stand in braces."""
    if value is None:
        return None
    rest = value
    for field in _FIELDS:
        rest = rest.replace(field, "")
    if "{" in rest or "}" in rest:
        raise click.BadParameter(f"{value!r}: only {{n}} and {{call_id}} may be in braces")
    return value


def load_prompt(path: str) -> NDArray[np.int16]:
    """The audio of ``--play`` at 8 kHz; one line and exit 1 when it cannot be read."""
    try:
        return read_wav(path)
    except (OSError, WavFormatError) as exc:
        raise CommandFailed(f"cannot play {path}: {exc}") from None


def media_line(stats: MediaStats, call_id: str) -> str:
    """The one line of statistics printed when a call ends."""
    return f"{stats} (call {call_id})"
