"""Pause and Resume through the session: a held timed pause stays held past its timer,
Resume runs it again, everything journaled under the command's action name."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest

import tests.memory_backend  # noqa: F401 - registers the "memory" adapters
from cockpit.engine.commands import Pause, Resume, StartRollout
from cockpit.engine.session import Session
from cockpit.engine.state import Activity, Phase
from cockpit.plan import parse_plan

PLAN = """
[service]
name = "{service}"

[[environments]]
name = "production"
initial_version = "1.0.0"
  [environments.backend]
  adapter = "memory"

[strategy.canary]
steps = [{{ set_weight = 20 }}, {{ pause = {{ duration = "300ms" }} }}, {{ set_weight = 50 }}, {{ pause = {{}} }}]
"""


async def until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


@pytest.mark.asyncio
async def test_pause_holds_a_timed_pause_and_resume_runs_it_again(tmp_path: Path) -> None:
    plan = parse_plan(PLAN.format(service=f"c{uuid.uuid4().hex[:8]}"))
    session = Session(plan, state_dir=tmp_path, user="ann")
    env = "production"
    try:
        assert await session.start() == []
        assert session.preview(env, Pause()).startswith("no rollout in progress")
        assert (await session.submit(env, StartRollout("1.1.0"))).ok
        state = session.view(env).rollout
        assert state.paused_until is not None and state.weight == 20
        assert session.preview(env, Resume()).startswith("nothing was paused by hand")
        paused = await session.submit(env, Pause(), "looking at the logs")
        assert paused.ok, paused.message
        await asyncio.sleep(0.6)  # twice the pause: its timer must not fire
        state = session.view(env).rollout
        assert (state.phase, state.activity, state.weight, state.step_index) == (
            Phase.PAUSED,
            Activity.IDLE,
            20,
            1,
        )
        assert "paused by ann" in state.reason and state.paused_by == "ann"
        resumed = await session.submit(env, Resume(), "fine")
        assert resumed.ok, resumed.message
        assert session.view(env).rollout.paused_until is not None  # the timer runs again
        await until(lambda: session.view(env).rollout.step_index == 3)
        state = session.view(env).rollout
        assert (state.phase, state.weight, state.paused_by) == (Phase.PAUSED, 50, None)
        records = session.journal.records(service=plan.service.name)
        done = [
            (r.action, r.reason) for r in records if r.outcome == "ok" and r.action in ("pause", "resume")
        ]
        assert done == [("pause", "looking at the logs"), ("resume", "fine")]
    finally:
        await session.close()
