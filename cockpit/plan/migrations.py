"""Database migrations in the plan: where each environment's database is, and the ordered
expand/contract steps of each release (pgroll's and reshape's model).

``expand`` steps are applied at the start of a rollout, before the release's version is
deployed at all; ``contract`` steps only once it holds 100 % and no process of an older
version is left. The plan holds
names of ``[secrets]`` entries, never a password.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from cockpit.plan.base import Strict
from cockpit.units import PositiveDuration

MIGRATION_NAME = r"^[a-z0-9]([a-z0-9_-]{0,62}[a-z0-9])?$"

Phase = Literal["expand", "contract"]


class Database(Strict):
    """One environment's database: the target of its migration steps."""

    url: str
    """``postgresql://user@host:port/dbname`` (psycopg 3) or ``sqlite:///absolute/path.db``
    (``sqlite:///{state_dir}/...`` and ``{env}``/``{service}`` placeholders are filled in).
    A password in the URL is refused: name a ``[secrets]`` entry in ``password``."""
    password: str | None = None
    """Name of a ``[secrets]`` entry holding the PostgreSQL password."""
    lock_timeout: PositiveDuration = 2.0
    """Default ``lock_timeout`` of every SQL step: a DDL blocked behind a lock fails after
    this instead of queueing every query of the live service behind it."""
    statement_timeout: PositiveDuration = 60.0
    """Default ``statement_timeout`` of every SQL step."""
    contract: Literal["manual", "after-promote"] = "manual"
    """When the release's contract steps run here: from the migrations screen (or
    ``cockpit migrate``) once the guard allows it, or on their own right after a promote
    has left the new version alone at 100 %."""


class MigrationAction(Strict):
    """What one direction (up or down) of a step runs: exactly one of ``sql``, ``file``,
    ``command``."""

    sql: str | None = None
    """SQL run by the cockpit's own runner (psycopg 3 or sqlite3)."""
    file: str | None = None
    """A SQL file, relative to the plan file."""
    command: list[str] | None = Field(default=None, min_length=1)
    """Any migration CLI (alembic, pgroll, flyway...), run as a one-off task: a process for
    the local backend, a container for Docker, a Job for Kubernetes. ``{version}``, ``{env}``
    and ``{service}`` placeholders are filled in."""
    env: dict[str, str] = Field(default_factory=dict)
    """Environment variables of the command."""
    secret_env: dict[str, str] = Field(default_factory=dict)
    """Environment variables whose values are secrets: ``{VAR = "name"}`` with ``name`` a
    ``[secrets]`` entry; resolved when run, masked in its output."""
    timeout: PositiveDuration = 600.0
    """How long a command may run before it is stopped and the step failed."""

    @model_validator(mode="after")
    def _exactly_one(self) -> MigrationAction:
        chosen = [k for k in ("sql", "file", "command") if getattr(self, k) is not None]
        if len(chosen) != 1:
            raise ValueError(
                f"a migration action needs exactly one of sql, file, command (found: {', '.join(chosen) or 'none'})"
            )
        if (self.env or self.secret_env) and self.command is None:
            raise ValueError("env and secret_env belong to a command action")
        return self

    @property
    def kind(self) -> Literal["sql", "file", "command"]:
        return "sql" if self.sql is not None else "file" if self.file is not None else "command"


class Migration(Strict):
    """One step of a release's schema change (``[[migrations]]`` tables, applied in order)."""

    name: str = Field(pattern=MIGRATION_NAME)
    """Unique, recorded in the target database once applied; never rename an applied one."""
    release: str
    """The version that needs this step: its expand steps run before that version takes
    traffic, its contract steps once it holds 100 % and the old version is gone."""
    phase: Phase
    up: MigrationAction
    down: MigrationAction | None = None
    """How to undo ``up``; without it the step cannot be rolled back."""
    irreversible: bool = False
    """Once applied, the step can never be rolled back (data is gone), even with a ``down``."""
    transaction: bool = True
    """Run ``up``/``down`` in one transaction (SQL). False for statements that refuse one,
    such as ``CREATE INDEX CONCURRENTLY``; such a step that fails half-way needs a human."""
    lock_timeout: PositiveDuration | None = None
    """This step's ``lock_timeout`` (default: the database's)."""
    statement_timeout: PositiveDuration | None = None
    """This step's ``statement_timeout`` (default: the database's)."""

    @model_validator(mode="after")
    def _down_consistent(self) -> Migration:
        if self.irreversible and self.down is not None:
            raise ValueError("an irreversible step has no down action")
        return self

    @property
    def reversible(self) -> bool:
        return self.down is not None and not self.irreversible
