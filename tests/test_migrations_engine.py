"""Migrations in the release, through the engine: real SQLite databases through the
runner, the memory backend as the platform. Expand runs before the canary exists, a failing
expand stops the rollout with nothing deployed, contract waits until no older version
runs, and every step (and refusal) is in the journal."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from pathlib import Path

import pytest

from cockpit.engine.commands import Promote, Rollback, RollbackMigration, RunMigration, StartRollout
from cockpit.engine.commands import Retry as RetryCommand
from cockpit.engine.session import Session
from cockpit.engine.state import Activity, Cause, Phase
from cockpit.migrations.api import StepState
from cockpit.migrations.lint import NOT_POSTGRES
from cockpit.plan import parse_plan
from tests.memory_backend import MemoryBackend

pytest.register_assert_rewrite("tests.postgres_fixtures")
from tests.postgres_fixtures import PgDatabase  # noqa: E402

pytest_plugins = ["tests.postgres_fixtures"]  # postgres_db: a fresh database per test

# 1.1.0 renames orders.customer to customer_name the expand/contract way.
STEPS = """
[[migrations]]
name = "orders-full-name"
release = "1.1.0"
phase = "expand"
up = {{ sql = "ALTER TABLE orders ADD COLUMN customer_name TEXT; UPDATE orders SET customer_name = customer;" }}
down = {{ sql = "ALTER TABLE orders DROP COLUMN customer_name;" }}

[[migrations]]
name = "orders-audit"
release = "1.1.0"
phase = "expand"
up = {{ sql = "INSERT INTO audit (what) VALUES ('1.1.0');" }}
down = {{ sql = "DELETE FROM audit WHERE what = '1.1.0';" }}

[[migrations]]
name = "drop-customer"
release = "1.1.0"
phase = "contract"
irreversible = true
up = {{ sql = "ALTER TABLE orders DROP COLUMN customer;" }}
"""

PLAN = """
[service]
name = "{service}"

[[environments]]
name = "production"
protected = {protected}
initial_version = "1.0.0"
  [environments.backend]
  adapter = "memory"
  [environments.database]
  url = "sqlite:///{db}"
  contract = "{contract}"

