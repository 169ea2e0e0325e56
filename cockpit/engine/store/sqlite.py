"""The SQLite store: the journal in one file beside the cockpit's state.

SQLite in WAL mode with ``synchronous=FULL``: a record is either fully on disk
or absent after a kill -9 (no torn records), and readers (``cockpit history``, a
watching pair) never block the writer. Triggers refuse UPDATE and DELETE so the
journal stays append-only even for a careless tool; a hash chain makes a careful
rewrite (triggers dropped first) detectable by :meth:`SQLiteStore.verify`.

Only the owner may read it: the directory is 0700 and the database, ``-wal`` and
``-shm`` files are 0600 (a reason can say more than its author meant to share).
Every text field is passed through :func:`cockpit.secrets.redact` before it is
written. Every write that fails raises :class:`JournalWriteError`, never a raw
``sqlite3`` error.

The schema and its numbered migrations live in :mod:`cockpit.engine.store.sqlite_schema`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from cockpit.engine.state import Revision
from cockpit.engine.store.base import (
    COLUMNS,
    GENESIS,
    BrokenLink,
    JournalWriteError,
    KeptLine,
    Record,
    RolloutLog,
    chain_hash,
)
from cockpit.engine.store.sqlite_schema import COLUMN_LIST, TRIGGERS, migrate, schema_version
from cockpit.engine.store.sqlite_schema import rollback as _rollback
from cockpit.secrets import redact

T = TypeVar("T")

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
SIDE_FILES = ("", "-wal", "-shm")  # SQLite's database, write-ahead log and shared-memory index

TEXT_COLUMNS = frozenset(
    {"user", "service", "env", "action", "reason", "outcome", "detail", "phase"}
    | {"stable_version", "canary_version", "target_version"}
)
FLOAT_COLUMNS = frozenset({"ts", "duration_ms"})


def _probe_writable(db: sqlite3.Connection) -> None:
    """Write the schema version again: SQLite opens a file it may not write read-only
    without a word, and a cockpit must learn that it cannot journal before it acts."""
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute(f"PRAGMA user_version = {schema_version(db)}")
        db.execute("COMMIT")
    except BaseException:
        _rollback(db)
        raise


def _reason(err: BaseException) -> str:
    """The OS or SQLite reason, with the SQLite error code when there is one; redacted
    because a message can quote what it failed on."""
    code = getattr(err, "sqlite_errorname", None)
    text = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
    return redact(f"{text} ({code})" if code else text)


def make_private(path: Path) -> None:
    """Narrow the journal's directory to 0700 and its files to 0600, fixing a journal
    written by an older cockpit (0644 in a 0755 dir). A sticky directory (/tmp) is
    shared on purpose and a directory we do not own is not ours to change: there, the
    files' own 0600 is the protection."""
    parent = path.parent
    info = parent.stat()
    if not info.st_mode & stat.S_ISVTX and info.st_uid == os.geteuid():
        os.chmod(parent, PRIVATE_DIR)
    for suffix in SIDE_FILES:
        with contextlib.suppress(FileNotFoundError):
            os.chmod(f"{path}{suffix}", PRIVATE_FILE)


def _normalise(column: str, value: str | float | None) -> str | float | None:
    """The value as SQLite will hand it back, so the hash written is the hash re-read:
    text is redacted, REAL columns hold floats (NaN becomes NULL), INTEGER columns ints."""
    if value is None:
        return None
    if column in TEXT_COLUMNS:
        return redact(str(value))
    if column in FLOAT_COLUMNS:
        number = float(value)
        return None if math.isnan(number) else number  # SQLite stores NaN as NULL
    return int(value)


