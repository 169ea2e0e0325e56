"""Quitting: a confirmation naming what is in flight (none when idle), the same path for
q, ctrl+q and the palette's Quit, and a summary for the terminal once the app has left."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, OptionList, Static

from cockpit.engine.state import Phase
from cockpit.engine.store import SQLiteStore
from cockpit.ui.app import CockpitApp
from cockpit.ui.screens.confirm import ConfirmScreen
from cockpit.ui.screens.pickers import VersionPicker
from cockpit.ui.screens.quit import QuitScreen
from cockpit.ui.screens.summary import StartSummary
from tests.ui_fixtures import SIZE, make_app, make_session, started, wait_for

pytestmark = pytest.mark.asyncio


async def start(pilot, app: CockpitApp, env: str, version: str = "1.1.0", reason: str = "") -> None:
    """Start a rollout of ``version`` on ``env`` (focused) with its key, through the modal
    when ``env`` is protected; wait until it pauses at 20 %."""
    await pilot.press("s")
    await wait_for(pilot, lambda: isinstance(app.screen, VersionPicker), what="version picker")
    options = app.screen.query_one(OptionList)
    options.highlighted = next(
        i for i in range(options.option_count) if options.get_option_at_index(i).id == version
    )
    await pilot.press("enter")
    if not reason:  # unprotected: the summary of what the rollout will do, one Enter to start
        await wait_for(pilot, lambda: isinstance(app.screen, StartSummary), what="start summary")
        await pilot.press("enter")
    if reason:
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
        app.screen.query_one("#name", Input).value = env
        app.screen.query_one("#reason", Input).value = reason
        app.screen.query_one("#confirm").press()
    await wait_for(
        pilot,
        lambda: (
            app.session.view(env).rollout.phase is Phase.PAUSED and app.session.view(env).rollout.weight == 20
        ),
        what=f"{env} paused at 20%",
    )


def dialog_text(app: CockpitApp) -> str:
    return "\n".join(str(s.render()) for s in app.screen.query(Static))


async def test_quit_mid_rollout_asks_naming_what_is_in_flight_and_stays_on_escape(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        await start(pilot, app, "dev")
        await pilot.press("right", "right")  # production
        await start(pilot, app, "production", reason="ticket 7")

        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen), what="quit confirmation")
        text = dialog_text(app)
        assert "2 rollouts in flight" in text
        assert "dev: 1.1.0 at 20% canary, Paused" in text
        assert "production (protected): 1.1.0 at 20% canary, Paused" in text
        assert "staging" not in text  # idle: not in flight
        assert "left as it is on the platform (20% canary)" in text  # the memory backend owns nothing

        await pilot.press("q")  # a second q does not confirm: only y does
        await pilot.press("enter")  # Enter stays (the Stay button has the focus)
        await wait_for(pilot, lambda: not isinstance(app.screen, QuitScreen), what="stayed")
        assert app.is_running and not app._quitting
        assert all("close" not in app.session.controller(e).backend.calls for e in ("dev", "production"))

        await pilot.press("ctrl+q")  # the same question through ctrl+q
        await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen), what="asked again")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, QuitScreen), what="stayed again")
        assert app.is_running and not app.session_closed


async def test_confirmed_quit_stops_journals_and_leaves_a_summary(tmp_path: Path) -> None:
    session = make_session(tmp_path)
    app = make_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        await pilot.press("right", "right")
        await start(pilot, app, "production", reason="ticket 7")
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen), what="quit confirmation")
        await pilot.press("y")
        await wait_for(pilot, lambda: app.session_closed, what="closed")
    summary = "\n".join(app.exit_summary)
    assert "in flight when you quit (1):" in summary
    assert "production (protected): 1.1.0 at 20% canary, Paused" in summary
    assert "left as they were (the platform runs them): dev, staging" in summary
    journal = SQLiteStore(session.journal.path, read_only=True)  # type: ignore[attr-defined]  # the session's is closed
    quits = [r for r in journal.records(text="quit during") if r.action == "quit"]
    assert [(r.env, r.user) for r in quits] == [("production", "alice")]


async def test_quit_when_idle_asks_nothing(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        await pilot.press("q")
        await wait_for(pilot, lambda: app.session_closed, what="closed at once")
        assert not isinstance(app.screen, QuitScreen)
    assert app.exit_summary[1] == "nothing was in flight"


async def test_palette_quit_goes_through_the_same_confirmation(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        await start(pilot, app, "dev")
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "CockpitPalette", what="palette")
        await pilot.press(*"Quit")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen), what="palette quit asks")
        assert "dev: 1.1.0 at 20% canary, Paused" in dialog_text(app)
        await pilot.press("escape")
        assert app.is_running and not app._quitting


async def test_a_hung_action_counts_as_in_flight_and_a_second_q_leaves_at_once(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        dev = app.session.controller("dev").backend
        dev.hang("deploy_canary")  # type: ignore[attr-defined]
        await pilot.press("s", "enter")  # its deploy never returns
        await wait_for(pilot, lambda: isinstance(app.screen, StartSummary), what="start summary")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "deploy_canary" in dev.calls, what="deploy under way")  # type: ignore[attr-defined]
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen), what="asked")
        assert "under way: start a rollout of" in dialog_text(app)
        await pilot.press("y")  # closing waits for the hung deploy (the environment's lock)...
        await pilot.pause(0.3)
        assert app.is_running and not app.session_closed
        await pilot.press("q")  # ...a second q leaves at once
        await wait_for(pilot, lambda: not app.is_running, what="exit")
    assert any("stopping was cut short" in line or "left as they were" in line for line in app.exit_summary)
    assert "in flight when you quit (1):" in app.exit_summary


async def test_an_action_the_platform_has_not_answered_is_in_flight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the mirror driver a start is forwarded to the platform, and nothing changes in the
    state until it answers: the action sent is what is in flight."""
    import tests.ui_fixtures

    monkeypatch.setattr(tests.ui_fixtures, "DRIVER", "mirror")
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        dev = app.session.controller("dev").backend
        dev.hang("send")  # type: ignore[attr-defined]
        await pilot.press("s", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, StartSummary), what="start summary")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "dev" in app.intents.pending, what="start sent")
        assert app.session.in_flight() == []  # the engine has seen nothing move yet
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen), what="asked")
        assert "dev: " in dialog_text(app) and "under way: start a rollout of" in dialog_text(app)
        await pilot.press("escape")
        dev.release()  # type: ignore[attr-defined]