[strategy.canary]
steps = [{{ set_weight = 50 }}, {{ pause = {{}} }}]
""" + STEPS


def make_plan(db: Path, *, contract: str = "manual", protected: bool = False, service: str | None = None):
    text = PLAN.format(
        service=service or f"s{uuid.uuid4().hex[:8]}",
        db=db,
        contract=contract,
        protected=str(protected).lower(),
    )
    return parse_plan(text)


def make_db(path: Path, audit: bool = True) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT)")
        conn.execute("INSERT INTO orders (customer) VALUES ('ann')")
        if audit:
            conn.execute("CREATE TABLE audit (what TEXT)")
    return path


def columns(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {row[1] for row in conn.execute("PRAGMA table_info(orders)")}


async def until(predicate, timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout}s: {what}")
        await asyncio.sleep(0.02)


def journal(session: Session, *actions: str):
    return [
        (r.action, r.outcome, r.detail)
        for r in session.journal.records(service=session.plan.service.name, limit=1000)
        if r.action in actions
    ]


def backend(session: Session) -> MemoryBackend:
    return MemoryBackend.instances[session.plan.service.name, "production"]


async def started(plan, state_dir: Path, user: str = "ann") -> Session:
    session = Session(plan, state_dir=state_dir, user=user)
    assert await session.start() == []
    return session


@pytest.mark.asyncio
async def test_expand_runs_before_the_canary_exists(state_dir: Path, tmp_path: Path) -> None:
    db = make_db(tmp_path / "shop.db")
    session = await started(make_plan(db), state_dir)
    try:
        mem = backend(session)
        seen_at_deploy: list[set[str]] = []
        deploy = mem.deploy_canary

        async def watching_deploy(version: str) -> None:
            # What the database holds at the very moment the canary is deployed.
            seen_at_deploy.append(columns(db))
            await deploy(version)

        mem.deploy_canary = watching_deploy  # type: ignore[method-assign]
        reasons: list[str] = []
        session.controller("production").add_change_listener(
            lambda: reasons.append(session.controller("production").state.reason)
        )
        result = await session.submit("production", StartRollout("1.1.0"))
        assert result.ok, result.message
        await until(lambda: session.view("production").rollout.phase is Phase.PAUSED, what="paused at 50%")
        assert seen_at_deploy == [{"id", "customer", "customer_name"}]
        assert any(r.startswith("expand 1/2: orders-full-name") for r in reasons)
        assert any(r.startswith("expand 2/2: orders-audit") for r in reasons)
        view = session.view("production").migrations
        assert view is not None
        states = {s.name: s.state for s in view.steps}
        assert states == {
            "orders-full-name": StepState.APPLIED,
            "orders-audit": StepState.APPLIED,
            "drop-customer": StepState.PENDING,
        }
        # The contract is refused while the rollout is on.
        assert view.next_step == "drop-customer" and "a rollout of 1.1.0 is in progress" in (view.next_refused or "")
        entries = journal(session, "migrate")
        assert [(a, o) for a, o, _ in entries] == [("migrate", "started"), ("migrate", "ok")] * 2
        assert entries[1][2].startswith("expand 'orders-full-name' of 1.1.0 applied in ")
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_failing_expand_stops_the_rollout_with_nothing_deployed_and_retry_resumes(
    state_dir: Path, tmp_path: Path
) -> None:
    db = make_db(tmp_path / "shop.db", audit=False)  # orders-audit needs a table that is missing
    session = await started(make_plan(db), state_dir)
    try:
        mem = backend(session)
        assert (await session.submit("production", StartRollout("1.1.0"))).ok
        controller = session.controller("production")
        await until(lambda: controller.state.phase is Phase.ABORTED, what="stopped by the failing step")
        state = controller.state
        assert state.cause is Cause.MIGRATION_FAILED and state.activity is Activity.IDLE
        assert "orders-audit" in state.reason and "no such table: audit" in state.reason
        assert "nothing was deployed" in state.reason
        assert "deploy_canary" not in mem.calls and mem.canary is None
        failed = [e for e in journal(session, "migrate") if e[1] == "failed"]
        assert len(failed) == 1 and "no such table: audit" in failed[0][2]
        view = session.view("production").migrations
        assert view is not None
        audit = next(s for s in view.steps if s.name == "orders-audit")
        assert audit.state is StepState.FAILED and "no such table: audit" in (audit.error or "")

        # A person fixes the database; retry runs only what is not applied.
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE audit (what TEXT)")
        assert (await session.submit("production", RetryCommand())).ok
        await until(lambda: controller.state.phase is Phase.PAUSED, what="deployed after the retry")
        assert mem.canary == "1.1.0"
        started_steps = [d for a, o, d in journal(session, "migrate") if o == "started"]
        assert sum("orders-full-name" in d for d in started_steps) == 1  # not applied twice
        assert sum("orders-audit" in d for d in started_steps) == 2
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_deploy_guard_reads_the_database_not_memory(state_dir: Path, tmp_path: Path) -> None:
    """Between the expand task and the deploy someone undoes a step by hand: the canary
    deploy is refused on what the record table says now."""
    db = make_db(tmp_path / "shop.db")
    session = await started(make_plan(db), state_dir)
    try:
        mem = backend(session)
        controller = session.controller("production")
        migrations = controller.migrations
        assert migrations is not None
        run_expand = migrations.run_expand

        async def then_undone(*args, **kwargs):
            outcome = await run_expand(*args, **kwargs)
            with sqlite3.connect(db) as conn:
                conn.execute("UPDATE cockpit_migrations SET state = 'pending' WHERE name = 'orders-audit'")
            return outcome

        migrations.run_expand = then_undone  # type: ignore[method-assign]
        assert (await session.submit("production", StartRollout("1.1.0"))).ok
        await until(lambda: controller.state.phase is Phase.ABORTED, what="deploy refused")
        assert controller.state.cause is Cause.MIGRATION_FAILED
        assert "expand 'orders-audit' of 1.1.0 is pending: 1.1.0 cannot be deployed before it" in controller.state.reason
        assert mem.canary is None and "deploy_canary" not in mem.calls
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_contract_refused_while_the_old_version_runs_then_allowed_after_promote(
    state_dir: Path, tmp_path: Path
) -> None:
    db = make_db(tmp_path / "shop.db")
    session = await started(make_plan(db, protected=True), state_dir)
    try:
        # Protected: the usual guardrails (a reason) hold for migrations too.
        refused = await session.submit("production", RunMigration())
        assert not refused.ok and refused.message == "production is protected: a reason is required"
        for name in ("orders-full-name", "orders-audit"):
            ran = await session.submit("production", RunMigration(step=name), "ticket 7")
            assert ran.ok, ran.message
        # Stable 1.0.0 still reads orders.customer: dropping it now would break it.
        why = "production's stable runs 1.0.0 (2 replicas): contract 'drop-customer' of 1.1.0 would break it"
        result = await session.submit("production", RunMigration(), "ticket 7")
        assert not result.ok and result.message == why
        assert "customer" in columns(db)
        assert session.preview("production", RunMigration()) == why  # the screen says it before
        assert ("migrate", "refused", f"migrate refused in its state: {why}") in journal(session, "migrate")

        assert (await session.submit("production", StartRollout("1.1.0"), "ticket 7")).ok
        controller = session.controller("production")
        await until(lambda: controller.state.phase is Phase.PAUSED, what="paused at 50%")
        # The canary at 50 %: 1.0.0 is still there.
        result = await session.submit("production", RunMigration(step="drop-customer"), "ticket 7")
        assert not result.ok and "a rollout of 1.1.0 is in progress" in result.message
        assert (await session.submit("production", Promote(), "ticket 7")).ok
        await until(lambda: controller.state.phase is Phase.HEALTHY, what="promoted")
        result = await session.submit("production", RunMigration(step="drop-customer"), "ticket 7")
        assert result.ok, result.message
        assert "customer" not in columns(db)
        # The contract is applied and irreversible: nothing rolls back past it.
        view = session.view("production").migrations
        assert view is not None and view.last_applied == "drop-customer"
        assert view.rollback_refused == "contract 'drop-customer' of 1.1.0 is irreversible: it cannot be rolled back"
        undo = await session.submit("production", RollbackMigration(), "ticket 7")
        assert not undo.ok and undo.message == view.rollback_refused
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_after_the_contract_no_rollback_or_rollout_brings_the_old_version_back(
    state_dir: Path, tmp_path: Path
) -> None:
    """drop-customer removed what 1.0.0 reads: a rollback (or a rollout) to 1.0.0 would
    serve errors, so it is refused, read from the database, and the platform keeps 1.1.0."""
    db = make_db(tmp_path / "shop.db")
    session = await started(make_plan(db, contract="after-promote"), state_dir)
    try:
        controller = session.controller("production")
        assert (await session.submit("production", StartRollout("1.1.0"))).ok
        await until(lambda: controller.state.phase is Phase.PAUSED, what="paused")
        assert (await session.submit("production", Promote())).ok
        await until(lambda: "customer" not in columns(db), what="contract after promote")
        await until(lambda: journal(session, "migrate")[-1][1] != "started", what="contract journaled")
        why = (
            "contract 'drop-customer' of 1.1.0 is applied: the schema no longer has what 1.0.0 uses,"
            " so 1.0.0 cannot run here again"
        )
        back = await session.submit("production", Rollback())
        assert not back.ok and why in back.message, back.message
        assert backend(session).stable == "1.1.0"  # nothing deployed
        again = await session.submit("production", StartRollout("1.0.0"))
        if again.ok:  # the rollout starts, its canary deploy is refused on the records
            await until(lambda: controller.state.phase is not Phase.PROGRESSING, what="stopped")
            assert why in controller.state.reason, controller.state.reason
        else:
            assert why in again.message, again.message
        assert backend(session).canary is None and backend(session).stable == "1.1.0"
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_contract_guard_observes_the_platform_right_before_it_runs(state_dir: Path, tmp_path: Path) -> None:
    """The last poll said 1.1.0 alone; the platform runs 1.0.0 again when the step is asked
    for (someone rolled back by hand): the guard sees that, not the poll."""
    db = make_db(tmp_path / "shop.db")
    session = await started(make_plan(db), state_dir)
    try:
        for _ in range(2):
            assert (await session.submit("production", RunMigration())).ok
        controller = session.controller("production")
        mem = backend(session)
        mem.stable = "1.1.0"
        controller.poll.status = await mem.status()
        assert session.preview("production", RunMigration()) is None  # as last polled
        mem.stable = "1.0.0"  # what runs now
        result = await session.submit("production", RunMigration())
        assert not result.ok and result.message.startswith("production's stable runs 1.0.0 (2 replicas)")
        assert "customer" in columns(db)
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_contract_runs_by_itself_after_promote(state_dir: Path, tmp_path: Path) -> None:
    db = make_db(tmp_path / "shop.db")
    session = await started(make_plan(db, contract="after-promote"), state_dir)
    try:
        controller = session.controller("production")
        assert (await session.submit("production", StartRollout("1.1.0"))).ok
        await until(lambda: controller.state.phase is Phase.PAUSED, what="paused")
        assert "customer" in columns(db)  # not while the old version runs
        assert (await session.submit("production", Promote())).ok
        await until(lambda: "customer" not in columns(db), what="contract after promote")
        await until(lambda: journal(session, "migrate")[-1][1] != "started", what="contract journaled")
        ok = [d for a, o, d in journal(session, "migrate") if o == "ok"]
        assert ok[-1].startswith("contract 'drop-customer' of 1.1.0 applied in ")
        assert controller.state.phase is Phase.HEALTHY and controller.state.stable_version == "1.1.0"
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_roll_back_expand_while_reversible_refused_once_a_track_needs_it(
    state_dir: Path, tmp_path: Path
) -> None:
    db = make_db(tmp_path / "shop.db")
    session = await started(make_plan(db), state_dir)
    try:
        assert (await session.submit("production", RunMigration())).ok
        assert "customer_name" in columns(db)
        # Nothing runs 1.1.0 yet: the expand can be undone.
        result = await session.submit("production", RollbackMigration(step="orders-full-name"))
        assert result.ok, result.message
        assert "customer_name" not in columns(db)
        entries = journal(session, "migrate-down")
        assert [o for _, o, _ in entries] == ["started", "ok"]
        assert entries[-1][2].startswith("expand 'orders-full-name' of 1.1.0 rolled back in ")
        view = session.view("production").migrations
        assert view is not None
        assert next(s for s in view.steps if s.name == "orders-full-name").state is StepState.ROLLED_BACK

        # Once 1.1.0 runs (here: its canary) the expand is what it reads: refused.
        assert (await session.submit("production", StartRollout("1.1.0"))).ok
        controller = session.controller("production")
        await until(lambda: controller.state.phase is Phase.PAUSED, what="paused")
        result = await session.submit("production", RollbackMigration())
        assert not result.ok
        assert result.message == (
            "a rollout of 1.1.0 is in progress on production: rolling back expand 'orders-audit' of 1.1.0 would break it"
        )
        assert "customer_name" in columns(db)
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_two_sessions_racing_for_one_step_run_it_once(state_dir: Path, tmp_path: Path) -> None:
    db = make_db(tmp_path / "shop.db")
    # A step long enough for both to be at it together.
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE big (n INTEGER)")
    plan = make_plan(db)
    slow = plan.migrations[0].model_copy(
        update={
            "up": plan.migrations[0].up.model_copy(
                update={
                    "sql": "INSERT INTO big WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c"
                    " LIMIT 400000) SELECT x FROM c; ALTER TABLE orders ADD COLUMN customer_name TEXT;"
                }
            )
        }
    )
    plan.migrations[0] = slow
    one = Session(plan, state_dir=state_dir / "one", user="ann")
    two = Session(plan, state_dir=state_dir / "two", user="bob")
    try:
        results = await asyncio.gather(
            one.submit("production", RunMigration(step="orders-full-name")),
            two.submit("production", RunMigration(step="orders-full-name")),
        )
        assert sorted(r.ok for r in results) == [False, True], [r.message for r in results]
        winner = "ann" if results[0].ok else "bob"
        loser = next(r for r in results if not r.ok)
        # It found the lock held (or the record running) and says who holds it; or, reading the records after the
        # winner's step ended, it found the step applied (the list moved on): nothing ran twice.
        assert (
            loser.message.startswith("another cockpit is migrating sqlite:///") and f"cockpit {winner}@" in loser.message
        ) or loser.message.startswith(f"expand 'orders-full-name' of 1.1.0 is running now by {winner}@") or loser.message in (
            "expand 'orders-full-name' of 1.1.0 is already applied",
            "the next step is now 'orders-audit', not 'orders-full-name': look again",
        ), loser.message
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT count(*) FROM big").fetchone() == (400000,)
        ran = [s for s in (one, two) if any(o == "ok" for _, o, _ in journal(s, "migrate"))]
        assert len(ran) == 1
    finally:
        await one.close()
        await two.close()


@pytest.mark.asyncio
async def test_no_database_and_no_migrations_are_said(state_dir: Path, tmp_path: Path) -> None:
    text = PLAN.format(service=f"s{uuid.uuid4().hex[:8]}", db="x", contract="manual", protected="false")
    without_db = parse_plan(text.replace('  [environments.database]\n  url = "sqlite:///x"\n  contract = "manual"\n', ""))
    session = Session(without_db, state_dir=state_dir)
    try:
        view = session.view("production")
        assert view.migrations is not None and view.migrations.database is None
        why = "production has no database in the plan ([environments.database]): no step runs here"
        assert session.preview("production", RunMigration()) == why
        assert (await session.submit("production", RunMigration())).message == why
    finally:
        await session.close()
    plain = parse_plan(text.split("[[migrations]]")[0].replace("url = \"sqlite:///x\"", "url = \"sqlite:///x\""))
    session = Session(plain, state_dir=state_dir)
    try:
        assert session.view("production").migrations is None
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_view_carries_records_and_lint_findings(state_dir: Path, tmp_path: Path) -> None:
    db = make_db(tmp_path / "shop.db")
    session = await started(make_plan(db), state_dir)
    try:
        controller = session.controller("production")
        migrations = controller.migrations
        assert migrations is not None
        await until(lambda: migrations.refreshed and (migrations.lint or migrations.lint_error), what="linted")
        view = session.view("production").migrations
        assert view is not None and view.database == f"sqlite://{db}"
        assert [s.name for s in view.steps] == ["orders-full-name", "orders-audit", "drop-customer"]
        assert view.next_step == "orders-full-name" and view.next_refused is None
        assert view.rollback_refused == "no step is applied on production"
        # squawk parses PostgreSQL: on SQLite it is not run (SQLite's triggers would read as
        # syntax errors), and the view says so rather than "no findings".
        assert view.lint_error == NOT_POSTGRES and view.findings == ()
    finally:
        await session.close()


PG_PLAN = """
[service]
name = "{service}"

