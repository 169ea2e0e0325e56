"""No import cycles inside cockpit/ui.

The app imports the screens and the intents; they talk back with messages and a host
protocol, never by importing the app. Every import counts: module level, inside a
function (imported when first needed) and under ``TYPE_CHECKING`` - a cycle that only
the type checker sees is still two modules that cannot be understood one at a time.
"""

from __future__ import annotations

import ast
from pathlib import Path

UI = Path(__file__).resolve().parent.parent / "cockpit" / "ui"


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module an ``ImportFrom`` names (relative imports included)."""
    if node.level == 0:
        return node.module or ""
    base = importer.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph(root: Path = UI) -> dict[str, set[str]]:
    """Module -> the modules of ``root``'s package it imports, from the source (AST)."""
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                module = resolve(name, is_package, node)
                # `from cockpit.ui import keys` imports the module cockpit.ui.keys.
                targets = [
                    f"{module}.{a.name}" if f"{module}.{a.name}" in files else module for a in node.names
                ]
            graph[name] |= {t for t in targets if t in files and t != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path (first module repeated at the end), or ``None``."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(node: str) -> list[str] | None:
        path.append(node)
        on_path.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt in on_path:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in done and (cycle := visit(nxt)):
                return cycle
        path.pop()
        on_path.discard(node)
        done.add(node)
        return None

    for start in sorted(graph):
        if start not in done and (cycle := visit(start)):
            return cycle
    return None


def test_the_checker_sees_a_cycle_hidden_under_type_checking(tmp_path: Path) -> None:
    pkg = tmp_path / "cockpit" / "ui"
    (pkg / "screens").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "screens" / "__init__.py").write_text("")
    (pkg / "app.py").write_text("from cockpit.ui.screens.main import MainScreen\n")
    (pkg / "screens" / "main.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..app import App\n"
    )
    graph = import_graph(pkg)
    assert graph["cockpit.ui.screens.main"] == {"cockpit.ui.app"}
    assert find_cycle(graph) == ["cockpit.ui.app", "cockpit.ui.screens.main", "cockpit.ui.app"]


def test_the_graph_reads_the_real_imports() -> None:
    graph = import_graph()
    assert "cockpit.ui.screens.main" in graph["cockpit.ui.app"]
    assert {"cockpit.ui.intents", "cockpit.ui.keys", "cockpit.ui.host"} <= graph["cockpit.ui.screens.main"]
    assert "cockpit.ui.screens.confirm" in graph["cockpit.ui.app"]  # imported inside a method


def test_no_import_cycles_in_the_ui() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])
