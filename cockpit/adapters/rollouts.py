"""What a platform that walks the rollout steps itself reports (Argo Rollouts, Flagger).

Plain immutable values in the platform's own vocabulary (Argo's phases, pause reasons
and analysis phases); the mirror driver (``cockpit.engine.drivers.mirror``) maps them
onto the cockpit's RolloutState. A backend produces them through the
:class:`~cockpit.adapters.base.PlatformRollouts` role.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class RolloutPhase(enum.StrEnum):
    """Argo Rollouts' phases. An aborted rollout is ``Degraded`` with ``aborted`` set."""

    HEALTHY = "Healthy"
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    DEGRADED = "Degraded"


class PauseReason(enum.StrEnum):
    """Why the platform holds the rollout (Argo's pause conditions)."""

    STEP = "CanaryPauseStep"  # a pause step, timed or until promoted
    INCONCLUSIVE = "InconclusiveAnalysisRun"  # an analysis could not decide: a human does
    USER = "PausedByUser"  # a pause command


class Operation(enum.StrEnum):
    """What the platform's controller is doing right now ("": waiting or done)."""

    NONE = ""
    DEPLOYING = "deploying"  # bringing the canary up
    SHIFTING = "shifting"  # changing the canary's weight
    ANALYSING = "analysing"
    PROMOTING = "promoting"
    ABORTING = "aborting"
    ROLLING_BACK = "rolling-back"


class AnalysisPhase(enum.StrEnum):
    """Argo's AnalysisRun / measurement phases."""

    RUNNING = "Running"
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"
    ERROR = "Error"


@dataclass(frozen=True, slots=True)
class PlatformMeasurement:
    ts: float
    phase: AnalysisPhase
    value: float | None  # canary value in the metric's unit; None: no value (error)
    stable_value: float | None = None
    message: str = ""


@dataclass(frozen=True, slots=True)
class PlatformMetricResult:
    """One metric of an analysis run (Argo's ``status.metricResults[]``)."""

    name: str
    condition: str  # the success condition, e.g. ">= 95"
    unit: str  # "%", "ms", "req/s", ""
    phase: AnalysisPhase
    measurements: tuple[PlatformMeasurement, ...] = ()  # the last ones kept
    count: int = 0  # measurements wanted
    taken: int = 0
    failed: int = 0
    inconclusive: int = 0
    errors: int = 0


@dataclass(frozen=True, slots=True)
class PlatformAnalysisRun:
    step: int  # 0-based index of the analysis step it belongs to
    phase: AnalysisPhase
    metrics: tuple[PlatformMetricResult, ...] = ()
    message: str = ""


@dataclass(frozen=True, slots=True)
class PlatformRevision:
    number: int
    version: str
    ts: float


@dataclass(frozen=True, slots=True)
class PlatformRollout:
    """One observation of the platform's rollout. ``generation`` grows at every change the
    platform makes, so an observation older than one already seen can be told apart."""

    generation: int
    phase: RolloutPhase
    stable_version: str
    steps: tuple[str, ...]  # the steps as the platform runs them, described for the screen
    message: str = ""  # the platform's own one line on where it is
    target_version: str | None = None  # what the rollout moves to; kept after an abort (retry)
    canary_version: str | None = None  # the canary running now
    weight: int = 0  # percent of traffic on the canary
    step_index: int = 0  # 0-based; == len(steps) once all steps are done
    operation: Operation = Operation.NONE
    pause: PauseReason | None = None
    paused_until: float | None = None  # end of a timed pause step (unix seconds)
    paused_by: str | None = None  # who sent the pause (PausedByUser)
    aborted: bool = False
    failure: str = ""  # an operation of the platform failed: what, and the error ("" if none)
    analysis: PlatformAnalysisRun | None = None  # the last analysis run of this rollout
    revisions: tuple[PlatformRevision, ...] = ()
