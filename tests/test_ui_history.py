"""History: one order (newest first, each command before its consequences) in the screen
and the CLI; Enter opens a record in full, with the canary log kept with its rollout."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from textual.widgets import DataTable

from cockpit.adapters.memory import MemoryBackend
from cockpit.cli import cli
from cockpit.engine.state import Phase
from cockpit.engine.store import Record
from cockpit.engine.store.history import reading_order
from cockpit.model import Track
from cockpit.ui.app import CockpitApp
from cockpit.ui.screens.history import HistoryScreen
from cockpit.ui.screens.history_detail import HistoryDetailScreen
from tests.test_ui_actions import start_rollout
from tests.ui_fixtures import SIZE, make_app, make_session, started, wait_for


def rec(id_: int, action: str, outcome: str, phase: str = "Paused", env: str = "dev", user: str = "alice") -> Record:
    return Record(id_, 1000.0 + id_, user, "shop", env, action, "", outcome, f"d{id_}", None, phase,
                  "1.0.0", None, None, 0, 0, 1)  # fmt: skip


def order(records: list[Record]) -> list[tuple[int, bool]]:
    return [(row.record.id, row.consequence) for row in reading_order(records)]


def test_newest_first_with_each_command_before_its_consequences() -> None:
    machine = [
        rec(1, "initial", "ok", "Healthy"),
        rec(2, "abort", "started"),
        rec(3, "auto", "info", "Aborted", user="cockpit (alice)"),  # traffic back on stable
        rec(4, "abort", "ok", "Aborted"),
        rec(5, "promote", "refused", "Aborted"),
    ]
    assert order(machine) == [(5, False), (2, False), (3, True), (4, True), (1, False)]
    # The platform reports the abort after the command ended (mirror driver): still its consequence.
    mirror = [rec(1, "abort", "started"), rec(2, "abort", "ok", "Aborted"), rec(3, "auto", "info", "Aborted")]
    assert order(mirror) == [(1, False), (2, True), (3, True)]
    # An analysis failure later is its own entry, and other environments never join an entry.
    later = [
        rec(1, "promote", "started"),
        rec(2, "auto", "info", "Paused", env="staging"),
        rec(3, "promote", "ok", "Progressing"),
        rec(4, "auto", "info", "Aborted"),
    ]
    assert order(later) == [(4, False), (2, False), (1, False), (3, True)]
    # A command that never ended (the cockpit was killed) does not swallow what follows.
    killed = [rec(1, "rollout", "started"), rec(2, "rollout", "started"), rec(3, "rollout", "ok")]
    assert order(killed) == [(2, False), (3, True), (1, False)]


def dev(app: CockpitApp) -> MemoryBackend:
    backend = app.session.controller("dev").backend
    assert isinstance(backend, MemoryBackend)
    return backend


async def aborted_with_evidence(pilot: object, app: CockpitApp) -> None:
    keeper = app.session.rollout_logs
    keeper.after_seconds, keeper.flush_seconds = 0.2, 0.05
    await start_rollout(pilot, app)  # type: ignore[arg-type]
    for i in range(50):
        dev(app).emit(f"ERROR payment {i} failed: upstream 503", Track.CANARY)
    await pilot.press("a")  # type: ignore[attr-defined]
    await wait_for(pilot, lambda: app.session.view("dev").rollout.phase is Phase.ABORTED, what="aborted")  # type: ignore[arg-type]
    for i in range(3000):  # the live ring (2000 lines) forgets the canary
        dev(app).emit(f"stable ok {i}", Track.STABLE)

    def closed() -> bool:
        newest = app.session.journal.count()
        kept = app.session.journal.rollout_log_for("shop", "dev", newest)
        return kept is not None and kept.finished

    await wait_for(pilot, closed, what="the rollout log closed")  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_enter_opens_the_abort_with_the_canary_lines_kept_after_the_ring_forgot(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        await aborted_with_evidence(pilot, app)
        ring = app.session.logs.buffers["dev"].tail(2000)
        assert not any("payment" in line.text for line in ring)

        await pilot.press("h")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen), what="history")
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        table = screen.query_one(DataTable)
        shown = [(str(table.get_row_at(i)[3]), str(table.get_row_at(i)[4])) for i in range(4)]
        # The abort entry is on top, the user's command before the engine's consequence.
        assert shown[0] == ("abort", "started")
        assert shown[1] == ("  ↳ auto", "info") and shown[2] == ("  ↳ abort", "ok")
        assert "traffic on stable" in str(table.get_row_at(1)[6])

        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryDetailScreen), what="detail")
        detail = app.screen
        assert isinstance(detail, HistoryDetailScreen)
        fields = str(detail.query_one("#detail-fields").render())
        for expected in ("who", "alice", "command", "abort", "result", "started", "when", "reason"):
            assert expected in fields
        entry = str(detail.query_one("#detail-entry").render())
        assert entry.index("abort started") < entry.index("auto info") < entry.index("abort ok")
        assert "traffic on stable" in entry
        heading = str(detail.query_one("#detail-log-heading").render())
        assert "rollout of 1.1.0" in heading and "Aborted" in heading
        log = str(detail.query_one("#detail-log").render())
        assert "ERROR payment 0 failed" in log and "ERROR payment 49 failed" in log
        assert detail.kept_lines >= 50
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen), what="back to the list")

        # The first record (before any rollout) has no rollout log, and says so.
        screen.query_one(DataTable).move_cursor(row=screen.query_one(DataTable).row_count - 1)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryDetailScreen), what="detail of initial")
        assert "no rollout log" in str(app.screen.query_one("#detail-log-heading").render())


@pytest.mark.asyncio
async def test_cli_history_is_newest_first_and_show_prints_the_kept_lines(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: started(app), what="session start")
        await aborted_with_evidence(pilot, app)
        abort_id = next(
            r.id for r in app.session.journal.records(env="dev") if r.action == "abort" and r.outcome == "started"
        )
        screen_rows = None
        await pilot.press("h")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen), what="history")
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        screen_rows = [row.record.id for row in screen.rows]
    state = str(app.session.state_dir)
    runner = CliRunner()
    listed = runner.invoke(cli, ["history", "--state-dir", state, "--json", "--limit", "500"])
    assert listed.exit_code == 0, listed.output
    import json

    ids = [json.loads(line)["id"] for line in listed.output.splitlines()]
    assert ids == screen_rows  # one order, in the screen and the CLI
    text = runner.invoke(cli, ["history", "--state-dir", state, "--limit", "500"]).output.splitlines()
    first = [line for line in text if "shop/dev " in line][:3]
    assert " abort " in first[0] and "started" in first[0]
    assert "↳ auto" in first[1] and "traffic on stable" in first[1] and "↳ abort" in first[2]

    shown = runner.invoke(cli, ["history", "--state-dir", state, "--show", str(abort_id)])
    assert shown.exit_code == 0, shown.output
    assert "who          alice" in shown.output and "command      abort" in shown.output
    assert "canary log: rollout of 1.1.0" in shown.output and "ERROR payment 49 failed" in shown.output
    missing = runner.invoke(cli, ["history", "--state-dir", state, "--show", "99999"])
    assert missing.exit_code == 1 and "no record #99999" in missing.output
