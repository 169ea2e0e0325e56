"""The migrations view (``m``), the run-next / roll-back-last keys and the card's migration
line and timeline, against MigrationsView values made here (tests/migration_views.py):
what each key would do or why it is refused is on screen before it is pressed, a refused
key sends nothing, an accepted one goes through the protected confirmation to the session,
and the view follows a step as it runs.

Pure pieces first (fast), then the screen through Pilot.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from textual.content import Content
from textual.widgets import Static

from cockpit.engine.commands import Command, RollbackMigration, RunMigration
from cockpit.engine.session import Session
from cockpit.engine.state import Phase
from cockpit.engine.views import ActionResult, EnvView
from cockpit.migrations.api import MigrationsView, StepState
from cockpit.ui import migration_text, render
from cockpit.ui.app import CockpitApp
from cockpit.ui.screens.confirm import ConfirmScreen
from cockpit.ui.screens.info import HelpScreen
from cockpit.ui.screens.main import MainScreen
from cockpit.ui.screens.migrations import MigrationsScreen, steps_table
from cockpit.ui.widgets.timeline import items, timeline_lines
from tests import migration_views as mv
from tests.ui_fixtures import make_app, make_session, started, wait_for


def env_view(tmp_path: Path, m: MigrationsView | None, **rollout: object) -> EnvView:
    view = make_session(tmp_path).view("production")
    return replace(view, migrations=m, rollout=replace(view.rollout, **rollout))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- pure parts


def test_card_line_says_where_the_release_stands(tmp_path: Path) -> None:
    line = lambda m: migration_text.summary(env_view(tmp_path, m)).plain  # noqa: E731
    assert line(None) == "no migrations"
    assert line(mv.expanded()) == "expand 2/2 ✓ · contract refused: stable runs 1.0.0 (2 replicas)"
    assert line(mv.expanded(refused=None)) == "expand 2/2 ✓ · contract ready"
    assert line(mv.failed()) == "expand ✗ orders-full-name · contract 0/1"
    assert line(mv.pending()) == "expand 0/2 · contract 0/1"
    assert line(mv.running()) == "expand ● orders-index · contract 0/1"
    assert line(MigrationsView(database=None)) == "no database for this environment"
    assert line(MigrationsView(database=mv.DB, error="database is locked")) == "! database is locked"
    details = render.details(env_view(tmp_path, mv.expanded(refused=None))).plain
    assert details.startswith("migrations expand 2/2 ✓ · contract ready")


def test_timeline_puts_expand_before_the_canary_and_contract_after(tmp_path: Path) -> None:
    # Rolling out 1.1.0, its expand not applied yet: the canary's steps wait behind it.
    view = env_view(tmp_path, mv.pending(), target_version="1.1.0", phase=Phase.PROGRESSING, step_index=0)
    parts, current = items(view)
    plain = [p.plain for p in parts]
    assert plain[:2] == ["○ orders-full-name", "○ orders-index"]
    assert plain[2] == "20%"  # not "● 20%": nothing is deployed before expand
    assert plain[-2:] == ["promote", "○ drop-customer"]
    assert current == 0
    assert any("reverse" in str(s.style) for s in parts[0].spans)

    # Expand applied, canary at its first step: the canary's step is current, with a ✓ trail.
    view = env_view(tmp_path, mv.expanded(), target_version="1.1.0", phase=Phase.PAUSED, step_index=1)
    parts, current = items(view)
    plain = [p.plain for p in parts]
    assert plain[:3] == ["✓ orders-full-name", "✓ orders-index", "✓ 20%"]
    assert current == 3 and plain[3].startswith("‖ ")

    # A failed expand stops the rollout there.
    view = env_view(tmp_path, mv.failed(), target_version="1.1.0", phase=Phase.ABORTED, step_index=0)
    parts, current = items(view)
    assert parts[current].plain == "✗ orders-full-name"

    # No rollout: stable's release, its contract still pending after promote; a running step is current.
    view = env_view(tmp_path, mv.running("drop-customer"), stable_version="1.1.0")
    parts, current = items(view)
    assert parts[-1].plain == "● drop-customer" and current == len(parts) - 1
    # Another release's steps are not shown around 1.0.0's rollout.
    view = env_view(tmp_path, mv.expanded(), stable_version="1.0.0")
    assert all("orders" not in p.plain for p in items(view)[0])
    assert "○ drop-customer" in Content("").join(timeline_lines(replace(view, rollout=replace(view.rollout, stable_version="1.1.0")), 200)).plain


def test_keys_say_what_they_would_do_or_why_not(tmp_path: Path) -> None:
    ask = migration_text.next_ask(env_view(tmp_path, mv.expanded()))
    assert ask.command == RunMigration(step="drop-customer") and ask.refused == mv.REFUSAL
    ask = migration_text.next_ask(env_view(tmp_path, mv.pending()))
    assert ask.command == RunMigration(step="orders-full-name") and ask.refused is None
    assert ask.what == "run migration orders-full-name (expand of 1.1.0)"
    ask = migration_text.undo_ask(env_view(tmp_path, mv.expanded()))
    assert ask.command == RollbackMigration(step="orders-index") and ask.refused is None
    ask = migration_text.undo_ask(env_view(tmp_path, mv.pending()))
    assert ask.command is None and ask.refused == "nothing is applied"
    ask = migration_text.next_ask(env_view(tmp_path, mv.running()))
    assert ask.command is None and ask.refused == "orders-index is running now"
    assert migration_text.next_ask(env_view(tmp_path, None)).refused == "no [[migrations]] in this plan"


def test_steps_table_fits_80_columns() -> None:
    table = steps_table(mv.expanded(), "orders-index", 74)
    lines = table.plain.splitlines()
    assert all(len(line) <= 74 for line in lines)
    assert lines[2].startswith("▸ ✓ applied") and "orders-index" in lines[2] and "1.2s" in lines[2] and "1 ⚠" in lines[2]
    assert "○ pending" in lines[3] and "contract" in lines[3]


# --------------------------------------------------------------------------- through Pilot

class Sent:
    """The commands the screen sent to the session (the engine's handling of them is
    tests/test_migrations_engine.py's; here: what the screen asks, with which reason)."""

    def __init__(self, session: Session) -> None:
        self.calls: list[tuple[str, Command, str]] = []
        real_check = session.check

        async def submit(env: str, command: Command, reason: str = "") -> ActionResult:
            self.calls.append((env, command, reason))
            return ActionResult(True, f"{command.action} done")

        def check(env: str, command: Command, reason: str = "") -> str | None:
            if isinstance(command, RunMigration | RollbackMigration):
                return None  # the view's refusals are the ones under test
            return real_check(env, command, reason)

        session.submit = submit  # type: ignore[method-assign]
        session.check = check  # type: ignore[method-assign]


def text(app: CockpitApp, part: str) -> str:
    return str(app.screen.query_one(part, Static).render())


def words(app: CockpitApp, part: str) -> str:
    """The part's text with its wrapping undone."""
    return " ".join(text(app, part).split())


def messages(app: CockpitApp) -> list[str]:
    return [n.message for n in app._notifications]


async def open_view(pilot, app: CockpitApp, env: str) -> None:  # type: ignore[no-untyped-def]
    await wait_for(pilot, lambda: started(app), what="started")
    main = app.screen
    assert isinstance(main, MainScreen)
    main.select_env(env)
    await pilot.press("m")
    await wait_for(pilot, lambda: isinstance(app.screen, MigrationsScreen), what="migrations view")
    await wait_for(pilot, lambda: "step" in text(app, "#migr-rows"), what="drawn")


@pytest.mark.asyncio
async def test_a_refused_contract_says_why_before_and_when_pressed(tmp_path: Path) -> None:
    session = make_session(tmp_path)
    mv.inject(session, "production", mv.expanded())
    sent = Sent(session)
    app = make_app(session)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_view(pilot, app, "production")
        assert "sqlite:///var/lib/shop/production.db" in text(app, "#migr-title")
        rows = text(app, "#migr-rows")
        assert "orders-full-name" in rows and "drop-customer" in rows and "○ pending" in rows
        # The next step is selected first: the contract, with the guard's words under the keys.
        assert text(app, "#migr-detail").startswith("drop-customer")
        keys_text = words(app, "#migr-keys")
        assert "refused: production's stable runs 1.0.0 (2 replicas)" in keys_text
        assert "roll back migration orders-index (expand of 1.1.0)" in keys_text
        await pilot.press("M")
        await wait_for(pilot, lambda: any("stable runs 1.0.0" in m for m in messages(app)), what="refusal said")
        assert isinstance(app.screen, MigrationsScreen)  # no confirmation for a refused step
        assert sent.calls == []


@pytest.mark.asyncio
async def test_run_next_on_a_protected_environment_asks_for_name_and_reason(tmp_path: Path) -> None:
    session = make_session(tmp_path)
    holder = mv.inject(session, "production", mv.pending())
    sent = Sent(session)
    app = make_app(session)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_view(pilot, app, "production")
        assert "run migration orders-full-name (expand of 1.1.0)" in text(app, "#migr-keys")
        await pilot.press("M")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirmation")
        assert "run migration orders-full-name" in str(app.screen.query_one("#what", Static).render())
        await pilot.press(*"production", "enter", *"CHG-7 expand", "enter")
        await wait_for(pilot, lambda: bool(sent.calls), what="sent")
        assert sent.calls == [("production", RunMigration(step="orders-full-name"), "CHG-7 expand")]
        await wait_for(pilot, lambda: isinstance(app.screen, MigrationsScreen), what="back on the list")

        # Escape on the confirmation sends nothing.
        await pilot.press("M")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirmation again")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MigrationsScreen), what="cancelled")
        assert len(sent.calls) == 1

        # The view follows the step as it runs, then as it ends, without a key.
        holder.value = mv.running("orders-full-name")
        await wait_for(pilot, lambda: "● running" in text(app, "#migr-rows"), what="running shown")
        assert "is running" in text(app, "#migr-keys")
        holder.value = mv.expanded()
        await wait_for(pilot, lambda: "● running" not in text(app, "#migr-rows"), what="done shown")


@pytest.mark.asyncio
async def test_roll_back_refused_and_accepted_and_the_selection(tmp_path: Path) -> None:
    session = make_session(tmp_path)
    holder = mv.inject(session, "dev", mv.pending())
    sent = Sent(session)
    app = make_app(session)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_view(pilot, app, "dev")
        assert "nothing is applied" in text(app, "#migr-keys")
        await pilot.press("U")
        await wait_for(pilot, lambda: "nothing is applied" in messages(app), what="refusal said")
        assert sent.calls == []
        # ↓ selects the next step; its lint findings show rule and line.
        assert text(app, "#migr-detail").startswith("orders-full-name")
        await pilot.press("down")
        await wait_for(pilot, lambda: text(app, "#migr-detail").startswith("orders-index"), what="selected")
        detail = text(app, "#migr-detail")
        assert "line 1:1  require-concurrent-index-creation" in detail and "CONCURRENTLY" in detail

        holder.value = mv.expanded()
        await wait_for(pilot, lambda: "roll back migration orders-index" in text(app, "#migr-keys"), what="follows")
        await pilot.press("U")  # dev is not protected: straight to the session, no confirmation
        await wait_for(pilot, lambda: bool(sent.calls), what="sent")
        assert sent.calls == [("dev", RollbackMigration(step="orders-index"), "")]

        holder.value = mv.failed()
        await wait_for(pilot, lambda: "canceling statement due to lock timeout" in text(app, "#migr-detail"), what="failed")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="closed")


