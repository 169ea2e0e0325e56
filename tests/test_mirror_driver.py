"""The mirror driver against the in-memory platform: the platform walks the steps, the
cockpit mirrors what it reports and forwards commands.

The headless exit codes run on both drivers (the memory backend walked by the cockpit,
the memory platform walking itself): 0 promoted, 3 aborted by analysis and verified on
stable, 1 a failed abort, 2 a refused start.
"""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

import tests.memory_backend
from cockpit.adapters import memory_platform
from cockpit.adapters.base import (
    AdapterContext,
    BackendConfigError,
    BackendError,
    Capability,
)
from cockpit.adapters.memory_platform import MemoryPlatform
from cockpit.engine.commands import Abort, Pause, Promote, Resume, Retry, Rollback, SetWeight, StartRollout
from cockpit.engine.drivers import MirrorDriver
from cockpit.engine.session import Session
from cockpit.engine.state import Activity, Cause, Outcome, Phase
from cockpit.headless import run_rollout
from cockpit.model import AnalysisPhase, RolloutPhase
from cockpit.plan import parse_plan

memory_platform.register()

PLAN = """
[service]
name = "{service}"

[[environments]]
name = "production"
initial_version = "1.0.0"
  [environments.backend]
  adapter = "{adapter}"
  [environments.metrics]
  source = "{adapter}"
  interval = "50ms"

[strategy.canary]
steps = [{steps}]

[[analysis.checks]]
name = "success-rate"
metric = "success-rate"
success = ">= 95"
interval = "50ms"
count = 2
"""
UNTIMED = "{ set_weight = 20 }, { pause = {} }, { set_weight = 50 }, { pause = {} }"
TIMED = '{ set_weight = 20 }, { pause = { duration = "30s" } }, { set_weight = 50 }, { pause = {} }'
ANALYSED = '{ set_weight = 20 }, { analysis = { checks = ["success-rate"] } }, { pause = {} }'
DRIVERS = [pytest.param("memory", id="machine"), pytest.param("memory-platform", id="mirror")]


def session_on(tmp_path: Path, adapter: str = "memory-platform", steps: str = UNTIMED, user: str = "ann"):
    service = f"m{uuid.uuid4().hex[:8]}"
    plan = parse_plan(PLAN.format(service=service, adapter=adapter, steps=steps))
    return Session(plan, state_dir=tmp_path, user=user)


def platform(session: Session) -> MemoryPlatform:
    backend = session.controller("production").backend
    assert isinstance(backend, MemoryPlatform)
    return backend


async def until(predicate, timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout}s: {what or predicate}")
        await asyncio.sleep(0.02)


def journal(session: Session) -> list[tuple[str, str]]:
    records = session.journal.records(service=session.plan.service.name, env="production")
    return [(r.action, r.outcome) for r in records if r.action not in ("initial", "auto", "observed")]


async def paused_at_20(session: Session) -> None:
    assert await session.start() == []
    assert (await session.submit("production", StartRollout("1.1.0"))).ok
    state = lambda: session.controller("production").state  # noqa: E731
    await until(lambda: (state().phase, state().weight) == (Phase.PAUSED, 20), what="paused at 20%")


# ----------------------------------------------------------------------------- headless, both drivers


async def headless(session: Session, version: str, during=None) -> tuple[int, str]:
    out = io.StringIO()
    run = asyncio.create_task(run_rollout(session, "production", version, out=out, auto_promote=True))
    if during is not None:
        await during(session)
    code = await asyncio.wait_for(run, 30)
    return code, out.getvalue().splitlines()[-1] if out.getvalue() else ""


async def failing_abort(session: Session) -> None:
    """During the analysis, every traffic change of the backend fails (so the abort does)."""
    await until(lambda: "production" in session.controllers and session.controller("production").started)
    await until(lambda: session.controller("production").state.activity is Activity.ANALYSING)

    async def refuse(weight: int) -> None:
        raise BackendError("the router of environment production does not answer (timeout)")

    session.controller("production").backend.set_weight = refuse  # type: ignore[method-assign]


