"""The gate view (``g``) and the card's analysis lines: each gate's number against its
limit, stable beside canary, the trend on one zero-based chart with the limit drawn, the
verdict, the recent measurements, the query on demand, a metrics source that is down.

Pure pieces first (fast), then the view through Pilot: on the memory backend's real
analysis (1.2.0 fails it) and on an analysis with a relative limit put into a
controller's state (the engine's own types), as the engine will report it.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from textual.content import Content
from textual.pilot import Pilot

from cockpit.engine.state import AnalysisView, CheckView, Measurement, Outcome, Phase
from cockpit.engine.views import EnvView
from cockpit.plan.loader import parse_plan
from cockpit.ui import render
from cockpit.ui.app import CockpitApp
from cockpit.ui.screens.gates import (
    GateScreen,
    counts_line,
    measurements_table,
    metrics_trouble,
    no_analysis,
    wrap_query,
)
from cockpit.ui.widgets.gate_chart import gate_chart_lines
from tests.memory_backend import MemoryMetrics
from tests.ui_fixtures import make_app, make_session, plan_text, started, wait_for

T0 = 1_767_260_000.0
RELATIVE = "<= stable * 1.2 + 10ms"
P99_QUERY = (
    'histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{service="shop",'
    'env="staging",track="canary",version="1.2.0"}[5s]))) * 1000'
)


def p99_gate() -> CheckView:
    """A latency gate relative to stable: the limit follows stable up, canary outgrows it."""
    stables = [80.0, 95.0, 110.0, 120.0]
    values: list[float | None] = [110.0, 120.0, None, 182.0]
    outcomes = [Outcome.SUCCESSFUL, Outcome.SUCCESSFUL, Outcome.NO_DATA, Outcome.FAILED]
    measurements = tuple(
        Measurement(T0 + 5 * i, o, v, s, limit=None if v is None else s * 1.2 + 10)
        for i, (s, v, o) in enumerate(zip(stables, values, outcomes, strict=True))
    )
    return CheckView(
        "latency-p99",
        RELATIVE,
        "ms",
        Outcome.FAILED,
        measurements,
        taken=3,
        count=5,
        failed=1,
        no_data=1,
        query=P99_QUERY,
        interval=5.0,
    )


def error_gate() -> CheckView:
    measurements = (
        Measurement(T0, Outcome.SUCCESSFUL, 0.4, 0.3, limit=1.3),
        Measurement(T0 + 5, Outcome.ERROR, None, message="prometheus at http://127.0.0.1:9090 unreachable"),
    )
    return CheckView(
        "error-rate", "<= stable + 1%", "%", Outcome.RUNNING, measurements, taken=1, count=5, errors=1, interval=5.0
    )


def relative_analysis() -> AnalysisView:
    return AnalysisView(2, Outcome.FAILED, (p99_gate(), error_gate()), "latency-p99 182ms (needs <= 154)")


# --------------------------------------------------------------------------- pure parts


def test_the_limit_is_the_engines_else_the_threshold_else_computed_from_stable() -> None:
    gate = p99_gate()
    assert render.limit_of(gate, gate.last) == pytest.approx(154.0)  # Measurement.limit, as judged
    # The engine's number wins over one computed here (it judged with its own stable reading).
    assert gate.last is not None and render.limit_of(gate, replace(gate.last, limit=150.0)) == 150.0
    unreported = replace(gate.measurements[0], limit=None)
    assert render.limit_of(gate, unreported) == pytest.approx(106.0)  # 80 × 1.2 + 10
    absolute = CheckView("p99", "<= 250", "ms", Outcome.RUNNING)
    assert render.limit_of(absolute, None) == 250.0
    assert render.limit_of(replace(absolute, condition="<= baseline"), None) is None
    rel = render.relative_condition(">= 0.9 * stable - 0.5s", "ms")
    assert rel is not None and (rel.op, rel.factor, rel.offset) == (">=", 0.9, -500.0)
    assert render.relative_condition("<= 250", "ms") is None


def test_a_value_is_said_against_its_limit_in_words() -> None:
    assert render.against_limit("<=", 182.0, 154.0, "ms") == (False, "over by 28ms")
    assert render.against_limit("<=", 120.0, 154.0, "ms") == (True, "34ms to spare")
    assert render.against_limit(">=", 70.0, 95.0, "%") == (False, "under by 25.0 pts")


def test_the_cards_line_shows_the_computed_limit_and_stable_and_gives_up_the_rule_first() -> None:
    gate = p99_gate()
    wide = render.check_line(gate).plain
    assert "182ms (needs ≤ 154ms: stable × 1.2 + 10ms)" in wide and wide.endswith("stable 120ms")
    narrow = render.check_line(gate, 70).plain
    assert "182ms (needs ≤ 154ms)  3/5" in narrow and narrow.endswith("stable 120ms") and "1.2" not in narrow
    assert len(narrow) <= 70
    # Narrower still, the counts move to a second line, indented, rather than being cut.
    narrowest = render.check_line(gate, 50).plain
    assert narrowest == "✗ latency-p99 182ms (needs ≤ 154ms)  3/5\n    no data ×1  stable 120ms"
    waiting = replace(gate, measurements=(), outcome=Outcome.RUNNING)
    assert "(needs ≤ stable × 1.2 + 10ms)" in render.check_line(waiting).plain  # the rule until measured


def test_the_chart_draws_canary_and_stable_from_zero_with_a_moving_limit() -> None:
    # Ten slots of six cells (the analysis keeps ten); the four measurements fill the last four.
    lines = gate_chart_lines(p99_gate(), width=7 + 10 * 6, height=8)
    legend, rows, marks = lines[0].plain, [line.plain for line in lines[1:-1]], lines[-1].plain
    assert legend == "█ stable 120ms  █ canary 182ms  ─ limit 154ms"
    assert rows[-1].startswith("     0 ") and len(rows) == 8
    assert rows[0].lstrip().startswith("250ms")  # zero-based scale past the highest value
    # The limit line sits at each measurement's own limit: lower for the first (106) than
    # for the last (154), and the axis names the latest limit on its row.
    start = 7 + 6 * 6
    first_group = [row[start : start + 6] for row in rows]
    last_group = [row[start + 3 * 6 : start + 4 * 6] for row in rows]
    first_limit = next(i for i, cells in enumerate(first_group) if set(cells) & set("▁─▔"))
    last_limit = next(i for i, cells in enumerate(last_group) if set(cells) & set("▁─▔"))
    assert first_limit > last_limit  # rows are listed top first: a higher row, a higher limit
    assert rows[last_limit].startswith(" 154ms ")
    assert "··" in rows[-1][start + 2 * 6 : start + 3 * 6]  # the no-data measurement: dots on the floor, not a bar
    assert marks.split() == ["✓", "✓", "∅", "✗"]
    failed = {line.plain[s.start : s.end] for line in lines[1:-1] for s in line.spans if s.style == "$fail bold"}
    assert failed == {"▇▇", "██"}, "the failed measurement's canary bar is drawn in the failure colour"


def test_recent_measurements_newest_first_with_no_data_and_errors_spelled_out() -> None:
    table = measurements_table(error_gate(), 120, ("stable", "canary")).plain.splitlines()
    assert table[0].split() == ["time", "canary", "stable", "limit", "outcome"]
    assert "! Error: prometheus at http://127.0.0.1:9090 unreachable" in table[1]
    assert table[2].split()[1:] == ["0.4%", "0.3%", "1.3%", "✓", "Successful"]
    assert "∅ NoData" in measurements_table(p99_gate(), 120, ("stable", "canary")).plain
    assert len(measurements_table(error_gate(), 50, ("stable", "canary")).plain.splitlines()[1]) <= 50


def test_counts_fit_the_width_and_break_between_items() -> None:
    plan = parse_plan(plan_text())
    text = counts_line(p99_gate(), plan.analysis.checks[1], width=60).plain
    assert all(len(line) <= 60 for line in text.splitlines())
    assert "taken 3/5" in text and "failed 1 (limit 0)" in text
    assert "no data 1 (limit 3)" in text and "errors 0 (limit 4 in a row)" in text


def test_a_long_query_wraps_at_its_commas_and_brackets() -> None:
    lines = wrap_query(P99_QUERY, 40)
    assert all(len(line) <= 40 for line in lines) and len(lines) >= 4
    assert lines[0] == "histogram_quantile(0.99, sum by (le) ("  # broken where a person would break it
    assert all(line.count('"') % 2 == 0 for line in lines)  # never inside a label's value
    assert "".join(lines).replace(" ", "") == P99_QUERY.replace(" ", "")


def test_without_analysis_the_view_says_so_and_lists_the_plans_checks() -> None:
    plan = parse_plan(plan_text())
    view = EnvView("staging", False, replace_rollout_phase(), ("20%", "pause", "analysis"), frozenset())
    text = no_analysis(view, plan).plain
    assert text.startswith("no analysis has run in staging yet; the plan's checks are:")
    assert "success-rate  ≥ 95%" in text and "every 50ms × 2, built-in latency-p99" in text


def replace_rollout_phase():  # type: ignore[no-untyped-def]
    from cockpit.engine.state import RolloutState

    return RolloutState("staging", Phase.HEALTHY, "1.0.0", 5)


def test_style_runs_start_after_their_spaces() -> None:
    """rsvg drops the leading spaces of a run when it renders a screenshot to PNG
    ("Failed" + "   measured" read "Failedmeasured"): spaces get runs of their own."""
    line = render.tight(Content.assemble(("Failed", "$fail"), ("   measured", render.DIM), ("\n  next", "bold")))
    assert line.plain == "Failed   measured\n  next"
    assert [(s.start, s.end) for s in line.spans] == [(0, 6), (9, 17), (20, 24)]


def test_a_down_source_says_so_with_the_retry() -> None:
    view = EnvView(
        "staging",
        False,
        replace_rollout_phase(),
        (),
        frozenset(),
        metrics_error="prometheus at http://127.0.0.1:9090 unreachable",
        metrics_retry_at=T0 + 8,
    )
    text = metrics_trouble(view, T0).plain
    assert text.splitlines()[:2] == [
        "! metrics source down · retrying in 8s",
        "  prometheus at http://127.0.0.1:9090 unreachable",
    ]
    assert metrics_trouble(replace(view, metrics_error=None), T0) is None


# --------------------------------------------------------------------------- the view, through Pilot


def gate_text(app: CockpitApp) -> str:
    screen = app.screen
    assert isinstance(screen, GateScreen)
    parts = ["#gate-title", "#gate-trouble", "#gate-tabs", "#gate-head", "#gate-chart", "#gate-counts"]
    parts += ["#gate-table", "#gate-query"]
    return "\n".join(str(screen.query_one(p).render()) for p in parts)


def highlighted(screen: GateScreen) -> list[str]:
    """The gate whose tab is highlighted (drawn reversed)."""
    tabs = screen.query_one("#gate-tabs").render()
    assert isinstance(tabs, Content)
    return [tabs.plain[s.start : s.end] for s in tabs.spans if "reverse" in str(s.style)]


async def open_gates(pilot: Pilot, app: CockpitApp, env: str) -> GateScreen:
    main = app.main_screen
    assert main is not None
    while main.current != env:
        await pilot.press("right")
    await pilot.press("g")
    await wait_for(pilot, lambda: isinstance(app.screen, GateScreen), what="the gate view")
    screen = app.screen
    assert isinstance(screen, GateScreen) and screen.env == env
    await pilot.pause()
    return screen


def inject(app: CockpitApp, env: str, analysis: AnalysisView) -> None:
    """Put ``analysis`` into ``env``'s state, as the engine reports a run."""
    controller = app.session.controller(env)
    controller.state = replace(controller.state, analysis=analysis, target_version="1.2.0")
    controller.changed()


