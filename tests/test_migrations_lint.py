"""squawk on the plan's SQL steps: a dangerous step gives its rule and line, a safe one
does not, and a missing squawk is said plainly (here and in `cockpit check`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cockpit.cli import cli
from cockpit.migrations import lint
from cockpit.migrations.lint import LintUnavailable, lint_steps
from cockpit.plan.migrations import Migration


def step(name: str, up: dict[str, Any], **kw: Any) -> Migration:
    return Migration.model_validate({"name": name, "release": "1.1.0", "phase": "expand", "up": up, **kw})


def test_blocking_index_gives_its_rule_and_line(tmp_path: Path) -> None:
    (tmp_path / "idx.sql").write_text(
        "-- the note column\nALTER TABLE orders ADD COLUMN note text;\n\nCREATE INDEX orders_note ON orders (note);\n"
    )
    steps = [
        step("note", {"file": "idx.sql"}),
        step(
            "safe",
            {"sql": "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_id ON orders (id);"},
            transaction=False,
        ),
        step("by-cli", {"command": ["alembic", "upgrade", "head"]}),
    ]
    findings = lint_steps(steps, tmp_path)
    blocking = [f for f in findings if f.rule == "require-concurrent-index-creation"]
    assert [(f.step, f.direction, f.line, f.column) for f in blocking] == [("note", "up", 4, 1)]
    assert "table updates are blocked" in blocking[0].message and "concurrently" in blocking[0].help
    assert not [f for f in findings if f.step == "safe"]
    # The runner sets both timeouts itself, so squawk is not asked to demand them.
    assert not [f for f in findings if f.rule in lint.EXCLUDED_RULES]


def test_missing_squawk_is_said_plainly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    steps = [step("one", {"sql": "CREATE INDEX i ON orders (id);"})]
    with pytest.raises(LintUnavailable, match="pip install squawk-cli"):
        lint_steps(steps, squawk=str(tmp_path / "no-squawk-here"))
    monkeypatch.setattr(lint, "squawk_path", lambda: None)
    with pytest.raises(LintUnavailable, match=r"squawk is not installed.*pip install squawk-cli"):
        lint_steps(steps)
    assert lint_steps([step("cli", {"command": ["true"]})]) == []  # nothing to lint needs no squawk


PLAN = """
[service]
name = "shop"

[[environments]]
name = "dev"
initial_version = "1.0.0"
  [environments.database]
  url = "postgresql://shop@127.0.0.1:5432/shop"
  [environments.backend]
  adapter = "local"
    [environments.backend.options]
    versions = ["1.0.0", "1.1.0"]

[strategy.canary]
steps = [{ set_weight = 50 }]

[[migrations]]
name = "orders-index"
release = "1.1.0"
phase = "expand"
up = { sql = "ALTER TABLE orders ADD COLUMN note text;\\nCREATE INDEX orders_note ON orders (note);" }
"""


def test_cockpit_check_shows_findings_or_why_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    result = CliRunner().invoke(cli, ["check", str(plan)])
    assert result.exit_code == 0, result.output
    assert "orders-index (up) line 2:1 require-concurrent-index-creation" in result.output
    monkeypatch.setattr(lint, "squawk_path", lambda: None)
    result = CliRunner().invoke(cli, ["check", str(plan)])
    assert result.exit_code == 0 and "lint: squawk is not installed" in result.output
    assert "pip install squawk-cli" in result.output
    # SQLite's SQL is not squawk's to judge: said, not linted into false syntax errors.
    plan.write_text(PLAN.replace('"postgresql://shop@127.0.0.1:5432/shop"', '"sqlite:///{state_dir}/dev.db"'))
    monkeypatch.undo()
    result = CliRunner().invoke(cli, ["check", str(plan)])
    assert result.exit_code == 0, result.output
    assert "lint: no environment's database is PostgreSQL, so squawk does not lint the steps" in result.output
    assert "require-concurrent-index-creation" not in result.output
