"""Every preset's templates evaluated by a real Prometheus against series pushed in that
preset's metric names: per track, the number each built-in metric must give.

One exporter serves all presets' series at once (counters growing at a known rate, so
``rate()`` and ``histogram_quantile`` have exact answers); the generic preset's series are
told apart by target labels (service/env/track, as the cockpit's file SD sets them), so it
gets one exporter per track. Everything is published once for the module.
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
from cockpit.adapters.prometheus.presets import PRESETS, TEMPLATE_KEYS
from cockpit.adapters.prometheus.source import PrometheusMetricsSource
from cockpit.model import Track

pytest.register_assert_rewrite("tests.prometheus_fixtures")  # also this module's plugin (below)
from tests.prometheus_fixtures import Exporter, instant, wait_until, write_sd  # noqa: E402

# The real Prometheus' fixtures (prometheus_url, prometheus_sd, exporters).
pytest_plugins = ["tests.prometheus_fixtures"]

WINDOW = 3.0  # seconds; 1 s scrapes give 3 samples
RUN = uuid.uuid4().hex[:8]
SERVICE = f"shop-{RUN}"
NAMESPACE = f"ns-{RUN}"
BOUNDS_MS = (50.0, 100.0, 250.0)
# Per track: requests/s, 5xx share, cumulative share of requests under each bound.
TRAFFIC = {
    Track.STABLE: (20.0, 0.0, (0.9, 1.0, 1.0)),
    Track.CANARY: (10.0, 0.1, (0.5, 0.9, 1.0)),
}
# histogram_quantile's linear interpolation inside the bucket holding the rank.
EXPECTED = {
    Track.STABLE: {
        "request-rate": 20.0,
        "error-rate": 0.0,
        "success-rate": 1.0,
        "latency-p95": 75.0,
        "latency-p99": 95.0,
    },
    Track.CANARY: {
        "request-rate": 10.0,
        "error-rate": 0.1,
        "success-rate": 0.9,
        "latency-p95": 175.0,
        "latency-p99": 235.0,
    },
}
WORKLOADS = {  # what each preset's {workload} is by default for SERVICE, per track
    "generic": {Track.STABLE: SERVICE, Track.CANARY: SERVICE},
    "nginx": {Track.STABLE: SERVICE, Track.CANARY: f"{SERVICE}-canary"},
    "istio": {Track.STABLE: f"{SERVICE}-primary", Track.CANARY: SERVICE},
    "linkerd": {Track.STABLE: f"{SERVICE}-primary", Track.CANARY: SERVICE},
    "envoy": {Track.STABLE: f"{SERVICE}-primary", Track.CANARY: f"{SERVICE}-canary"},
    "gateway": {
        Track.STABLE: f"{NAMESPACE}_{SERVICE}-primary_8080",
        Track.CANARY: f"{NAMESPACE}_{SERVICE}-canary_8080",
    },
}


def series(name: str, labels: dict[str, str], value: float) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return f"{name}{{{inner}}} {value!r}\n"


def track_lines(
    t: float,
    track: Track,
    requests: str,
    labels: dict[str, str],
    ok: dict[str, str],
    bad: dict[str, str],
    buckets: str,
    seconds_unit: bool,
) -> str:
    """One track's counters at ``t`` seconds: linear in time from a non-zero base."""
    rate, errors, shares = TRAFFIC[track]
    total = 1000.0 + rate * t
    text = series(requests, {**labels, **ok}, total * (1 - errors))
    if errors:  # a track that never failed has no 5xx series at all: it must read 0, not no data
        text += series(requests, {**labels, **bad}, total * errors)
    for bound, share in zip(BOUNDS_MS, shares, strict=True):
        le = f"{bound / 1000:g}" if seconds_unit else f"{bound:g}"
        text += series(buckets, {**labels, "le": le}, total * share)
    return text + series(buckets, {**labels, "le": "+Inf"}, total)


def mesh_exposition(t: float) -> str:
    """The nginx, istio, linkerd, envoy and gateway series of both tracks."""
    text = ""
    for track in Track:
        w = {preset: WORKLOADS[preset][track] for preset in WORKLOADS}
        text += track_lines(
            t,
            track,
            "nginx_ingress_controller_requests",
            {"namespace": NAMESPACE, "ingress": w["nginx"]},
            {"status": "200"},
            {"status": "503"},
            "nginx_ingress_controller_request_duration_seconds_bucket",
            True,
        )
        istio = {
            "reporter": "destination",
            "destination_workload_namespace": NAMESPACE,
            "destination_workload": w["istio"],
        }
        text += track_lines(
            t,
            track,
            "istio_requests_total",
            istio,
            {"response_code": "200"},
            {"response_code": "500"},
            "istio_request_duration_milliseconds_bucket",
            False,
        )
        # The source-side reporter of the same calls must not be counted twice.
        text += track_lines(
            t,
            track,
            "istio_requests_total",
            {**istio, "reporter": "source"},
            {"response_code": "200"},
            {"response_code": "500"},
            "istio_request_duration_milliseconds_bucket",
            False,
        )
        linkerd = {"namespace": NAMESPACE, "deployment": w["linkerd"], "direction": "inbound"}
        text += track_lines(
            t,
            track,
            "response_total",
            linkerd,
            {"classification": "success"},
            {"classification": "failure"},
            "response_latency_ms_bucket",
            False,
        )
        for preset in ("envoy", "gateway"):
            text += track_lines(
                t,
                track,
                "envoy_cluster_upstream_rq",
                {"envoy_cluster_name": w[preset]},
                {"envoy_response_code": "200"},
                {"envoy_response_code": "503"},
                "envoy_cluster_upstream_rq_time_bucket",
                False,
            )
    return text


