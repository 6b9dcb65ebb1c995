"""Applies bindings to a SQLite store one by one, printing the number of each once its
``apply`` has returned: the process the kill -9 test (``test_sqlite.py``) kills.

    python tests/store/sqlite_writer.py PATH COUNT
"""

from __future__ import annotations

import asyncio
import sys
import time

from sipwire.registrar.model import Binding, BindingChange
from sipwire.store.sqlite import SqliteStore

AOR_FORMAT = "sip:user{}@example.com"


def contact(i: int, now: float) -> Binding:
    return Binding(
        aor=AOR_FORMAT.format(i % 50),
        contact=f"<sip:{i}@192.0.2.1:5060>",
        key=f"sip:{i}@192.0.2.1:5060",
        expires_at=now + 3600,
        call_id=f"call-{i}",
        cseq=i,
    )


async def main(path: str, count: int) -> None:
    store = SqliteStore(path)
    await store.open()
    now = time.time()
    for i in range(count):
        binding = contact(i, now)
        await store.apply(binding.aor, BindingChange(upsert=(binding,)), now)
        sys.stdout.write(f"{i}\n")
        sys.stdout.flush()
    await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