@pytest.mark.asyncio
async def test_main_screen_keys_help_and_the_card(tmp_path: Path) -> None:
    session = make_session(tmp_path)
    mv.inject(session, "dev", mv.pending())
    mv.inject(session, "staging", mv.expanded(refused=None))
    sent = Sent(session)
    app = make_app(session)
    async with app.run_test(size=(200, 50)) as pilot:
        await wait_for(pilot, lambda: started(app), what="started")
        main = app.screen
        assert isinstance(main, MainScreen)
        main.tick(force=True)
        await pilot.pause()
        staging = main.query_one("#env-staging")
        await wait_for(
            pilot,
            lambda: "expand 2/2 ✓ · contract ready" in str(staging.query_one("#details", Static).render()),
            what="card line",
        )
        timeline = str(staging.query_one("#timeline", Static).render())
        assert "✓ orders-full-name" not in timeline  # staging's stable is 1.0.0: 1.1.0's steps wait
        await pilot.press("M")  # on dev, from the main screen: no need to open the view
        await wait_for(pilot, lambda: bool(sent.calls), what="sent")
        assert sent.calls == [("dev", RunMigration(step="orders-full-name"), "")]
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        body = str(app.screen.query_one("#body").render())
        assert "run the next pending step" in body and "roll back the last applied step" in body


