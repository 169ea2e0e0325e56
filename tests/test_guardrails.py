"""The one guardrails module: every rule on its own (pure), then through the session
(submit refuses and journals, preview says the same, the backend is never called)."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest

import tests.memory_backend  # noqa: F401 - registers the "memory" adapters
from cockpit.adapters.base import Capability
from cockpit.engine import commands as cmd
from cockpit.engine.guardrails import Guardrails
from cockpit.engine.session import Session
from cockpit.plan import parse_plan
from cockpit.plan.models import Environment, FreezeWindow
from cockpit.plan.models import Guardrails as Rules
from tests.memory_backend import MemoryBackend

ALL = frozenset(Capability)
NOON = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


class FixedClock:
    def __init__(self, at: dt.datetime) -> None:
        self.at = at.timestamp()

    def now(self) -> float:
        return self.at

    def monotonic(self) -> float:
        return self.at

    async def sleep(self, seconds: float) -> None:
        import asyncio

        await asyncio.sleep(seconds)


def env(protected: bool = False) -> Environment:
    return Environment.model_validate(
        {
            "name": "production",
            "protected": protected,
            "initial_version": "1.0.0",
            "backend": {"adapter": "memory"},
        }
    )


def check(
    rules: Rules,
    command: cmd.Command,
    reason: str | None = "r",
    *,
    protected: bool = False,
    capabilities: frozenset[Capability] = ALL,
    lock: object = None,
) -> str | None:
    guard = Guardrails(rules, lock, FixedClock(NOON))  # type: ignore[arg-type]
    return guard.refusal(
        env(protected), command, reason=reason, user="ann", backend="memory", capabilities=capabilities
    )


def test_a_freeze_window_refuses_only_a_start() -> None:
    rules = Rules(freeze=[FreezeWindow(start="11:00", end="13:00")])
    assert (
        check(rules, cmd.StartRollout("1.1.0"))
        == "production is frozen (11:00-13:00 UTC): no rollout may start"
    )
    assert check(rules, cmd.Abort()) is None  # traffic back to stable is never frozen
    assert check(Rules(freeze=[FreezeWindow(start="13:00", end="14:00")]), cmd.StartRollout("1.1.0")) is None
    overnight = Rules(freeze=[FreezeWindow(start="22:00", end="12:30")])
    assert check(overnight, cmd.StartRollout("1.1.0")) is not None
    elsewhere = Rules(freeze=[FreezeWindow(start="11:00", end="13:00", environments=["staging"])])
    assert check(elsewhere, cmd.StartRollout("1.1.0")) is None


def test_a_command_the_backend_cannot_do_is_refused() -> None:
    without = ALL - {Capability.SET_WEIGHT, Capability.ROLLBACK_TO_REVISION}
    assert check(Rules(), cmd.SetWeight(30), capabilities=without) == "the memory backend cannot set a weight"
    assert check(Rules(), cmd.Rollback(3), capabilities=without) == (
        "the memory backend cannot roll back to a chosen revision"
    )
    assert check(Rules(), cmd.Rollback(), capabilities=without) is None  # the previous revision: a redeploy
    assert check(Rules(), cmd.SetWeight(30)) is None
    # A preview (no reason yet) refuses the same, so the screen never offers it.
    assert check(Rules(), cmd.SetWeight(30), None, capabilities=without) is not None


def test_reasons_required_by_the_plan_and_by_a_protected_environment() -> None:
    assert (
        check(Rules(require_reason=True), cmd.Promote(), "  ")
        == "this plan requires a reason for every action"
    )
    assert check(Rules(require_reason=True), cmd.Promote(), "ticket 42") is None
    assert (
        check(Rules(), cmd.Promote(), "", protected=True) == "production is protected: a reason is required"
    )
    assert check(Rules(), cmd.Promote(), "", protected=False) is None
    # A preview has no reason yet: the confirmation asks for one.
    assert check(Rules(require_reason=True), cmd.Promote(), None, protected=True) is None


def test_the_driver_lock_is_asked_and_granted_by_default() -> None:
    class HeldByBob:
        def refusal(self, env: str, user: str) -> str | None:
            return f"{env} is driven by bob; ask them to hand over" if user != "bob" else None

    assert check(Rules(), cmd.Promote()) is None
    assert (
        check(Rules(), cmd.Promote(), lock=HeldByBob())
        == "production is driven by bob; ask them to hand over"
    )
    assert check(Rules(), cmd.Promote(), None, lock=HeldByBob()) is not None  # the preview too


PLAN = """
[service]
name = "{service}"

[[environments]]
name = "production"
initial_version = "1.0.0"
  [environments.backend]
  adapter = "memory"

[strategy.canary]
steps = [{{ set_weight = 20 }}, {{ pause = {{}} }}]

[guardrails]
{guardrails}
"""


def make_plan(guardrails: str = ""):
    return parse_plan(PLAN.format(service=f"g{uuid.uuid4().hex[:8]}", guardrails=guardrails))


@pytest.mark.asyncio
async def test_the_session_refuses_a_weight_the_backend_cannot_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(MemoryBackend, "capabilities", frozenset({Capability.LOGS}))
    session = Session(make_plan(), state_dir=tmp_path, user="ann")
    try:
        assert await session.start() == []
        assert (await session.submit("production", cmd.StartRollout("1.1.0"))).ok
        backend = session.controller("production").backend
        assert isinstance(backend, MemoryBackend)
        assert session.preview("production", cmd.SetWeight(50)) == "the memory backend cannot set a weight"
        result = await session.submit("production", cmd.SetWeight(50))
        assert not result.ok and result.message == "the memory backend cannot set a weight"
        assert backend.weight == 20  # never sent
        records = session.journal.records(service=session.plan.service.name)
        assert [(r.action, r.detail) for r in records if r.outcome == "refused"] == [
            ("set-weight", "set-weight 50% refused by the guardrails: the memory backend cannot set a weight")
        ]
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_the_session_freezes_on_its_clock(tmp_path: Path) -> None:
    """The freeze is decided on the injected clock: no test patches ``time``."""
    session = Session(
        make_plan('freeze = [{ start = "11:00", end = "13:00" }]'),
        state_dir=tmp_path,
        user="ann",
        clock=FixedClock(NOON),
    )
    try:
        assert await session.start() == []
        expected = "production is frozen (11:00-13:00 UTC): no rollout may start"
        assert session.preview("production", cmd.StartRollout("1.1.0")) == expected
        assert (await session.submit("production", cmd.StartRollout("1.1.0"))).message == expected
        # The revision the start recorded carries the injected time too.
        assert session.view("production").rollout.revisions[0].ts == NOON.timestamp()
    finally:
        await session.close()
    later = Session(
        make_plan('freeze = [{ start = "11:00", end = "13:00" }]'),
        state_dir=tmp_path / "later",
        user="ann",
        clock=FixedClock(NOON + dt.timedelta(hours=2)),
    )
    try:
        assert await later.start() == []
        assert (await later.submit("production", cmd.StartRollout("1.1.0"))).ok
    finally:
        await later.close()


def test_the_screen_asks_for_a_reason_where_the_engine_requires_one() -> None:
    guard = Guardrails(Rules())
    assert not guard.needs_reason(env()) and guard.needs_reason(env(protected=True))
    assert Guardrails(Rules(require_reason=True)).needs_reason(env())
