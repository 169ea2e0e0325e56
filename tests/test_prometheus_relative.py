"""A condition relative to stable, measured through a real Prometheus: at a busy hour the
canary's p99 is 1.5 times stable's. An absolute limit set with headroom for busy hours
(500 ms) passes it; ``<= stable * 1.2 + 10ms`` catches it, on the built-in metric and on a
custom PromQL query evaluated for both tracks.

The series are served by two exporters (one per track) labelled the way the cockpit's file
SD labels the demo's replicas (service/env/track), so the generic preset selects them;
histogram buckets are chosen so ``histogram_quantile`` gives exact answers: stable 300 ms,
canary 450 ms.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cockpit.adapters import registry
from cockpit.adapters.base import AdapterContext
from cockpit.adapters.prometheus.source import PrometheusMetricsSource
from cockpit.engine.analysis import run_analysis
from cockpit.engine.state import AnalysisView, Outcome
from cockpit.model import Track
from cockpit.plan.models import Check

pytest.register_assert_rewrite("tests.prometheus_fixtures")
from tests.prometheus_fixtures import Exporter, instant, wait_until, write_sd  # noqa: E402

pytest_plugins = ["tests.prometheus_fixtures"]

RUN = uuid.uuid4().hex[:8]
SERVICE = f"shop-{RUN}"
WINDOW = 3.0
BOUNDS_S = (0.1, 0.25, 0.5, 1.0)
# Cumulative share of requests under each bound. The rank 0.99 falls in the 250-500 ms bucket:
# stable 250 + 250 * (0.99 - 0.9875) / 0.0125 = 300 ms; canary 250 + 250 * 0.04 / 0.05 = 450 ms.
SHARES = {Track.STABLE: (0.5, 0.9875, 1.0, 1.0), Track.CANARY: (0.5, 0.95, 1.0, 1.0)}
RATE = 40.0  # requests/s on each track: a busy hour


def exposition(track: Track) -> Callable[[float], str]:
    def text(t: float) -> str:
        total = 1000.0 + RATE * t
        lines = [f'http_requests_total{{code="200"}} {total!r}']
        for bound, share in zip(BOUNDS_S, SHARES[track], strict=True):
            lines.append(f'http_request_duration_seconds_bucket{{le="{bound:g}"}} {total * share!r}')
        lines.append(f'http_request_duration_seconds_bucket{{le="+Inf"}} {total!r}')
        return "\n".join(lines) + "\n"

    return text


@pytest.fixture(scope="module")
def busy_hour(prometheus_url: str, prometheus_sd: Path) -> Iterator[str]:
    exporters = {t: Exporter(exposition(t), timestamps=True) for t in Track}
    sd_file = prometheus_sd / f"relative-{RUN}.json"
    write_sd(
        sd_file,
        [
            {
                "targets": [exporters[t].address],
                "labels": {"service": SERVICE, "env": "dev", "track": t.value},
            }
            for t in Track
        ],
    )
    wait_until(
        lambda: len(instant(prometheus_url, f'http_requests_total{{service="{SERVICE}"}}')) == 2,
        30,
        "both tracks' series in Prometheus",
    )
    time.sleep(WINDOW + 1.5)  # rate() over the window is exact once both series are older than it
    yield prometheus_url
    sd_file.unlink()
    for exporter in exporters.values():
        exporter.close()


def source_for(url: str) -> PrometheusMetricsSource:
    ctx = AdapterContext(service=SERVICE, env="dev", run_dir=Path("/nonexistent"))
    source = registry.create_metrics_source("prometheus", ctx, {"url": url, "preset": "generic"}, None)  # type: ignore[arg-type]
    assert isinstance(source, PrometheusMetricsSource)
    return source


def check(**fields: object) -> Check:
    base = {"name": "p99", "metric": "latency-p99", "interval": WINDOW, "count": 1}
    return Check.model_validate(base | fields)


async def analyse(checks: list[Check], url: str) -> AnalysisView:
    async def no_wait(_: float) -> None:  # the window is already full: measure at once
        await asyncio.sleep(0)

    return await run_analysis(0, checks, source_for(url), lambda _: None, no_wait)


P99_QUERY = (
    'histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{service="{service}",'
    'env="{env}",track="{track}"}[{interval}]))) * 1000'
)


@pytest.mark.prometheus
def test_a_relative_p99_catches_a_busy_hour_regression_an_absolute_limit_misses(busy_hour: str) -> None:
    absolute = asyncio.run(analyse([check(name="p99-fixed", success="<= 500ms")], busy_hour))
    assert absolute.outcome is Outcome.SUCCESSFUL, absolute  # the headroom for busy hours hides it
    (m,) = absolute.checks[0].measurements
    assert m.value == pytest.approx(450.0, rel=0.02)

    relative = asyncio.run(analyse([check(success="<= stable * 1.2 + 10ms")], busy_hour))
    assert relative.outcome is Outcome.FAILED, relative
    (m,) = relative.checks[0].measurements
    assert m.value == pytest.approx(450.0, rel=0.02)
    assert m.stable_value == pytest.approx(300.0, rel=0.02)
    assert m.limit == pytest.approx(300.0 * 1.2 + 10, rel=0.02)  # computed from stable, as measured
    assert "needs <= 37" in relative.message and "stable 30" in relative.message


@pytest.mark.prometheus
def test_a_relative_custom_query_is_evaluated_for_both_tracks(busy_hour: str) -> None:
    relative = asyncio.run(
        analyse([check(metric=None, query=P99_QUERY, success="<= stable * 1.2 + 10", unit="")], busy_hour)
    )
    assert relative.outcome is Outcome.FAILED, relative
    (m,) = relative.checks[0].measurements
    assert (m.value, m.stable_value) == (pytest.approx(450.0, rel=0.02), pytest.approx(300.0, rel=0.02))
    # The query shown on the gate view is the one sent for the canary, placeholders filled.
    assert 'track="canary"' in relative.checks[0].query and SERVICE in relative.checks[0].query
    # A canary as fast as stable passes the same check: the limit follows stable, not the hour.
    same = asyncio.run(
        analyse(
            [
                check(
                    metric=None,
                    query=P99_QUERY.replace('track="{track}"', 'track="stable"'),
                    success="<= stable * 1.2 + 10",
                    unit="",
                )
            ],
            busy_hour,
        )
    )
    assert same.outcome is Outcome.SUCCESSFUL, same
