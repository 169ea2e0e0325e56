"""The modals of issue 8 ("the screen at 3 a.m."), through Textual's Pilot against a real
Session on the in-memory backend (machine driver): the cockpit stays visible behind every
modal, a modal notices when its environment changes under it and will not act on the old
state, the weight picker sends one change with one confirmation, the version picker moves
one row at a time without wrapping, hints at a rollback for an older version, and shows
what a rollout will do before it starts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from textual import events
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Button, Input, OptionList, Static

import tests.ui_fixtures
from cockpit.engine.commands import Abort, Promote, SetWeight, StartRollout
from cockpit.engine.state import Phase
from cockpit.ui.app import CockpitApp
from cockpit.ui.screens.confirm import ConfirmScreen
from cockpit.ui.screens.info import HelpScreen
from cockpit.ui.screens.main import MainScreen
from cockpit.ui.screens.modal import WatchedModal
from cockpit.ui.screens.pickers import RevisionPicker, VersionPicker, newest_first
from cockpit.ui.screens.quit import QuitScreen
from cockpit.ui.screens.summary import StartSummary
from cockpit.ui.screens.weight import WeightPicker, type_digit
from cockpit.ui.versions import is_older
from tests.ui_fixtures import SIZE, make_app, make_session, plan_text, started, wait_for


def text_of(app: CockpitApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def screen_text(app: CockpitApp) -> str:
    """Everything drawn on the terminal, modal and what shows behind it, as plain text."""
    svg = app.export_screenshot()
    return re.sub(r"<[^>]+>", "", svg).replace("&#160;", " ")


def records(app: CockpitApp, env: str, action: str) -> list[object]:
    return [r for r in app.session.journal.records(service="shop", env=env) if r.action == action]


async def pick_version(pilot: Pilot, app: CockpitApp, version: str) -> None:
    await pilot.press("s")
    await wait_for(pilot, lambda: isinstance(app.screen, VersionPicker), what="version picker")
    options = app.screen.query_one(OptionList)
    options.highlighted = next(i for i in range(options.option_count) if options.get_option_at_index(i).id == version)
    await pilot.press("enter")


async def production_paused(pilot: Pilot, app: CockpitApp, version: str = "1.2.0") -> None:
    """Production (protected) paused at 20 % with ``version`` as its canary, through the keys."""
    await pilot.press("right", "right")
    await pick_version(pilot, app, version)
    await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
    await pilot.press(*"production", "enter", *"INC-7 ship", "enter")
    rollout = lambda: app.session.view("production").rollout  # noqa: E731
    await wait_for(pilot, lambda: rollout().phase is Phase.PAUSED and rollout().weight == 20, what="paused 20%")


# --------------------------------------------------------------------------- the backdrop


@pytest.mark.asyncio
async def test_every_modal_keeps_the_cockpit_visible_dimmed(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        await production_paused(pilot, app, "1.1.0")

        def behind_is_drawn() -> None:
            assert isinstance(app.screen, WatchedModal | HelpScreen | QuitScreen)
            background = app.screen.styles.background
            assert 0 < background.a < 1, f"{type(app.screen).__name__} has an opaque backdrop"
            # The columns of the main screen show through around the dialog.
            drawn = screen_text(app)
            assert "staging" in drawn and "Demo web shop API" in drawn, type(app.screen).__name__

        opened = {
            "question_mark": HelpScreen,
            "w": WeightPicker,
            "plus": ConfirmScreen,
            "q": QuitScreen,  # production is mid-rollout: quitting asks first
            "s": VersionPicker,  # refused on production mid-rollout: the next step opens dev's
        }
        for key, kind in list(opened.items())[:4]:
            await pilot.press(key)
            await wait_for(pilot, lambda kind=kind: isinstance(app.screen, kind), what=kind.__name__)
            behind_is_drawn()
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="closed")

        await pilot.press("left", "left")  # dev: the version picker, then the start summary
        await pick_version(pilot, app, "1.1.0")
        await wait_for(pilot, lambda: isinstance(app.screen, StartSummary), what="summary")
        behind_is_drawn()
        await pilot.press("escape")
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, VersionPicker), what="picker")
        behind_is_drawn()


# --------------------------------------------------------------------------- stale modals


@pytest.mark.asyncio
async def test_weight_picker_goes_stale_when_the_rollout_aborts_behind_it(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        await production_paused(pilot, app, "1.2.0")
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, WeightPicker), what="weight picker")
        picker = app.screen
        await pilot.press("5", "0")
        assert picker.target == 50
        assert not picker.stale and "-shown" not in picker.query_one("#stale").classes

        # The partner promotes past the pause: 1.2.0's analysis fails and aborts the rollout.
        assert (await app.session.submit("production", Promote(), "bob: go on")).ok
        await wait_for(pilot, lambda: app.session.view("production").rollout.phase is Phase.ABORTED, what="aborted")
        await wait_for(pilot, lambda: picker.stale, what="the picker notices")
        # It goes on saying what changed as the abort completes (first Progressing, then Aborted).
        await wait_for(pilot, lambda: "Aborted" in text_of(app, "#stale"), what="the abort, said")
        warning = text_of(app, "#stale")
        assert "production changed since you opened this" in warning
        assert "phase Paused → Aborted" in warning and "weight 20% → 0%" in warning

        await pilot.press("enter")  # refused in place: no confirmation, no command
        await pilot.pause(0.2)
        assert app.screen is picker
        assert "state changed" in text_of(app, "#note")
        assert records(app, "production", "set-weight") == []
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="closed")


@pytest.mark.asyncio
async def test_confirm_goes_stale_and_enter_does_nothing(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        await production_paused(pilot, app, "1.2.0")
        await pilot.press("plus")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm +10%")
        modal = app.screen
        assert "set the canary weight to 30% (from 20%)" in text_of(app, "#what")
        await pilot.press(*"production", "enter", *"more traffic")

        assert (await app.session.submit("production", Promote(), "bob: go on")).ok
        await wait_for(pilot, lambda: app.session.view("production").rollout.phase is Phase.ABORTED, what="aborted")
        await wait_for(pilot, lambda: "phase Paused → Aborted" in text_of(app, "#stale"), what="the modal notices")
        assert modal.stale
        assert modal.query_one("#confirm", Button).disabled

        await pilot.press("enter")
        await pilot.pause(0.2)
        assert app.screen is modal  # still open: nothing was sent
        assert "not sent: the state changed" in text_of(app, "#problem")
        assert records(app, "production", "set-weight") == []


@pytest.mark.asyncio
async def test_stale_check_runs_at_enter_not_only_on_the_timer(tmp_path: Path) -> None:
    """A change between two looks of the timer still stops the Enter that follows it."""
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        await production_paused(pilot, app, "1.1.0")
        await pilot.press("plus")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
        modal = app.screen
        for timer in modal._timers:  # the watch's timer stops: only the Enter can notice
            timer.stop()
        assert (await app.session.submit("production", SetWeight(40), "bob")).ok
        await pilot.press(*"production", "enter", *"more", "enter")
        await pilot.pause(0.2)
        assert app.screen is modal and modal.stale
        assert "weight 20% → 40%" in text_of(app, "#stale")
        assert [r.reason for r in records(app, "production", "set-weight") if r.outcome == "ok"] == ["bob"]


@pytest.mark.asyncio
async def test_changed_and_changed_back_is_still_stale(tmp_path: Path) -> None:
    """20 % -> 40 % -> 20 %: the same numbers, not the state the person decided on."""
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        await production_paused(pilot, app, "1.1.0")
        await pilot.press("plus")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
        modal = app.screen
        assert (await app.session.submit("production", SetWeight(40), "bob")).ok
        await wait_for(pilot, lambda: modal.stale, what="stale")
        assert (await app.session.submit("production", SetWeight(20), "bob, undoing")).ok
        await wait_for(pilot, lambda: app.session.view("production").rollout.weight == 20, what="back at 20%")
        await pilot.pause(0.6)  # two looks of the watch at the state that equals the old one
        assert modal.stale and "weight 20% → 40%" in text_of(app, "#stale")
        assert "-shown" in modal.query_one("#stale").classes  # still said, not hidden
        await pilot.press(*"production", "enter", *"more", "enter")
        await pilot.pause(0.2)
        assert app.screen is modal
        assert [r.reason for r in records(app, "production", "set-weight") if r.outcome == "ok"] == [
            "bob",
            "bob, undoing",
        ]


@pytest.mark.asyncio
async def test_abort_stays_possible_while_its_rollout_moves_on(tmp_path: Path) -> None:
    """The emergency brake is not taken away because the weight moved while the reason
    was typed; the warning says what moved, the abort still goes through."""
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        await production_paused(pilot, app, "1.1.0")
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm abort")
        modal = app.screen
        assert (await app.session.submit("production", SetWeight(40), "bob")).ok
        await wait_for(pilot, lambda: bool(modal.changed), what="the change is shown")
        assert not modal.stale and "the action still applies" in text_of(app, "#stale")
        await pilot.press(*"production", "enter", *"slow canary", "enter")
        await wait_for(pilot, lambda: app.session.view("production").rollout.phase is Phase.ABORTED, what="aborted")
        assert [r.reason for r in records(app, "production", "abort") if r.outcome == "ok"] == ["slow canary"]


@pytest.mark.asyncio
async def test_abort_goes_stale_when_its_rollout_is_over(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        await production_paused(pilot, app, "1.1.0")
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm abort")
        modal = app.screen
        assert (await app.session.submit("production", Abort(), "bob got there first")).ok
        await wait_for(pilot, lambda: modal.stale, what="stale")
        assert modal.query_one("#confirm", Button).disabled


@pytest.mark.asyncio
async def test_version_picker_goes_stale_when_a_rollout_starts_behind_it(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, VersionPicker), what="picker")
        picker = app.screen

        assert (await app.session.submit("dev", StartRollout("1.1.0"), "bob")).ok
        await wait_for(pilot, lambda: picker.stale, what="stale")
        assert "(out of date)" in text_of(app, "#title")
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert app.screen is picker and "not picked" in text_of(app, "#note")


# --------------------------------------------------------------------------- the weight picker


@pytest.mark.asyncio
async def test_weight_picker_on_a_protected_env_one_confirmation_one_record(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        await production_paused(pilot, app, "1.1.0")
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, WeightPicker), what="weight picker")
        bar = text_of(app, "#bar")
        assert "now 20%" in bar and "target 30%" in bar  # starts one step up
        await pilot.press("up", "up", "down", "shift+up", "shift+up")
        assert app.screen.target == 42
        await pilot.press("7", "5")  # typed: 75
        assert app.screen.target == 75 and "target 75%" in text_of(app, "#bar") and "(+55 %)" in text_of(app, "#bar")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the one confirmation")
        assert "set the canary weight to 75% (from 20%)" in text_of(app, "#what")
        await pilot.press(*"production", "enter", *"INC-9 ramp up", "enter")
        await wait_for(pilot, lambda: app.session.view("production").rollout.weight == 75, what="weight 75")
        assert isinstance(app.screen, MainScreen)
        done = [r for r in records(app, "production", "set-weight") if r.outcome == "ok"]
        assert [(r.reason, r.user) for r in done] == [("INC-9 ramp up", "alice")]


@pytest.mark.asyncio
async def test_weight_picker_refusals_and_unprotected_env(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        await pilot.press("w")  # nothing paused on dev: the engine's words, no modal
        await wait_for(pilot, lambda: any("while a rollout is paused" in n.message for n in app._notifications), what="refusal")
        assert isinstance(app.screen, MainScreen)
        await pick_version(pilot, app, "1.1.0")
        await wait_for(pilot, lambda: isinstance(app.screen, StartSummary), what="summary")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.session.view("dev").rollout.phase is Phase.PAUSED, what="paused")
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, WeightPicker), what="weight picker")
        await pilot.press("home", "2", "0", "enter")  # the same weight: said, not sent
        assert "already has 20%" in text_of(app, "#note") and isinstance(app.screen, WeightPicker)
        await pilot.press("end", "enter")  # unprotected: sent at once, no confirmation
        await wait_for(pilot, lambda: app.session.view("dev").rollout.weight == 100, what="weight 100")
        assert isinstance(app.screen, MainScreen)


def test_typed_digits_make_a_weight() -> None:
    typed = ""
    for digit, want in (("3", "3"), ("5", "35"), ("0", "0"), ("1", "1"), ("0", "10"), ("0", "100"), ("7", "7")):
        typed = type_digit(typed, digit)
        assert typed == want


# --------------------------------------------------------------------------- the version picker


@pytest.mark.asyncio
async def test_version_picker_moves_one_row_without_skipping_or_wrapping(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, VersionPicker), what="picker")
        options = app.screen.query_one(OptionList)
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        assert ids == ["1.2.0", "1.1.0", "1.0.0"]
        assert options.highlighted == 0
        await pilot.press("up")  # at the top: stays
        assert options.highlighted == 0
        await pilot.press("down", "down")  # onto the stable row: not skipped
        assert options.highlighted == 2
        assert "already runs as stable" in text_of(app, "#note")
        await pilot.press("down")  # at the bottom: stays, no wrap to the newest
        assert options.highlighted == 2
        await pilot.press("enter")  # the stable version cannot be picked: says why
        await pilot.pause()
        assert isinstance(app.screen, VersionPicker)
        assert "1.0.0 already runs as stable on dev" in text_of(app, "#note")
        await pilot.press("home")
        assert options.highlighted == 0
        await pilot.press("end")
        assert options.highlighted == 2


@pytest.mark.asyncio
async def test_older_version_hints_at_rollback_and_the_summary_shows_the_steps(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        # dev runs 1.1.0 as stable after a full promote.
        await pick_version(pilot, app, "1.1.0")
        await wait_for(pilot, lambda: isinstance(app.screen, StartSummary), what="summary")
        summary = text_of(app, "#summary")
        assert "dev  1.0.0 → 1.1.0" in summary
        assert "1. set weight 20%" in summary and "2. pause until promoted (p)" in summary
        assert "5. pause until promoted (p)" in summary and "rollback" not in summary
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.session.view("dev").rollout.phase is Phase.PAUSED, what="paused")
        await pilot.press("P")
        await wait_for(pilot, lambda: app.session.view("dev").rollout.stable_version == "1.1.0", what="promoted")

        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, VersionPicker), what="picker")
        assert "rollback" not in text_of(app, "#note")  # 1.2.0 is newer
        await pilot.press("down", "down")  # 1.0.0, older than the 1.1.0 running now
        note = text_of(app, "#note")
        assert "1.0.0 is older than 1.1.0, running now. Did you mean a rollback (r)?" in note
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, StartSummary), what="summary")
        assert "Did you mean a rollback (r)?" in text_of(app, "#summary")
        await pilot.press("escape")  # nothing starts
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="closed")
        assert app.session.view("dev").rollout.phase is Phase.HEALTHY
        assert len(records(app, "dev", "rollout")) == 2  # the 1.1.0 rollout only: started, ok


@pytest.mark.asyncio
async def test_protected_start_shows_the_summary_in_the_one_confirmation(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        await pilot.press("right", "right")
        await pick_version(pilot, app, "1.2.0")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
        summary = text_of(app, "#summary")
        assert "production  1.0.0 → 1.2.0" in summary and "3. analysis success-rate, latency-p99" in summary
        assert app.screen.query_one("#name", Input).has_focus


@pytest.mark.asyncio
async def test_revision_picker_marks_what_runs_and_refuses_it(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        await pick_version(pilot, app, "1.1.0")
        await wait_for(pilot, lambda: isinstance(app.screen, StartSummary), what="summary")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.session.view("dev").rollout.phase is Phase.PAUSED, what="paused")
        await pilot.press("P")
        await wait_for(pilot, lambda: app.session.view("dev").rollout.phase is Phase.HEALTHY, what="promoted")
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, RevisionPicker), what="revision picker")
        options = app.screen.query_one(OptionList)
        assert options.highlighted == 1
        await pilot.press("up", "up", "enter")  # the running revision: stays, says why
        await pilot.pause()
        assert options.highlighted == 0 and isinstance(app.screen, RevisionPicker)
        assert "revision 2 is the one running now" in text_of(app, "#note")


# --------------------------------------------------------------------------- pure helpers


def test_versions_compare_carefully() -> None:
    assert is_older("1.0.0", "1.1.0") is True
    assert is_older("1.10.0", "1.9.0") is False  # numbers, not text
    assert is_older("1.2.0-rc1", "1.2.0") is True  # a pre-release comes first
    assert is_older("1.2", "1.2.0") is False  # the same version
    assert is_older("v2.0.1", "2.0.0") is False
    assert is_older("sha-3f9c2e1", "1.0.0") is None  # cannot tell: no hint at all
    assert newest_first(["1.0.0", "1.10.0", "1.9.0"]) == ["1.10.0", "1.9.0", "1.0.0"]
    assert newest_first(["main-a", "main-b"]) == ["main-b", "main-a"]  # the backend's order, newest last


# --------------------------------------------------------------------------- a strategy per environment

OWN_STRATEGY = """
  [environments.strategy.canary]
  steps = [{ set_weight = 30 }, { analysis = { checks = ["success-rate"] } }, { pause = {} }]
