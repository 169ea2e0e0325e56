"""The package declares what the code needs, and only that.

* every third-party package imported under cockpit/ is a declared dependency (an import
  that is not declared works in a developer's venv and breaks ``pip install cockpit``);
* every declared dependency, in the main list or an extra, is imported by cockpit/
  (an SDK nothing imports only slows installs and widens the attack surface);
* every data file under cockpit/ is package data, and ``py.typed`` is one of them.

``scripts/check_install.sh`` proves the same from the other side: a real, non-editable
install into a fresh venv runs the demo.
"""

from __future__ import annotations

import ast
import os
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "cockpit"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# Extras that are not part of what cockpit runs: the tools its own tests need.
DEVELOPMENT_EXTRAS = {"test"}
# Dependencies cockpit runs as a program, never imports: distribution -> (executable, the
# module that runs it). Each is checked to be run by that module, so the exception cannot rot.
EXECUTABLES = {"squawk-cli": ("squawk", "cockpit/migrations/lint.py")}


def normalise(name: str) -> str:
    """A distribution name as PEP 503 compares them: ``Prometheus_Client`` is ``prometheus-client``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, requirement
    return normalise(match.group(1))


def third_party_imports(path: Path) -> set[str]:
    """The top-level names ``path`` imports that are neither stdlib nor cockpit, anywhere in
    the file (inside functions and ``if TYPE_CHECKING`` too: those run somewhere)."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return {root for root in roots if root not in sys.stdlib_module_names and root != "cockpit"}


def imported_distributions() -> dict[str, set[str]]:
    """Distribution name -> the modules under cockpit/ that import it."""
    providers = packages_distributions()
    found: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for root in third_party_imports(path):
            # An import nothing installed provides is a missing dependency too: name it as imported.
            for dist in providers.get(root, [root]):
                found.setdefault(normalise(dist), set()).add(str(path.relative_to(ROOT)))
    return found


def declared(*groups: str) -> set[str]:
    project = PYPROJECT["project"]
    requirements = list(project["dependencies"]) if "main" in groups else []
    for extra, items in project.get("optional-dependencies", {}).items():
        if extra in groups:
            requirements += items
    return {requirement_name(r) for r in requirements}


def shipped(name: str, pattern: str) -> bool:
    """Whether setuptools' package-data ``pattern`` takes ``name``: a ``*`` stays in its directory."""
    return len(PurePosixPath(name).parts) == len(PurePosixPath(pattern).parts) and PurePosixPath(name).match(
        pattern
    )


def runtime_extras() -> list[str]:
    return [e for e in PYPROJECT["project"].get("optional-dependencies", {}) if e not in DEVELOPMENT_EXTRAS]


def test_every_imported_package_is_declared() -> None:
    runtime = declared("main", *runtime_extras())
    undeclared = {dist: where for dist, where in imported_distributions().items() if dist not in runtime}
    assert undeclared == {}, "imported but not declared in pyproject.toml"


def test_nothing_is_declared_that_the_code_does_not_import() -> None:
    imported = set(imported_distributions())
    for group in ("main", *runtime_extras()):
        unused = declared(group) - imported - set(EXECUTABLES)
        assert unused == set(), f"declared in {group!r} but imported nowhere under cockpit/"


def test_every_executable_dependency_is_run_by_its_module() -> None:
    runtime = declared("main", *runtime_extras())
    for dist, (program, module) in EXECUTABLES.items():
        assert dist in runtime, f"{dist} is listed as an executable dependency but not declared"
        assert f'"{program}"' in (ROOT / module).read_text(), f"{module} does not run {program!r}"


def test_the_package_ships_its_type_hints() -> None:
    assert (PACKAGE / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["cockpit"]


def test_every_data_file_is_package_data() -> None:
    """A file the code reads at run time (a plan, a stylesheet, a theme) that no pattern
    names works from the source tree and is missing from the wheel."""
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["cockpit"]
    data = [
        (Path(folder) / name).relative_to(PACKAGE).as_posix()
        # followlinks: ui/builtin_themes is a link to the repository's themes/ folder.
        for folder, _, names in os.walk(PACKAGE, followlinks=True)
        if "__pycache__" not in Path(folder).parts
        for name in sorted(names)
        if not name.endswith((".py", ".pyc"))
    ]
    assert "ui/app.tcss" in data and "demo/plan.toml" in data and "ui/builtin_themes/dark.toml" in data
    unshipped = [name for name in data if not any(shipped(name, p) for p in patterns)]
    assert unshipped == []


def test_ci_checks_the_installed_package_before_the_suite() -> None:
    """.ci/run runs scripts/test.sh, which runs scripts/check_install.sh before pytest: a
    wheel missing a file fails CI even when every test passes in the editable install."""
    assert "scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
    steps = [
        line.strip()
        for line in (ROOT / "scripts" / "test.sh").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    check = steps.index("bash scripts/check_install.sh")
    pytest_run = next(i for i, line in enumerate(steps) if "-m pytest" in line)
    assert check < pytest_run
    script = (ROOT / "scripts" / "check_install.sh").read_text()
    assert 'pip install -q "$WORK/src"' in script and " -e " not in script  # not editable
