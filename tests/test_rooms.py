"""The rooms stay clear.

* Only the UI imports Textual.
* The UI never imports an SDK, and from ``cockpit.adapters`` only the contract
  (``cockpit.adapters.base``): no concrete adapter, not even the registry that loads them.
* The engine reaches adapters only through the contract and the registry: it never
  imports a concrete adapter module (local, scrape, memory, a router...).
* Observations (``cockpit.model``) are the floor every layer stands on: the model imports
  nothing of the project and no third-party package, and the engine and the UI take
  those types from it, not through ``cockpit.adapters.base``.
* The test helpers shipped in the package (the contract suite, the in-memory backend)
  are never imported by the cockpit itself, and pytest only by the contract suite.

Imports are read from the source (``ast``), including those inside functions and
``TYPE_CHECKING`` blocks.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from cockpit import model

PACKAGE = Path(__file__).resolve().parent.parent / "cockpit"
SDKS = {"docker", "kubernetes", "httpx", "prometheus_api_client", "aiohttp", "keyring", "psycopg", "sqlite3"}
ENGINE_MAY_USE = ("cockpit.adapters.base", "cockpit.adapters.registry")
UI_MAY_USE = ("cockpit.adapters.base",)
TEST_HELPERS = ("cockpit.adapters.testing", "cockpit.adapters.memory")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, name: str | None = None) -> set[str]:
    """Every dotted name a module imports: ``import a.b`` gives ``a.b``; ``from a import b``
    gives ``a.b`` (``b`` may be a module or a name in ``a``; both read the same below).
    Relative imports are resolved against the module's package (``name``: the module's
    dotted name, by default found from its path)."""
    name = name or module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names |= {f"{base}.{alias.name}" for alias in node.names}
    return names


def roots(path: Path) -> set[str]:
    return {name.split(".")[0] for name in imported(path)}


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def adapter_imports(path: Path) -> set[str]:
    return {n for n in imported(path) if within(n, ("cockpit.adapters",))}


def modules(*rooms: str) -> list[Path]:
    """The modules of these packages (``engine``) and single modules (``headless.py``)."""
    found = [p for r in rooms for p in ([PACKAGE / r] if r.endswith(".py") else sorted((PACKAGE / r).rglob("*.py")))]
    assert found and all(p.is_file() for p in found), rooms
    return found


ALL = sorted(PACKAGE.rglob("*.py"))
OUTSIDE_UI = [p for p in ALL if "ui" not in p.relative_to(PACKAGE).parts[:1]]
ENGINE = modules("engine", "headless.py")
UI = modules("ui")


def rel(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


@pytest.mark.parametrize("path", OUTSIDE_UI, ids=rel)
def test_only_the_ui_imports_textual(path: Path) -> None:
    assert "textual" not in roots(path)


@pytest.mark.parametrize("path", UI, ids=rel)
def test_the_ui_never_calls_an_sdk(path: Path) -> None:
    assert not roots(path) & SDKS


@pytest.mark.parametrize("path", UI, ids=rel)
def test_the_ui_knows_adapters_only_by_their_contract(path: Path) -> None:
    concrete = {n for n in adapter_imports(path) if not within(n, UI_MAY_USE)}
    assert not concrete, f"{rel(path)} imports {sorted(concrete)}; the UI may use only {UI_MAY_USE}"


@pytest.mark.parametrize("path", ENGINE, ids=rel)
def test_the_engine_never_imports_a_concrete_adapter(path: Path) -> None:
    concrete = {n for n in adapter_imports(path) if not within(n, ENGINE_MAY_USE)}
    assert not concrete, f"{rel(path)} imports {sorted(concrete)}; the engine may use only {ENGINE_MAY_USE}"


@pytest.mark.parametrize("path", ENGINE + UI, ids=rel)
def test_engine_and_ui_take_observations_from_the_model(path: Path) -> None:
    through_base = {f"cockpit.adapters.base.{name}" for name in model.__all__} & imported(path)
    assert not through_base, f"{rel(path)} imports {sorted(through_base)}: import them from cockpit.model"


def test_the_model_stands_on_nothing() -> None:
    path = PACKAGE / "model.py"
    assert roots(path) <= {"__future__", "collections", "dataclasses", "enum", "typing"}, roots(path)


@pytest.mark.parametrize("path", ALL, ids=rel)
def test_the_cockpit_never_imports_its_test_helpers(path: Path) -> None:
    if module_name(path) in TEST_HELPERS:
        return
    helpers = {n for n in imported(path) if within(n, TEST_HELPERS)}
    assert not helpers, f"{rel(path)} imports {sorted(helpers)}, which are for test runs only"
    if module_name(path) != "cockpit.adapters.testing":
        assert not roots(path) & {"pytest", "pytest_asyncio"}


def test_the_import_reader_sees_what_the_rules_need(tmp_path: Path) -> None:
    # The rules above pass vacuously if imported() stops seeing imports: pin what it reads.
    names = imported(PACKAGE / "engine" / "session.py")
    assert "cockpit.adapters.registry" in names and "cockpit.model.LogLine" in names
    assert any(n.startswith("textual.") for n in imported(PACKAGE / "ui" / "app.py"))
    assert module_name(PACKAGE / "adapters" / "local" / "__init__.py") == "cockpit.adapters.local"
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text(
        "def later():\n"
        "    from ..adapters.local import LocalBackend\n"
        "    from . import machine\n"
        "    import cockpit.adapters.scrape\n"
    )
    assert imported(sneaky, "cockpit.engine.sneaky") == {
        "cockpit.adapters.local.LocalBackend",
        "cockpit.engine.machine",
        "cockpit.adapters.scrape",
    }
