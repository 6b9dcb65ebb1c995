"""``sipwire user add | del | list`` in subprocesses, on the store ``sipwire serve`` uses."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sipwire import UserAgent
from tests.cli.cli_helpers import SIPWIRE, one_line
from tests.server.helpers import Running, make_config

pytestmark = pytest.mark.timeout(60)


def user(*args: str, stdin: str | None = None, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SIPWIRE, "user", *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=cwd,
    )


def test_add_list_del_round_trip(tmp_path: Path) -> None:
    added = user("add", "alice", "--password", "-", stdin="s3cr3t-pass\n", cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "added alice@localhost"
    assert (tmp_path / "data" / "sipwire.db").exists()  # ./data by default
    other = user("add", "bob", "--password", "x", "--domain", "Example.COM", cwd=tmp_path)
    assert other.returncode == 0, other.stderr

    listed = user("list", cwd=tmp_path)
    assert listed.returncode == 0 and listed.stdout.split() == [
        "bob@example.com",
        "alice@localhost",
    ]
    only = user("list", "--domain", "localhost", cwd=tmp_path)
    assert only.stdout.split() == ["alice@localhost"]

    again = user("add", "alice", "--password", "-", stdin="changed\n", cwd=tmp_path)
    assert again.stdout.strip() == "changed the password of alice@localhost"

    # HA1s only: the password itself is nowhere in the data directory.
    for path in (tmp_path / "data").iterdir():
        assert b"s3cr3t-pass" not in path.read_bytes()
        assert b"changed" not in path.read_bytes()

    deleted = user("del", "alice", cwd=tmp_path)
    assert deleted.returncode == 0 and deleted.stdout.strip() == "deleted alice@localhost"
    missing = user("del", "alice", cwd=tmp_path)
    assert missing.returncode == 1
    assert one_line(missing.stderr) == "Error: no user alice@localhost"
    assert user("list", cwd=tmp_path).stdout.split() == ["bob@example.com"]


def test_data_and_store_options(tmp_path: Path) -> None:
    data = tmp_path / "elsewhere"
    assert (
        user("add", "carol", "--password", "p", "--data", str(data), cwd=tmp_path).returncode == 0
    )
    assert (data / "sipwire.db").exists()
    store = f"sqlite:{tmp_path / 'other.db'}"
    assert user("add", "dave", "--password", "p", "--store", store, cwd=tmp_path).returncode == 0
    assert user("list", "--store", store, cwd=tmp_path).stdout.split() == ["dave@localhost"]
    config = tmp_path / "sipwire.toml"
    config.write_text('data = "elsewhere"\ndomains = ["example.net"]\n')
    added = user("add", "erin", "--password", "p", "--config", str(config), cwd=tmp_path)
    assert added.stdout.strip() == "added erin@example.net"  # the configuration's domain
    listed = user("list", "--data", str(data), cwd=tmp_path).stdout.split()
    assert listed == ["erin@example.net", "carol@localhost"]


def test_errors_are_one_line(tmp_path: Path) -> None:
    no_password = user("add", "alice", cwd=tmp_path)  # stdin is not a terminal
    assert no_password.returncode == 2
    assert "--password -" in one_line(no_password.stderr)
    empty = user("add", "alice", "--password", "-", stdin="\n", cwd=tmp_path)
    assert empty.returncode == 2 and "no password" in one_line(empty.stderr)
    bad_name = user("add", "al ice", "--password", "x", cwd=tmp_path)
    assert bad_name.returncode == 2 and "not a SIP user name" in one_line(bad_name.stderr)
    unreachable = user("list", "--store", "redis://127.0.0.1:1/0", cwd=tmp_path)
    assert unreachable.returncode == 1
    assert one_line(unreachable.stderr).startswith("Error: store unreachable: ")
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text("nonsense = 1\n")
    broken = user("list", "--config", str(bad_config), cwd=tmp_path)
    assert broken.returncode == 1 and "unknown setting nonsense" in one_line(broken.stderr)


@pytest.mark.asyncio
async def test_a_user_added_on_the_command_line_registers(tmp_path: Path) -> None:
    """``sipwire user add`` then the server on the same data directory: it just works."""
    from sipwire.server.serve import Server

    added = user("add", "zoe", "--password", "-", stdin="zoe-pass\n", cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    config = make_config(tmp_path, None)  # data = tmp_path/data, the default store in it
    async with Server(config) as server:
        running = Running(server)
        async with UserAgent(
            "sip:zoe@localhost", password="zoe-pass", listen=["udp:127.0.0.1:0"]
        ) as ua:
            registration = await ua.register(running.registrar(), expires=600)
            assert registration.last_response is not None
            assert registration.last_response.status == 200
