"""One environment's database as a :class:`~cockpit.migrations.api.MigrationTarget`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cockpit.migrations import urls
from cockpit.migrations.api import DatabaseUnavailable, MigrationTarget
from cockpit.migrations.command import CommandExecutor
from cockpit.migrations.runner import SecretLookup
from cockpit.plan.migrations import Database


def open_target(
    db: Database,
    *,
    service: str,
    env: str,
    state_dir: Path | str,
    secret: SecretLookup,
    plan_dir: Path | None = None,
    executor: CommandExecutor | None = None,
) -> MigrationTarget:
    """The runner for ``db`` (placeholders filled). Connects lazily: a database that is down
    raises :class:`~cockpit.migrations.api.DatabaseUnavailable` from ``records()``/``run()``,
    never here. ``secret(name)`` resolves ``[secrets]`` entries (the PostgreSQL password,
    commands' ``secret_env``); ``plan_dir`` is where ``file`` actions are read from;
    ``executor`` runs ``command`` actions (default: a process on this host). Raises
    :class:`~cockpit.migrations.urls.BadDatabaseUrl` for a URL that cannot be used and
    :class:`~cockpit.migrations.api.DatabaseUnavailable` when psycopg is not installed."""
    target = urls.parse(urls.fill(db.url, service=service, env=env, state_dir=state_dir))
    common: dict[str, Any] = dict(
        db=db, service=service, env=env, secret=secret, plan_dir=plan_dir, executor=executor
    )
    if isinstance(target, urls.SqliteUrl):
        from cockpit.migrations.sqlite import SqliteTarget

        return SqliteTarget(target.path, **common)
    try:
        from cockpit.migrations.postgres import PostgresTarget  # psycopg is imported only here
    except ImportError as err:
        raise DatabaseUnavailable(
            f"{target.description} needs psycopg 3 ({err.name or err} is not installed):"
            " pip install 'cockpit[migrations]'"
        ) from None

    return PostgresTarget(target, **common)
