"""One environment's database migrations: the target database it owns, the records read
from it, the view the screen shows, and every step run under its guard and journaled.

The guards (:mod:`cockpit.engine.migration_guards`) judge what is observed right before
acting: the records are read again from the database and, where a guard needs it, the
platform's status is asked again (``backend.status()``). What this object last saw only
feeds the view and the screen's previews.

Steps of one environment run one at a time in this process (an asyncio lock); across
processes the runner's database lock decides (the loser gets :class:`LockHeld`, runs
nothing, and the refusal names the holder).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cockpit.adapters.base import BackendError
from cockpit.engine import migration_guards as guards
from cockpit.engine.clock import Clock
from cockpit.engine.migration_guards import Observed
from cockpit.engine.state import RolloutState
from cockpit.migrations.api import (
    DatabaseUnavailable,
    Direction,
    LintFinding,
    LockHeld,
    MigrationError,
    MigrationsView,
    MigrationTarget,
    OnLine,
    StepRecord,
    StepRun,
    StepState,
    StepView,
)
from cockpit.migrations.command import CommandExecutor, CommandResult, CommandSpec
from cockpit.model import BackendStatus
from cockpit.plan.migrations import Database, Migration
from cockpit.secrets import redact

log = logging.getLogger(__name__)

SUMMARY_LIMIT = 400  # characters of a step's output kept in a journal record
LIVE_LINES = 200  # lines of the running step's output kept for the screen


class JournalFn(Protocol):
    def __call__(self, action: str, outcome: str, **fields: object) -> str | None: ...


Opener = Callable[..., MigrationTarget]
StatusFn = Callable[[], Awaitable[BackendStatus]]


def output_summary(text: str, limit: int = SUMMARY_LIMIT) -> str:
    """The end of a step's output on one line (what failed is usually last), masked."""
    lines = [line.strip() for line in redact(text).splitlines() if line.strip()]
    joined = " | ".join(lines)
    return joined if len(joined) <= limit else "..." + joined[-(limit - 3) :]


def action_of(direction: Direction) -> str:
    """The journal action of a step run: ``migrate`` (up) or ``migrate-down``."""
    return "migrate" if direction == "up" else "migrate-down"


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """How a request to run a step ended: ``ran`` is False when nothing ran (refused,
    lock held, database unreachable); ``ok`` only when the step ran and succeeded."""

    ok: bool
    message: str
    ran: bool = False
    step: str | None = None
    failed: bool = False  # a failure (the step failed, the database is unreachable), not a refusal


class TaskRunner(Protocol):
    """A backend that runs a command once in a new workload of a version (Docker's
    ``run_task``): a migration CLI then runs with the release's own image and settings."""

    async def run_task(
        self,
        version: str,
        command: Sequence[str],
        *,
        name: str = "task",
        env: Mapping[str, str] | None = None,
        timeout: float = 600.0,
        on_line: Callable[[str], None] | None = None,
    ) -> Any: ...


def task_executor(backend: TaskRunner, release: Callable[[], str]) -> CommandExecutor:
    """Run a step's ``command`` as a one-off task of ``release()`` on ``backend``, answering
    as the runner's own process executor does (ok, output, error, exit code)."""

    async def execute(spec: CommandSpec, on_line: OnLine | None) -> CommandResult:
        version = release()
        env = {**spec.env, **spec.secret_env}
        try:
            done = await backend.run_task(
                version, spec.argv, name="migrate", env=env, timeout=spec.timeout, on_line=on_line
            )
        except BackendError as err:
            # A task that ran and failed carries its result (exit code, last lines).
            result = getattr(err, "result", None)
            tail = "\n".join(getattr(result, "tail", ()) or ())
            return CommandResult(False, tail, redact(str(err)), getattr(result, "exit_code", None))
        return CommandResult(True, "\n".join(done.tail), None, done.exit_code)

    return execute


def _default_opener() -> Opener:
    from cockpit.migrations.open import open_target

    return open_target


def _kind(step: Migration, direction: Direction = "up") -> str:
    action = step.up if direction == "up" else step.down
    return action.kind if action is not None else "none"


