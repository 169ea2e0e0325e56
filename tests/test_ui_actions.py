"""Every action path of the cockpit screen, driven through Textual's Pilot against
a real Session on the deterministic in-memory backend (machine driver: the cockpit
walks the steps) and on the in-memory platform (mirror driver: the platform walks them)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.command import CommandPalette
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, OptionList, TabbedContent

import tests.ui_fixtures
from cockpit.adapters.memory_platform import MemoryPlatform
from cockpit.engine.state import Phase
from cockpit.ui.app import CockpitApp
from cockpit.ui.config import load_config
from cockpit.ui.screens.confirm import ConfirmScreen
from cockpit.ui.screens.history import HistoryScreen
from cockpit.ui.screens.info import HelpScreen
from cockpit.ui.screens.main import MainScreen
from cockpit.ui.screens.migrations import MigrationsScreen
from cockpit.ui.screens.pickers import RevisionPicker, VersionPicker
from cockpit.ui.screens.summary import StartSummary
from cockpit.ui.themes import load_themes
from cockpit.ui.widgets.env_column import EnvColumn
from cockpit.ui.widgets.log_pane import LogPane
from cockpit.ui.widgets.weight_bar import WeightBar
from tests.memory_backend import MemoryBackend
from tests.ui_fixtures import SIZE, make_app, make_session, plan_text, started, wait_for

pytestmark = pytest.mark.asyncio

# Tests that run on the machine driver only, and why. Every other test runs on both drivers.
MACHINE_ONLY = {
    # A hung deploy_canary is a step the cockpit runs under the environment's lock; on a platform
    # the deploy is the platform's own work and the command returns at once. The mirror's hung
    # platform call is tested in tests/test_mirror_driver.py.
    "test_hung_backend_call_keeps_keys_and_other_columns_live": "the cockpit runs the deploy",
    "test_quit_with_a_hung_backend_leaves_on_second_q": "the cockpit runs the deploy",
    # No session runs: nothing for a driver to do.
    "test_broken_config_and_theme_fall_back_with_one_problem_each": "no session",
    "test_broken_theme_reported_once_and_default_used": "no session",
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    drivers = ["machine"] if metafunc.function.__name__ in MACHINE_ONLY else ["machine", "mirror"]
    metafunc.parametrize("driver", drivers, indirect=True)


@pytest.fixture(autouse=True)
def driver(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The plan's environments run on this driver's in-memory backend."""
    monkeypatch.setattr(tests.ui_fixtures, "DRIVER", request.param)
    return request.param


def messages(app: CockpitApp) -> list[str]:
    return [n.message for n in app._notifications]


def backend(app: CockpitApp, env: str) -> MemoryBackend | MemoryPlatform:
    """The environment's in-memory backend; both have the same test controls."""
    b = app.session.controller(env).backend
    assert isinstance(b, MemoryBackend | MemoryPlatform)
    return b


def phase(app: CockpitApp, env: str) -> Phase:
    return app.session.view(env).rollout.phase


async def start_rollout(pilot: Pilot, app: CockpitApp, env: str = "dev", version: str = "1.1.0") -> None:
    await pilot.press("s")
    await wait_for(pilot, lambda: isinstance(app.screen, VersionPicker), what="version picker")
    options = app.screen.query_one(OptionList)
    options.highlighted = next(
        i for i in range(options.option_count) if options.get_option_at_index(i).id == version
    )
    await pilot.press("enter")
    if app.session.view(env).protected:
        return  # the typed confirmation shows the summary
    await wait_for(pilot, lambda: isinstance(app.screen, StartSummary), what="start summary")
    await pilot.press("enter")
    await wait_for(
        pilot,
        lambda: phase(app, env) is Phase.PAUSED and app.session.view(env).rollout.weight == 20,
        what=f"{env} paused at 20%",
    )


# --------------------------------------------------------------------------- rollout actions