def source_down(app: CockpitApp, env: str, error: str, retry_at: float) -> None:
    """``env``'s metrics source down as the engine reports it: its error and, from the
    poll's backoff, when it is tried next (``EnvView.metrics_retry_at``)."""
    session = app.session
    view, views = session.view, session.views

    def down(v: EnvView) -> EnvView:
        return replace(v, metrics_error=error, metrics_retry_at=retry_at) if v.name == env else v

    session.view = lambda name: down(view(name))  # type: ignore[method-assign]
    session.views = lambda: [down(v) for v in views()]  # type: ignore[method-assign]


@pytest.mark.asyncio
async def test_g_opens_the_focused_environments_gates_and_esc_closes(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: started(app), what="start")
        await open_gates(pilot, app, "staging")
        text = gate_text(app)
        assert "no analysis has run in staging yet; the plan's checks are:" in text
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, GateScreen), what="closed")


@pytest.mark.asyncio
async def test_a_failed_analysis_shows_the_number_the_limit_stable_and_the_chart(tmp_path: Path) -> None:
    from tests.test_ui_snapshots import rollout

    app = make_app(make_session(tmp_path))
    async with app.run_test(size=(160, 48)) as pilot:
        await rollout(pilot, "1.2.0")  # the memory backend's 1.2.0 fails dev's analysis
        assert app.session.view("dev").rollout.phase is Phase.ABORTED
        screen = await open_gates(pilot, app, "dev")
        text = gate_text(app)
        assert "Gates · dev · step 3/5 · ✗ Failed · 1.2.0 (last run; now Aborted)" in text
        first = screen.selected
        assert first in text and ("✗ Failed" in text)
        await pilot.press("right")  # the other gate
        await wait_for(pilot, lambda: screen.selected != first, what="the next gate")
        await pilot.press("left")
        await wait_for(pilot, lambda: screen.selected == first, what="back")
        if first != "latency-p99":
            await pilot.press("right")
            await wait_for(pilot, lambda: screen.selected == "latency-p99", what="latency")
        text = gate_text(app)
        assert "canary     420ms   limit ≤ 250ms   ✗ over by 170ms" in text and "stable     90ms" in text
        assert re.search(" 250ms [▁─▔]", text)  # the limit on the chart, labelled on its axis
        assert "the memory source computes latency-p99 itself" in text