@pytest.mark.asyncio
@pytest.mark.parametrize("adapter", DRIVERS)
@pytest.mark.parametrize(
    ("version", "during", "code", "line"),
    [
        ("1.1.0", None, 0, "promoted: 1.1.0 serves 100% of production"),
        ("1.2.0", None, 3, "aborted: analysis failed: success-rate"),
        ("1.2.0", failing_abort, 1, "degraded (backend-failure): abort failed: the router"),
        ("9.9.9", None, 2, ""),
    ],
    ids=["promoted", "analysis-failed", "failed-abort", "refused-start"],
)
async def test_headless_exit_codes_on_both_drivers(
    tmp_path: Path, adapter: str, version: str, during, code: int, line: str
) -> None:
    session = session_on(tmp_path, adapter, ANALYSED, user="ci")
    got, last = await headless(session, version, during)
    assert (got, last[: len(line)]) == (code, line), last
    if code == 3:  # the verdict saw traffic back on stable, whoever walked the steps
        backend = session.controller("production").backend
        assert (backend.weight, backend.canary) == (0, None)  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------- the mirror


@pytest.mark.asyncio
async def test_the_platform_walks_the_steps_and_the_cockpit_only_forwards(tmp_path: Path) -> None:
    session = session_on(tmp_path, steps=ANALYSED)
    try:
        controller = session.controller("production")
        assert isinstance(controller.driver, MirrorDriver)
        assert await session.start() == []
        fake = platform(session)
        assert (await session.submit("production", StartRollout("1.1.0"))).ok
        # Nobody promotes: the platform deploys, shifts and analyses on its own, then pauses.
        await until(lambda: controller.state.phase is Phase.PAUSED, what="paused after the analysis")
        state = controller.state
        assert (state.weight, state.step_label, state.canary_version) == (20, "3/3", "1.1.0")
        assert state.analysis is not None and state.analysis.outcome is Outcome.SUCCESSFUL
        check = state.analysis.checks[0]
        assert (check.name, check.condition, check.unit, check.taken) == ("success-rate", ">= 95", "%", 2)
        assert check.measurements[-1].stable_value == pytest.approx(99.8)
        assert (await session.submit("production", Promote())).ok
        await until(lambda: controller.state.phase is Phase.HEALTHY, what="promoted")
        assert (controller.state.stable_version, controller.state.revision) == ("1.1.0", 2)
        # The cockpit sent exactly the person's commands; the traffic moves were the platform's.
        assert [verb for verb, _ in fake.commands] == ["set-image", "promote"]
        assert journal(session) == [
            ("rollout", "started"),
            ("rollout", "ok"),
            ("promote", "started"),
            ("promote", "ok"),
        ]
        revisions = session.journal.revisions(session.plan.service.name, "production", 10)
        assert [(r.number, r.version) for r in revisions] == [(1, "1.0.0"), (2, "1.1.0")]
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_what_the_platform_says_wins(tmp_path: Path) -> None:
    session = session_on(tmp_path)
    try:
        await paused_at_20(session)
        controller = session.controller("production")
        await platform(session).send("abort")  # someone aborts on the platform itself
        await until(lambda: controller.state.phase is Phase.ABORTED, what="aborted, as the platform says")
        await until(lambda: controller.state.activity is Activity.IDLE, what="canary removed")
        state = controller.state
        assert (state.cause, state.canary_version, state.weight) == (Cause.ABORTED_BY_USER, None, 0)
        assert "traffic on stable 1.0.0" in state.reason
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_refusals_come_from_the_mirrored_state_or_the_platform(tmp_path: Path) -> None:
    session = session_on(tmp_path)
    try:
        assert await session.start() == []
        fake = platform(session)
        refused = await session.submit("production", Promote())  # healthy: the mirrored state says no
        assert not refused.ok and refused.message == "nothing is paused: production is Healthy"
        assert fake.commands == []  # never sent
        await paused_at_20(session)
        fake.refuse_next("promote", "the rollout is being updated by someone else")
        refused = await session.submit("production", Promote())
        assert not refused.ok
        assert refused.message == (
            "refused by the memory-platform platform: the rollout is being updated by someone else"
        )
        assert journal(session)[-2:] == [("promote", "started"), ("promote", "refused")]
        assert session.controller("production").state.phase is Phase.PAUSED  # nothing changed
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_an_analysis_failure_reported_by_the_platform_aborts(tmp_path: Path) -> None:
    session = session_on(tmp_path, steps=ANALYSED)
    try:
        assert await session.start() == []
        platform(session).fail_analysis("p99 over budget")  # 1.1.0's metrics would pass
        assert (await session.submit("production", StartRollout("1.1.0"))).ok
        controller = session.controller("production")
        await until(
            lambda: controller.state.phase is Phase.ABORTED and controller.state.activity is Activity.IDLE,
            what="aborted by the analysis",
        )
        state = controller.state
        assert state.cause is Cause.ANALYSIS_FAILED and state.reason.startswith("analysis failed: ")
        assert state.analysis is not None and state.analysis.outcome is Outcome.FAILED
        assert state.analysis.checks[0].measurements[-1].outcome is Outcome.FAILED
        assert (state.canary_version, state.weight, state.stable_version) == (None, 0, "1.0.0")
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_abort_retry_and_rollback_are_forwarded(tmp_path: Path) -> None:
    session = session_on(tmp_path)
    try:
        await paused_at_20(session)
        controller = session.controller("production")
        assert (await session.submit("production", Abort(), "looks off")).ok
        await until(lambda: controller.state.activity is Activity.IDLE, what="abort done")
        state = controller.state
        assert (state.phase, state.cause) == (Phase.ABORTED, Cause.ABORTED_BY_USER)
        assert state.reason.startswith("aborted by ann: looks off (")
        assert (await session.submit("production", Retry())).ok
        await until(
            lambda: (controller.state.phase, controller.state.weight) == (Phase.PAUSED, 20), what="retried"
        )
        assert controller.state.cause is None
        assert (await session.submit("production", SetWeight(35))).ok
        await until(lambda: controller.state.weight == 35, what="weight 35")
        for _ in range(2):
            assert (await session.submit("production", Promote())).ok
            await asyncio.sleep(0.05)
        await until(lambda: controller.state.phase is Phase.HEALTHY, what="promoted")
        assert (await session.submit("production", Rollback(1))).ok
        await until(lambda: controller.state.revision == 3, what="rolled back")
        assert (controller.state.stable_version, platform(session).stable) == ("1.0.0", "1.0.0")
        verbs = [verb for verb, _ in platform(session).commands]
        assert verbs == ["set-image", "abort", "retry", "set-weight", "promote", "promote", "undo"]
        assert platform(session).commands[-1] == ("undo", {"revision": 1})
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_pause_and_resume_are_the_platforms(tmp_path: Path) -> None:
    session = session_on(tmp_path, steps=TIMED)
    try:
        assert await session.start() == []
        controller = session.controller("production")
        assert (await session.submit("production", StartRollout("1.1.0"))).ok
        await until(lambda: controller.state.paused_until is not None, what="a timed pause")
        assert (await session.submit("production", Pause())).ok
        await until(lambda: controller.state.paused_by == "ann", what="held by ann")
        assert controller.state.paused_until is None and controller.state.phase is Phase.PAUSED
        refused = await session.submit("production", Pause())
        assert not refused.ok and "already paused by ann" in refused.message
        assert (await session.submit("production", Resume())).ok
        await until(lambda: controller.state.paused_until is not None, what="the pause runs again")
        assert controller.state.paused_by is None and controller.state.step_label == "2/4"
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_a_failed_abort_is_degraded_until_the_platform_is_seen_again(tmp_path: Path) -> None:
    session = session_on(tmp_path)
    try:
        await paused_at_20(session)
        controller = session.controller("production")
        fake = platform(session)
        fake.down = True
        result = await session.submit("production", Abort(cause=Cause.INCONCLUSIVE_HEADLESS), "no human")
        assert not result.ok and "connection refused" in result.message
        state = controller.state
        assert (state.phase, state.cause) == (Phase.DEGRADED, Cause.BACKEND_FAILURE)
        assert state.reason.startswith("abort failed: memory platform production is down")
        assert journal(session)[-2:] == [("abort", "started"), ("abort", "failed")]
        fake.down = False  # the abort never arrived: the platform still holds the canary at 20%
        await until(lambda: controller.state.phase is Phase.PAUSED, timeout=5, what="mirrored again")
        assert (controller.state.weight, controller.state.cause) == (20, None)
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_a_hung_platform_call_holds_only_its_environment(tmp_path: Path) -> None:
    """The mirror's counterpart of the machine-only hung-deploy Pilot tests."""
    session = session_on(tmp_path)
    try:
        await paused_at_20(session)
        fake = platform(session)
        fake.hang("send")
        promote = asyncio.create_task(session.submit("production", Promote()))
        await until(lambda: fake.calls.count("send") == 2, what="promote sent")
        await asyncio.sleep(0.1)
        assert not promote.done() and session.controller("production").lock.locked()
        # The mirror keeps following the platform while the call hangs.
        assert session.controller("production").driver.seen is not None
        fake.release()
        assert (await asyncio.wait_for(promote, 5)).ok
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_set_weight_only_where_the_platform_allows_it(tmp_path: Path) -> None:
    class NoWeights(MemoryPlatform):
        capabilities = MemoryPlatform.capabilities - {Capability.SET_WEIGHT}

    session = session_on(tmp_path)
    controller = session.controller("production")
    try:
        await paused_at_20(session)
        controller.backend.__class__ = NoWeights
        refused = await session.submit("production", SetWeight(40))
        assert not refused.ok and "cannot set a weight" in refused.message
        assert [verb for verb, _ in platform(session).commands] == ["set-image"]
    finally:
        await session.close()


