"""A deterministic in-memory backend and metrics source ("memory") for tests.

Shipped with the package so a third-party backend's tests (and the contract suite in
``cockpit.adapters.testing``) can use it, but not a built-in: it is left out of the
registry users see. A test suite that wants plans with ``adapter = "memory"`` calls
:func:`register` once.

It honours the contract in ``cockpit.adapters.base``: ``start`` brings stable up at
100 %, ``deploy_canary`` starts the canary at weight 0, ``promote_canary`` makes it
stable, ``remove_canary`` sends all traffic back first, ``deploy_stable`` removes any
canary first; every failure is a typed :class:`BackendError`. On top, tests can:

* set it **down** (``backend.down = True``): every call raises BackendUnavailable;
* make calls **hang** (``backend.hang("deploy_canary")``) until ``backend.release()``;
* push log lines (``backend.emit(...)``); the backend also logs its own actions,
  deterministically (no timer), so a snapshot's log pane is always the same;
* make a track **sick** (``backend.sick(Track.CANARY, ready=0, crash_loop=True)``): its
  status reports it until a new deploy of that track; ``status_fails`` makes only
  ``status()`` raise; ``explode("set_weight")`` raises a non-backend error (an engine bug).

Metric values are fixed per version (``1.2.0`` fails analysis by default); with
``wave = true`` they move a little over time, for screenshots and benchmarks.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from cockpit.adapters import registry
from cockpit.adapters.base import (
    AdapterContext,
    AmbiguousQuery,
    BackendError,
    BackendUnavailable,
    Capability,
    DeployBackend,
    MetricsSource,
    VersionNotFound,
)
from cockpit.model import (
    NO_DATA,
    BackendStatus,
    LogLine,
    LogSink,
    MetricsWindow,
    Track,
    TrackMetrics,
    TrackStatus,
)


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rate: float = 40.0  # requests per second at 100 % of the traffic
    error_rate: float = 0.002  # fraction of 5xx
    p95_ms: float = 60.0
    p99_ms: float = 90.0


DEFAULT_PROFILES = {
    "1.0.0": Profile(rate=40.0, error_rate=0.002, p95_ms=60.0, p99_ms=90.0),
    "1.1.0": Profile(rate=40.0, error_rate=0.001, p95_ms=55.0, p99_ms=80.0),
    "1.2.0": Profile(rate=40.0, error_rate=0.30, p95_ms=300.0, p99_ms=420.0),
}


class MemoryBackend(DeployBackend):
    name = "memory"
    capabilities = frozenset({Capability.SET_WEIGHT, Capability.LOGS, Capability.ROLLBACK_TO_REVISION})

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

        versions: list[str] = Field(default_factory=lambda: ["1.0.0", "1.1.0", "1.2.0"])
        """Versions this backend can run, oldest first."""
        replicas: int = 2
        """Replicas per track."""
        url: str | None = "http://127.0.0.1:18080"
        """Where users reach the service."""
        down: bool = False
        """Start unreachable (every call raises BackendUnavailable)."""
        action_delay: float = 0.0
        """Seconds each action takes (an await), to see the 'busy' states."""

    options: MemoryBackend.Options  # the base declares a BaseModel; this backend is given its own model
    instances: ClassVar[dict[tuple[str, str], MemoryBackend]] = {}

    def __init__(self, ctx: AdapterContext, options: MemoryBackend.Options) -> None:
        self.ctx = ctx
        self.options = options
        self.down = options.down
        self.running = False
        self.stable: str | None = None
        self.canary: str | None = None
        self.weight = 0
        self.calls: list[str] = []
        self.closed = False
        self._sink: LogSink | None = None
        self._hung: set[str] = set()
        self._release = asyncio.Event()
        self._sick: dict[Track, TrackStatus] = {}  # observed health overrides, by track
        self._exploding: set[str] = set()
        self.status_fails = False
        MemoryBackend.instances[ctx.service, ctx.env] = self

    # ------------------------------------------------------------------ test controls

    def hang(self, *methods: str) -> None:
        """Make these methods await until :meth:`release` (a slow platform)."""
        self._hung.update(methods)
        self._release = asyncio.Event()

    def sick(self, track: Track, ready: int, crash_loop: bool = False, problem: str = "") -> None:
        """Report ``track`` with only ``ready`` replicas ready (and a crash loop) from now on."""
        n = self.options.replicas
        self._sick[track] = TrackStatus("", n, ready, restarts=1, crash_loop=crash_loop, problem=problem)

    def explode(self, *methods: str) -> None:
        """Make these methods raise a RuntimeError: not a BackendError, an unexpected bug."""
        self._exploding.update(methods)

    def _track(self, track: Track, version: str | None) -> TrackStatus | None:
        if version is None:
            return None
        sick = self._sick.get(track)
        n = self.options.replicas
        return TrackStatus(version, n, n) if sick is None else replace(sick, version=version)

    def release(self) -> None:
        self._hung.clear()
        self._release.set()

    def emit(
        self,
        text: str,
        track: Track | None = Track.STABLE,
        source: str | None = None,
        ts: float | None = None,
    ) -> None:
        if self._sink is None:
            return
        version = self.stable if track is Track.STABLE else self.canary
        name = source or (f"{track.value} {version} #1" if track else "router")
        self._sink([LogLine(ts if ts is not None else time.time(), self.ctx.env, name, track, text)])

    def _log(self, msg: str, track: Track | None = None, level: str = "info", **fields: object) -> None:
        record = {"ts": round(time.time(), 3), "level": level, "msg": msg, **fields}
        self.emit(json.dumps(record, separators=(",", ":")), track)

    async def _enter(self, method: str) -> None:
        self.calls.append(method)
        if method in self._hung:
            await self._release.wait()
        if self.options.action_delay and method not in ("status", "versions"):
            await asyncio.sleep(self.options.action_delay)
        else:
            await asyncio.sleep(0)
        if self.down:
            raise BackendUnavailable(f"memory backend {self.ctx.env} is down (connection refused)")
        if self.closed and method != "start":
            raise BackendUnavailable(f"memory backend {self.ctx.env} is closed")
        if method in self._exploding:
            raise RuntimeError(f"memory backend {method} exploded")
        if method == "status" and self.status_fails:
            raise BackendUnavailable(f"memory backend {self.ctx.env}: status timed out")

    # ------------------------------------------------------------------ the contract

    async def start(self, stable_version: str) -> None:
        await self._enter("start")
        if stable_version not in self.options.versions:
            raise VersionNotFound(
                f"version {stable_version} does not exist (known: {', '.join(self.options.versions)})"
            )
        self.running, self.closed = True, False
        self.stable, self.canary, self.weight = stable_version, None, 0
        self._log("started", Track.STABLE, version=stable_version, replicas=self.options.replicas)

    async def attach(self) -> None:
        await self._enter("attach")
        if not self.running:
            raise BackendUnavailable(f"nothing runs in memory for {self.ctx.env}")

    async def close(self) -> None:
        self.calls.append("close")
        self.running, self.closed = False, True

    async def status(self) -> BackendStatus:
        await self._enter("status")
        return BackendStatus(
            stable=self._track(Track.STABLE, self.stable),
            canary=self._track(Track.CANARY, self.canary),
            weight=self.weight,
            url=self.options.url,
        )

    async def versions(self) -> Sequence[str]:
        await self._enter("versions")
        return list(self.options.versions)

    async def deploy_canary(self, version: str) -> None:
        await self._enter("deploy_canary")
        if version not in self.options.versions:
            raise VersionNotFound(f"version {version} does not exist")
        self._sick.pop(Track.CANARY, None)
        self.canary, self.weight = version, 0
        self._log("started", Track.CANARY, version=version, replicas=self.options.replicas)

    async def set_weight(self, weight: int) -> None:
        await self._enter("set_weight")
        if not 0 <= weight <= 100:
            raise BackendError(f"weight must be between 0 and 100, not {weight}")
        if self.canary is None and weight:
            raise BackendError("there is no canary to send traffic to")  # 0 % is already true
        self.weight = weight
        self._log("routing table changed", None, stable=self.stable, canary=self.canary, weight=weight)

    async def promote_canary(self) -> None:
        await self._enter("promote_canary")
        if self.canary is None:
            raise BackendError("there is no canary to promote")
        self._log("stopping: finishing in-flight requests", Track.STABLE, version=self.stable)
        self.stable, self.canary, self.weight = self.canary, None, 0
        self._sick.pop(Track.STABLE, None)  # the old stable is gone; the canary's health moves with it
        if (sick := self._sick.pop(Track.CANARY, None)) is not None:
            self._sick[Track.STABLE] = sick
        self._log("promoted to stable", Track.STABLE, version=self.stable)

    async def remove_canary(self) -> None:
        await self._enter("remove_canary")
        self.weight = 0
        if self.canary:
            self._log("canary removed", None, level="warning", canary=self.canary)
        self.canary = None
        self._sick.pop(Track.CANARY, None)

    async def deploy_stable(self, version: str) -> None:
        await self._enter("deploy_stable")
        if version not in self.options.versions:
            raise VersionNotFound(f"version {version} does not exist")
        self.canary, self.weight, self.stable = None, 0, version
        self._sick.clear()
        self._log("started", Track.STABLE, version=version, replicas=self.options.replicas)

    def attach_log_sink(self, sink: LogSink) -> None:
        self._sink = sink


class MemoryMetrics(MetricsSource):
    name = "memory"

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

        profiles: dict[str, Profile] = Field(default_factory=lambda: dict(DEFAULT_PROFILES))
        """Metric values per version; versions not listed use ``default``."""
        default: Profile = Field(default_factory=Profile)
        split_traffic: bool = False
        """Scale each track's request rate by its share of the traffic."""
        wave: bool = False
        """Let values move over time (screenshots, benchmarks); off for deterministic tests."""
        down: bool = False
        """Raise BackendUnavailable from window() and query()."""
        series: dict[str, list[float]] = Field(default_factory=dict)
        """Answers of ``query()``: the query with its placeholders filled -> the values of
        its series (none: no data; several: AmbiguousQuery)."""

    supports_query = True  # runs custom queries (the plan loader asks)
    options: MemoryMetrics.Options  # the base declares a BaseModel; this source is given its own model

    def __init__(self, ctx: AdapterContext, options: MemoryMetrics.Options, backend: DeployBackend) -> None:
        self.ctx = ctx
        self.options = options
        self.backend = backend
        self.down = options.down
        self.series: dict[str, list[float]] = {k: list(v) for k, v in options.series.items()}
        self.queries: list[str] = []  # every query as filled, in order (tests read it)

    def _track(self, version: str | None, share: float, phase: float) -> TrackMetrics:
        if version is None or share <= 0:
            return NO_DATA
        p = self.options.profiles.get(version, self.options.default)
        wave = 1.0 + (0.15 * math.sin(time.time() / 3.0 + phase) if self.options.wave else 0.0)
        rate = p.rate * (share if self.options.split_traffic else 1.0) * wave
        return TrackMetrics(
            requests=rate,
            request_rate=rate,
            error_rate=min(1.0, p.error_rate * wave),
            p95_ms=p.p95_ms * wave,
            p99_ms=p.p99_ms * wave,
        )

    def _backend(self) -> MemoryBackend:
        backend = self.backend
        if self.down or (isinstance(backend, MemoryBackend) and backend.down):
            raise BackendUnavailable(f"memory metrics for {self.ctx.env} unavailable")
        assert isinstance(backend, MemoryBackend)
        return backend

    def _tracks(self, backend: MemoryBackend) -> dict[Track, TrackMetrics]:
        weight = backend.weight / 100.0
        return {
            Track.STABLE: self._track(backend.stable, 1.0 - weight if backend.canary else 1.0, 0.0),
            Track.CANARY: self._track(backend.canary, weight, 1.3),
        }

    async def window(self, seconds: float) -> MetricsWindow:
        await asyncio.sleep(0)
        tracks = self._tracks(self._backend())
        return MetricsWindow(ts=time.time(), seconds=seconds, stable=tracks[Track.STABLE], canary=tracks[Track.CANARY])

    def fill(self, expr: str, track: Track, seconds: float | None) -> str:
        """``expr`` with the contract's placeholders filled for ``track`` (only those: the
        braces of a PromQL selector stay as they are)."""
        backend = self.backend
        running = None
        if isinstance(backend, MemoryBackend):
            running = backend.stable if track is Track.STABLE else backend.canary
        version = self.track_versions.get(track) or running or ""
        values = {
            "service": self.ctx.service,
            "env": self.ctx.env,
            "track": track.value,
            "version": version,
            "interval": f"{seconds:g}s" if seconds is not None else "",
        }
        for name, value in values.items():
            expr = expr.replace("{" + name + "}", str(value))
        return expr

    async def query(self, expr: str, *, track: Track = Track.CANARY, seconds: float | None = None) -> float | None:
        """A scripted answer from ``series`` for the filled query; else, for a profile
        field name (``rate``, ``error_rate``, ``p95_ms``, ``p99_ms``), that value of the
        version ``track`` runs (``None`` without traffic); else no data, as a query for a
        series nobody exports."""
        await asyncio.sleep(0)
        backend = self._backend()
        filled = self.fill(expr, track, seconds)
        self.queries.append(filled)
        if filled in self.series:
            values = self.series[filled]
            if len(values) > 1:
                raise AmbiguousQuery(f"query {filled!r} returned {len(values)} series where one number is expected")
            return values[0] if values and not math.isnan(values[0]) else None
        metrics = self._tracks(backend)[track]
        profile_fields = {
            "rate": metrics.request_rate,
            "error_rate": metrics.error_rate,
            "p95_ms": metrics.p95_ms,
            "p99_ms": metrics.p99_ms,
        }
        return profile_fields.get(expr) if metrics.has_data else None


def register() -> None:
    """Make ``adapter = "memory"`` / ``source = "memory"`` usable in plans, in this process."""
    registry.register(registry.BACKENDS_GROUP, "memory", f"{__name__}:MemoryBackend")
    registry.register(registry.METRICS_GROUP, "memory", f"{__name__}:MemoryMetrics")
