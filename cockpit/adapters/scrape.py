"""A metrics source that scrapes the backend's ``/metrics`` targets itself.

No Prometheus server needed: each ``collect()`` reads every target of
``backend.scrape_targets()`` concurrently, turns the cumulative counters of each target
into deltas (so a replica that restarts, appears or disappears never makes a track's
totals jump backwards or double count), adds the deltas to per-track running totals, and
keeps a bounded, time-stamped series of those totals. ``window(seconds)`` then subtracts
two points of that series, as Prometheus' ``increase()`` would, and estimates p95/p99 from
histogram bucket deltas with ``histogram_quantile``'s linear interpolation.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import time
from dataclasses import dataclass, field
from typing import ClassVar

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, ConfigDict, Field

from cockpit.adapters.base import AdapterContext, BackendUnavailable, DeployBackend, MetricsSource
from cockpit.model import NO_DATA, MetricsWindow, Track, TrackMetrics
from cockpit.units import Duration

MAX_SAMPLES = 20_000  # hard cap on the series whatever the collect rate
STATUS_LABELS = ("code", "status", "status_code")


class ScrapeOptions(BaseModel):
    """Scrapes the backend's targets directly (no Prometheus server)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True)

    requests_metric: str = "http_requests_total"
    """Counter of requests, with a status code label (``code``, ``status`` or ``status_code``)."""

    duration_metric: str = "http_request_duration_seconds"
    """Histogram of request durations in seconds (its ``_bucket`` series are read)."""

    timeout: Duration = Field(default=2.0, gt=0)
    """How long one scrape of one target may take."""

    history: Duration = Field(default=600.0, gt=0)
    """How much history to keep; the longest window that can be asked for."""


@dataclass(slots=True)
class Counts:
    """Request, 5xx and cumulative histogram bucket counts (``le`` -> count)."""

    requests: float = 0.0
    errors: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)

    def minus(self, other: Counts) -> Counts:
        return Counts(
            self.requests - other.requests,
            self.errors - other.errors,
            {le: c - other.buckets.get(le, 0.0) for le, c in self.buckets.items()},
        )

    def went_backwards(self, before: Counts) -> bool:
        """A counter below its last value means the process restarted (reset to 0)."""
        if self.requests < before.requests or self.errors < before.errors:
            return True
        return any(c < before.buckets.get(le, 0.0) for le, c in self.buckets.items())

    def add(self, other: Counts) -> None:
        self.requests += other.requests
        self.errors += other.errors
        for le, c in other.buckets.items():
            self.buckets[le] = self.buckets.get(le, 0.0) + c

    def copy(self) -> Counts:
        return Counts(self.requests, self.errors, dict(self.buckets))


@dataclass(frozen=True, slots=True)
class Sample:
    ts: float
    counts: Counts


def parse_metrics(text: str, requests_metric: str, duration_metric: str) -> Counts:
    """Sum one target's exposition over all label sets.

    Only the lines of the two metrics are handed to the (pure-Python) parser: a service
    exposes many other series, and skipping them keeps a scrape cheap."""
    bucket_name = duration_metric + "_bucket"
    wanted = [
        line
        for line in text.splitlines()
        if _is_sample_of(line, requests_metric) or _is_sample_of(line, bucket_name)
    ]
    counts = Counts()
    if not wanted:
        return counts
    for family in text_string_to_metric_families("\n".join(wanted) + "\n"):
        for sample in family.samples:
            if sample.name == requests_metric:
                counts.requests += sample.value
                code = next((sample.labels[k] for k in STATUS_LABELS if k in sample.labels), "")
                if code.startswith("5"):
                    counts.errors += sample.value
            elif sample.name == bucket_name and "le" in sample.labels:
                le = float(sample.labels["le"])
                counts.buckets[le] = counts.buckets.get(le, 0.0) + sample.value
    return counts


def _is_sample_of(line: str, name: str) -> bool:
    return line.startswith(name) and len(line) > len(name) and line[len(name)] in "{ "


def histogram_quantile(q: float, buckets: dict[float, float]) -> float | None:
    """Prometheus' ``histogram_quantile`` over cumulative bucket counts, in the buckets'
    unit: linear interpolation inside the bucket holding the rank; a rank in the +Inf
    bucket returns the highest finite bound."""
    if not buckets or math.inf not in buckets:
        return None
    ordered = sorted(buckets.items())
    total = ordered[-1][1]
    if total <= 0:
        return None
    rank = q * total
    prev_le, prev_count = 0.0, 0.0
    for le, count in ordered:
        count = max(count, prev_count)  # buckets summed across targets may be uneven
        if count >= rank:
            if math.isinf(le):
                return prev_le
            if count == prev_count:
                return le
            lower = prev_le if prev_le < le else 0.0
            return lower + (le - lower) * (rank - prev_count) / (count - prev_count)
        prev_le, prev_count = le, count
    return prev_le


