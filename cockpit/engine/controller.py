"""One environment's host: the backend's lifecycle, polling, the journal, the view, and
the lock its driver moves the rollout under.

How the rollout moves is the driver's job (``drivers/``: the machine driver walks the
steps itself; a mirror driver follows a platform that walks them), chosen by the
backend's capabilities. The controller makes what is common to both hold: every
command is journaled before its work starts (a command that cannot be journaled is
not taken), a journal that cannot be written stops the rollout moving forward, and
every background task ends in a visible state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any

from cockpit.adapters.base import BackendError, Capability, DeployBackend, MetricsSource
from cockpit.engine.clock import SYSTEM_CLOCK, Clock
from cockpit.engine.commands import Command, Retry, RollbackMigration, RunMigration, StartRollout
from cockpit.engine.drivers import Driver, GateRefused, MachineDriver, driver_class
from cockpit.engine.machine import Refused
from cockpit.engine.migrations import MigrationsController
from cockpit.engine.polling import Poller, PollState, backoff
from cockpit.engine.state import Cause, Revision, RolloutState
from cockpit.engine.store import JournalWriteError, Store
from cockpit.engine.views import BLUE_GREEN, ActionResult, EnvView, describe_track, strategy_kind
from cockpit.migrations.api import MigrationsView
from cockpit.model import BackendStatus, Track
from cockpit.plan.models import Environment, Plan
from cockpit.secrets import redact

__all__ = ["ActionResult", "EnvView", "EnvironmentController", "TransitionListener", "describe_track"]

log = logging.getLogger(__name__)

MIGRATIONS_REFRESH = 5.0  # seconds between two reads of the migration records (for the view)

TransitionListener = Callable[[str, str, RolloutState], None]


def track_versions(state: RolloutState) -> dict[Track, str]:
    """The version each track runs in ``state`` (no canary entry while there is none)."""
    versions = {Track.STABLE: state.stable_version}
    if state.canary_version is not None:
        versions[Track.CANARY] = state.canary_version
    return versions


class EnvironmentController:
    def __init__(
        self,
        plan: Plan,
        env: Environment,
        backend: DeployBackend,
        metrics: MetricsSource | None,
        journal: Store,
        user: str,
        on_transition: TransitionListener | None = None,
        clock: Clock = SYSTEM_CLOCK,
        state_dir: Path | None = None,
        secret: Callable[[str], str] | None = None,
        plan_dir: Path | None = None,
    ) -> None:
        self.plan = plan
        self.env = env
        self.backend = backend
        self.metrics = metrics
        self.journal = journal
        self.user = user
        self.clock = clock
        self.migrations: MigrationsController | None = None
        if plan.migrations and env.database is not None:
            self.migrations = MigrationsController(
                plan.migrations,
                env.database,
                env=env.name,
                service=plan.service.name,
                state_dir=state_dir or Path.cwd(),
                secret=secret or _no_secrets,
                journal=self.journal_quietly,
                clock=clock,
                user=user,
                changed=self.changed,
                plan_dir=plan_dir,
                # Docker runs a step's command in a one-off container of the release's image.
                task_runner=backend if callable(getattr(backend, "run_task", None)) else None,  # type: ignore[arg-type]
            )
        self._migrations_task: asyncio.Task[None] | None = None
        self.driver: Driver = driver_class(backend.capabilities, backend.name)(self)
        self.strategy = strategy_kind(plan.strategy)
        # What this environment can be asked: a blue-green plan switches all traffic at
        # once, so a canary weight is not offered even when the backend could set one.
        self.capabilities = (
            backend.capabilities - {Capability.SET_WEIGHT} if self.strategy == BLUE_GREEN else backend.capabilities
        )
        revisions = journal.revisions(plan.service.name, env.name, plan.guardrails.history_limit)
        stable = revisions[-1].version if revisions else env.initial_version
        self.state = self.driver.initial(stable, revisions)
        self.versions: tuple[str, ...] = ()
        self.started = False
        self.poll = PollState()
        self._poller = Poller(clock, self.changed, lambda: self._backoff(), self.poll)
        self.lock = asyncio.Lock()
        self.closing = False
        self._tasks: list[asyncio.Task[None]] = []
        self._seq = 0
        self._listeners: list[TransitionListener] = [on_transition] if on_transition else []
        self._change_listeners: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ state and metrics versions

    @property
    def state(self) -> RolloutState:
        return self._state

    @state.setter
    def state(self, new: RolloutState) -> None:
        # Every change of the rollout passes here (drivers and set_state alike), so the
        # metrics source always knows which version each track runs ({version} queries).
        old: RolloutState | None = getattr(self, "_state", None)
        self._state = new
        if self.metrics is not None and (
            old is None
            or (old.stable_version, old.canary_version) != (new.stable_version, new.canary_version)
        ):
            self.metrics.set_versions(track_versions(new))

    # ------------------------------------------------------------------ views and listeners

    def add_transition_listener(self, listener: TransitionListener) -> None:
        self._listeners.append(listener)

    def add_change_listener(self, listener: Callable[[], None]) -> None:
        self._change_listeners.append(listener)

    def changed(self) -> None:
        self._seq += 1
        for listener in self._change_listeners:
            listener()

    def view(self) -> EnvView:
        return EnvView(
            name=self.env.name,
            protected=self.env.protected,
            rollout=self.state,
            steps=self.driver.steps,
            capabilities=self.capabilities,
            versions=self.versions,
            backend=self.poll.status,
            backend_error=self.poll.error,
            retry_at=self.poll.retry_at,
            metrics=tuple(self.poll.metrics),
            metrics_error=self.poll.metrics_error,
            metrics_retry_at=self.poll.metrics_retry_at,
            seq=self._seq,
            connected=self.started,
            strategy=self.strategy,
            migrations=self._migrations_view(),
        )

    def _migrations_view(self) -> MigrationsView | None:
        if not self.plan.migrations:
            return None
        if self.migrations is None:
            return MigrationsView(database=None, next_refused=self._no_database())
        return self.migrations.view(self.state, self.poll.status, self.poll.error)

    def _no_database(self) -> str:
        return f"{self.env.name} has no database in the plan ([environments.database]): no step runs here"

    # ------------------------------------------------------------------ journal

    @property
    def service(self) -> str:
        return self.plan.service.name

    def _journal(
        self,
        action: str,
        outcome: str,
        *,
        reason: str = "",
        detail: str = "",
        duration_ms: float | None = None,
        user: str | None = None,
    ) -> None:
        s = self.state
        self.journal.append(
            service=self.service,
            env=self.env.name,
            action=action,
            outcome=outcome,
            user=user or self.user,
            reason=reason,
            detail=detail,
            duration_ms=duration_ms,
            phase=s.phase.value,
            stable_version=s.stable_version,
            canary_version=s.canary_version,
            target_version=s.target_version,
            weight=s.weight,
            step=s.step_index,
            revision=s.revision,
        )

    def journal_quietly(self, action: str, outcome: str, **fields: object) -> str | None:
        """Journal a record whose loss must not stop what happens next (a refusal, an outcome
        already reached); returns the error, also logged, when the journal cannot be written."""
        try:
            self._journal(action, outcome, **fields)  # type: ignore[arg-type]
        except JournalWriteError as err:
            log.error("%s: %s", self.env.name, err)
            return redact(str(err))
        return None

    # ------------------------------------------------------------------ lifecycle

    async def start(self, attach: bool = False) -> None:
        """Start (or attach to) the backend, reconcile with the journal, begin polling.
        Raises :class:`BackendError` when the backend cannot be brought up (or the journal
        cannot record that it was: nothing is started without a record)."""
        self.watch_migrations()
        if not self.state.revisions:
            initial = Revision(1, self.state.stable_version, self.clock.now(), self.user)
            try:
                self.journal.add_revision(self.service, self.env.name, initial)
                self.state = replace(self.state, revisions=(initial,))
                self._journal("initial", "ok", detail=f"stable {initial.version} is revision 1")
            except JournalWriteError as err:
                raise BackendError(f"not started: {err}") from None
        if attach:
            await self.backend.attach()
        else:
            await self.backend.start(self.state.stable_version)
        self.started = True
        self.versions = tuple(await self.backend.versions())
        try:
            self.poll.status = await self.backend.status()
        except BackendError as err:
            self.poll.error = str(err)
        await self.driver.connect(attach)
        snapshot = self.journal.last_snapshot(self.service, self.env.name)
        for note in self.driver.restore(snapshot, self.poll.status):
            self.journal_quietly("reconcile", "info", detail=note)
        name = self.env.name
        self._tasks.append(
            self.spawn(self._poller.status_loop(self.backend, self.driver.observe), f"status-{name}")
        )
        if self.metrics is not None:
            loop = self._poller.metrics_loop(self.metrics, self.env.metrics.interval)
            self._tasks.append(self.spawn(loop, f"metrics-{name}"))
        self.changed()

    def watch_migrations(self) -> None:
        """Read the migration records now and every few seconds (for the view), whether
        or not the backend is up: the database is another system."""
        if self.migrations is None or self._migrations_task is not None:
            return
        migrations = self.migrations

        async def watch() -> None:
            await migrations.refresh()
            await migrations.run_lint()
            while True:
                await self.clock.sleep(MIGRATIONS_REFRESH)
                await migrations.refresh()

        self._migrations_task = self.spawn(watch(), f"migrations-{self.env.name}")
        self._tasks.append(self._migrations_task)

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """A background task whose failure becomes a visible state, never a lost exception."""
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        log.error("%s: task %s died", self.env.name, task.get_name(), exc_info=exc)
        if self.closing:
            return
        self.driver.crashed(redact(f"{task.get_name()} stopped: {type(exc).__name__}: {exc}"))

    def start_failed(self, error: BackendError) -> None:
        """Record a failed start; the column shows it until :meth:`keep_trying` succeeds."""
        self.poll.failures += 1
        self.poll.failed(error, self._backoff(), self.clock.now())
        self.changed()

    def _backoff(self) -> float:
        return backoff(self.poll.failures)

    def keep_trying(self, attach: bool = False) -> None:
        """Retry a failed start in the background, with backoff, until it works."""

        async def retry() -> None:
            while not self.started:
                await self.clock.sleep(max(0.0, (self.poll.retry_at or 0) - self.clock.now()))
                try:
                    await self.start(attach)
                except BackendError as err:
                    self.start_failed(err)
                else:
                    self.poll.recovered()
                    self.journal_quietly("connect", "ok", detail=f"{self.env.name} is up again")
                    self.changed()

        self._tasks.append(self.spawn(retry(), f"start-retry-{self.env.name}"))

    async def close(self) -> None:
        self.closing = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, self.driver.stop(), return_exceptions=True)
        # Wait for a backend effect under way so workloads are not left half-changed.
        async with self.lock:
            with contextlib.suppress(BackendError):
                if self.metrics is not None:
                    await self.metrics.close()
            await self.backend.close()
            if self.migrations is not None:
                await self.migrations.close()

    # ------------------------------------------------------------------ commands

    def preview(self, command: Command) -> str | None:
        """Why ``command`` would be refused right now, or ``None``: lets the screen say so
        before asking anyone to type a confirmation. Pure: no I/O, no state change."""
        if isinstance(command, RunMigration | RollbackMigration):
            return self._migration_preview(command)
        if not self.started:
            return f"{self.env.name} is not connected: {self.poll.error or 'the backend is starting'}"
        return self.driver.preview(command)

    async def submit(self, command: Command, reason: str = "") -> ActionResult:
        """Apply one command: the driver decides against the current state, the journal
        records that it starts, the driver runs it, the journal records how it ended.
        The guardrails (reasons, freezes, capabilities) are the session's, asked before."""
        action = command.action
        if isinstance(command, RunMigration | RollbackMigration):
            return await self._migrate(command, reason)
        started = self.clock.monotonic()
        if not self.started:
            message = f"{self.env.name} is not connected: {self.poll.error or 'backend not started'}"
            return self.refuse(action, reason, message)
        async with self.lock:
            try:
                decision = self.driver.decide(command, reason)
            except Refused as err:
                return self.refuse(action, reason, str(err))
            # The record comes first: a command that cannot be journaled is not taken.
            unwritten = self.journal_quietly(action, "started", reason=reason, detail=decision.detail)
            if unwritten:
                return ActionResult(False, f"not done, nothing changed: {unwritten}", Cause.JOURNAL_FAILURE)
            if problem := await self._expand_for_platform(command):
                elapsed = (self.clock.monotonic() - started) * 1000
                self.journal_quietly(action, "failed", reason=reason, detail=problem, duration_ms=elapsed)
                return ActionResult(False, problem, Cause.MIGRATION_FAILED)
            try:
                error = await self.driver.run(decision, action, reason)
            except GateRefused as gate:
                refused = self.refuse(action, reason, f"refused by the health gate: {gate}")
                return replace(refused, cause=Cause.HEALTH_GATE)
            except Refused as err:  # the platform said no (mirror driver): nothing changed
                return self.refuse(action, reason, str(err))
            elapsed = (self.clock.monotonic() - started) * 1000
            if error:
                self.journal_quietly(action, "failed", reason=reason, detail=error, duration_ms=elapsed)
                return ActionResult(False, error)
            done = decision.note or self.state.reason
            unwritten = self.journal_quietly(action, "ok", reason=reason, detail=done, duration_ms=elapsed)
            if unwritten:
                # The journal failed mid-rollout: stop moving traffic forward.
                await self.driver.halt(f"journal failure: {unwritten}", Cause.JOURNAL_FAILURE)
                return ActionResult(
                    False, f"{done}; but the journal failed: {unwritten}", Cause.JOURNAL_FAILURE
                )
        return ActionResult(True, done)

    # ------------------------------------------------------------------ migrations

    async def _expand_for_platform(self, command: Command) -> str | None:
        """A platform that walks the steps itself (a mirror driver) deploys as soon as it is
        told: the release's expand steps run here first, and the rollout is not forwarded
        unless the database then records them all as applied. (The machine driver runs them
        as the rollout's first step instead, shown as it goes.)"""
        if self.migrations is None or isinstance(self.driver, MachineDriver):
            return None
        if isinstance(command, StartRollout):
            version = command.version
        elif isinstance(command, Retry) and self.state.target_version is not None:
            version = self.state.target_version
        else:
            return None
        error = await self.migrations.run_expand(version, lambda: self.state, lambda n, total, step: None, self.user)
        if error is None:
            return None
        return f"expand failed: {error}; nothing was deployed (the rollout was not sent to {self.backend.name})"

    def _migration_preview(self, command: RunMigration | RollbackMigration) -> str | None:
        """The screen's question, answered from the last records and the last status poll;
        the step itself is judged again on what is read when it runs."""
        if self.migrations is None:
            return self._no_database()
        if not self.migrations.refreshed:
            return None  # nothing read yet: the run itself reads and decides
        view = self.migrations.view(self.state, self.poll.status, self.poll.error)
        if isinstance(command, RunMigration):
            if command.phase is not None:
                return None  # the view's "next" spans both phases; the run picks within one
            step, refused, what = view.next_step, view.next_refused, "the next step"
        else:
            step, refused, what = view.last_applied, view.rollback_refused, "the last applied step"
        if refused:
            return refused
        if command.step is not None and step != command.step:
            return f"{what} is now {step!r}, not {command.step!r}: look again"
        return None

    async def _status_now(self) -> BackendStatus:
        """The platform as it is right now, for a guard (raises when it cannot be read)."""
        if not self.started:
            raise BackendError(f"{self.env.name} is not connected: {self.poll.error or 'backend not started'}")
        status = await self.backend.status()
        self.poll.status = status
        return status

    async def _migrate(self, command: RunMigration | RollbackMigration, reason: str) -> ActionResult:
        """Run next / roll back last, under the environment's lock (no rollout starts or
        moves while a schema step runs here); journaled by the migrations controller."""
        if self.migrations is None:
            return self.refuse(command.action, reason, self._no_database())
        async with self.lock:
            state = lambda: self.state  # noqa: E731 - read at the moment each guard judges
            if isinstance(command, RunMigration):
                outcome = await self.migrations.run_next(
                    state, self._status_now, expected=command.step, phase=command.phase, reason=reason
                )
            else:
                outcome = await self.migrations.roll_back_last(
                    state, self._status_now, expected=command.step, reason=reason
                )
        self.changed()
        return ActionResult(outcome.ok, outcome.message, Cause.MIGRATION_FAILED if outcome.failed else None)

    def refuse(self, action: str, reason: str, message: str) -> ActionResult:
        """A refused command: journaled (quietly) and reported, nothing changed."""
        unwritten = self.journal_quietly(action, "refused", reason=reason, detail=message)
        return ActionResult(False, message + (f" (and the journal failed: {unwritten})" if unwritten else ""))

    def record_interruption(self, why: str) -> None:
        """The cockpit is being stopped mid-way (a signal): the state and the journal say so."""
        self.driver.interrupted(why)
        self.journal_quietly("interrupted", "info", detail=f"{why} (cause {Cause.INTERRUPTED})")

    def record_timeout(self, why: str) -> None:
        self.journal_quietly("timeout", "info", detail=why)

    # ------------------------------------------------------------------ state

    def set_state(self, new: RolloutState, note: str, action: str) -> str | None:
        """Make ``new`` the state and record it. Returns the error when the journal could
        not be written (the state is set anyway: it is what is true)."""
        old = self.state
        # The warning is owned by observation: a transition computed before the last poll
        # must not wipe what that poll saw, while a canary is still on.
        if new.in_rollout and new.canary_version is not None and new.canary_version == old.canary_version:
            new = replace(new, warning=old.warning)
        self.state = new
        unwritten = None
        try:
            if new.revision != old.revision and new.revisions:
                self.journal.add_revision(self.service, self.env.name, new.revisions[-1])
            if note and action == "auto":  # a command's own first step is journaled by submit()
                self._journal("auto", "info", detail=note, user=f"cockpit ({self.user})")
        except JournalWriteError as err:
            log.error("%s: %s", self.env.name, err)
            unwritten = redact(str(err))
        if note:
            for listener in self._listeners:
                try:
                    listener(self.env.name, note, new)
                except Exception:  # a broken listener (a closed stdout) never stops the rollout
                    log.exception("%s: transition listener failed", self.env.name)
        self.changed()
        return unwritten


def _no_secrets(name: str) -> str:
    raise BackendError(f"secret {name!r} cannot be resolved here (no secrets were given)")