class SQLiteStore:
    """The :class:`~cockpit.engine.store.base.Store` kept in one SQLite file at ``path``."""

    def __init__(self, path: Path, read_only: bool = False) -> None:
        """``read_only`` (status, history) never writes: appends are dropped. Opening for
        writing raises :class:`JournalWriteError` when the journal cannot be written."""
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
                migrate(self._db)
            return
        try:
            self._db = self._open_for_writing(path)
        except (sqlite3.Error, OSError) as err:
            raise JournalWriteError(f"cannot open the journal {path} for writing: {_reason(err)}") from None

    @staticmethod
    def _open_for_writing(path: Path) -> sqlite3.Connection:
        # The umask covers every file SQLite creates now (database, -wal, -shm); it is
        # process-wide, so it is held only around creation. make_private then fixes
        # what already existed with looser modes.
        old_umask = os.umask(0o077)
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
            db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=10)
            try:
                mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise sqlite3.OperationalError(f"the journal cannot use WAL mode here (got {mode})")
                db.execute("PRAGMA synchronous=FULL")
                migrate(db)
                _probe_writable(db)
                # Triggers dropped by hand come back (the hash chain still shows any rewrite).
                for statement in TRIGGERS:
                    db.execute(statement)
                make_private(path)
            except BaseException:
                db.close()
                raise
        finally:
            os.umask(old_umask)
        return db

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def settings(self) -> dict[str, object]:
        """The durability settings of this connection, read back from SQLite."""
        with self._lock:
            return {
                "journal_mode": self._db.execute("PRAGMA journal_mode").fetchone()[0],
                "synchronous": self._db.execute("PRAGMA synchronous").fetchone()[0],
                "schema_version": schema_version(self._db),
            }

    def _write(self, what: str, work: Callable[[], T]) -> T:
        """Run ``work`` in one IMMEDIATE transaction; any failure is rolled back and
        raised as :class:`JournalWriteError` naming the journal and the reason."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    result = work()
                    self._db.execute("COMMIT")
                except BaseException:
                    _rollback(self._db)
                    raise
            except (sqlite3.Error, OSError) as err:
                # The whole message is redacted: ``what`` names the action being written.
                raise JournalWriteError(
                    redact(f"cannot write {what} to the journal {self.path}: {_reason(err)}")
                ) from None
        return result

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
        given: dict[str, str | float | None] = {  # int is a float to mypy (PEP 484 promotion)
            "ts": ts if ts is not None else time.time(),
            "user": user,
            "service": service,
            "env": env,
            "action": action,
            "reason": reason,
            "outcome": outcome,
            "detail": detail,
            "duration_ms": duration_ms,
            "phase": phase,
            "stable_version": stable_version,
            "canary_version": canary_version,
            "target_version": target_version,
            "weight": weight,
            "step": step,
            "revision": revision,
        }
        fields = {column: _normalise(column, value) for column, value in given.items()}
        return self._write(f"a {action!r} record", lambda: self._insert(fields))

    def _insert(self, fields: Mapping[str, object]) -> int:
        """Insert one record linked to the last one (inside the caller's transaction)."""
        last = self._db.execute("SELECT id, hash FROM journal ORDER BY id DESC LIMIT 1").fetchone()
        seq = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'journal'").fetchone()
        # The id is chosen here because the hash covers it; never below a removed tail's.
        new_id = max(last[0] if last else 0, seq[0] if seq else 0) + 1
        values = (new_id, *(fields[column] for column in COLUMNS[1:]))
        digest = chain_hash(last[1] if last else GENESIS, values)
        self._db.execute(
            f"INSERT INTO journal ({COLUMN_LIST}, hash) VALUES ({', '.join('?' * (len(COLUMNS) + 1))})",
            (*values, digest),
        )
        return new_id

    def add_revision(self, service: str, env: str, revision: Revision) -> None:
        if self.read_only:
            return
        row = (
            redact(service),
            redact(env),
            int(revision.number),
            redact(revision.version),
            float(revision.ts),
            redact(revision.user),
        )
        self._write(
            f"revision {revision.number}",
            lambda: self._db.execute(
                "INSERT INTO revisions (service, env, number, version, ts, user) VALUES (?, ?, ?, ?, ?, ?)",
                row,
            ),
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
        before_id: int | None = None,
    ) -> list[Record]:
        """The newest ``limit`` records (oldest first), optionally filtered."""
        where: list[str] = ["id > ?"]
        args: list[int | str] = [after_id]  # the query's parameters, in placeholder order
        if before_id is not None:
            where.append("id < ?")
            args.append(before_id)
        if service:
            where.append("service = ?")
            args.append(service)
        if env:
            where.append("env = ?")
            args.append(env)
        if text:
            where.append("(action LIKE ? OR reason LIKE ? OR detail LIKE ? OR user LIKE ? OR outcome LIKE ?)")
            args += [f"%{text}%"] * 5
        sql = f"SELECT {COLUMN_LIST} FROM journal WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, (*args, limit)).fetchall()
        return [Record(*row) for row in reversed(rows)]

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM journal").fetchone()[0])

    def last_snapshot(self, service: str, env: str) -> Record | None:
        """The newest record of ``env`` that carries a phase: the state it was last left in."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {COLUMN_LIST} FROM journal WHERE service = ? AND env = ? AND phase IS NOT NULL"
                " ORDER BY id DESC LIMIT 1",
                (service, env),
            ).fetchone()
        return Record(*row) if row else None

    def verify(self) -> BrokenLink | None:
        """Walk the hash chain: the first broken link (a record rewritten, records
        missing in the middle or at the end), or None when every record is as written.
        A rewrite that recomputes every later hash is caught only against a head hash
        kept elsewhere (``cockpit history --verify`` prints it)."""
        with self._lock:
            version = schema_version(self._db)
            if version < 2:
                return BrokenLink(
                    0,
                    f"schema version {version} has no hash chain yet: open the journal once with a"
                    " cockpit that writes (it migrates) before verifying",
                )
            return self._walk_chain()

    def _walk_chain(self) -> BrokenLink | None:
        previous_id, previous_hash = 0, GENESIS
        cursor = self._db.execute(f"SELECT {COLUMN_LIST}, hash FROM journal ORDER BY id")
        for row in cursor:
            values, stored = tuple(row[:-1]), row[-1]
            record_id = values[0]
            if record_id != previous_id + 1:
                missing = (
                    previous_id + 1 if record_id == previous_id + 2 else f"{previous_id + 1}..{record_id - 1}"
                )
                return BrokenLink(record_id, f"record(s) {missing} before it are missing (deleted)")
            if stored != chain_hash(previous_hash, values):
                return BrokenLink(record_id, "its content does not match its hash (the record was rewritten)")
            previous_id, previous_hash = record_id, stored
        seq = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'journal'").fetchone()
        if seq and seq[0] > previous_id:
            return BrokenLink(
                previous_id + 1, f"records after {previous_id} are missing (the tail was deleted)"
            )
        return None

    def head(self) -> str:
        """The hash of the newest record (GENESIS when empty): note it elsewhere to pin the past."""
        with self._lock:
            row = self._db.execute("SELECT hash FROM journal ORDER BY id DESC LIMIT 1").fetchone()
        return str(row[0]) if row else GENESIS

    # ------------------------------------------------------------------ rollout logs

    def open_rollout_log(
        self, service: str, env: str, target_version: str, first_record: int, ts: float, retain: int = 20
    ) -> int:
        if self.read_only:
            return 0
        row = (redact(service), redact(env), redact(target_version), float(ts), int(first_record))

        def work() -> int:
            cursor = self._db.execute(
                "INSERT INTO rollout_logs (service, env, target_version, started_ts, first_record)"
                " VALUES (?, ?, ?, ?, ?)",
                row,
            )
            # Bounded across rollouts too: the lines of all but the newest ``retain`` go.
            self._db.execute(
                "DELETE FROM rollout_log_lines WHERE rollout IN (SELECT id FROM rollout_logs"
                " WHERE service = ? AND env = ? ORDER BY id DESC LIMIT -1 OFFSET ?)",
                (row[0], row[1], max(1, retain)),
            )
            return int(cursor.lastrowid or 0)

        return self._write(f"the start of the {env} rollout log", work)

    def keep_rollout_lines(self, log_id: int, lines: Sequence[KeptLine], keep: int) -> None:
        if self.read_only or not log_id or not lines:
            return
        rows = [(log_id, line.seq, float(line.ts), redact(line.source), redact(line.text)) for line in lines]

        def work() -> None:
            self._db.executemany(
                "INSERT OR REPLACE INTO rollout_log_lines (rollout, seq, ts, source, text) VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            self._db.execute(
                "DELETE FROM rollout_log_lines WHERE rollout = ? AND seq <= ?",
                (log_id, max(line.seq for line in lines) - max(1, keep)),
            )

        self._write(f"{len(rows)} rollout log lines", work)

    def close_rollout_log(self, log_id: int, outcome: str, ts: float, lines_seen: int) -> None:
        if self.read_only or not log_id:
            return
        self._write(
            "the end of a rollout log",
            lambda: self._db.execute(
                "UPDATE rollout_logs SET ended_ts = ?, outcome = ?, lines_seen = ? WHERE id = ?",
                (float(ts), redact(outcome), int(lines_seen), log_id),
            ),
        )

    def rollout_log_for(self, service: str, env: str, record_id: int) -> RolloutLog | None:
        with self._lock, contextlib.suppress(sqlite3.OperationalError):  # a journal not yet migrated
            row = self._db.execute(
                "SELECT id, service, env, target_version, started_ts, first_record, ended_ts, outcome,"
                " lines_seen FROM rollout_logs WHERE service = ? AND env = ? AND first_record <= ?"
                " ORDER BY first_record DESC, id DESC LIMIT 1",
                (service, env, record_id),
            ).fetchone()
            return RolloutLog(*row) if row else None
        return None

    def rollout_log_lines(self, log_id: int) -> list[KeptLine]:
        with self._lock, contextlib.suppress(sqlite3.OperationalError):
            rows = self._db.execute(
                "SELECT seq, ts, source, text FROM rollout_log_lines WHERE rollout = ? ORDER BY seq", (log_id,)
            ).fetchall()
            return [KeptLine(*row) for row in rows]
        return []

    def iter_json(self, **filters: object) -> Iterator[str]:
        for record in self.records(**filters):  # type: ignore[arg-type]
            yield json.dumps(record.to_json())


def keep_aside(path: Path) -> Path | None:
    """Copy the journal at ``path`` beside it with SQLite's online backup API (which reads
    through the -wal file, unlike a rename of the main file alone), check the copy holds
    every record, then remove the original so a fresh journal starts. Returns the copy's
    path, or None when there was no journal. Nothing is removed unless the copy is good."""
    if not path.exists():
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    kept = path.with_name(f"{path.name}.{stamp}.old")
    n = 1
    while kept.exists():
        kept = path.with_name(f"{path.name}.{stamp}-{n}.old")
        n += 1
    old_umask = os.umask(0o077)
    try:
        _backup(path, kept)
        os.chmod(kept, PRIVATE_FILE)
    except (sqlite3.Error, OSError) as err:
        raise JournalWriteError(
            f"cannot keep the journal {path} aside as {kept}: {_reason(err)}; nothing was removed"
        ) from None
    finally:
        os.umask(old_umask)
    for suffix in SIDE_FILES:
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return kept


def _backup(path: Path, kept: Path) -> None:
    src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    dst = sqlite3.connect(str(kept), isolation_level=None)
    try:
        src.backup(dst)
        # A rollback-journal copy is one self-contained file: nothing to lose beside it.
        dst.execute("PRAGMA journal_mode=DELETE")
        counted = [db.execute("SELECT count(*) FROM journal").fetchone()[0] for db in (src, dst)]
        if counted[0] != counted[1]:
            raise sqlite3.DatabaseError(f"the copy holds {counted[1]} records of {counted[0]}")
    finally:
        dst.close()
        src.close()