class ScrapeMetricsSource(MetricsSource):
    """Per-track request rate, 5xx ratio and p95/p99 from the backend's scrape targets."""

    name: ClassVar[str] = "scrape"
    Options: ClassVar[type[ScrapeOptions]] = ScrapeOptions
    options: ScrapeOptions  # the base declares a BaseModel; this source is always given its own model

    def __init__(self, ctx: AdapterContext, options: ScrapeOptions, backend: DeployBackend) -> None:
        self.ctx = ctx
        self.options = options
        self.backend = backend
        self._last: dict[str, Counts] = {}  # per target URL: its last cumulative counts
        self._totals = {Track.STABLE: Counts(), Track.CANARY: Counts()}
        self._series: dict[Track, list[Sample]] = {Track.STABLE: [], Track.CANARY: []}
        self._session: aiohttp.ClientSession | None = None

    async def collect(self) -> None:
        targets = [(Track(t), url) for t, urls in self.backend.scrape_targets().items() for url in urls]
        if self._session is None:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        results = await asyncio.gather(*(self._scrape(url) for _, url in targets), return_exceptions=True)
        now = time.time()
        errors: list[str] = []
        for (track, url), result in zip(targets, results, strict=True):
            if isinstance(result, BaseException):
                errors.append(f"{url}: {result}")
                continue
            before = self._last.get(url)
            self._last[url] = result
            if before is None:
                continue  # first sight is the baseline, as for Prometheus' increase()
            delta = result if result.went_backwards(before) else result.minus(before)
            self._totals[track].add(delta)
        gone = self._last.keys() - {url for _, url in targets}
        for url in gone:
            del self._last[url]
        self._record(now)
        if targets and len(errors) == len(targets):
            raise BackendUnavailable(
                f"none of the {len(targets)} metrics target(s) of {self.ctx.env} answered ({errors[0]})"
            )

    async def _scrape(self, url: str) -> Counts:
        assert self._session is not None
        try:
            timeout = aiohttp.ClientTimeout(total=self.options.timeout)
            async with self._session.get(url, timeout=timeout) as resp:
                if resp.status != 200:
                    raise BackendUnavailable(f"HTTP {resp.status}")
                text = await resp.text()
        except aiohttp.ClientConnectorError:
            raise BackendUnavailable("connection refused") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise BackendUnavailable(str(exc) or type(exc).__name__) from None
        try:
            return parse_metrics(text, self.options.requests_metric, self.options.duration_metric)
        except ValueError as exc:
            raise BackendUnavailable(f"unreadable metrics: {exc}") from None

    def _record(self, now: float) -> None:
        horizon = now - self.options.history
        for track, series in self._series.items():
            series.append(Sample(now, self._totals[track].copy()))
            # Keep one sample older than the horizon so a full-history window has a base.
            cut = bisect.bisect_left(series, horizon, key=lambda s: s.ts) - 1
            excess = max(cut, len(series) - MAX_SAMPLES)
            if excess > 0:
                del series[:excess]

    async def window(self, seconds: float) -> MetricsWindow:
        stable, stable_span = self._track_window(Track.STABLE, seconds)
        canary, canary_span = self._track_window(Track.CANARY, seconds)
        ends = [s[-1].ts for s in self._series.values() if s]
        return MetricsWindow(
            ts=max(ends) if ends else time.time(),
            seconds=max(stable_span, canary_span) or seconds,
            stable=stable,
            canary=canary,
        )

    def _track_window(self, track: Track, seconds: float) -> tuple[TrackMetrics, float]:
        series = self._series[track]
        if len(series) < 2:
            return NO_DATA, 0.0
        end = series[-1]
        # The newest sample at or before the window start; the oldest if history is shorter.
        i = bisect.bisect_right(series, end.ts - seconds, key=lambda s: s.ts) - 1
        base = series[max(i, 0)]
        span = end.ts - base.ts
        delta = end.counts.minus(base.counts)
        if span <= 0 or delta.requests <= 0:
            return NO_DATA, span
        p95, p99 = (histogram_quantile(q, delta.buckets) for q in (0.95, 0.99))
        return (
            TrackMetrics(
                requests=delta.requests,
                request_rate=delta.requests / span,
                error_rate=min(1.0, max(0.0, delta.errors / delta.requests)),
                p95_ms=None if p95 is None else p95 * 1000,
                p99_ms=None if p99 is None else p99 * 1000,
            ),
            span,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
