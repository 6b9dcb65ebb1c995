"""Random identifiers: unique, from the CSPRNG, never shared with a forked child."""

from __future__ import annotations

import os

from sipwire.aio.ids import SecretIds


def test_secret_ids_are_unique_and_not_shared_with_a_forked_child() -> None:
    ids = SecretIds()
    tokens = {ids.token() for _ in range(5000)}
    assert len(tokens) == 5000 and all(len(t) == 16 for t in tokens)
    assert all(0.0 <= ids.random() < 1.0 for _ in range(1000))
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next token must not be the parent's next one
        os.write(write, ids.token().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    os.close(write)
    assert child != ids.token()
