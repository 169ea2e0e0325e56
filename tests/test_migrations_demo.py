"""The demo's schema change tied to 1.1.0, on SQLite, with real service processes: each
version reads and writes its own column, 1.1.0's expand keeps 1.0.0 serving, and its
contract run while 1.0.0 serves breaks 1.0.0 for real - which is why the cockpit refuses it."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from cockpit.cli import demo_plan, demo_plan_text
from cockpit.demo.schema import CONTRACT_STEP, EXPAND_STEP, STEPS, customer_column
from cockpit.engine.commands import RunMigration
from cockpit.engine.session import Session
from cockpit.migrations.open import open_target
from cockpit.plan.loader import parse_plan
from cockpit.plan.models import Plan
from tests.local_fixtures import free_port, marker_env, service_fixture, wait_http  # noqa: F401


def columns(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {row[1] for row in conn.execute("PRAGMA table_info(orders)")}


def start_service(service: str, version: str, port: int, db: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "cockpit.demo.service", "--version", version, "--port", str(port)]
    return subprocess.Popen(
        [*argv, "--env", "test", "--db", f"sqlite:///{db}"],
        env=marker_env(service),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def stop(*processes: subprocess.Popen[bytes]) -> None:
    for p in processes:
        p.terminate()
    for p in processes:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


async def statuses(session: aiohttp.ClientSession, base: str, n: int = 10) -> Counter[int]:
    """``n`` orders placed (checkout writes) and listed (reads): their status codes."""
    seen: Counter[int] = Counter()
    for _ in range(n):
        for path in ("/api/checkout", "/api/orders"):
            async with session.get(base + path) as r:
                seen[r.status] += 1
    return seen


def test_both_demo_plans_carry_the_schema_change_and_one_database_per_environment() -> None:
    for name in ("plan.toml", "plan_prometheus.toml"):
        path = Path(__file__).parent.parent / "cockpit" / "demo" / name
        plan = parse_plan(path.read_text(), name)
        # The plan's SQL is the one the tests below (and schema.py's readers) rely on.
        assert [(m.name, m.phase, m.release, m.reversible) for m in plan.migrations] == [
            (EXPAND_STEP, "expand", "1.1.0", True),
            (CONTRACT_STEP, "contract", "1.1.0", False),
        ]
        for migration, step in zip(plan.migrations, STEPS["sqlite"], strict=True):
            assert (migration.up.sql or "").strip() == step.up.strip()
            down = migration.down.sql if migration.down else None
            assert (down or "").strip() == (step.down or "").strip()
        for env in plan.environments:
            assert env.database is not None
            command = env.backend.options["command"]
            # The service writes the very database the migrations change.
            assert (
                command[command.index("--db") + 1]
                == env.database.url
                == "sqlite:///{state_dir}/{service}-{env}.db"
            )
    assert "[[migrations]]" in demo_plan_text()


def test_versions_read_and_write_their_column() -> None:
    assert customer_column("1.0.0") == "customer"
    assert (
        customer_column("1.1.0") == customer_column("1.2.0") == customer_column("1.10.0") == "customer_name"
    )


@pytest.mark.asyncio
async def test_expand_keeps_1_0_0_serving_then_both_versions_share_the_orders(
    service: str, tmp_path: Path
) -> None:
    db = tmp_path / "shop.db"
    plan = demo_plan(None)
    expand, contract = plan.migrations
    old_port, new_port = free_port(), free_port()
    old = start_service(service, "1.0.0", old_port, db)
    new: subprocess.Popen[bytes] | None = None
    old_base, new_base = f"http://127.0.0.1:{old_port}", f"http://127.0.0.1:{new_port}"
    target = open_target(
        plan.environments[0].database.model_copy(update={"url": f"sqlite:///{db}"}),  # type: ignore[union-attr]
        service="shop", env="dev", state_dir=tmp_path, secret=lambda name: "",
    )  # fmt: skip
    try:
        await wait_http(old_base + "/healthz")
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s:
            assert await statuses(s, old_base, 5) == {200: 10}
            assert columns(db) == {"id", "customer", "total_cents", "created_at"}  # created by 1.0.0

            # 1.0.0's users keep ordering while the expand runs under them.
            during: Counter[int] = Counter()
            stop_users = asyncio.Event()

            async def users() -> None:
                while not stop_users.is_set():
                    during.update(await statuses(s, old_base, 1))

            load = asyncio.create_task(users())
            await asyncio.sleep(0.2)
            run = await target.run(expand, "up", by="test")
            await asyncio.sleep(0.2)
            stop_users.set()
            await load
            assert run.ok, run.error
            assert during[200] >= 10 and set(during) == {200}, during
            assert {"customer", "customer_name"} <= columns(db)
            with sqlite3.connect(db) as conn:  # the backfill left no order without a name
                assert conn.execute("SELECT count(*) FROM orders WHERE customer_name IS NULL").fetchone() == (
                    0,
                )

            # 1.1.0 joins (as its canary would): both write, each sees the other's orders.
            new = start_service(service, "1.1.0", new_port, db)
            await wait_http(new_base + "/healthz")
            assert await statuses(s, new_base, 5) == {200: 10}
            assert await statuses(s, old_base, 5) == {200: 10}
            with sqlite3.connect(db) as conn:
                unsynced = conn.execute(
                    "SELECT count(*) FROM orders WHERE customer IS NULL OR customer_name IS NULL "
                    "OR customer <> customer_name"
                ).fetchone()
            assert unsynced == (0,)  # the triggers kept both columns in step
            async with s.get(new_base + "/api/orders") as r:
                listed = await r.json()
            async with s.get(old_base + "/api/orders") as r:
                assert (await r.json())["recent"] == listed["recent"]  # the same orders, by both columns

            # The contract, run straight on the database while 1.0.0 still serves (what the
            # cockpit's guard refuses): 1.0.0 fails every order from then on; 1.1.0 does not.
            with sqlite3.connect(db) as conn:
                conn.executescript(contract.up.sql or "")
            assert columns(db) == {"id", "customer_name", "total_cents", "created_at"}
            assert await statuses(s, old_base, 3) == {500: 6}
            assert await statuses(s, new_base, 3) == {200: 6}
    finally:
        await target.close()
        stop(old, *([new] if new else []))


@pytest.mark.asyncio
async def test_guard_refuses_the_contract_while_1_0_0_serves_from_a_fresh_state_dir(
    service: str, tmp_path: Path
) -> None:
    """The demo plan as `cockpit demo` loads it, dev only, in an empty state dir: the
    service creates its database there, the expand runs, the contract is refused naming
    what it would break - and the same SQL run by hand does break it."""
    data = demo_plan(0).model_dump()
    data["service"]["name"] = service
    data["environments"] = data["environments"][:1]
    plan = Plan.model_validate(data)
    state_dir = tmp_path / "fresh-state"
    session = Session(plan, state_dir=state_dir, user="ann")
    try:
        assert await session.start() == []
        db = state_dir / f"{service}-dev.db"
        view = session.view("dev")
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s:
            assert await statuses(s, view.url or "", 3) == {200: 6}
            assert db.exists() and "customer" in columns(db)

            ran = await session.submit("dev", RunMigration())
            assert ran.ok, ran.message
            assert "customer_name" in columns(db)
            why = "dev's stable runs 1.0.0 (1 replica): contract 'drop-customer' of 1.1.0 would break it"
            assert session.preview("dev", RunMigration()) == why
            refused = await session.submit("dev", RunMigration())
            assert not refused.ok and refused.message == why
            assert "customer" in columns(db)  # nothing ran
            assert await statuses(s, view.url or "", 3) == {200: 6}

            # What the guard prevented, done by hand: 1.0.0's users get 500s.
            with sqlite3.connect(db) as conn:
                conn.executescript(plan.migrations[1].up.sql or "")
            assert await statuses(s, view.url or "", 3) == {500: 6}
    finally:
        await session.close()
