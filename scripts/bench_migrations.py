"""Figures of the migration runners: a step's duration, how closely a blocked step keeps to
its lock_timeout, and squawk's lint time. SQLite always; PostgreSQL when
COCKPIT_TEST_POSTGRES_URL/_PASSWORD name a server (scripts/servers.sh start RT postgres).
Measurements, not pass/fail."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cockpit.migrations.lint import lint_steps
from cockpit.migrations.open import open_target
from cockpit.plan.migrations import Database, Migration

RUNS = 20


def step(name: str, sql: str, **kw: Any) -> Migration:
    return Migration.model_validate(
        {"name": name, "release": "1.1.0", "phase": "expand", "up": {"sql": sql}, **kw}
    )


async def durations(target: Any, label: str) -> None:
    took = []
    for i in range(RUNS):
        run = await target.run(step(f"t{i}", f"CREATE TABLE t{i} (id bigint);"), "up", by="bench")
        assert run.ok, run.error
        took.append(run.duration * 1000)
    print(f"{label}: a one-statement step (lock, record, DDL + record in one transaction, unlock):")
    print(f"  median {statistics.median(took):.1f} ms, max {max(took):.1f} ms over {RUNS} steps")


async def lock_precision(target: Any, label: str, hold: Any, release: Any) -> None:
    for limit in (0.2, 0.5, 1.0):
        hold()
        began = time.monotonic()
        try:
            run = await target.run(
                step(f"blocked{int(limit * 10)}", "ALTER TABLE t0 ADD COLUMN x bigint;", lock_timeout=limit),
                "up",
                by="bench",
            )
            failed = not run.ok
        except Exception:  # SQLite: even the 'running' row waits for the file lock
            failed = True
        took = time.monotonic() - began
        release()
        print(
            f"{label}: lock_timeout {limit:g} s -> blocked step gave up after {took:.3f} s (failed: {failed})"
        )


async def sqlite_bench() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        target = open_target(
            Database(url=f"sqlite:///{tmp}/bench.db"), service="s", env="e", state_dir=tmp, secret=str
        )
        await durations(target, "sqlite")
        other = sqlite3.connect(f"{tmp}/bench.db", isolation_level=None)
        await lock_precision(
            target, "sqlite", lambda: other.execute("BEGIN IMMEDIATE"), lambda: other.execute("ROLLBACK")
        )
        other.close()


async def postgres_bench(url: str, password: str) -> None:
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, password=password, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}".encode())
    db_url = url.rsplit("/", 1)[0] + "/" + name
    try:
        target = open_target(
            Database(url=db_url, password="pg"),
            service="s",
            env="e",
            state_dir="/",
            secret=lambda _: password,
        )
        await durations(target, "postgres")
        other = psycopg.connect(db_url, password=password, autocommit=True)

        def hold() -> None:
            other.execute("BEGIN")
            other.execute("SELECT * FROM t0")

        await lock_precision(target, "postgres", hold, lambda: other.execute("ROLLBACK"))
        other.close()
    finally:
        with psycopg.connect(url, password=password, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)".encode())


def lint_bench() -> None:
    steps = [
        step(f"s{i}", "ALTER TABLE orders ADD COLUMN note text;\nCREATE INDEX orders_note ON orders (note);")
        for i in range(20)
    ]
    began = time.monotonic()
    findings = lint_steps(steps)
    print(
        f"squawk: 20 SQL steps linted in {(time.monotonic() - began) * 1000:.0f} ms ({len(findings)} findings)"
    )


def main() -> None:
    asyncio.run(sqlite_bench())
    url, password = (
        os.environ.get("COCKPIT_TEST_POSTGRES_URL"),
        os.environ.get("COCKPIT_TEST_POSTGRES_PASSWORD"),
    )
    if url and password:
        asyncio.run(postgres_bench(url, password))
    else:
        print("postgres: skipped (no COCKPIT_TEST_POSTGRES_URL; scripts/servers.sh start RT postgres)")
    lint_bench()


if __name__ == "__main__":
    main()
