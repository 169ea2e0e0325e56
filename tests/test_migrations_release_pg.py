"""The issue's must-shows end to end on a real PostgreSQL (scripts/servers.sh): the demo
service's two replicas per version behind the local backend's router, writing and reading
the database under open-loop load (production's paths, checkout writes), while the cockpit
runs 1.1.0's schema change.

* expand -> canary -> promote -> contract under load: not one failed request;
* a step blocked by a held lock fails within its lock_timeout while the traffic goes on;
* ``cockpit migrate`` killed with -9 in the middle of a step: the lock dies with it, the
  record reads back interrupted, nothing of the step stayed, and a new one applies it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from cockpit.demo.schema import CONTRACT_STEP, EXPAND_STEP, migrations_toml
from cockpit.engine.commands import Promote, RunMigration, StartRollout
from cockpit.engine.session import Session
from cockpit.engine.state import Phase
from cockpit.migrations.api import StepState
from cockpit.plan.loader import parse_plan
from tests.local_fixtures import marker_env, service_fixture  # noqa: F401
from tests.postgres_fixtures import PgDatabase, postgres_db, postgres_server  # noqa: F401

pytestmark = [pytest.mark.postgres, pytest.mark.asyncio]

PASSWORD_VAR = "COCKPIT_TEST_POSTGRES_PASSWORD"
USERS = ("/api/orders", "/api/checkout")  # production's database paths: reads and writes


def plan_text(service: str, url: str, lock_timeout: str = "1s") -> str:
    return f"""
[service]
name = "{service}"

[strategy.canary]
steps = [{{ set_weight = 50 }}, {{ pause = {{}} }}]

[secrets]
pg = "env:{PASSWORD_VAR}"

[[environments]]
name = "production"
initial_version = "1.0.0"
  [environments.backend]
  adapter = "local"
    [environments.backend.options]
    command = ["{{python}}", "-m", "cockpit.demo.service", "--version", "{{version}}", "--port", "{{port}}", "--env", "{{env}}", "--db", "{url}"]
    versions = ["1.0.0", "1.1.0"]
    replicas = 2
    secret_env = {{ PGPASSWORD = "pg" }}
  [environments.database]
  url = "{url}"
  password = "pg"
  lock_timeout = "{lock_timeout}"

