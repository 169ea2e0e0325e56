"""The analysis judge: measure canary and stable, compare with the limits, decide.

Semantics follow Argo Rollouts' AnalysisTemplate metrics where Argo has them:

* each check is measured every ``interval`` (the first one interval after the step
  starts, so its window holds only traffic sent during the analysis) until ``count``
  measurements were judged; all checks of a step run side by side;
* ``failure_limit`` (default 0) failed measurements are tolerated, one more fails the
  check; ``inconclusive_limit`` (default 0) likewise ends it Inconclusive; with a
  ``failure`` condition, a value where neither condition holds is Inconclusive;
* errors reading the source are retried at the next interval; ``error_limit`` (Argo's
  consecutiveErrorLimit, default 4) *consecutive* errors are tolerated, and a judged or
  no-data measurement in between resets the count;
* the last 10 measurements are kept per check (Argo's default retention).

Where Argo has nothing, or less:

* conditions may be relative to stable (``"<= stable * 1.2 + 10ms"``): stable is measured
  over the same window (built-in metrics: the same ``window()``; queries: evaluated for
  ``Track.STABLE`` too) and each measurement keeps the ``limit`` it was judged against;
* "no data" (no canary requests, or a relative condition whose stable has none) is its
  own outcome, never a pass: tolerated ``no_data_limit`` times, then the check ends as
  the plan's ``no_data`` policy says (Inconclusive by default, or Failed). No data and
  errors never count towards ``count``, so a canary without traffic cannot succeed;
* more consecutive errors than ``error_limit`` end the check in Error and the run, like
  Argo's Error phase, aborts the rollout (reported as Failed, with a message saying the
  metrics source failed, not the canary). Why abort rather than pause: while the source
  is down nobody can see the canary, and a paused rollout keeps sending it users
  unobserved until someone notices; an abort puts all traffic back on the known-good
  stable at once, says why, and a retry (``R``) starts over once the source is back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from cockpit.adapters.base import AmbiguousQuery, BackendError, MetricsSource
from cockpit.engine.state import AnalysisView, CheckView, Measurement, Outcome
from cockpit.model import MetricsWindow, Track, TrackMetrics
from cockpit.plan.models import METRIC_UNITS, Check
from cockpit.secrets import redact

KEPT_MEASUREMENTS = 10  # as Argo Rollouts keeps

UNITS = METRIC_UNITS  # the built-in metrics' units, by metric name


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


def judge(check: Check, value: float, stable: float | None = None) -> Outcome:
    """One value against the check's conditions (relative ones need ``stable``)."""
    if check.failure is None:
        return Outcome.SUCCESSFUL if check.success.holds(value, stable) else Outcome.FAILED
    if check.failure.holds(value, stable):
        return Outcome.FAILED
    if check.success.holds(value, stable):
        return Outcome.SUCCESSFUL
    return Outcome.INCONCLUSIVE


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "no data"
    if unit == "%":
        return f"{value:.1f}%"
    if unit == "ms":
        return f"{value:.0f}ms"
    if unit == "s":
        return f"{value:.3g}s"
    return f"{value:.1f}{(' ' + unit) if unit else ''}"


def needs(check: Check, m: Measurement) -> str:
    """What the value had to be: ``>= 95``, or for a relative condition the limit and
    how it came from stable: ``<= 550ms = stable 450ms * 1.2 + 10ms``."""
    cond = check.success
    if not cond.relative or m.limit is None:
        return str(cond)
    unit = check.value_unit
    formula = str(cond).removeprefix(cond.op).strip().replace("stable", f"stable {format_value(m.stable_value, unit)}", 1)
    return f"{cond.op} {format_value(m.limit, unit)} = {formula}"


@dataclass
class CheckRun:
    """Accumulates one check's measurements; pure apart from the clock passed in."""

    check: Check
    query: str = ""  # the query behind the check, as shown on demand
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
        return self.check.value_unit

    def record(self, m: Measurement) -> None:
        self.measurements = (self.measurements + [m])[-KEPT_MEASUREMENTS:]
        c = self.check
        if m.outcome is Outcome.ERROR:
            self.errors += 1
            self.consecutive_errors += 1
            if self.consecutive_errors > c.error_limit:
                self._end(
                    Outcome.ERROR,
                    f"{c.name}: metrics source failed {self.consecutive_errors} times in a row"
                    f" (error limit {c.error_limit}), the canary was not judged: {m.message}",
                )
            return
        self.consecutive_errors = 0
        if m.outcome is Outcome.NO_DATA:
            self.no_data += 1
            if self.no_data > c.no_data_limit:
                ends = Outcome.FAILED if c.no_data == "failed" else Outcome.INCONCLUSIVE
                self._end(ends, f"{c.name}: no data {self.no_data} times (no-data limit {c.no_data_limit}): {m.message}")
            return
        self.taken += 1
        shown = f"{c.name} {format_value(m.value, self.unit)} (needs {needs(c, m)})"
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
            query=self.query,
            interval=self.check.interval,
        )


