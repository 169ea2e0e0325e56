"""Conditions relative to stable: judged against a limit computed from stable in the same
window, for built-in metrics and for queries evaluated on both tracks."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

import tests.memory_backend  # noqa: F401 - registers the "memory" adapters
from cockpit.adapters.base import AdapterContext, MetricsSource, MetricsWindow, Track, TrackMetrics
from cockpit.adapters.memory import MemoryBackend, MemoryMetrics, Profile
from cockpit.engine.analysis import run_analysis, take_measurement
from cockpit.engine.commands import Abort, StartRollout
from cockpit.engine.session import Session
from cockpit.engine.state import AnalysisView, Outcome, Phase
from cockpit.model import NO_DATA
from cockpit.plan import parse_plan
from cockpit.plan.models import Check


def check(**kw: object) -> Check:
    base = {"name": "p99", "metric": "latency-p99", "success": "<= stable * 1.2 + 10ms", "interval": 0.001}
    return Check.model_validate(base | kw)


async def no_sleep(_: float) -> None:
    await asyncio.sleep(0)


def traffic(p99: float = 100.0, error_rate: float = 0.001) -> TrackMetrics:
    return TrackMetrics(requests=100.0, request_rate=33.0, error_rate=error_rate, p95_ms=p99 / 2, p99_ms=p99)


class Windows(MetricsSource):
    """Scripted (stable, canary) windows in order; the last repeats."""

    name = "windows"

    def __init__(self, *script: tuple[TrackMetrics, TrackMetrics]) -> None:
        self.script = list(script)
        self.calls = 0

    async def window(self, seconds: float) -> MetricsWindow:
        stable, canary = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        return MetricsWindow(ts=0.0, seconds=seconds, stable=stable, canary=canary)

    def shown_query(self, metric: str, track: Track, seconds: float) -> str:
        return f"{metric}{{track={track.value!r}}}[{seconds:g}s]"


async def analyse(checks: list[Check], source: MetricsSource) -> AnalysisView:
    return await run_analysis(0, checks, source, lambda _: None, no_sleep)


async def memory(tmp_path: Path, profiles: dict[str, Profile], **options: object) -> MemoryMetrics:
    """A memory backend running 1.0.0 as stable and 1.1.0 as the canary at 20 %."""
    ctx = AdapterContext(service="shop", env=f"e{uuid.uuid4().hex[:6]}", run_dir=tmp_path)
    backend = MemoryBackend(ctx, MemoryBackend.Options())
    await backend.start("1.0.0")
    await backend.deploy_canary("1.1.0")
    await backend.set_weight(20)
    return MemoryMetrics(ctx, MemoryMetrics.Options(profiles=profiles, **options), backend)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- built-in metrics


@pytest.mark.asyncio
async def test_relative_check_catches_a_latency_regression_under_load_that_an_absolute_limit_misses(
    tmp_path: Path,
) -> None:
    # A busy hour: stable's p99 is 300 ms, and the canary is 1.5 times slower. The absolute
    # limit was set with headroom (500 ms) so that busy hours do not fail good releases...
    busy = {"1.0.0": Profile(p99_ms=300.0), "1.1.0": Profile(p99_ms=450.0)}
    source = await memory(tmp_path, busy)
    absolute = check(name="p99-fixed", success="<= 500ms")
    relative = check()
    assert (await analyse([absolute], source)).outcome is Outcome.SUCCESSFUL  # ...and misses it
    view = await analyse([relative], source)
    assert view.outcome is Outcome.FAILED
    assert view.message == "p99 450ms (needs <= 370ms = stable 300ms * 1.2 + 10ms)"
    (m,) = view.checks[0].measurements
    assert (m.value, m.stable_value, m.limit) == (450.0, 300.0, pytest.approx(370.0))


@pytest.mark.asyncio
async def test_relative_check_passes_a_good_canary_when_load_raises_both_tracks(tmp_path: Path) -> None:
    # The same rule at a busy hour (stable 400 ms): a canary as fast as stable passes, where
    # an absolute limit tight enough for quiet hours (250 ms) would abort a good release.
    source = await memory(tmp_path, {"1.0.0": Profile(p99_ms=400.0), "1.1.0": Profile(p99_ms=405.0)})
    assert (await analyse([check()], source)).outcome is Outcome.SUCCESSFUL
    assert (await analyse([check(success="<= 250ms")], source)).outcome is Outcome.FAILED


@pytest.mark.asyncio
async def test_relative_error_rate_allows_stable_plus_one_percentage_point() -> None:
    errors = check(name="errors", metric="error-rate", success="<= stable + 1%")
    stable = traffic(error_rate=0.005)  # 0.5 %: the canary may reach 1.5 %
    good = await take_measurement(errors, Windows((stable, traffic(error_rate=0.012))))
    assert good.outcome is Outcome.SUCCESSFUL and good.limit == pytest.approx(1.5)
    bad = await take_measurement(errors, Windows((stable, traffic(error_rate=0.02))))
    assert bad.outcome is Outcome.FAILED and bad.value == pytest.approx(2.0)
    assert bad.stable_value == pytest.approx(0.5) and bad.limit == pytest.approx(1.5)


@pytest.mark.asyncio
async def test_relative_inconclusive_band() -> None:
    band = check(success="<= stable * 1.2", failure="> stable * 2")
    stable = traffic(p99=100.0)
    outcomes = [
        (await take_measurement(band, Windows((stable, traffic(p99=p99))))).outcome for p99 in (110, 150, 250)
    ]
    assert outcomes == [Outcome.SUCCESSFUL, Outcome.INCONCLUSIVE, Outcome.FAILED]
    view = await analyse([band], Windows((stable, traffic(p99=150.0))))
    assert view.outcome is Outcome.INCONCLUSIVE  # the rollout pauses for a human


@pytest.mark.asyncio
async def test_the_limit_is_stored_per_measurement_as_stable_moves() -> None:
    source = Windows(*[(traffic(p99=s), traffic(p99=s)) for s in (100.0, 200.0, 300.0)])
    view = await analyse([check(count=3)], source)
    assert view.outcome is Outcome.SUCCESSFUL
    limits = [m.limit for m in view.checks[0].measurements]
    assert limits == [pytest.approx(130.0), pytest.approx(250.0), pytest.approx(370.0)]
    fixed = await analyse([check(success="<= 500", count=2)], Windows((traffic(), traffic())))
    assert [m.limit for m in fixed.checks[0].measurements] == [500.0, 500.0]


@pytest.mark.asyncio
async def test_stable_without_data_is_no_data_never_a_pass() -> None:
    m = await take_measurement(check(), Windows((NO_DATA, traffic(p99=10.0))))
    assert m.outcome is Outcome.NO_DATA and m.value == 10.0 and m.limit is None
    assert m.message == "stable has no data in the last 0.001s: a condition relative to stable cannot be judged"
    view = await analyse([check(no_data_limit=2)], Windows((NO_DATA, traffic(p99=10.0))))
    assert view.outcome is Outcome.INCONCLUSIVE
    assert view.checks[0].no_data == 3 and view.checks[0].taken == 0
    # An absolute check does not need stable: judged as usual.
    absolute = await take_measurement(check(success="<= 250"), Windows((NO_DATA, traffic(p99=10.0))))
    assert absolute.outcome is Outcome.SUCCESSFUL and absolute.stable_value is None


@pytest.mark.asyncio
async def test_check_view_carries_the_query_and_interval_of_a_builtin_metric() -> None:
    views: list[AnalysisView] = []
    await run_analysis(0, [check(interval=0.5, count=1)], Windows((traffic(), traffic())), views.append, no_sleep)
    first = views[0].checks[0]  # shown before the first value arrives
    assert first.query == "latency-p99{track='canary'}[0.5s]" and first.interval == 0.5
    assert first.measurements == ()


# --------------------------------------------------------------------------- queries, for both tracks


QUERY = 'p99{service="{service}", track="{track}", version="{version}"}[{interval}]'


def filled(source: MemoryMetrics, track: Track, version: str) -> str:
    return f'p99{{service="shop", track="{track.value}", version="{version}"}}[0.001s]'


@pytest.mark.asyncio
async def test_relative_query_is_evaluated_for_canary_and_stable(tmp_path: Path) -> None:
    source = await memory(tmp_path, {})
    source.set_versions({Track.STABLE: "1.0.0", Track.CANARY: "1.1.0"})
    source.series[filled(source, Track.STABLE, "1.0.0")] = [0.2]
    source.series[filled(source, Track.CANARY, "1.1.0")] = [0.3]
    q = check(metric=None, query=QUERY, unit="s", success="<= stable * 1.2 + 10ms")
    m = await take_measurement(q, source)
    assert sorted(source.queries) == sorted([filled(source, t, v) for t, v in ((Track.CANARY, "1.1.0"), (Track.STABLE, "1.0.0"))])
    assert m.outcome is Outcome.FAILED
    assert (m.value, m.stable_value, m.limit) == (0.3, 0.2, pytest.approx(0.25))
    view = await analyse([q], source)
    assert view.checks[0].query == QUERY and view.checks[0].unit == "s"
    assert view.message == "p99 0.3s (needs <= 0.25s = stable 0.2s * 1.2 + 0.01s)"


@pytest.mark.asyncio
async def test_relative_query_without_stable_data_is_no_data(tmp_path: Path) -> None:
    source = await memory(tmp_path, {})
    source.series[filled(source, Track.CANARY, "1.1.0")] = [0.3]
    source.series[filled(source, Track.STABLE, "1.0.0")] = []  # no series for stable
    m = await take_measurement(check(metric=None, query=QUERY, unit="s"), source)
    assert m.outcome is Outcome.NO_DATA and "stable has no data" in m.message


@pytest.mark.asyncio
async def test_several_series_are_an_error_naming_the_query(tmp_path: Path) -> None:
    source = await memory(tmp_path, {})
    canary = filled(source, Track.CANARY, "1.1.0")
    source.series[canary] = [0.3, 0.31]  # two replicas, no sum(): never a silent pick
    m = await take_measurement(check(metric=None, query=QUERY, unit="s"), source)
    assert m.outcome is Outcome.ERROR and m.value is None
    assert m.message == f"query {canary!r} returned 2 series where one number is expected"
    view = await analyse([check(metric=None, query=QUERY, unit="s", error_limit=1)], source)
    assert view.outcome is Outcome.FAILED and view.checks[0].outcome is Outcome.ERROR
    assert view.checks[0].errors == 2 and canary in view.message


@pytest.mark.asyncio
async def test_a_failing_stable_query_is_an_error_only_where_stable_is_needed(tmp_path: Path) -> None:
    source = await memory(tmp_path, {})
    source.series[filled(source, Track.CANARY, "1.1.0")] = [0.1]
    source.series[filled(source, Track.STABLE, "1.0.0")] = [0.1, 0.2]
    relative = await take_measurement(check(metric=None, query=QUERY, unit="s"), source)
    assert relative.outcome is Outcome.ERROR and relative.message.startswith("stable: query ")
    absolute = await take_measurement(check(metric=None, query=QUERY, unit="s", success="<= 0.25"), source)
    assert absolute.outcome is Outcome.SUCCESSFUL and absolute.stable_value is None


# --------------------------------------------------------------------------- the engine tells the versions


PLAN = """
[service]
name = "s{uid}"