class MigrationsController:
    """Owns the :class:`MigrationTarget` of one environment (opened on first use)."""

    def __init__(
        self,
        steps: Sequence[Migration],
        database: Database,
        *,
        env: str,
        service: str,
        state_dir: Path,
        secret: Callable[[str], str],
        journal: JournalFn,
        clock: Clock,
        user: str,
        opener: Opener | None = None,
        changed: Callable[[], None] = lambda: None,
        plan_dir: Path | None = None,
        task_runner: TaskRunner | None = None,
    ) -> None:
        self.steps = tuple(steps)
        self.database = database
        self.env = env
        self.service = service
        self.state_dir = state_dir
        self.secret = secret
        self.journal = journal
        self.clock = clock
        self.user = user
        self.by = f"{user}@{socket.gethostname()}"
        self._opener = opener
        self.plan_dir = plan_dir  # where relative ``file`` actions are read from
        self._release = ""  # the release of the step running now: the image of its task
        # A backend that runs one-off tasks (Docker) runs ``command`` actions there.
        self._executor = None if task_runner is None else task_executor(task_runner, lambda: self._release)
        self._changed = changed
        self._target: MigrationTarget | None = None
        self.records: dict[str, StepRecord] = {}
        self.error: str | None = None  # the database could not be read at the last refresh
        self.running: str | None = None
        self.live: deque[str] = deque(maxlen=LIVE_LINES)
        self.lint: tuple[LintFinding, ...] = ()
        self.lint_error: str | None = None
        self.refreshed = False
        self._lock = asyncio.Lock()

    def by_name(self, name: str) -> Migration | None:
        return next((s for s in self.steps if s.name == name), None)

    # ------------------------------------------------------------------ the database

    def _open(self) -> MigrationTarget:
        """The target, opened on first use. Raises :class:`MigrationError` saying why not
        (a secret that cannot be resolved, a driver that is not installed...)."""
        if self._target is None:
            try:
                self._target = (self._opener or _default_opener())(
                    self.database,
                    service=self.service,
                    env=self.env,
                    state_dir=self.state_dir,
                    secret=self.secret,
                    plan_dir=self.plan_dir,
                    executor=self._executor,
                )
            except MigrationError:
                raise
            except Exception as err:  # e.g. BackendError from a secret that cannot be resolved
                raise MigrationError(redact(f"the database cannot be opened: {err}")) from None
        return self._target

    async def read(self) -> dict[str, StepRecord]:
        """The records as the database holds them now (raises :class:`MigrationError`)."""
        records = await self._open().records()
        self.records, self.error, self.refreshed = dict(records), None, True
        return self.records

    async def refresh(self) -> None:
        """Read the records for the view; a database that cannot be read shows its error."""
        try:
            await self.read()
        except MigrationError as err:
            self.error = redact(str(err))
        except Exception as err:  # a driver's own error: shown, never a dead poll
            log.exception("%s: reading the migration records failed", self.env)
            self.error = redact(f"{type(err).__name__}: {err}")
        self.refreshed = True
        self._changed()

    async def run_lint(self) -> None:
        """squawk's findings on the steps' SQL, once (the plan does not change while the
        cockpit runs). squawk missing or failing is said in the view, never a silent pass."""
        from cockpit.migrations.lint import NOT_POSTGRES, lint_steps
        from cockpit.migrations.urls import is_postgres

        if not is_postgres(self.database.url):
            # squawk parses PostgreSQL: SQLite's triggers would read as syntax errors.
            self.lint, self.lint_error = (), NOT_POSTGRES
            self._changed()
            return
        try:
            self.lint = tuple(await asyncio.to_thread(lint_steps, self.steps, self.plan_dir))
            self.lint_error = None
        except MigrationError as err:
            self.lint, self.lint_error = (), redact(str(err))
        except Exception as err:  # the linter's own bug: said in the view, never a dead watch
            log.exception("%s: linting the migrations failed", self.env)
            self.lint, self.lint_error = (), redact(f"the lint failed: {type(err).__name__}: {err}")
        self._changed()

    @property
    def description(self) -> str:
        """Where, for people (never a password); worked out from the URL alone, so showing
        it never opens the database nor resolves its secret."""
        if self._target is not None:
            return self._target.description
        from cockpit.migrations import urls

        try:
            filled = urls.fill(self.database.url, service=self.service, env=self.env, state_dir=self.state_dir)
            return urls.parse(filled).description
        except MigrationError as err:
            return redact(f"{self.database.url.split('://', 1)[0]} database ({err})")

    async def close(self) -> None:
        if self._target is not None:
            target, self._target = self._target, None
            try:
                await target.close()
            except Exception:  # closing must never stop the cockpit from closing
                log.exception("%s: closing the migration target failed", self.env)

    # ------------------------------------------------------------------ the view

    def observed(self, rollout: RolloutState, status: BackendStatus | None, error: str | None) -> Observed:
        return Observed(self.env, self.records, rollout, status, error)

    def view(self, rollout: RolloutState, status: BackendStatus | None, status_error: str | None) -> MigrationsView:
        """What the screen shows, from the last records and the last status poll."""
        seen = self.observed(rollout, status, status_error)
        steps = tuple(self._step_view(step) for step in self.steps)
        next_step: str | None
        next_refused: str | None
        last: str | None
        rollback_refused: str | None
        if self.running is not None:
            busy = f"{self.running} is running"
            next_step, next_refused = self.running, busy
            last, rollback_refused = self.running, busy
        elif self.error is not None or not self.refreshed:
            why = self.error or "the records are being read"
            next_step = last = None
            next_refused = rollback_refused = f"the database cannot be read: {why}" if self.error else why
        else:
            up = guards.next_up(self.steps, seen)
            down = guards.rollback_choice(self.steps, seen)
            next_step = up.step.name if up.step else None
            next_refused = up.refused
            last = down.step.name if down.step else None
            rollback_refused = down.refused
        return MigrationsView(
            database=self.description,
            steps=steps,
            error=self.error,
            running=self.running,
            next_step=next_step,
            next_refused=next_refused,
            last_applied=last,
            rollback_refused=rollback_refused,
            lint_error=self.lint_error,
            findings=self.lint,
        )

    def _step_view(self, step: Migration) -> StepView:
        record = self.records.get(step.name)
        running = step.name == self.running
        # The screen shows what happened (failed, interrupted); the guards go by the settled state.
        recorded = StepState.PENDING if record is None else record.state
        state = StepState.RUNNING if running else recorded
        output = "\n".join(self.live) if running else (record.output if record else "")
        return StepView(
            name=step.name,
            release=step.release,
            phase=step.phase,
            kind=_kind(step),
            reversible=step.reversible,
            state=state,
            duration=None if running or record is None else record.duration,
            output=output,
            error=None if running or record is None else record.error,
            lint=tuple(f for f in self.lint if f.step == step.name),
        )

    # ------------------------------------------------------------------ running steps

    async def observe(self, rollout: Callable[[], RolloutState], status: StatusFn | None) -> Observed:
        """Read the records and (when ``status`` is given) the platform, now."""
        records = await self.read()
        seen_status: BackendStatus | None = None
        error: str | None = None
        if status is not None:
            try:
                seen_status = await status()
            except Exception as err:  # BackendError, or a platform that is not up
                error = redact(str(err)) or type(err).__name__
        return Observed(self.env, records, rollout(), seen_status, error)

    async def run_next(
        self,
        rollout: Callable[[], RolloutState],
        status: StatusFn,
        *,
        expected: str | None = None,
        phase: str | None = None,
        reason: str = "",
        user: str | None = None,
    ) -> StepOutcome:
        """``run next``: the first pending step whose guard allows it, judged on records and
        a status read now; ``expected`` is the step the person saw (another refuses)."""
        async with self._lock:
            try:
                seen = await self.observe(rollout, status)
            except MigrationError as err:
                return self._unreadable("migrate", reason, err, user)
            choice = guards.next_up(self.steps, seen, phase)
            if choice.step is None or choice.refused:
                return self._refused("migrate", reason, choice.refused or "nothing to run")
            if expected is not None and choice.step.name != expected:
                why = f"the next step is now {choice.step.name!r}, not {expected!r}: look again"
                return self._refused("migrate", reason, why)
            return await self._run(choice.step, "up", reason=reason, user=user)

    async def roll_back_last(
        self,
        rollout: Callable[[], RolloutState],
        status: StatusFn,
        *,
        expected: str | None = None,
        reason: str = "",
        user: str | None = None,
    ) -> StepOutcome:
        """``roll back last``: the down action of the last applied step, under its guard."""
        async with self._lock:
            try:
                seen = await self.observe(rollout, status)
            except MigrationError as err:
                return self._unreadable("migrate-down", reason, err, user)
            choice = guards.rollback_choice(self.steps, seen)
            if choice.step is None or choice.refused:
                return self._refused("migrate-down", reason, choice.refused or "nothing to roll back")
            if expected is not None and choice.step.name != expected:
                why = f"the last applied step is now {choice.step.name!r}, not {expected!r}: look again"
                return self._refused("migrate-down", reason, why)
            return await self._run(choice.step, "down", reason=reason, user=user)

    async def run_expand(
        self,
        version: str,
        rollout: Callable[[], RolloutState],
        progress: Callable[[int, int, Migration], None],
        user: str | None = None,
    ) -> str | None:
        """Apply every expand step a rollout to ``version`` needs, in plan order, each
        re-read from the database first (a retry runs only what is not applied). Returns
        ``None`` when all are applied, else why not (the failing step's error and output)."""
        async with self._lock:
            try:
                due = guards.expand_due(self.steps, await self.read(), version)
            except MigrationError as err:
                return f"the database cannot be read: {redact(str(err))}"
            for n, step in enumerate(due, 1):
                progress(n, len(due), step)
                try:
                    seen = Observed(self.env, await self.read(), rollout())
                except MigrationError as err:
                    return f"the database cannot be read: {redact(str(err))}"
                if guards.is_applied(step, seen.records):
                    continue  # another cockpit applied it meanwhile
                if why := guards.up_refusal(step, self.steps, seen):
                    self._refused("migrate", "", why, user)
                    return why
                outcome = await self._run(step, "up", reason=f"expand for {version}", user=user)
                if not outcome.ok:
                    return outcome.message
            try:
                return guards.deploy_refusal(self.steps, await self.read(), version)
            except MigrationError as err:
                return f"the database cannot be read: {redact(str(err))}"

    async def deploy_refusal(self, version: str) -> str | None:
        """The canary deploy's guard: every expand step ``version`` needs is recorded as
        applied in the database, read now."""
        try:
            records = await self.read()
        except MigrationError as err:
            return f"the database cannot be read: {redact(str(err))}"
        return guards.deploy_refusal(self.steps, records, version)

    async def schema_refusal(self, version: str) -> str | None:
        """A rollback's guard: why ``version`` cannot run again (a later release's contract
        is applied), read from the database now; unreadable records refuse too."""
        try:
            records = await self.read()
        except MigrationError as err:
            return f"the database cannot be read: {redact(str(err))}"
        return guards.schema_refusal(self.steps, records, version)

    async def run_contract(
        self, version: str, rollout: Callable[[], RolloutState], status: StatusFn, user: str | None = None
    ) -> list[StepOutcome]:
        """Apply the contract steps of releases <= ``version``, each under its guard with
        the platform observed right before it runs; stops at the first refusal or failure."""
        key = guards.release_key(version)
        outcomes: list[StepOutcome] = []
        async with self._lock:
            for step in self.steps:
                if step.phase != "contract" or guards.release_key(step.release) > key:
                    continue
                try:
                    seen = await self.observe(rollout, status)
                except MigrationError as err:
                    outcomes.append(self._unreadable("migrate", "after promote", err, user))
                    break
                if guards.is_applied(step, seen.records):
                    continue
                if why := guards.up_refusal(step, self.steps, seen):
                    outcomes.append(self._refused("migrate", "after promote", why, user))
                    break
                outcome = await self._run(step, "up", reason=f"contract after the promote of {version}", user=user)
                outcomes.append(outcome)
                if not outcome.ok:
                    break
        return outcomes

    async def resolve(self, name: str, state: StepState, *, reason: str, user: str | None = None) -> StepOutcome:
        """A person says what became of an interrupted step that ran outside a transaction."""
        step = self.by_name(name)
        if step is None:
            known = ", ".join(s.name for s in self.steps) or "none"
            return self._refused("migrate-resolve", reason, f"no step {name!r} in the plan (known: {known})", user)
        async with self._lock:
            target = self._open()
            resolve = getattr(target, "resolve", None)
            if resolve is None:
                return self._refused("migrate-resolve", reason, "this database's runner cannot resolve a step", user)
            try:
                await resolve(step, state, by=self.by)
            except MigrationError as err:
                return self._refused("migrate-resolve", reason, redact(str(err)), user)
            detail = f"{name} resolved as {state.value} by hand"
            unwritten = self.journal("migrate-resolve", "ok", reason=reason, detail=detail, user=user)
            await self.refresh()
            message = detail + (f" (but the journal failed: {unwritten})" if unwritten else "")
            return StepOutcome(True, message, ran=True, step=name)

    # ------------------------------------------------------------------ internals

    def _unreadable(self, action: str, reason: str, err: Exception, user: str | None) -> StepOutcome:
        why = f"the database cannot be read: {redact(str(err))}"
        unwritten = self.journal(action, "failed", reason=reason, detail=why, user=user)
        return StepOutcome(False, why + (f" (and the journal failed: {unwritten})" if unwritten else ""), failed=True)

    def _refused(self, action: str, reason: str, why: str, user: str | None = None) -> StepOutcome:
        unwritten = self.journal(action, "refused", reason=reason, detail=why, user=user)
        return StepOutcome(False, why + (f" (and the journal failed: {unwritten})" if unwritten else ""))

    async def _run(self, step: Migration, direction: Direction, *, reason: str, user: str | None) -> StepOutcome:
        """Run one direction of ``step``: journaled before (not run when that fails) and after."""
        action = action_of(direction)
        where = self.description
        verb = "apply" if direction == "up" else "roll back"
        start = f"{verb} {guards.describe(step)} ({_kind(step, direction)}) on {where}"
        unwritten = self.journal(action, "started", reason=reason, detail=start, user=user)
        if unwritten:
            return StepOutcome(False, f"not run, nothing changed: {unwritten}", step=step.name)
        self.running, self._release = step.name, step.release
        self.live.clear()
        self._changed()
        began = self.clock.monotonic()
        try:
            run = await self._open().run(step, direction, by=self.by, on_line=self._line)
        except LockHeld as err:
            message = redact(str(err))
            return self._ended(action, reason, user, step, "refused", message, began, ran=False)
        except DatabaseUnavailable as err:
            message = f"the database cannot be reached: {redact(str(err))}"
            return self._ended(action, reason, user, step, "failed", message, began, ran=False)
        except MigrationError as err:
            return self._ended(action, reason, user, step, "refused", redact(str(err)), began, ran=False)
        except Exception as err:  # a runner bug: said, journaled, never a dead task
            log.exception("%s: step %s died", self.env, step.name)
            message = redact(f"{step.name} {direction}: {type(err).__name__}: {err}")
            return self._ended(action, reason, user, step, "failed", message, began, ran=False)
        finally:
            self.running = None
            await self.refresh()
        return self._finished(action, reason, user, step, run)

    def _line(self, line: str) -> None:
        self.live.append(redact(line))
        self._changed()

    def _ended(
        self,
        action: str,
        reason: str,
        user: str | None,
        step: Migration,
        outcome: str,
        message: str,
        began: float,
        *,
        ran: bool,
    ) -> StepOutcome:
        elapsed = (self.clock.monotonic() - began) * 1000
        unwritten = self.journal(action, outcome, reason=reason, detail=message, duration_ms=elapsed, user=user)
        suffix = f" (and the journal failed: {unwritten})" if unwritten else ""
        return StepOutcome(False, message + suffix, ran=ran, step=step.name, failed=outcome == "failed")

    def _finished(self, action: str, reason: str, user: str | None, step: Migration, run: StepRun) -> StepOutcome:
        took = f"{run.duration:.2f}s"
        summary = output_summary(run.output)
        said = f"; output: {summary}" if summary else ""
        done = "applied" if run.direction == "up" else "rolled back"
        if run.ok:
            detail = f"{guards.describe(step)} {done} in {took}{said}"
            outcome = "ok"
        else:
            error = redact(run.error or "failed")
            detail = f"{guards.describe(step)} failed after {took}: {error}{said}"
            outcome = "failed"
        unwritten = self.journal(
            action, outcome, reason=reason, detail=detail, duration_ms=run.duration * 1000, user=user
        )
        suffix = f" (and the journal failed: {unwritten})" if unwritten else ""
        return StepOutcome(run.ok, detail + suffix, ran=True, step=step.name, failed=not run.ok)

