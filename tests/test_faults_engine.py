"""The engine under faults: it acts on what it observes, and its outcomes tell the truth.

The local-backend tests kill and stop real processes behind a real router; the memory
backend covers what real processes cannot show on demand (a crash loop, a status that
times out) and the headless exit-code matrix. Journal failures are injected through the
journal's documented contract (:class:`JournalWriteError`), not by mocking the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import time
import uuid
from pathlib import Path

import pytest

import tests.memory_backend  # noqa: F401 - registers the "memory" adapters
from cockpit import secrets
from cockpit.adapters.base import BackendError, Track
from cockpit.engine.commands import Abort, Promote, PromoteFull, SetWeight, StartRollout
from cockpit.engine.journal import Journal, JournalWriteError
from cockpit.engine.session import Session
from cockpit.engine.state import Activity, Cause, Phase
from cockpit.headless import run_rollout, transition_printer, verdict
from cockpit.plan import parse_plan
from tests.local_fixtures import hit, service_fixture  # noqa: F401 - the fixture is used by name
from tests.memory_backend import MemoryBackend, MemoryMetrics, Profile

MEMORY_PLAN = """
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
    [environments.metrics.options]
    down = {metrics_down}

[strategy.canary]
steps = [{steps}]

[[analysis.checks]]
name = "success-rate"
metric = "success-rate"
success = ">= 95"
interval = "50ms"
count = 2
{extra}
"""
UNTIMED = "{ set_weight = 20 }, { pause = {} }, { set_weight = 50 }, { pause = {} }"
TIMED = '{ set_weight = 20 }, { pause = { duration = "300ms" } }, { set_weight = 50 }, { pause = {} }'
ANALYSED = '{ set_weight = 20 }, { analysis = { checks = ["success-rate"] } }, { pause = {} }'


def memory_plan(steps: str = UNTIMED, metrics_down: bool = False, extra: str = ""):
    service = f"f{uuid.uuid4().hex[:8]}"
    text = MEMORY_PLAN.format(
        service=service, steps=steps, metrics_down=str(metrics_down).lower(), extra=extra
    )
    return parse_plan(text)


class FlakyJournal(Journal):
    """A journal whose writes fail on demand, the way a full disk makes them fail."""

    failing = False

    def append(self, **fields: object) -> int:  # type: ignore[override]
        if self.failing:
            raise JournalWriteError(f"the journal {self.path} cannot be written: disk full")
        return super().append(**fields)  # type: ignore[arg-type]

    def add_revision(self, *args: object) -> None:  # type: ignore[override]
        if self.failing:
            raise JournalWriteError(f"the journal {self.path} cannot be written: disk full")
        super().add_revision(*args)  # type: ignore[arg-type]


async def until(predicate, timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout}s: {what or predicate}")
        await asyncio.sleep(0.02)


def memory_backend(session: Session) -> MemoryBackend:
    backend = session.controller("production").backend
    assert isinstance(backend, MemoryBackend)
    return backend


async def paused_at_20(session: Session) -> None:
    assert await session.start() == []
    result = await session.submit("production", StartRollout("1.1.0"))
    assert result.ok, result.message
    state = session.controller("production").state
    assert (state.phase, state.weight) == (Phase.PAUSED, 20), state


def refusals(session: Session, action: str) -> list[str]:
    records = session.journal.records(service=session.plan.service.name)
    return [r.detail for r in records if r.action == action and r.outcome == "refused"]


# ----------------------------------------------------------------------------- gates (memory)


@pytest.mark.asyncio
async def test_promotes_and_weight_raises_are_refused_while_the_canary_is_not_ready(tmp_path: Path) -> None:
    session = Session(memory_plan(), state_dir=tmp_path, user="ann")
    try:
        await paused_at_20(session)
        backend = memory_backend(session)
        backend.sick(Track.CANARY, ready=0, problem="replica #1 exited with code 137")
        for command in (Promote(), PromoteFull(), SetWeight(50)):
            result = await session.submit("production", command)
            assert not result.ok
            assert result.message == (
                "refused by the health gate: canary 1.1.0 0/2 ready, 1 restart: replica #1 exited with code 137"
            )
            assert result.cause is Cause.HEALTH_GATE
        state = session.controller("production").state
        assert (state.phase, state.weight, state.stable_version) == (Phase.PAUSED, 20, "1.0.0")
        assert (backend.weight, backend.canary, backend.stable) == (20, "1.1.0", "1.0.0")
        assert "promote_canary" not in backend.calls
        for action in ("promote", "promote-full", "set-weight"):
            assert refusals(session, action) == [result.message], action
        # Moving traffic back towards stable is never gated.
        assert (await session.submit("production", SetWeight(10))).ok
        assert backend.weight == 10
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_a_status_that_fails_closes_the_gate(tmp_path: Path) -> None:
    session = Session(memory_plan(), state_dir=tmp_path, user="ann")
    try:
        await paused_at_20(session)
        backend = memory_backend(session)
        backend.status_fails = True
        result = await session.submit("production", PromoteFull())
        assert not result.ok
        assert result.message.startswith("refused by the health gate: the status cannot be read:")
        assert backend.stable == "1.0.0" and backend.weight == 20
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_an_automatic_step_aborts_on_the_health_gate(tmp_path: Path) -> None:
    session = Session(memory_plan(TIMED), state_dir=tmp_path, user="ann")
    try:
        assert await session.start() == []
        assert (await session.submit("production", StartRollout("1.1.0"))).ok
        backend = memory_backend(session)
        backend.sick(Track.CANARY, ready=1, problem="replica #2 exited with code 1")
        controller = session.controller("production")
        await until(
            lambda: controller.state.phase is Phase.ABORTED and controller.state.activity is Activity.IDLE
        )
        state = controller.state
        assert state.cause is Cause.HEALTH_GATE
        assert state.reason.startswith("health gate: canary 1.1.0 1/2 ready")
        assert (backend.weight, backend.canary) == (0, None)
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_a_canary_crash_loop_aborts_and_a_partial_canary_shows_at_once(tmp_path: Path) -> None:
    session = Session(memory_plan(), state_dir=tmp_path, user="ann")
    try:
        await paused_at_20(session)
        backend = memory_backend(session)
        controller = session.controller("production")
        backend.sick(Track.CANARY, ready=1, problem="replica #2 exited with code 1; restarting")
        await until(lambda: controller.state.warning != "", timeout=3.0)
        assert controller.state.warning == (
            "canary 1.1.0 1/2 ready, 1 restart: replica #2 exited with code 1; restarting"
        )
        assert controller.state.phase is Phase.PAUSED  # shown, not acted on: it may heal
        observed = [r for r in session.journal.records(env="production") if r.action == "observed"]
        assert [r.detail for r in observed] == [controller.state.warning]  # the journal says so, once
        backend.sick(Track.CANARY, ready=1, crash_loop=True, problem="replica #2 exited 5 times")
        await until(
            lambda: controller.state.phase is Phase.ABORTED and controller.state.activity is Activity.IDLE
        )
        assert controller.state.cause is Cause.CRASH_LOOP
        assert "crash-looping: replica #2 exited 5 times" in controller.state.reason
        assert (backend.weight, backend.canary) == (0, None)
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_a_stable_crash_loop_is_degraded_loudly(tmp_path: Path) -> None:
    session = Session(memory_plan(), state_dir=tmp_path, user="ann")
    try:
        assert await session.start() == []
        backend = memory_backend(session)
        backend.sick(Track.STABLE, ready=0, crash_loop=True, problem="replica #1 exited 5 times")
        controller = session.controller("production")
        await until(lambda: controller.state.phase is Phase.DEGRADED, timeout=3.0)
        assert controller.state.cause is Cause.CRASH_LOOP
        assert controller.state.reason == "stable 1.0.0 is crash-looping: replica #1 exited 5 times"
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_a_canary_that_lands_after_its_rollout_ended_is_shown_and_journaled(tmp_path: Path) -> None:
    # A deploy whose answer was lost (a timeout) can land on the platform after the abort that
    # followed it: the cockpit says what it sees instead of showing a clean environment.
    session = Session(memory_plan(), state_dir=tmp_path, user="ann")
    try:
        await paused_at_20(session)
        controller = session.controller("production")
        assert (await session.submit("production", Abort())).ok
        await until(
            lambda: controller.state.phase is Phase.ABORTED and controller.state.activity is Activity.IDLE
        )
        assert controller.state.warning == ""
        await memory_backend(session).deploy_canary("1.1.0")  # the late deploy, behind the cockpit's back
        stray = "canary 1.1.0 runs on the platform though no rollout is on (0% of traffic)"
        await until(lambda: controller.state.warning == stray, timeout=3.0, what="the stray canary shown")
        observed = [r.detail for r in session.journal.records(env="production") if r.action == "observed"]
        assert observed[-1] == stray
        await memory_backend(session).remove_canary()
        await until(lambda: controller.state.warning == "", timeout=3.0, what="the warning cleared")
    finally:
        await session.close()


# ----------------------------------------------------------------------------- I/O errors (memory)


@pytest.mark.asyncio
async def test_an_intent_that_cannot_be_journaled_is_not_taken(tmp_path: Path) -> None:
    journal = FlakyJournal(tmp_path / "journal.sqlite")
    session = Session(memory_plan(), state_dir=tmp_path, user="ann", journal=journal)
    try:
        assert await session.start() == []
        journal.failing = True
        result = await session.submit("production", StartRollout("1.1.0"))
        assert not result.ok and "disk full" in result.message
        backend = memory_backend(session)
        assert "deploy_canary" not in backend.calls and backend.canary is None
        assert session.controller("production").state.phase is Phase.HEALTHY
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_a_journal_failure_during_automatic_steps_sends_traffic_back(tmp_path: Path) -> None:
    journal = FlakyJournal(tmp_path / "journal.sqlite")
    session = Session(memory_plan(TIMED), state_dir=tmp_path, user="ann", journal=journal)
    try:
        assert await session.start() == []
        assert (await session.submit("production", StartRollout("1.1.0"))).ok
        journal.failing = True  # the disk fills up during the timed pause
        controller = session.controller("production")
        await until(
            lambda: controller.state.phase is Phase.ABORTED and controller.state.activity is Activity.IDLE
        )
        assert controller.state.cause is Cause.JOURNAL_FAILURE
        assert "disk full" in controller.state.reason
        backend = memory_backend(session)
        assert (backend.weight, backend.canary) == (0, None)
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_a_background_task_that_dies_is_degraded_not_lost(tmp_path: Path) -> None:
    session = Session(memory_plan(TIMED), state_dir=tmp_path, user="ann")
    try:
        assert await session.start() == []
        assert (await session.submit("production", StartRollout("1.1.0"))).ok
        memory_backend(session).explode("set_weight")  # the next step hits an engine bug
        controller = session.controller("production")
        await until(lambda: controller.state.phase is Phase.DEGRADED)
        assert controller.state.cause is Cause.INTERNAL_ERROR
        assert "RuntimeError: memory backend set_weight exploded" in controller.state.reason
    finally:
        await session.close()


# ----------------------------------------------------------------------------- exit codes (memory)


async def headless(session: Session, version: str, during=None, **kwargs: object) -> tuple[int, str]:
    """Run the headless rollout; ``during(session)`` runs alongside it. Returns the code
    and the last printed line."""
    out = io.StringIO()
    run = asyncio.create_task(run_rollout(session, "production", version, out=out, **kwargs))  # type: ignore[arg-type]
    if during is not None:
        await during(session)
    code = await asyncio.wait_for(run, 30)
    return code, out.getvalue().splitlines()[-1] if out.getvalue() else ""


async def when_analysing(session: Session) -> None:
    await until(lambda: "production" in session.controllers and session.controller("production").started)
    controller = session.controller("production")
    await until(lambda: controller.state.activity is Activity.ANALYSING)


class FailingAbort:
    """During the analysis, make the router refuse every traffic change (a failed abort)."""

    async def __call__(self, session: Session) -> None:
        await when_analysing(session)
        backend = memory_backend(session)

        async def refuse(weight: int) -> None:
            raise BackendError("the router of environment production does not answer (timeout)")

        backend.set_weight = refuse  # type: ignore[method-assign]


async def stable_sick_during_analysis(session: Session) -> None:
    await when_analysing(session)
    memory_backend(session).sick(Track.STABLE, ready=1, problem="replica #2 exited with code 1")


async def no_canary_traffic(session: Session) -> None:
    """Nobody calls the canary: its analysis has no data (Inconclusive, never a pass)."""
    await until(lambda: "production" in session.controllers and session.controller("production").started)
    metrics = session.controller("production").metrics
    assert isinstance(metrics, MemoryMetrics)
    metrics.options.profiles["1.1.0"] = Profile(rate=0.0)


async def canary_sick(session: Session) -> None:
    """The canary loses its replicas during the analysis; the pause after it is auto-promoted."""
    await when_analysing(session)
    memory_backend(session).sick(Track.CANARY, ready=0, problem="replica #1 exited with code 137")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("version", "metrics_down", "during", "code", "line"),
    [
        ("1.1.0", False, None, 0, "promoted: 1.1.0 serves 100% of production"),
        ("1.2.0", False, None, 3, "aborted: analysis failed: "),
        (
            "1.1.0",
            False,
            no_canary_traffic,
            3,
            "aborted: aborted by ci: analysis inconclusive; no human in headless",
        ),
        # Metrics down past the consecutive error limit: an abort, as Argo's Error (engine/analysis.py).
        (
            "1.1.0",
            True,
            None,
            3,
            "aborted: analysis failed: success-rate: metrics source failed 5 times in a row",
        ),
        ("1.2.0", False, FailingAbort(), 1, "degraded (backend-failure): abort failed: the router"),
        ("1.2.0", False, stable_sick_during_analysis, 1, "error: aborted (analysis-failed); traffic is not"),
        (
            "1.1.0",
            False,
            canary_sick,
            1,
            "aborted (health-gate): aborted by ci: refused by the health gate: canary",
        ),
    ],
    ids=[
        "promoted",
        "analysis-failed",
        "inconclusive",
        "metrics-down",
        "failed-abort",
        "stable-unverified",
        "health-gate",
    ],
)
async def test_headless_exit_codes_come_from_the_cause_and_a_fresh_status(
    tmp_path: Path, version: str, metrics_down: bool, during, code: int, line: str
) -> None:
    session = Session(memory_plan(ANALYSED, metrics_down=metrics_down), state_dir=tmp_path, user="ci")
    got, last = await headless(session, version, during, auto_promote=True)
    assert (got, last[: len(line)]) == (code, line), last


@pytest.mark.asyncio
async def test_verdict_of_a_failed_abort_is_1_even_after_an_analysis_abort(tmp_path: Path) -> None:
    """The reported defect: Degraded after a failed abort was printed as 'aborted', exit 3."""
    session = Session(memory_plan(), state_dir=tmp_path, user="ci")
    try:
        await paused_at_20(session)
        controller = session.controller("production")
        backend = memory_backend(session)
        backend.down = True
        result = await session.submit("production", Abort(cause=Cause.INCONCLUSIVE_HEADLESS), "no human")
        assert not result.ok
        assert controller.state.phase is Phase.DEGRADED and controller.state.cause is Cause.BACKEND_FAILURE
        code, line = await verdict(controller, "1.1.0")
        assert code == 1 and line.startswith("degraded (backend-failure): abort failed:"), line
        assert "the backend cannot confirm it" in line
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_a_closed_stdout_stops_printing_not_the_rollout(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader went away: every write raises BrokenPipeError
    out = open(write_end, "w")  # noqa: SIM115 - closed below
    try:
        session = Session(
            memory_plan(ANALYSED), state_dir=tmp_path, user="ci", on_transition=transition_printer(out, 0.0)
        )
        code = await asyncio.wait_for(run_rollout(session, "production", "1.2.0", out=out), 30)
        assert code == 3
    finally:
        with contextlib.suppress(OSError):
            out.close()


@pytest.mark.asyncio
async def test_an_interrupted_headless_run_is_journaled_and_reconciled_at_restart(tmp_path: Path) -> None:
    plan = memory_plan()
    session = Session(plan, state_dir=tmp_path, user="ci")
    # Held at the indefinite pause (without pause_timeout the run would stop there, exit 4).
    run = asyncio.create_task(
        run_rollout(session, "production", "1.1.0", out=io.StringIO(), pause_timeout=600)
    )
    await until(lambda: session.controller("production").state.phase is Phase.PAUSED)
    os.kill(os.getpid(), signal.SIGINT)
    assert await asyncio.wait_for(run, 10) == 130
    reader = Journal(session.journal.path, read_only=True)
    records = reader.records(service=plan.service.name)
    reader.close()
    interrupted = [r for r in records if r.action == "interrupted"]
    assert len(interrupted) == 1 and interrupted[0].phase == "Paused" and interrupted[0].weight == 20
    assert "cause interrupted" in interrupted[0].detail
    # A new cockpit finds the canary gone (it lived with the old one): it says why.
    again = Session(plan, state_dir=tmp_path, user="ci")
    try:
        assert await again.start() == []
        state = again.controller("production").state
        assert (state.phase, state.cause) == (Phase.ABORTED, Cause.INTERRUPTED)
        reconciled = [r for r in again.journal.records(service=plan.service.name) if r.action == "reconcile"]
        assert reconciled and "(cause interrupted)" in reconciled[-1].detail
    finally:
        await again.close()


# ----------------------------------------------------------------------------- secrets at start


@pytest.mark.asyncio
async def test_plan_secrets_are_resolved_at_start_and_a_missing_one_is_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = f"s3cr3t-{uuid.uuid4().hex}"
    known, missing = f"COCKPIT_T_{uuid.uuid4().hex[:6].upper()}", f"COCKPIT_T_{uuid.uuid4().hex[:6].upper()}"
    monkeypatch.setenv(known, value)
    extra = f'\n[secrets]\napi = "env:{known}"\ndb = "env:{missing}"\n'
    plan = memory_plan(extra=extra)
    session = Session(plan, state_dir=tmp_path, user="ann")
    try:
        assert await session.start() == []
        # Redaction knows the value although no backend asked for it.
        assert value not in secrets.redact(f"connect failed: {value}")
        assert len(session.warnings) == 1 and f"env:{missing}" in session.warnings[0]
        records = session.journal.records(service=plan.service.name, text="cannot be resolved")
        assert [r.action for r in records] == ["secrets"]
        assert value not in "".join(r.detail for r in session.journal.records(service=plan.service.name))
        lines = [line.text for line in session.logs.buffers["production"].tail(50)]
        assert any(f"env:{missing}" in text for text in lines)
    finally:
        await session.close()


# ----------------------------------------------------------------------------- real processes (local)

LOCAL_PLAN = """
[service]
name = "{service}"