async def test_start_pick_version_then_weight_promote_and_full_promote(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        await start_rollout(pilot, app)
        dev = app.session.view("dev")
        assert dev.rollout.canary_version == "1.1.0"
        column = app.screen.query_one("#env-dev", EnvColumn)
        assert "canary 1.1.0" in str(column.query_one("#versions").render())

        await pilot.press("plus")
        await wait_for(pilot, lambda: app.session.view("dev").rollout.weight == 30, what="weight 30")
        await pilot.press("minus")
        await wait_for(pilot, lambda: app.session.view("dev").rollout.weight == 20, what="weight 20")

        await pilot.press("p")  # past the pause: analysis (passes for 1.1.0), weight 50, pause
        await wait_for(
            pilot,
            lambda: app.session.view("dev").rollout.weight == 50 and phase(app, "dev") is Phase.PAUSED,
            what="paused at 50%",
        )
        analysis = app.session.view("dev").rollout.analysis
        assert analysis is not None and analysis.outcome.value == "Successful"
        text = str(column.query_one("#analysis").render())
        assert "success-rate" in text and "(needs ≥ 95%)" in text and "stable 99.8%" in text

        await pilot.press("P")
        await wait_for(pilot, lambda: phase(app, "dev") is Phase.HEALTHY, what="healthy after full promote")
        rollout = app.session.view("dev").rollout
        assert rollout.stable_version == "1.1.0" and rollout.revision == 2
        assert backend(app, "dev").calls.count("promote_canary") == 1


async def test_abort_retry_and_refusals(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        await pilot.press("p")  # nothing paused on a healthy env: refused, shown
        await wait_for(pilot, lambda: any("nothing is paused" in m for m in messages(app)), what="refusal")
        await pilot.press("plus")
        await wait_for(
            pilot,
            lambda: any("weight can be changed while a rollout is paused" in m for m in messages(app)),
            what="weight refusal",
        )
        await start_rollout(pilot, app)
        await pilot.press("a")
        await wait_for(
            pilot,
            lambda: (
                phase(app, "dev") is Phase.ABORTED and app.session.view("dev").rollout.canary_version is None
            ),
            what="aborted",
        )
        assert backend(app, "dev").weight == 0
        await pilot.press("R")
        await wait_for(
            pilot,
            lambda: phase(app, "dev") is Phase.PAUSED and app.session.view("dev").rollout.weight == 20,
            what="retried",
        )
        records = app.session.journal.records(service="shop", env="dev")
        assert [r.action for r in records if r.outcome == "ok"][-3:] == ["rollout", "abort", "retry"]


async def test_rollback_picker_lists_revisions_newest_first(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        await pilot.press("r")  # only revision 1: refused before any picker opens
        await wait_for(pilot, lambda: any("no earlier revision" in m for m in messages(app)), what="refusal")
        await start_rollout(pilot, app)
        await pilot.press("r")  # in a rollout: the engine's rule is shown
        await wait_for(pilot, lambda: any("abort it first" in m for m in messages(app)), what="refusal")
        await pilot.press("P")
        await wait_for(pilot, lambda: phase(app, "dev") is Phase.HEALTHY, what="promoted")
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, RevisionPicker), what="revision picker")
        options = app.screen.query_one(OptionList)
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        assert ids == ["2", "1"]
        assert app.screen.blocked == {"2": "revision 2 is the one running now"}  # listed, not pickable
        assert options.highlighted == 1
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: (
                app.session.view("dev").rollout.stable_version == "1.0.0"
                and app.session.view("dev").rollout.revision == 3
            ),
            what="rolled back",
        )
        assert backend(app, "dev").stable == "1.0.0"


async def test_escape_in_pickers_does_nothing(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, VersionPicker), what="picker")
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        assert phase(app, "dev") is Phase.HEALTHY


# --------------------------------------------------------------------------- protected environments


