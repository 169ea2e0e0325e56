"""The SQLite runner against real database files: records, one transaction per step, the
lock, both timeouts, and a runner killed mid-step."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from cockpit.migrations.api import LockHeld, MigrationError, StepState
from cockpit.migrations.open import open_target
from cockpit.migrations.order import at_or_before, release_key
from cockpit.migrations.sqlite import SqliteTarget
from cockpit.migrations.urls import BadDatabaseUrl, parse
from cockpit.plan.migrations import Database, Migration

SLOW_SQL = (
    "CREATE TABLE slow (n INTEGER);"
    " INSERT INTO slow WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c;"
)


def step(name: str, up: str, down: str | None = None, **kw: Any) -> Migration:
    data: dict[str, Any] = {"name": name, "release": "1.1.0", "phase": "expand", "up": {"sql": up}, **kw}
    if down is not None:
        data["down"] = {"sql": down}
    return Migration.model_validate(data)


def target(tmp_path: Path, **db: Any) -> SqliteTarget:
    t = open_target(
        Database(url="sqlite:///{state_dir}/{env}.db", **db),
        service="shop", env="staging", state_dir=tmp_path, secret=lambda name: f"value-of-{name}",
    )  # fmt: skip
    assert isinstance(t, SqliteTarget)
    return t


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_release_order_is_natural() -> None:
    assert release_key("1.10.0") > release_key("1.9.0") > release_key("1.9")
    assert release_key("v1.2.0") == release_key("1.2.0")
    assert sorted(["1.10.0", "1.2.0", "1.9.1"], key=release_key) == ["1.2.0", "1.9.1", "1.10.0"]
    assert at_or_before("1.1.0", "1.1.0") and not at_or_before("1.10.0", "1.9.9")


def test_urls_are_checked_and_described_without_password() -> None:
    with pytest.raises(BadDatabaseUrl, match="password") as err:
        parse("postgresql://cockpit:hunter2@db:5432/shop")
    assert "hunter2" not in str(err.value)
    with pytest.raises(BadDatabaseUrl, match="sqlite:///absolute"):
        parse("sqlite://relative.db")
    with pytest.raises(BadDatabaseUrl, match="absolute"):
        parse("sqlite:///../up.db")
    assert parse("sqlite:////srv/a.db") == parse("sqlite:///srv/a.db")
    with pytest.raises(BadDatabaseUrl, match="unsupported"):
        parse("mysql://x@y/z")
    pg = parse("postgresql://cockpit@127.0.0.1:5433/shop?sslmode=disable")
    assert pg.description == "postgresql://cockpit@127.0.0.1:5433/shop"


@pytest.mark.asyncio
async def test_up_down_and_records(tmp_path: Path) -> None:
    t = target(tmp_path)
    s = step(
        "add-orders", "CREATE TABLE orders (id INTEGER); INSERT INTO orders VALUES (1);", "DROP TABLE orders;"
    )
    lines: list[str] = []
    run = await t.run(s, "up", by="ann@host", on_line=lines.append)
    await asyncio.sleep(0)  # on_line is delivered through the loop
    assert run.ok and run.error is None and "[2/2]" in run.output and len(lines) == 2
    rec = (await t.records())["add-orders"]
    assert rec.state is StepState.APPLIED and rec.by == "ann@host" and rec.finished_at is not None
    assert "orders" in tables(tmp_path / "staging.db")
    with pytest.raises(MigrationError, match="already applied"):
        await t.run(s, "up", by="ann@host")
    down = await t.run(s, "down", by="ann@host")
    assert down.ok and (await t.records())["add-orders"].state is StepState.ROLLED_BACK
    assert "orders" not in tables(tmp_path / "staging.db")
    with pytest.raises(MigrationError, match="not applied"):
        await t.run(s, "down", by="ann@host")


@pytest.mark.asyncio
async def test_failing_step_leaves_nothing_and_retry_resumes(tmp_path: Path) -> None:
    t = target(tmp_path)
    first = step("one", "CREATE TABLE a (id INTEGER);")
    broken = step("two", "CREATE TABLE b (id INTEGER); INSERT INTO nowhere VALUES (1);")
    assert (await t.run(first, "up", by="ann")).ok
    run = await t.run(broken, "up", by="ann")
    assert (
        not run.ok and "statement 2/2" in (run.error or "") and "no such table: nowhere" in (run.error or "")
    )
    assert "b" not in tables(tmp_path / "staging.db")  # the first statement rolled back too
    rec = (await t.records())["two"]
    assert rec.state is StepState.FAILED and rec.settled is StepState.PENDING
    fixed = step("two", "CREATE TABLE b (id INTEGER);")
    assert (await t.run(fixed, "up", by="ann")).ok
    assert {n: r.state for n, r in (await t.records()).items()} == {
        "one": StepState.APPLIED,
        "two": StepState.APPLIED,
    }


@pytest.mark.asyncio
async def test_a_step_and_its_record_commit_together(tmp_path: Path) -> None:
    # A step whose own record cannot be written (it drops the record table) leaves nothing.
    t = target(tmp_path)
    run = await t.run(
        step("rogue", "CREATE TABLE c (id INTEGER); DROP TABLE cockpit_migrations;"), "up", by="ann"
    )
    assert not run.ok and "cockpit_migrations" in (run.error or "")
    assert tables(tmp_path / "staging.db") == {"cockpit_migrations"}
    assert (await t.records())["rogue"].state is StepState.FAILED


@pytest.mark.asyncio
async def test_lock_held_names_holder_and_runs_nothing(tmp_path: Path) -> None:
    t = target(tmp_path)
    held = t._acquire("bob@bastion")
    try:
        with pytest.raises(LockHeld) as err:
            await t.run(step("one", "CREATE TABLE a (id INTEGER);"), "up", by="ann")
        assert "bob@bastion" in err.value.holder and "bob@bastion" in str(err.value)
    finally:
        t._release(held)
    assert "a" not in tables(tmp_path / "staging.db") and await t.records() == {}


@pytest.mark.asyncio
async def test_blocked_step_fails_within_lock_timeout(tmp_path: Path) -> None:
    t = target(tmp_path)  # the database's default is 2 s: the step's own 0.3 s must win
    await t.records()  # creates the file and its record table
    other = sqlite3.connect(tmp_path / "staging.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # a writer that holds the database
    try:
        began = time.monotonic()
        # SQLite locks the whole file: even the step's 'running' row waits, then gives up.
        with pytest.raises(MigrationError, match=r"lock timeout \(0.3 s\)"):
            await t.run(step("one", "CREATE TABLE a (id INTEGER);", lock_timeout=0.3), "up", by="ann")
        took = time.monotonic() - began
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert 0.25 < took < 2.5, took  # busy_timeout, not a hang
    print(f"sqlite: blocked step gave up after {took:.3f} s (lock_timeout 0.3 s)")
    assert "a" not in tables(tmp_path / "staging.db") and await t.records() == {}


@pytest.mark.asyncio
async def test_statement_timeout_interrupts(tmp_path: Path) -> None:
    t = target(tmp_path)
    began = time.monotonic()
    run = await t.run(step("slow", SLOW_SQL, statement_timeout=0.2), "up", by="ann")
    assert not run.ok and "statement timeout (0.2 s)" in (run.error or "")
    assert time.monotonic() - began < 3
    assert "slow" not in tables(tmp_path / "staging.db")


@pytest.mark.asyncio
async def test_unreadable_sql_file_runs_nothing_and_records_nothing(tmp_path: Path) -> None:
    t = open_target(
        Database(url=f"sqlite:///{tmp_path}/shop.db"),
        service="s", env="e", state_dir="/", secret=str, plan_dir=tmp_path,
    )  # fmt: skip
    missing = Migration.model_validate(
        {"name": "from-file", "release": "1.1.0", "phase": "expand", "up": {"file": "sql/up.sql"}}
    )
    with pytest.raises(MigrationError, match=r"sql/up\.sql' cannot be read: No such file"):
        await t.run(missing, "up", by="ann")
    assert await t.records() == {}
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "up.sql").write_text("CREATE TABLE f (id INTEGER);")
    assert (await t.run(missing, "up", by="ann")).ok and "f" in tables(tmp_path / "shop.db")


@pytest.mark.asyncio
async def test_cancelled_run_releases_the_lock_only_after_its_sql_ended(tmp_path: Path) -> None:
    t = target(tmp_path)
    task = asyncio.create_task(t.run(step("slow", SLOW_SQL, statement_timeout=0.8), "up", by="ann"))
    while not (await t.records()).get("slow"):
        await asyncio.sleep(0.02)
    assert (await t.records())["slow"].state is StepState.RUNNING  # its runner holds the lock
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # By now the statement has ended: the file takes a writer at once and the lock is free.
    other = sqlite3.connect(tmp_path / "staging.db", timeout=0, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("ROLLBACK")
    other.close()
    assert t._lock_free() and "slow" not in tables(tmp_path / "staging.db")


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from cockpit.migrations.open import open_target
    from cockpit.plan.migrations import Database, Migration
    t = open_target(Database(url=sys.argv[1]), service="shop", env="e", state_dir="/", secret=str)
    step = Migration.model_validate({"name": "slow", "release": "1.1.0", "phase": "expand",
        "transaction": sys.argv[3] == "1", "up": {"sql": sys.argv[2]}})
    asyncio.run(t.run(step, "up", by="child@host"))
    """
)