[[environments]]
name = "production"
initial_version = "1.0.0"
  [environments.backend]
  adapter = "local"
    [environments.backend.options]
    versions = ["1.0.0", "1.1.0", "1.2.0"]
    replicas = {replicas}

[strategy.canary]
steps = [{{ set_weight = 20 }}, {{ pause = {{}} }}]
"""


def canary_pids(session: Session) -> list[int]:
    backend = session.controller("production").backend
    return [r.proc.pid for r in backend._canary if r.proc is not None]  # type: ignore[attr-defined]


async def local_paused(service: str, tmp_path: Path, replicas: int) -> Session:
    plan = parse_plan(LOCAL_PLAN.format(service=service, replicas=replicas))
    session = Session(plan, state_dir=tmp_path, user="ann")
    assert await session.start() == []
    result = await session.submit("production", StartRollout("1.1.0"))
    assert result.ok, result.message
    return session


@pytest.mark.asyncio
async def test_a_dead_canary_is_never_promoted_and_users_see_no_failure(tmp_path: Path, service: str) -> None:
    session = await local_paused(service, tmp_path, replicas=2)
    try:
        controller = session.controller("production")
        pids = canary_pids(session)
        assert len(pids) == 2
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        await until(lambda: "canary 1.1.0 0/2 ready" in controller.state.warning, timeout=5.0)
        for command in (Promote(), PromoteFull()):
            result = await session.submit("production", command)
            assert not result.ok and result.cause is Cause.HEALTH_GATE
            assert result.message.startswith("refused by the health gate: canary 1.1.0 0/2 ready"), (
                result.message
            )
        state = controller.state
        assert (state.phase, state.stable_version, state.weight) == (Phase.PAUSED, "1.0.0", 20)
        assert not [
            r for r in session.journal.records(service=service) if r.outcome == "ok" and "promot" in r.action
        ]
        assert refusals(session, "promote") and refusals(session, "promote-full")
        assert all("0/2 ready" in d for d in refusals(session, "promote") + refusals(session, "promote-full"))
        # The router sends the canary's share back to stable when its replicas refuse connections.
        view = session.view("production")
        assert view.url is not None
        counts = await hit(view.url + "/", 200)
        assert counts == {"1.0.0": 200}, counts
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_one_dead_canary_replica_of_two_shows_at_once(tmp_path: Path, service: str) -> None:
    session = await local_paused(service, tmp_path, replicas=2)
    try:
        controller = session.controller("production")
        os.kill(canary_pids(session)[1], signal.SIGKILL)
        killed = time.monotonic()
        await until(lambda: "canary 1.1.0 1/2 ready" in controller.state.warning, timeout=5.0)
        print(f"one dead canary replica shown after {time.monotonic() - killed:.2f}s")
        from cockpit.ui import render

        assert "canary 1.1.0 1/2 ready" in render.phase(session.view("production"), time.time()).plain
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_a_failed_abort_is_exit_1_not_3(tmp_path: Path, service: str) -> None:
    session = await local_paused(service, tmp_path, replicas=1)
    controller = session.controller("production")
    router = controller.backend._router  # type: ignore[attr-defined]
    assert router is not None
    os.kill(router.pid, signal.SIGSTOP)  # the control API stops answering: the abort times out
    try:
        result = await session.submit("production", Abort(cause=Cause.INCONCLUSIVE_HEADLESS), "no human")
        assert not result.ok
        assert (controller.state.phase, controller.state.cause) == (Phase.DEGRADED, Cause.BACKEND_FAILURE)
        code, line = await verdict(controller, "1.1.0")
        assert code == 1, line
        assert line.startswith("degraded (backend-failure): abort failed: the router"), line
    finally:
        os.kill(router.pid, signal.SIGCONT)
        await session.close()


@pytest.mark.asyncio
async def test_a_promote_is_0_only_when_the_backend_shows_it(tmp_path: Path) -> None:
    session = Session(memory_plan(), state_dir=tmp_path, user="ci")
    try:
        await paused_at_20(session)
        assert (await session.submit("production", PromoteFull())).ok
        controller = session.controller("production")
        assert await verdict(controller, "1.1.0") == (0, "promoted: 1.1.0 serves 100% of production")
        memory_backend(session).stable = "1.0.0"  # changed behind the cockpit's back
        code, line = await verdict(controller, "1.1.0")
        assert code == 1 and line.startswith(
            "error: 1.1.0 was promoted but is not verified: the backend shows"
        ), line
    finally:
        await session.close()


@pytest.mark.asyncio
async def test_a_listener_that_raises_never_stops_the_rollout(tmp_path: Path) -> None:
    def broken(env: str, note: str, state) -> None:
        raise OSError("[Errno 32] Broken pipe")

    session = Session(memory_plan(), state_dir=tmp_path, user="ann", on_transition=broken)
    try:
        await paused_at_20(session)
    finally:
        await session.close()
