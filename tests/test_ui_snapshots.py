"""SVG snapshots of the cockpit's main states and of every theme.

Deterministic by construction: the wall clock is frozen (the app's injectable clock
and ``time.time`` for the engine's timestamps), the time zone is UTC, the memory
backend's metrics are constant and its logs are event-driven, and each snapshot is
taken once the state it shows has settled. Update with ``--snapshot-update`` and
look at ``snapshot_report.html`` / the SVGs before committing them.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Footer, Input, OptionList

from cockpit.engine.controller import EnvironmentController
from cockpit.engine.state import Phase
from cockpit.ui.app import CockpitApp
from cockpit.ui.screens.confirm import ConfirmScreen
from cockpit.ui.screens.gates import GateScreen
from cockpit.ui.screens.history import HistoryScreen
from cockpit.ui.screens.summary import StartSummary
from cockpit.ui.widgets.log_pane import LogPane
from cockpit.ui.widgets.metrics import MetricsPanel
from tests.memory_backend import MemoryBackend
from tests.ui_fixtures import FIXED_NOW, SIZE, make_app, make_session, plan_text, wait_for

Step = Callable[[Pilot], Awaitable[None]]


@pytest.fixture(autouse=True)
def frozen_world(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    # Engine timestamps (journal, revisions, log lines, retry deadlines) all read time.time.
    monkeypatch.setattr(time, "time", lambda: FIXED_NOW)
    # A constant reconnect backoff, so a down column's countdown is the same every run.
    monkeypatch.setattr(EnvironmentController, "_backoff", lambda self: 600.0)
    yield
    monkeypatch.undo()
    time.tzset()


def app_for(tmp_path: Path, text: str | None = None, theme: str | None = None) -> CockpitApp:
    return make_app(make_session(tmp_path, text), clock=lambda: FIXED_NOW, theme=theme)


# The charts draw one column per metrics window (no stretching), so a snapshot waits
# until the last windows - more than the widest chart shows - measure the same: then
# the picture no longer depends on how many windows a loaded machine managed so far.
STEADY_WINDOWS = 40


def settled(app: CockpitApp, canary_envs: tuple[str, ...] = ()) -> Callable[[], bool]:
    """Every connected environment's last STEADY_WINDOWS metric windows are the same
    (the memory metrics are constant under the frozen clock once the weight stays put),
    and canaries have data."""

    def check() -> bool:
        for view in app.session.views():
            if view.backend_error is not None:
                continue
            last = [(w.seconds, w.stable, w.canary) for w in list(view.metrics)[-STEADY_WINDOWS:]]
            if len(last) < STEADY_WINDOWS or len(set(last)) != 1:
                return False
            if view.name in canary_envs and not view.metrics[-1].canary.has_data:
                return False
        return True

    return check


async def finish(pilot: Pilot) -> None:
    app: CockpitApp = pilot.app  # type: ignore[assignment]
    main = app.main_screen
    assert main is not None
    # Mounted after the first frame: wait for them, then draw the latest views now
    # rather than at the next once-a-second metrics refresh.
    await wait_for(
        pilot,
        lambda: len(main.query(MetricsPanel)) == len(app.session.views()) and bool(main.query(Footer)),
        what="metrics and footer mounted",
    )
    main.tick(force=True)
    app.clear_notifications()
    for box in app.screen.query(Input):
        box.cursor_blink = False  # a blinking cursor would make the SVG flip between runs
    await pilot.pause(0.3)


async def started(pilot: Pilot) -> None:
    app: CockpitApp = pilot.app  # type: ignore[assignment]
    await wait_for(pilot, lambda: app.session_started and settled(app)(), timeout=20, what="environments up")


async def rollout(pilot: Pilot, version: str, promote: bool = True) -> None:
    app: CockpitApp = pilot.app  # type: ignore[assignment]
    await started(pilot)
    await pilot.press("s")
    await wait_for(pilot, lambda: bool(app.screen.query(OptionList)), what="picker")
    options = app.screen.query_one(OptionList)
    options.highlighted = next(
        i for i in range(options.option_count) if options.get_option_at_index(i).id == version
    )
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, StartSummary), what="start summary")
    await pilot.press("enter")
    dev = lambda: app.session.view("dev").rollout  # noqa: E731
    await wait_for(pilot, lambda: dev().phase is Phase.PAUSED and dev().weight == 20, what="paused at 20%")
    if promote:
        await pilot.press("p")
        await wait_for(
            pilot,
            lambda: dev().phase in (Phase.ABORTED,) or (dev().phase is Phase.PAUSED and dev().weight == 50),
            what="settled",
        )
        if dev().phase is Phase.ABORTED:
            await wait_for(
                pilot,
                lambda: dev().canary_version is None and dev().activity.value == "idle",
                what="abort done",
            )
    await wait_for(pilot, settled(app, ("dev",) if dev().canary_version else ()), timeout=20, what="metrics")


def shot(snap_compare: Callable[..., bool], app: CockpitApp, *steps: Step) -> bool:
    async def run_before(pilot: Pilot) -> None:
        for step in steps:
            await step(pilot)
        await finish(pilot)

    return snap_compare(app, terminal_size=SIZE, run_before=run_before)


# --------------------------------------------------------------------------- main states


def test_healthy(snap_compare: Callable[..., bool], tmp_path: Path) -> None:
    assert shot(snap_compare, app_for(tmp_path), started)


def test_mid_canary_paused(snap_compare: Callable[..., bool], tmp_path: Path) -> None:
    assert shot(snap_compare, app_for(tmp_path), lambda p: rollout(p, "1.1.0"))


def test_aborted_by_analysis(snap_compare: Callable[..., bool], tmp_path: Path) -> None:
    assert shot(snap_compare, app_for(tmp_path), lambda p: rollout(p, "1.2.0"))


def test_backend_down(snap_compare: Callable[..., bool], tmp_path: Path) -> None:
    app = app_for(tmp_path, plan_text(down=("staging",)))

    async def down(pilot: Pilot) -> None:
        await started(pilot)
        await pilot.press("right")

    assert shot(snap_compare, app, down)


def test_protected_modal(snap_compare: Callable[..., bool], tmp_path: Path) -> None:
    app = app_for(tmp_path)

    async def modal(pilot: Pilot) -> None:
        await started(pilot)
        await pilot.press("right", "right", "s")
        await wait_for(pilot, lambda: bool(app.screen.query(OptionList)), what="picker")
        await pilot.press("down", "enter")  # 1.1.0
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="modal")
        await pilot.press(*"prod", "tab", *"INC-42 ship the fix", "enter")  # wrong name: the modal says so

    assert shot(snap_compare, app, modal)


def test_history(snap_compare: Callable[..., bool], tmp_path: Path) -> None:
    app = app_for(tmp_path)

    async def history(pilot: Pilot) -> None:
        await rollout(pilot, "1.1.0", promote=False)
        await pilot.press("a")
        await wait_for(pilot, lambda: app.session.view("dev").rollout.phase is Phase.ABORTED, what="aborted")
        await pilot.press("h")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen), what="history")

    assert shot(snap_compare, app, history)


def test_log_filter(snap_compare: Callable[..., bool], tmp_path: Path) -> None:
    app = app_for(tmp_path)

    async def logs(pilot: Pilot) -> None:
        await started(pilot)
        backend = app.session.controller("dev").backend
        assert isinstance(backend, MemoryBackend)
        for i in range(40):
            status = 500 if i % 7 == 0 else 200
            level = "error" if status == 500 else "info"
            path = "/api/checkout" if i % 2 else "/api/orders"
            backend.emit(
                f'{{"ts": {FIXED_NOW}, "level": "{level}", "msg": "request", "path": "{path}",'
                f' "status": {status}, "duration_ms": {3 + i % 5}}}'
            )
        backend.emit("plain text line: WARNING disk 91% full")
        pane = app.screen.query_one(LogPane)
        await wait_for(pilot, lambda: pane.views[0].line_count >= 42, what="lines")
        await pilot.press("slash", *"/checkout|WARN/")

    assert shot(snap_compare, app, logs)


# --------------------------------------------------------------------------- themes


@pytest.mark.parametrize("theme", ["light", "high-contrast"])
def test_theme(snap_compare: Callable[..., bool], tmp_path: Path, theme: str) -> None:
    assert shot(snap_compare, app_for(tmp_path, theme=theme), lambda p: rollout(p, "1.1.0"))


# --------------------------------------------------------------------------- the gate view (g)


def test_gates_after_an_abort_at_80x24(snap_compare: Callable[..., bool], tmp_path: Path) -> None:
    """dev's analysis failed 1.2.0: the latency gate, its number against the limit, the chart."""
    app = app_for(tmp_path)

    async def gates(pilot: Pilot) -> None:
        await rollout(pilot, "1.2.0")
        await finish(pilot)
        await pilot.press("g")
        await wait_for(pilot, lambda: isinstance(app.screen, GateScreen), what="the gate view")
        screen = app.screen
        assert isinstance(screen, GateScreen)
        if screen.selected != "latency-p99":
            await pilot.press("right")
        await wait_for(pilot, lambda: screen.selected == "latency-p99", what="the latency gate")

    assert snap_compare(app, terminal_size=(80, 24), run_before=gates)


def test_gates_relative_limit_and_query(snap_compare: Callable[..., bool], tmp_path: Path) -> None:
    """A gate relative to stable (its limit moving with stable), the query shown, and the
    metrics source down with its retry - as the engine reports them, in staging's state."""
    from tests.test_ui_gates import inject, relative_analysis, source_down

    app = app_for(tmp_path)

    async def gates(pilot: Pilot) -> None:
        await started(pilot)
        inject(app, "staging", relative_analysis())
        source_down(app, "staging", "prometheus at http://127.0.0.1:9090: connection refused", FIXED_NOW + 8)
        await finish(pilot)
        await pilot.press("right", "g")
        await wait_for(pilot, lambda: isinstance(app.screen, GateScreen), what="the gate view")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "histogram_quantile" in str(app.screen.query_one("#gate-query").render()))

    assert shot(snap_compare, app, gates)