[[environments]]
name = "dev"
initial_version = "1.0.0"
  [environments.backend]
  adapter = "memory"
  [environments.metrics]
  source = "memory"
  interval = "50ms"

[strategy.canary]
steps = [{{ set_weight = 20 }}, {{ analysis = {{ checks = ["p99"] }} }}, {{ pause = {{}} }}]

[[analysis.checks]]
name = "p99"
query = "p99_ms"
unit = "ms"
success = "<= stable * 1.2 + 10ms"
interval = "20ms"
count = 2
"""


async def until(predicate, what: str, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, f"not reached in time: {what}"
        await asyncio.sleep(0.01)


@pytest.mark.asyncio
async def test_the_engine_tells_the_source_which_version_each_track_runs(state_dir: Path) -> None:
    session = Session(parse_plan(PLAN.format(uid=uuid.uuid4().hex[:8])), state_dir=state_dir, user="ann")
    try:
        await session.start()
        metrics = session.controller("dev").metrics
        assert metrics is not None and dict(metrics.track_versions) == {Track.STABLE: "1.0.0"}
        assert (await session.submit("dev", StartRollout("1.1.0"))).ok
        assert dict(metrics.track_versions) == {Track.STABLE: "1.0.0", Track.CANARY: "1.1.0"}
        # 1.1.0 is faster than 1.0.0 in the memory profiles: the relative gate passes.
        await until(lambda: session.view("dev").rollout.phase is Phase.PAUSED, "analysis passed")
        analysis = session.view("dev").rollout.analysis
        assert analysis is not None and analysis.outcome is Outcome.SUCCESSFUL
        assert [m.stable_value for m in analysis.checks[0].measurements] == [90.0, 90.0]
        assert (await session.submit("dev", Abort())).ok
        assert dict(metrics.track_versions) == {Track.STABLE: "1.0.0"}
    finally:
        await session.close()
