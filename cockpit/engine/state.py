"""The rollout state of one environment: plain immutable values, no behaviour."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Phase(enum.StrEnum):
    HEALTHY = "Healthy"  # stable serves 100 %, no rollout in progress
    PROGRESSING = "Progressing"  # walking the steps
    PAUSED = "Paused"  # waiting: a pause step, an inconclusive analysis, or a human
    ABORTED = "Aborted"  # traffic back on stable, canary gone; R retries
    DEGRADED = "Degraded"  # a backend action failed mid-way; the reason says what is known


class Activity(enum.StrEnum):
    """What the environment is doing right now inside its phase."""

    IDLE = "idle"
    MIGRATING = "migrating"  # the release's expand steps run, before anything is deployed
    DEPLOYING = "deploying canary"
    SHIFTING = "shifting traffic"
    WAITING = "pausing"
    ANALYSING = "analysing"
    SMOKE_TESTING = "smoke testing"
    PROMOTING = "promoting"
    ABORTING = "aborting"
    ROLLING_BACK = "rolling back"


class Cause(enum.StrEnum):
    """Why a rollout left its normal path. Set by the machine where the phase changes, so
    callers (headless exit codes, the screen) decide on a typed value, never on reason text."""

    ANALYSIS_FAILED = "analysis-failed"
    SMOKE_FAILED = "smoke-failed"  # a smoke check's answer was not what the plan expects
    MIGRATION_FAILED = "migration-failed"  # an expand step failed (or is missing): nothing was deployed
    ABORTED_BY_USER = "aborted-by-user"
    BACKEND_FAILURE = "backend-failure"  # a backend action failed; the reason says which
    HEALTH_GATE = "health-gate"  # the canary was observed unhealthy right before a traffic move
    CRASH_LOOP = "crash-loop"  # a track's restart policy gave up
    TIMEOUT = "timeout"
    INTERRUPTED = "interrupted"  # the cockpit was stopped (signal, kill) during the rollout
    JOURNAL_FAILURE = "journal-failure"  # a record could not be written: stop moving traffic
    INCONCLUSIVE_HEADLESS = "inconclusive-headless"  # no human to decide an inconclusive analysis
    INTERNAL_ERROR = "internal-error"  # a background task died; the reason carries the error


class Outcome(enum.StrEnum):
    """Analysis outcomes; NO_DATA and ERROR are measurement states, never silent."""

    RUNNING = "Running"
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"
    NO_DATA = "NoData"
    ERROR = "Error"


@dataclass(frozen=True, slots=True)
class Measurement:
    ts: float
    outcome: Outcome
    value: float | None  # canary value; None for no data / error
    stable_value: float | None = None  # the same metric on stable, for comparison
    message: str = ""
    limit: float | None = None  # the threshold judged against (relative: computed from stable then)


@dataclass(frozen=True, slots=True)
class CheckView:
    """The state of one check in an analysis run, as the screen shows it."""

    name: str
    condition: str  # e.g. ">= 95"
    unit: str  # "%", "ms", "req/s", ""
    outcome: Outcome
    measurements: tuple[Measurement, ...] = ()  # the last 10 kept (as Argo does)
    taken: int = 0
    count: int = 0
    failed: int = 0
    inconclusive: int = 0
    no_data: int = 0
    errors: int = 0
    query: str = ""  # the query as sent for the canary (built-in metrics: the source's template), shown on demand
    interval: float = 0.0  # seconds between measurements

    @property
    def last(self) -> Measurement | None:
        return self.measurements[-1] if self.measurements else None


@dataclass(frozen=True, slots=True)
class AnalysisView:
    step: int
    outcome: Outcome
    checks: tuple[CheckView, ...]
    message: str = ""


@dataclass(frozen=True, slots=True)
class SmokeResult:
    """How one smoke check ended: what was asked, what came back, and what was wrong."""

    name: str
    passed: bool
    request: str  # "GET http://127.0.0.1:18080/healthz on track canary"; "" when none could be made
    status: int | None = None  # the last answer's HTTP status; None when none came
    latency: float | None = None  # seconds until the last answer's body was read
    served_by: str = ""  # the track the router says answered ("" if it does not say)
    attempts: int = 0  # requests made
    problem: str = ""  # why the last attempt failed; "" when passed

    def summary(self) -> str:
        """``home: 200 in 12 ms from canary``, or the :meth:`failure`."""
        if not self.passed:
            return self.failure()
        took = f" in {self.latency * 1000:.0f} ms" if self.latency is not None else ""
        by = f" from {self.served_by}" if self.served_by else ""
        return f"{self.name}: {self.status}{took}{by}"

    def failure(self) -> str:
        """``smoke check 'home' failed: expected status 200, got 503 (3 attempts: GET
        http://127.0.0.1:18080/ on track canary)``: which check, what was wrong, what was asked."""
        tries = f"{self.attempts} attempts" if self.attempts > 1 else ""
        where = ": ".join(part for part in (tries, self.request) if part)
        return f"smoke check {self.name!r} failed: {self.problem}" + (f" ({where})" if where else "")


@dataclass(frozen=True, slots=True)
class Revision:
    number: int
    version: str
    ts: float
    user: str


@dataclass(frozen=True, slots=True)
class RolloutState:
    env: str
    phase: Phase
    stable_version: str
    steps_total: int
    reason: str = ""
    activity: Activity = Activity.IDLE
    canary_version: str | None = None  # the canary deployed right now
    target_version: str | None = None  # the version being (or last) rolled out; kept for retry
    weight: int = 0  # percent of traffic on the canary
    step_index: int = 0  # 0-based index of the current step
    epoch: int = 0  # grows at every start/abort/rollback, so stale timers are ignored
    paused_until: float | None = None  # end of a timed pause (unix seconds)
    analysis: AnalysisView | None = None
    smoke: tuple[SmokeResult, ...] = ()  # the last smoke step's results, in the plan's order
    revisions: tuple[Revision, ...] = field(default_factory=tuple)
    cause: Cause | None = None  # why the rollout was aborted or degraded; None on the normal path
    warning: str = ""  # what the last status poll saw wrong (e.g. "canary 1/2 ready: ..."), "" if fine
    paused_by: str | None = None  # who paused the rollout by hand (a Pause command); None otherwise

    @property
    def in_rollout(self) -> bool:
        return self.phase in (Phase.PROGRESSING, Phase.PAUSED)

    @property
    def revision(self) -> int:
        return self.revisions[-1].number if self.revisions else 0

    @property
    def step_label(self) -> str:
        """``n/m`` for the screen (1-based); ``-`` when no rollout is on."""
        if self.target_version is None or self.phase is Phase.HEALTHY:
            return "-"
        return f"{min(self.step_index + 1, self.steps_total)}/{self.steps_total}"