async def test_protected_modal_wrong_name_escape_and_confirm(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        await pilot.press("right", "right")
        assert app.screen.current == "production"
        await start_rollout(pilot, app, "production")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm modal")
        modal = app.screen
        await pilot.press(*"prod", "tab", *"hotfix", "enter")  # wrong name: refused in place
        await pilot.pause()
        assert app.screen is modal
        assert "type 'production' exactly" in str(modal.query_one("#problem").render())
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        assert phase(app, "production") is Phase.HEALTHY
        ok = [
            r for r in app.session.journal.records(service="shop", env="production") if r.action == "rollout"
        ]
        assert ok == []

        await start_rollout(pilot, app, "production")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm modal")
        app.screen.query_one("#name", Input).value = "production"
        app.screen.query_one("#reason", Input).value = "[INC-42] ship the fix"  # brackets: not markup
        await pilot.click("#confirm")
        await wait_for(pilot, lambda: phase(app, "production") is Phase.PAUSED, what="production paused")
        rollout = [
            r
            for r in app.session.journal.records(service="shop", env="production")
            if r.action == "rollout" and r.outcome == "ok"
        ]
        assert (
            len(rollout) == 1 and rollout[0].reason == "[INC-42] ship the fix" and rollout[0].user == "alice"
        )

        await pilot.press("plus")  # weight on a protected env asks too; Escape has no effect
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm weight")
        await pilot.press("escape")
        await pilot.pause()
        assert app.session.view("production").rollout.weight == 20
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm abort")
        await pilot.press(*"production", "enter", *"canary looks slow", "enter")
        await wait_for(pilot, lambda: phase(app, "production") is Phase.ABORTED, what="aborted")
        abort = [
            r for r in app.session.journal.records(service="shop", env="production") if r.action == "abort"
        ]
        assert abort[-1].outcome == "ok" and abort[-1].reason == "canary looks slow"


# --------------------------------------------------------------------------- screens


async def test_history_help_migrations_and_theme(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        await start_rollout(pilot, app)
        await pilot.press("h")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen), what="history")
        table = app.screen.query_one(DataTable)
        all_rows = table.row_count
        assert all_rows >= 4  # three "initial" records and the rollout
        await pilot.press(*"rollout")
        await wait_for(
            pilot, lambda: 0 < app.screen.query_one(DataTable).row_count < all_rows, what="filtered"
        )
        assert "rollout" in str(app.screen.query_one(DataTable).get_row_at(0))
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)

        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        assert "Promote past the current pause" in str(app.screen.query_one("#body").render())
        await pilot.press("escape")
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, MigrationsScreen), what="migrations")
        assert "no [[migrations]] in this plan" in str(app.screen.query_one("#migr-rows").render())
        await pilot.press("escape")
        await pilot.pause()

        assert app.theme == "dark"
        await pilot.press("t")
        assert app.theme == "light"
        await pilot.press("t")
        assert app.theme == "high-contrast"
        await pilot.press("t")
        assert app.theme == "dark"