def generic_exposition(track: Track) -> Callable[[float], str]:
    return lambda t: track_lines(
        t,
        track,
        "http_requests_total",
        {},
        {"code": "200"},
        {"code": "500"},
        "http_request_duration_seconds_bucket",
        True,
    )


@pytest.fixture(scope="module")
def published(prometheus_url: str, prometheus_sd: Path) -> Iterator[str]:
    exporters = {
        "mesh": Exporter(mesh_exposition, timestamps=True),
        Track.STABLE: Exporter(generic_exposition(Track.STABLE), timestamps=True),
        Track.CANARY: Exporter(generic_exposition(Track.CANARY), timestamps=True),
    }
    sd_file = prometheus_sd / f"presets-{RUN}.json"
    write_sd(
        sd_file,
        [
            {"targets": [exporters["mesh"].address], "labels": {}},
            *(
                {
                    "targets": [exporters[t].address],
                    "labels": {"service": SERVICE, "env": "dev", "track": t.value},
                }
                for t in Track
            ),
        ],
    )
    # rate() over WINDOW is exact once every series is older than the window.
    wait_until(
        lambda: instant(prometheus_url, f'count(http_requests_total{{service="{SERVICE}"}})'),
        20,
        "the scrapes",
    )
    time.sleep(WINDOW + 1.5)
    yield prometheus_url
    sd_file.unlink()
    for exporter in exporters.values():
        exporter.close()


def source_for(url: str, preset: str) -> PrometheusMetricsSource:
    ctx = AdapterContext(service=SERVICE, env="dev", run_dir=Path("/nonexistent"))
    source = registry.create_metrics_source(
        "prometheus", ctx, {"url": url, "preset": preset, "namespace": NAMESPACE}, None
    )  # type: ignore[arg-type]
    assert isinstance(source, PrometheusMetricsSource)
    return source


@pytest.mark.prometheus
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_template_of_the_preset_gives_the_expected_number_per_track(
    published: str, preset: str
) -> None:
    source = source_for(published, preset)

    async def measure() -> dict[tuple[Track, str], float | None]:
        return {
            (track, metric): await source.query(source.templates[metric], track=track, seconds=WINDOW)
            for track in Track
            for metric in TEMPLATE_KEYS
        }

    values = asyncio.run(measure())
    for (track, metric), value in values.items():
        expected = EXPECTED[track][metric]
        assert value == pytest.approx(expected, rel=0.02, abs=1e-6), (
            preset,
            track,
            metric,
            source.shown_query(metric, track, WINDOW),
        )


@pytest.mark.prometheus
@pytest.mark.parametrize("preset", ["generic", "istio"])
def test_window_holds_both_tracks_in_the_cockpits_units(published: str, preset: str) -> None:
    window = asyncio.run(source_for(published, preset).window(WINDOW))
    assert window.canary.request_rate == pytest.approx(10.0, rel=0.02)
    assert window.canary.requests == pytest.approx(30.0, rel=0.02)
    assert window.canary.error_rate == pytest.approx(0.1, rel=0.02)
    assert window.canary.p99_ms == pytest.approx(235.0, rel=0.02)
    assert window.stable.error_rate == pytest.approx(0.0, abs=1e-9)
    assert window.stable.p95_ms == pytest.approx(75.0, rel=0.02)


@pytest.mark.prometheus
def test_a_template_override_and_an_extra_placeholder_replace_the_presets(published: str) -> None:
    ctx = AdapterContext(service=SERVICE, env="dev", run_dir=Path("/nonexistent"))
    options = {
        "url": published,
        "preset": "istio",
        "namespace": NAMESPACE,
        "workloads": {"canary": f"{SERVICE}-primary"},  # deliberately the stable workload
        "placeholders": {"quantile": "0.5"},
        "templates": {
            "latency-p99": "histogram_quantile({quantile}, sum by (le) (rate(istio_request_duration_milliseconds_bucket"
            '{reporter="destination",destination_workload="{workload}"}[{interval}])))'
        },
    }
    source = registry.create_metrics_source("prometheus", ctx, options, None)  # type: ignore[arg-type]
    # The median of the stable distribution: 0.5 of requests under 50 ms -> 0.5/0.9 of that bucket.
    value = asyncio.run(source.query(source.templates["latency-p99"], track=Track.CANARY, seconds=WINDOW))
    assert value == pytest.approx(50.0 * 0.5 / 0.9, rel=0.02)
    assert "histogram_quantile(0.5," in source.shown_query("latency-p99", Track.CANARY, WINDOW)
    assert (
        source.shown_query("latency-p95", Track.CANARY, 30).count(f'destination_workload="{SERVICE}-primary"')
        == 1
    )
