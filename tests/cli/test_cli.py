"""The ``sipwire`` command line, driven through click's test runner."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

from click.testing import CliRunner

from sipwire.cli.main import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "invite.sip"


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0, result.output
    assert version("sipwire") in result.output


def test_parse_example_invite() -> None:
    result = CliRunner().invoke(main, ["parse", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert "a84b4c76e66710@pc33.atlanta.example.com" in result.output
    assert "314159 INVITE" in result.output
    assert "z9hG4bK776asdhds" in result.output
    assert "240 bytes" in result.output


def test_parse_from_stdin() -> None:
    result = CliRunner().invoke(main, ["parse", "-"], input=EXAMPLE.read_bytes())
    assert result.exit_code == 0, result.output
    assert "314159 INVITE" in result.output


def test_parse_garbage_exits_2() -> None:
    result = CliRunner().invoke(main, ["parse", "-"], input=b"this is not SIP\r\n\r\n")
    assert result.exit_code == 2
    assert "error: 400" in result.output
