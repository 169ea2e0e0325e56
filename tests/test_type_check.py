"""CI type-checks the package: scripts/test.sh runs mypy right after ruff, configured in
pyproject.toml alone, strictly enough that a type error or a stray ignore fails the build.

mypy itself runs in scripts/test.sh (once, on the whole package), not here: these tests
guard the wiring, so that the step is not dropped or loosened without a failing test."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
MYPY = PYPROJECT["tool"]["mypy"]


def script_steps() -> list[str]:
    return [
        line.strip()
        for line in (ROOT / "scripts" / "test.sh").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_ci_runs_mypy_after_ruff_and_before_the_suite() -> None:
    steps = script_steps()
    # Plain `.venv/bin/mypy`: what is checked comes from [tool.mypy], and nothing
    # (`|| true`, `set +e`) lets a failure through: test.sh runs under `set -e`.
    assert ".venv/bin/mypy" in steps
    mypy_step = steps.index(".venv/bin/mypy")
    ruff = next(i for i, line in enumerate(steps) if line.startswith(".venv/bin/ruff check"))
    pytest_run = next(i for i, line in enumerate(steps) if "-m pytest" in line)
    assert ruff < mypy_step < pytest_run
    assert steps.index("set +e") > mypy_step


def test_mypy_checks_the_package_strictly_enough() -> None:
    assert MYPY["files"] == ["cockpit"]
    assert MYPY["python_version"] == "3.11"
    for flag in ("check_untyped_defs", "no_implicit_optional", "warn_unused_ignores", "warn_redundant_casts"):
        assert MYPY.get(flag) is True, flag
    assert "ignore-without-code" in MYPY.get("enable_error_code", [])
    for loosening in ("ignore_errors", "exclude", "disable_error_code", "follow_imports"):
        assert loosening not in MYPY, f"{loosening} at the top level hides errors in the whole package"


def test_missing_imports_are_ignored_only_per_package() -> None:
    """A global ignore_missing_imports would also hide a typo in an import or a dependency
    that is not installed; a package without stubs is named in an override instead."""
    assert "ignore_missing_imports" not in MYPY
    for override in MYPY.get("overrides", []):
        modules = override["module"] if isinstance(override["module"], list) else [override["module"]]
        assert all(not m.startswith("cockpit") and m not in ("*", "") for m in modules), modules
        assert set(override) <= {"module", "ignore_missing_imports"}, override


def test_mypy_is_installed_with_the_test_tools() -> None:
    test_extra = PYPROJECT["project"]["optional-dependencies"]["test"]
    assert any(re.match(r"mypy\s*>=\s*1\.10", requirement) for requirement in test_extra)