{migrations_toml("postgresql")}
"""


def hold_share_lock(pg: PgDatabase) -> Any:
    """A connection inside a transaction that read orders: its share lock blocks any DDL
    on the table (ALTER needs an exclusive one) until it ends, as a long report would."""
    conn = pg.connect()
    conn.execute("BEGIN")
    conn.execute("SELECT count(*) FROM orders")
    return conn


def release(conn: Any) -> None:
    conn.execute("ROLLBACK")
    conn.close()


def columns(pg: PgDatabase) -> set[str]:
    with pg.connect() as conn:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'orders'"
        ).fetchall()
    return {r[0] for r in rows}


def record_state(pg: PgDatabase, name: str) -> str | None:
    with pg.connect() as conn:
        row = conn.execute("SELECT state FROM cockpit_migrations WHERE name = %s", (name,)).fetchone()
    return None if row is None else str(row[0])


async def until(predicate: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout}s: {what}")
        await asyncio.sleep(0.05)


class Users:
    """The demo's traffic generator against the router: 40 requests/s, open loop."""

    def __init__(self, url: str) -> None:
        argv = [sys.executable, "-m", "cockpit.demo.traffic", "--target", url, "--rps", "40"]
        self.process = subprocess.Popen(
            [*argv, "--paths", ",".join(USERS)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def stop(self) -> dict[str, Any]:
        self.process.send_signal(signal.SIGTERM)
        out, err = self.process.communicate(timeout=20)
        lines = [line for line in out.splitlines() if line.startswith("{")]
        assert lines, f"no traffic summary (exit {self.process.returncode}): {err[-500:]}"
        summary: dict[str, Any] = json.loads(lines[-1])
        return summary


@pytest_asyncio.fixture
async def production(
    service: str,
    postgres_db: PgDatabase,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[Session, PgDatabase, Users, Path]]:
    monkeypatch.setenv(PASSWORD_VAR, postgres_db.password)
    plan_file = tmp_path / "plan.toml"
    plan_file.write_text(plan_text(service, postgres_db.url))
    session = Session(
        parse_plan(plan_file.read_text(), str(plan_file)), state_dir=tmp_path / "state", user="ann"
    )
    users: Users | None = None
    try:
        assert await session.start() == []
        assert columns(postgres_db) == {"id", "customer", "total_cents", "created_at"}  # 1.0.0's
        users = Users(session.view("production").url or "")
        yield session, postgres_db, users, plan_file
    finally:
        if users is not None and users.process.poll() is None:
            users.process.kill()
            users.process.wait()
        await session.close()


def no_failures(summary: dict[str, Any]) -> None:
    assert summary["sent"] > 0 and summary["status_5xx"] == 0 and summary["errors"] == 0, summary


async def test_expand_canary_promote_contract_under_load_fails_no_request(
    production: tuple[Session, PgDatabase, Users, Path],
) -> None:
    session, pg, users, _ = production
    controller = session.controller("production")
    await asyncio.sleep(1.0)  # users on 1.0.0 alone first
    started = await session.submit("production", StartRollout("1.1.0"))
    assert started.ok, started.message
    await until(lambda: controller.state.phase is Phase.PAUSED, what="canary at 50 %")
    # The expand ran before the canary existed; both versions now write their column.
    assert record_state(pg, EXPAND_STEP) == "applied" and record_state(pg, CONTRACT_STEP) is None
    await asyncio.sleep(1.5)
    assert (await session.submit("production", Promote())).ok
    await until(lambda: controller.state.phase is Phase.HEALTHY, what="promoted")
    contracted = await session.submit("production", RunMigration(step=CONTRACT_STEP))
    assert contracted.ok, contracted.message
    await asyncio.sleep(1.0)  # 1.1.0 alone on the contracted schema
    summary = users.stop()
    no_failures(summary)
    assert columns(pg) == {"id", "customer_name", "total_cents", "created_at"}
    with pg.connect() as conn:
        # Every order kept its customer, whichever version wrote it.
        assert conn.execute("SELECT count(*) FROM orders WHERE customer_name IS NULL").fetchone() == (0,)
    migrations = controller.migrations
    assert migrations is not None
    await migrations.refresh()
    durations = {
        name: round(r.finished_at - r.started_at, 3)
        for name, r in migrations.records.items()
        if r.finished_at is not None
    }
    print(
        f"\nrelease under load: {summary['sent']} requests, 0 failed, p99 {summary['p99_ms']} ms; steps {durations}"
    )


async def test_a_step_behind_a_held_lock_fails_within_its_lock_timeout_while_users_are_served(
    production: tuple[Session, PgDatabase, Users, Path],
) -> None:
    session, pg, users, _ = production
    await asyncio.sleep(0.5)
    holder = hold_share_lock(pg)
    try:
        started = time.monotonic()
        result = await session.submit("production", RunMigration(step=EXPAND_STEP))
        waited = time.monotonic() - started
        assert not result.ok and "lock timeout" in result.message, result.message
        assert 1.0 <= waited < 2.5, waited  # lock_timeout = 1 s, plus the runner's own work
        assert "customer_name" not in columns(pg) and record_state(pg, EXPAND_STEP) == "failed"
    finally:
        release(holder)
    ran = await session.submit("production", RunMigration(step=EXPAND_STEP))
    assert ran.ok, ran.message
    await asyncio.sleep(0.5)
    summary = users.stop()
    no_failures(summary)
    print(f"\nheld lock: step failed after {waited:.2f} s (lock_timeout 1 s); users: {summary}")


async def test_cockpit_killed_during_a_step_then_a_new_one_reconciles(
    production: tuple[Session, PgDatabase, Users, Path], tmp_path: Path
) -> None:
    session, pg, users, plan_file = production
    plan_file.write_text(plan_text(session.plan.service.name, pg.url, lock_timeout="30s"))
    migrate = [sys.executable, "-m", "cockpit", "migrate", str(plan_file), "--env", "production", "--next"]
    migrate += ["--state-dir", str(tmp_path / "state")]
    holder = hold_share_lock(pg)  # keeps the step waiting inside its transaction
    first = subprocess.Popen(
        migrate, env={**os.environ, **marker_env("migrate")}, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        await until(lambda: record_state(pg, EXPAND_STEP) == "running", what="the step under way")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
        release(holder)
    # The dead runner's advisory lock went with its connection: the record reads back
    # interrupted, and for a transactional step nothing of it stayed.
    migrations = session.controller("production").migrations
    assert migrations is not None

    async def interrupted() -> bool:
        await migrations.refresh()
        record = migrations.records.get(EXPAND_STEP)
        return record is not None and record.state is StepState.INTERRUPTED

    deadline = time.monotonic() + 10
    while not await interrupted():
        assert time.monotonic() < deadline, "the killed runner's step never read back interrupted"
        await asyncio.sleep(0.1)
    await until(lambda: "customer_name" not in columns(pg), timeout=10, what="the half-run step undone")
    second = subprocess.run(migrate, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0, second.stdout + second.stderr
    assert record_state(pg, EXPAND_STEP) == "applied" and "customer_name" in columns(pg)
    summary = users.stop()
    no_failures(summary)
