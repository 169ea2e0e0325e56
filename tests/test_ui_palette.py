"""The command palette: Enter acts on the current query's result, never on an older list;
destructive entries meet the same confirmation as their keys; only the cockpit's entries."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.command import CommandInput, CommandList
from textual.pilot import Pilot

from cockpit.engine.state import Phase
from cockpit.ui.app import CockpitApp
from cockpit.ui.keys import ACTIONS
from cockpit.ui.screens.confirm import ConfirmScreen
from cockpit.ui.screens.palette import CockpitPalette
from tests.test_ui_quit import start
from tests.ui_fixtures import SIZE, make_app, make_session, started, wait_for

pytestmark = pytest.mark.asyncio


def messages(app: CockpitApp) -> list[str]:
    return [n.message for n in app._notifications]


async def open_palette(pilot: Pilot, app: CockpitApp) -> CockpitPalette:
    await pilot.press("ctrl+p")
    await wait_for(pilot, lambda: isinstance(app.screen, CockpitPalette), what="palette")
    palette = app.screen
    assert isinstance(palette, CockpitPalette)
    return palette


def listed(palette: CockpitPalette) -> list[str]:
    commands = palette.query_one(CommandList)
    return [str(commands.get_option_at_index(i).prompt) for i in range(commands.option_count)]


async def change_and_enter(palette: CockpitPalette, query: str) -> None:
    """A new query and Enter with nothing in between, as a fast typist or a pasted burst
    delivers them: the palette gets Input.Changed then Input.Submitted back to back, and
    the new query's results are not in yet. (Pilot's press waits for the app to go idle
    after each key, which lets the results settle and hides the race.)"""
    box = palette.query_one(CommandInput)
    box.value = ""
    box.value = query
    await box.action_submit()


async def settle(pilot: Pilot, palette: CockpitPalette, query: str) -> None:
    await wait_for(
        pilot, lambda: palette._listed_for == query and bool(listed(palette)), what=f"results of {query!r}"
    )


async def test_enter_right_after_a_query_change_runs_the_new_query_not_the_old_list(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        await start(pilot, app, "dev")  # dev paused at 20 %: full promote and abort would both run
        palette = await open_palette(pilot, app)
        await pilot.press(*"Full promote")
        await settle(pilot, palette, "Full promote")
        assert listed(palette)[0].startswith("Full promote")  # highlighted, the old list

        # Clear the query and type another, Enter straight after: the old list ("Full promote" highlighted) is still on screen while the
        # new query's results are gathered.
        await change_and_enter(palette, "Next theme")
        await wait_for(pilot, lambda: not isinstance(app.screen, CockpitPalette), what="palette closed")
        await pilot.pause(0.3)
        assert "promote_canary" not in app.session.controller("dev").backend.calls  # type: ignore[attr-defined]
        dev = app.session.view("dev").rollout
        assert dev.phase is Phase.PAUSED and dev.weight == 20  # not fully promoted, not aborted
        await wait_for(
            pilot,
            lambda: any(m.startswith("theme: ") for m in messages(app)),
            what="the new query's result ran",
        )


async def test_enter_while_the_old_list_is_highlighted_never_runs_it(tmp_path: Path) -> None:
    """The same race on a shorter query: the old list's top entry is Abort."""
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        await start(pilot, app, "dev")
        palette = await open_palette(pilot, app)
        await pilot.press(*"Abort")
        await settle(pilot, palette, "Abort")
        assert listed(palette)[0].startswith("Abort")
        await change_and_enter(palette, "The journal")
        await wait_for(pilot, lambda: not isinstance(app.screen, CockpitPalette), what="palette closed")
        await pilot.pause(0.3)
        assert app.session.view("dev").rollout.phase is Phase.PAUSED  # no abort
        await wait_for(pilot, lambda: type(app.screen).__name__ == "HistoryScreen", what="history opened")


async def test_a_held_enter_is_dropped_when_the_query_changes_again(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        palette = await open_palette(pilot, app)
        palette.query_one(CommandInput).value = "Abort"
        palette._select_or_command()  # Enter before "Abort" has results: held for "Abort"
        assert palette._enter_for == "Abort"
        palette.query_one(CommandInput).value = "Abo"  # still typing: the held Enter goes
        await settle(pilot, palette, "Abo")
        await asyncio.sleep(0.2)
        assert isinstance(app.screen, CockpitPalette) and palette._enter_for is None


async def test_enter_after_results_settle_runs_the_highlighted_current_result(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        palette = await open_palette(pilot, app)
        await pilot.press(*"Promote past")
        await settle(pilot, palette, "Promote past")
        await pilot.press("enter")
        await wait_for(
            pilot, lambda: any("nothing is paused" in m for m in messages(app)), what="promote refused"
        )


async def test_destructive_palette_entries_open_the_same_confirmation_as_their_keys(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        await pilot.press("right", "right")  # production, protected
        await start(pilot, app, "production", reason="ticket 7")
        for query in ("Abort", "Full promote", "Promote past"):
            palette = await open_palette(pilot, app)
            await pilot.press(*query)
            await settle(pilot, palette, query)
            assert "on production (protected)" in listed(palette)[0]
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what=f"{query}: confirm")
            assert app.screen.env == "production"  # type: ignore[attr-defined]
            await pilot.press("escape")  # cancelled: nothing happens
            await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen), what="cancelled")
        production = app.session.view("production").rollout
        assert production.phase is Phase.PAUSED and production.weight == 20


async def test_only_the_cockpits_entries_are_listed(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        palette = await open_palette(pilot, app)
        await settle(pilot, palette, "")
        entries = [line.split("\n")[0] for line in listed(palette)]
        assert sorted(entries) == sorted(spec.help for spec in ACTIONS)
        for textual_own in ("Theme", "Screenshot", "Keys", "Maximize", "Quit"):
            assert textual_own not in entries
