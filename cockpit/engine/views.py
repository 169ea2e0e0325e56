"""What the engine hands out: views for the screen and results of commands. Plain values."""

from __future__ import annotations

from dataclasses import dataclass

from cockpit.adapters.base import Capability
from cockpit.engine.state import Cause, RolloutState
from cockpit.migrations.api import MigrationsView
from cockpit.model import BackendStatus, MetricsWindow, TrackStatus
from cockpit.plan.models import Strategy

BLUE_GREEN = "blue-green"


def strategy_kind(strategy: Strategy) -> str:
    """How the plan moves traffic: ``canary`` (weighted steps), ``blue-green`` (the
    preview runs beside the active stack at weight 0, then one switch) or ``rolling``."""
    if strategy.blue_green is not None:
        return BLUE_GREEN
    return "rolling" if strategy.rolling is not None else "canary"


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
    metrics_retry_at: float | None = None  # while the metrics source is down or slow: the next attempt
    seq: int = 0  # grows with every change; cheap change detection for the UI
    connected: bool = False  # the backend was started (or attached) at least once
    strategy: str = "canary"  # strategy_kind() of the plan
    migrations: MigrationsView | None = None  # None: the plan has no [[migrations]]

    @property
    def blue_green(self) -> bool:
        """The canary track is the *preview* stack and the promote is one switch: the
        stable track is the *active* one, and there is no weight in between."""
        return self.strategy == BLUE_GREEN

    @property
    def preview_url(self) -> str | None:
        """Where the preview (canary) stack answers directly, if the backend says."""
        return self.backend.preview_url if self.backend else None

    @property
    def url(self) -> str | None:
        return self.backend.url if self.backend else None

    @property
    def up(self) -> bool:
        return self.backend_error is None and self.backend is not None


def describe_track(name: str, track: TrackStatus) -> str:
    """``canary 1.1.0 1/2 ready: replica #2 exited with code 1`` - one line, as observed."""
    line = f"{name} {track.version} {track.replicas_ready}/{track.replicas_desired} ready"
    if track.crash_loop:
        line += ", crash-looping"
    elif track.restarts:
        line += f", {track.restarts} restart{'s' if track.restarts != 1 else ''}"
    return f"{line}: {track.problem}" if track.problem else line