@pytest.mark.asyncio
async def test_a_relative_gate_explains_its_limit_follows_live_and_shows_its_query(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: started(app), what="start")
        inject(app, "staging", relative_analysis())
        screen = await open_gates(pilot, app, "staging")
        text = gate_text(app)
        assert "condition  <= stable * 1.2 + 10ms" in text
        assert "canary     182ms   limit ≤ 154ms (stable 120 × 1.2 + 10)   ✗ over by 28ms" in text
        assert "stable     120ms   canary +62ms against stable" in text
        assert "─ limit 154ms" in text and " 154ms " in text  # legend and axis
        assert "hidden · enter shows it" in text and "histogram_quantile" not in text
        await pilot.press("enter")
        await wait_for(pilot, lambda: "histogram_quantile" in gate_text(app), what="the query")
        query = str(screen.query_one("#gate-query").render())
        width = screen.query_one("#gate-query").size.width
        assert all(len(line) <= width for line in query.splitlines())
        assert "".join(query.splitlines()[1:]).replace(" ", "") == P99_QUERY.replace(" ", "")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "histogram_quantile" not in gate_text(app), what="the query hidden")
        assert highlighted(screen) == ["✗ latency-p99"]
        await pilot.press("right")
        await wait_for(pilot, lambda: screen.selected == "error-rate", what="the error-rate gate")
        await wait_for(pilot, lambda: highlighted(screen) == ["… error-rate"], what="its tab highlighted")
        await pilot.press("tab")  # round again: past the last gate comes the first
        await wait_for(pilot, lambda: screen.selected == "latency-p99", what="round to the first gate")
        await pilot.press("shift+tab")
        await wait_for(pilot, lambda: screen.selected == "error-rate", what="back to error-rate")
        text = gate_text(app)
        assert "! error reading the metrics: prometheus at http://127.0.0.1:9090 unreachable" in text
        assert "0.4%   limit ≤ 1.3% (stable 0.3 + 1)   ✓ 0.9 pts to spare" in text
        assert "█ stable 0.3%  █ canary 0.4%  ─ limit 1.3%" in text  # the last values read, not "—"
        # A measurement taken while the view is open appears without reopening it.
        grown = replace(
            error_gate(),
            measurements=(*error_gate().measurements, Measurement(T0 + 10, Outcome.FAILED, 2.5, 0.3, limit=1.3)),
            outcome=Outcome.FAILED,
        )
        inject(app, "staging", AnalysisView(2, Outcome.FAILED, (p99_gate(), grown)))
        await wait_for(pilot, lambda: "✗ over by 1.2 pts" in gate_text(app), what="the new measurement")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, GateScreen), what="closed")


