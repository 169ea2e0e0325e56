"""The flow both SQL runners share: take the lock, re-read the record under it, run the
step's action with its timeouts, record the outcome, release the lock. Each database gives
the primitives (:class:`SqlTarget`'s abstract methods), all blocking: they run in a worker
thread so the event loop never waits on the database."""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

from cockpit.migrations import records
from cockpit.migrations.api import (
    Direction,
    MigrationError,
    OnLine,
    StepRecord,
    StepRun,
    StepState,
)
from cockpit.migrations.command import CommandExecutor, CommandSpec, resolve_secret_env, run_command
from cockpit.plan.migrations import Database, Migration

SecretLookup = Callable[[str], str]
T = TypeVar("T")


async def finish_in_thread(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a worker thread, finished even if the caller is cancelled: a thread
    cannot be stopped, and the lock must not be released while its SQL still runs."""
    job = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(job)
    except asyncio.CancelledError:
        await asyncio.wait([job])
        raise


class SqlTarget(ABC):
    """A :class:`~cockpit.migrations.api.MigrationTarget` over one SQL database."""

    description: str

    def __init__(
        self,
        db: Database,
        *,
        service: str,
        env: str,
        secret: SecretLookup,
        plan_dir: Path | None = None,
        executor: CommandExecutor | None = None,
    ) -> None:
        self.db = db
        self.service = service
        self.env = env
        self.secret = secret
        self.plan_dir = plan_dir
        self.executor: CommandExecutor = executor or run_command

    # -- what each database provides (blocking; called in a worker thread) -------------
    @abstractmethod
    def _acquire(self, by: str) -> Any:
        """Take the migration lock or raise LockHeld naming the holder; returns a handle."""

    @abstractmethod
    def _release(self, lock: Any) -> None: ...

    @abstractmethod
    def _lock_free(self) -> bool:
        """Whether no runner holds the lock now (probing it without keeping it)."""

    @abstractmethod
    def _rows(self, name: str | None) -> list[tuple[Any, ...]]:
        """Rows of the record table (all, or one step's); creates the table if missing."""

    @abstractmethod
    def _write(self, record: StepRecord, lock_timeout: float | None = None) -> None:
        """Upsert one record in its own committed transaction (waiting at most
        ``lock_timeout`` for a lock, where the database makes the record wait for one)."""

    @abstractmethod
    def _apply_sql(
        self, sql: str, step: Migration, done: Callable[[str], StepRecord] | None, emit: OnLine
    ) -> tuple[str, str | None]:
        """Run ``sql`` with the step's timeouts. With ``done`` (a transactional step) the
        statements and the record ``done(output)`` commit together or not at all; without,
        each statement commits on its own. Returns (output, error); never raises for the
        SQL's failure."""

    # -- the shared flow --------------------------------------------------------------
    def timeouts(self, step: Migration) -> tuple[float, float]:
        lock = step.lock_timeout if step.lock_timeout is not None else self.db.lock_timeout
        stmt = step.statement_timeout if step.statement_timeout is not None else self.db.statement_timeout
        return float(lock), float(stmt)

    async def records(self) -> dict[str, StepRecord]:
        return await asyncio.to_thread(self._records)

    def _records(self) -> dict[str, StepRecord]:
        rows = self._rows(None)
        alive = any(r[3] == StepState.RUNNING.value for r in rows) and not self._lock_free()
        return records.read_all(rows, runner_alive=alive)

    def _current(self, name: str) -> StepRecord | None:
        # Under our own lock: a row still 'running' was left by a runner that died.
        rows = records.read_all(self._rows(name), runner_alive=False)
        return rows.get(name)

    async def run(
        self, step: Migration, direction: Direction, *, by: str, on_line: OnLine | None = None
    ) -> StepRun:
        loop = asyncio.get_running_loop()

        def emit(line: str) -> None:  # from the worker thread to the caller's loop
            if on_line is not None:
                loop.call_soon_threadsafe(on_line, line)

        lock = await finish_in_thread(self._acquire, by)
        try:
            return await self._run_locked(step, direction, by, emit, on_line)
        finally:
            await finish_in_thread(self._release, lock)

    async def _run_locked(
        self, step: Migration, direction: Direction, by: str, emit: OnLine, on_line: OnLine | None
    ) -> StepRun:
        action = records.action_of(step, direction)
        current = await asyncio.to_thread(self._current, step.name)
        records.check_can_run(step, direction, current)
        checksum = (
            records.checksum(step, self.plan_dir)
            if direction == "up"
            else (current.checksum if current else "")
        )
        transactional = step.transaction and action.command is None
        # Read before the 'running' row: a file that cannot be read must not leave one behind.
        sql = records.sql_of(action, self.plan_dir) if action.command is None else ""
        started = time.time()

        def record(
            state: StepState, output: str = "", error: str | None = None, end: float | None = None
        ) -> StepRecord:
            return StepRecord(
                step.name, step.phase, step.release, state, checksum, started, end, records.trim(output),
                error, by, direction, transactional,
            )  # fmt: skip

        # The step's own lock_timeout: on SQLite even this row waits for the file's lock.
        await finish_in_thread(self._write, record(StepState.RUNNING), self.timeouts(step)[0])
        success = StepState.APPLIED if direction == "up" else StepState.ROLLED_BACK
        # A failed down leaves the step applied (with a transaction nothing of the down stayed).
        if action.command is not None:
            result = await self._run_command(
                step, action.command, action.env, action.secret_env, action.timeout, on_line
            )
            output, error = result
            end = time.time()
            await finish_in_thread(
                self._write, record(success if error is None else StepState.FAILED, output, error, end)
            )
        else:

            def done(output: str) -> StepRecord:
                return record(success, output, None, time.time())

            output, error = await finish_in_thread(
                self._apply_sql, sql, step, done if transactional else None, emit
            )
            end = time.time()
            if error is not None or not transactional:
                final = record(success if error is None else StepState.FAILED, output, error, end)
                await finish_in_thread(self._write, final)
        return StepRun(step.name, direction, error is None, started, end, records.trim(output), error)

    async def _run_command(
        self,
        step: Migration,
        argv: list[str],
        env: dict[str, str],
        secret_env: dict[str, str],
        timeout: float,
        on_line: OnLine | None,
    ) -> tuple[str, str | None]:
        values = {"version": step.release, "env": self.env, "service": self.service}
        try:
            secrets = resolve_secret_env(secret_env, self.secret)
        except Exception as err:  # the secret store says why (never the value)
            return "", f"a secret of the command cannot be read: {err}"
        spec = CommandSpec(
            records.fill_placeholders(argv, values),
            {k: records.fill_placeholders([v], values)[0] for k, v in env.items()},
            secrets,
            float(timeout),
            self.plan_dir,
        )
        result = await self.executor(spec, on_line)
        return records.mask(result.output, secrets.values()), (
            None if result.ok else records.mask(result.error or "failed", secrets.values())
        )

    async def close(self) -> None:  # noqa: B027 - a runner keeping connections overrides it
        """Nothing to close by default: connections live no longer than one call."""

    async def resolve(self, step: Migration, state: Literal["applied", "pending"], *, by: str) -> StepRecord:
        return await asyncio.to_thread(self._resolve, step, state, by)

    def _resolve(self, step: Migration, state: Literal["applied", "pending"], by: str) -> StepRecord:
        lock = self._acquire(by)
        try:
            current = self._current(step.name)
            if current is None or current.state not in (StepState.INTERRUPTED, StepState.FAILED):
                said = current.state.value if current else "never run"
                raise MigrationError(
                    f"step {step.name!r} is {said}: only an interrupted or failed step is resolved"
                )
            now = time.time()
            new = StepRecord(
                step.name, step.phase, step.release,
                StepState.APPLIED if state == "applied" else StepState.PENDING,
                current.checksum or records.checksum(step, self.plan_dir), current.started_at, now,
                current.output, f"resolved as {state} by {by}", by, current.direction, current.transaction,
            )  # fmt: skip
            self._write(new)
            return new
        finally:
            self._release(lock)
