"""The values and the runner interface shared by the migration runners, the engine and the
screen. A runner speaks for one environment's database; the engine's guards decide."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, Protocol

from cockpit.plan.migrations import Migration

Direction = Literal["up", "down"]

RECORD_TABLE = "cockpit_migrations"
"""The table, in the target database, that records every step's state."""


class StepState(StrEnum):
    PENDING = "pending"  # never applied (or rolled back: see ROLLED_BACK)
    RUNNING = "running"  # a runner holds the lock and runs it now
    APPLIED = "applied"
    FAILED = "failed"  # up or down failed; with a transaction nothing of it stayed
    ROLLED_BACK = "rolled-back"  # applied, then undone by its down action
    INTERRUPTED = "interrupted"  # recorded as running, but no runner holds the lock: it died


class MigrationError(Exception):
    """A migration could not run; the message is shown as is (already redacted)."""


class DatabaseUnavailable(MigrationError):
    """The database cannot be reached (down, refused, bad credentials): says which and why."""


class LockHeld(MigrationError):
    """Another runner (another cockpit) holds the migration lock of this database."""

    def __init__(self, message: str, holder: str = "") -> None:
        super().__init__(message)
        self.holder = holder


@dataclass(frozen=True, slots=True)
class LintFinding:
    """One squawk finding on a SQL action: the rule, where, and what it says."""

    step: str
    direction: Direction
    rule: str  # e.g. "require-concurrent-index-creation"
    line: int  # 1-based, in the step's SQL
    column: int
    message: str
    level: Literal["error", "warning"] = "warning"
    help: str = ""

    def describe(self) -> str:
        return f"{self.step} ({self.direction}) line {self.line}: {self.rule}: {self.message}"


@dataclass(frozen=True, slots=True)
class StepRecord:
    """A row of :data:`RECORD_TABLE`: what the database says of one step."""

    name: str
    phase: str
    release: str
    state: StepState
    checksum: str  # of the up action as applied: a changed step is refused, not re-run
    started_at: float
    finished_at: float | None = None
    output: str = ""  # trimmed, secrets masked
    error: str | None = None
    by: str = ""  # user@host of the cockpit that ran it
    direction: Direction = "up"  # of the last run recorded
    transaction: bool = True  # the last run was one transaction (nothing of it stays if it dies)

    @property
    def duration(self) -> float | None:
        return None if self.finished_at is None else self.finished_at - self.started_at

    @property
    def settled(self) -> StepState:
        """The state the guards go by. An INTERRUPTED run in a transaction left nothing: an
        interrupted ``up`` is PENDING again, an interrupted ``down`` still APPLIED. Without a
        transaction it stays INTERRUPTED until a person resolves it."""
        if self.state is StepState.INTERRUPTED and self.transaction:
            return StepState.PENDING if self.direction == "up" else StepState.APPLIED
        if self.state is StepState.FAILED and self.transaction:
            return StepState.PENDING if self.direction == "up" else StepState.APPLIED
        return self.state


@dataclass(frozen=True, slots=True)
class StepRun:
    """The outcome of running one direction of one step."""

    name: str
    direction: Direction
    ok: bool
    started_at: float
    finished_at: float
    output: str = ""  # trimmed, secrets masked
    error: str | None = None  # why it failed, e.g. "canceling statement due to lock timeout"

    @property
    def duration(self) -> float:
        return self.finished_at - self.started_at


OnLine = Callable[[str], None]


class MigrationTarget(Protocol):
    """One environment's database, as the runners offer it. Every call is safe to await
    on the event loop (blocking drivers run in a worker thread)."""

    description: str
    """Where, for people: ``postgresql://cockpit@127.0.0.1:5433/shop`` (never a password)."""

    async def records(self) -> dict[str, StepRecord]:
        """Every recorded step by name; a ``running`` row whose runner is gone (the lock
        is free) comes back as ``INTERRUPTED``. Raises :class:`DatabaseUnavailable`."""
        ...

    async def run(
        self, step: Migration, direction: Direction, *, by: str, on_line: OnLine | None = None
    ) -> StepRun:
        """Take the database's migration lock (:class:`LockHeld` at once if another runner
        has it), re-read the record under it (an ``up`` already applied, or a ``down`` not
        applied, raises :class:`MigrationError` and runs nothing), record ``running``, run
        the action with the step's timeouts, record the outcome, release the lock."""
        ...

    async def resolve(self, step: Migration, state: Literal["applied", "pending"], *, by: str) -> StepRecord:
        """A person's word on an INTERRUPTED (or FAILED) step that ran without a transaction:
        record it as applied or pending. Takes the lock like :meth:`run`."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class StepView:
    """One step as the screen shows it."""

    name: str
    release: str
    phase: str
    kind: str  # sql, file, command
    reversible: bool
    state: StepState
    duration: float | None = None
    output: str = ""
    error: str | None = None
    lint: tuple[LintFinding, ...] = ()


@dataclass(frozen=True, slots=True)
class MigrationsView:
    """An environment's migrations now: the steps, what the keys would do, and why not."""

    database: str | None  # MigrationTarget.description; None: the environment has no database
    steps: tuple[StepView, ...] = ()
    error: str | None = None  # the database cannot be read now
    running: str | None = None  # the step running now
    next_step: str | None = None  # what "run next" would apply
    next_refused: str | None = None  # why "run next" is refused now (a guard), if it is
    last_applied: str | None = None  # what "roll back last" would undo
    rollback_refused: str | None = None  # why "roll back last" is refused now, if it is
    lint_error: str | None = None  # squawk could not run (not installed...)
    findings: tuple[LintFinding, ...] = field(default=())
