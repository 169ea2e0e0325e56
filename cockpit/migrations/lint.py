"""squawk, the PostgreSQL migration linter, on every ``sql``/``file`` action of the plan's
steps: each finding as a :class:`~cockpit.migrations.api.LintFinding` (rule, 1-based line
and column in the step's SQL, message). squawk is a program (``pip install squawk-cli``),
run once per batch with its JSON reporter; a missing or broken squawk is said plainly."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cockpit.migrations.api import Direction, LintFinding, MigrationError
from cockpit.migrations.records import sql_of
from cockpit.plan.migrations import Migration, MigrationAction

SQUAWK = "squawk"

EXCLUDED_RULES = ("require-lock-timeout", "require-statement-timeout")
"""The runner sets both timeouts itself on every step (``SET LOCAL``), so a step need not."""

TIMEOUT = 60.0


class LintUnavailable(MigrationError):
    """squawk cannot run: not installed, or it failed; says which and what to do."""


def squawk_path() -> str | None:
    """squawk on PATH, or beside this Python (a venv's bin/ is not always on PATH)."""
    found = shutil.which(SQUAWK)
    if found:
        return found
    beside = Path(sys.executable).parent / SQUAWK
    return str(beside) if beside.is_file() else None


def lint_steps(
    steps: Sequence[Migration],
    plan_dir: Path | None = None,
    *,
    squawk: str | None = None,
    timeout: float = TIMEOUT,
) -> list[LintFinding]:
    """Every finding on the SQL of ``steps`` (up and down), in plan order. Command actions
    are not SQL and are not linted. Raises :class:`LintUnavailable` (squawk missing or
    failing) and :class:`MigrationError` (a SQL file that cannot be read)."""
    actions: list[tuple[Migration, Direction, str]] = []
    for step in steps:
        both: tuple[tuple[Direction, MigrationAction | None], ...] = (("up", step.up), ("down", step.down))
        for direction, action in both:
            if action is not None and action.command is None:
                actions.append((step, direction, sql_of(action, plan_dir)))
    if not actions:
        return []
    program = squawk or squawk_path()
    if program is None:
        raise LintUnavailable(
            "squawk is not installed, so the SQL steps are not linted: pip install squawk-cli"
        )
    findings: list[LintFinding] = []
    with tempfile.TemporaryDirectory(prefix="cockpit-lint-") as tmp:
        # Steps in a transaction and steps without are judged differently (CONCURRENTLY...).
        for in_transaction in (True, False):
            batch = {
                str(Path(tmp) / f"{i:04d}-{step.name}-{direction}.sql"): (step, direction)
                for i, (step, direction, _) in enumerate(actions)
                if step.transaction is in_transaction
            }
            for i, (step, direction, text) in enumerate(actions):
                path = str(Path(tmp) / f"{i:04d}-{step.name}-{direction}.sql")
                if path in batch:
                    Path(path).write_text(text, encoding="utf-8")
            if batch:
                findings += _run(program, batch, in_transaction, timeout)
    order = {(s.name, d): i for i, (s, d, _) in enumerate(actions)}
    findings.sort(key=lambda f: (order[(f.step, f.direction)], f.line, f.column, f.rule))
    return findings


def _run(
    program: str, batch: dict[str, tuple[Migration, Direction]], in_transaction: bool, timeout: float
) -> list[LintFinding]:
    argv = [program, "--reporter", "json", "--exclude", ",".join(EXCLUDED_RULES)]
    argv.append("--assume-in-transaction" if in_transaction else "--no-assume-in-transaction")
    try:
        done = subprocess.run(
            argv + list(batch), capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        raise LintUnavailable(
            f"squawk is not installed ({program} not found): pip install squawk-cli"
        ) from None
    except subprocess.TimeoutExpired:
        raise LintUnavailable(f"squawk did not finish within {timeout:g} s") from None
    except OSError as err:
        raise LintUnavailable(f"squawk cannot run ({program}): {err.strerror or err}") from None
    try:
        items: Any = json.loads(done.stdout) if done.stdout.strip() else []
        if not isinstance(items, list):
            raise ValueError("not a list")
    except ValueError:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise LintUnavailable(
            f"squawk failed (exit {done.returncode}): {said[-1][:300] if said else 'no output'}"
        ) from None
    if done.returncode not in (0, 1):  # 1: findings; anything else is squawk's own trouble
        said = done.stderr.strip().splitlines()
        raise LintUnavailable(
            f"squawk failed (exit {done.returncode}): {said[-1][:300] if said else 'no output'}"
        )
    out = []
    for item in items:
        found = batch.get(str(item.get("file")))
        if found is None:
            continue
        step, direction = found
        out.append(
            LintFinding(
                step=step.name,
                direction=direction,
                rule=str(item.get("rule_name") or "unknown"),
                line=int(item.get("line") or 0) + 1,  # squawk counts from 0
                column=int(item.get("column") or 0) + 1,
                message=str(item.get("message") or ""),
                level="error" if str(item.get("level", "")).lower() == "error" else "warning",
                help=str(item.get("help") or ""),
            )
        )
    return out


NOT_POSTGRES = "squawk lints PostgreSQL's SQL and this database is not PostgreSQL: the steps are not linted"


def report(steps: Sequence[Migration], plan_dir: Path | None, postgres: bool = True) -> list[str]:
    """``cockpit check``'s lines for the migrations: each step, then squawk's findings (or
    why squawk could not run). Findings advise; they do not fail the check. ``postgres``:
    whether any environment's database is PostgreSQL (SQLite's SQL is not squawk's to judge:
    its trigger syntax reads as syntax errors)."""
    if not steps:
        return []
    lines = ["migrations"]
    for step in steps:
        kind = step.up.kind
        back = "irreversible" if step.irreversible else ("reversible" if step.down else "no down")
        tx = "" if step.transaction else ", no transaction"
        lines.append(f"  {step.name:<24} {step.phase:<8} {step.release:<10} {kind}, {back}{tx}")
    if not postgres:
        return [*lines, "  lint: no environment's database is PostgreSQL, so squawk does not lint the steps"]
    try:
        findings = lint_steps(steps, plan_dir)
    except MigrationError as err:
        return [*lines, f"  lint: {err}"]
    sql_actions = sum(1 for s in steps for a in (s.up, s.down) if a is not None and a.command is None)
    if not findings:
        lines.append(f"  lint: squawk found nothing in {sql_actions} SQL action(s)")
    for f in findings:
        lines.append(f"  lint: {f.step} ({f.direction}) line {f.line}:{f.column} {f.rule}: {f.message}")
        if f.help:
            lines.append(f"        {f.help}")
    return lines