[[environments]]
name = "production"
initial_version = "1.0.0"
  [environments.backend]
  adapter = "memory"
  [environments.database]
  url = "{url}"
  password = "pg"
  contract = "after-promote"
  lock_timeout = "500ms"

[strategy.canary]
steps = [{{ set_weight = 50 }}, {{ pause = {{}} }}]

[secrets]
pg = "env:COCKPIT_TEST_PG_PASSWORD_B"

[[migrations]]
name = "orders-full-name"
release = "1.1.0"
phase = "expand"
up = {{ sql = "ALTER TABLE orders ADD COLUMN customer_name text; UPDATE orders SET customer_name = customer;" }}
down = {{ sql = "ALTER TABLE orders DROP COLUMN customer_name;" }}

[[migrations]]
name = "drop-customer"
release = "1.1.0"
phase = "contract"
irreversible = true
up = {{ sql = "ALTER TABLE orders DROP COLUMN customer;" }}
"""


@pytest.mark.postgres
@pytest.mark.asyncio
async def test_release_on_postgresql(state_dir: Path, postgres_db: PgDatabase, monkeypatch: pytest.MonkeyPatch) -> None:
    """Expand before the canary, contract refused while 1.0.0 runs then run by itself after
    the promote, roll back refused after it; the password from [secrets], never journaled."""
    monkeypatch.setenv("COCKPIT_TEST_PG_PASSWORD_B", postgres_db.password)
    with postgres_db.connect() as conn:
        conn.execute("CREATE TABLE orders (id serial PRIMARY KEY, customer text)")
        conn.execute("INSERT INTO orders (customer) VALUES ('ann')")

    def pg_columns() -> set[str]:
        with postgres_db.connect() as conn:
            rows = conn.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'orders'")
            return {r[0] for r in rows.fetchall()}

    plan = parse_plan(PG_PLAN.format(service=f"s{uuid.uuid4().hex[:8]}", url=postgres_db.url))
    session = await started(plan, state_dir)
    try:
        controller = session.controller("production")
        mem = backend(session)
        at_deploy: list[set[str]] = []
        deploy = mem.deploy_canary

        async def watching_deploy(version: str) -> None:
            at_deploy.append(pg_columns())
            await deploy(version)

        mem.deploy_canary = watching_deploy  # type: ignore[method-assign]
        assert (await session.submit("production", StartRollout("1.1.0"))).ok
        await until(lambda: controller.state.phase is Phase.PAUSED, what="paused at 50%")
        assert at_deploy == [{"id", "customer", "customer_name"}]
        refused = await session.submit("production", RunMigration())
        assert not refused.ok and "a rollout of 1.1.0 is in progress" in refused.message
        assert (await session.submit("production", Promote())).ok
        await until(lambda: "customer" not in pg_columns(), what="contract after the promote")
        await until(lambda: journal(session, "migrate")[-1][1] == "ok", what="contract journaled")
        undo = await session.submit("production", RollbackMigration())
        assert not undo.ok and undo.message.endswith("is irreversible: it cannot be rolled back")
        view = session.view("production").migrations
        assert view is not None and view.database == postgres_db.url
        # Dropping a column is what squawk warns about, on the step that does it.
        drop = next(s for s in view.steps if s.name == "drop-customer")
        assert view.lint_error is None and any(f.rule == "ban-drop-column" for f in drop.lint), drop.lint
        everything = " ".join(r.detail + r.reason for r in session.journal.records(limit=1000))
        assert postgres_db.password not in everything
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_headless_rollout_runs_expand_and_stops_on_a_failing_one(
    state_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    from cockpit.headless import EXIT_ERROR, EXIT_OK, run_rollout

    db = make_db(tmp_path / "broken.db", audit=False)
    session = Session(make_plan(db), state_dir=state_dir / "one", user="ci")
    out = io.StringIO()
    assert await run_rollout(session, "production", "1.1.0", auto_promote=True, timeout=30, out=out) == EXIT_ERROR
    said = out.getvalue()
    # What it said on stderr (a start that failed, a refusal) explains an empty verdict.
    assert "aborted (migration-failed): expand failed: " in said and "no such table: audit" in said, (
        said,
        capsys.readouterr().err,
    )

    db = make_db(tmp_path / "shop.db")
    session = Session(make_plan(db), state_dir=state_dir / "two", user="ci")
    assert await run_rollout(session, "production", "1.1.0", auto_promote=True, timeout=30, out=out) == EXIT_OK
    assert columns(db) == {"id", "customer", "customer_name"}  # contract = "manual": not run


@pytest.mark.asyncio
async def test_command_steps_run_as_a_task_where_the_backend_has_one(
    state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backend with ``run_task`` (Docker) runs a step's command in a one-off workload of
    the step's release; a task that fails fails the step with its last lines."""
    from types import SimpleNamespace

    from cockpit.adapters.base import BackendError

    tasks: list[tuple[str, list[str], dict]] = []

    async def run_task(self, version, command, *, name="task", env=None, timeout=600.0, on_line=None):
        tasks.append((version, list(command), dict(env or {})))
        if "--fail" in command:
            # As Docker's TaskFailed: a BackendError carrying the task's exit code and last lines.
            err = BackendError("task migrate (1.1.0) exited with code 3")
            err.result = SimpleNamespace(exit_code=3, tail=("boom: no table",))  # type: ignore[attr-defined]
            raise err
        return SimpleNamespace(exit_code=0, tail=("migrated 1 table",))

    monkeypatch.setattr(MemoryBackend, "run_task", run_task, raising=False)
    db = make_db(tmp_path / "shop.db")
    text = PLAN.format(service=f"s{uuid.uuid4().hex[:8]}", db=db, contract="manual", protected="false")
    text = text.replace(
        'up = { sql = "ALTER TABLE orders ADD COLUMN customer_name TEXT; UPDATE orders SET customer_name = customer;" }',
        'up = { command = ["/nowhere/migrate", "up", "{version}"], env = { MODE = "{env}" } }',
    ).replace(
        'up = { sql = "INSERT INTO audit (what) VALUES (\'1.1.0\');" }',
        'up = { command = ["/nowhere/migrate", "--fail"] }',
    )
    session = Session(parse_plan(text), state_dir=state_dir)
    try:
        ok = await session.submit("production", RunMigration())
        assert ok.ok, ok.message
        assert tasks[0] == ("1.1.0", ["/nowhere/migrate", "up", "1.1.0"], {"MODE": "production"})
        assert "migrated 1 table" in ok.message
        failed = await session.submit("production", RunMigration())
        assert not failed.ok and failed.cause is Cause.MIGRATION_FAILED
        assert "exited with code 3" in failed.message and "boom: no table" in failed.message
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_a_platform_that_walks_the_steps_gets_the_rollout_only_after_expand(
    state_dir: Path, tmp_path: Path
) -> None:
    from cockpit.adapters import memory_platform

    memory_platform.register()
    db = make_db(tmp_path / "shop.db", audit=False)
    text = PLAN.format(service=f"s{uuid.uuid4().hex[:8]}", db=db, contract="manual", protected="false")
    session = await started(parse_plan(text.replace('adapter = "memory"', 'adapter = "memory-platform"')), state_dir)
    try:
        controller = session.controller("production")
        result = await session.submit("production", StartRollout("1.1.0"))
        assert not result.ok and result.cause is Cause.MIGRATION_FAILED
        assert result.message.startswith("expand failed: expand 'orders-audit' of 1.1.0 failed after ")
        assert "nothing was deployed" in result.message
        assert controller.state.phase is Phase.HEALTHY and controller.poll.status is not None
        assert (await controller.backend.status()).canary is None
        assert ("rollout", "failed") in [(a, o) for a, o, _ in journal(session, "rollout")]
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE audit (what TEXT)")
        result = await session.submit("production", StartRollout("1.1.0"))
        assert result.ok, result.message
        assert columns(db) == {"id", "customer", "customer_name"}
        await until(lambda: controller.state.in_rollout, what="the platform took the rollout")
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_a_database_that_cannot_be_reached_is_shown_and_stops_the_rollout(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COCKPIT_TEST_PG_PASSWORD_B", "not-the-password-x9")
    url = "postgresql://cockpit@127.0.0.1:1/shop"  # nothing listens on port 1
    session = await started(parse_plan(PG_PLAN.format(service=f"s{uuid.uuid4().hex[:8]}", url=url)), state_dir)
    try:
        controller = session.controller("production")
        migrations = controller.migrations
        assert migrations is not None
        await until(lambda: migrations.error is not None, what="the read failed")
        view = session.view("production").migrations
        assert view is not None and view.database == url and view.error
        assert view.next_refused == f"the database cannot be read: {view.error}"
        assert (await session.submit("production", StartRollout("1.1.0"))).ok
        await until(lambda: controller.state.phase is Phase.ABORTED, what="stopped")
        assert controller.state.cause is Cause.MIGRATION_FAILED
        assert "the database cannot be read" in controller.state.reason
        assert backend(session).canary is None
        everything = " ".join(r.detail + r.reason for r in session.journal.records(limit=1000))
        assert "not-the-password-x9" not in everything + controller.state.reason + view.error
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_contract_after_promote_waits_for_the_old_version_to_drain(state_dir: Path, tmp_path: Path) -> None:
    from dataclasses import replace as change

    from cockpit.model import TrackStatus

    db = make_db(tmp_path / "shop.db")
    session = await started(make_plan(db, contract="after-promote"), state_dir)
    try:
        controller = session.controller("production")
        mem = backend(session)
        assert (await session.submit("production", StartRollout("1.1.0"))).ok
        await until(lambda: controller.state.phase is Phase.PAUSED, what="paused")
        status = mem.status
        draining_until = [0.0]

        async def draining_status():
            # The old version's replicas still finish their requests for a moment.
            seen = await status()
            if time.monotonic() < draining_until[0]:
                return change(seen, canary=TrackStatus("1.0.0", 2, 2))
            return seen

        promote = mem.promote_canary

        async def promote_and_drain() -> None:
            await promote()
            draining_until[0] = time.monotonic() + 1.5

        mem.status = draining_status  # type: ignore[method-assign]
        mem.promote_canary = promote_and_drain  # type: ignore[method-assign]
        promoted = time.monotonic()
        assert (await session.submit("production", Promote())).ok
        await until(lambda: "customer" not in columns(db), what="contract once 1.0.0 is gone")
        assert time.monotonic() - promoted >= 1.4  # not while 1.0.0 still ran
        assert not [e for e in journal(session, "migrate") if e[1] == "refused"]
    finally:
        await session.close()
