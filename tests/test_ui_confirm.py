"""The protected-action modal under fast typing: keys typed right behind an Enter must land
in the field the Enter moved to (found by the tmux end-to-end run on a loaded machine)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from textual import events
from textual.app import App
from textual.widgets import Input

from cockpit.engine.commands import Abort, Command, Pause, Promote, SetWeight
from cockpit.engine.state import Phase
from cockpit.ui.screens.confirm import ConfirmScreen
from cockpit.ui.screens.modal import EnvSnapshot


class ModalHost(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.result: list[str | None] = []

    def get_theme_variable_defaults(self) -> dict[str, str]:
        # The cockpit's themes define these; a bare App needs them for the modal's CSS.
        return {"fail": "red", "warn": "yellow", "ok": "green"}

    def on_mount(self) -> None:
        # No cockpit here to watch: this tests the keys alone.
        self.push_screen(ConfirmScreen("production", "start a rollout of 1.2.0", watch=False), self.result.append)


def burst(app: App[None], text: str) -> None:
    """Queue keys at once, as a terminal delivers them, without waiting for the app between keys
    (Pilot.press waits for idle after each key, which hides the race)."""
    for ch in text:
        key = "enter" if ch == "\r" else ch
        app.screen.post_message(events.Key(key, None if ch == "\r" else ch))


@pytest.mark.asyncio
async def test_keys_typed_behind_enter_land_in_the_reason_field() -> None:
    app = ModalHost()
    async with app.run_test() as pilot:
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        burst(app, "production\re2e: ship it")
        await pilot.pause()
        assert app.screen.query_one("#name", Input).value == "production"
        assert app.screen.query_one("#reason", Input).value == "e2e: ship it"
        burst(app, "\r")
        await pilot.pause()
        assert app.result == ["e2e: ship it"]


@pytest.mark.asyncio
async def test_enter_on_a_button_presses_that_button() -> None:
    app = ModalHost()
    async with app.run_test() as pilot:
        await pilot.pause()
        screen = app.screen
        screen.set_focus(screen.query_one("#cancel"))
        await pilot.press("enter")
        await pilot.pause()
        assert app.result == [None]  # Cancel, not Confirm


# --------------------------------------------------------------------------- which changes stop a confirmation

PAUSED = EnvSnapshot(Phase.PAUSED, "2/5", 20, 3, "1.1.0", "1.1.0", "1.0.0")
MOVED_ON = replace(PAUSED, phase=Phase.PROGRESSING, step="4/5", weight=50)  # the same rollout, further
ABORTED = replace(PAUSED, phase=Phase.ABORTED, step="2/5", weight=0, epoch=4, canary=None)


def test_what_changed_is_said_in_words() -> None:
    assert PAUSED.changes_to(PAUSED) == []
    assert PAUSED.changes_to(ABORTED) == [
        "phase Paused → Aborted",
        "the rollout of 1.1.0 ended or was restarted",
        "weight 20% → 0%",
        "canary 1.1.0 → —",
    ]


@pytest.mark.parametrize(
    ("command", "moved_on_blocks", "aborted_blocks"),
    [
        (SetWeight(30), True, True),  # decided on 20 %: any change and it is a different decision
        (Promote(), True, True),
        (Abort(), False, True),  # a brake stays right while its rollout only moves on
        (Pause(), False, True),
    ],
)
def test_brakes_survive_progress_other_actions_do_not(
    command: Command, moved_on_blocks: bool, aborted_blocks: bool
) -> None:
    modal = ConfirmScreen("production", "x", command=command, watch=False)
    assert modal.blocks(PAUSED, MOVED_ON) is moved_on_blocks
    assert modal.blocks(PAUSED, ABORTED) is aborted_blocks


@pytest.mark.asyncio
async def test_enter_typed_right_behind_the_reason_confirms_with_all_of_it() -> None:
    """A terminal under load delivers "name, Enter, reason, Enter" in one burst: the last
    Enter must see the whole reason (the keys before it are still queued in the field)."""
    app = ModalHost()
    async with app.run_test() as pilot:
        await pilot.pause()
        for ch in "production\re2e: ship it\r":  # to the app, as the terminal driver delivers them
            app.post_message(events.Key("enter", None) if ch == "\r" else events.Key(ch, ch))
        await pilot.pause()
        await pilot.pause()
        assert app.result == ["e2e: ship it"]
