"""The rooms stay clear: engine, plan and adapters never import Textual; the UI never an SDK."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "cockpit"
SDKS = {"docker", "kubernetes", "httpx", "prometheus_api_client", "aiohttp", "keyring"}


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def modules(*rooms: str) -> list[Path]:
    found = [p for room in rooms for p in sorted((PACKAGE / room).rglob("*.py"))]
    assert found, rooms
    return found


@pytest.mark.parametrize("path", modules("engine", "plan", "adapters", "demo"), ids=lambda p: p.name)
def test_engine_plan_and_adapters_never_import_textual(path: Path) -> None:
    assert "textual" not in imported_roots(path)


@pytest.mark.parametrize("path", modules("ui"), ids=lambda p: p.name)
def test_the_ui_never_calls_an_sdk(path: Path) -> None:
    assert not imported_roots(path) & SDKS
    assert "cockpit" not in imported_roots(path) or all(
        "adapters.local" not in line and "adapters.scrape" not in line
        for line in path.read_text().splitlines()
        if line.lstrip().startswith(("import ", "from "))
    )
