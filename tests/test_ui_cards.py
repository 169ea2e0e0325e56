"""The environment cards at 3 a.m. (issue 8): zero-based charts with the limit drawn,
the step timeline, tabs that carry the phase, a footer that keeps ``? h q``, the
blue-green card, and the words of the phase and analysis lines."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from textual.content import Content
from textual.widgets import Static, TabbedContent
from textual.widgets._footer import FooterKey

from cockpit.engine.commands import StartRollout
from cockpit.engine.state import Activity, CheckView, Measurement, Outcome, Phase, RolloutState
from cockpit.engine.views import EnvView
from cockpit.model import MetricsWindow, TrackMetrics
from cockpit.ui import render
from cockpit.ui.app import CockpitApp
from cockpit.ui.widgets.chart import BLOCKS, LIMIT_GLYPH, chart_lines, scale_top
from cockpit.ui.widgets.env_column import EnvColumn
from cockpit.ui.widgets.key_footer import KeyFooter
from cockpit.ui.widgets.metrics import COMPACT, panel_lines
from cockpit.ui.widgets.timeline import timeline_lines
from tests.ui_fixtures import PLAN_TAIL, make_app, make_session, plan_text, started, wait_for

STEPS = ("set weight 20%", "pause 5s", "analysis success-rate, latency-p99", "set weight 50%", "pause")

BLUE_GREEN_TAIL = """
[strategy.blue_green]
pre_promotion_analysis = ["success-rate"]
auto_promote = false

