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
