"""The engine driving the real local backend: intents, refusals, journal, restart reconciliation."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest

from cockpit.engine.commands import Abort, Promote, Retry, Rollback, StartRollout
from cockpit.engine.session import Session
from cockpit.engine.state import Activity, Phase
from cockpit.plan import parse_plan

PLAN = """
[service]
name = "{service}"

[[environments]]
name = "production"
protected = true
initial_version = "1.0.0"
  [environments.backend]
  adapter = "local"
    [environments.backend.options]
    versions = ["1.0.0", "1.1.0", "1.2.0"]

[strategy.canary]
steps = [{{ set_weight = 30 }}, {{ pause = {{}} }}]

[guardrails]
{guardrails}
"""


def make_plan(guardrails: str = ""):
    return parse_plan(PLAN.format(service=f"s{uuid.uuid4().hex[:8]}", guardrails=guardrails))


async def until(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


@pytest.mark.asyncio
async def test_protected_actions_need_a_reason_and_refusals_are_journaled(state_dir: Path) -> None:
    session = Session(make_plan(), state_dir=state_dir, user="ann")
    try:
        assert await session.start() == []
        # The screen asks before opening a confirmation: pure, nothing journaled.
        assert session.preview("production", Promote()) == "nothing is paused: production is Healthy"
        assert session.preview("production", StartRollout("1.1.0")) is None
        assert session.preview("production", StartRollout("7.0.0")).startswith("version 7.0.0 does not exist")
        assert session.journal.records(service=session.plan.service.name, text="refused") == []
        result = await session.submit("production", StartRollout("1.1.0"))
        assert not result.ok and result.message == "production is protected: a reason is required"
        result = await session.submit("production", Promote(), "go")
        assert not result.ok and result.message == "nothing is paused: production is Healthy"
        ok = await session.submit("production", StartRollout("1.1.0"), "ticket 42")
        assert ok.ok, ok.message
        view = session.view("production")
        assert view.rollout.phase is Phase.PAUSED and view.rollout.weight == 30
        assert view.backend is not None and view.backend.weight == 30  # the router agrees
        records = session.journal.records(service=session.plan.service.name)
        outcomes = [(r.action, r.outcome, r.reason) for r in records if r.action != "auto"]
        assert ("rollout", "refused", "") in outcomes
        assert ("promote", "refused", "go") in outcomes
        assert ("rollout", "ok", "ticket 42") in outcomes
        assert all(r.user in ("ann", "cockpit (ann)") for r in records)
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_promote_abort_retry_rollback_through_the_engine(state_dir: Path) -> None:
    session = Session(make_plan(), state_dir=state_dir, user="ann")
    env = "production"
    try:
        await session.start()
        assert (await session.submit(env, StartRollout("1.1.0"), "r")).ok
        assert (await session.submit(env, Abort(), "looks off")).ok
        s = session.view(env).rollout
        assert s.phase is Phase.ABORTED and s.canary_version is None and "looks off" in s.reason
        assert session.view(env).backend.canary is None
        assert (await session.submit(env, Retry(), "again")).ok
        assert session.view(env).rollout.phase is Phase.PAUSED
        assert (await session.submit(env, Promote(), "fine")).ok  # past the last pause -> 100 %
        s = session.view(env).rollout
        assert s.phase is Phase.HEALTHY and s.stable_version == "1.1.0" and s.revision == 2
        assert session.view(env).backend.stable.version == "1.1.0"
        refused = await session.submit(env, Rollback(7), "x")
        assert not refused.ok and "revision 7 is not retained" in refused.message
        assert (await session.submit(env, Rollback(), "regression")).ok
        s = session.view(env).rollout
        assert s.stable_version == "1.0.0" and s.revision == 3
        assert session.view(env).backend.stable.version == "1.0.0"
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_restart_reconciles_journal_and_backend(state_dir: Path) -> None:
    plan = make_plan()
    env = "production"
    first = Session(plan, state_dir=state_dir, user="ann")
    await first.start()
    assert (await first.submit(env, StartRollout("1.1.0"), "r")).ok
    await first.submit(env, Promote(), "ok")
    await until(lambda: first.view(env).rollout.phase is Phase.HEALTHY)
    assert (await first.submit(env, StartRollout("1.2.0"), "next")).ok
    await first.close()  # the cockpit stops mid-rollout: its local workloads stop with it

    second = Session(plan, state_dir=state_dir, user="bob")
    try:
        await second.start()
        s = second.view(env).rollout
        assert s.stable_version == "1.1.0"  # the promoted revision, not the plan's initial version
        assert second.view(env).backend.stable.version == "1.1.0"
        assert s.phase is Phase.ABORTED and s.target_version == "1.2.0"
        assert "stopped during the rollout of 1.2.0" in s.reason
        assert (await second.submit(env, Retry(), "resume")).ok  # R picks the interrupted release up
        assert second.view(env).rollout.canary_version == "1.2.0"
    finally:
        await second.close()


@pytest.mark.asyncio
async def test_freeze_window_refuses_a_start(state_dir: Path) -> None:
    session = Session(make_plan('freeze = [{ start = "00:00", end = "23:59" }]'), state_dir=state_dir)
    try:
        await session.start()
        result = await session.submit("production", StartRollout("1.1.0"), "r")
        assert not result.ok and result.message.startswith("production is frozen (00:00-23:59 UTC)")
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_an_abort_pressed_during_a_deploy_runs_right_after_it(state_dir: Path) -> None:
    session = Session(make_plan(), state_dir=state_dir)
    env = "production"
    try:
        await session.start()
        rollout = asyncio.create_task(session.submit(env, StartRollout("1.1.0"), "r"))
        await until(lambda: session.view(env).rollout.activity is Activity.DEPLOYING)
        aborted = await session.submit(env, Abort(), "changed my mind")
        assert (await rollout).ok
        assert aborted.ok, aborted.message
        s = session.view(env).rollout
        assert s.phase is Phase.ABORTED and s.canary_version is None
        assert session.view(env).backend.canary is None
    finally:
        await session.close()
