"""The machine driver: the cockpit walks the steps itself.

It turns commands into the pure :class:`RolloutMachine`'s transitions and interprets
their effects against the backend, one at a time under the host's lock, so an abort
pressed while a deploy is under way runs right after it, against the state as it then
is. Pauses and analyses run as cancellable tasks; their reports carry the epoch and
step they belong to, so a late report after an abort is ignored instead of undoing it.

It acts on what it observes, never on what it last did: every move of traffic towards
the canary and every promote is preceded, under the lock, by a fresh
``backend.status()`` and goes ahead only when the canary is observed healthy and runs
the expected version (see :meth:`MachineDriver._gate`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace

from cockpit.adapters.base import BackendError
from cockpit.engine import commands as cmd
from cockpit.engine.analysis import run_analysis
from cockpit.engine.drivers.base import Decision, Driver, DriverHost, GateRefused
from cockpit.engine.machine import (
    BACKEND_EFFECTS,
    STEP_TASKS,
    DeployCanary,
    DeployStable,
    Effect,
    PromoteCanary,
    RemoveCanary,
    Resume,
    RolloutMachine,
    RunAnalysis,
    RunExpand,
    RunSmoke,
    SetWeight,
    Transition,
    WaitPause,
)
from cockpit.engine.reconcile import Snapshot, reconcile
from cockpit.engine.smoke import Target, run_checks, target_for
from cockpit.engine.state import Activity, AnalysisView, Cause, Outcome, Revision, RolloutState, SmokeResult
from cockpit.engine.views import describe_track
from cockpit.migrations.order import release_key
from cockpit.model import BackendStatus
from cockpit.plan.migrations import Migration
from cockpit.plan.models import SmokeCheck
from cockpit.secrets import redact

log = logging.getLogger(__name__)

# After a promote the old version's processes may take a while to drain: the contract
# after promote waits up to this long to see them gone before its guard judges.
CONTRACT_SETTLE = 60.0


class _GateClosed(Exception):
    """The health gate closed between two effects of one transition: stop and go back."""


class SchemaRefused(BackendError):
    """A version the schema no longer fits (a later release's contract is applied) is not
    deployed: the action fails with this reason and nothing changes on the platform."""


class _ExpandMissing(Exception):
    """The database does not record an expand step the canary needs: nothing is deployed."""


class MachineDriver(Driver):
    def __init__(self, host: DriverHost) -> None:
        super().__init__(host)
        plan = host.plan
        self.machine = RolloutMachine(plan.strategy_for(host.env.name).steps(), plan.guardrails.history_limit)
        self._step_task: asyncio.Task[None] | None = None
        self._stop_task: asyncio.Task[None] | None = None
        self._contract_task: asyncio.Task[None] | None = None

    @property
    def steps(self) -> tuple[str, ...]:
        return tuple(s.describe() for s in self.machine.steps)

    def initial(self, stable_version: str, revisions: Sequence[Revision]) -> RolloutState:
        return self.machine.initial(self.host.env.name, stable_version, revisions)

    # ------------------------------------------------------------------ commands

    def decider(self, command: cmd.Command, reason: str = "") -> Callable[[RolloutState], Transition]:
        """The one mapping from a command to the machine's pure decision; the decision
        raises ``Refused`` when applied to a state in which the command is illegal."""
        m, host = self.machine, self.host
        now = host.clock.now
        migrate = host.migrations is not None
        match command:
            case cmd.StartRollout(version):
                return lambda s: m.start(s, version, host.versions, now(), migrate)
            case cmd.Promote():
                return lambda s: m.promote(s, now())
            case cmd.PromoteFull():
                return m.promote_full
            case cmd.Pause():
                return lambda s: m.pause(s, host.user)
            case cmd.Resume():
                return lambda s: m.unpause(s, now())
            case cmd.Abort(cause):
                why = f"aborted by {host.user}" + (f": {reason}" if reason else "")
                return lambda s: m.abort(s, why, cause)
            case cmd.Retry():
                return lambda s: m.retry(s, host.versions, now(), migrate)
            case cmd.SetWeight(weight):
                return lambda s: m.set_weight(s, weight)
            case cmd.Rollback(revision):
                return lambda s: m.rollback(s, revision)
        raise TypeError(f"not a command: {command!r}")

    def decide(self, command: cmd.Command, reason: str = "") -> Decision:
        transition = self.decider(command, reason)(self.host.state)
        return Decision(
            detail=transition.note or transition.state.reason, note=transition.note, plan=transition
        )

    async def run(self, decision: Decision, action: str, reason: str) -> str | None:
        assert isinstance(decision.plan, Transition)
        return await self._drive(decision.plan, action=action)

    # ------------------------------------------------------------------ observations

    def restore(self, snapshot: Snapshot | None, status: BackendStatus | None) -> list[str]:
        self.host.state, notes = reconcile(self.host.state, snapshot, status)
        return notes

    def observe(self, status: BackendStatus) -> None:
        """Fold one status poll into the state: what is wrong shows at once, a canary that
        crash-loops aborts the rollout, a stable that crash-loops is Degraded."""
        host = self.host
        s = host.state
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
                self._set(turn, "auto")
            if not stable.healthy:
                warning = describe_track("stable", stable)
            if canary is not None and s.activity is Activity.IDLE:
                # No rollout is on, yet the platform runs a canary: a deploy whose answer was
                # lost (a timeout) can land after the abort that followed it. Said, never hidden.
                stray = (
                    f"canary {canary.version} runs on the platform though no rollout is on"
                    f" ({status.weight}% of traffic)"
                )
                warning = f"{warning}; {stray}" if warning else stray
        if warning != s.warning:
            # What the platform shows going wrong (or healing) is part of the record: a pair
            # reading the history later must see the replica that died, not only the outcome.
            host.journal_quietly(
                "observed", "info", detail=warning or f"recovered: all replicas ready (was: {s.warning})"
            )
        host.state = self.machine.observed(host.state, warning)

    def _stop_soon(self, reason: str, cause: Cause) -> None:
        """Abort the rollout from a poll, under the lock, once (the poll itself never waits)."""
        if self._stop_task is not None and not self._stop_task.done():
            return

        async def stop() -> None:
            async with self.host.lock:
                await self._drive(self.machine.stop(self.host.state, reason, cause))

        self._stop_task = self.host.spawn(stop(), f"stop-{self.host.env.name}")

    # ------------------------------------------------------------------ outside events

    async def halt(self, reason: str, cause: Cause) -> None:
        if self.host.state.in_rollout:
            await self._drive(self.machine.stop(self.host.state, reason, cause))

    def crashed(self, error: str) -> None:
        self._set(self.machine.crashed(self.host.state, error), "auto")

    def interrupted(self, why: str) -> None:
        self.host.state = self.machine.interrupted(self.host.state, why).state
        self.host.changed()

    async def stop(self) -> None:
        tasks = [t for t in (self._step_task, self._stop_task, self._contract_task) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ------------------------------------------------------------------ running effects

    def _set(self, transition: Transition, action: str) -> str | None:
        """Make the transition's state the host's; a new epoch or step drops the step task."""
        old = self.host.state
        unwritten = self.host.set_state(transition.state, transition.note, action)
        new = self.host.state
        if new.epoch != old.epoch or new.step_index != old.step_index:
            self._cancel_step_task()
        return unwritten

    def _cancel_step_task(self) -> None:
        task = self._step_task
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
        self._step_task = None

    async def _apply(self, effect: Effect) -> None:
        host, backend = self.host, self.host.backend
        match effect:
            case DeployCanary(version):
                await backend.deploy_canary(version)
            case SetWeight(weight):
                await backend.set_weight(weight)
                host.state = replace(host.state, weight=weight)
                host.changed()
            case PromoteCanary():
                await backend.promote_canary()
            case RemoveCanary():
                await backend.remove_canary()
            case DeployStable(version):
                await backend.deploy_stable(version)
        # Show what the platform now runs at once, not at the next poll.
        with contextlib.suppress(BackendError):
            host.poll.status = await backend.status()

    def _moves_forward(self, effect: Effect) -> bool:
        """Does ``effect`` send more traffic to the canary (what the health gate guards)?"""
        return isinstance(effect, PromoteCanary) or (
            isinstance(effect, SetWeight) and effect.weight > self.host.state.weight
        )

    async def _gate(self, expected: str | None) -> str | None:
        """Observe the canary right now: ``None`` when it may take more traffic, otherwise
        what was seen. A status that cannot be read closes the gate (never a silent pass)."""
        host = self.host
        try:
            status = await host.backend.status()
        except BackendError as err:
            return f"the status cannot be read: {redact(str(err))}"
        host.poll.status = status
        canary = status.canary
        if canary is None:
            return "no canary is running"
        if expected is not None and canary.version != expected:
            return f"the canary runs {canary.version}, not {expected}"
        if not canary.healthy:
            seen = describe_track("canary", canary)
            host.state = self.machine.observed(host.state, seen)
            return seen
        return None

    async def _drive(self, transition: Transition | None, action: str = "auto") -> str | None:
        """Run transitions until one waits (pause, analysis) or ends. Must hold the lock.
        Returns the error message of a failed backend effect, if any. Raises
        :class:`GateRefused` (nothing changed) when the health gate refuses the command's
        first traffic move; an automatic step refused by the gate aborts the rollout."""
        host = self.host
        error: str | None = None
        promoted: str | None = None
        while transition is not None and not host.closing:
            first = next((e for e in transition.effects if isinstance(e, BACKEND_EFFECTS)), None)
            if first is not None and self._moves_forward(first):
                expected = transition.state.canary_version or transition.state.target_version
                problem = await self._gate(expected)
                if problem and action != "auto":
                    raise GateRefused(problem)
                if problem:
                    transition = self.machine.stop(host.state, f"health gate: {problem}", Cause.HEALTH_GATE)
                    continue
            unwritten = self._set(transition, action)
            action = "auto"  # what follows a command's first step happens on its own
            if unwritten and transition.state.in_rollout:
                # Without a record, traffic only moves back to stable.
                transition = self.machine.stop(
                    host.state, f"journal failure: {unwritten}", Cause.JOURNAL_FAILURE
                )
                continue
            token = transition.then
            try:
                for effect in transition.effects:
                    if isinstance(effect, STEP_TASKS):
                        self._start_step_task(effect, token)
                        continue
                    if effect is not first and self._moves_forward(effect):
                        problem = await self._gate(host.state.canary_version or host.state.target_version)
                        if problem:
                            raise _GateClosed(problem)
                    if isinstance(effect, DeployCanary):
                        await self._expand_guard(effect.version)
                    if isinstance(effect, DeployStable):
                        await self._schema_guard(effect.version)
                    await self._apply(effect)
            except BackendError as err:
                error = redact(str(err))
                transition = self.machine.failed(host.state, token, error) if token else None
                continue
            except _GateClosed as gate:
                transition = self.machine.stop(host.state, f"health gate: {gate}", Cause.HEALTH_GATE)
                continue
            except _ExpandMissing as missing:
                transition = self.machine.expand_failed(host.state, token, str(missing)) if token else None
                continue
            if token is None or any(isinstance(e, STEP_TASKS) for e in transition.effects):
                break
            if token.what == "weight-set":
                host.state = self.machine.weight_set(host.state, host.state.weight)
                host.changed()
                break
            transition = self.machine.resume(host.state, token, host.clock.now(), host.user)
            if token.what == "promoted" and transition is not None:
                promoted = transition.state.stable_version
        if promoted is not None and host.state.stable_version == promoted:
            self._contract_soon(promoted)
        return error

    # ------------------------------------------------------------------ step tasks

    def _start_step_task(
        self, effect: WaitPause | RunAnalysis | RunSmoke | RunExpand, token: Resume | None
    ) -> None:
        assert token is not None
        self._cancel_step_task()
        name = self.host.env.name
        if isinstance(effect, RunExpand):
            self._step_task = self.host.spawn(self._expand(effect.version, token), f"expand-{name}")
        elif isinstance(effect, WaitPause):
            if effect.seconds is None:
                return  # waits for a promote
            self._step_task = self.host.spawn(self._pause(effect.seconds, token), f"pause-{name}")
        elif isinstance(effect, RunSmoke):
            self._step_task = self.host.spawn(self._smoke(effect.checks, token), f"smoke-{name}")
        else:
            self._step_task = self.host.spawn(self._analyse(effect.checks, token), f"analysis-{name}")

    async def _pause(self, seconds: float, token: Resume) -> None:
        host = self.host
        await host.clock.sleep(seconds)
        async with host.lock:
            await self._drive(self.machine.resume(host.state, token, host.clock.now(), host.user))

    async def _analyse(self, checks: Sequence[str], token: Resume) -> None:
        host = self.host
        if host.metrics is None:
            view = AnalysisView(
                token.step, Outcome.INCONCLUSIVE, (), "no metrics source for this environment"
            )
        else:
            specs = [host.plan.analysis.by_name(name) for name in checks]

            def progress(view: AnalysisView) -> None:
                if host.state.epoch == token.epoch and host.state.step_index == token.step:
                    host.state = self.machine.analysis_progress(host.state, view)
                    host.changed()

            view = await run_analysis(
                token.step, specs, host.metrics, progress, sleep=host.clock.sleep, clock=host.clock.now
            )
        async with host.lock:
            await self._drive(self.machine.analysis_finished(host.state, token, view, host.clock.now()))

    async def _smoke(self, names: Sequence[str], token: Resume) -> None:
        """Send the step's smoke checks where the backend says the service answers, on the
        track each names; every result is journaled as it comes, the last decides."""
        host = self.host

        def current() -> bool:
            return host.state.epoch == token.epoch and host.state.step_index == token.step

        async def resolve(check: SmokeCheck) -> Target | str:
            try:
                status = await host.backend.status()
            except BackendError as err:
                return f"the status cannot be read: {redact(str(err))}"
            host.poll.status = status
            s = host.state
            # {version} is what the cockpit deployed there, so a track running anything else fails.
            versions = {"canary": s.canary_version, "stable": s.stable_version}
            return target_for(check, status, versions, host.env.name)

        def record(result: SmokeResult) -> None:
            if not current():
                return  # aborted or paused meanwhile: this run's results are not the record
            detail = result.failure() if not result.passed else f"{result.summary()} ({result.request})"
            host.journal_quietly("smoke", "ok" if result.passed else "failed", detail=detail)
            host.state = self.machine.smoke_progress(host.state, result)
            host.changed()

        defined = {c.name: c for c in host.plan.smoke}
        unknown = next((name for name in names if name not in defined), None)
        if unknown is not None:
            # The loader refuses such a plan; one built in code reaches here: fail the step, loudly.
            failed = SmokeResult(unknown, False, "", problem="the plan defines no [[smoke]] check of this name")
            record(failed)
            results: tuple[SmokeResult, ...] = (failed,)
        else:
            checks = [defined[name] for name in names]
            results = await run_checks(checks, resolve, sleep=host.clock.sleep, on_result=record)
        async with host.lock:
            await self._drive(self.machine.smoke_finished(host.state, token, results, host.clock.now()))

    # ------------------------------------------------------------------ migrations

    async def _expand(self, version: str, token: Resume) -> None:
        """Apply the expand steps ``version`` needs, then report back: the canary is
        deployed only once the database records them all as applied."""
        host = self.host
        migrations = host.migrations
        assert migrations is not None

        def progress(n: int, total: int, step: Migration) -> None:
            host.state = self.machine.expand_progress(host.state, token, f"expand {n}/{total}: {step.name}")
            host.changed()

        error = await migrations.run_expand(version, lambda: host.state, progress, f"cockpit ({host.user})")
        async with host.lock:
            if error is None:
                await self._drive(self.machine.resume(host.state, token, host.clock.now(), host.user))
            else:
                await self._drive(self.machine.expand_failed(host.state, token, error))

    async def _until_alone(self, version: str) -> None:
        """Wait (up to :data:`CONTRACT_SETTLE`) until the platform is seen running nothing
        older than ``version``; the contract's own guard then judges on a fresh look."""
        host = self.host
        key = release_key(version)
        deadline = host.clock.monotonic() + CONTRACT_SETTLE
        while host.clock.monotonic() < deadline:
            try:
                status = await host.backend.status()
            except BackendError:
                status = None
            tracks = [t for t in (status.stable, status.canary) if t is not None] if status else None
            if tracks is not None and all(release_key(t.version) >= key for t in tracks):
                return
            await host.clock.sleep(1.0)

    async def _expand_guard(self, version: str) -> None:
        """The canary deploy's guard: every expand step ``version`` needs is recorded as
        applied in the database's records, read right now (not remembered)."""
        migrations = self.host.migrations
        if migrations is not None and (missing := await migrations.deploy_refusal(version)):
            raise _ExpandMissing(missing)

    async def _schema_guard(self, version: str) -> None:
        """A rollback's guard: no contract of a later release is applied (it removed what
        ``version`` uses), read from the database right now."""
        migrations = self.host.migrations
        if migrations is not None and (gone := await migrations.schema_refusal(version)):
            raise SchemaRefused(gone)

    def _contract_soon(self, version: str) -> None:
        """After a promote left ``version`` alone, its contract steps run by themselves
        where the environment's database says ``contract = "after-promote"``."""
        host = self.host
        migrations = host.migrations
        if migrations is None or migrations.database.contract != "after-promote":
            return
        if self._contract_task is not None and not self._contract_task.done():
            return

        async def contract() -> None:
            await self._until_alone(version)
            # Under the environment's lock: no rollout starts while a contract step runs.
            async with host.lock:
                await migrations.run_contract(
                    version, lambda: host.state, host.backend.status, f"cockpit ({host.user})"
                )

        self._contract_task = host.spawn(contract(), f"contract-{host.env.name}")
