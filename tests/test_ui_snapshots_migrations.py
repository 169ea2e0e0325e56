"""SVG snapshots of the migrations view (``m``) and of a card with its database steps,
against MigrationsView values made in tests/migration_views.py (deterministic: the
steps' states do not depend on a database's timing). Set up as tests/test_ui_snapshots.py
(frozen clock, UTC, settled metrics); update with ``--snapshot-update`` and look at the
SVGs before committing them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot

from cockpit.ui.app import CockpitApp
from cockpit.ui.screens.migrations import MigrationsScreen
from tests import migration_views as mv
from tests.test_ui_snapshots import finish, frozen_world, rollout, shot, started  # noqa: F401 - frozen_world: autouse
from tests.ui_fixtures import FIXED_NOW, make_app, make_session, wait_for


def app_with(tmp_path: Path, **views: object) -> CockpitApp:
    session = make_session(tmp_path)
    for env, value in views.items():
        mv.inject(session, env, value)  # type: ignore[arg-type]
    return make_app(session, clock=lambda: FIXED_NOW)


async def open_migrations(pilot: Pilot, *moves: str) -> None:
    app: CockpitApp = pilot.app  # type: ignore[assignment]
    await started(pilot)
    await finish(pilot)
    await pilot.press(*moves, "m")
    await wait_for(pilot, lambda: isinstance(app.screen, MigrationsScreen), what="the migrations view")
    await wait_for(pilot, lambda: "step" in str(app.screen.query_one("#migr-rows").render()), what="drawn")
    await pilot.pause(0.3)


def test_migrations_contract_refused_at_80x24(snap_compare: Callable[..., bool], tmp_path: Path) -> None:
    """production (protected): 1.1.0's expand applied, its contract refused while stable runs
    1.0.0 - the guard's words under the key before it is pressed."""
    app = app_with(tmp_path, production=mv.expanded())

    async def run_before(pilot: Pilot) -> None:
        await open_migrations(pilot, "right", "right")

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_migrations_failed_expand_with_lint(snap_compare: Callable[..., bool], tmp_path: Path) -> None:
    """dev: an expand step failed on a lock timeout (its error and output), both expand steps
    with squawk findings (rule, line); the failed step is selected first."""
    app = app_with(tmp_path, dev=mv.failed_with_lint())

    async def run_before(pilot: Pilot) -> None:
        await open_migrations(pilot)

    assert shot(snap_compare, app, run_before)


def test_card_timeline_with_migrations(snap_compare: Callable[..., bool], tmp_path: Path) -> None:
    """dev mid-canary of 1.1.0: its expand steps ✓ before the canary's, the contract ○ after
    promote, and the card's migrations line; staging's contract refused."""
    app = app_with(tmp_path, dev=mv.expanded(refused=None), staging=mv.expanded(mv.refusal("staging")))

    async def run_before(pilot: Pilot) -> None:
        await rollout(pilot, "1.1.0", promote=False)

    assert shot(snap_compare, app, run_before)
