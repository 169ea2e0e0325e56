"""The mirror driver: the platform walks the steps (Argo Rollouts, Flagger); the cockpit
mirrors what it reports and forwards commands to it.

The RolloutState is made from the platform's observation (:class:`PlatformRollout`):
phase, step n/m, weight, canary and stable versions, the analysis run with its
measurements, revisions. What the platform says wins over what the cockpit believes:
a state the cockpit set itself (an abort whose answer was lost) lasts only until the
next observation. The cockpit never walks a step, never calls the backend's traffic
methods and runs no timer or analysis of its own.

A command is checked against the mirrored state with the machine's own rules (so a
person reads the same refusal whichever driver runs), then forwarded; the platform may
still refuse it in its own words. Every forwarded command is journaled by the host
(started, then ok / refused / failed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from cockpit.adapters.base import (
    BackendConfigError,
    BackendError,
    CommandRefused,
    PlatformRollouts,
)
from cockpit.engine import commands as cmd
from cockpit.engine.drivers.base import Decision, Driver, DriverHost
from cockpit.engine.machine import Refused, RolloutMachine
from cockpit.engine.polling import STATUS_INTERVAL
from cockpit.engine.reconcile import Snapshot
from cockpit.engine.state import (
    Activity,
    AnalysisView,
    Cause,
    CheckView,
    Measurement,
    Outcome,
    Phase,
    Revision,
    RolloutState,
)
from cockpit.engine.views import describe_track
from cockpit.model import (
    AnalysisPhase,
    BackendStatus,
    Operation,
    PauseReason,
    PlatformAnalysisRun,
    PlatformRollout,
    RolloutPhase,
)
from cockpit.secrets import redact

log = logging.getLogger(__name__)

ACTIVITIES = {
    Operation.DEPLOYING: Activity.DEPLOYING,
    Operation.SHIFTING: Activity.SHIFTING,
    Operation.ANALYSING: Activity.ANALYSING,
    Operation.PROMOTING: Activity.PROMOTING,
    Operation.ABORTING: Activity.ABORTING,
    Operation.ROLLING_BACK: Activity.ROLLING_BACK,
}


@dataclass(frozen=True)
class Forward:
    """A command as the platform takes it: its verb and arguments."""

    verb: str
    args: dict[str, object] = field(default_factory=dict)
    abort: tuple[Cause, str] | None = None  # for an abort: its cause and who/why, for the state


def analysis_view(run: PlatformAnalysisRun) -> AnalysisView:
    """The platform's analysis run as the screen shows one (its phases are Argo's, which
    the cockpit's outcomes spell the same way)."""
    checks = tuple(
        CheckView(
            name=m.name,
            condition=m.condition,
            unit=m.unit,
            outcome=Outcome(m.phase.value),
            measurements=tuple(
                Measurement(x.ts, Outcome(x.phase.value), x.value, x.stable_value, x.message)
                for x in m.measurements
            ),
            taken=m.taken,
            count=m.count,
            failed=m.failed,
            inconclusive=m.inconclusive,
            errors=m.errors,
        )
        for m in run.metrics
    )
    return AnalysisView(run.step, Outcome(run.phase.value), checks, run.message)


