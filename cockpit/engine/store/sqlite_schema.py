"""The SQLite journal's schema and its numbered migrations.

The schema is versioned with ``PRAGMA user_version`` and moved forward by the
numbered :data:`MIGRATIONS`, each in its own transaction. Migrations are append only:
a journal written by any earlier cockpit opens in this one.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable

from cockpit.engine.store.base import COLUMNS, GENESIS, chain_hash

# Queries name every column; nothing selects ``*``.
COLUMN_LIST = ", ".join(COLUMNS)

# Schema version 0: the journal as cockpit first wrote it, without a version number.
V0_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    user TEXT NOT NULL,
    service TEXT NOT NULL,
    env TEXT NOT NULL,
    action TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    duration_ms REAL,
    phase TEXT,
    stable_version TEXT,
    canary_version TEXT,
    target_version TEXT,
    weight INTEGER,
    step INTEGER,
    revision INTEGER
)""",
    "CREATE INDEX IF NOT EXISTS journal_env ON journal(service, env, id)",
    """CREATE TABLE IF NOT EXISTS revisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service TEXT NOT NULL,
    env TEXT NOT NULL,
    number INTEGER NOT NULL,
    version TEXT NOT NULL,
    ts REAL NOT NULL,
    user TEXT NOT NULL
)""",
)
TRIGGERS = (
    "CREATE TRIGGER IF NOT EXISTS journal_no_update BEFORE UPDATE ON journal"
    " BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS journal_no_delete BEFORE DELETE ON journal"
    " BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS revisions_no_update BEFORE UPDATE ON revisions"
    " BEGIN SELECT RAISE(ABORT, 'revisions are append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS revisions_no_delete BEFORE DELETE ON revisions"
    " BEGIN SELECT RAISE(ABORT, 'revisions are append-only'); END",
)


def _create_v0(db: sqlite3.Connection) -> None:
    """0 -> 1: the original tables (a fresh file gets them; a version-0 journal has them)."""
    for statement in (*V0_SCHEMA, *TRIGGERS):
        db.execute(statement)


def _add_hash_chain(db: sqlite3.Connection) -> None:
    """1 -> 2: a ``hash`` column, computed once for the records already there. The
    UPDATE trigger is dropped for this transaction only: if anything fails, the
    rollback brings it back with the old schema."""
    db.execute("ALTER TABLE journal ADD COLUMN hash TEXT NOT NULL DEFAULT ''")
    db.execute("DROP TRIGGER IF EXISTS journal_no_update")
    previous = GENESIS
    rows = db.execute(f"SELECT {COLUMN_LIST} FROM journal ORDER BY id").fetchall()
    for row in rows:
        previous = chain_hash(previous, tuple(row))
        db.execute("UPDATE journal SET hash = ? WHERE id = ?", (previous, row[0]))
    for statement in TRIGGERS:
        db.execute(statement)


ROLLOUT_LOG_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS rollout_logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service TEXT NOT NULL,
    env TEXT NOT NULL,
    target_version TEXT NOT NULL,
    started_ts REAL NOT NULL,
    first_record INTEGER NOT NULL,
    ended_ts REAL,
    outcome TEXT NOT NULL DEFAULT '',
    lines_seen INTEGER NOT NULL DEFAULT 0
)""",
    "CREATE INDEX IF NOT EXISTS rollout_logs_env ON rollout_logs(service, env, first_record)",
    """CREATE TABLE IF NOT EXISTS rollout_log_lines (
    rollout INTEGER NOT NULL REFERENCES rollout_logs(id),
    seq INTEGER NOT NULL,
    ts REAL NOT NULL,
    source TEXT NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (rollout, seq)
) WITHOUT ROWID""",
)


def _add_rollout_logs(db: sqlite3.Connection) -> None:
    """2 -> 3: the canary log lines kept with each rollout (not part of the hash chain:
    they are bounded evidence, pruned as rollouts pass, not records)."""
    for statement in ROLLOUT_LOG_SCHEMA:
        db.execute(statement)


# Numbered migrations: MIGRATIONS[n] moves a journal from version n to n + 1. Append only.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _create_v0,
    _add_hash_chain,
    _add_rollout_logs,
)
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite3.Connection) -> int:
    """Apply the migrations ``db`` lacks, each in its own IMMEDIATE transaction (so two
    processes opening the same old journal migrate it once). Returns the version reached.
    ``db`` must be in autocommit mode (``isolation_level=None``)."""
    while True:
        db.execute("BEGIN IMMEDIATE")
        try:
            version = schema_version(db)
            if version > SCHEMA_VERSION:
                raise sqlite3.DatabaseError(
                    f"schema version {version} is newer than this cockpit knows ({SCHEMA_VERSION}):"
                    " upgrade cockpit"
                )
            if version == SCHEMA_VERSION:
                db.execute("COMMIT")
                return version
            MIGRATIONS[version](db)
            db.execute(f"PRAGMA user_version = {version + 1}")
            db.execute("COMMIT")
        except BaseException:
            rollback(db)
            raise


def rollback(db: sqlite3.Connection) -> None:
    # SQLite rolls some failures (SQLITE_FULL, I/O errors) back by itself.
    if db.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
