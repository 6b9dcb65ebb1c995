"""The modules of the server's packages import one another without a circle.

A circle among a package's modules, even one made only of imports under
``TYPE_CHECKING``, ties them together: none can be read, tested or moved
without the others. The graph is read from the source (every ``import`` and
``from ... import`` of a sibling module, at any depth, type-only ones
included), so nothing is imported to check it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import sipwire

SRC = Path(sipwire.__file__).resolve().parent
PACKAGES = ("registrar", "store", "server")


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """The dotted names an import statement of ``module`` may load."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = module.split(".")
        base = base[: len(base) - node.level + (1 if is_package else 0)]
        prefix = ".".join([*base, node.module] if node.module else base)
    else:
        prefix = node.module or ""
    return [prefix, *(f"{prefix}.{alias.name}" for alias in node.names)]


def import_graph(package: str) -> dict[str, set[str]]:
    """Module of ``sipwire.PACKAGE`` -> the modules of the same package it imports."""
    root = SRC / package
    modules = {_module_name(path): path for path in sorted(root.rglob("*.py"))}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in _imported(node, name, is_package):
                    if target in modules and target != name:
                        graph[name].add(target)
    return graph


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of ``graph`` (its modules in order, the first again at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state:
                found = visit(target)
                if found is not None:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found is not None:
                return found
    return None


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_circle_among_the_modules_of(package: str) -> None:
    graph = import_graph(package)
    assert len(graph) > 1
    circle = find_circle(graph)
    assert circle is None, " -> ".join(circle or [])


def test_a_circle_is_found() -> None:
    """The check itself: a type-only import back is a circle."""
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_relative_and_type_only_imports_are_read(tmp_path: Path) -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "from . import base\n"
        "if TYPE_CHECKING:\n"
        "    from .sqlite import SqliteStore\n"
    )
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names.update(_imported(node, "sipwire.store.common", False))
    assert {"sipwire.store.base", "sipwire.store.sqlite"} <= names
