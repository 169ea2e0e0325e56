"""Alerts: an abort by analysis, a Degraded environment or a failed action stays on screen
(which environment, what, cause, when) until acknowledged; several stack, newest first;
the bell rings only when asked for."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input
from textual.widgets._footer import FooterKey

from cockpit.engine.alerts import AlertLog
from cockpit.engine.state import Cause, Phase, RolloutState
from cockpit.ui import render
from cockpit.ui.app import CockpitApp
from cockpit.ui.config import UIConfig, UISettings
from cockpit.ui.screens.confirm import ConfirmScreen
from cockpit.ui.widgets.alerts import AlertBanner
from tests.test_ui_quit import start
from tests.ui_fixtures import SIZE, make_app, make_session, started, wait_for


def banner(app: CockpitApp) -> AlertBanner:
    return app.screen.query_one(AlertBanner)


def banner_text(app: CockpitApp) -> str:
    return str(banner(app).render())


def footer_labels(app: CockpitApp) -> list[str]:
    return [key.description for key in app.screen.query(FooterKey)]


def header_release(app: CockpitApp) -> str:
    return str(app.screen.query_one("#header-release").render())


async def promote(pilot: Pilot, app: CockpitApp, env: str) -> None:
    """``p`` on the focused ``env``, through the confirmation when it is protected."""
    await pilot.press("p")
    if app.session.view(env).protected:
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
        app.screen.query_one("#name", Input).value = env
        app.screen.query_one("#reason", Input).value = "looks fine"
        app.screen.query_one("#confirm").press()


async def abort_by_analysis(pilot: Pilot, app: CockpitApp, env: str, reason: str = "") -> None:
    """Roll 1.2.0 (fails analysis on the memory backend) out on the focused ``env``, promote
    past the pause, and wait for the analysis to abort it."""
    await start(pilot, app, env, "1.2.0", reason=reason)
    await promote(pilot, app, env)
    await wait_for(
        pilot,
        lambda: app.session.view(env).rollout.cause is Cause.ANALYSIS_FAILED,
        timeout=8,
        what=f"{env} aborted by analysis",
    )
    app.screen.tick()  # type: ignore[attr-defined]  # the next refresh, now
    await pilot.pause()


@pytest.mark.asyncio
async def test_analysis_abort_of_production_stays_until_acknowledged(tmp_path: Path) -> None:
    session = make_session(tmp_path)
    app = make_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        assert not banner(app).display  # nothing to say: the screen is as it always was
        await wait_for(pilot, lambda: "promote" in footer_labels(app), what="footer")
        assert "ack alert" not in footer_labels(app)  # the key hides from the footer while idle
        await pilot.press("right", "right")
        await abort_by_analysis(pilot, app, "production", reason="ticket 7")

        assert "no release in progress" in header_release(app)  # true, and not all there is to say
        assert banner(app).display
        text = banner_text(app)
        alert = session.alerts()[0]
        assert "production: rollout of 1.2.0 aborted by analysis" in text
        assert "analysis failed" in text  # the cause, in the engine's words
        assert render.clock_text(alert.ts) in text  # when
        assert "! acknowledge" in text
        footer_keys = {b.binding.key for b in app.screen.active_bindings.values() if b.enabled}
        assert "exclamation_mark" in footer_keys  # the key shows while there is an alert
        await wait_for(pilot, lambda: "ack alert" in footer_labels(app), what="ack key in the footer")

        await pilot.pause(0.5)  # later refreshes keep it: persistent, not a toast
        app.screen.tick()  # type: ignore[attr-defined]
        assert banner(app).display

        await pilot.press("exclamation_mark")
        await wait_for(pilot, lambda: not banner(app).display, what="banner gone")
        assert session.alerts() == []
        acks = session.journal.records(env="production", text="alert 1")
        assert [(r.action, r.user) for r in acks] == [("acknowledge", "alice")]
        await wait_for(pilot, lambda: "ack alert" not in footer_labels(app), what="ack key hidden again")


@pytest.mark.asyncio
async def test_alerts_stack_newest_first_with_a_count(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        await abort_by_analysis(pilot, app, "dev")
        await pilot.press("right")
        await abort_by_analysis(pilot, app, "staging")
        text = banner_text(app)
        assert "staging: rollout of 1.2.0 aborted by analysis" in text and "(1 of 2)" in text
        await pilot.press("exclamation_mark")
        await wait_for(pilot, lambda: "dev: rollout of 1.2.0" in banner_text(app), what="the older one")
        assert "of 2" not in banner_text(app)
        await pilot.press("exclamation_mark")
        await wait_for(pilot, lambda: not banner(app).display, what="all acknowledged")


@pytest.mark.asyncio
async def test_a_failed_action_is_an_alert(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        await start(pilot, app, "dev")
        app.session.controller("dev").backend.down = True  # type: ignore[attr-defined]
        await pilot.press("minus")  # no health gate on the way back: the backend call itself fails
        await wait_for(pilot, lambda: bool(app.session.alerts()), what="alert")
        alert = app.session.alerts()[0]
        assert (alert.env, alert.what, alert.kind) == ("dev", "set-weight 10% failed", "failed-action")
        app.screen.tick()  # type: ignore[attr-defined]
        assert "dev: set-weight 10% failed" in banner_text(app)


@pytest.mark.asyncio
@pytest.mark.parametrize("bell", [False, True])
async def test_the_bell_rings_only_when_asked(tmp_path: Path, bell: bool) -> None:
    session = make_session(tmp_path)
    app = CockpitApp(session, config=UIConfig(ui=UISettings(bell=bell)))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        await abort_by_analysis(pilot, app, "dev")
        await pilot.press("right")
        await abort_by_analysis(pilot, app, "staging")
        await pilot.pause(0.3)
        assert app.bells_rung == (2 if bell else 0)  # once per alert, not per refresh
        await pilot.press("exclamation_mark")  # the older alert shows again: no new bell
        await wait_for(pilot, lambda: len(app.session.alerts()) == 1, what="acknowledged")
        app.screen.tick()  # type: ignore[attr-defined]
        await pilot.pause(0.3)
        assert app.bells_rung == (2 if bell else 0)


def test_bell_is_off_by_default_and_read_from_the_ui_table() -> None:
    assert UIConfig().ui.bell is False
    assert UIConfig.model_validate({"ui": {"bell": True}}).ui.bell is True


def state(phase: Phase, cause: Cause | None = None, epoch: int = 1, reason: str = "") -> RolloutState:
    return RolloutState(
        "prod", phase, "1.0.0", 5, reason=reason, cause=cause, epoch=epoch, target_version="1.2.0"
    )


def test_alert_rules() -> None:
    log = AlertLog()
    log.baseline("prod", state(Phase.ABORTED, Cause.ANALYSIS_FAILED, epoch=0))  # from an earlier session
    assert log.observe("prod", state(Phase.ABORTED, Cause.ANALYSIS_FAILED, epoch=0), 1.0) is None
    assert log.observe("prod", state(Phase.PAUSED), 2.0) is None
    assert log.observe("prod", state(Phase.ABORTED, Cause.ABORTED_BY_USER), 3.0) is None  # a person did it
    assert log.observe("prod", state(Phase.ABORTED, Cause.INTERRUPTED, epoch=2), 4.0) is None
    gate = log.observe(
        "prod", state(Phase.ABORTED, Cause.HEALTH_GATE, epoch=3, reason="canary 0/2 ready"), 5.0
    )
    assert gate is not None and gate.what == "rollout of 1.2.0 aborted by the health gate"
    assert gate.cause == "canary 0/2 ready" and gate.ts == 5.0
    assert (
        log.observe("prod", state(Phase.ABORTED, Cause.HEALTH_GATE, epoch=3), 6.0) is None
    )  # the same abort
    degraded = log.observe("prod", state(Phase.DEGRADED, Cause.CRASH_LOOP, reason="stable crash loop"), 7.0)
    assert degraded is not None and degraded.kind == "degraded"
    assert (
        log.observe("prod", state(Phase.DEGRADED, Cause.CRASH_LOOP, reason="stable crash loop"), 8.0) is None
    )
    assert [a.id for a in log.active()] == [2, 1]  # newest first
    assert log.acknowledge(1) is gate and [a.id for a in log.active()] == [2]
    assert log.acknowledge(99) is None
