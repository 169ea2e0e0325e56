"""The SQLite runner: the record table in the target file, an ``fcntl.flock`` on
``<db>.cockpit-lock`` (the holder written in it) as the migration lock, ``busy_timeout`` as
the lock timeout and a progress handler as the statement timeout. The lock dies with its
process, so a runner killed mid-step leaves a ``running`` row and a free lock: INTERRUPTED."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

from cockpit.migrations import records
from cockpit.migrations.api import DatabaseUnavailable, LockHeld, MigrationError, OnLine, StepRecord
from cockpit.migrations.runner import SqlTarget
from cockpit.plan.migrations import Migration

PROGRESS_OPS = 1000
"""SQLite VM instructions between two looks at the clock (a fraction of a millisecond)."""


class SqliteTarget(SqlTarget):
    def __init__(self, path: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = path
        self.lock_path = path.with_name(path.name + ".cockpit-lock")
        self.description = f"sqlite:///{str(path).lstrip('/')}"

    def _connect(self, busy: float | None = None) -> sqlite3.Connection:
        if not self.path.parent.is_dir():
            raise DatabaseUnavailable(
                f"{self.description}: the folder {str(self.path.parent)!r} does not exist"
            )
        timeout = float(self.db.lock_timeout) if busy is None else busy
        try:
            # isolation_level=None: no implicit transactions; we BEGIN and COMMIT ourselves.
            conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
            conn.execute(records.CREATE_TABLE)
        except sqlite3.Error as err:
            raise DatabaseUnavailable(f"{self.description} cannot be opened: {err}") from None
        return conn

    # -- lock -------------------------------------------------------------------------
    def _open_lock(self) -> int:
        try:
            return os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as err:
            raise DatabaseUnavailable(
                f"the lock file {str(self.lock_path)!r} cannot be opened: {err.strerror}"
            ) from None

    def _acquire(self, by: str) -> int:
        fd = self._open_lock()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 512, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise LockHeld(f"another cockpit is migrating {self.description}: {holder}", holder) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"cockpit {by} (pid {os.getpid()})".encode(), 0)
        return fd

    def _release(self, lock: int) -> None:
        os.ftruncate(lock, 0)
        fcntl.flock(lock, fcntl.LOCK_UN)
        os.close(lock)

    def _lock_free(self) -> bool:
        fd = self._open_lock()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        finally:
            os.close(fd)  # closing drops our probe lock too
        return True

    # -- records ----------------------------------------------------------------------
    def _rows(self, name: str | None) -> list[tuple[Any, ...]]:
        with closing(self._connect()) as conn:
            try:
                if name is None:
                    return list(conn.execute(records.SELECT_ALL))
                return list(conn.execute(records.select_one("?"), (name,)))
            except sqlite3.Error as err:
                raise DatabaseUnavailable(f"{self.description}: the records cannot be read: {err}") from None

    def _write(self, record: StepRecord, lock_timeout: float | None = None) -> None:
        wait = float(self.db.lock_timeout) if lock_timeout is None else lock_timeout
        with closing(self._connect(busy=wait)) as conn:
            try:
                conn.execute(records.upsert("?"), records.to_row(record))
            except sqlite3.Error as err:
                why = str(err)
                if "locked" in why or "busy" in why:  # SQLite locks the whole file for a writer
                    why = f"lock timeout ({wait:g} s): {why} by another writer"
                raise MigrationError(
                    f"{self.description}: the record of {record.name!r} cannot be written: {why}"
                ) from None

    # -- SQL ----------------------------------------------------------------------------
    def _apply_sql(
        self, sql: str, step: Migration, done: Callable[[str], StepRecord] | None, emit: OnLine
    ) -> tuple[str, str | None]:
        lock_timeout, statement_timeout = self.timeouts(step)
        parts = records.statements(sql, sqlite3.complete_statement)
        lines: list[str] = []
        with closing(self._connect(busy=lock_timeout)) as conn:
            deadline = 0.0

            def too_long() -> int:
                return 1 if time.monotonic() > deadline else 0

            conn.set_progress_handler(too_long, PROGRESS_OPS)
            try:
                if done is not None:
                    # IMMEDIATE: take the write lock now, waiting at most busy_timeout for it.
                    deadline = time.monotonic() + statement_timeout
                    conn.execute("BEGIN IMMEDIATE")
                for i, statement in enumerate(parts, 1):
                    deadline = time.monotonic() + statement_timeout
                    cur = conn.execute(statement)
                    line = f"[{i}/{len(parts)}] {_head(statement)}" + (
                        f" ({cur.rowcount} rows)" if cur.rowcount >= 0 else ""
                    )
                    lines.append(line)
                    emit(line)
                if done is not None:
                    deadline = time.monotonic() + statement_timeout
                    conn.execute(records.upsert("?"), records.to_row(done("\n".join(lines))))
                    conn.execute("COMMIT")
            except sqlite3.Error as err:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                return "\n".join(lines), _explain(
                    err, lock_timeout, statement_timeout, len(lines) + 1, len(parts)
                )
        return "\n".join(lines), None


def _head(statement: str) -> str:
    first = " ".join(statement.split())
    return first if len(first) <= 80 else first[:77] + "..."


def _explain(err: sqlite3.Error, lock_timeout: float, statement_timeout: float, at: int, total: int) -> str:
    text = str(err)
    where = f"statement {min(at, total)}/{total}" if total else "the transaction"
    if text == "interrupted":
        return f"{where}: statement timeout ({statement_timeout:g} s) exceeded"
    if "locked" in text or "busy" in text:
        return f"{where}: lock timeout ({lock_timeout:g} s): {text}"
    return f"{where}: {text}"
