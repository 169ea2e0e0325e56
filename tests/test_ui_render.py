"""The screen's pure pieces: log formatting and filters, the log view's index,
analysis lines, thresholds. Fast; no app needed."""

from __future__ import annotations

import json

import pytest
from textual.app import App, ComposeResult

from cockpit.adapters.base import LogLine, Track
from cockpit.engine.logbuffer import LogBuffer
from cockpit.engine.state import CheckView, Measurement, Outcome
from cockpit.plan.loader import parse_plan
from cockpit.ui import render
from cockpit.ui.logformat import readable
from cockpit.ui.widgets.log_view import K, LogFilter, LogView
from tests.ui_fixtures import plan_text


def line(text: str, env: str = "dev", track: Track | None = Track.STABLE) -> LogLine:
    return LogLine(1767260465.0, env, "stable 1.0.0 #1", track, text)


def test_json_request_lines_read_like_a_request() -> None:
    record = {
        "ts": 1767260465.5,
        "level": "info",
        "msg": "request",
        "path": "/api/orders",
        "status": 200,
        "duration_ms": 3.2,
        "version": "1.0.0",
        "method": "GET",
    }
    ts, level, message = readable(line(json.dumps(record)))
    assert (ts, level, message) == (1767260465.5, "info", "GET /api/orders 200 3ms")
    _, level, message = readable(line('{"level":"warning","msg":"upstream error","upstream":"http://x"}'))
    assert (level, message) == ("warn", "upstream error upstream=http://x")
    _, level, message = readable(line("Traceback (most recent call last):"))
    assert level == "error"
    _, level, message = readable(line("{not json"))
    assert (level, message) == ("", "{not json")


def test_filter_is_substring_or_regex_and_a_bad_regex_says_why() -> None:
    assert LogFilter.parse("") is None
    checkout = LogFilter.parse("checkout")
    assert checkout is not None and checkout.matches(line("GET /api/CHECKOUT"))  # smart case
    strict = LogFilter.parse("Checkout")
    assert strict is not None and not strict.matches(line("checkout"))
    regex = LogFilter.parse("/5\\d\\d/")
    assert regex is not None and regex.matches(line("status 503")) and not regex.matches(line("status 200"))
    with pytest.raises(ValueError, match="bad regex"):
        LogFilter.parse("/[/")


def test_check_line_shows_value_next_to_limit_and_no_data_as_such() -> None:
    measured = CheckView(
        "latency-p99",
        "<= 250",
        "ms",
        Outcome.FAILED,
        (Measurement(1.0, Outcome.FAILED, 420.0, 90.0),),
        taken=1,
        count=3,
        failed=1,
    )
    text = render.check_line(measured).plain
    # The limit reads as a requirement, not as a claim next to the value ("420ms ≤250ms").
    assert "420ms (needs ≤ 250ms)" in text and "≤250ms" not in text
    assert "stable 90ms" in text and "1/3" in text and text.startswith("✗")
    no_data = CheckView(
        "success-rate",
        ">= 95",
        "%",
        Outcome.RUNNING,
        (Measurement(1.0, Outcome.NO_DATA, None, 99.8),),
        no_data=1,
        count=3,
    )
    text = render.check_line(no_data).plain
    # "∅1" said nothing to a person woken at 3 a.m.: the count is spelled out.
    assert "no data" in text and "(needs ≥ 95%)" in text and "no data ×1" in text and "∅" not in text


def test_live_limits_come_from_the_plans_checks() -> None:
    limits = render.live_limits(parse_plan(plan_text()))
    assert limits["err"].text("%") == "≤5%" and limits["p99"].text("ms") == "≤250ms"
    assert limits["err"].breached(30.0) and not limits["p99"].breached(80.0)


class ViewApp(App[None]):
    def __init__(self, view: LogView) -> None:
        super().__init__()
        self.view = view

    def compose(self) -> ComposeResult:
        yield self.view


@pytest.mark.asyncio
async def test_log_index_accounts_for_every_line_and_stays_bounded() -> None:
    ring = LogBuffer(capacity=100)
    view = LogView({"dev": ring}, ["dev"], {"dev": 0})
    async with ViewApp(view).run_test(size=(80, 20)) as pilot:
        total = 0
        for batch in (30, 90, 250, 5):
            ring.extend([line(f"n{total + i}") for i in range(batch)])
            total += batch
            view.flush()
            await pilot.pause()
        assert view.indexed + view.missed == total == 375
        assert view.line_count == 100 and ring.dropped == 275
        assert view._index[0] // K == ring.first  # the index itself is what is checked
        assert view.following and view.line_text(99).endswith("n374")


@pytest.mark.asyncio
async def test_merged_filtered_index_drops_lines_gone_from_their_ring() -> None:
    dev, prod = LogBuffer(capacity=10), LogBuffer(capacity=10)
    view = LogView(
        {"dev": dev, "production": prod},
        ["dev", "production"],
        {"dev": 0, "production": 1},
        LogFilter.parse("keep"),
    )
    async with ViewApp(view).run_test(size=(80, 20)):
        prod.extend([line("keep prod", "production")])
        dev.extend([line("keep dev 0")])
        view.flush()
        assert view.line_count == 2
        dev.extend([line(f"noise {i}") for i in range(20)])  # dev's match leaves its ring
        view.flush()
        assert view.line_count == 1 and "keep prod" in view.line_text(0)


def test_sparkline_series_waits_for_a_trend_and_skips_no_data() -> None:
    from cockpit.adapters.base import NO_DATA, MetricsWindow, TrackMetrics

    sample = TrackMetrics(requests=30, request_rate=10.0, error_rate=0.0, p95_ms=3.0, p99_ms=5.0)
    one = [MetricsWindow(ts=1.0, seconds=2.0, stable=sample, canary=sample)]
    # A single value would draw as a full-height block: nothing until there are two.
    assert render.series(one, "rate", canary=True, points=20) == []
    gap = [*one, MetricsWindow(ts=2.0, seconds=2.0, stable=sample, canary=NO_DATA), *one]
    assert render.series(gap, "rate", canary=True, points=20) == [10.0, 10.0]
