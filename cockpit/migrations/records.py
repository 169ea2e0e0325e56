"""The record table both SQL runners keep in the target database, and the rules they share:
what a step's checksum is, which record allows which run, how output is trimmed and masked."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cockpit.migrations.api import RECORD_TABLE, Direction, MigrationError, StepRecord, StepState
from cockpit.plan.migrations import Migration, MigrationAction

OUTPUT_LIMIT = 4000
"""Characters of a step's output kept in its record (the tail: errors come last)."""

COLUMNS = (
    "name",
    "phase",
    "release",
    "state",
    "direction",
    "transactional",
    "checksum",
    "started_at",
    "finished_at",
    "output",
    "error",
    "run_by",
)

CREATE_TABLE = f"""CREATE TABLE IF NOT EXISTS {RECORD_TABLE} (
    name TEXT PRIMARY KEY,
    phase TEXT NOT NULL,
    release TEXT NOT NULL,
    state TEXT NOT NULL,
    direction TEXT NOT NULL,
    transactional INTEGER NOT NULL,
    checksum TEXT NOT NULL,
    started_at DOUBLE PRECISION NOT NULL,
    finished_at DOUBLE PRECISION,
    output TEXT NOT NULL DEFAULT '',
    error TEXT,
    run_by TEXT NOT NULL DEFAULT ''
)"""

SELECT_ALL = f"SELECT {', '.join(COLUMNS)} FROM {RECORD_TABLE}"


def select_one(placeholder: str) -> str:
    return f"{SELECT_ALL} WHERE name = {placeholder}"


def upsert(placeholder: str) -> str:
    """Insert or replace a step's row (both SQLite and PostgreSQL take ON CONFLICT)."""
    values = ", ".join([placeholder] * len(COLUMNS))
    updates = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[1:])
    return f"INSERT INTO {RECORD_TABLE} ({', '.join(COLUMNS)}) VALUES ({values}) ON CONFLICT (name) DO UPDATE SET {updates}"


def to_row(r: StepRecord) -> tuple[Any, ...]:
    return (
        r.name,
        r.phase,
        r.release,
        r.state.value,
        r.direction,
        1 if r.transaction else 0,
        r.checksum,
        r.started_at,
        r.finished_at,
        r.output,
        r.error,
        r.by,
    )


def from_row(row: Sequence[Any]) -> StepRecord:
    name, phase, release, state, direction, transactional, checksum, started, finished, output, error, by = (
        row
    )
    try:
        st = StepState(state)
    except ValueError:
        raise MigrationError(f"{RECORD_TABLE} holds an unknown state {state!r} for step {name!r}") from None
    return StepRecord(
        name=name,
        phase=phase,
        release=release,
        state=st,
        checksum=checksum,
        started_at=float(started),
        finished_at=None if finished is None else float(finished),
        output=output or "",
        error=error,
        by=by or "",
        direction="down" if direction == "down" else "up",
        transaction=bool(transactional),
    )


def read_all(rows: Iterable[Sequence[Any]], runner_alive: bool) -> dict[str, StepRecord]:
    """Records by name; a ``running`` row whose runner is gone (``runner_alive`` False: the
    lock was free) reads back INTERRUPTED."""
    out: dict[str, StepRecord] = {}
    for row in rows:
        rec = from_row(row)
        if rec.state is StepState.RUNNING and not runner_alive:
            rec = interrupted(rec)
        out[rec.name] = rec
    return out


def interrupted(rec: StepRecord) -> StepRecord:
    return StepRecord(
        rec.name, rec.phase, rec.release, StepState.INTERRUPTED, rec.checksum, rec.started_at,
        None, rec.output, "the runner died during the step (its lock was free)", rec.by,
        rec.direction, rec.transaction,
    )  # fmt: skip


def check_can_run(step: Migration, direction: Direction, record: StepRecord | None) -> None:
    """Raise :class:`MigrationError` if the record (read under the lock) forbids this run."""
    state = record.settled if record else StepState.PENDING
    if state is StepState.INTERRUPTED:
        raise MigrationError(
            f"step {step.name!r} was interrupted ({record.direction if record else direction}) and ran without "
            f"a transaction: check the database, then record it with "
            f"'cockpit migrate --resolve {step.name} applied|pending'"
        )
    if state is StepState.RUNNING:
        raise MigrationError(f"step {step.name!r} is running (by {record.by if record else '?'})")
    if direction == "up" and state is StepState.APPLIED:
        raise MigrationError(f"step {step.name!r} is already applied")
    if direction == "down":
        if state is not StepState.APPLIED:
            raise MigrationError(f"step {step.name!r} is not applied ({state.value}): nothing to roll back")
        if not step.reversible:
            why = "irreversible" if step.irreversible else "has no down action"
            raise MigrationError(f"step {step.name!r} cannot be rolled back: it is {why}")


def action_of(step: Migration, direction: Direction) -> MigrationAction:
    action = step.up if direction == "up" else step.down
    if action is None:
        raise MigrationError(f"step {step.name!r} has no down action")
    return action


def sql_of(action: MigrationAction, plan_dir: Path | None) -> str:
    """The SQL of a ``sql`` or ``file`` action (a file is read relative to the plan's folder)."""
    if action.sql is not None:
        return action.sql
    assert action.file is not None
    path = Path(action.file)
    if not path.is_absolute():
        if plan_dir is None:
            raise MigrationError(f"the SQL file {action.file!r} is relative and the plan's folder is unknown")
        path = plan_dir / path
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        why = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise MigrationError(f"the SQL file {str(path)!r} cannot be read: {why}") from None


def checksum(step: Migration, plan_dir: Path | None) -> str:
    """sha256 of the up action as it would run (a file's content, not its name)."""
    up = step.up
    try:
        body: object = sql_of(up, plan_dir) if up.command is None else {"command": up.command, "env": up.env}
    except MigrationError:
        body = {"file": up.file}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def fill_placeholders(words: Sequence[str], values: Mapping[str, str]) -> list[str]:
    out = []
    for word in words:
        for key, value in values.items():
            word = word.replace("{" + key + "}", value)
        out.append(word)
    return out


def mask(text: str, secrets: Iterable[str]) -> str:
    """Every secret value in ``text`` replaced by ``***`` (longest first, so a secret that
    contains another is masked whole)."""
    for value in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(value, "***")
    return text


def trim(text: str, limit: int = OUTPUT_LIMIT) -> str:
    """The tail of ``text`` within ``limit`` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    cut = len(text) - limit
    return f"[{cut} characters cut]\n" + text[cut:]


def statements(sql: str, complete: Any) -> list[str]:
    """Split a script into statements with ``complete(buffer) -> bool`` (sqlite3's
    ``complete_statement`` knows quotes, comments and triggers' BEGIN...END)."""
    out: list[str] = []
    buf = ""
    for ch in sql:
        buf += ch
        if ch == ";" and complete(buf):
            if buf.strip().strip(";").strip():
                out.append(buf.strip())
            buf = ""
    if buf.strip() and not _only_comments(buf):
        out.append(buf.strip())
    return out


def _only_comments(text: str) -> bool:
    lines = [ln.strip() for ln in text.strip().splitlines()]
    return all(not ln or ln.startswith("--") for ln in lines)
