"""The PostgreSQL runner (psycopg 3, blocking calls in a worker thread).

The migration lock is ``pg_try_advisory_lock`` on a connection of its own, held for the
whole step, whose ``application_name`` is ``cockpit <user@host>``: a loser reads the holder
from ``pg_stat_activity``. It dies with the connection, so a runner killed mid-step frees it
and the server rolls back its open transaction. Each step runs with ``SET LOCAL
lock_timeout`` and ``statement_timeout``; a transactional step commits its DDL and its
``applied`` row together; a step with ``transaction = false`` runs statement by statement
in autocommit (``CREATE INDEX CONCURRENTLY`` refuses a transaction)."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import errors, sql

from cockpit.migrations import records
from cockpit.migrations.api import DatabaseUnavailable, LockHeld, MigrationError, OnLine, StepRecord
from cockpit.migrations.pgsplit import split_statements
from cockpit.migrations.runner import SqlTarget
from cockpit.migrations.urls import PostgresUrl
from cockpit.plan.migrations import Migration

LOCK_KEY = int.from_bytes(hashlib.sha256(records.RECORD_TABLE.encode()).digest()[:4], "big") & 0x7FFFFFFF
"""The advisory lock's key (one per database: advisory locks are scoped to their database)."""

CONNECT_TIMEOUT = 5
"""Seconds to reach the server before it counts as unavailable."""

HOLDER = """SELECT a.application_name, a.pid, COALESCE(host(a.client_addr), 'local')
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid = 0 AND l.objid::text::bigint = %s AND l.objsubid = 1"""


