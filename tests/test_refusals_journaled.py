"""Every refusal lands in the journal - the engine's guardrails, the drivers' rules, and
the screen's preflight - with who, where, the command (parameters included), the reason
given and why; and shows in history. Greying a key out nobody pressed journals nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable

from cockpit.engine.commands import Promote, SetWeight, StartRollout
from cockpit.engine.store import Record
from cockpit.ui.screens.history import HistoryScreen
from tests.ui_fixtures import SIZE, make_app, make_session, started, wait_for


def refusals(session) -> list[Record]:  # type: ignore[no-untyped-def]
    return [r for r in session.journal.records(service=session.plan.service.name) if r.outcome == "refused"]


@pytest.mark.asyncio
async def test_engine_refusals_are_journaled_headless(tmp_path: Path) -> None:
    session = make_session(tmp_path, user="ann")
    try:
        await session.start()
        refused = await session.submit("production", StartRollout("1.1.0"))  # protected, no reason
        assert not refused.ok and refused.message == "production is protected: a reason is required"
        refused = await session.submit("dev", Promote(), "go on")  # nothing paused
        assert not refused.ok and refused.message == "nothing is paused: dev is Healthy"
        refused = await session.submit("dev", SetWeight(30), "more")
        assert not refused.ok
        records = refusals(session)
        found = [(r.user, r.env, r.action, r.reason, r.detail) for r in records]
        assert found == [
            (
                "ann",
                "production",
                "rollout",
                "",
                "rollout 1.1.0 refused by the guardrails: production is protected: a reason is required",
            ),
            (
                "ann",
                "dev",
                "promote",
                "go on",
                "promote refused in its state: nothing is paused: dev is Healthy",
            ),
            ("ann", "dev", "set-weight", "more", f"set-weight 30% refused in its state: {refused.message}"),
        ]
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_session_check_journals_and_preview_does_not(tmp_path: Path) -> None:
    session = make_session(tmp_path, user="ann")
    try:
        await session.start()
        assert session.preview("dev", Promote()) == "nothing is paused: dev is Healthy"
        assert refusals(session) == []  # the screen greying a key out is no refusal
        assert session.check("dev", SetWeight(40)) is not None  # a person asked
        assert session.check("dev", StartRollout("1.1.0")) is None  # accepted: nothing journaled
        [record] = refusals(session)
        assert (record.user, record.env, record.action) == ("ann", "dev", "set-weight")
        assert record.detail.startswith("set-weight 40% refused before it was sent (the screen's check): ")
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_a_refusal_by_the_screens_preflight_is_journaled_and_in_history(tmp_path: Path) -> None:
    session = make_session(tmp_path)
    app = make_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        await pilot.press("right", "left")  # the keys are re-checked (greyed or not) at each move
        assert refusals(session) == []
        await pilot.press("p")  # nothing is paused: refused by the preflight, never sent
        await wait_for(pilot, lambda: bool(refusals(session)), what="journaled")
        [record] = refusals(session)
        assert (record.user, record.env, record.action) == ("alice", "dev", "promote")
        assert (
            record.detail
            == "promote refused before it was sent (the screen's check): nothing is paused: dev is Healthy"
        )
        await pilot.press("r")  # rollback: nothing older is retained - refused before the picker
        await wait_for(pilot, lambda: len(refusals(session)) == 2, what="rollback refusal journaled")
        assert refusals(session)[-1].action == "rollback"

        await pilot.press("h")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen), what="history")
        table = app.screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count > 0, what="history rows")
        rows = [" ".join(str(cell) for cell in table.get_row_at(i)) for i in range(table.row_count)]
        assert any("promote" in row and "refused" in row and "nothing is paused" in row for row in rows)
