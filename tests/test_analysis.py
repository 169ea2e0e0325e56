"""The analysis judge: Successful / Failed / Inconclusive, with no-data and errors visible."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cockpit.adapters.base import (
    NO_DATA,
    AdapterContext,
    AmbiguousQuery,
    BackendUnavailable,
    MetricsSource,
    MetricsWindow,
    Track,
    TrackMetrics,
)
from cockpit.adapters.memory import MemoryBackend, MemoryMetrics
from cockpit.engine.analysis import CheckRun, judge, metric_value, run_analysis, take_measurement
from cockpit.engine.polling import Poller
from cockpit.engine.state import AnalysisView, Measurement, Outcome
from cockpit.plan.models import Check


def track(error_rate: float = 0.0, p99: float = 10.0, requests: float = 100.0) -> TrackMetrics:
    return TrackMetrics(
        requests=requests, request_rate=requests / 3, error_rate=error_rate, p95_ms=p99 / 2, p99_ms=p99
    )


class ScriptedSource(MetricsSource):
    """Returns the scripted canary windows in order (the last one repeats)."""

    name = "scripted"

    def __init__(self, script: list[TrackMetrics | Exception]) -> None:
        self.script = script
        self.calls = 0

    async def window(self, seconds: float) -> MetricsWindow:
        item = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        if isinstance(item, Exception):
            raise item
        return MetricsWindow(ts=0.0, seconds=seconds, stable=track(), canary=item)


def check(**kw: object) -> Check:
    base = {"name": "ok", "metric": "success-rate", "success": ">= 95", "interval": 0.001, "count": 3}
    return Check.model_validate(base | kw)


async def no_sleep(_: float) -> None:
    await asyncio.sleep(0)


def test_metric_values_in_display_units() -> None:
    t = track(error_rate=0.05, p99=321.0)
    assert metric_value("success-rate", t) == pytest.approx(95.0)
    assert metric_value("error-rate", t) == pytest.approx(5.0)
    assert metric_value("latency-p99", t) == 321.0
    assert metric_value("success-rate", NO_DATA) is None


def test_judge_with_and_without_failure_condition() -> None:
    only_success = check()
    assert judge(only_success, 96) is Outcome.SUCCESSFUL
    assert judge(only_success, 94) is Outcome.FAILED
    both = check(failure="< 90")
    assert judge(both, 96) is Outcome.SUCCESSFUL
    assert judge(both, 85) is Outcome.FAILED
    assert judge(both, 92) is Outcome.INCONCLUSIVE  # neither holds: a human decides


def test_failure_limit_tolerates_that_many_failures() -> None:
    run = CheckRun(check(failure_limit=1, count=3))
    run.record(Measurement(0, Outcome.FAILED, 80.0))
    assert run.outcome is Outcome.RUNNING
    run.record(Measurement(0, Outcome.FAILED, 80.0))
    assert run.outcome is Outcome.FAILED
    assert run.message == "ok 80.0% (needs >= 95)"


def test_no_data_is_retried_then_inconclusive_never_a_pass() -> None:
    run = CheckRun(check(no_data_limit=2))
    for _ in range(2):
        run.record(Measurement(0, Outcome.NO_DATA, None))
    assert run.outcome is Outcome.RUNNING and run.taken == 0
    run.record(Measurement(0, Outcome.NO_DATA, None))
    assert run.outcome is Outcome.INCONCLUSIVE
    assert "no data" in run.message


def test_errors_are_retried_up_to_the_limit_then_end_in_error() -> None:
    run = CheckRun(check(error_limit=1))
    run.record(Measurement(0, Outcome.ERROR, None, message="down"))
    run.record(Measurement(0, Outcome.SUCCESSFUL, 99.0))  # resets the consecutive count
    run.record(Measurement(0, Outcome.ERROR, None, message="down"))
    assert run.outcome is Outcome.RUNNING
    run.record(Measurement(0, Outcome.ERROR, None, message="down"))
    assert run.outcome is Outcome.ERROR and run.errors == 3
    assert run.message == (
        "ok: metrics source failed 2 times in a row (error limit 1), the canary was not judged: down"
    )


def test_last_ten_measurements_are_kept() -> None:
    run = CheckRun(check(count=50))
    for n in range(25):
        run.record(Measurement(float(n), Outcome.SUCCESSFUL, 99.0))
    assert len(run.view().measurements) == 10 and run.view().measurements[-1].ts == 24.0


@pytest.mark.asyncio
async def test_measurement_states() -> None:
    c = check()
    assert (await take_measurement(c, ScriptedSource([track(0.01)]))).outcome is Outcome.SUCCESSFUL
    failed = await take_measurement(c, ScriptedSource([track(0.2)]))
    assert failed.outcome is Outcome.FAILED and failed.value == pytest.approx(80.0)
    assert failed.stable_value == pytest.approx(100.0)  # stable shown alongside
    assert (await take_measurement(c, ScriptedSource([NO_DATA]))).outcome is Outcome.NO_DATA
    err = await take_measurement(c, ScriptedSource([BackendUnavailable("scrape refused")]))
    assert err.outcome is Outcome.ERROR and err.message == "scrape refused"


@pytest.mark.asyncio
async def test_run_succeeds_after_count_measurements() -> None:
    progress: list[Outcome] = []
    view = await run_analysis(
        2,
        [check(), check(name="lat", metric="latency-p99", success="<= 250")],
        ScriptedSource([track()]),
        lambda v: progress.append(v.outcome),
        no_sleep,
    )
    assert view.outcome is Outcome.SUCCESSFUL
    assert [c.taken for c in view.checks] == [3, 3]
    assert len(progress) == 7  # the checks before any value (queries, intervals), then each measurement


@pytest.mark.asyncio
async def test_one_failure_decides_the_run_at_once() -> None:
    source = ScriptedSource([track(0.5)])
    view = await run_analysis(0, [check(count=100)], source, lambda v: None, no_sleep)
    assert view.outcome is Outcome.FAILED
    assert view.message == "ok 50.0% (needs >= 95)"
    assert source.calls == 1


@pytest.mark.asyncio
async def test_inconclusive_run() -> None:
    view = await run_analysis(
        0, [check(failure="< 50")], ScriptedSource([track(0.2)]), lambda v: None, no_sleep
    )
    assert view.outcome is Outcome.INCONCLUSIVE


# --------------------------------------------------------------------------- Argo's limits, end to end


class QuerySource(ScriptedSource):
    """Answers queries from a script as well (canary and stable alike)."""

    async def query(self, expr: str, *, track: Track = Track.CANARY, seconds: float | None = None) -> float | None:
        item = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        if isinstance(item, Exception):
            raise item
        return item.p99_ms


@pytest.mark.asyncio
async def test_consecutive_errors_are_retried_then_measurements_go_on() -> None:
    down = BackendUnavailable("prometheus: connection refused")
    source = ScriptedSource([down, down, down, down, track()])  # 4 errors: the limit, not past it
    view = await run_analysis(0, [check(error_limit=4)], source, lambda v: None, no_sleep)
    assert view.outcome is Outcome.SUCCESSFUL
    c = view.checks[0]
    assert (c.errors, c.taken, source.calls) == (4, 3, 7)
    assert [m.outcome for m in c.measurements] == [Outcome.ERROR] * 4 + [Outcome.SUCCESSFUL] * 3


@pytest.mark.asyncio
async def test_errors_past_the_limit_abort_and_say_the_source_failed_not_the_canary() -> None:
    source = ScriptedSource([BackendUnavailable("prometheus: connection refused")])
    view = await run_analysis(0, [check(count=10)], source, lambda v: None, no_sleep)
    assert view.outcome is Outcome.FAILED  # the machine aborts: traffic back on stable
    assert view.checks[0].outcome is Outcome.ERROR and source.calls == 5  # error_limit 4 by default
    assert view.message == (
        "ok: metrics source failed 5 times in a row (error limit 4), the canary was not judged:"
        " prometheus: connection refused"
    )


@pytest.mark.asyncio
async def test_ambiguous_query_is_an_error_naming_the_query_even_when_the_source_does_not() -> None:
    c = check(metric=None, query="sum by (pod) (rate(errors[1m]))", success="<= 1")
    m = await take_measurement(c, QuerySource([AmbiguousQuery("3 series where one was expected")]))
    assert m.outcome is Outcome.ERROR
    assert m.message == "3 series where one was expected (query 'sum by (pod) (rate(errors[1m]))')"


@pytest.mark.asyncio
async def test_a_canary_without_traffic_ends_inconclusive_never_successful() -> None:
    source = ScriptedSource([NO_DATA])
    view = await run_analysis(0, [check(count=1, no_data_limit=3)], source, lambda v: None, no_sleep)
    assert view.outcome is Outcome.INCONCLUSIVE and source.calls == 4
    assert view.checks[0].taken == 0 and view.checks[0].no_data == 4
    assert view.message == "ok: no data 4 times (no-data limit 3): no canary data in the last 0.001s"
    failed = await run_analysis(
        0, [check(count=1, no_data_limit=0, no_data="failed")], ScriptedSource([NO_DATA]), lambda v: None, no_sleep
    )
    assert failed.outcome is Outcome.FAILED  # the plan's policy: no data is a failure here


@pytest.mark.asyncio
async def test_a_failing_release_fails_after_exactly_failure_limit_plus_one_measurements(tmp_path: Path) -> None:
    ctx = AdapterContext(service="shop", env="dev", run_dir=tmp_path)
    backend = MemoryBackend(ctx, MemoryBackend.Options())
    await backend.start("1.0.0")
    await backend.deploy_canary("1.2.0")  # 30 % errors in the memory profiles
    await backend.set_weight(20)
    source = MemoryMetrics(ctx, MemoryMetrics.Options(), backend)
    progress: list[AnalysisView] = []
    view = await run_analysis(0, [check(count=10, failure_limit=2)], source, progress.append, no_sleep)
    assert view.outcome is Outcome.FAILED
    c = view.checks[0]
    assert (c.failed, c.taken, len(c.measurements)) == (3, 3, 3)
    assert [p.outcome for p in progress] == [Outcome.RUNNING] * 3 + [Outcome.FAILED]
    assert all(m.limit == 95.0 and m.stable_value == pytest.approx(99.8) for m in c.measurements)


# --------------------------------------------------------------------------- the screen's metrics poll


class VirtualClock:
    """Time moves only when the test says; ``sleep`` waits for it. Records every sleep."""

    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []
        self._waiting: list[tuple[float, int, asyncio.Future[None]]] = []

    def now(self) -> float:
        return 1_000.0 + self.t

    def monotonic(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((self.t + seconds, len(self.sleeps), future))
        await future

    async def advance(self, seconds: float) -> None:
        """Move time on by ``seconds``, waking each sleeper at its own deadline, in order."""
        end = self.t + seconds
        await settle()
        while due := sorted(w for w in self._waiting if w[0] <= end and not w[2].done()):
            deadline, _, future = due[0]
            self.t = max(self.t, deadline)
            future.set_result(None)
            await settle()
        self.t = end
        await settle()


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


class FlakySource(MetricsSource):
    """Down, slow (``hang``) or fine on demand; counts polls in flight."""

    name = "flaky"

    def __init__(self) -> None:
        self.down = False
        self.hang: asyncio.Event | None = None
        self.calls = 0
        self.in_flight = 0
        self.most_in_flight = 0

    async def window(self, seconds: float) -> MetricsWindow:
        self.calls += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.hang is not None:
                await self.hang.wait()
            if self.down:
                raise BackendUnavailable("prometheus: connection refused")
            return MetricsWindow(ts=0.0, seconds=seconds, stable=track(), canary=track())
        finally:
            self.in_flight -= 1


def poller(clock: VirtualClock) -> tuple[Poller, list[int]]:
    changes: list[int] = []
    return Poller(clock, lambda: changes.append(1), lambda: 1.0), changes


@pytest.mark.asyncio
async def test_a_metrics_source_that_is_down_backs_off_shows_when_it_retries_and_recovers() -> None:
    clock, source = VirtualClock(), FlakySource()
    poll, _ = poller(clock)
    source.down = True
    task = asyncio.create_task(poll.metrics_loop(source, interval=1.0))
    try:
        retries = []
        for _ in range(7):
            await settle()
            state = poll.state
            assert state.metrics_error == "prometheus: connection refused"
            assert state.metrics_retry_at is not None
            retries.append(state.metrics_retry_at - clock.now())
            await clock.advance(retries[-1])
        assert retries == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
        assert source.calls == 8 and not poll.state.metrics
        source.down = False
        await settle()  # the 8th poll ran at the last advance; the next one is good
        await clock.advance(30.0)
        assert poll.state.metrics_error is None and poll.state.metrics_retry_at is None
        assert poll.state.metrics_failures == 0 and len(poll.state.metrics) == 1
        await clock.advance(1.0)
        assert len(poll.state.metrics) == 2  # back to the interval
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.mark.asyncio
async def test_a_slow_metrics_source_is_shown_at_once_and_polls_never_overlap() -> None:
    clock, source = VirtualClock(), FlakySource()
    poll, changes = poller(clock)
    source.hang = asyncio.Event()
    task = asyncio.create_task(poll.metrics_loop(source, interval=1.0))
    try:
        await clock.advance(4.9)
        assert poll.state.metrics_error is None and not changes
        await clock.advance(0.2)  # 5 s without an answer: the screen says so now
        assert poll.state.metrics_error == "metrics source slow: no answer after 5s (still waiting)"
        assert poll.state.metrics_retry_at is None and len(changes) == 1
        await clock.advance(120.0)
        assert source.calls == 1  # still the first poll: no second one beside it
        source.hang.set()
        source.hang = None
        await settle()
        assert poll.state.metrics_error == "metrics source slow: the last poll took 125.1s"
        assert poll.state.metrics_retry_at == pytest.approx(clock.now() + 1.0)
        assert len(poll.state.metrics) == 1  # its answer is kept: late, not wrong
        await clock.advance(1.0)
        assert poll.state.metrics_error is None and source.calls == 2
        assert source.most_in_flight == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
