"""The rollout state machine: pure transitions from (state, intent) to (state, effects).

Nothing here does I/O. Every user intent either returns a :class:`Transition` (the
new state, the backend effects to run in order, and the token to hand back once
they succeeded) or raises :class:`Refused` with a reason, leaving the state
untouched - an illegal action is never half-applied. The controller runs the
effects and reports back through :meth:`RolloutMachine.resume` or
:meth:`RolloutMachine.failed`.

Semantics follow Argo Rollouts: promote moves past one pause, full promote jumps
to 100 %, abort sends all traffic to stable at once and then scales the canary
down, retry restarts the steps, rollback runs a retained revision again, pause
holds a progressing rollout where it is (its step's timer stops) until a resume
runs that step again or a promote moves past it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from cockpit.engine.state import (
    Activity,
    AnalysisView,
    Cause,
    Outcome,
    Phase,
    Revision,
    RolloutState,
    SmokeResult,
)
from cockpit.plan.models import Step


class Refused(Exception):
    """The action is not legal now; the message says why and what would be."""


# --------------------------------------------------------------------------- effects


@dataclass(frozen=True, slots=True)
class DeployCanary:
    version: str


@dataclass(frozen=True, slots=True)
class SetWeight:
    weight: int


@dataclass(frozen=True, slots=True)
class PromoteCanary:
    pass


@dataclass(frozen=True, slots=True)
class RemoveCanary:
    pass


@dataclass(frozen=True, slots=True)
class DeployStable:
    version: str


@dataclass(frozen=True, slots=True)
class WaitPause:
    seconds: float | None  # None: wait for a promote


@dataclass(frozen=True, slots=True)
class RunAnalysis:
    checks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RunSmoke:
    checks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RunExpand:
    """Apply the expand steps ``version`` needs (the database's records decide which)."""

    version: str


Effect = (
    DeployCanary
    | SetWeight
    | PromoteCanary
    | RemoveCanary
    | DeployStable
    | WaitPause
    | RunAnalysis
    | RunSmoke
    | RunExpand
)
# Effects that run as a task and report back later.
STEP_TASKS = (WaitPause, RunAnalysis, RunSmoke, RunExpand)
BACKEND_EFFECTS = (DeployCanary, SetWeight, PromoteCanary, RemoveCanary, DeployStable)


@dataclass(frozen=True, slots=True)
class Resume:
    """Handed back to :meth:`RolloutMachine.resume` when the effects succeeded."""

    epoch: int
    step: int
    what: str  # expanded | deployed | step-done | promoted | aborted | rolled-back | weight-set


@dataclass(frozen=True, slots=True)
class Transition:
    state: RolloutState
    effects: tuple[Effect, ...] = ()
    then: Resume | None = None
    note: str = ""  # one line for the journal / transition log


def _prefixed(what: str, transition: Transition) -> Transition:
    """``transition`` with ``what`` happened first, for the one-line transition log."""
    return replace(transition, note=f"{what}; {transition.note}" if transition.note else what)


class RolloutMachine:
    def __init__(self, steps: Sequence[Step], history_limit: int = 10) -> None:
        self.steps = tuple(steps)
        self.history_limit = history_limit

    # ------------------------------------------------------------------ helpers

    def initial(self, env: str, stable_version: str, revisions: Sequence[Revision] = ()) -> RolloutState:
        return RolloutState(
            env=env,
            phase=Phase.HEALTHY,
            stable_version=stable_version,
            steps_total=len(self.steps),
            revisions=tuple(revisions)[-self.history_limit :],
            reason=f"stable {stable_version} serves all traffic",
        )

    @staticmethod
    def _busy(state: RolloutState) -> None:
        if state.activity in (
            Activity.MIGRATING,
            Activity.DEPLOYING,
            Activity.SHIFTING,
            Activity.PROMOTING,
            Activity.ABORTING,
            Activity.ROLLING_BACK,
        ):
            raise Refused(f"{state.env} is busy {state.activity.value}; wait until it finishes")

    def _enter_step(self, state: RolloutState, index: int, now: float) -> Transition:
        """Walk to step ``index``: emit what that step needs."""
        base = replace(state, step_index=index, paused_until=None, paused_by=None, phase=Phase.PROGRESSING)
        if index >= len(self.steps):
            promoting = replace(
                base,
                step_index=len(self.steps) - 1,
                activity=Activity.PROMOTING,
                reason=f"all steps done; promoting {state.canary_version} to 100%",
            )
            return Transition(
                promoting, (SetWeight(100), PromoteCanary()), Resume(state.epoch, index, "promoted")
            )
        step = self.steps[index]
        label = f"step {index + 1}/{len(self.steps)}"
        if step.set_weight is not None:
            shifting = replace(base, activity=Activity.SHIFTING, reason=f"{label}: {step.describe()}")
            return Transition(
                shifting,
                (SetWeight(step.set_weight),),
                Resume(state.epoch, index, "step-done"),
                note=shifting.reason,
            )
        if step.pause is not None:
            seconds = step.pause.duration
            why = f"{label}: paused until promoted" if seconds is None else f"{label}: pause {seconds:g}s"
            paused = replace(
                base,
                phase=Phase.PAUSED,
                activity=Activity.WAITING,
                reason=why,
                paused_until=None if seconds is None else now + seconds,
            )
            return Transition(
                paused, (WaitPause(seconds),), Resume(state.epoch, index, "step-done"), note=why
            )
        if step.smoke is not None:
            testing = replace(
                base,
                activity=Activity.SMOKE_TESTING,
                reason=f"{label}: smoke {', '.join(step.smoke.checks)}",
                smoke=(),
            )
            return Transition(
                testing,
                (RunSmoke(tuple(step.smoke.checks)),),
                Resume(state.epoch, index, "step-done"),
                note=testing.reason,
            )
        assert step.analysis is not None
        running = replace(
            base,
            activity=Activity.ANALYSING,
            reason=f"{label}: analysis {', '.join(step.analysis.checks)}",
            analysis=AnalysisView(step=index, outcome=Outcome.RUNNING, checks=()),
        )
        return Transition(
            running,
            (RunAnalysis(tuple(step.analysis.checks)),),
            Resume(state.epoch, index, "step-done"),
            note=running.reason,
        )

    def _abort(self, state: RolloutState, reason: str, cause: Cause) -> Transition:
        aborting = replace(
            state,
            phase=Phase.ABORTED,
            activity=Activity.ABORTING,
            epoch=state.epoch + 1,
            paused_until=None,
            paused_by=None,
            reason=reason,
            cause=cause,
        )
        by_user = cause is Cause.ABORTED_BY_USER
        note = f"aborting ({reason})" if by_user else f"{reason}: aborting"
        return Transition(
            aborting,
            (SetWeight(0), RemoveCanary()),
            Resume(aborting.epoch, state.step_index, "aborted"),
            note=note,
        )

    # ------------------------------------------------------------------ intents

    def start(
        self, state: RolloutState, version: str, available: Sequence[str], now: float, migrate: bool = False
    ) -> Transition:
        """Begin a rollout of ``version``. With ``migrate`` (the environment has a database
        with [[migrations]]) the release's expand steps run first, before anything is
        deployed; the canary deploy follows once they are recorded as applied."""
        if state.in_rollout:
            raise Refused(
                f"a rollout of {state.target_version} is in progress ({state.phase.value}); promote or abort it first"
            )
        self._busy(state)
        if state.canary_version is not None:
            raise Refused(f"canary {state.canary_version} is still deployed; abort (a) to remove it first")
        if available and version not in available:
            raise Refused(f"version {version} does not exist (known: {', '.join(available)})")
        if version == state.stable_version:
            raise Refused(f"{version} is already the stable version")
        deploying = replace(
            state,
            phase=Phase.PROGRESSING,
            activity=Activity.MIGRATING if migrate else Activity.DEPLOYING,
            target_version=version,
            canary_version=None,
            weight=0,
            step_index=0,
            epoch=state.epoch + 1,
            analysis=None,
            smoke=(),
            paused_until=None,
            paused_by=None,
            cause=None,
            warning="",
            reason=f"expand: the database steps {version} needs" if migrate else f"deploying canary {version}",
        )
        if migrate:
            return Transition(
                deploying,
                (RunExpand(version),),
                Resume(deploying.epoch, 0, "expanded"),
                note=f"rollout of {version} started; expand steps first",
            )
        return Transition(
            deploying,
            (DeployCanary(version),),
            Resume(deploying.epoch, 0, "deployed"),
            note=f"rollout of {version} started",
        )

    def _deploy(self, state: RolloutState) -> Transition:
        """The expand steps are applied: deploy the canary."""
        version = state.target_version or ""
        deploying = replace(state, activity=Activity.DEPLOYING, reason=f"deploying canary {version}")
        return Transition(
            deploying, (DeployCanary(version),), Resume(state.epoch, 0, "deployed"), note="expand steps applied"
        )

    def expand_progress(self, state: RolloutState, token: Resume, reason: str) -> RolloutState:
        """Which expand step runs now ("expand 1/2: orders-full-name"), shown at once."""
        if token.epoch != state.epoch or state.activity is not Activity.MIGRATING:
            return state
        return replace(state, reason=reason)

    def expand_failed(self, state: RolloutState, token: Resume, error: str) -> Transition | None:
        """An expand step failed (or is not applied): the rollout stops with nothing
        deployed; retry runs again only what the database does not record as applied."""
        if token.epoch != state.epoch:
            return None
        stopped = replace(
            state,
            phase=Phase.ABORTED,
            activity=Activity.IDLE,
            epoch=state.epoch + 1,
            canary_version=None,
            weight=0,
            cause=Cause.MIGRATION_FAILED,
            reason=f"expand failed: {error}; nothing was deployed, traffic stays on stable"
            f" {state.stable_version}; retry (R) runs what is not applied",
        )
        return Transition(stopped, note=f"expand failed: {error}")

    def promote(self, state: RolloutState, now: float) -> Transition:
        """Move past the current pause (or an inconclusive analysis)."""
        if state.phase is not Phase.PAUSED:
            if state.phase is Phase.PROGRESSING:
                raise Refused(f"nothing is paused: {state.reason}")
            raise Refused(f"nothing is paused: {state.env} is {state.phase.value}")
        self._busy_except_waiting(state)
        advanced = replace(state, epoch=state.epoch + 1)  # stale pause timers are dropped
        return _prefixed("promoted past the pause", self._enter_step(advanced, state.step_index + 1, now))

    def _busy_except_waiting(self, state: RolloutState) -> None:
        if state.activity not in (Activity.WAITING, Activity.IDLE, Activity.ANALYSING):
            self._busy(state)

    def pause(self, state: RolloutState, user: str) -> Transition:
        """Hold a progressing rollout where it is: the epoch grows so the running step's
        timer (a timed pause, an analysis) is dropped; nothing moves until a person says."""
        if not state.in_rollout:
            raise Refused(f"no rollout in progress on {state.env} ({state.phase.value})")
        if state.paused_by is not None:
            raise Refused(f"already paused by {state.paused_by}; resume or promote (p) to go on")
        if state.phase is Phase.PAUSED and state.paused_until is None:
            raise Refused(f"already paused: {state.reason}")
        self._busy(state)
        label = f"step {state.step_index + 1}/{len(self.steps)}"
        held = replace(
            state,
            phase=Phase.PAUSED,
            activity=Activity.IDLE,
            epoch=state.epoch + 1,
            paused_until=None,
            paused_by=user,
            # A stopped analysis has no outcome: show none rather than a run frozen at "Running".
            analysis=None if state.activity is Activity.ANALYSING else state.analysis,
            reason=f"{label}: paused by {user}; resume to run the step again, promote (p) to skip it",
        )
        return Transition(held, note=f"paused by {user} at {label}")

    def unpause(self, state: RolloutState, now: float) -> Transition:
        """Go on after a :meth:`pause`: the held step runs again from its start (a timed
        pause waits its whole duration, an analysis measures afresh)."""
        if state.phase is not Phase.PAUSED or state.paused_by is None:
            raise Refused(f"nothing was paused by hand on {state.env} ({state.phase.value})")
        self._busy_except_waiting(state)
        held_by = state.paused_by
        going = replace(state, epoch=state.epoch + 1, paused_by=None, activity=Activity.IDLE)
        return _prefixed(f"resumed (paused by {held_by})", self._enter_step(going, state.step_index, now))

    def promote_full(self, state: RolloutState) -> Transition:
        if not state.in_rollout:
            raise Refused(f"no rollout in progress on {state.env} ({state.phase.value})")
        if state.canary_version is None:
            raise Refused("the canary is not deployed yet; wait until it is healthy")
        self._busy_except_waiting(state)
        promoting = replace(
            state,
            phase=Phase.PROGRESSING,
            activity=Activity.PROMOTING,
            epoch=state.epoch + 1,
            paused_until=None,
            reason=f"full promote: {state.canary_version} to 100%",
        )
        return Transition(
            promoting,
            (SetWeight(100), PromoteCanary()),
            Resume(promoting.epoch, state.step_index, "promoted"),
            note="full promote",
        )

    def abort(self, state: RolloutState, reason: str, cause: Cause = Cause.ABORTED_BY_USER) -> Transition:
        if state.phase is Phase.HEALTHY or (state.phase is Phase.ABORTED and state.canary_version is None):
            raise Refused(f"nothing to abort: {state.env} is {state.phase.value}")
        if state.activity in (Activity.ABORTING, Activity.ROLLING_BACK):
            raise Refused(f"{state.env} is already {state.activity.value}")
        if state.activity is Activity.MIGRATING:
            # A schema step cut off half-way is worse than one that ends: nothing is deployed
            # yet, and a failing step stops the rollout by itself.
            raise Refused(f"{state.env} is running expand steps ({state.reason}); wait until the step ends")
        return self._abort(state, reason, cause)

    def stop(self, state: RolloutState, reason: str, cause: Cause) -> Transition | None:
        """An automatic abort (health gate, crash loop, journal failure): traffic back to
        stable. ``None`` when there is nothing left to abort or an abort is under way."""
        if not state.in_rollout and state.canary_version is None:
            return None
        if state.activity in (Activity.ABORTING, Activity.ROLLING_BACK):
            return None
        return self._abort(state, reason, cause)

    def crashed(self, state: RolloutState, error: str) -> Transition:
        """A background task of the engine died: say so loudly instead of waiting forever.
        The epoch grows so any timer of the old path is ignored."""
        where = f"; canary {state.canary_version} at {state.weight}%" if state.canary_version else ""
        degraded = replace(
            state,
            phase=Phase.DEGRADED,
            activity=Activity.IDLE,
            epoch=state.epoch + 1,
            paused_until=None,
            paused_by=None,
            cause=Cause.INTERNAL_ERROR,
            reason=f"internal error: {error}{where}; abort (a) sends traffic back to stable",
        )
        return Transition(degraded, note=f"internal error: {error}")

    def stable_crash_loop(self, state: RolloutState, problem: str) -> Transition | None:
        """Stable was observed crash-looping while no rollout is on: Degraded, loudly."""
        if state.phase is not Phase.HEALTHY or state.activity is not Activity.IDLE:
            return None
        reason = f"stable {state.stable_version} is crash-looping" + (f": {problem}" if problem else "")
        degraded = replace(state, phase=Phase.DEGRADED, cause=Cause.CRASH_LOOP, reason=reason)
        return Transition(degraded, note=reason)

    def stable_recovered(self, state: RolloutState) -> Transition | None:
        """Stable is observed healthy again after a crash loop (e.g. restarted by hand)."""
        if not (state.phase is Phase.DEGRADED and state.cause is Cause.CRASH_LOOP and state.canary_version is None):
            return None
        healthy = replace(
            state,
            phase=Phase.HEALTHY,
            cause=None,
            reason=f"stable {state.stable_version} serves all traffic (healthy again)",
        )
        return Transition(healthy, note=healthy.reason)

    def interrupted(self, state: RolloutState, why: str) -> Transition:
        """The cockpit is being stopped (signal) mid-way: the state says so for the record."""
        return Transition(replace(state, cause=Cause.INTERRUPTED), note=f"interrupted: {why}")

    def observed(self, state: RolloutState, warning: str) -> RolloutState:
        """What the status poll sees wrong right now, shown at once (no phase change)."""
        return state if warning == state.warning else replace(state, warning=warning)

    def retry(
        self, state: RolloutState, available: Sequence[str], now: float, migrate: bool = False
    ) -> Transition:
        if state.phase not in (Phase.ABORTED, Phase.DEGRADED):
            raise Refused(f"retry is for an aborted or degraded rollout; {state.env} is {state.phase.value}")
        if state.target_version is None:
            raise Refused("there is no rollout to retry")
        self._busy(state)
        if state.canary_version is not None:
            # Degraded with a canary still up: clear it first so the retry starts clean.
            raise Refused(f"canary {state.canary_version} is still deployed; abort (a) first, then retry")
        cleared = replace(state, phase=Phase.ABORTED)
        return replace(self.start(cleared, state.target_version, available, now, migrate), note="retry")

    def set_weight(self, state: RolloutState, weight: int) -> Transition:
        if not 0 <= weight <= 100:
            raise Refused(f"weight must be between 0 and 100, not {weight}")
        if state.phase is not Phase.PAUSED or state.canary_version is None:
            raise Refused(
                f"the weight can be changed while a rollout is paused; {state.env} is {state.phase.value}"
            )
        self._busy_except_waiting(state)
        if weight == state.weight:
            raise Refused(f"the canary already has {weight}%")
        shifting = replace(state, activity=Activity.SHIFTING)
        return Transition(
            shifting,
            (SetWeight(weight),),
            Resume(state.epoch, state.step_index, "weight-set"),
            note=f"weight {state.weight}% -> {weight}%",
        )

    def rollback(self, state: RolloutState, revision: int | None) -> Transition:
        if state.in_rollout:
            raise Refused(f"a rollout of {state.target_version} is in progress; abort it first (a)")
        self._busy(state)
        if state.canary_version is not None:
            raise Refused(f"canary {state.canary_version} is still deployed; abort it first (a)")
        retained = list(state.revisions)
        if revision is None:
            older = [r for r in retained if r.version != state.stable_version]
            if not older:
                raise Refused("no earlier revision is retained to roll back to")
            target = older[-1]
        else:
            matches = [r for r in retained if r.number == revision]
            if not matches:
                known = ", ".join(str(r.number) for r in retained) or "none"
                raise Refused(f"revision {revision} is not retained (retained: {known})")
            target = matches[0]
            if target.version == state.stable_version:
                raise Refused(f"revision {revision} ({target.version}) is what runs now")
        rolling = replace(
            state,
            activity=Activity.ROLLING_BACK,
            epoch=state.epoch + 1,
            target_version=target.version,
            reason=f"rolling back to revision {target.number} ({target.version})",
        )
        return Transition(
            rolling,
            (DeployStable(target.version),),
            Resume(rolling.epoch, 0, "rolled-back"),
            note=f"rollback to revision {target.number} ({target.version})",
        )

    # ------------------------------------------------------------------ reports from the controller

    def resume(
        self, state: RolloutState, token: Resume, now: float, user: str = "cockpit"
    ) -> Transition | None:
        """The effects of ``token`` succeeded. ``None`` when the token is stale."""
        if token.epoch != state.epoch:
            return None
        if token.what == "expanded":
            return self._deploy(state)
        if token.what == "deployed":
            deployed = replace(state, canary_version=state.target_version, activity=Activity.IDLE)
            return _prefixed(f"canary {state.target_version} healthy", self._enter_step(deployed, 0, now))
        if token.what == "step-done":
            if token.step != state.step_index:
                return None
            step = self.steps[token.step]
            weight = step.set_weight if step.set_weight is not None else state.weight
            return self._enter_step(
                replace(state, weight=weight, activity=Activity.IDLE), token.step + 1, now
            )
        if token.what == "weight-set":
            # set_weight stored the wanted weight nowhere else; the effect carried it.
            return None
        if token.what == "promoted":
            version = state.canary_version or state.target_version or state.stable_version
            healthy = self._new_stable(
                state, version, now, user, "{version} promoted to stable (revision {n})"
            )
            return Transition(
                replace(healthy, step_index=len(self.steps) - 1), note=f"{version} promoted to 100%"
            )
        if token.what == "aborted":
            aborted = replace(
                state,
                activity=Activity.IDLE,
                canary_version=None,
                weight=0,
                reason=f"{state.reason}; traffic on stable {state.stable_version}, canary removed",
            )
            return Transition(aborted, note="aborted: traffic on stable, canary removed")
        if token.what == "rolled-back":
            version = state.target_version or state.stable_version
            rolled = self._new_stable(state, version, now, user, "rolled back to {version} (revision {n})")
            return Transition(rolled, note=f"rolled back to {version}")
        raise ValueError(f"unknown resume token {token.what!r}")

    def _new_stable(
        self, state: RolloutState, version: str, now: float, user: str, reason: str
    ) -> RolloutState:
        """``version`` serves all traffic as a new revision (a promote or a rollback)."""
        revision = Revision(number=state.revision + 1, version=version, ts=now, user=user)
        return replace(
            state,
            phase=Phase.HEALTHY,
            activity=Activity.IDLE,
            stable_version=version,
            canary_version=None,
            weight=0,
            paused_until=None,
            paused_by=None,
            cause=None,
            warning="",
            reason=reason.format(version=version, n=revision.number),
            revisions=(state.revisions + (revision,))[-self.history_limit :],
        )

    def weight_set(self, state: RolloutState, weight: int) -> RolloutState:
        """A manual weight change completed."""
        return replace(
            state, weight=weight, activity=Activity.WAITING if state.phase is Phase.PAUSED else state.activity
        )

    def analysis_finished(
        self, state: RolloutState, token: Resume, view: AnalysisView, now: float
    ) -> Transition | None:
        if token.epoch != state.epoch or token.step != state.step_index:
            return None
        state = replace(state, analysis=view)
        if view.outcome is Outcome.SUCCESSFUL:
            entered = self._enter_step(replace(state, activity=Activity.IDLE), token.step + 1, now)
            return _prefixed(f"analysis successful: {view.message}", entered)
        if view.outcome is Outcome.FAILED:
            return self._abort(state, f"analysis failed: {view.message}", Cause.ANALYSIS_FAILED)
        paused = replace(
            state,
            phase=Phase.PAUSED,
            activity=Activity.IDLE,
            reason=f"analysis inconclusive: {view.message}; promote (p) to go on or abort (a)",
        )
        return Transition(paused, note="analysis inconclusive: paused for a human")

    def smoke_finished(
        self, state: RolloutState, token: Resume, results: tuple[SmokeResult, ...], now: float
    ) -> Transition | None:
        """The smoke checks of the current step ended: all passed moves on, a failure aborts
        with the check, what it expected and what came back. ``None`` when stale."""
        if token.epoch != state.epoch or token.step != state.step_index:
            return None
        state = replace(state, smoke=results)
        failed = next((r for r in results if not r.passed), None)
        if failed is None:
            entered = self._enter_step(replace(state, activity=Activity.IDLE), token.step + 1, now)
            return _prefixed("smoke passed: " + "; ".join(r.summary() for r in results), entered)
        return self._abort(state, failed.failure(), Cause.SMOKE_FAILED)

    def smoke_progress(self, state: RolloutState, result: SmokeResult) -> RolloutState:
        return replace(state, smoke=state.smoke + (result,))

    def analysis_progress(self, state: RolloutState, view: AnalysisView) -> RolloutState:
        return replace(state, analysis=view)

    def failed(self, state: RolloutState, token: Resume, error: str) -> Transition | None:
        """A backend effect failed. The state says what is known to be true."""
        if token.epoch != state.epoch:
            return None
        if token.what == "deployed":
            # Nothing took traffic: the canary never became healthy.
            aborted = replace(
                state,
                phase=Phase.ABORTED,
                activity=Activity.IDLE,
                canary_version=None,
                weight=0,
                cause=Cause.BACKEND_FAILURE,
                reason=f"canary {state.target_version} failed to deploy: {error}",
            )
            return Transition(aborted, note="deploy failed")
        if token.what == "weight-set":
            return Transition(
                replace(
                    state, activity=Activity.WAITING, reason=f"{state.reason} (weight change failed: {error})"
                ),
                note="weight change failed",
            )
        if token.what == "rolled-back":
            degraded = replace(
                state,
                phase=Phase.DEGRADED,
                activity=Activity.IDLE,
                cause=Cause.BACKEND_FAILURE,
                reason=f"rollback to {state.target_version} failed: {error}; stable {state.stable_version} kept",
            )
            return Transition(degraded, note="rollback failed")
        what = "abort" if token.what == "aborted" else token.what.replace("-", " ")
        degraded = replace(
            state,
            phase=Phase.DEGRADED,
            activity=Activity.IDLE,
            cause=Cause.BACKEND_FAILURE,  # a failed abort included: traffic is not known to be on stable
            reason=f"{what} failed: {error}; abort (a) sends traffic back to stable",
        )
        return Transition(degraded, note="backend action failed")
