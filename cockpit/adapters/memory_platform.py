"""An in-memory platform that walks the rollout steps itself ("memory-platform").

It stands in for a server-side rollout controller such as Argo Rollouts, so the mirror
driver, the screen and headless mode can be proven without a cluster. The platform owns
the rollout: it takes the plan's canary steps (:meth:`use_strategy`, as an adapter would
write them to the Rollout's spec), walks them in its own task (weights, timed and
untimed pauses, analysis runs measured on per-version metric profiles), keeps revisions,
and answers commands (``send``) or refuses them in its own words. The cockpit only
reads :meth:`rollout_status` and forwards commands.

Its workload operations (``deploy_canary``, ``set_weight``, ``promote_canary``,
``remove_canary``, ``deploy_stable``) are the DeployBackend methods, run by its own
controller, never by the cockpit. Test controls, with the same names as the memory
backend's where they mean the same: ``down``, ``calls``, ``hang``/``release``,
``emit``; and ``fail(method, message)`` (an operation or API call raises),
``refuse_next(command, message)`` (the platform says no once),
``fail_analysis(message)`` (the next analysis run fails whatever the metrics say).
Version ``1.2.0`` fails analysis on its default metrics, as on the memory backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from cockpit.adapters import registry
from cockpit.adapters.base import (
    NO_DATA,
    AdapterContext,
    BackendError,
    BackendStatus,
    BackendUnavailable,
    Capability,
    CommandRefused,
    DeployBackend,
    LogLine,
    LogSink,
    MetricsSource,
    MetricsWindow,
    PlatformRollouts,
    Track,
    TrackMetrics,
    TrackStatus,
    VersionNotFound,
)
from cockpit.adapters.rollouts import (
    AnalysisPhase,
    Operation,
    PauseReason,
    PlatformAnalysisRun,
    PlatformMeasurement,
    PlatformMetricResult,
    PlatformRevision,
    PlatformRollout,
    RolloutPhase,
)
from cockpit.plan.models import Check, Step

KEPT_MEASUREMENTS = 10
UNITS = {
    "success-rate": "%",
    "error-rate": "%",
    "latency-p95": "ms",
    "latency-p99": "ms",
    "request-rate": "req/s",
}


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rate: float = 40.0  # requests per second at 100 % of the traffic
    error_rate: float = 0.002
    p95_ms: float = 60.0
    p99_ms: float = 90.0


DEFAULT_PROFILES = {
    "1.0.0": Profile(rate=40.0, error_rate=0.002, p95_ms=60.0, p99_ms=90.0),
    "1.1.0": Profile(rate=40.0, error_rate=0.001, p95_ms=55.0, p99_ms=80.0),
    "1.2.0": Profile(rate=40.0, error_rate=0.30, p95_ms=300.0, p99_ms=420.0),
}


def metric_value(metric: str, profile: Profile, share: float) -> float:
    match metric:
        case "success-rate":
            return (1.0 - profile.error_rate) * 100.0
        case "error-rate":
            return profile.error_rate * 100.0
        case "latency-p95":
            return profile.p95_ms
        case "latency-p99":
            return profile.p99_ms
    return profile.rate * share


@dataclass
class _MetricRun:
    """One metric of the platform's analysis run, as it accumulates."""

    check: Check
    measurements: list[PlatformMeasurement] = field(default_factory=list)
    taken: int = 0
    failed: int = 0
    inconclusive: int = 0
    errors: int = 0
    phase: AnalysisPhase = AnalysisPhase.RUNNING
    message: str = ""

    def record(self, m: PlatformMeasurement) -> None:
        self.measurements = (self.measurements + [m])[-KEPT_MEASUREMENTS:]
        c = self.check
        if m.phase is AnalysisPhase.ERROR:
            self.errors += 1
            if self.errors > c.error_limit:
                self.phase, self.message = AnalysisPhase.INCONCLUSIVE, f"{c.name}: {m.message}"
            return
        self.taken += 1
        shown = m.message or f"{c.name} {m.value:g}{UNITS.get(c.metric or '', '')} (needs {c.success})"
        if m.phase is AnalysisPhase.FAILED:
            self.failed += 1
            if self.failed > c.failure_limit:
                self.phase, self.message = AnalysisPhase.FAILED, shown
                return
        elif m.phase is AnalysisPhase.INCONCLUSIVE:
            self.inconclusive += 1
            if self.inconclusive > c.inconclusive_limit:
                self.phase, self.message = AnalysisPhase.INCONCLUSIVE, shown
                return
        if self.taken >= c.count:
            self.phase, self.message = AnalysisPhase.SUCCESSFUL, shown

    def result(self) -> PlatformMetricResult:
        c = self.check
        return PlatformMetricResult(
            name=c.name,
            condition=str(c.success),
            unit=UNITS.get(c.metric or "", ""),
            phase=self.phase,
            measurements=tuple(self.measurements),
            count=c.count,
            taken=self.taken,
            failed=self.failed,
            inconclusive=self.inconclusive,
            errors=self.errors,
        )