@pytest.mark.asyncio
async def test_fits_80x24(tmp_path: Path) -> None:
    session = make_session(tmp_path)
    mv.inject(session, "production", mv.expanded())
    app = make_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_view(pilot, app, "production")
        screen = app.screen
        for part in ("#migr-title", "#migr-rows", "#migr-keys", "#migr-hint"):
            region = screen.query_one(part).region
            assert region.height >= 1 and region.bottom <= 24 and region.right <= 80, part
        assert "Esc closes" in text(app, "#migr-hint")
        rows = text(app, "#migr-rows").splitlines()
        assert len(rows) == 4  # heading and every step, nothing scrolled away


# --------------------------------------------------------------------------- the real path


@pytest.mark.asyncio
async def test_through_the_real_session_on_a_sqlite_database(tmp_path: Path) -> None:
    """No injected view: the engine reads the records from a real SQLite database. Run next
    on protected production (name + reason) applies the expand step for real; the contract
    is refused while stable runs 1.0.0, on screen before the key and again when pressed,
    and nothing is dropped; roll back last undoes the last expand step."""
    from tests.test_migrations_engine import columns, make_db, make_plan

    db = make_db(tmp_path / "shop.db")
    session = Session(make_plan(db, protected=True), state_dir=tmp_path / "state", user="alice")
    app = make_app(session)
    journal = lambda: [  # noqa: E731
        (r.action, r.outcome, r.reason)
        for r in session.journal.records(service=session.plan.service.name, limit=200)
        if r.action.startswith("migrate")
    ]
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: started(app), timeout=10, what="started")
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, MigrationsScreen), what="migrations view")
        await wait_for(pilot, lambda: "run migration orders-full-name" in words(app, "#migr-keys"), what="records read")
        assert str(db).lstrip("/") in words(app, "#migr-title")

        for name, reason in (("orders-full-name", "CHG-1 expand"), ("orders-audit", "CHG-1 audit")):
            await wait_for(pilot, lambda n=name: f"run migration {n}" in words(app, "#migr-keys"), what=f"{name} next")
            await pilot.press("M")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirmation")
            await pilot.press(*"production", "enter", *reason, "enter")
            await wait_for(
                pilot,
                lambda n=name: isinstance(app.screen, MigrationsScreen) and any(
                    n in line and "✓ applied" in line for line in text(app, "#migr-rows").splitlines()
                ),
                timeout=10,
                what=f"{name} applied",
            )
        assert "customer_name" in columns(db)
        assert ("migrate", "ok", "CHG-1 expand") in journal()

        # The contract: refused before the key is pressed, and the key says why and runs nothing.
        await wait_for(pilot, lambda: "refused" in words(app, "#migr-keys"), what="contract refused on screen")
        keys_text = words(app, "#migr-keys")
        assert "drop-customer" in keys_text and "1.0.0" in keys_text
        before = len(app._notifications)
        await pilot.press("M")
        await wait_for(pilot, lambda: len(app._notifications) > before, what="refusal said")
        assert "1.0.0" in list(app._notifications)[-1].message
        assert not isinstance(app.screen, ConfirmScreen)
        assert "customer" in columns(db)
        assert any(outcome == "refused" for action, outcome, _ in journal() if action == "migrate")

        # Roll back last: orders-audit's down action, after the protected confirmation.
        assert "roll back migration orders-audit" in words(app, "#migr-keys")
        await pilot.press("U")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirmation")
        await pilot.press(*"production", "enter", *"CHG-1 undo audit", "enter")
        await wait_for(
            pilot,
            lambda: any("orders-audit" in line and "↺" in line for line in text(app, "#migr-rows").splitlines()),
            timeout=10,
            what="orders-audit rolled back",
        )
        assert ("migrate-down", "ok", "CHG-1 undo audit") in journal()
        card = words(app, "#migr-rows")
        assert "✓ applied" in card  # orders-full-name stays applied