class MirrorDriver(Driver):
    def __init__(self, host: DriverHost) -> None:
        super().__init__(host)
        backend = host.backend
        if not isinstance(backend, PlatformRollouts):
            raise BackendConfigError(
                f"the {backend.name} backend walks the steps itself but does not report its rollouts"
                " (it must implement PlatformRollouts)"
            )
        self.platform: PlatformRollouts = backend
        plan = host.plan
        # Only to check a command against the mirrored state, in the machine's own words.
        self.rules = RolloutMachine(plan.strategy_for(host.env.name).steps(), plan.guardrails.history_limit)
        self.seen: PlatformRollout | None = None  # the newest observation mirrored
        self._abort: tuple[Cause, str] | None = None  # the cause of the abort this cockpit forwarded
        self._broken = False  # the watch died: the state says so and stops following
        self._watch_task: asyncio.Task[None] | None = None

    @property
    def steps(self) -> tuple[str, ...]:
        if self.seen is not None and self.seen.steps:
            return self.seen.steps
        return tuple(s.describe() for s in self.rules.steps)

    def initial(self, stable_version: str, revisions: Sequence[Revision]) -> RolloutState:
        return self.rules.initial(self.host.env.name, stable_version, revisions)

    # ------------------------------------------------------------------ commands

    def decide(self, command: cmd.Command, reason: str = "") -> Decision:
        host, rules = self.host, self.rules
        s, now = host.state, host.clock.now()
        match command:
            case cmd.StartRollout(version):
                rules.start(s, version, host.versions, now)
                forward = Forward("set-image", {"version": version})
            case cmd.Promote():
                rules.promote(s, now)
                forward = Forward("promote")
            case cmd.PromoteFull():
                rules.promote_full(s)
                forward = Forward("promote-full")
            case cmd.Pause():
                rules.pause(s, host.user)
                forward = Forward("pause", {"by": host.user})
            case cmd.Resume():
                rules.unpause(s, now)
                forward = Forward("resume")
            case cmd.Abort(cause):
                why = f"aborted by {host.user}" + (f": {reason}" if reason else "")
                rules.abort(s, why, cause)
                forward = Forward("abort", abort=(cause, why))
            case cmd.Retry():
                rules.retry(s, host.versions, now)
                forward = Forward("retry")
            case cmd.SetWeight(weight):
                rules.set_weight(s, weight)
                forward = Forward("set-weight", {"weight": weight})
            case cmd.Rollback(revision):
                rules.rollback(s, revision)
                forward = Forward("undo", {"revision": self._rollback_target(s, revision)})
            case _:
                raise TypeError(f"not a command: {command!r}")
        shown = " ".join(str(v) for k, v in forward.args.items() if k != "by")
        detail = f"sent to {host.backend.name}: {forward.verb}" + (f" {shown}" if shown else "")
        return Decision(detail=detail, note="", plan=forward)

    @staticmethod
    def _rollback_target(state: RolloutState, revision: int | None) -> int:
        """The revision the machine's rule chose (the one before stable by default)."""
        if revision is not None:
            return revision
        return [r for r in state.revisions if r.version != state.stable_version][-1].number

    async def run(self, decision: Decision, action: str, reason: str) -> str | None:
        forward = decision.plan
        assert isinstance(forward, Forward)
        try:
            await self.platform.send(forward.verb, **forward.args)
        except CommandRefused as err:
            raise Refused(f"refused by the {self.host.backend.name} platform: {redact(str(err))}") from None
        except BackendError as err:
            error = redact(str(err))
            self._unanswered(forward, error, action)
            return error
        if forward.abort is not None:
            self._abort = forward.abort
        elif forward.verb in ("set-image", "retry"):
            self._abort = None
        await self._refresh(action)
        return None

    def _unanswered(self, forward: Forward, error: str, action: str) -> None:
        """The platform's answer is unknown: the state says what is known until it is seen."""
        host = self.host
        if forward.abort is not None:
            # Traffic is not known to be on stable: never let it read as aborted.
            self._abort = forward.abort
            degraded = replace(
                host.state,
                phase=Phase.DEGRADED,
                activity=Activity.IDLE,
                cause=Cause.BACKEND_FAILURE,
                reason=f"abort failed: {error}; abort (a) sends traffic back to stable",
            )
            host.set_state(degraded, "abort failed", action)
            return
        unconfirmed = f"{host.state.reason} ({forward.verb} not confirmed: {error})"
        host.set_state(replace(host.state, reason=unconfirmed), "", action)

    # ------------------------------------------------------------------ observations

    async def connect(self, attach: bool) -> None:
        if not attach:  # attaching changes nothing on the platform
            plan = self.host.plan
            await self.platform.use_strategy(plan.strategy_for(self.host.env.name).steps(), plan.analysis.checks)
        self.seen = await self.platform.rollout_status()

    def restore(self, snapshot: Snapshot | None, status: BackendStatus | None) -> list[str]:
        notes: list[str] = []
        if self.seen is not None:
            host = self.host
            was = snapshot.phase if snapshot is not None else None
            host.state = self._state(self.seen)
            if host.state.in_rollout or (was not in (None, Phase.HEALTHY.value)):
                notes.append(f"mirrored from the {host.backend.name} platform: {self.seen.message}")
        self._watch_task = self.host.spawn(self._watch(), f"mirror-{self.host.env.name}")
        return notes

    def observe(self, status: BackendStatus) -> None:
        """Show what the status poll sees wrong; the platform decides what to do about it."""
        host = self.host
        s = host.state
        warning = ""
        if s.in_rollout and status.canary is not None and not status.canary.healthy:
            warning = describe_track("canary", status.canary)
        elif not s.in_rollout and status.stable is not None and not status.stable.healthy:
            warning = describe_track("stable", status.stable)
        if warning != s.warning:
            host.journal_quietly(
                "observed", "info", detail=warning or f"recovered: all replicas ready (was: {s.warning})"
            )
            host.state = replace(s, warning=warning)

    async def _watch(self) -> None:
        """Follow the platform: mirror each new observation as soon as it is reported."""
        while True:
            try:
                rollout = await self.platform.rollout_status()
            except BackendError:
                # The status poll shows the backend down (and backs off); try again later.
                await self.host.clock.sleep(STATUS_INTERVAL)
                continue
            self._mirror(rollout, "auto")
            try:
                await self.platform.watch(rollout.generation, STATUS_INTERVAL)
            except BackendError:
                await self.host.clock.sleep(STATUS_INTERVAL)

    async def _refresh(self, action: str) -> None:
        """Mirror the platform right after a command, so its answer shows at once."""
        host = self.host
        with contextlib.suppress(BackendError):
            self._mirror(await self.platform.rollout_status(), action)
        with contextlib.suppress(BackendError):
            host.poll.status = await host.backend.status()

    def _mirror(self, rollout: PlatformRollout, action: str) -> None:
        if self._broken or (self.seen is not None and rollout.generation < self.seen.generation):
            return  # stale: an observation newer than this one was mirrored already
        before = self.seen
        self.seen = rollout
        if not rollout.aborted and rollout.phase in (RolloutPhase.PROGRESSING, RolloutPhase.PAUSED):
            self._abort = None  # a new rollout: an earlier abort's cause no longer applies
        new = self._state(rollout)
        if new == self.host.state:
            return
        moved = before is None or before.message != rollout.message
        self.host.set_state(new, rollout.message if moved else "", action)

    def _state(self, rollout: PlatformRollout) -> RolloutState:
        host = self.host
        s = host.state
        phase, activity, cause, reason = self._phase(rollout)
        total = len(rollout.steps) or len(self.rules.steps)
        users = {(r.number, r.version): r.user for r in s.revisions}
        revisions = tuple(
            Revision(r.number, r.version, r.ts, users.get((r.number, r.version), host.user))
            for r in rollout.revisions
        )
        return replace(
            s,
            phase=phase,
            activity=activity,
            cause=cause,
            reason=reason,
            stable_version=rollout.stable_version or s.stable_version,
            steps_total=total,
            canary_version=rollout.canary_version,
            target_version=rollout.target_version,
            weight=rollout.weight,
            step_index=max(0, min(rollout.step_index, total - 1)),
            epoch=rollout.generation,
            paused_until=rollout.paused_until,
            paused_by=rollout.paused_by if rollout.pause is PauseReason.USER else None,
            analysis=analysis_view(rollout.analysis) if rollout.analysis else None,
            revisions=revisions[-self.rules.history_limit :] or s.revisions,
        )

    def _phase(self, rollout: PlatformRollout) -> tuple[Phase, Activity, Cause | None, str]:
        """The platform's phase, pause and operation as the cockpit's phase, activity,
        cause and reason."""
        message = rollout.message
        if rollout.failure:
            return Phase.DEGRADED, Activity.IDLE, Cause.BACKEND_FAILURE, rollout.failure
        if rollout.aborted:
            activity = Activity.ABORTING if rollout.operation is Operation.ABORTING else Activity.IDLE
            analysis = rollout.analysis
            if analysis is not None and analysis.phase is AnalysisPhase.FAILED:
                return Phase.ABORTED, activity, Cause.ANALYSIS_FAILED, message
            if self._abort is not None:
                cause, why = self._abort
                return Phase.ABORTED, activity, cause, f"{why} ({message})"
            return Phase.ABORTED, activity, Cause.ABORTED_BY_USER, message  # aborted on the platform
        match rollout.phase:
            case RolloutPhase.HEALTHY:
                busy = rollout.operation is Operation.ROLLING_BACK
                return Phase.HEALTHY, Activity.ROLLING_BACK if busy else Activity.IDLE, None, message
            case RolloutPhase.PAUSED:
                waiting = rollout.pause is PauseReason.STEP
                return Phase.PAUSED, Activity.WAITING if waiting else Activity.IDLE, None, message
            case RolloutPhase.PROGRESSING:
                return Phase.PROGRESSING, ACTIVITIES.get(rollout.operation, Activity.IDLE), None, message
        return Phase.DEGRADED, Activity.IDLE, Cause.BACKEND_FAILURE, message

    # ------------------------------------------------------------------ outside events

    async def halt(self, reason: str, cause: Cause) -> None:
        if not self.host.state.in_rollout:
            return
        forward = Forward("abort", abort=(cause, reason))
        try:
            await self.platform.send("abort")
        except BackendError as err:
            self._unanswered(forward, redact(str(err)), "auto")
            return
        self._abort = forward.abort
        await self._refresh("auto")

    def crashed(self, error: str) -> None:
        self._broken = True
        s = self.host.state
        degraded = replace(
            s,
            phase=Phase.DEGRADED,
            activity=Activity.IDLE,
            cause=Cause.INTERNAL_ERROR,
            reason=f"internal error: {error}; the cockpit no longer follows the platform",
        )
        self.host.set_state(degraded, f"internal error: {error}", "auto")

    def interrupted(self, why: str) -> None:
        self.host.state = replace(self.host.state, cause=Cause.INTERRUPTED)
        self.host.changed()

    async def stop(self) -> None:
        task = self._watch_task
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
