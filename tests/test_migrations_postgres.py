"""The PostgreSQL runner against a real server (scripts/servers.sh): one transaction per
step, lock_timeout and statement_timeout, the advisory lock between two runners, a runner
killed with SIGKILL mid-step, and a wrong password."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest

pytest.register_assert_rewrite("tests.postgres_fixtures")  # also this module's plugin (below)

from cockpit.migrations.api import DatabaseUnavailable, LockHeld, StepState  # noqa: E402
from cockpit.migrations.open import open_target  # noqa: E402
from cockpit.plan.migrations import Database, Migration  # noqa: E402
from tests.postgres_fixtures import PgDatabase  # noqa: E402

pytestmark = pytest.mark.postgres
pytest_plugins = ["tests.postgres_fixtures"]


def step(name: str, up: str, down: str | None = None, **kw: Any) -> Migration:
    data: dict[str, Any] = {"name": name, "release": "1.1.0", "phase": "expand", "up": {"sql": up}, **kw}
    if down is not None:
        data["down"] = {"sql": down}
    return Migration.model_validate(data)


async def wait_for(check: Any, what: str, limit: float = 15.0) -> None:
    deadline = time.monotonic() + limit
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.mark.asyncio
async def test_failing_step_leaves_nothing_and_rerun_resumes(postgres_db: PgDatabase) -> None:
    t = postgres_db.target()
    plan = [
        step("one", "CREATE TABLE a (id int);", "DROP TABLE a;"),
        step("two", "CREATE TABLE b (id int); INSERT INTO nowhere VALUES (1);"),
    ]
    first = await t.run(plan[0], "up", by="ann@host")
    assert first.ok and "[1/1] CREATE TABLE" in first.output
    print(f"postgres: a one-statement step took {first.duration * 1000:.1f} ms")
    failed = await t.run(plan[1], "up", by="ann@host")
    assert not failed.ok and 'statement 2/2: relation "nowhere" does not exist' in (failed.error or "")
    assert postgres_db.tables() == {"a", "cockpit_migrations"}  # b rolled back with it
    recs = await t.records()
    assert recs["one"].state is StepState.APPLIED and recs["two"].state is StepState.FAILED
    # The re-run goes by the records: only what is not applied runs.
    plan[1] = step("two", "CREATE TABLE b (id int);")
    pending = [s for s in plan if (s.name not in recs) or recs[s.name].settled is not StepState.APPLIED]
    assert [s.name for s in pending] == ["two"]
    assert (await t.run(pending[0], "up", by="ann@host")).ok
    assert postgres_db.tables() == {"a", "b", "cockpit_migrations"}
    down = await t.run(plan[0], "down", by="ann@host")
    assert (
        down.ok
        and (await t.records())["one"].state is StepState.ROLLED_BACK
        and "a" not in postgres_db.tables()
    )


@pytest.mark.asyncio
async def test_a_step_and_its_record_commit_together(postgres_db: PgDatabase) -> None:
    # A step whose own record cannot be written (it drops the record table) must leave
    # nothing: were the record written after the DDL's commit, the DDL would stay.
    t = postgres_db.target()
    run = await t.run(
        step("rogue", "CREATE TABLE c (id int); DROP TABLE cockpit_migrations;"), "up", by="ann"
    )
    assert not run.ok and "cockpit_migrations" in (run.error or "")
    assert postgres_db.tables() == {"cockpit_migrations"}
    assert (await t.records())["rogue"].state is StepState.FAILED


@pytest.mark.asyncio
async def test_step_blocked_by_a_lock_fails_within_lock_timeout(postgres_db: PgDatabase) -> None:
    t = postgres_db.target()
    assert (await t.run(step("orders", "CREATE TABLE orders (id int);"), "up", by="ann")).ok
    holder = postgres_db.connect()
    holder.execute("BEGIN")
    holder.execute("SELECT * FROM orders")  # a long read: its ACCESS SHARE lock blocks ALTER
    try:
        began = time.monotonic()
        run = await t.run(
            step("add-col", "ALTER TABLE orders ADD COLUMN x int;", lock_timeout=0.5), "up", by="ann"
        )
        took = time.monotonic() - began
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert not run.ok and "lock timeout (0.5 s): canceling statement due to lock timeout" in (run.error or "")
    assert 0.5 <= run.duration < 2.0, run.duration
    print(f"postgres: lock_timeout 0.5 s -> the step failed after {run.duration:.3f} s (call {took:.3f} s)")
    assert (await t.records())["add-col"].state is StepState.FAILED


@pytest.mark.asyncio
async def test_statement_timeout_cancels(postgres_db: PgDatabase) -> None:
    run = await postgres_db.target().run(
        step("slow", "SELECT pg_sleep(5);", statement_timeout=0.3), "up", by="ann"
    )
    assert not run.ok and "statement timeout (0.3 s)" in (run.error or "") and run.duration < 2


@pytest.mark.asyncio
async def test_two_runners_race_one_runs_the_other_names_the_holder(postgres_db: PgDatabase) -> None:
    s = step("race", "SELECT pg_sleep(0.6); CREATE TABLE r (id int);")
    ann, bob = postgres_db.target(), postgres_db.target()
    first = asyncio.create_task(ann.run(s, "up", by="ann@laptop"))

    def ann_holds() -> bool:
        with postgres_db.connect() as c:
            return (
                c.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE application_name = 'cockpit ann@laptop'"
                ).fetchone()
                is not None
            )

    await wait_for(ann_holds, "ann's lock")
    while "race" not in await bob.records():  # her row is written right after her lock
        await asyncio.sleep(0.02)
    assert (await bob.records())["race"].state is StepState.RUNNING  # her lock is held: not interrupted
    with pytest.raises(LockHeld) as err:
        await bob.run(s, "up", by="bob@bastion")
    assert err.value.holder.startswith("ann@laptop (backend pid") and "ann@laptop" in str(err.value)
    assert (await first).ok
    rec = (await bob.records())["race"]
    assert rec.state is StepState.APPLIED and rec.by == "ann@laptop"


CHILD = textwrap.dedent(
    """
    import asyncio, os, sys
    from cockpit.migrations.open import open_target
    from cockpit.plan.migrations import Database, Migration
    t = open_target(Database(url=sys.argv[1], password="pg"), service="s", env="e", state_dir="/",
                    secret=lambda name: os.environ["PGPASS_FOR_TEST"])
    step = Migration.model_validate({"name": "killed", "release": "1.1.0", "phase": "expand",
        "up": {"sql": "CREATE TABLE k (id int); SELECT pg_sleep(30);"}})
    asyncio.run(t.run(step, "up", by="child@host"))
    """
)


@pytest.mark.asyncio
async def test_kill_9_mid_step_leaves_interrupted_and_nothing_applied(postgres_db: PgDatabase) -> None:
    env = {**os.environ, "PGPASS_FOR_TEST": postgres_db.password}
    child = subprocess.Popen([sys.executable, "-c", CHILD, postgres_db.url], env=env)
    try:

        def sleeping() -> bool:
            with postgres_db.connect() as c:
                q = "SELECT 1 FROM pg_stat_activity WHERE application_name = 'cockpit migrate killed' AND query LIKE '%pg_sleep%'"
                return c.execute(q).fetchone() is not None

        await wait_for(sleeping, "the child's step to run")
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(10)
    began = time.monotonic()

    def backend_gone() -> bool:
        with postgres_db.connect() as c:
            q = "SELECT 1 FROM pg_stat_activity WHERE application_name LIKE 'cockpit migrate killed'"
            return c.execute(q).fetchone() is None

    await wait_for(backend_gone, "the server to roll back the orphaned step", limit=10)
    print(
        f"postgres: the killed runner's statement was rolled back {time.monotonic() - began:.2f} s after SIGKILL"
    )
    t = postgres_db.target()
    rec = (await t.records())["killed"]
    assert rec.state is StepState.INTERRUPTED and rec.by == "child@host" and rec.settled is StepState.PENDING
    assert "k" not in postgres_db.tables()  # its CREATE TABLE never committed
    assert (await t.run(step("killed", "CREATE TABLE k (id int);"), "up", by="ann")).ok


@pytest.mark.asyncio
async def test_step_without_transaction_runs_concurrently(postgres_db: PgDatabase) -> None:
    t = postgres_db.target()
    assert (await t.run(step("orders", "CREATE TABLE orders (id int);"), "up", by="ann")).ok
    idx = step("idx", "CREATE INDEX CONCURRENTLY orders_id ON orders (id);", transaction=False)
    run = await t.run(idx, "up", by="ann")
    assert run.ok, run.error
    rec = (await t.records())["idx"]
    assert rec.state is StepState.APPLIED and not rec.transaction


@pytest.mark.asyncio
async def test_wrong_password_is_a_clear_unavailable(postgres_db: PgDatabase) -> None:
    bad = open_target(
        Database(url=postgres_db.url, password="pg"),
        service="s", env="e", state_dir="/", secret=lambda name: "Wr0ng-Secret-Value",
    )  # fmt: skip
    with pytest.raises(DatabaseUnavailable) as err:
        await bad.records()
    text = str(err.value)
    assert "password authentication failed" in text and postgres_db.url.split("/")[2] in text
    assert "Wr0ng-Secret-Value" not in text and postgres_db.password not in text


@pytest.mark.asyncio
async def test_server_down_is_a_clear_unavailable() -> None:
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = open_target(
        Database(url=f"postgresql://cockpit@127.0.0.1:{port}/shop"),
        service="s", env="e", state_dir="/", secret=str,
    )  # fmt: skip
    with pytest.raises(
        DatabaseUnavailable, match=rf"postgresql://cockpit@127.0.0.1:{port}/shop cannot be reached: .*refused"
    ):
        await t.records()
