"""Checks of the plan's ``[[migrations]]`` and each environment's ``database`` that span
fields (the models check each value alone): run by the loader like its other semantic
checks, each problem reported at its field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cockpit.migrations.order import release_key
from cockpit.plan.models import Plan

Loc = tuple[str | int, ...]
Add = Callable[[Loc, str], None]


def check_migrations(plan: Plan, plan_dir: Path | None, add: Add) -> None:
    """``plan_dir``: where ``file`` actions are read from (None: the plan is not a file,
    e.g. text given directly, so their existence is not checked here)."""
    _steps(plan, plan_dir, add)
    for i, env in enumerate(plan.environments):
        if env.database is not None:
            _database(plan, i, add)


def _steps(plan: Plan, plan_dir: Path | None, add: Add) -> None:
    seen: dict[str, int] = {}
    for i, step in enumerate(plan.migrations):
        if step.name in seen:
            add(
                ("migrations", i, "name"),
                f"step {step.name!r} is defined twice (also migrations[{seen[step.name]}])",
            )
        else:
            seen[step.name] = i
        if step.phase == "contract":
            key = release_key(step.release)
            for j in range(i + 1, len(plan.migrations)):
                later = plan.migrations[j]
                if later.phase == "expand" and release_key(later.release) <= key:
                    add(
                        ("migrations", i, "phase"),
                        f"contract {step.name!r} of {step.release} comes before expand {later.name!r} of "
                        f"{later.release} (migrations[{j}]): a release's expand steps run before its contract",
                    )
                    break
        for direction in ("up", "down"):
            action = getattr(step, direction)
            if action is None or action.file is None:
                continue
            path = Path(action.file)
            if not path.is_absolute():
                if plan_dir is None:
                    continue
                path = plan_dir / path
            if not path.is_file():
                add(("migrations", i, direction, "file"), f"no such SQL file: {str(path)!r}")
        for direction in ("up", "down"):
            action = getattr(step, direction)
            if action is not None and action.command is not None:
                for var, entry in action.secret_env.items():
                    if entry not in plan.secrets:
                        add(
                            ("migrations", i, direction, "secret_env", var),
                            "names no [secrets] entry: add it there",
                        )


def _database(plan: Plan, i: int, add: Add) -> None:
    # Here, not at the top: cockpit.migrations' values import the plan models, which the
    # plan package (whose loader calls this module) is still defining at import time.
    from cockpit.migrations import urls

    env = plan.environments[i]
    db = env.database
    assert db is not None
    at: Loc = ("environments", i, "database")
    if urls.has_password(db.url):
        add(at + ("url",), "the URL holds a password: remove it and name a [secrets] entry in 'password'")
        return
    try:
        # A stand-in state dir: what matters is that the path is absolute once filled.
        target = urls.parse(urls.fill(db.url, service=plan.service.name, env=env.name, state_dir="/state"))
    except urls.BadDatabaseUrl as err:
        add(at + ("url",), str(err))
        return
    if isinstance(target, urls.SqliteUrl) and db.password is not None:
        add(at + ("password",), "a SQLite database takes no password")
    if db.password is not None and db.password not in plan.secrets:
        add(at + ("password",), "names no [secrets] entry: add it there")
