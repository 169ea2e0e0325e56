"""``cockpit migrate``: the same guardrails, guards and journal as the screen, with exit
codes a script can act on (0 done, 1 failed, 2 refused or usage)."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

import tests.memory_backend  # noqa: F401 - registers the "memory" adapter the plan names
from cockpit.cli import cli
from cockpit.engine.store import open_store
from cockpit.migrations import records
from cockpit.migrations.api import RECORD_TABLE
from cockpit.plan.loader import load_plan
from tests.memory_backend import MemoryBackend
from tests.test_migrations_engine import PLAN, columns, make_db


@pytest.fixture
def setup(tmp_path: Path, state_dir: Path) -> tuple[Path, Path]:
    db = make_db(tmp_path / "shop.db")
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN.format(service=f"s{uuid.uuid4().hex[:8]}", db=db, contract="manual", protected="true"))
    return plan, db


def migrate(plan: Path, *args: str):
    result = CliRunner().invoke(cli, ["migrate", str(plan), "--env", "production", *args])
    return result.exit_code, result.output


def journal(plan: Path, state_dir: Path) -> list[tuple[str, str, str, str]]:
    loaded = load_plan(str(plan))
    store = open_store(loaded, state_dir, read_only=True)
    try:
        return [
            (r.action, r.outcome, r.reason, r.detail)
            for r in store.records(service=loaded.service.name, limit=1000)
            if r.action.startswith("migrate")
        ]
    finally:
        store.close()


def test_list_next_all_down_with_exit_codes(setup: tuple[Path, Path], state_dir: Path) -> None:
    plan, db = setup
    code, out = migrate(plan)
    assert code == 0, out
    assert "orders-full-name" in out and "pending" in out
    assert "next: orders-full-name" in out

    code, out = migrate(plan, "--next")
    assert code == 2 and "refused: production is protected: a reason is required" in out
    assert "customer_name" not in columns(db)

    code, out = migrate(plan, "--next", "--reason", "ticket 9")
    assert code == 0, out
    assert "\nexpand 'orders-full-name' of 1.1.0 applied in " in out
    assert "customer_name" in columns(db)

    # --all applies the rest of the expand phase, then stops at the contract's guard: the
    # platform cannot be observed from here (nothing runs), so nothing older is known gone.
    code, out = migrate(plan, "--all", "--phase", "expand", "--reason", "ticket 9")
    assert code == 0, out
    assert "orders-audit" in out and "done: 1 applied" in out
    code, out = migrate(plan, "--all", "--reason", "ticket 9")
    assert code == 2, out
    assert "refused: production's platform cannot be read" in out and "contract 'drop-customer'" in out
    assert "customer" in columns(db)

    # Rolling an expand back needs the platform seen too (1.1.0 may run).
    code, out = migrate(plan, "--down", "--reason", "ticket 9")
    assert code == 2 and "refused: production's platform cannot be read" in out, out
    assert "customer_name" in columns(db)

    entries = journal(plan, state_dir)
    assert ("migrate", "refused", "") in [(a, o, r) for a, o, r, _ in entries]
    assert [(a, o) for a, o, r, _ in entries if r == "ticket 9"][:2] == [("migrate", "started"), ("migrate", "ok")]
    assert ("migrate-down", "refused") in [(a, o) for a, o, _, _ in entries]


def test_guards_observe_the_platform_it_attaches_to(
    setup: tuple[Path, Path], state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan, db = setup
    runs = ["1.0.0"]  # what the platform runs when the CLI attaches to it

    async def attach(self: MemoryBackend) -> None:
        self.calls.append("attach")
        self.running, self.stable = True, runs[0]

    monkeypatch.setattr(MemoryBackend, "attach", attach)
    assert migrate(plan, "--all", "--phase", "expand", "--reason", "r")[0] == 0
    code, out = migrate(plan, "--next", "--reason", "r")
    assert code == 2, out
    assert "refused: production's stable runs 1.0.0 (2 replicas): contract 'drop-customer' of 1.1.0 would break it" in out
    # 1.0.0 is gone: the expand can no longer be undone, and the contract may run.
    runs[0] = "1.1.0"
    code, out = migrate(plan, "--down", "--reason", "r")
    assert code == 2 and "production's stable runs 1.1.0 (2 replicas): rolling back expand 'orders-audit'" in out
    code, out = migrate(plan, "--next", "--reason", "r")
    assert code == 0 and "contract 'drop-customer' of 1.1.0 applied in " in out, out
    assert "customer" not in columns(db)
    # The contract is last on the stack and irreversible: refused whatever runs.
    runs[0] = "1.0.0"
    code, out = migrate(plan, "--down", "--reason", "r")
    assert code == 2 and "irreversible" in out


def test_down_while_no_track_needs_the_expand(
    setup: tuple[Path, Path], state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan, db = setup

    async def attach(self: MemoryBackend) -> None:
        self.running, self.stable = True, "1.0.0"

    monkeypatch.setattr(MemoryBackend, "attach", attach)
    assert migrate(plan, "--next", "--reason", "r")[0] == 0
    code, out = migrate(plan, "--down", "--reason", "r")
    assert code == 0 and "expand 'orders-full-name' of 1.1.0 rolled back in " in out, out
    assert "customer_name" not in columns(db)
    assert ("migrate-down", "ok") in [(a, o) for a, o, _, _ in journal(plan, state_dir)]


def test_a_failing_step_exits_1_with_its_error(setup: tuple[Path, Path], state_dir: Path) -> None:
    plan, db = setup
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE audit")
    code, out = migrate(plan, "--all", "--phase", "expand", "--reason", "r")
    assert code == 1, out
    assert "failed: expand 'orders-audit' of 1.1.0 failed after" in out and "no such table: audit" in out
    code, out = migrate(plan)
    assert code == 0 and "error: statement 1/1: no such table: audit" in out


def test_resolve_an_interrupted_step(setup: tuple[Path, Path], state_dir: Path) -> None:
    plan, db = setup
    # A runner died during a step that ran outside a transaction: its row says running, the
    # lock is free, so it reads back interrupted and nothing runs until a person says.
    with sqlite3.connect(db) as conn:
        conn.execute(records.CREATE_TABLE)
        conn.execute(
            f"INSERT INTO {RECORD_TABLE} ({', '.join(records.COLUMNS)}) VALUES"
            " ('orders-full-name', 'expand', '1.1.0', 'running', 'up', 0, 'x', 1.0, NULL, '', NULL, 'eve@h')"
        )
    code, out = migrate(plan, "--next", "--reason", "r")
    assert code == 2 and "--resolve orders-full-name applied|pending" in out
    code, out = migrate(plan, "--resolve", "orders-full-name", "maybe", "--reason", "r")
    assert code == 2 and "takes applied or pending" in out
    code, out = migrate(plan, "--resolve", "orders-full-name", "pending")
    assert code == 2 and "a reason is required" in out
    code, out = migrate(plan, "--resolve", "orders-full-name", "pending", "--reason", "checked: column absent")
    assert code == 0 and "orders-full-name resolved as pending by hand" in out, out
    code, out = migrate(plan, "--next", "--reason", "r")
    assert code == 0 and "customer_name" in columns(db), out
    assert ("migrate-resolve", "ok", "checked: column absent") in [(a, o, r) for a, o, r, _ in journal(plan, state_dir)]


def test_usage_errors(setup: tuple[Path, Path]) -> None:
    plan, _ = setup
    assert migrate(plan, "--next", "--down")[0] == 2
    code, out = migrate(plan, "--phase", "expand")
    assert code == 2 and "--phase goes with --next or --all" in out
    result = CliRunner().invoke(cli, ["migrate", str(plan), "--env", "nowhere"])
    assert result.exit_code == 2 and "no environment 'nowhere'" in result.output


def test_file_actions_are_read_beside_the_plan(
    tmp_path: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = make_db(tmp_path / "shop.db")
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "full-name.sql").write_text("ALTER TABLE orders ADD COLUMN customer_name TEXT;\n")
    text = PLAN.format(service=f"s{uuid.uuid4().hex[:8]}", db=db, contract="manual", protected="false")
    text = text.replace(
        'up = { sql = "ALTER TABLE orders ADD COLUMN customer_name TEXT; UPDATE orders SET customer_name = customer;" }',
        'up = { file = "sql/full-name.sql" }',
    )
    plan = tmp_path / "plan.toml"
    plan.write_text(text)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # relative to the plan's folder, not to where it is run from
    code, out = migrate(plan, "--next")
    assert code == 0, out
    assert "expand 'orders-full-name' of 1.1.0 applied in " in out and "customer_name" in columns(db)
