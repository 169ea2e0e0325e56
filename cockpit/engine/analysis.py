"""The analysis judge: measure the canary, compare with the limits, decide.

A run measures each check ``count`` times, one ``interval`` apart, all checks side
by side. One failed measurement more than ``failure_limit`` fails the run (and
the rollout aborts); an inconclusive value (neither the success nor the failure
condition holds) pauses it for a human. "No data" (no canary requests in the
window) and errors reading the source are their own visible states: they are
retried up to their limits and never count as a pass or a failure.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from cockpit.adapters.base import BackendError, MetricsSource
from cockpit.engine.state import AnalysisView, CheckView, Measurement, Outcome
from cockpit.model import MetricsWindow, TrackMetrics
from cockpit.plan.models import Check

KEPT_MEASUREMENTS = 10  # as Argo Rollouts keeps

UNITS = {
    "success-rate": "%",
    "error-rate": "%",
    "latency-p95": "ms",
    "latency-p99": "ms",
    "request-rate": "req/s",
}


def metric_value(metric: str, track: TrackMetrics) -> float | None:
    """The built-in ``metric`` of one track in display units, ``None`` for no data."""
    if not track.has_data:
        return None
    match metric:
        case "success-rate":
            return None if track.success_rate is None else track.success_rate * 100.0
        case "error-rate":
            return None if track.error_rate is None else track.error_rate * 100.0
        case "latency-p95":
            return track.p95_ms
        case "latency-p99":
            return track.p99_ms
        case "request-rate":
            return track.request_rate
    raise ValueError(f"unknown built-in metric {metric!r}")


def judge(check: Check, value: float) -> Outcome:
    if check.failure is None:
        return Outcome.SUCCESSFUL if check.success.holds(value) else Outcome.FAILED
    if check.failure.holds(value):
        return Outcome.FAILED
    if check.success.holds(value):
        return Outcome.SUCCESSFUL
    return Outcome.INCONCLUSIVE


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "no data"
    if unit == "%":
        return f"{value:.1f}%"
    if unit == "ms":
        return f"{value:.0f}ms"
    return f"{value:.1f}{(' ' + unit) if unit else ''}"


@dataclass
class CheckRun:
    """Accumulates one check's measurements; pure apart from the clock passed in."""

    check: Check
    measurements: list[Measurement] = field(default_factory=list)
    taken: int = 0
    failed: int = 0
    inconclusive: int = 0
    no_data: int = 0
    errors: int = 0
    consecutive_errors: int = 0
    outcome: Outcome = Outcome.RUNNING
    message: str = ""

    @property
    def unit(self) -> str:
        return UNITS.get(self.check.metric or "", "")

    def record(self, m: Measurement) -> None:
        self.measurements = (self.measurements + [m])[-KEPT_MEASUREMENTS:]
        c = self.check
        if m.outcome is Outcome.ERROR:
            self.errors += 1
            self.consecutive_errors += 1
            if self.consecutive_errors > c.error_limit:
                self._end(Outcome.INCONCLUSIVE, f"{c.name}: metrics unavailable ({m.message})")
            return
        self.consecutive_errors = 0
        if m.outcome is Outcome.NO_DATA:
            self.no_data += 1
            if self.no_data > c.no_data_limit:
                self._end(
                    Outcome.INCONCLUSIVE, f"{c.name}: no data (no canary requests in {self.no_data} windows)"
                )
            return
        self.taken += 1
        shown = f"{c.name} {format_value(m.value, self.unit)} (needs {c.success})"
        if m.outcome is Outcome.FAILED:
            self.failed += 1
            if self.failed > c.failure_limit:
                self._end(Outcome.FAILED, shown)
                return
        elif m.outcome is Outcome.INCONCLUSIVE:
            self.inconclusive += 1
            if self.inconclusive > c.inconclusive_limit:
                self._end(Outcome.INCONCLUSIVE, shown)
                return
        if self.taken >= c.count:
            self._end(Outcome.SUCCESSFUL, shown)

    def _end(self, outcome: Outcome, message: str) -> None:
        self.outcome, self.message = outcome, message

    def view(self) -> CheckView:
        return CheckView(
            name=self.check.name,
            condition=str(self.check.success),
            unit=self.unit,
            outcome=self.outcome,
            measurements=tuple(self.measurements),
            taken=self.taken,
            count=self.check.count,
            failed=self.failed,
            inconclusive=self.inconclusive,
            no_data=self.no_data,
            errors=self.errors,
        )


def combine(step: int, runs: list[CheckRun]) -> AnalysisView:
    """The run's outcome: any Failed fails it, then any Inconclusive, else Running or Successful."""
    views = tuple(r.view() for r in runs)
    for outcome in (Outcome.FAILED, Outcome.INCONCLUSIVE):
        ended = [r for r in runs if r.outcome is outcome]
        if ended:
            return AnalysisView(step, outcome, views, "; ".join(r.message for r in ended))
    if all(r.outcome is Outcome.SUCCESSFUL for r in runs):
        return AnalysisView(step, Outcome.SUCCESSFUL, views, "; ".join(r.message for r in runs))
    return AnalysisView(step, Outcome.RUNNING, views)


async def take_measurement(
    check: Check, source: MetricsSource, clock: Callable[[], float] = time.time
) -> Measurement:
    """Measure ``check`` once over its interval, on the canary (stable alongside)."""
    now = clock()
    try:
        if check.query is not None:
            value = await source.query(check.query)
            stable_value = None
        else:
            window: MetricsWindow = await source.window(check.interval)
            assert check.metric is not None
            value = metric_value(check.metric, window.canary)
            stable_value = metric_value(check.metric, window.stable)
    except BackendError as err:
        return Measurement(now, Outcome.ERROR, None, message=str(err))
    if value is None:
        return Measurement(now, Outcome.NO_DATA, None, stable_value)
    return Measurement(now, judge(check, value), value, stable_value)


async def run_analysis(
    step: int,
    checks: list[Check],
    source: MetricsSource,
    on_progress: Callable[[AnalysisView], None],
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    clock: Callable[[], float] = time.time,
) -> AnalysisView:
    """Run the checks side by side until the run has an outcome; report each measurement."""
    runs = [CheckRun(c) for c in checks]
    decided = asyncio.Event()

    async def loop(run: CheckRun) -> None:
        while run.outcome is Outcome.RUNNING and not decided.is_set():
            await sleep(run.check.interval)
            run.record(await take_measurement(run.check, source, clock))
            view = combine(step, runs)
            on_progress(view)
            if view.outcome is not Outcome.RUNNING and view.outcome is not Outcome.SUCCESSFUL:
                decided.set()  # a failure decides the run at once: stop the other checks

    tasks = [asyncio.create_task(loop(r)) for r in runs]
    try:
        done_waiter = asyncio.create_task(decided.wait())
        await asyncio.wait([*tasks, done_waiter], return_when=asyncio.FIRST_COMPLETED)
        while not decided.is_set() and not all(t.done() for t in tasks):
            await asyncio.wait([*tasks, done_waiter], return_when=asyncio.FIRST_COMPLETED)
        done_waiter.cancel()
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for t in tasks:
        if t.done() and not t.cancelled() and t.exception() is not None:
            raise t.exception()  # type: ignore[misc]
    view = combine(step, runs)
    if view.outcome is Outcome.RUNNING:  # cannot happen unless a loop ended early; never pass silently
        view = replace(view, outcome=Outcome.INCONCLUSIVE, message="analysis ended without a verdict")
    return view
