"""Headless runs and indefinite pauses (``pause = {}``): nobody can promote a headless
rollout from elsewhere, so such a pause must never be waited on forever. Without a flag
the run aborts and exits 4 naming the pause; ``--auto-promote`` promotes at once;
``--pause-timeout D`` waits D, then promotes. On the in-memory backend (fast and exact);
tests/test_cli.py runs the command itself on real processes."""

from __future__ import annotations

import asyncio
import io
import uuid
from pathlib import Path

import pytest

import tests.memory_backend  # noqa: F401 - registers the "memory" adapters
from cockpit.engine.journal import Journal
from cockpit.engine.session import Session
from cockpit.engine.state import Cause, Phase
from cockpit.headless import EXIT_ERROR, EXIT_OK, EXIT_PAUSED, run_rollout
from cockpit.model import Track
from cockpit.plan import parse_plan
from tests.memory_backend import MemoryBackend

pytestmark = pytest.mark.asyncio

PLAN = """
[service]
name = "{service}"

[[environments]]
name = "production"
initial_version = "1.0.0"
  [environments.backend]
  adapter = "memory"
  [environments.metrics]
  source = "memory"
  interval = "50ms"

[strategy.canary]
steps = [{{ set_weight = 20 }}, {{ pause = {{}} }}, {{ set_weight = 50 }}, {{ pause = {{}} }}]
"""
# Far longer than any of these runs takes: the code under test must end them, not this.
BOUND = 20.0


def session_for(tmp_path: Path) -> Session:
    plan = parse_plan(PLAN.format(service=f"p{uuid.uuid4().hex[:8]}"))
    return Session(plan, state_dir=tmp_path, user="ci")


def backend(session: Session) -> MemoryBackend:
    found = session.controller("production").backend
    assert isinstance(found, MemoryBackend)
    return found


async def run(session: Session, **kwargs: object) -> tuple[int, list[str]]:
    out = io.StringIO()
    code = await asyncio.wait_for(
        run_rollout(session, "production", "1.1.0", out=out, **kwargs),  # type: ignore[arg-type]
        BOUND,
    )
    return code, out.getvalue().splitlines()


def journal_of(session: Session) -> list[tuple[str, str, str]]:
    reader = Journal(session.journal.path, read_only=True)
    try:
        records = reader.records(service=session.plan.service.name, limit=100)
    finally:
        reader.close()
    return [(r.action, r.outcome, r.reason) for r in records]


async def test_an_indefinite_pause_stops_the_run_with_exit_4_naming_it(tmp_path: Path) -> None:
    session = session_for(tmp_path)
    code, lines = await run(session)
    assert code == EXIT_PAUSED == 4
    last = lines[-1]
    assert last.startswith("paused: production stopped at step 2/4, an indefinite pause"), last
    assert "--auto-promote" in last and "--pause-timeout" in last
    assert last.endswith("traffic is back on stable 1.0.0")
    # Nothing is left half-way: the canary is gone and all traffic is on stable, and the
    # journal says why it was aborted.
    state = session.controller("production").state
    assert (state.phase, state.cause) == (Phase.ABORTED, Cause.ABORTED_BY_USER)
    assert (backend(session).weight, backend(session).canary) == (0, None)
    aborts = [r for r in journal_of(session) if r[:2] == ("abort", "ok")]
    assert aborts and "indefinite pause" in aborts[-1][2]


async def test_auto_promote_goes_past_every_indefinite_pause(tmp_path: Path) -> None:
    session = session_for(tmp_path)
    code, lines = await run(session, auto_promote=True)
    assert code == EXIT_OK, lines
    assert lines[-1] == "promoted: 1.1.0 serves 100% of production"
    promotes = [r for r in journal_of(session) if r[:2] == ("promote", "ok")]
    assert [r[2] for r in promotes] == ["auto-promote (headless)"] * 2


async def test_pause_timeout_waits_then_promotes_each_indefinite_pause(tmp_path: Path) -> None:
    session = session_for(tmp_path)
    code, lines = await run(session, pause_timeout=0.3)
    assert code == EXIT_OK, lines
    waits = [line for line in lines if "promoting in 0.3s (--pause-timeout)" in line]
    assert [w.split(":")[0] for w in waits] == ["paused at step 2/4", "paused at step 4/4"]
    promotes = [r for r in journal_of(session) if r[:2] == ("promote", "ok")]
    assert [r[2] for r in promotes] == ["--pause-timeout 0.3s elapsed"] * 2
    # Each pause was waited out before its promote: the promote starts at least 0.3 s after
    # the step that paused (the journal's own timestamps).
    reader = Journal(session.journal.path, read_only=True)
    try:
        records = reader.records(service=session.plan.service.name, limit=100)
    finally:
        reader.close()
    records.sort(key=lambda r: r.ts)
    for n, record in enumerate(records):
        if (record.action, record.outcome) == ("promote", "started"):
            before = records[n - 1]
            assert record.ts - before.ts >= 0.3, (before.action, record.ts - before.ts)


async def test_the_overall_timeout_still_wins_over_a_long_pause_timeout(tmp_path: Path) -> None:
    session = session_for(tmp_path)
    code, _ = await run(session, pause_timeout=600.0, timeout=0.5)
    assert code == EXIT_ERROR
    assert backend(session).weight == 0  # the timeout sent traffic back to stable


async def test_stopped_at_a_pause_but_stable_not_verified_is_1(tmp_path: Path) -> None:
    """4 promises "traffic is on a healthy stable"; when that is not what is observed, 1."""
    session = session_for(tmp_path)

    def stable_sick_at_the_pause() -> None:  # a change listener: runs as the state changes
        if session.controller("production").state.phase is Phase.PAUSED:
            backend(session).sick(Track.STABLE, ready=0, problem="replica #1 exited with code 1")

    session.add_change_listener(stable_sick_at_the_pause)
    code, lines = await run(session)
    assert code == EXIT_ERROR, lines
    assert "production stopped at step 2/4" in lines[-1]
    assert "traffic is not verified on stable" in lines[-1]