@pytest.mark.asyncio
async def test_a_metrics_source_that_is_down_shows_its_error_and_the_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: started(app), what="start")
        source = app.session.controller("staging").metrics
        assert isinstance(source, MemoryMetrics)
        source.down = True
        await wait_for(pilot, lambda: app.session.view("staging").metrics_error is not None, what="metrics down")
        screen = await open_gates(pilot, app, "staging")
        text = gate_text(app)
        # Until the engine's backoff gives a time (metrics_retry_at), the next poll retries.
        down = r"! metrics source down · (retried at the next poll|retrying in \d+s)\n  memory metrics for staging unavailable"
        assert re.search(down, text), text
        assert screen.query_one("#gate-trouble").display
        # The engine's backoff gives the next attempt (EnvView.metrics_retry_at): counted down.
        view = app.session.view
        retry_at = app.clock() + 8

        def with_retry(env: str) -> EnvView:
            return replace(view(env), metrics_retry_at=retry_at) if env == "staging" else view(env)

        monkeypatch.setattr(app.session, "view", with_retry)
        await wait_for(pilot, lambda: "retrying in 8s" in gate_text(app) or "retrying in 7s" in gate_text(app))
        source.down = False
        monkeypatch.setattr(app.session, "view", view)
        await wait_for(pilot, lambda: "metrics source down" not in gate_text(app), what="recovered")
        assert not screen.query_one("#gate-trouble").display