class PostgresTarget(SqlTarget):
    def __init__(self, url: PostgresUrl, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.url = url
        self.description = url.description
        self._by = "cockpit"

    def _password(self) -> str | None:
        if self.db.password is None:
            return None
        try:
            return self.secret(self.db.password)
        except Exception as err:  # the secret store says why, never the value
            raise DatabaseUnavailable(
                f"{self.description}: the password secret {self.db.password!r} cannot be read: {err}"
            ) from None

    def _connect(self, *, autocommit: bool = True, name: str | None = None) -> psycopg.Connection[Any]:
        password = self._password()
        try:
            return psycopg.connect(
                self.url.conninfo,
                password=password,
                autocommit=autocommit,
                connect_timeout=CONNECT_TIMEOUT,
                application_name=(name or "cockpit")[:63],
            )
        except psycopg.Error as err:
            raise DatabaseUnavailable(
                f"{self.description} cannot be reached: {self._say(err, password)}"
            ) from None

    def _say(self, err: BaseException, password: str | None = None) -> str:
        text = " ".join(str(err).split()) or type(err).__name__
        return records.mask(text, [password or ""])

    # -- lock -------------------------------------------------------------------------
    def _acquire(self, by: str) -> psycopg.Connection[Any]:
        conn = self._connect(name=f"cockpit {by}")
        try:
            got = conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
            if got and got[0]:
                return conn
            row = conn.execute(HOLDER, (LOCK_KEY,)).fetchone()
        except psycopg.Error as err:
            conn.close()
            raise DatabaseUnavailable(
                f"{self.description}: the migration lock cannot be taken: {self._say(err)}"
            ) from None
        conn.close()
        if row is None:  # released between our try and our look
            holder = "another runner (gone now: try again)"
        else:
            name, pid, addr = row
            holder = (
                f"{str(name).removeprefix('cockpit ') or 'an unnamed client'} (backend pid {pid}, {addr})"
            )
        raise LockHeld(f"another cockpit is migrating {self.description}: {holder}", holder)

    def _release(self, lock: psycopg.Connection[Any]) -> None:
        # Closing the session frees its advisory lock even if the unlock itself fails.
        try:
            with contextlib.suppress(psycopg.Error):
                lock.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
        finally:
            lock.close()

    def _lock_free(self) -> bool:
        # Looked up, not tried: a probe that took the lock for a moment could make a real
        # runner lose the race to it.
        with self._connect() as conn:
            try:
                return conn.execute(HOLDER, (LOCK_KEY,)).fetchone() is None
            except psycopg.Error as err:
                raise DatabaseUnavailable(
                    f"{self.description}: the migration lock cannot be read: {self._say(err)}"
                ) from None

    # -- records ----------------------------------------------------------------------
    def _ensure_table(self, conn: psycopg.Connection[Any]) -> None:
        # Two cockpits creating it at the same moment: one loses on the catalog, and it exists.
        with contextlib.suppress(errors.UniqueViolation, errors.DuplicateTable, errors.DuplicateObject):
            conn.execute(records.CREATE_TABLE)

    def _rows(self, name: str | None) -> list[tuple[Any, ...]]:
        with self._connect() as conn:
            try:
                self._ensure_table(conn)
                if name is None:
                    return list(conn.execute(records.SELECT_ALL).fetchall())
                return list(conn.execute(records.select_one("%s"), (name,)).fetchall())
            except psycopg.Error as err:
                raise DatabaseUnavailable(
                    f"{self.description}: the records cannot be read: {self._say(err)}"
                ) from None

    def _write(self, record: StepRecord, lock_timeout: float | None = None) -> None:
        # Row locks on the record table are brief (every writer holds the advisory lock).
        with self._connect() as conn:
            try:
                conn.execute(records.upsert("%s"), records.to_row(record))
            except psycopg.Error as err:
                raise MigrationError(
                    f"{self.description}: the record of {record.name!r} cannot be written: {self._say(err)}"
                ) from None

    # -- SQL ----------------------------------------------------------------------------
    def _apply_sql(
        self, script: str, step: Migration, done: Callable[[str], StepRecord] | None, emit: OnLine
    ) -> tuple[str, str | None]:
        lock_timeout, statement_timeout = self.timeouts(step)
        parts = split_statements(script)
        lines: list[str] = []

        def note(diag: psycopg.errors.Diagnostic) -> None:  # RAISE NOTICE and friends
            line = f"{diag.severity}: {diag.message_primary}"
            lines.append(line)
            emit(line)

        # LOCAL: the timeouts end with the step's transaction; without one, with the session.
        scope = sql.SQL("LOCAL" if done else "SESSION")
        settings = [
            sql.SQL("SET {} lock_timeout = {}").format(
                scope, sql.Literal(f"{max(1, round(lock_timeout * 1000))}ms")
            ),
            sql.SQL("SET {} statement_timeout = {}").format(
                scope, sql.Literal(f"{max(1, round(statement_timeout * 1000))}ms")
            ),
        ]
        at = 0
        with self._connect(autocommit=True, name=f"cockpit migrate {step.name}") as conn:
            conn.add_notice_handler(note)
            if conn.info.server_version >= 140000:
                # A runner killed mid-statement cannot say so: the server checks its socket
                # every second and cancels (rolls back) the orphaned statement.
                settings.append(sql.SQL("SET {} client_connection_check_interval = '1s'").format(scope))
            try:
                if done is not None:
                    conn.execute("BEGIN")
                for s in settings:
                    conn.execute(s)
                for at, statement in enumerate(parts, 1):
                    cur = conn.execute(statement.encode())  # bytes: no %-placeholders in DDL
                    line = f"[{at}/{len(parts)}] {cur.statusmessage or 'ok'}"
                    lines.append(line)
                    emit(line)
                if done is not None:
                    conn.execute(records.upsert("%s"), records.to_row(done("\n".join(lines))))
                    conn.execute("COMMIT")
            except psycopg.Error as err:
                if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    # If even this fails the connection closes anyway: the server rolls back.
                    with contextlib.suppress(psycopg.Error):
                        conn.execute("ROLLBACK")
                where = f"statement {at}/{len(parts)}" if at else "before the first statement"
                return "\n".join(lines), f"{where}: {_explain(err, lock_timeout, statement_timeout)}"
        return "\n".join(lines), None


def _explain(err: psycopg.Error, lock_timeout: float, statement_timeout: float) -> str:
    text = (err.diag.message_primary if err.diag and err.diag.message_primary else str(err)).strip()
    if isinstance(err, errors.LockNotAvailable):
        return f"lock timeout ({lock_timeout:g} s): {text}"
    if isinstance(err, errors.QueryCanceled):
        return f"statement timeout ({statement_timeout:g} s): {text}"
    detail = err.diag.message_detail if err.diag else None
    return text + (f" ({detail})" if detail else "")