async def test_log_filter_follow_and_bad_regex(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        dev = backend(app, "dev")
        for i in range(300):
            dev.emit(
                f'{{"ts": 1.0, "level": "{"error" if i % 10 == 0 else "info"}", "msg": "request",'
                f' "path": "/api/orders/{i}", "status": {500 if i % 10 == 0 else 200}, "duration_ms": 3.2}}'
            )
        pane = app.screen.query_one(LogPane)
        await wait_for(pilot, lambda: pane.views[0].line_count >= 301, what="lines indexed")
        view = pane.views[0]
        assert view.following
        assert "request /api/orders/299 200 3ms" in view.line_text(view.line_count - 1)

        await pilot.press("slash")
        await pilot.press(*'/status": 5/', "enter")
        await wait_for(pilot, lambda: pane.views[0].line_count == 30, what="regex filter")
        assert "500" in pane.views[0].line_text(0) and "ERROR" in pane.views[0].line_text(0)

        await pilot.press("slash")
        box = pane.query_one("#log-filter", Input)
        box.value = "/[unclosed/"
        await pilot.pause()
        assert pane.filter_error and "bad regex" in pane.filter_error
        assert pane.filter is not None and pane.filter.text == '/status": 5/'  # previous filter kept
        assert "bad regex" in str(pane.query_one("#log-status").render())
        box.value = ""
        await pilot.press("enter")
        await wait_for(pilot, lambda: pane.views[0].line_count >= 301, what="filter cleared")

        await pilot.press("pageup")
        await pilot.pause()
        assert not pane.views[0].following
        for i in range(5):
            dev.emit(f"more {i}")
        await wait_for(pilot, lambda: pane.views[0].new_lines == 5, what="new lines counted")
        assert "5 new lines" in str(pane.query_one("#log-status").render())
        await pilot.press("end")
        await pilot.pause()
        assert pane.views[0].following and pane.views[0].new_lines == 0


async def test_log_modes_and_dropped_counter(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        pane = app.screen.query_one(LogPane)
        backend(app, "staging").emit("hello from staging")
        await pilot.press("l")  # merged
        await wait_for(pilot, lambda: pane.mode == "merged" and len(pane.views) == 1, what="merged")
        await wait_for(
            pilot,
            lambda: any("staging" in pane.views[0].line_text(i) for i in range(pane.views[0].line_count)),
            what="merged has staging",
        )
        await pilot.press("l")
        await wait_for(pilot, lambda: pane.mode == "split" and len(pane.views) == 3, what="split")
        await pilot.press("l")
        await wait_for(pilot, lambda: pane.mode == "hidden" and not pane.display, what="hidden")
        await pilot.press("l")
        await wait_for(pilot, lambda: pane.mode == "focused", what="focused")

        dev = backend(app, "dev")
        for i in range(2500):  # fixture capacity is 2000 lines per environment
            dev.emit(f"line {i}")
        await wait_for(pilot, lambda: pane.views[0].dropped >= 500, what="dropped")
        await pilot.pause(0.15)
        assert "dropped" in str(pane.query_one("#log-status").render())
        assert pane.views[0].line_count <= 2000


# --------------------------------------------------------------------------- resilience


async def test_backend_down_column_and_recovery(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path, plan_text(down=("staging",))))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.session_started, what="session start")
        column = app.screen.query_one("#env-staging", EnvColumn)
        await wait_for(pilot, lambda: column.has_class("-down"), what="down column")
        trouble = str(column.query_one("#trouble").render())
        assert "not connected" in trouble and "retry in" in trouble and "connection refused" in trouble
        assert any("staging" in (n.title or "") for n in app._notifications)
        await pilot.press("right", "s")  # acting on it is refused, not a crash
        await wait_for(pilot, lambda: any("not connected" in m for m in messages(app)), what="refusal")
        backend(app, "staging").down = False  # the engine keeps trying; the column comes back
        await wait_for(
            pilot,
            lambda: not column.has_class("-down") and app.session.view("staging").up,
            timeout=8,
            what="staging connected",
        )

        dev = backend(app, "dev")  # a backend that goes down mid-run shows a retry countdown
        dev.down = True
        dev_column = app.screen.query_one("#env-dev", EnvColumn)
        await wait_for(pilot, lambda: dev_column.has_class("-down"), what="dev down")
        trouble = str(dev_column.query_one("#trouble").render())
        assert "backend down" in trouble and "retry in" in trouble and "connection refused" in trouble
        dev.down = False
        await wait_for(pilot, lambda: not dev_column.has_class("-down"), timeout=8, what="dev back")


async def test_hung_backend_call_keeps_keys_and_other_columns_live(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        dev = backend(app, "dev")
        dev.hang("deploy_canary")
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, VersionPicker), what="picker")
        options = app.screen.query_one(OptionList)
        options.highlighted = 1  # 1.1.0
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, StartSummary), what="start summary")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "dev" in app.intents.pending, what="dev busy")
        dev_column = app.screen.query_one("#env-dev", EnvColumn)
        await wait_for(pilot, lambda: dev_column.has_class("-busy"), what="busy shown")

        await pilot.press("right")  # keys still work; staging rolls out while dev hangs
        assert app.screen.current == "staging"
        await start_rollout(pilot, app, "staging")
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="help while hung")
        await pilot.press("escape")
        seq = app.session.view("staging").seq
        await wait_for(
            pilot,
            lambda: app.screen.query_one("#env-staging", EnvColumn).shown_seq > seq,
            what="staging column refreshing",
        )
        assert "dev" in app.intents.pending

        dev.release()
        await wait_for(pilot, lambda: phase(app, "dev") is Phase.PAUSED, what="dev continues")
        await wait_for(pilot, lambda: not dev_column.has_class("-busy"), what="busy cleared")


async def test_quit_closes_the_session(tmp_path: Path) -> None:
    session = make_session(tmp_path)
    app = make_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        await pilot.press("q")
        await wait_for(pilot, lambda: app.session_closed, what="closed")
    assert all("close" in backend(app, env).calls for env in ("dev", "staging", "production"))


# --------------------------------------------------------------------------- layout, mouse, config