def _combined(step: int, runs: Sequence[_MetricRun]) -> PlatformAnalysisRun:
    metrics = tuple(r.result() for r in runs)
    for phase in (AnalysisPhase.FAILED, AnalysisPhase.INCONCLUSIVE):
        ended = [r.message for r in runs if r.phase is phase]
        if ended:
            return PlatformAnalysisRun(step, phase, metrics, "; ".join(ended))
    if all(r.phase is AnalysisPhase.SUCCESSFUL for r in runs):
        return PlatformAnalysisRun(
            step, AnalysisPhase.SUCCESSFUL, metrics, "; ".join(r.message for r in runs)
        )
    return PlatformAnalysisRun(step, AnalysisPhase.RUNNING, metrics)


class MemoryPlatform(DeployBackend, PlatformRollouts):
    name = "memory-platform"
    capabilities = frozenset(
        {Capability.DRIVES_STEPS, Capability.SET_WEIGHT, Capability.LOGS, Capability.ROLLBACK_TO_REVISION}
    )

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

        versions: list[str] = Field(default_factory=lambda: ["1.0.0", "1.1.0", "1.2.0"])
        """Versions the platform can run, oldest first."""
        replicas: int = 2
        """Replicas per track."""
        url: str | None = "http://127.0.0.1:18080"
        """Where users reach the service."""
        down: bool = False
        """Start unreachable (every API call raises BackendUnavailable)."""
        profiles: dict[str, Profile] = Field(default_factory=lambda: dict(DEFAULT_PROFILES))
        """Metric values per version, measured by the platform's analysis runs."""
        default: Profile = Field(default_factory=Profile)
        history_limit: int = 10
        """Revisions the platform keeps."""

    instances: ClassVar[dict[tuple[str, str], MemoryPlatform]] = {}

    options: MemoryPlatform.Options  # the base declares a BaseModel; this backend is given its own model

    def __init__(self, ctx: AdapterContext, options: MemoryPlatform.Options) -> None:
        self.ctx = ctx
        self.options = options
        self.down = options.down
        self.calls: list[str] = []
        self.commands: list[tuple[str, dict[str, object]]] = []  # what was sent, in order
        self.running = False
        self.closed = False
        # The workloads.
        self.stable: str | None = None
        self.canary: str | None = None
        self.weight = 0
        # The rollout, as the platform's controller owns it.
        self.steps: tuple[Step, ...] = ()
        self.checks: dict[str, Check] = {}
        self.generation = 0
        self.phase = RolloutPhase.HEALTHY
        self.message = ""
        self.target: str | None = None
        self.step_index = 0
        self.operation = Operation.NONE
        self.pause: PauseReason | None = None
        self.paused_until: float | None = None
        self.paused_by: str | None = None
        self.aborted = False
        self.failure = ""
        self.analysis: PlatformAnalysisRun | None = None
        self.revisions: list[PlatformRevision] = []
        self._work: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        # Test controls.
        self._sink: LogSink | None = None
        self._hung: set[str] = set()
        self._release = asyncio.Event()
        self._failing: dict[str, str] = {}
        self._refusals: dict[str, str] = {}
        self._analysis_failure: str | None = None
        MemoryPlatform.instances[ctx.service, ctx.env] = self

    # ------------------------------------------------------------------ test controls

    def hang(self, *methods: str) -> None:
        """Make these methods (API calls or operations) await until :meth:`release`."""
        self._hung.update(methods)
        self._release = asyncio.Event()

    def release(self) -> None:
        self._hung.clear()
        self._release.set()

    def fail(self, method: str, message: str) -> None:
        """Make ``method`` (an operation such as ``set_weight``, or ``send``) raise from now on."""
        self._failing[method] = message

    def heal(self) -> None:
        self._failing.clear()

    def refuse_next(self, command: str, message: str) -> None:
        """The platform says no to the next ``command`` (as it would in a state the cockpit
        has not seen yet)."""
        self._refusals[command] = message

    def fail_analysis(self, message: str = "scripted failure") -> None:
        """Every measurement of the next analysis run fails, whatever the metrics say."""
        self._analysis_failure = message

    def emit(self, text: str, track: Track | None = Track.STABLE, source: str | None = None) -> None:
        if self._sink is None:
            return
        version = self.stable if track is Track.STABLE else self.canary
        name = source or (f"{track.value} {version} #1" if track else "controller")
        self._sink([LogLine(time.time(), self.ctx.env, name, track, text)])

    def _log(self, msg: str, track: Track | None = None, **fields: object) -> None:
        record = {"ts": round(time.time(), 3), "level": "info", "msg": msg, **fields}
        self.emit(json.dumps(record, separators=(",", ":")), track)

    async def _enter(self, method: str, api: bool) -> None:
        self.calls.append(method)
        if method in self._hung:
            await self._release.wait()
        await asyncio.sleep(0)
        if api and self.down:
            raise BackendUnavailable(f"memory platform {self.ctx.env} is down (connection refused)")
        if api and self.closed and method != "start":
            raise BackendUnavailable(f"memory platform {self.ctx.env} is closed")
        if method in self._failing:
            raise BackendError(self._failing[method])

    # ------------------------------------------------------------------ the DeployBackend contract

    async def start(self, stable_version: str) -> None:
        await self._enter("start", api=True)
        if stable_version not in self.options.versions:
            raise VersionNotFound(
                f"version {stable_version} does not exist (known: {', '.join(self.options.versions)})"
            )
        self.running, self.closed = True, False
        self.stable, self.canary, self.weight = stable_version, None, 0
        if not self.revisions or self.revisions[-1].version != stable_version:
            self._add_revision(stable_version)
        self.phase, self.target, self.aborted, self.failure = RolloutPhase.HEALTHY, None, False, ""
        self._changed_to(f"stable {stable_version} serves all traffic")
        self._log("started", Track.STABLE, version=stable_version, replicas=self.options.replicas)

    async def attach(self) -> None:
        await self._enter("attach", api=True)
        if not self.running:
            raise BackendUnavailable(f"nothing runs in memory for {self.ctx.env}")

    async def close(self) -> None:
        self.calls.append("close")
        await self._stop_work()
        self.running, self.closed = False, True

    async def status(self) -> BackendStatus:
        await self._enter("status", api=True)
        n = self.options.replicas
        return BackendStatus(
            stable=TrackStatus(self.stable, n, n) if self.stable else None,
            canary=TrackStatus(self.canary, n, n) if self.canary else None,
            weight=self.weight,
            url=self.options.url,
        )

    async def versions(self) -> Sequence[str]:
        await self._enter("versions", api=True)
        return list(self.options.versions)

    async def deploy_canary(self, version: str) -> None:
        await self._enter("deploy_canary", api=False)
        if version not in self.options.versions:
            raise VersionNotFound(f"version {version} does not exist")
        self.canary, self.weight = version, 0
        self._log("started", Track.CANARY, version=version, replicas=self.options.replicas)

    async def set_weight(self, weight: int) -> None:
        await self._enter("set_weight", api=False)
        if not 0 <= weight <= 100:
            raise BackendError(f"weight must be between 0 and 100, not {weight}")
        if self.canary is None and weight:
            raise BackendError("there is no canary to send traffic to")
        self.weight = weight
        self._log("routing table changed", None, stable=self.stable, canary=self.canary, weight=weight)

    async def promote_canary(self) -> None:
        await self._enter("promote_canary", api=False)
        if self.canary is None:
            raise BackendError("there is no canary to promote")
        self.stable, self.canary, self.weight = self.canary, None, 0
        self._log("promoted to stable", Track.STABLE, version=self.stable)

    async def remove_canary(self) -> None:
        await self._enter("remove_canary", api=False)
        self.weight, self.canary = 0, None

    async def deploy_stable(self, version: str) -> None:
        await self._enter("deploy_stable", api=False)
        if version not in self.options.versions:
            raise VersionNotFound(f"version {version} does not exist")
        self.canary, self.weight, self.stable = None, 0, version
        self._log("started", Track.STABLE, version=version, replicas=self.options.replicas)

    def attach_log_sink(self, sink: LogSink) -> None:
        self._sink = sink

    # ------------------------------------------------------------------ the PlatformRollouts role

    async def use_strategy(self, steps: Sequence[Step], checks: Sequence[Check]) -> None:
        await self._enter("use_strategy", api=True)
        self.steps, self.checks = tuple(steps), {c.name: c for c in checks}
        self._changed_to()

    async def rollout_status(self) -> PlatformRollout:
        await self._enter("rollout_status", api=True)
        return PlatformRollout(
            generation=self.generation,
            phase=self.phase,
            stable_version=self.stable or "",
            steps=tuple(s.describe() for s in self.steps),
            message=self.message,
            target_version=self.target,
            canary_version=self.canary,
            weight=self.weight,
            step_index=self.step_index,
            operation=self.operation,
            pause=self.pause,
            paused_until=self.paused_until,
            paused_by=self.paused_by,
            aborted=self.aborted,
            failure=self.failure,
            analysis=self.analysis,
            revisions=tuple(self.revisions),
        )

    async def watch(self, generation: int, timeout: float) -> None:
        if self.generation > generation:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    async def send(self, command: str, **args: object) -> str:
        await self._enter("send", api=True)
        self.commands.append((command, dict(args)))
        if command in self._refusals:
            raise CommandRefused(self._refusals.pop(command))
        handler = {
            "set-image": self._set_image,
            "promote": self._promote_cmd,
            "promote-full": self._promote_full_cmd,
            "pause": self._pause_cmd,
            "resume": self._resume_cmd,
            "abort": self._abort_cmd,
            "retry": self._retry_cmd,
            "set-weight": self._set_weight_cmd,
            "undo": self._undo_cmd,
        }.get(command)
        if handler is None:
            raise CommandRefused(f"unknown command {command!r}")
        return await handler(**args)  # type: ignore[operator]

    # ------------------------------------------------------------------ commands (validated here)

    @property
    def _in_rollout(self) -> bool:
        return self.phase in (RolloutPhase.PROGRESSING, RolloutPhase.PAUSED) and not self.aborted

    def _refuse_when_busy(self) -> None:
        if self.operation in (
            Operation.DEPLOYING,
            Operation.PROMOTING,
            Operation.ABORTING,
            Operation.ROLLING_BACK,
        ):
            raise CommandRefused(f"the rollout is {self.operation.value}; wait until it finishes")

    async def _set_image(self, version: str) -> str:
        if self._in_rollout:
            raise CommandRefused(f"a rollout of {self.target} is in progress ({self.phase.value})")
        self._refuse_when_busy()
        if self.canary is not None:
            raise CommandRefused(f"canary {self.canary} is still running; abort first")
        if version not in self.options.versions:
            raise CommandRefused(
                f"version {version} does not exist (known: {', '.join(self.options.versions)})"
            )
        if version == self.stable:
            raise CommandRefused(f"{version} is already the stable version")
        self.target, self.aborted, self.failure, self.analysis = version, False, "", None
        self.step_index, self.phase, self.operation = 0, RolloutPhase.PROGRESSING, Operation.DEPLOYING
        self._run(self._walk())
        return f"rollout of {version} started"

    async def _promote_cmd(self) -> str:
        if self.phase is not RolloutPhase.PAUSED or self.aborted:
            raise CommandRefused(f"nothing is paused ({self.phase.value})")
        self.step_index += 1  # past the pause (or the inconclusive analysis)
        self.phase = RolloutPhase.PROGRESSING
        self._run(self._walk())
        return "promoted past the pause"

    async def _promote_full_cmd(self) -> str:
        if not self._in_rollout or self.canary is None:
            raise CommandRefused("no canary is running to promote")
        self._refuse_when_busy()
        self.operation = Operation.PROMOTING
        self._run(self._promote())
        return "full promote"

    async def _pause_cmd(self, by: str = "someone") -> str:
        if not self._in_rollout or self.pause in (PauseReason.USER, PauseReason.INCONCLUSIVE):
            raise CommandRefused(f"nothing to pause ({self.phase.value})")
        if self.pause is PauseReason.STEP and self.paused_until is None:
            raise CommandRefused("already paused until promoted")
        self._refuse_when_busy()
        await self._stop_work()
        label = self._label(self.step_index)
        if self.operation is Operation.ANALYSING:
            self.analysis = None  # a stopped run has no outcome
        self.phase, self.pause, self.paused_until, self.paused_by = (
            RolloutPhase.PAUSED,
            PauseReason.USER,
            None,
            by,
        )
        self.operation = Operation.NONE
        self._changed_to(f"{label}: paused by {by}; resume to run the step again, promote (p) to skip it")
        return f"paused at {label}"

    async def _resume_cmd(self) -> str:
        if self.pause is not PauseReason.USER:
            raise CommandRefused(f"nothing was paused by hand ({self.phase.value})")
        self.phase = RolloutPhase.PROGRESSING
        self._run(self._walk())
        return "resumed"

    async def _abort_cmd(self) -> str:
        if self.operation is Operation.ABORTING:
            raise CommandRefused("already aborting")
        if not self._in_rollout and self.canary is None and not self.failure:
            raise CommandRefused(f"nothing to abort ({self.phase.value})")
        self.aborted, self.phase, self.operation = True, RolloutPhase.DEGRADED, Operation.ABORTING
        self._run(self._abort("rollout aborted"))
        return "aborting"

    async def _retry_cmd(self) -> str:
        if not self.aborted or self.failure or self.target is None:
            raise CommandRefused(f"nothing aborted to retry ({self.phase.value})")
        return await self._set_image(self.target)

    async def _set_weight_cmd(self, weight: int) -> str:
        if self.phase is not RolloutPhase.PAUSED or self.canary is None or self.aborted:
            raise CommandRefused(f"the weight can be set while a rollout is paused ({self.phase.value})")
        await self.set_weight(weight)
        self._changed_to()
        return f"weight {weight}%"

    async def _undo_cmd(self, revision: int | None = None) -> str:
        if self._in_rollout or self.canary is not None:
            raise CommandRefused("a rollout is in progress; abort it first")
        self._refuse_when_busy()
        if revision is None:
            older = [r for r in self.revisions if r.version != self.stable]
        else:
            older = [r for r in self.revisions if r.number == revision and r.version != self.stable]
        if not older:
            raise CommandRefused(f"revision {revision or 'before the stable one'} is not retained")
        self.operation = Operation.ROLLING_BACK
        self._run(self._rollback(older[-1]))
        return f"rollback to revision {older[-1].number}"

    # ------------------------------------------------------------------ the controller's own work

    def _label(self, index: int) -> str:
        return f"step {min(index, len(self.steps) - 1) + 1}/{len(self.steps)}"

    def _changed_to(self, message: str | None = None) -> None:
        """Record a change: the generation grows and watchers wake."""
        if message is not None:
            self.message = message
        self.generation += 1
        self._changed.set()
        self._changed = asyncio.Event()

    def _doing(self, operation: Operation, message: str) -> None:
        self.operation = operation
        self._changed_to(message)

    def _add_revision(self, version: str) -> PlatformRevision:
        number = self.revisions[-1].number + 1 if self.revisions else 1
        revision = PlatformRevision(number, version, time.time())
        self.revisions = (self.revisions + [revision])[-self.options.history_limit :]
        return revision

    def _run(self, work: Coroutine[Any, Any, None]) -> None:
        """One piece of work at a time: a command that changes the path replaces the walk."""
        if self._work is not None and not self._work.done():
            self._work.cancel()
        self.pause, self.paused_until, self.paused_by = None, None, None
        self._work = asyncio.create_task(self._guarded(work), name=f"memory-platform-{self.ctx.env}")
        self._changed_to()

    async def _stop_work(self) -> None:
        task, self._work = self._work, None
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _guarded(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except BackendError as err:
            operation = self.operation
            if operation is Operation.DEPLOYING:
                what = f"canary {self.target} failed to deploy: {err}"
            else:
                done = {Operation.ABORTING: "abort", Operation.ROLLING_BACK: "rollback"}.get(operation)
                what = f"{done or operation.value or 'step'} failed: {err}; abort (a) sends traffic back to stable"
            self.phase, self.failure, self.operation = RolloutPhase.DEGRADED, what, Operation.NONE
            self._changed_to(what)

    def _hold(self, reason: PauseReason, message: str, until: float | None = None) -> None:
        self.phase, self.pause, self.paused_until = RolloutPhase.PAUSED, reason, until
        self.operation = Operation.NONE
        self._changed_to(message)

    async def _walk(self) -> None:
        """Walk the steps from the current one; a promote or resume starts a new walk."""
        if self.canary != self.target:
            assert self.target is not None
            self._doing(Operation.DEPLOYING, f"deploying canary {self.target}")
            await self.deploy_canary(self.target)
        while self.step_index < len(self.steps):
            index = self.step_index
            step, label = self.steps[index], self._label(index)
            if step.set_weight is not None:
                self._doing(Operation.SHIFTING, f"{label}: set weight {step.set_weight}%")
                await self.set_weight(step.set_weight)
            elif step.pause is not None:
                seconds = step.pause.duration
                if seconds is None:
                    self._hold(PauseReason.STEP, f"{label}: paused until promoted")
                    await asyncio.Event().wait()  # until a promote replaces this walk
                else:
                    self._hold(PauseReason.STEP, f"{label}: pause {seconds:g}s", time.time() + seconds)
                    await asyncio.sleep(seconds)
                    self.phase, self.pause, self.paused_until = RolloutPhase.PROGRESSING, None, None
            else:
                assert step.analysis is not None
                run = await self._analyse(index, step.analysis.checks)
                if run.phase is AnalysisPhase.FAILED:
                    await self._abort(f"analysis failed: {run.message}")
                    return
                if run.phase is not AnalysisPhase.SUCCESSFUL:
                    self._hold(
                        PauseReason.INCONCLUSIVE,
                        f"analysis inconclusive: {run.message}; promote (p) to go on or abort (a)",
                    )
                    await asyncio.Event().wait()
            self.step_index = index + 1
            self.operation = Operation.NONE
            self._changed_to()
        await self._promote()

    async def _promote(self) -> None:
        version = self.canary
        self.phase = RolloutPhase.PROGRESSING
        self._doing(Operation.PROMOTING, f"promoting {version} to 100%")
        await self.set_weight(100)
        await self.promote_canary()
        revision = self._add_revision(self.stable or "")
        self.phase, self.operation = RolloutPhase.HEALTHY, Operation.NONE
        self.step_index = len(self.steps)
        self._changed_to(f"{self.stable} promoted to stable (revision {revision.number})")

    async def _abort(self, why: str) -> None:
        self.aborted, self.phase, self.failure = True, RolloutPhase.DEGRADED, ""
        self.pause, self.paused_until, self.paused_by = None, None, None
        self._doing(Operation.ABORTING, f"{why}: aborting")
        await self.set_weight(0)
        await self.remove_canary()
        self.operation = Operation.NONE
        self._changed_to(f"{why}; traffic on stable {self.stable}, canary removed")

    async def _rollback(self, revision: PlatformRevision) -> None:
        self._doing(
            Operation.ROLLING_BACK, f"rolling back to revision {revision.number} ({revision.version})"
        )
        self.target = revision.version
        await self.deploy_stable(revision.version)
        new = self._add_revision(revision.version)
        self.phase, self.operation, self.aborted, self.failure = (
            RolloutPhase.HEALTHY,
            Operation.NONE,
            False,
            "",
        )
        self._changed_to(f"rolled back to {revision.version} (revision {new.number})")

    async def _analyse(self, index: int, names: Sequence[str]) -> PlatformAnalysisRun:
        missing = [n for n in names if n not in self.checks]
        if missing:
            run = PlatformAnalysisRun(index, AnalysisPhase.ERROR, (), f"no such check: {', '.join(missing)}")
            self.analysis = run
            return PlatformAnalysisRun(index, AnalysisPhase.INCONCLUSIVE, (), run.message)
        runs = [_MetricRun(self.checks[n]) for n in names]
        scripted, self._analysis_failure = self._analysis_failure, None
        self.analysis = _combined(index, runs)
        self._doing(Operation.ANALYSING, f"{self._label(index)}: analysis {', '.join(names)}")

        async def measure(run: _MetricRun) -> None:
            while run.phase is AnalysisPhase.RUNNING:
                await asyncio.sleep(run.check.interval)
                run.record(self._measure(run.check, scripted))
                self.analysis = _combined(index, runs)
                self._changed_to()

        tasks = [asyncio.create_task(measure(r)) for r in runs]
        try:
            # A failed or inconclusive metric decides the run at once (as Argo does).
            while self.analysis.phase is AnalysisPhase.RUNNING:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                tasks = [t for t in tasks if not t.done()]
                if not tasks:
                    break
        finally:
            for task in tasks:
                task.cancel()
        return self.analysis

    def _measure(self, check: Check, scripted: str | None) -> PlatformMeasurement:
        now = time.time()
        if scripted is not None:
            return PlatformMeasurement(now, AnalysisPhase.FAILED, None, message=f"{check.name}: {scripted}")
        if check.metric is None:
            return PlatformMeasurement(now, AnalysisPhase.ERROR, None, message="no query provider in memory")
        profiles, default = self.options.profiles, self.options.default
        share = self.weight / 100.0
        value = metric_value(check.metric, profiles.get(self.canary or "", default), share)
        stable = metric_value(check.metric, profiles.get(self.stable or "", default), 1.0 - share)
        if check.failure is not None and check.failure.holds(value, stable):
            phase = AnalysisPhase.FAILED
        elif check.success.holds(value, stable):
            phase = AnalysisPhase.SUCCESSFUL
        else:
            phase = AnalysisPhase.INCONCLUSIVE if check.failure is not None else AnalysisPhase.FAILED
        return PlatformMeasurement(now, phase, value, stable)


class MemoryPlatformMetrics(MetricsSource):
    """The live metrics the screen shows for a memory platform: its own per-version profiles."""

    name = "memory-platform"

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

        down: bool = False
        """Raise BackendUnavailable from window()."""

    options: MemoryPlatformMetrics.Options  # the base declares a BaseModel; this source is given its own

    def __init__(
        self, ctx: AdapterContext, options: MemoryPlatformMetrics.Options, backend: DeployBackend
    ) -> None:
        if not isinstance(backend, MemoryPlatform):
            raise TypeError(
                f"the memory-platform metrics source needs the memory-platform backend, not {backend.name}"
            )
        self.options = options
        self.platform = backend

    def _track(self, version: str | None, share: float) -> TrackMetrics:
        if version is None or share <= 0:
            return NO_DATA
        p = self.platform.options.profiles.get(version, self.platform.options.default)
        return TrackMetrics(p.rate, p.rate, p.error_rate, p.p95_ms, p.p99_ms)

    async def window(self, seconds: float) -> MetricsWindow:
        await asyncio.sleep(0)
        if self.options.down:
            raise BackendUnavailable("memory platform metrics are down")
        p = self.platform
        weight = p.weight / 100.0 if p.canary else 0.0
        return MetricsWindow(
            ts=time.time(),
            seconds=seconds,
            stable=self._track(p.stable, 1.0 - weight),
            canary=self._track(p.canary, weight),
        )


def register() -> None:
    """Make "memory-platform" a backend and a metrics source (tests, demos); it is not
    listed by default because it runs nothing real."""
    registry.register(
        registry.BACKENDS_GROUP, "memory-platform", "cockpit.adapters.memory_platform:MemoryPlatform"
    )
    registry.register(
        registry.METRICS_GROUP, "memory-platform", "cockpit.adapters.memory_platform:MemoryPlatformMetrics"
    )