[[analysis.checks]]
name = "success-rate"
metric = "success-rate"
success = ">= 95"
interval = "50ms"
count = 2
no_data_limit = 100
"""


def view_at(step: int, phase: Phase = Phase.PAUSED, **rollout: object) -> EnvView:
    state = RolloutState(
        env="dev",
        phase=phase,
        stable_version="1.0.0",
        steps_total=len(STEPS),
        canary_version="1.1.0",
        target_version="1.1.0",
        weight=20,
        step_index=step,
        **rollout,  # type: ignore[arg-type]
    )
    return EnvView(name="dev", protected=False, rollout=state, steps=STEPS, capabilities=frozenset())


# --------------------------------------------------------------------------- the chart, as a pure function


def test_chart_scales_from_zero_so_noise_is_not_a_cliff() -> None:
    noise = [89.0, 91.0, 90.0, 89.5]
    top = scale_top([noise], limit=None)
    assert 91.0 < top <= 120.0  # headroom, not a scale twice too tall
    lines = [line.plain for line in chart_lines(noise, 4, 2, top)]
    # Sparkline drew 89 as empty and 91 as full; from zero they are all about as tall.
    assert lines[1] == BLOCKS[8] * 4
    heights = [BLOCKS.index(c) for c in lines[0]]
    assert min(heights) >= 3 and max(heights) - min(heights) <= 1


def test_chart_draws_the_limit_and_breaches_in_the_fail_style() -> None:
    errors = [0.2, 0.3, 30.0]
    top = scale_top([errors], limit=5.0)
    assert 30.0 < top <= 40.0  # past the highest value, a readable number
    lines = chart_lines(errors, 6, 4, top, limit=5.0, breached=lambda v: v > 5.0, style="$canary")
    plain = [line.plain for line in lines]
    # The limit (5 of 40 over 4 rows) is on the bottom row: its empty cells carry the line,
    # the padding on the left included, and no other row has it.
    assert plain[3].startswith(LIMIT_GLYPH * 3)
    assert all(LIMIT_GLYPH not in p for p in plain[:3])
    # 0.2 % and 0.3 % are tiny bars, never blank, in the track's colour; 30 % breaches.
    assert plain[3][3:5] == BLOCKS[1] * 2
    styles = {line.plain[s.start : s.end]: str(s.style) for line in lines for s in line.spans}
    assert styles[BLOCKS[1] * 2] == "$canary"
    assert all(styles.get(line.plain[5]) == "$fail" for line in lines if line.plain[5].strip())
    assert plain[1][5] == BLOCKS[8]


def test_chart_shows_a_gap_where_nothing_was_measured() -> None:
    lines = chart_lines([1.0, None, 1.0], 3, 1, 2.0)
    assert lines[0].plain[1] == "·"


def test_the_panel_puts_stable_and_canary_side_by_side_on_one_scale() -> None:
    def track(p99: float) -> TrackMetrics:
        return TrackMetrics(requests=10, request_rate=5.0, error_rate=0.0, p95_ms=p99, p99_ms=p99)

    windows = [
        MetricsWindow(ts=float(i), seconds=1.0, stable=track(90.0), canary=track(420.0)) for i in range(5)
    ]
    limits = {"p99": render.Limit("<=", 250.0)}
    lines = [line.plain for line in panel_lines(windows, limits, 60, 2)]
    title = next(line for line in lines if line.startswith("p99"))
    assert "stable 90ms" in title and "canary 420ms" in title and "limit ≤250ms" in title
    assert all(len(line) <= 60 for line in lines)
    chart = lines[lines.index(title) + 1 : lines.index(title) + 3]
    assert chart[0].lstrip().startswith("500ms")  # the scale's top is written, and it starts at 0
    assert chart[1].lstrip().startswith("0")


def test_a_short_card_gets_one_line_per_metric() -> None:
    sample = TrackMetrics(requests=10, request_rate=40.0, error_rate=0.002, p95_ms=80.0, p99_ms=90.0)
    windows = [MetricsWindow(ts=float(i), seconds=1.0, stable=sample) for i in range(30)]
    lines = [line.plain for line in panel_lines(windows, {"p99": render.Limit("<=", 250.0)}, 76, COMPACT)]
    assert len(lines) == 3 and all(len(line) <= 76 for line in lines)
    assert lines[2].startswith("p99") and "90ms" in lines[2] and lines[2].endswith("≤250ms")
    assert "—" in lines[2]  # no canary: no value, and no chart pretending to be one


# --------------------------------------------------------------------------- the timeline and the words


def test_timeline_highlights_the_current_step() -> None:
    (line,) = timeline_lines(view_at(2, Phase.PROGRESSING, activity=Activity.ANALYSING), 200)
    assert line.plain == "steps ✓ 20% → ✓ pause 5s → ● analysis → 50% → pause → promote"
    current = [line.plain[s.start : s.end] for s in line.spans if "reverse" in str(s.style)]
    assert current == ["● analysis"]
    aborted = timeline_lines(view_at(2, Phase.ABORTED), 200)[0]
    assert [aborted.plain[s.start : s.end] for s in aborted.spans if "reverse" in str(s.style)] == [
        "✗ analysis"
    ]


def test_a_short_timeline_keeps_the_current_step_in_view() -> None:
    lines = timeline_lines(view_at(3), 30, max_lines=1)
    assert len(lines) == 1 and "‖ 50%" in lines[0].plain and "…" in lines[0].plain


def test_a_timed_pause_says_paused_once() -> None:
    head = render.phase(view_at(1, activity=Activity.WAITING, paused_until=105.0), now=100.0).plain
    assert "5s left" in head and "pausing" not in head
    held = render.phase(
        view_at(4, activity=Activity.WAITING, reason="step 5/5: paused until promoted"), 0
    ).plain
    assert held.count("promoted") == 1  # "until promoted (p)" on the head line, not again below


def test_recent_measurements_show_each_verdict() -> None:
    check = CheckView(
        "success-rate",
        ">= 95",
        "%",
        Outcome.FAILED,
        (
            Measurement(1, Outcome.SUCCESSFUL, 99.9, 99.8),
            Measurement(2, Outcome.NO_DATA, None, 99.8),
            Measurement(3, Outcome.FAILED, 87.0, 99.8),
        ),
        taken=2,
        count=3,
        failed=1,
        no_data=1,
    )
    line = render.check_line(check).plain
    assert line.startswith("✗ success-rate 87.0% (needs ≥ 95%)") and "no data ×1" in line
    assert "✓99.9 ∅ ✗87.0" in render.recent_line(check, 80).plain


# --------------------------------------------------------------------------- at 80x24


async def aborted_at_80x24(app: CockpitApp, pilot) -> None:  # type: ignore[no-untyped-def]
    from tests.test_ui_snapshots import rollout

    await rollout(pilot, "1.2.0")  # production's analysis catches 1.2.0; here dev's does


@pytest.mark.asyncio
async def test_at_80x24_tabs_carry_the_phase_and_the_card_shows_the_analysis(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await aborted_at_80x24(app, pilot)
        assert app.session.view("dev").rollout.phase is Phase.ABORTED
        await pilot.press("right")  # look at staging: dev's abort must still be seen
        await wait_for(pilot, lambda: main_of(app).current == "staging", what="staging")
        tabs = main_of(app).query_one(TabbedContent)
        labels = {name: tabs.get_tab(f"tab-{name}").label.plain for name in ("dev", "staging", "production")}
        assert labels == {"dev": "✗ dev", "staging": "✓ staging", "production": "✓ production"}
        await pilot.press("left")
        await wait_for(pilot, lambda: main_of(app).current == "dev", what="dev")
        await pilot.pause(0.3)
        column = main_of(app).query_one("#env-dev", EnvColumn)
        # Phase, reason and the verdict per check fit: nothing hides below the fold.
        assert column.virtual_size.height <= column.size.height, (column.virtual_size, column.size)
        analysis = str(column.query_one("#analysis").render())
        assert "✗ success-rate" in analysis and "✗ latency-p99" in analysis
        phase = str(column.query_one("#phase").render())
        assert (
            "Aborted" in phase
            and "analysis failed (✗ below); traffic on stable 1.0.0, canary removed" in phase
        )
        assert "420ms" not in phase, "the failed values are said once, by the analysis lines"


@pytest.mark.asyncio
async def test_at_80x24_the_footer_keeps_help_history_quit_first_and_whole(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: started(app) and bool(main_of(app).query(KeyFooter)), what="start")
        await pilot.pause(0.3)
        footer = main_of(app).query_one(KeyFooter)
        keys = list(footer.query(FooterKey))
        assert [k.key for k in keys[:3]] == ["question_mark", "h", "q"]
        assert "a" in [k.key for k in keys], "abort must survive a narrow screen"
        assert all(k.region.right <= footer.region.right for k in keys), "a key cut in half"
        assert footer.hidden_keys > 0 and not footer.query(".-command-palette")
    async with make_app(make_session(tmp_path / "wide")).run_test(size=(200, 50)) as pilot:
        app2: CockpitApp = pilot.app  # type: ignore[assignment]
        await wait_for(pilot, lambda: started(app2) and bool(main_of(app2).query(KeyFooter)), what="start")
        await pilot.pause(0.3)
        footer = main_of(app2).query_one(KeyFooter)
        assert footer.hidden_keys == 0 and footer.query(".-command-palette")


def main_of(app: CockpitApp):  # type: ignore[no-untyped-def]
    assert app.main_screen is not None
    return app.main_screen


# --------------------------------------------------------------------------- blue-green


@pytest.mark.asyncio
async def test_blue_green_card_shows_active_and_preview_and_refuses_a_weight(tmp_path: Path) -> None:
    text = plan_text(envs=("dev",), protected=()).replace(PLAN_TAIL, BLUE_GREEN_TAIL)
    app = make_app(make_session(tmp_path, text))
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: started(app) and bool(main_of(app).query(KeyFooter)), what="start")
        await app.session.submit("dev", StartRollout("1.1.0"))
        dev = lambda: app.session.view("dev")  # noqa: E731
        await wait_for(pilot, lambda: dev().rollout.canary_version == "1.1.0", what="preview up")
        main = main_of(app)
        main.tick(force=True)
        await pilot.pause(0.2)
        column = main.query_one("#env-dev", EnvColumn)
        versions = str(column.query_one("#versions").render())
        assert versions.startswith("active 1.0.0") and "\npreview 1.1.0" in versions
        assert "canary" not in versions
        assert column.has_class("-blue-green") and "users → active 1.0.0" in str(
            column.query_one("#switch").render()
        )
        assert not column.query_one("#weight").display
        # "+" is greyed with the blue-green reason, and pressing it changes nothing.
        why = main.unavailable("weight")
        assert why is not None and "blue-green switches all traffic at once" in why
        assert main.check_action("weight", (10,)) is None
        weight = dev().rollout.weight
        await pilot.press("plus")
        await wait_for(
            pilot,
            lambda: any("blue-green switches" in str(n.message) for n in app._notifications),
            what="the reason",
        )
        assert dev().rollout.weight == weight == 0
        # The steps end in the switch, not in a canary promote.
        assert "switch" in str(column.query_one("#timeline").render())


# --------------------------------------------------------------------------- metrics source down


def test_a_metrics_source_that_is_down_says_when_it_is_tried_again() -> None:
    view = replace(
        view_at(0),
        metrics_error="Prometheus at http://p:9090 did not answer within 2s",
        metrics_retry_at=108.0,
    )
    text = render.trouble(view, now=100.0)
    assert text is not None and "did not answer within 2s (retry in 8s)" in text.plain
    assert EnvColumn.needs_tick(EnvColumn.__new__(EnvColumn), view)  # the countdown moves with time alone
    assert "retry in" not in render.trouble(replace(view, metrics_retry_at=None), now=100.0).plain  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_a_change_of_colour_alone_is_redrawn_on_the_card(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path, plan_text(envs=("dev",), protected=())))
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: started(app) and bool(main_of(app).query(EnvColumn)), what="start")
        column = main_of(app).query_one(EnvColumn)
        static = column.query_one("#analysis", Static)
        column._set("analysis", Content.styled("gate", "red"))
        column._set("analysis", Content.styled("gate", "green"))  # the same words, another colour
        assert static.render().spans == Content.styled("gate", "green").spans  # type: ignore[union-attr]