def run_and_kill(db: Path, sql: str, transaction: bool) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, f"sqlite:///{db}", sql, "1" if transaction else "0"]
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # wait for its 'running' row
            if db.exists():
                with sqlite3.connect(db, timeout=5) as conn:
                    try:
                        if conn.execute("SELECT state FROM cockpit_migrations").fetchall() == [("running",)]:
                            break
                    except sqlite3.OperationalError:
                        pass
            time.sleep(0.05)
        else:
            pytest.fail("the child never recorded its step as running")
        time.sleep(0.2)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(10)


@pytest.mark.asyncio
async def test_kill_9_mid_step_reads_back_interrupted(tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    await asyncio.to_thread(run_and_kill, db, SLOW_SQL, True)
    t = open_target(Database(url=f"sqlite:///{db}"), service="s", env="e", state_dir="/", secret=str)
    rec = (await t.records())["slow"]
    assert rec.state is StepState.INTERRUPTED and rec.by == "child@host"
    assert rec.settled is StepState.PENDING  # its transaction died with it
    assert "slow" not in tables(db)
    again = step("slow", "CREATE TABLE slow (n INTEGER);")
    assert (await t.run(again, "up", by="ann")).ok


@pytest.mark.asyncio
async def test_interrupted_step_without_transaction_needs_a_person(tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    await asyncio.to_thread(run_and_kill, db, SLOW_SQL, False)
    t = open_target(Database(url=f"sqlite:///{db}"), service="s", env="e", state_dir="/", secret=str)
    s = step("slow", "CREATE TABLE slow (n INTEGER);", transaction=False)
    assert (await t.records())["slow"].settled is StepState.INTERRUPTED
    with pytest.raises(MigrationError, match="--resolve slow applied"):
        await t.run(s, "up", by="ann")
    resolved = await t.resolve(s, "applied", by="ann")
    assert resolved.state is StepState.APPLIED and (await t.records())["slow"].state is StepState.APPLIED


@pytest.mark.asyncio
async def test_command_step_masks_secrets_and_records(tmp_path: Path) -> None:
    t = target(tmp_path)
    cmd = Migration.model_validate({
        "name": "by-cli", "release": "1.1.0", "phase": "expand",
        "up": {"command": [sys.executable, "-c", "import os; print(os.environ['DB_PASSWORD'], '{version}', '{env}')"],
               "secret_env": {"DB_PASSWORD": "db"}},
    })  # fmt: skip
    run = await t.run(cmd, "up", by="ann")
    assert run.ok and run.output == "*** 1.1.0 staging" and "value-of-db" not in run.output
    rec = (await t.records())["by-cli"]
    assert rec.state is StepState.APPLIED and not rec.transaction and "value-of-db" not in rec.output
