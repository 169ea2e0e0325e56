"""Drives one environment: runs the machine's effects against the backend, keeps
polling status and metrics, journals every action, and publishes views.

All backend effects of one environment run one at a time under a lock, so an
abort pressed while a deploy is under way runs right after it, against the
state as it then is. Pauses and analyses run as cancellable tasks; their
reports carry the epoch and step they belong to, so a late report after an
abort is ignored instead of undoing it.

The engine acts on what it observes, never on what it last did: every move of
traffic towards the canary and every promote is preceded, under the lock, by a
fresh ``backend.status()``, and goes ahead only when the canary is observed
healthy and running the expected version (see :meth:`_gate`). Every intent is
journaled before its work starts; a journal that cannot be written stops the
rollout moving forward. Every background task ends in a visible state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from cockpit.adapters.base import BackendError, Capability, DeployBackend, MetricsSource
from cockpit.engine.analysis import run_analysis
from cockpit.engine.journal import Journal, JournalWriteError
from cockpit.engine.machine import (
    BACKEND_EFFECTS,
    DeployCanary,
    DeployStable,
    Effect,
    PromoteCanary,
    Refused,
    RemoveCanary,
    Resume,
    RolloutMachine,
    RunAnalysis,
    SetWeight,
    Transition,
    WaitPause,
)
from cockpit.engine.state import Activity, AnalysisView, Cause, Outcome, Phase, Revision, RolloutState
from cockpit.model import BackendStatus, MetricsWindow, TrackStatus
from cockpit.plan.models import Environment, Plan
from cockpit.secrets import redact

log = logging.getLogger(__name__)

METRICS_HISTORY = 120  # samples kept for sparklines (2 minutes at 1 s)
BACKOFF_MAX = 30.0


@dataclass(frozen=True)
class ActionResult:
    ok: bool
    message: str
    cause: Cause | None = None  # set when refused on observation (health gate) or the journal


@dataclass(frozen=True)
class EnvView:
    """Everything the screen shows about one environment, as one immutable value."""

    name: str
    protected: bool
    rollout: RolloutState
    steps: tuple[str, ...]
    capabilities: frozenset[Capability]
    versions: tuple[str, ...] = ()
    backend: BackendStatus | None = None
    backend_error: str | None = None  # set while the backend is unreachable
    retry_at: float | None = None  # when the next reconnect attempt happens
    metrics: tuple[MetricsWindow, ...] = ()
    metrics_error: str | None = None
    seq: int = 0  # grows with every change; cheap change detection for the UI
    connected: bool = False  # the backend was started (or attached) at least once

    @property
    def url(self) -> str | None:
        return self.backend.url if self.backend else None

    @property
    def up(self) -> bool:
        return self.backend_error is None and self.backend is not None


TransitionListener = Callable[[str, str, RolloutState], None]


class _GateRefused(Exception):
    """The health gate refused the first traffic move of a user intent: nothing changed."""


class _GateClosed(Exception):
    """The health gate closed between two effects of one transition: stop and go back."""


def describe_track(name: str, track: TrackStatus) -> str:
    """``canary 1.1.0 1/2 ready: replica #2 exited with code 1`` - one line, as observed."""
    line = f"{name} {track.version} {track.replicas_ready}/{track.replicas_desired} ready"
    if track.crash_loop:
        line += ", crash-looping"
    elif track.restarts:
        line += f", {track.restarts} restart{'s' if track.restarts != 1 else ''}"
    return f"{line}: {track.problem}" if track.problem else line


@dataclass
class _Polling:
    status: BackendStatus | None = None
    error: str | None = None
    retry_at: float | None = None
    failures: int = 0
    metrics: deque[MetricsWindow] = field(default_factory=lambda: deque(maxlen=METRICS_HISTORY))
    metrics_error: str | None = None