def combine(step: int, runs: list[CheckRun]) -> AnalysisView:
    """The run's outcome: a Failed or Error check fails it (the rollout aborts), then any
    Inconclusive (it pauses), else Running or Successful."""
    views = tuple(r.view() for r in runs)
    aborting = [r for r in runs if r.outcome in (Outcome.FAILED, Outcome.ERROR)]
    if aborting:
        return AnalysisView(step, Outcome.FAILED, views, "; ".join(r.message for r in aborting))
    undecided = [r for r in runs if r.outcome is Outcome.INCONCLUSIVE]
    if undecided:
        return AnalysisView(step, Outcome.INCONCLUSIVE, views, "; ".join(r.message for r in undecided))
    if all(r.outcome is Outcome.SUCCESSFUL for r in runs):
        return AnalysisView(step, Outcome.SUCCESSFUL, views, "; ".join(r.message for r in runs))
    return AnalysisView(step, Outcome.RUNNING, views)


def shown_query(check: Check, source: MetricsSource) -> str:
    """The query behind ``check`` for the canary, for the gate view."""
    try:
        if check.query is not None:
            return source.render(check.query, Track.CANARY, check.interval)
        assert check.metric is not None
        return source.shown_query(check.metric, Track.CANARY, check.interval)
    except BackendError:
        if check.query is not None:
            return check.query  # as written: the measurements say why it cannot be filled
        return ""  # display only: the measurements say what is wrong with the source


def _error_text(check: Check, err: BackendError, track: Track) -> str:
    text = str(err) if track is Track.CANARY else f"stable: {err}"
    if isinstance(err, AmbiguousQuery) and check.query is not None and "query" not in str(err):
        text += f" (query {check.query!r})"  # the contract says the source names it; never rely on it
    return redact(text)


class _ReadFailed(Exception):
    """The source failed reading ``track``: an Error measurement."""

    def __init__(self, err: BackendError, track: Track) -> None:
        self.err, self.track = err, track


def _value(result: float | BaseException | None, track: Track) -> float | None:
    if isinstance(result, BackendError):
        raise _ReadFailed(result, track)
    if isinstance(result, BaseException):
        raise result  # not a source failure: a bug, never an "error measurement"
    return result


async def _read(check: Check, source: MetricsSource) -> tuple[float | None, float | None]:
    """Canary and stable values over the check's interval (stable ``None``: no data, or
    unread for an absolute query check whose stable query failed)."""
    if check.query is None:
        assert check.metric is not None
        try:
            window: MetricsWindow = await source.window(check.interval)
        except BackendError as err:
            raise _ReadFailed(err, Track.CANARY) from None
        return metric_value(check.metric, window.canary), metric_value(check.metric, window.stable)
    canary, stable = await asyncio.gather(
        source.query(check.query, track=Track.CANARY, seconds=check.interval),
        source.query(check.query, track=Track.STABLE, seconds=check.interval),
        return_exceptions=True,
    )
    value = _value(canary, Track.CANARY)
    if isinstance(stable, BackendError) and not check.relative:
        return value, None  # stable is shown beside the canary only; an absolute check does not need it
    return value, _value(stable, Track.STABLE)


async def take_measurement(
    check: Check, source: MetricsSource, clock: Callable[[], float] = time.time
) -> Measurement:
    """Measure ``check`` once over its interval, on the canary with stable alongside."""
    now = clock()
    try:
        value, stable = await _read(check, source)
    except _ReadFailed as failed:
        return Measurement(now, Outcome.ERROR, None, message=_error_text(check, failed.err, failed.track))
    window = f"{check.interval:g}s"
    if value is None:
        return Measurement(now, Outcome.NO_DATA, None, stable, message=f"no canary data in the last {window}")
    if check.relative and stable is None:
        return Measurement(
            now,
            Outcome.NO_DATA,
            value,
            None,
            message=f"stable has no data in the last {window}: a condition relative to stable cannot be judged",
        )
    limit = check.success.limit(stable)
    return Measurement(now, judge(check, value, stable), value, stable, limit=limit)


async def run_analysis(
    step: int,
    checks: list[Check],
    source: MetricsSource,
    on_progress: Callable[[AnalysisView], None],
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    clock: Callable[[], float] = time.time,
) -> AnalysisView:
    """Run the checks side by side until the run has an outcome; report each measurement."""
    runs = [CheckRun(c, shown_query(c, source)) for c in checks]
    decided = asyncio.Event()

    async def loop(run: CheckRun) -> None:
        while run.outcome is Outcome.RUNNING and not decided.is_set():
            await sleep(run.check.interval)
            run.record(await take_measurement(run.check, source, clock))
            view = combine(step, runs)
            on_progress(view)
            if view.outcome is not Outcome.RUNNING and view.outcome is not Outcome.SUCCESSFUL:
                decided.set()  # a failure decides the run at once: stop the other checks

    on_progress(combine(step, runs))  # the checks, their queries and intervals before the first value
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
