"""The ``prometheus`` metrics source: built-in metrics from PromQL templates, custom
checks in PromQL, both per track, read from a Prometheus server.

Each query is one instant query; prometheus-api-client is synchronous, so every call
runs in a worker thread (``asyncio.to_thread``) with its own timeout and never blocks the
event loop. A window is the five built-in metrics of each track queried side by side.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from cockpit.adapters.base import (
    AdapterContext,
    AmbiguousQuery,
    BackendConfigError,
    BackendError,
    CapabilityMissing,
    DeployBackend,
    MetricsSource,
)
from cockpit.adapters.prometheus.client import Credentials, PrometheusServer
from cockpit.adapters.prometheus.options import PrometheusOptions
from cockpit.adapters.prometheus.presets import PRESETS
from cockpit.adapters.prometheus.render import duration, render
from cockpit.adapters.prometheus.targets import TargetError, write_targets
from cockpit.model import NO_DATA, MetricsWindow, Track, TrackMetrics
from cockpit.secrets import redact

WINDOW_METRICS = ("request-rate", "error-rate", "latency-p95", "latency-p99")
"""What a window needs (success-rate is 1 - error-rate; requests = rate x window)."""


class PrometheusMetricsSource(MetricsSource):
    """Request rate, error rate and p95/p99 per track, and any PromQL, from Prometheus."""

    name: ClassVar[str] = "prometheus"
    Options: ClassVar[type[PrometheusOptions]] = PrometheusOptions
    options: PrometheusOptions
    supports_query: ClassVar[bool] = True  # the plan loader lets checks use `query`

    def __init__(self, ctx: AdapterContext, options: PrometheusOptions, backend: DeployBackend) -> None:
        super().__init__(ctx, options, backend)
        preset = PRESETS[options.preset]
        self.templates: dict[str, str] = {**preset.templates, **options.templates}
        self._workloads: dict[Track, str] = {**preset.workloads, **options.workloads}
        self.server = PrometheusServer(options.url, options.timeout, options.ca_bundle, self._credentials)

    # ------------------------------------------------------------------ queries

    def placeholders(self, track: Track, seconds: float | None) -> dict[str, str]:
        """Every ``{name}`` a query for ``track`` may use, with its value now."""
        base = {"service": self.ctx.service, "env": self.ctx.env, "namespace": self.options.namespace}
        values = {
            **self.options.placeholders,
            **base,
            "track": track.value,
            "version": self.track_versions.get(track, ""),
            "workload": render(self._workloads[track], base),
        }
        if seconds is not None:
            values["interval"] = duration(max(seconds, self.options.min_range))
        return values

    def render(self, expr: str, track: Track, seconds: float | None) -> str:
        return render(expr, self.placeholders(track, seconds))

    def shown_query(self, metric: str, track: Track, seconds: float) -> str:
        template = self.templates.get(metric)
        if template is None:
            return ""
        try:
            return self.render(template, track, seconds)
        except BackendError as err:
            return f"(cannot render: {err})"

    async def query(
        self, expr: str, *, track: Track = Track.CANARY, seconds: float | None = None
    ) -> float | None:
        promql = self.render(expr, track, seconds)
        result = await asyncio.to_thread(self.server.query, promql)
        return one_number(result, promql)

    async def window(self, seconds: float) -> MetricsWindow:
        tracks = list(Track)
        values = await asyncio.gather(
            *(self.query(self.templates[m], track=t, seconds=seconds) for t in tracks for m in WINDOW_METRICS)
        )
        per_track = {
            t: dict(
                zip(
                    WINDOW_METRICS,
                    values[i * len(WINDOW_METRICS) : (i + 1) * len(WINDOW_METRICS)],
                    strict=True,
                )
            )
            for i, t in enumerate(tracks)
        }
        return MetricsWindow(
            ts=time.time(),
            seconds=seconds,
            stable=track_metrics(per_track[Track.STABLE], seconds),
            canary=track_metrics(per_track[Track.CANARY], seconds),
        )

    # ------------------------------------------------------------------ targets, lifecycle

    async def collect(self) -> None:
        """Publish the backend's targets for Prometheus to scrape (``file_sd``)."""
        if self.options.file_sd is None:
            return
        try:
            targets: Mapping[Track, Sequence[str]] = self.backend.scrape_targets()
        except CapabilityMissing as err:
            raise BackendConfigError(f"file_sd is set, but {err}") from None
        try:
            await asyncio.to_thread(
                write_targets,
                self.options.file_sd,
                self.ctx.service,
                self.ctx.env,
                targets,
                dict(self.track_versions),
            )
        except (TargetError, OSError) as err:
            raise BackendConfigError(
                f"cannot publish the scrape targets to {self.options.file_sd}: {err}"
            ) from None

    async def close(self) -> None:
        await asyncio.to_thread(self.server.close)

    def _credentials(self) -> Credentials:
        """Resolved when the first query is sent (and again after a 401/403)."""
        opts = self.options
        if opts.bearer_token_secret is None and opts.basic_auth_password_secret is None:
            return Credentials()
        if self.ctx.secrets is None:
            raise BackendConfigError("this source needs a secret, but no secret resolver was given")
        if opts.bearer_token_secret is not None:
            token = self.ctx.secrets(opts.bearer_token_secret)
            return Credentials(headers={"Authorization": f"Bearer {token}"})
        assert opts.basic_auth_user is not None and opts.basic_auth_password_secret is not None
        return Credentials(basic=(opts.basic_auth_user, self.ctx.secrets(opts.basic_auth_password_secret)))


def one_number(result: Any, promql: str) -> float | None:
    """The single number of an instant query's ``result``: ``None`` for no series or NaN;
    :class:`AmbiguousQuery` for several series (never a silent pick)."""
    if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):
        return _number(result[1], promql)  # a scalar: [ts, "value"]
    if not isinstance(result, list):
        raise BackendConfigError(redact(f"query {promql!r} gave no instant vector or scalar"))
    if not result:
        return None
    if len(result) > 1:
        shown = ", ".join(_labels(s) for s in result[:3]) + (", ..." if len(result) > 3 else "")
        raise AmbiguousQuery(
            redact(
                f"query {promql!r} returned {len(result)} series where one number is expected"
                f" ({shown}); aggregate them, e.g. with sum(...)"
            )
        )
    series = result[0]
    if "value" not in series:
        raise BackendConfigError(
            redact(f"query {promql!r} returns a range vector; wrap it in a function such as rate(...)")
        )
    return _number(series["value"][1], promql)


def _number(text: Any, promql: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise BackendConfigError(redact(f"query {promql!r} returned {text!r}, not a number")) from None
    return None if math.isnan(value) else value


def _labels(series: Any) -> str:
    metric = series.get("metric", {}) if isinstance(series, dict) else {}
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(metric.items())) + "}"


def track_metrics(values: Mapping[str, float | None], seconds: float) -> TrackMetrics:
    """One track's window from its query results: no requests is NO_DATA."""
    rate = values["request-rate"]
    requests = (rate or 0.0) * seconds
    if requests <= 0:
        return NO_DATA
    error_rate = values["error-rate"]
    return TrackMetrics(
        requests=requests,
        request_rate=rate,
        error_rate=None if error_rate is None else min(1.0, max(0.0, error_rate)),
        p95_ms=values["latency-p95"],
        p99_ms=values["latency-p99"],
    )