async def test_narrow_terminal_uses_tabs(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        await wait_for(pilot, lambda: bool(app.screen.query(TabbedContent)), what="tabs")
        tabs = app.screen.query_one(TabbedContent)
        assert tabs.active == "tab-dev"
        await pilot.press("right")
        await wait_for(pilot, lambda: tabs.active == "tab-staging", what="tab moved")
        await pilot.press("p")  # actions follow the selected tab
        await wait_for(pilot, lambda: any("staging is Healthy" in m for m in messages(app)), what="refusal")
        await pilot.resize_terminal(*SIZE)  # wide again: columns side by side, selection kept
        await wait_for(pilot, lambda: not app.screen.query(TabbedContent), what="columns")
        await wait_for(
            pilot,
            lambda: app.screen.query_one("#env-staging", EnvColumn).is_current,
            what="staging still selected",
        )
        assert app.screen.query_one("#env-dev", EnvColumn).region.width == SIZE[0] // 3


async def test_weight_bar_drag_sets_weight(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        await start_rollout(pilot, app)
        bar = app.screen.query_one("#env-dev", EnvColumn).query_one(WeightBar)
        x = next(x for x in range(bar.size.width) if bar.weight_at(x) == 60)
        await pilot.click(bar, offset=(x, 0))
        await wait_for(pilot, lambda: app.session.view("dev").rollout.weight == 60, what="weight 60")


async def test_keys_remapped_from_config(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path), keys={"promote": "o", "abort": "x"})
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        await start_rollout(pilot, app)
        await pilot.press("x")
        await wait_for(pilot, lambda: phase(app, "dev") is Phase.ABORTED, what="aborted by x")
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert (
            "Promote past the current pause" in titles
            and "Abort: all traffic back to stable, canary removed" in titles
        )


async def test_broken_config_and_theme_fall_back_with_one_problem_each(tmp_path: Path) -> None:
    bad = tmp_path / "config.toml"
    bad.write_text('theme = "dark"\n[keys]\npromot = "p"\n')
    config, problems = load_config(bad)
    assert config.keys == {} and len(problems) == 1 and "promot" in problems[0]
    bad.write_text("theme = [")
    _, problems = load_config(bad)
    assert len(problems) == 1 and "not valid TOML" in problems[0]

    themes = tmp_path / "themes"
    themes.mkdir()
    (themes / "ugly.toml").write_text('primary = "not-a-colour"\n')
    (themes / "nice.toml").write_text('primary = "#112233"\n[variables]\nstable = "blue"\n')
    found, problems = load_themes([themes])
    assert "nice" in found and "ugly" not in found and "dark" in found
    assert len(problems) == 1 and "primary" in problems[0].message
    assert found["nice"].variables["stable"] == "blue" and found["nice"].variables["canary"]


async def test_broken_theme_reported_once_and_default_used(tmp_path: Path) -> None:
    themes = tmp_path / "themes"
    themes.mkdir()
    (themes / "ugly.toml").write_text('primary = "#zz"\n')
    app = CockpitApp(make_session(tmp_path), theme_name="ugly", start_session=False, theme_dirs=[themes])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.theme == "dark"
        problems = [m for m in messages(app) if "ugly" in m]
        assert len(problems) == 2  # the file's problem, and that the wanted theme is unavailable


async def test_command_palette_runs_actions(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette), what="palette")
        await pilot.press(*"Promote past")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(
            pilot, lambda: any("nothing is paused" in m for m in messages(app)), what="promote ran"
        )


async def test_quit_with_a_hung_backend_leaves_on_second_q(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        dev = backend(app, "dev")
        dev.hang("deploy_canary")
        await pilot.press("s", "enter")  # 1.2.0 on dev: its deploy never returns
        await wait_for(pilot, lambda: isinstance(app.screen, StartSummary), what="start summary")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "deploy_canary" in dev.calls, what="deploy under way")
        await pilot.press("q")  # a rollout starting: asks first (tests/test_ui_quit.py)
        await wait_for(pilot, lambda: type(app.screen).__name__ == "QuitScreen", what="quit confirmation")
        await pilot.press("y")  # closing waits for the hung deploy (the environment's lock)...
        await pilot.pause(0.3)
        assert app.is_running and not app.session_closed
        await pilot.press("q")  # ...a second q leaves at once
        await wait_for(pilot, lambda: not app.is_running, what="exit")
