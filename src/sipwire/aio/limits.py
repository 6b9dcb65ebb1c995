"""Default limits of an element, sized from the memory it may use.

The admission limits (live INVITE sessions, transactions, bytes of requests
waiting for an answer) are derived from the machine's memory, or from the
cgroup's memory limit when the process runs in a container with a smaller
one, so that a flood fills the tables long before it fills the RAM.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from sipwire.transaction.admission import AdmissionConfig

__all__ = ["available_memory", "default_limits"]

_FALLBACK = 2 << 30


def available_memory() -> int:
    """Bytes of memory this process may use: physical RAM, capped by a cgroup limit."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = _FALLBACK
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < memory:
            memory = int(text)
    return memory if memory > 0 else _FALLBACK


@functools.cache
def default_limits() -> AdmissionConfig:
    """Admission limits for this machine (:meth:`AdmissionConfig.sized_for_memory`)."""
    return AdmissionConfig.sized_for_memory(available_memory())
