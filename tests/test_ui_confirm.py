"""The protected-action modal under fast typing: keys typed right behind an Enter must land
in the field the Enter moved to (found by the tmux end-to-end run on a loaded machine)."""

from __future__ import annotations

import pytest
from textual import events
from textual.app import App
from textual.widgets import Input

from cockpit.ui.screens.confirm import ConfirmScreen

pytestmark = pytest.mark.asyncio


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


async def test_enter_on_a_button_presses_that_button() -> None:
    app = ModalHost()
    async with app.run_test() as pilot:
        await pilot.pause()
        screen = app.screen
        screen.set_focus(screen.query_one("#cancel"))
        await pilot.press("enter")
        await pilot.pause()
        assert app.result == [None]  # Cancel, not Confirm