class EnvironmentController:
    def __init__(
        self,
        plan: Plan,
        env: Environment,
        backend: DeployBackend,
        metrics: MetricsSource | None,
        journal: Journal,
        user: str,
        on_transition: TransitionListener | None = None,
    ) -> None:
        self.plan = plan
        self.env = env
        self.backend = backend
        self.metrics = metrics
        self.journal = journal
        self.user = user
        self.machine = RolloutMachine(plan.strategy.steps(), plan.guardrails.history_limit)
        revisions = journal.revisions(plan.service.name, env.name, plan.guardrails.history_limit)
        stable = revisions[-1].version if revisions else env.initial_version
        self.state = self.machine.initial(env.name, stable, revisions)
        self.versions: tuple[str, ...] = ()
        self.started = False
        self._poll = _Polling()
        self._lock = asyncio.Lock()
        self._step_task: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._seq = 0
        self._listeners: list[TransitionListener] = [on_transition] if on_transition else []
        self._change_listeners: list[Callable[[], None]] = []
        self._closing = False
        self._stop_task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ views and listeners

    def add_transition_listener(self, listener: TransitionListener) -> None:
        self._listeners.append(listener)

    def add_change_listener(self, listener: Callable[[], None]) -> None:
        self._change_listeners.append(listener)

    def _changed(self) -> None:
        self._seq += 1
        for listener in self._change_listeners:
            listener()

    def view(self) -> EnvView:
        return EnvView(
            name=self.env.name,
            protected=self.env.protected,
            rollout=self.state,
            steps=tuple(s.describe() for s in self.machine.steps),
            capabilities=self.backend.capabilities,
            versions=self.versions,
            backend=self._poll.status,
            backend_error=self._poll.error,
            retry_at=self._poll.retry_at,
            metrics=tuple(self._poll.metrics),
            metrics_error=self._poll.metrics_error,
            seq=self._seq,
            connected=self.started,
        )

    # ------------------------------------------------------------------ lifecycle

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

    def _journal_quietly(self, action: str, outcome: str, **fields: object) -> str | None:
        """Journal a record whose loss must not stop what happens next (a refusal, an outcome
        already reached); returns the error, also logged, when the journal cannot be written."""
        try:
            self._journal(action, outcome, **fields)  # type: ignore[arg-type]
        except JournalWriteError as err:
            log.error("%s: %s", self.env.name, err)
            return redact(str(err))
        return None

    async def start(self, attach: bool = False) -> None:
        """Start (or attach to) the backend, reconcile with the journal, begin polling.
        Raises :class:`BackendError` when the backend cannot be brought up (or the journal
        cannot record that it was: nothing is started without a record)."""
        if not self.state.revisions:
            initial = Revision(1, self.state.stable_version, time.time(), self.user)
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
            self._poll.status = await self.backend.status()
        except BackendError as err:
            self._poll.error = str(err)
        self._reconcile()
        self._tasks.append(self._spawn(self._status_loop(), f"status-{self.env.name}"))
        if self.metrics is not None:
            self._tasks.append(self._spawn(self._metrics_loop(), f"metrics-{self.env.name}"))
        self._changed()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """A background task whose failure becomes a visible state, never a lost exception."""
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        log.error("%s: task %s died", self.env.name, task.get_name(), exc_info=exc)
        if self._closing:
            return
        error = redact(f"{task.get_name()} stopped: {type(exc).__name__}: {exc}")
        self._set_state_safely(self.machine.crashed(self.state, error))

    def _set_state_safely(self, transition: Transition) -> None:
        """Apply an in-memory transition (no effects) outside a drive; its journal write may fail."""
        self._set_state(transition.state, transition.note, "auto")

    def start_failed(self, error: BackendError) -> None:
        """Record a failed start; the column shows it until :meth:`keep_trying` succeeds."""
        self._poll.failures += 1
        self._poll.error = redact(str(error))
        self._poll.retry_at = time.time() + self._backoff()
        self._changed()

    def _backoff(self) -> float:
        return min(BACKOFF_MAX, 2.0 ** min(self._poll.failures - 1, 5))

    def keep_trying(self, attach: bool = False) -> None:
        """Retry a failed start in the background, with backoff, until it works."""

        async def retry() -> None:
            while not self.started:
                await asyncio.sleep(max(0.0, (self._poll.retry_at or 0) - time.time()))
                try:
                    await self.start(attach)
                except BackendError as err:
                    self.start_failed(err)
                else:
                    self._poll.error, self._poll.retry_at, self._poll.failures = None, None, 0
                    self._journal_quietly("connect", "ok", detail=f"{self.env.name} is up again")
                    self._changed()

        self._tasks.append(self._spawn(retry(), f"start-retry-{self.env.name}"))

    def _reconcile(self) -> None:
        """Make the state agree with the journal and what the backend really runs."""
        snapshot = self.journal.last_snapshot(self.service, self.env.name)
        status = self._poll.status
        if status and status.stable and status.stable.version != self.state.stable_version:
            self._journal_quietly(
                "reconcile",
                "info",
                detail=(
                    f"the backend runs {status.stable.version} as stable; the journal said {self.state.stable_version}"
                ),
            )
            self.state = replace(
                self.state,
                stable_version=status.stable.version,
                reason=f"stable {status.stable.version} (as found on the backend)",
            )
        if (
            snapshot is None
            or snapshot.phase in (None, Phase.HEALTHY.value)
            or snapshot.target_version is None
        ):
            return
        was = Phase(snapshot.phase)
        step = snapshot.step or 0
        if status and status.canary is not None:
            self.state = replace(
                self.state,
                phase=Phase.PAUSED,
                canary_version=status.canary.version,
                target_version=snapshot.target_version,
                weight=status.weight,
                step_index=step,
                reason=(
                    f"resumed after restart: canary {status.canary.version} at {status.weight}%;"
                    " promote (p) to go on or abort (a)"
                ),
            )
        elif was in (Phase.PROGRESSING, Phase.PAUSED):
            # Cut off by a kill or a signal: say so with its cause, in the state and the journal.
            self.state = replace(
                self.state,
                phase=Phase.ABORTED,
                target_version=snapshot.target_version,
                step_index=step,
                cause=Cause.INTERRUPTED,
                reason=(
                    f"interrupted: the cockpit stopped during the rollout of {snapshot.target_version}"
                    f" (step {step + 1}); the canary is gone, traffic is on stable"
                    f" {self.state.stable_version}; R retries"
                ),
            )
        else:
            self.state = replace(
                self.state,
                phase=was,
                target_version=snapshot.target_version,
                reason=snapshot.detail or snapshot.reason or f"{was.value} before restart",
            )
            if was is Phase.DEGRADED:
                self.state = replace(self.state, phase=Phase.ABORTED)
        cause = f" (cause {self.state.cause})" if self.state.cause else ""
        self._journal_quietly("reconcile", "info", detail=self.state.reason + cause)

    async def close(self) -> None:
        self._closing = True
        for task in [*self._tasks, self._step_task]:
            if task is not None:
                task.cancel()
        await asyncio.gather(*[t for t in [*self._tasks, self._step_task] if t], return_exceptions=True)
        # Wait for a backend effect under way so workloads are not left half-changed.
        async with self._lock:
            with contextlib.suppress(BackendError):
                if self.metrics is not None:
                    await self.metrics.close()
            await self.backend.close()

    # ------------------------------------------------------------------ polling

    async def _status_loop(self) -> None:
        while True:
            delay = 1.0
            try:
                self._poll.status = await self.backend.status()
                if self._poll.error is not None:
                    self._poll.error, self._poll.retry_at, self._poll.failures = None, None, 0
                self._observe(self._poll.status)
            except BackendError as err:
                self._poll.failures += 1
                delay = self._backoff()
                self._poll.error = redact(str(err))
                self._poll.retry_at = time.time() + delay
            self._changed()
            await asyncio.sleep(delay)

    def _observe(self, status: BackendStatus) -> None:
        """Fold one status poll into the state: what is wrong shows at once, a canary that
        crash-loops aborts the rollout, a stable that crash-loops is Degraded."""
        s = self.state
        canary = status.canary
        watching = (
            s.in_rollout
            and s.canary_version is not None
            and canary is not None
            and s.activity not in (Activity.DEPLOYING, Activity.ABORTING, Activity.ROLLING_BACK)
        )
        warning = ""
        if watching:
            assert canary is not None
            warning = "" if canary.healthy else describe_track("canary", canary)
            if canary.crash_loop:
                self._stop_soon(f"crash loop: {warning}", Cause.CRASH_LOOP)
        elif not s.in_rollout and status.stable is not None:
            stable = status.stable
            turn = (
                self.machine.stable_crash_loop(s, stable.problem)
                if stable.crash_loop
                else self.machine.stable_recovered(s)
            )
            if turn is not None:
                self._set_state_safely(turn)
            if not stable.healthy:
                warning = describe_track("stable", stable)
        if warning != s.warning:
            # What the platform shows going wrong (or healing) is part of the record: a pair
            # reading the history later must see the replica that died, not only the outcome.
            self._journal_quietly(
                "observed", "info", detail=warning or f"recovered: all replicas ready (was: {s.warning})"
            )
        self.state = self.machine.observed(self.state, warning)

    def _stop_soon(self, reason: str, cause: Cause) -> None:
        """Abort the rollout from a poll, under the lock, once (the poll itself never waits)."""
        if self._stop_task is not None and not self._stop_task.done():
            return

        async def stop() -> None:
            async with self._lock:
                await self._drive(self.machine.stop(self.state, reason, cause))

        self._stop_task = self._spawn(stop(), f"stop-{self.env.name}")
        self._tasks.append(self._stop_task)

    async def _metrics_loop(self) -> None:
        assert self.metrics is not None
        interval = self.env.metrics.interval
        while True:
            started = time.monotonic()
            try:
                await self.metrics.collect()
                self._poll.metrics.append(await self.metrics.window(interval * 2))
                self._poll.metrics_error = None
            except BackendError as err:
                self._poll.metrics_error = redact(str(err))
            self._changed()
            # Schedule after the last poll ended so polls never overlap.
            await asyncio.sleep(max(0.05, interval - (time.monotonic() - started)))

    # ------------------------------------------------------------------ intents

    async def act(
        self, action: str, decide: Callable[[RolloutState], Transition], reason: str = ""
    ) -> ActionResult:
        """Apply one user intent: decide against the current state, journal that it starts,
        run its effects (gated on observation), journal how it ended."""
        started = time.monotonic()
        if not self.started:
            message = f"{self.env.name} is not connected: {self._poll.error or 'backend not started'}"
            return self._refuse(action, reason, message)
        if self.env.protected and not reason.strip():
            return self._refuse(action, reason, f"{self.env.name} is protected: a reason is required")
        async with self._lock:
            try:
                transition = decide(self.state)
            except Refused as err:
                return self._refuse(action, reason, str(err))
            # The record comes first: an action that cannot be journaled is not taken.
            unwritten = self._journal_quietly(
                action, "started", reason=reason, detail=transition.note or transition.state.reason
            )
            if unwritten:
                return ActionResult(False, f"not done, nothing changed: {unwritten}", Cause.JOURNAL_FAILURE)
            try:
                error = await self._drive(transition, action=action, reason=reason)
            except _GateRefused as gate:
                refused = self._refuse(action, reason, f"refused by the health gate: {gate}")
                return replace(refused, cause=Cause.HEALTH_GATE)
            elapsed = (time.monotonic() - started) * 1000
            if error:
                self._journal_quietly(action, "failed", reason=reason, detail=error, duration_ms=elapsed)
                return ActionResult(False, error)
            done = transition.note or self.state.reason
            unwritten = self._journal_quietly(action, "ok", reason=reason, detail=done, duration_ms=elapsed)
            if unwritten:
                await self._journal_lost(unwritten)
                return ActionResult(False, f"{done}; but the journal failed: {unwritten}", Cause.JOURNAL_FAILURE)
        return ActionResult(True, done)

    def record_interruption(self, why: str) -> None:
        """The cockpit is being stopped mid-way (a signal): the state and the journal say so."""
        self.state = self.machine.interrupted(self.state, why).state
        self._changed()
        self._journal_quietly("interrupted", "info", detail=f"{why} (cause {Cause.INTERRUPTED})")

    def record_timeout(self, why: str) -> None:
        self._journal_quietly("timeout", "info", detail=why)

    def _refuse(self, action: str, reason: str, message: str) -> ActionResult:
        unwritten = self._journal_quietly(action, "refused", reason=reason, detail=message)
        return ActionResult(False, message + (f" (and the journal failed: {unwritten})" if unwritten else ""))

    async def _journal_lost(self, error: str) -> None:
        """The journal failed mid-rollout: stop moving traffic forward. Must hold the lock."""
        if self.state.in_rollout:
            await self._drive(self.machine.stop(self.state, f"journal failure: {error}", Cause.JOURNAL_FAILURE))

    def decider(
        self,
        action: str,
        *,
        version: str | None = None,
        weight: int | None = None,
        revision: int | None = None,
        reason: str = "",
        cause: Cause = Cause.ABORTED_BY_USER,
    ) -> Callable[[RolloutState], Transition]:
        """The machine's pure decision for ``action``; raises :class:`Refused` when applied
        to a state in which the action is illegal."""
        m = self.machine
        match action:
            case "rollout":
                return lambda s: m.start(s, version or "", self.versions, time.time())
            case "promote":
                return lambda s: m.promote(s, time.time())
            case "promote-full":
                return m.promote_full
            case "abort":
                why = f"aborted by {self.user}" + (f": {reason}" if reason else "")
                return lambda s: m.abort(s, why, cause)
            case "retry":
                return lambda s: m.retry(s, self.versions, time.time())
            case "set-weight":
                return lambda s: m.set_weight(s, s.weight if weight is None else weight)
            case "rollback":
                return lambda s: m.rollback(s, revision)
        raise ValueError(f"unknown action {action!r}")

    def preview(self, action: str, **args: object) -> str | None:
        """Why ``action`` would be refused right now, or ``None``: lets the screen say so
        before asking anyone to type a confirmation. Pure: no I/O, no state change."""
        if not self.started:
            return f"{self.env.name} is not connected: {self._poll.error or 'the backend is starting'}"
        try:
            self.decider(action, **args)(self.state)  # type: ignore[arg-type]
        except Refused as err:
            return str(err)
        return None

    async def start_rollout(self, version: str, reason: str = "") -> ActionResult:
        return await self.act("rollout", self.decider("rollout", version=version), reason)

    async def promote(self, reason: str = "") -> ActionResult:
        return await self.act("promote", self.decider("promote"), reason)

    async def promote_full(self, reason: str = "") -> ActionResult:
        return await self.act("promote-full", self.decider("promote-full"), reason)

    async def abort(self, reason: str = "", cause: Cause = Cause.ABORTED_BY_USER) -> ActionResult:
        return await self.act("abort", self.decider("abort", reason=reason, cause=cause), reason)

    async def retry(self, reason: str = "") -> ActionResult:
        return await self.act("retry", self.decider("retry"), reason)

    async def set_weight(self, weight: int, reason: str = "") -> ActionResult:
        return await self.act("set-weight", self.decider("set-weight", weight=weight), reason)

    async def rollback(self, revision: int | None = None, reason: str = "") -> ActionResult:
        return await self.act("rollback", self.decider("rollback", revision=revision), reason)

    # ------------------------------------------------------------------ running effects

    def _set_state(self, new: RolloutState, note: str, action: str) -> str | None:
        """Make ``new`` the state and record it. Returns the error when the journal could
        not be written (the state is set anyway: it is what is true)."""
        old = self.state
        # The warning is owned by observation: a transition computed before the last poll
        # must not wipe what that poll saw, while a canary is still on.
        if new.in_rollout and new.canary_version is not None and new.canary_version == old.canary_version:
            new = replace(new, warning=old.warning)
        self.state = new
        if new.epoch != old.epoch or new.step_index != old.step_index:
            self._cancel_step_task()
        unwritten = None
        try:
            if new.revision != old.revision and new.revisions:
                self.journal.add_revision(self.service, self.env.name, new.revisions[-1])
            if note and action == "auto":  # an intent's own first step is journaled by act()
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
        self._changed()
        return unwritten

    def _cancel_step_task(self) -> None:
        task = self._step_task
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
        self._step_task = None

    async def _apply(self, effect: Effect) -> None:
        match effect:
            case DeployCanary(version):
                await self.backend.deploy_canary(version)
            case SetWeight(weight):
                await self.backend.set_weight(weight)
                self.state = replace(self.state, weight=weight)
                self._changed()
            case PromoteCanary():
                await self.backend.promote_canary()
            case RemoveCanary():
                await self.backend.remove_canary()
            case DeployStable(version):
                await self.backend.deploy_stable(version)
        # Show what the platform now runs at once, not at the next poll.
        with contextlib.suppress(BackendError):
            self._poll.status = await self.backend.status()

    def _moves_forward(self, effect: Effect) -> bool:
        """Does ``effect`` send more traffic to the canary (what the health gate guards)?"""
        return isinstance(effect, PromoteCanary) or (
            isinstance(effect, SetWeight) and effect.weight > self.state.weight
        )

    async def _gate(self, expected: str | None) -> str | None:
        """Observe the canary right now: ``None`` when it may take more traffic, otherwise
        what was seen. A status that cannot be read closes the gate (never a silent pass)."""
        try:
            status = await self.backend.status()
        except BackendError as err:
            return f"the status cannot be read: {redact(str(err))}"
        self._poll.status = status
        canary = status.canary
        if canary is None:
            return "no canary is running"
        if expected is not None and canary.version != expected:
            return f"the canary runs {canary.version}, not {expected}"
        if not canary.healthy:
            seen = describe_track("canary", canary)
            self.state = self.machine.observed(self.state, seen)
            return seen
        return None

    async def _drive(
        self, transition: Transition | None, action: str = "auto", reason: str = ""
    ) -> str | None:
        """Run transitions until one waits (pause, analysis) or ends. Must hold the lock.
        Returns the error message of a failed backend effect, if any. Raises
        :class:`_GateRefused` (nothing changed) when the health gate refuses the intent's
        first traffic move; an automatic step refused by the gate aborts the rollout."""
        error: str | None = None
        while transition is not None and not self._closing:
            first = next((e for e in transition.effects if isinstance(e, BACKEND_EFFECTS)), None)
            if first is not None and self._moves_forward(first):
                expected = transition.state.canary_version or transition.state.target_version
                problem = await self._gate(expected)
                if problem and action != "auto":
                    raise _GateRefused(problem)
                if problem:
                    transition = self.machine.stop(self.state, f"health gate: {problem}", Cause.HEALTH_GATE)
                    continue
            unwritten = self._set_state(transition.state, transition.note, action)
            action = "auto"  # what follows an intent's first step happens on its own
            if unwritten and transition.state.in_rollout:
                # Without a record, traffic only moves back to stable.
                transition = self.machine.stop(
                    self.state, f"journal failure: {unwritten}", Cause.JOURNAL_FAILURE
                )
                continue
            token = transition.then
            try:
                for effect in transition.effects:
                    if isinstance(effect, WaitPause | RunAnalysis):
                        self._start_step_task(effect, token)
                        continue
                    if effect is not first and self._moves_forward(effect):
                        problem = await self._gate(self.state.canary_version or self.state.target_version)
                        if problem:
                            raise _GateClosed(problem)
                    await self._apply(effect)
            except BackendError as err:
                error = redact(str(err))
                transition = self.machine.failed(self.state, token, error) if token else None
                continue
            except _GateClosed as gate:
                transition = self.machine.stop(self.state, f"health gate: {gate}", Cause.HEALTH_GATE)
                continue
            if token is None or any(isinstance(e, WaitPause | RunAnalysis) for e in transition.effects):
                break
            if token.what == "weight-set":
                self.state = self.machine.weight_set(self.state, self.state.weight)
                self._changed()
                break
            transition = self.machine.resume(self.state, token, time.time(), self.user)
        return error

    def _start_step_task(self, effect: WaitPause | RunAnalysis, token: Resume | None) -> None:
        assert token is not None
        self._cancel_step_task()
        if isinstance(effect, WaitPause):
            if effect.seconds is None:
                return  # waits for a promote
            self._step_task = self._spawn(self._pause(effect.seconds, token), f"pause-{self.env.name}")
        else:
            self._step_task = self._spawn(self._analyse(effect.checks, token), f"analysis-{self.env.name}")

    async def _pause(self, seconds: float, token: Resume) -> None:
        await asyncio.sleep(seconds)
        async with self._lock:
            await self._drive(self.machine.resume(self.state, token, time.time(), self.user))

    async def _analyse(self, checks: Sequence[str], token: Resume) -> None:
        if self.metrics is None:
            view = AnalysisView(
                token.step, Outcome.INCONCLUSIVE, (), "no metrics source for this environment"
            )
        else:
            specs = [self.plan.analysis.by_name(name) for name in checks]

            def progress(view: AnalysisView) -> None:
                if self.state.epoch == token.epoch and self.state.step_index == token.step:
                    self.state = self.machine.analysis_progress(self.state, view)
                    self._changed()

            view = await run_analysis(token.step, specs, self.metrics, progress)
        async with self._lock:
            await self._drive(self.machine.analysis_finished(self.state, token, view, time.time()))
