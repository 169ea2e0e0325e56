"""The direct-scrape metrics source against real demo service processes."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from cockpit.adapters.base import (
    NO_DATA,
    AdapterContext,
    BackendStatus,
    BackendUnavailable,
    Capability,
    DeployBackend,
    Track,
)
from cockpit.adapters.scrape import ScrapeMetricsSource, histogram_quantile, parse_metrics
from cockpit.adapters.supervise.logs import LogHub
from cockpit.demo.load import TrafficSettings, spawn_traffic
from tests.local_fixtures import free_port, hit, make_backend, service_fixture, start_demo, stop, wait_http  # noqa: F401


class StaticTargets(DeployBackend):
    """Only the scrape-target role, pointing at processes the test runs itself (so a
    test can restart a replica on the same port, which no backend action does)."""

    name = "static"
    capabilities = frozenset({Capability.SCRAPE_TARGETS})

    def __init__(self, targets: dict[Track, list[str]]) -> None:
        self.targets = targets

    def scrape_targets(self) -> Mapping[Track, Sequence[str]]:
        return self.targets

    async def start(self, stable_version: str) -> None: ...
    async def attach(self) -> None: ...
    async def close(self) -> None: ...
    async def status(self) -> BackendStatus:
        return BackendStatus(stable=None, canary=None, weight=0)

    async def versions(self) -> Sequence[str]:
        return []

    async def deploy_canary(self, version: str) -> None: ...
    async def set_weight(self, weight: int) -> None: ...
    async def promote_canary(self) -> None: ...
    async def remove_canary(self) -> None: ...
    async def deploy_stable(self, version: str) -> None: ...


def source_for(tmp_path: Path, backend: DeployBackend, env: str = "test") -> ScrapeMetricsSource:
    ctx = AdapterContext(service="demo", env=env, run_dir=tmp_path)
    return ScrapeMetricsSource(ctx, ScrapeMetricsSource.Options(), backend)


def test_histogram_quantile_interpolates_like_prometheus() -> None:
    buckets = {0.1: 50.0, 0.2: 90.0, 0.4: 100.0, math.inf: 100.0}
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.1)
    assert histogram_quantile(0.7, buckets) == pytest.approx(0.15)  # halfway into (0.1, 0.2]
    assert histogram_quantile(0.95, buckets) == pytest.approx(0.3)
    assert histogram_quantile(0.25, buckets) == pytest.approx(0.05)  # first bucket starts at 0
    assert histogram_quantile(0.99, {0.1: 1.0, math.inf: 10.0}) == pytest.approx(0.1)  # in +Inf
    assert histogram_quantile(0.99, {0.1: 0.0, math.inf: 0.0}) is None
    assert histogram_quantile(0.99, {0.1: 5.0}) is None  # no +Inf bucket: not a histogram


def test_parse_keeps_only_the_two_metrics() -> None:
    text = "\n".join(
        [
            "# TYPE http_requests_total counter",
            'http_requests_total{path="/",code="200"} 90',
            'http_requests_total{path="/",code="503"} 10',
            'http_requests_total_other{code="500"} 1000',
            "process_cpu_seconds_total 12",
            'http_request_duration_seconds_bucket{path="/",le="0.1"} 80',
            'http_request_duration_seconds_bucket{path="/",le="+Inf"} 100',
            'http_request_duration_seconds_count{path="/"} 100',
        ]
    )
    counts = parse_metrics(text, "http_requests_total", "http_request_duration_seconds")
    assert counts.requests == 100 and counts.errors == 10
    assert counts.buckets == {0.1: 80, math.inf: 100}


@pytest.mark.asyncio
async def test_canary_regression_is_visible(tmp_path: Path, service: str) -> None:
    backend = make_backend(tmp_path, service, env="production")
    metrics = source_for(tmp_path, backend, "production")
    traffic = None
    try:
        await backend.start("1.0.0")
        url = (await backend.status()).url
        assert url is not None
        load = TrafficSettings(120, ("/api/checkout",))  # the path only production exercises
        logs = LogHub("production", notes_source="demo")
        traffic = await spawn_traffic(url, load, f"{service}/production/traffic", logs)
        await backend.deploy_canary("1.2.0")
        await backend.set_weight(50)
        for _ in range(9):
            await metrics.collect()
            await asyncio.sleep(0.5)
        window = await metrics.window(60)
    finally:
        if traffic is not None:
            await traffic.stop()
        await metrics.close()
        await backend.close()
    stable, canary = window.stable, window.canary
    assert stable.request_rate and stable.request_rate > 20, stable
    assert canary.request_rate and canary.request_rate > 20, canary
    assert stable.error_rate is not None and stable.error_rate < 0.02, stable
    assert stable.p99_ms is not None and stable.p99_ms < 50, stable
    assert canary.error_rate is not None and canary.error_rate > 0.1, canary
    assert canary.p99_ms is not None and canary.p99_ms > 100, canary
    assert canary.p95_ms is not None and 100 < canary.p95_ms <= 500, canary
    assert 3.0 <= window.seconds <= 15.0  # the history is shorter than the 60 s asked for


@pytest.mark.asyncio
async def test_no_traffic_is_no_data(tmp_path: Path, service: str) -> None:
    backend = make_backend(tmp_path, service)
    metrics = source_for(tmp_path, backend)
    try:
        await backend.start("1.0.0")
        assert (await metrics.window(30)).stable is NO_DATA  # nothing collected yet
        for _ in range(3):
            await metrics.collect()
            await asyncio.sleep(0.1)
        window = await metrics.window(30)
        assert window.stable is NO_DATA and window.canary is NO_DATA
    finally:
        await metrics.close()
        await backend.close()


@pytest.mark.asyncio
async def test_restart_and_vanishing_targets_never_count_backwards(tmp_path: Path, service: str) -> None:
    ports = free_port(), free_port()
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    demos = [start_demo(service, "1.0.0", p) for p in ports]
    backend = StaticTargets({Track.STABLE: [u + "/metrics" for u in urls], Track.CANARY: []})
    metrics = source_for(tmp_path, backend)
    try:
        await asyncio.gather(*(wait_http(u + "/healthz") for u in urls))
        await metrics.collect()  # baseline
        await hit(urls[0] + "/", 30)
        await hit(urls[1] + "/", 10)
        await metrics.collect()
        assert (await metrics.window(60)).stable.requests == 40

        # Replica 0 restarts on the same port: its counters start again from 0.
        stop(demos[0])
        demos[0] = start_demo(service, "1.0.0", ports[0])
        await wait_http(urls[0] + "/healthz")
        await hit(urls[0] + "/", 5)
        await metrics.collect()
        assert (await metrics.window(60)).stable.requests == 45

        # Replica 1 disappears: its past requests stay counted, nothing goes negative.
        stop(demos[1])
        await hit(urls[0] + "/", 5)
        await metrics.collect()  # one target down, one up: no error
        assert (await metrics.window(60)).stable.requests == 50
        backend.targets[Track.STABLE] = [urls[0] + "/metrics"]
        await metrics.collect()
        assert (await metrics.window(60)).stable.requests == 50

        stop(demos[0])
        with pytest.raises(BackendUnavailable, match="none of the 1 metrics target"):
            await metrics.collect()
    finally:
        await metrics.close()
        stop(*demos)