def test_a_platform_that_does_not_report_its_rollouts_is_a_config_error(tmp_path: Path) -> None:
    class Pretender(tests.memory_backend.MemoryBackend):
        capabilities = frozenset({Capability.DRIVES_STEPS})

    ctx = AdapterContext(service="s", env="production", run_dir=tmp_path)
    backend = Pretender(ctx, Pretender.Options())
    session = session_on(tmp_path)
    host = session.controller("production")
    host.backend = backend
    with pytest.raises(BackendConfigError, match="does not report its rollouts"):
        MirrorDriver(host)


def test_analysis_phases_are_spelled_as_outcomes() -> None:
    """The mirror maps Argo's analysis phases onto outcomes by value: none may be missing."""
    assert {p.value for p in AnalysisPhase} <= {o.value for o in Outcome}


@pytest.mark.asyncio
async def test_an_observation_older_than_the_one_mirrored_is_ignored(tmp_path: Path) -> None:
    """A watch read that lands after a command's fresher read must not turn the state back."""
    session = session_on(tmp_path)
    try:
        await paused_at_20(session)
        driver = session.controller("production").driver
        assert isinstance(driver, MirrorDriver) and driver.seen is not None
        newest = driver.seen
        older = replace(newest, generation=newest.generation - 1, phase=RolloutPhase.HEALTHY, weight=0)
        driver._mirror(older, "auto")
        assert driver.seen is newest
        assert (
            session.controller("production").state.phase,
            session.controller("production").state.weight,
        ) == (
            Phase.PAUSED,
            20,
        )
    finally:
        await session.close()


def test_the_pilot_fixtures_run_the_mirror_driver_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tests/test_ui_actions.py's mirror runs really drive the mirror (not the memory backend twice)."""
    import tests.ui_fixtures as fixtures

    monkeypatch.setattr(fixtures, "DRIVER", "mirror")
    session = fixtures.make_session(tmp_path)
    assert all(isinstance(c.driver, MirrorDriver) for c in session.controllers.values())
    monkeypatch.setattr(fixtures, "DRIVER", "machine")
    session = fixtures.make_session(tmp_path / "machine")
    assert not any(isinstance(c.driver, MirrorDriver) for c in session.controllers.values())
