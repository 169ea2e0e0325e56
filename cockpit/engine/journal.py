"""The append-only journal: every action with who, when, why, outcome and duration.

SQLite in WAL mode with ``synchronous=FULL``: a record is either fully on disk
or absent after a kill -9 (no torn records), and readers (``cockpit history``, a
watching pair) never block the writer. Triggers refuse UPDATE and DELETE so the
journal stays append-only even for a careless tool.
"""

from __future__ import annotations

import getpass
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from cockpit.engine.state import Revision
from cockpit.secrets import redact

SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
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
);
CREATE INDEX IF NOT EXISTS journal_env ON journal(service, env, id);
CREATE TABLE IF NOT EXISTS revisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service TEXT NOT NULL,
    env TEXT NOT NULL,
    number INTEGER NOT NULL,
    version TEXT NOT NULL,
    ts REAL NOT NULL,
    user TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS journal_no_update BEFORE UPDATE ON journal
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER IF NOT EXISTS journal_no_delete BEFORE DELETE ON journal
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER IF NOT EXISTS revisions_no_update BEFORE UPDATE ON revisions
    BEGIN SELECT RAISE(ABORT, 'revisions are append-only'); END;
CREATE TRIGGER IF NOT EXISTS revisions_no_delete BEFORE DELETE ON revisions
    BEGIN SELECT RAISE(ABORT, 'revisions are append-only'); END;
"""


class JournalWriteError(Exception):
    """A record could not be written (disk full, read-only file, lost directory). The
    message says which journal and why; callers must stop moving traffic rather than act
    without a record."""


def current_user() -> str:
    """The OS user who acts; ``COCKPIT_USER`` names a person behind a shared account."""
    try:
        os_user = getpass.getuser()
    except (KeyError, OSError):
        os_user = f"uid{os.getuid()}"
    named = os.environ.get("COCKPIT_USER", "").strip()
    return f"{named} ({os_user})" if named and named != os_user else os_user


@dataclass(frozen=True)
class Record:
    id: int
    ts: float
    user: str
    service: str
    env: str
    action: str
    reason: str
    outcome: str  # ok | refused | failed | started | info
    detail: str
    duration_ms: float | None
    phase: str | None
    stable_version: str | None
    canary_version: str | None
    target_version: str | None
    weight: int | None
    step: int | None
    revision: int | None

    def to_json(self) -> dict[str, object]:
        return asdict(self)


class Journal:
    def __init__(self, path: Path, read_only: bool = False) -> None:
        """``read_only`` (status, history) never writes: appends are dropped."""
        self.path = path
        self.read_only = read_only
        self._lock = threading.Lock()
        # One connection guarded by a lock: writes are tiny and must be ordered.
        if read_only:
            target = f"file:{path}?mode=ro" if path.exists() else "file::memory:"
            self._db = sqlite3.connect(
                target, uri=True, check_same_thread=False, isolation_level=None, timeout=10
            )
            if not path.exists():
                self._db.executescript(SCHEMA)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=10)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def append(
        self,
        *,
        service: str,
        env: str,
        action: str,
        outcome: str,
        user: str,
        reason: str = "",
        detail: str = "",
        duration_ms: float | None = None,
        phase: str | None = None,
        stable_version: str | None = None,
        canary_version: str | None = None,
        target_version: str | None = None,
        weight: int | None = None,
        step: int | None = None,
        revision: int | None = None,
        ts: float | None = None,
    ) -> int:
        if self.read_only:
            return 0
        row = (
            ts if ts is not None else time.time(),
            user,
            service,
            env,
            action,
            redact(reason),
            outcome,
            redact(detail),
            duration_ms,
            phase,
            stable_version,
            canary_version,
            target_version,
            weight,
            step,
            revision,
        )
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO journal (ts, user, service, env, action, reason, outcome, detail, duration_ms, phase,"
                " stable_version, canary_version, target_version, weight, step, revision)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            return int(cur.lastrowid or 0)

    def add_revision(self, service: str, env: str, revision: Revision) -> None:
        if self.read_only:
            return
        with self._lock:
            self._db.execute(
                "INSERT INTO revisions (service, env, number, version, ts, user) VALUES (?, ?, ?, ?, ?, ?)",
                (service, env, revision.number, revision.version, revision.ts, revision.user),
            )

    def revisions(self, service: str, env: str, limit: int = 10) -> list[Revision]:
        with self._lock:
            rows = self._db.execute(
                "SELECT number, version, ts, user FROM revisions WHERE service = ? AND env = ?"
                " ORDER BY id DESC LIMIT ?",
                (service, env, limit),
            ).fetchall()
        return [Revision(*row) for row in reversed(rows)]

    def records(
        self,
        service: str | None = None,
        env: str | None = None,
        limit: int = 200,
        text: str | None = None,
        after_id: int = 0,
    ) -> list[Record]:
        """The newest ``limit`` records (oldest first), optionally filtered."""
        where, args = ["id > ?"], [after_id]
        if service:
            where.append("service = ?")
            args.append(service)
        if env:
            where.append("env = ?")
            args.append(env)
        if text:
            where.append("(action LIKE ? OR reason LIKE ? OR detail LIKE ? OR user LIKE ? OR outcome LIKE ?)")
            args += [f"%{text}%"] * 5
        sql = f"SELECT * FROM journal WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, (*args, limit)).fetchall()
        return [Record(*row) for row in reversed(rows)]

    def last_snapshot(self, service: str, env: str) -> Record | None:
        """The newest record of ``env`` that carries a phase: the state it was last left in."""
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM journal WHERE service = ? AND env = ? AND phase IS NOT NULL ORDER BY id DESC LIMIT 1",
                (service, env),
            ).fetchone()
        return Record(*row) if row else None

    def iter_json(self, **filters: object) -> Iterator[str]:
        for record in self.records(**filters):  # type: ignore[arg-type]
            yield json.dumps(record.to_json())
