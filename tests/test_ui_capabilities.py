"""The screen reads the backend's capabilities, and the Pause key.

* A backend that cannot set a weight: ``+``/``-`` are disabled for its column (greyed
  in the footer, listed as unavailable in ``?`` help and the command palette); a press
  says why, without a modal, and changes nothing. Another environment's backend keeps
  them. A backend that cannot choose a revision rolls back to the previous one with no
  picker to choose from.
* ``space`` pauses a progressing rollout (a timed pause stays held, the column says who
  paused it) and resumes it; a protected environment asks for confirmation first.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Footer, Input, OptionList
from textual.widgets._footer import FooterKey

from cockpit.adapters import registry
from cockpit.adapters.base import Capability
from cockpit.engine.state import Phase
from cockpit.ui.app import CockpitApp
from cockpit.ui.screens.confirm import ConfirmScreen
from cockpit.ui.screens.info import HelpScreen
from cockpit.ui.screens.main import MainScreen
from cockpit.ui.screens.pickers import RevisionPicker, VersionPicker
from cockpit.ui.screens.summary import StartSummary
from cockpit.ui.widgets.env_column import EnvColumn
from tests.memory_backend import MemoryBackend
from tests.ui_fixtures import PLAN_TAIL, SIZE, make_app, make_session, plan_text, started, wait_for

pytestmark = pytest.mark.asyncio


class PlainMemoryBackend(MemoryBackend):
    """The memory backend without fine-grained weights or a choice of revision (as a
    platform that only switches 0/100 and redeploys the previous version would be)."""

    name = "memory-plain"
    capabilities = MemoryBackend.capabilities - {Capability.SET_WEIGHT, Capability.ROLLBACK_TO_REVISION}


registry.register(registry.BACKENDS_GROUP, "memory-plain", f"{__name__}:PlainMemoryBackend")

CANNOT_WEIGH = "the memory-plain backend cannot set a weight"

TIMED_TAIL = PLAN_TAIL.replace(
    "  { pause = {} },\n  { analysis", '  { pause = { duration = "3s" } },\n  { analysis'
)


def messages(app: CockpitApp) -> list[str]:
    return [n.message for n in app._notifications]


def main(app: CockpitApp) -> MainScreen:
    screen = app.main_screen
    assert screen is not None
    return screen


def footer_key(app: CockpitApp, label: str) -> FooterKey:
    return next(k for k in main(app).query_one(Footer).query(FooterKey) if k.description == label)


async def start_rollout(pilot: Pilot, app: CockpitApp, version: str = "1.1.0") -> None:
    env = main(app).current
    await pilot.press("s")
    await wait_for(pilot, lambda: isinstance(app.screen, VersionPicker), what="version picker")
    options = app.screen.query_one(OptionList)
    options.highlighted = next(
        i for i in range(options.option_count) if options.get_option_at_index(i).id == version
    )
    await pilot.press("enter")
    if app.session.view(env).protected:
        await confirm(pilot, app, env)
    else:  # one Enter on the summary of what the rollout will do
        await wait_for(pilot, lambda: isinstance(app.screen, StartSummary), what="start summary")
        await pilot.press("enter")
    await wait_for(
        pilot,
        lambda: (
            app.session.view(env).rollout.weight == 20 and app.session.view(env).rollout.phase is Phase.PAUSED
        ),
        what=f"{env} paused at 20%",
    )


async def confirm(pilot: Pilot, app: CockpitApp, env: str, reason: str = "checking") -> None:
    await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm modal")
    app.screen.query_one("#name", Input).value = env
    app.screen.query_one("#reason", Input).value = reason
    await pilot.click("#confirm")
    await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="modal closed")


async def test_a_backend_without_set_weight_greys_the_weight_keys_and_says_why(tmp_path: Path) -> None:
    text = plan_text(envs=("dev", "staging"), protected=()).replace(
        'adapter = "memory"', 'adapter = "memory-plain"', 1
    )
    app = make_app(make_session(tmp_path, text))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app) and bool(main(app).query(Footer)), what="session start")
        screen = main(app)
        assert screen.current == "dev"
        assert app.session.controller("dev").backend.name == "memory-plain"
        await start_rollout(pilot, app)

        # Disabled, not hidden: listed and greyed, for every key bound to it.
        assert screen.check_action("weight", (10,)) is None and screen.check_action("weight", (-10,)) is None
        assert screen.check_action("promote", ()) is True
        active = screen.active_bindings
        assert not active["plus"].enabled and not active["minus"].enabled and active["p"].enabled
        await wait_for(pilot, lambda: footer_key(app, "+10%").has_class("-disabled"), what="+10% greyed")
        assert footer_key(app, "-10%").has_class("-disabled") and not footer_key(app, "promote").has_class(
            "-disabled"
        )

        weights = app.session.controller("dev").backend.calls.count("set_weight")  # type: ignore[attr-defined]
        await pilot.press("plus")
        await wait_for(pilot, lambda: CANNOT_WEIGH in messages(app), what="the reason, notified")
        await pilot.press("minus")
        await pilot.pause(0.2)
        assert isinstance(app.screen, MainScreen)  # no modal
        assert app.session.view("dev").rollout.weight == 20
        assert app.session.controller("dev").backend.calls.count("set_weight") == weights  # type: ignore[attr-defined]
        # Nothing sent; both presses journaled as refusals (tests/test_refusals_journaled.py).
        weight_records = [
            r for r in app.session.journal.records(service="shop", env="dev") if r.action == "set-weight"
        ]
        assert [r.outcome for r in weight_records] == ["refused", "refused"]
        assert all(CANNOT_WEIGH in r.detail for r in weight_records)

        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        help_text = str(app.screen.query_one("#body").render())
        assert f"Canary weight +10 % (while paused)\n{' ' * 16}unavailable: {CANNOT_WEIGH}" in help_text
        assert help_text.count("unavailable:") == 3  # +10%, -10% and the weight picker (w), nothing else
        await pilot.press("escape")

        palette = {c.title: c.help for c in app.get_system_commands(app.screen)}
        assert palette["Canary weight +10 % (while paused)"].startswith(f"unavailable: {CANNOT_WEIGH}")

        await pilot.press("right")  # staging's backend can set a weight: the keys come back
        assert screen.current == "staging"
        await wait_for(pilot, lambda: not footer_key(app, "+10%").has_class("-disabled"), what="+10% enabled")
        assert screen.check_action("weight", (10,)) is True and screen.active_bindings["plus"].enabled
        palette = {c.title: c.help for c in app.get_system_commands(app.screen)}
        assert palette["Canary weight +10 % (while paused)"].startswith("+10% · key")

        await pilot.press("left")
        await pilot.press("P")  # the rollout completes: 1.1.0 is stable, 1.0.0 retained
        await wait_for(pilot, lambda: app.session.view("dev").rollout.phase is Phase.HEALTHY, what="promoted")
        await pilot.press("r")  # no revision to choose on this backend: the previous one, no picker
        await wait_for(
            pilot,
            lambda: (
                app.session.view("dev").rollout.stable_version == "1.0.0"
                and app.session.view("dev").rollout.phase is Phase.HEALTHY
            ),
            what="rolled back to 1.0.0",
        )
        assert not isinstance(app.screen, RevisionPicker)


async def test_space_pauses_a_timed_pause_and_resumes_it(tmp_path: Path) -> None:
    text = plan_text(envs=("dev", "production")).replace(PLAN_TAIL, TIMED_TAIL)
    app = make_app(make_session(tmp_path, text))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        dev = lambda: app.session.view("dev").rollout  # noqa: E731
        await pilot.press("space")  # nothing to pause on a healthy environment: refused, shown
        await wait_for(
            pilot, lambda: any("no rollout in progress" in m for m in messages(app)), what="refusal"
        )

        await start_rollout(pilot, app)
        assert dev().paused_until is not None  # the timed pause is running
        await pilot.press("space")
        await wait_for(pilot, lambda: dev().paused_by == "alice", what="paused by alice")
        assert dev().paused_until is None and dev().weight == 20 and dev().step_index == 1
        column = main(app).query_one("#env-dev", EnvColumn)
        await wait_for(
            pilot,
            lambda: (
                "Paused" in str(column.query_one("#phase").render())
                and "paused by alice" in str(column.query_one("#phase").render())
            ),
            what="the column says who paused it",
        )

        await pilot.press("space")  # resume: the timed pause runs again, then the steps go on
        await wait_for(
            pilot, lambda: dev().paused_by is None and dev().paused_until is not None, what="resumed"
        )
        await wait_for(
            pilot, lambda: dev().weight == 50 and dev().phase is Phase.PAUSED, timeout=15, what="50%"
        )
        records = app.session.journal.records(service="shop", env="dev")
        assert [r.action for r in records if r.outcome == "ok" and r.action in ("pause", "resume")] == [
            "pause",
            "resume",
        ]

        # A protected environment confirms the pause like any other action.
        await pilot.press("right")
        assert main(app).current == "production"
        await start_rollout(pilot, app)
        await pilot.press("space")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm pause")
        await pilot.press("escape")  # cancelled: nothing paused
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="modal closed")
        assert app.session.view("production").rollout.paused_by is None
        await pilot.press("space")
        await confirm(pilot, app, "production", "looking at the logs")
        await wait_for(
            pilot, lambda: app.session.view("production").rollout.paused_by == "alice", what="paused"
        )
        pause = [
            r
            for r in app.session.journal.records(service="shop", env="production")
            if r.action == "pause" and r.outcome == "ok"
        ]
        assert len(pause) == 1 and pause[0].reason == "looking at the logs"


async def test_the_pause_key_can_be_remapped(tmp_path: Path) -> None:
    text = plan_text(envs=("dev",), protected=()).replace(PLAN_TAIL, TIMED_TAIL)
    app = make_app(make_session(tmp_path, text), keys={"pause": "z"})
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        await start_rollout(pilot, app)
        await pilot.press("space")  # no longer bound
        await pilot.pause(0.2)
        assert app.session.view("dev").rollout.paused_by is None
        await pilot.press("z")
        await wait_for(
            pilot, lambda: app.session.view("dev").rollout.paused_by == "alice", what="paused by z"
        )
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        assert "z  Pause a progressing rollout" in str(app.screen.query_one("#body").render())