"""


@pytest.mark.asyncio
@pytest.mark.parametrize("driver", ["machine", "mirror"])
async def test_each_driver_walks_the_environments_own_strategy(
    tmp_path: Path, driver: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Production's own steps are what its driver walks (cockpit or platform), what the
    summary lists; dev keeps the plan's."""
    monkeypatch.setattr(tests.ui_fixtures, "DRIVER", driver)
    text = plan_text()
    at = text.index("[strategy.canary]")
    session = make_session(tmp_path, text[:at] + OWN_STRATEGY.replace("  [environments.", "[environments.") + text[at:])
    app = make_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        assert session.view("production").steps == ("set weight 30%", "analysis success-rate", "pause")
        assert len(session.view("dev").steps) == 5
        assert (await session.submit("production", StartRollout("1.1.0"), "own steps")).ok
        await wait_for(
            pilot,
            lambda: session.view("production").rollout.phase is Phase.PAUSED,
            what="production paused after its own analysis",
        )
        assert session.view("production").rollout.weight == 30
        assert session.view("production").rollout.step_label == "3/3"


class WeightHost(App[None]):
    """The weight picker alone (no cockpit to watch): its keys under a fast burst."""

    def __init__(self) -> None:
        super().__init__()
        self.result: list[int | None] = []

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return {"fail": "red", "warn": "yellow", "ok": "green", "stable": "blue", "canary": "orange"}

    def on_mount(self) -> None:
        self.push_screen(WeightPicker("production", 20, protected=True, watch=False), self.result.append)


@pytest.mark.asyncio
async def test_digits_typed_right_before_enter_all_count() -> None:
    """"4", "0", Enter in one burst (a loaded terminal): 40 %, not the 4 % or the 30 % that an
    Enter running ahead of the queued digits would send."""
    app = WeightHost()
    async with app.run_test() as pilot:
        await pilot.pause()
        for key, char in (("4", "4"), ("0", "0"), ("enter", None)):
            app.post_message(events.Key(key, char))  # as the driver delivers them
        await pilot.pause()
        await pilot.pause()
        assert app.result == [40]