@pytest.mark.asyncio
async def test_at_80x24_the_card_fits_a_relative_gate_and_the_view_scrolls(tmp_path: Path) -> None:
    """The card's analysis line carries the computed limit and stable within its width;
    the gate view, taller than the screen, scrolls with the arrows and pages."""
    from cockpit.ui.widgets.env_column import EnvColumn

    app = make_app(make_session(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: started(app), what="start")
        inject(app, "dev", relative_analysis())
        main = app.main_screen
        assert main is not None
        column = main.query_one("#env-dev", EnvColumn)
        await wait_for(pilot, lambda: "latency-p99" in str(column.query_one("#analysis").render()), what="card")
        await pilot.pause(0.2)
        analysis = str(column.query_one("#analysis").render()).splitlines()
        line = next(text for text in analysis if "latency-p99" in text)
        assert "182ms (needs ≤ 154ms" in line and len(line) <= column.content_region.width
        assert column.virtual_size.height <= column.size.height, (column.virtual_size, column.size)
        screen = await open_gates(pilot, app, "dev")
        body = screen.query_one("#gate-body")
        assert body.max_scroll_y > 0  # the table and the query are below the fold at 24 rows
        await pilot.press("pagedown")
        await wait_for(pilot, lambda: body.scroll_y > 0, what="scrolled down")
        await pilot.press("up")
        await pilot.press("pageup")
        await wait_for(pilot, lambda: body.scroll_y == 0, what="back at the top")


@pytest.mark.asyncio
async def test_a_drawing_bug_is_said_once_and_the_cockpit_stays_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cockpit.ui.screens.gates as gates

    def broken(view: EnvView, plan: object) -> Content:
        raise ValueError("a condition nobody foresaw")

    monkeypatch.setattr(gates, "no_analysis", broken)
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: started(app), what="start")
        screen = await open_gates(pilot, app, "dev")
        await pilot.pause(0.6)  # the view has tried again a few times meanwhile
        said = [n.message for n in app._notifications if "gate view could not be drawn" in n.message]
        assert said == ["the gate view could not be drawn; details are in the log"] and screen.is_attached
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, GateScreen), what="closed")
