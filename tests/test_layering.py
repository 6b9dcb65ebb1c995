"""The sans-I/O core (message, transaction, transport) imports nothing that
touches the clock, the network or randomness. (import-linter checks the same;
this test keeps the rule visible to anyone who runs only pytest.)"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "src" / "sipwire"
CORE_PACKAGES = (
    "message",
    "transport",
    "transaction",
    "auth",
    "sdp",
    "dialog",
    "core",
    "registrar",
    "media",
    "proxy",
)
FORBIDDEN = {"asyncio", "socket", "ssl", "time", "random", "selectors", "threading"}


def _imported_roots(tree: ast.AST) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_core_imports_no_io() -> None:
    files = sorted(p for pkg in CORE_PACKAGES for p in (PACKAGE_DIR / pkg).glob("*.py"))
    assert files, f"no modules found under {PACKAGE_DIR}"
    offenders = {
        str(path.relative_to(PACKAGE_DIR)): sorted(
            _imported_roots(ast.parse(path.read_text(encoding="utf-8"))) & FORBIDDEN
        )
        for path in files
    }
    assert {name: bad for name, bad in offenders.items() if bad} == {}
