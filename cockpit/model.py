"""Observations: what a backend or metrics source reports, shared by every layer.

Adapters produce these values, the engine folds them into its state and the UI renders
them, so they live here, below all three: the UI can show a :class:`TrackStatus` without
importing anything from ``cockpit.adapters``. They are plain frozen dataclasses with no
dependency beyond the standard library. ``cockpit.adapters.base`` re-exports them so
backends written against it keep working.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "NO_DATA",
    "BackendStatus",
    "LogLine",
    "LogSink",
    "MetricsWindow",
    "Track",
    "TrackMetrics",
    "TrackStatus",
]


class Track(enum.StrEnum):
    STABLE = "stable"
    CANARY = "canary"


@dataclass(frozen=True, slots=True)
class TrackStatus:
    """One track as observed just now. The engine gates every traffic move and every
    promote on these fields, so an adapter must report what runs, not what it intended."""

    version: str
    replicas_desired: int
    replicas_ready: int  # running AND passing health checks right now
    restarts: int = 0  # replicas of this track restarted after a crash since it was deployed
    crash_loop: bool = False  # the restart policy gave up: the track will not heal by itself
    problem: str = ""  # one line on what is wrong (e.g. "replica #2 exited with code 1"), "" if fine
    # What exactly runs, when the platform knows it (an image id): a version's tag can be moved
    # to another build, so the version alone does not say which code serves. "" if unknown.
    image: str = ""

    @property
    def healthy(self) -> bool:
        return self.replicas_desired > 0 and self.replicas_ready >= self.replicas_desired and not self.crash_loop


@dataclass(frozen=True, slots=True)
class BackendStatus:
    """What the platform really runs, as observed (not as intended)."""

    stable: TrackStatus | None
    canary: TrackStatus | None
    weight: int  # percent of traffic on the canary, 0..100
    url: str | None = None  # where users reach the service (router / ingress)
    detail: str = ""
    # Where the canary track answers directly, bypassing the weights: a blue-green
    # preview is checked there (and analysed on the traffic sent to it) before the switch.
    preview_url: str | None = None


@dataclass(frozen=True, slots=True)
class LogLine:
    ts: float  # unix seconds when the line was read
    env: str
    source: str  # e.g. "canary 1.1.0 #1" or "router"
    track: Track | None
    text: str  # one line, without the trailing newline


LogSink = Callable[[Sequence[LogLine]], None]
"""Receives log lines in batches. Must be cheap and must not block (it appends to a
bounded buffer); adapters call it from the event loop thread."""


@dataclass(frozen=True, slots=True)
class TrackMetrics:
    """Aggregates over one window for one track. ``None`` means no data."""

    requests: float  # requests counted in the window
    request_rate: float | None  # requests per second
    error_rate: float | None  # fraction of 5xx responses, 0..1
    p95_ms: float | None
    p99_ms: float | None

    @property
    def has_data(self) -> bool:
        return self.requests > 0

    @property
    def success_rate(self) -> float | None:
        return None if self.error_rate is None else 1.0 - self.error_rate


NO_DATA = TrackMetrics(requests=0.0, request_rate=None, error_rate=None, p95_ms=None, p99_ms=None)


@dataclass(frozen=True, slots=True)
class MetricsWindow:
    ts: float  # end of the window (unix seconds)
    seconds: float  # window length
    stable: TrackMetrics = NO_DATA
    canary: TrackMetrics = NO_DATA

    def track(self, track: Track) -> TrackMetrics:
        return self.stable if track is Track.STABLE else self.canary


# --------------------------------------------------------------------------- platform rollouts
# What a platform that walks the rollout steps itself reports (Argo Rollouts, Flagger), in its
# own vocabulary; the mirror driver maps these onto the cockpit's RolloutState.


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