@pytest.mark.asyncio
async def test_help_fits_80x24_and_scrolls_to_every_key(tmp_path: Path) -> None:
    """The key list (longer still with M and U) is longer than 24 rows: it scrolls inside a
    dialog no wider than the terminal, instead of being cut off."""
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: started(app), what="started")
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        dialog = app.screen.query_one("#dialog").region
        assert dialog.right <= 80 and dialog.bottom <= 24
        assert app.screen.query_one("#hint").region.bottom <= dialog.bottom  # "Esc closes" is seen
        scroll = app.screen.query_one("#scroll")
        assert scroll.max_scroll_y > 0
        await pilot.press("end")
        await wait_for(pilot, lambda: scroll.scroll_y == scroll.max_scroll_y, what="scrolled to the end")


@pytest.mark.asyncio
async def test_a_long_list_scrolls_to_the_selected_step_at_80x24(tmp_path: Path) -> None:
    session = make_session(tmp_path)
    many = tuple(mv.step(f"step-{i:02d}", StepState.APPLIED, duration=0.1) for i in range(14))
    mv.inject(session, "dev", MigrationsView(database=mv.DB, steps=many, last_applied="step-13"))
    app = make_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_view(pilot, app, "dev")
        table = app.screen.query_one("#migr-table")
        assert 0 < table.size.height < 15  # not every row fits: the list scrolls
        for target in ("step-13", "step-00"):
            await wait_for(pilot, lambda t=target: text(app, "#migr-detail").startswith(t), what=target)
            row = next(i for i, line in enumerate(text(app, "#migr-rows").splitlines()) if line.startswith("▸"))
            assert table.scroll_y <= row < table.scroll_y + table.size.height, (target, row, table.scroll_y)
            await pilot.press(*["up"] * 13)
