"""The codebase keeps the shape DESIGN.md asks for: short modules and functions, no import
cycles, and a data layer that imports nothing above it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from support import REPO

SRC = REPO / "src" / "oneshot"
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60
# the data layer may use these leaf modules, which import nothing from the package
LEAVES = {"oneshot.errors", "oneshot.io", "oneshot.registry", "oneshot.zipread"}


def _files() -> list[Path]:
    return [p for d in (SRC, REPO / "tests", REPO / "benchmarks") for p in sorted(d.rglob("*.py"))]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_imports(path: Path) -> set[str]:
    """oneshot modules imported when ``path`` is imported (not inside functions or
    TYPE_CHECKING blocks)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.Try):
            nodes = node.body
        else:
            nodes = [node]
        for n in nodes:
            if isinstance(n, ast.ImportFrom):
                base = n.module or ""
                if n.level:
                    up = package.split(".")[: len(package.split(".")) - (n.level - 1)]
                    base = ".".join(up + ([base] if base else []))
                if base.startswith("oneshot"):
                    out.add(base)
                    out.update(f"{base}.{a.name}" for a in n.names)
            elif isinstance(n, ast.Import):
                out.update(a.name for a in n.names if a.name.startswith("oneshot"))
    known = {_module_name(p) for p in SRC.rglob("*.py")}
    return {m for m in out if m in known}


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(REPO)))
def test_modules_and_functions_are_short(path):
    text = path.read_text()
    assert text.count("\n") <= MAX_MODULE_LINES, f"{path.name}: {text.count(chr(10))} lines"
    long = [f"{n.name} ({n.end_lineno - n.lineno + 1} lines)" for n in ast.walk(ast.parse(text))
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and n.end_lineno - n.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"{path.name}: {long}"


def test_no_import_cycles():
    graph = {_module_name(p): _top_level_imports(p) for p in SRC.rglob("*.py")}
    for m in graph:  # a package imports its __init__ first: count that edge too
        parent = m.rpartition(".")[0]
        if parent.startswith("oneshot."):
            graph[m].add(parent)
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph.get(m, ())):
            if n == m or m.startswith(n + "."):  # a submodule imports its own package
                continue
            assert state.get(n) != 1, "import cycle: " + " -> ".join(stack + [m, n])
            if n not in state:
                visit(n, stack + [m])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])


def test_data_layer_imports_nothing_above_it():
    for p in (SRC / "data").rglob("*.py"):
        above = {m for m in _top_level_imports(p)
                 if not m.startswith("oneshot.data") and m not in LEAVES}
        assert not above, f"{p.name} imports {sorted(above)}"
    for leaf in LEAVES:
        p = SRC / (leaf.split(".")[1] + ".py")
        assert not _top_level_imports(p) - LEAVES, f"{leaf} imports the package"  # leaves only
