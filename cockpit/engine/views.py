"""What the engine hands out: views for the screen and results of commands. Plain values."""

from __future__ import annotations

from dataclasses import dataclass

from cockpit.adapters.base import Capability
from cockpit.engine.state import Cause, RolloutState
from cockpit.model import BackendStatus, MetricsWindow, TrackStatus


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


def describe_track(name: str, track: TrackStatus) -> str:
    """``canary 1.1.0 1/2 ready: replica #2 exited with code 1`` - one line, as observed."""
    line = f"{name} {track.version} {track.replicas_ready}/{track.replicas_desired} ready"
    if track.crash_loop:
        line += ", crash-looping"
    elif track.restarts:
        line += f", {track.restarts} restart{'s' if track.restarts != 1 else ''}"
    return f"{line}: {track.problem}" if track.problem else line
