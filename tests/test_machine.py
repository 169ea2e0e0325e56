"""Exhaustive tests of the rollout state machine's transitions (pure, no I/O)."""

from __future__ import annotations

import pytest

from cockpit.engine.machine import (
    DeployCanary,
    DeployStable,
    PromoteCanary,
    Refused,
    RemoveCanary,
    Resume,
    RolloutMachine,
    RunAnalysis,
    SetWeight,
    Transition,
    WaitPause,
)
from cockpit.engine.state import Activity, AnalysisView, Cause, Outcome, Phase, Revision, RolloutState
from cockpit.plan.models import AnalysisStep, Pause, Step

STEPS = [
    Step(set_weight=20),
    Step(pause=Pause(duration=5)),
    Step(analysis=AnalysisStep(checks=["success-rate"])),
    Step(set_weight=50),
    Step(pause=Pause()),
]
VERSIONS = ["1.0.0", "1.1.0", "1.2.0"]
NOW = 1000.0


@pytest.fixture
def machine() -> RolloutMachine:
    return RolloutMachine(STEPS, history_limit=3)


def healthy(machine: RolloutMachine) -> RolloutState:
    return machine.initial("production", "1.0.0", [Revision(1, "1.0.0", 1.0, "ann")])


def finish(machine: RolloutMachine, t: Transition) -> Transition:
    """Report ``t``'s effects as succeeded (what the controller does)."""
    assert t.then is not None
    nxt = machine.resume(t.state, t.then, NOW)
    assert nxt is not None
    return nxt


def at_step(machine: RolloutMachine, index: int) -> Transition:
    """Walk a rollout of 1.1.0 until step ``index`` has been entered."""
    t = machine.start(healthy(machine), "1.1.0", VERSIONS, NOW)
    t = finish(machine, t)  # deployed -> step 0
    while t.state.step_index < index:
        if t.effects and isinstance(t.effects[0], RunAnalysis):
            view = AnalysisView(t.state.step_index, Outcome.SUCCESSFUL, ())
            t = machine.analysis_finished(t.state, t.then, view, NOW)
        else:
            t = finish(machine, t)
    return t


# ----------------------------------------------------------------------------- start


def test_start_deploys_canary_and_then_walks_first_step(machine: RolloutMachine) -> None:
    t = machine.start(healthy(machine), "1.1.0", VERSIONS, NOW)
    assert t.state.phase is Phase.PROGRESSING
    assert t.state.activity is Activity.DEPLOYING
    assert t.effects == (DeployCanary("1.1.0"),)
    t2 = finish(machine, t)
    assert t2.state.canary_version == "1.1.0"
    assert t2.effects == (SetWeight(20),)
    assert t2.state.step_label == "1/5"


@pytest.mark.parametrize(
    ("version", "message"),
    [("9.9.9", "does not exist"), ("1.0.0", "already the stable version")],
)
def test_start_refuses_bad_versions(machine: RolloutMachine, version: str, message: str) -> None:
    with pytest.raises(Refused, match=message):
        machine.start(healthy(machine), version, VERSIONS, NOW)


def test_start_refused_while_rollout_in_progress(machine: RolloutMachine) -> None:
    t = at_step(machine, 1)
    with pytest.raises(Refused, match="in progress"):
        machine.start(t.state, "1.2.0", VERSIONS, NOW)


def test_start_allowed_after_abort(machine: RolloutMachine) -> None:
    t = at_step(machine, 1)
    aborted = finish(machine, machine.abort(t.state, "bad"))
    t2 = machine.start(aborted.state, "1.2.0", VERSIONS, NOW)
    assert t2.state.target_version == "1.2.0"
    assert t2.state.epoch > aborted.state.epoch


# ----------------------------------------------------------------------------- steps


def test_full_walk_promotes_and_records_revision(machine: RolloutMachine) -> None:
    t = at_step(machine, 1)
    assert t.state.phase is Phase.PAUSED and t.state.paused_until == NOW + 5
    assert t.effects == (WaitPause(5),)
    t = finish(machine, t)  # pause elapsed -> analysis
    assert t.effects == (RunAnalysis(("success-rate",)),)
    assert t.state.activity is Activity.ANALYSING
    t = machine.analysis_finished(t.state, t.then, AnalysisView(2, Outcome.SUCCESSFUL, ()), NOW)
    assert t.effects == (SetWeight(50),)
    t = finish(machine, t)
    assert t.state.weight == 50
    assert t.state.phase is Phase.PAUSED and t.state.paused_until is None  # indefinite pause
    t = machine.promote(t.state, NOW)
    assert t.effects == (SetWeight(100), PromoteCanary())
    t = finish(machine, t)
    s = t.state
    assert s.phase is Phase.HEALTHY
    assert s.stable_version == "1.1.0" and s.canary_version is None and s.weight == 0
    assert [r.version for r in s.revisions] == ["1.0.0", "1.1.0"]
    assert s.revision == 2


def test_revisions_are_capped_by_history_limit(machine: RolloutMachine) -> None:
    state = healthy(machine)
    for version in ["1.1.0", "1.2.0", "1.1.0", "1.2.0"]:
        t = finish(machine, finish(machine, machine.start(state, version, VERSIONS, NOW)))  # at the pause
        t = machine.promote_full(t.state)
        state = finish(machine, t).state
    assert len(state.revisions) == 3
    assert state.revisions[-1].number == 5


def test_stale_reports_are_ignored(machine: RolloutMachine) -> None:
    t = at_step(machine, 1)  # timed pause running
    aborted = machine.abort(t.state, "stop")
    assert machine.resume(aborted.state, t.then, NOW) is None  # the pause timer fires late
    view = AnalysisView(1, Outcome.SUCCESSFUL, ())
    assert machine.analysis_finished(aborted.state, t.then, view, NOW) is None


# ----------------------------------------------------------------------------- promote


def test_promote_skips_a_timed_pause(machine: RolloutMachine) -> None:
    t = at_step(machine, 1)
    t2 = machine.promote(t.state, NOW)
    assert t2.state.step_index == 2
    assert t2.effects == (RunAnalysis(("success-rate",)),)
    assert t2.state.epoch == t.state.epoch + 1  # the old pause timer becomes stale


def test_promote_refused_when_nothing_paused(machine: RolloutMachine) -> None:
    with pytest.raises(Refused, match="nothing is paused"):
        machine.promote(healthy(machine), NOW)
    progressing = at_step(machine, 2)  # analysis running
    with pytest.raises(Refused, match="nothing is paused"):
        machine.promote(progressing.state, NOW)


def test_full_promote_jumps_to_100(machine: RolloutMachine) -> None:
    t = at_step(machine, 2)
    t2 = machine.promote_full(t.state)
    assert t2.effects == (SetWeight(100), PromoteCanary())
    assert finish(machine, t2).state.stable_version == "1.1.0"


def test_full_promote_refused_without_rollout_or_canary(machine: RolloutMachine) -> None:
    with pytest.raises(Refused, match="no rollout"):
        machine.promote_full(healthy(machine))
    deploying = machine.start(healthy(machine), "1.1.0", VERSIONS, NOW)
    with pytest.raises(Refused, match="not deployed yet"):
        machine.promote_full(deploying.state)


# ----------------------------------------------------------------------------- abort and retry


def test_abort_sends_traffic_to_stable_then_scales_down(machine: RolloutMachine) -> None:
    t = at_step(machine, 3)
    a = machine.abort(t.state, "aborted by ann: errors")
    assert a.effects == (SetWeight(0), RemoveCanary())  # order matters: traffic first
    assert a.state.phase is Phase.ABORTED and a.state.activity is Activity.ABORTING
    done = finish(machine, a)
    assert done.state.canary_version is None and done.state.weight == 0
    assert done.state.target_version == "1.1.0"  # kept for retry
    assert "aborted by ann" in done.state.reason


def test_abort_refused_when_nothing_to_abort(machine: RolloutMachine) -> None:
    with pytest.raises(Refused, match="nothing to abort"):
        machine.abort(healthy(machine), "x")
    done = finish(machine, machine.abort(at_step(machine, 1).state, "x"))
    with pytest.raises(Refused, match="nothing to abort"):
        machine.abort(done.state, "again")


def test_retry_restarts_from_first_step(machine: RolloutMachine) -> None:
    done = finish(machine, machine.abort(at_step(machine, 3).state, "x"))
    r = machine.retry(done.state, VERSIONS, NOW)
    assert r.effects == (DeployCanary("1.1.0"),)
    assert r.state.phase is Phase.PROGRESSING and r.state.step_index == 0


def test_retry_refused_unless_aborted_or_degraded(machine: RolloutMachine) -> None:
    with pytest.raises(Refused, match="retry is for"):
        machine.retry(healthy(machine), VERSIONS, NOW)
    with pytest.raises(Refused, match="retry is for"):
        machine.retry(at_step(machine, 1).state, VERSIONS, NOW)


# ----------------------------------------------------------------------------- analysis outcomes


def test_failed_analysis_aborts(machine: RolloutMachine) -> None:
    t = at_step(machine, 2)
    view = AnalysisView(2, Outcome.FAILED, (), "success-rate 80.0% (needs >= 95)")
    a = machine.analysis_finished(t.state, t.then, view, NOW)
    assert a.effects == (SetWeight(0), RemoveCanary())
    assert a.state.reason.startswith("analysis failed: success-rate 80.0%")
    assert a.state.analysis == view


@pytest.mark.parametrize("outcome", [Outcome.INCONCLUSIVE, Outcome.NO_DATA, Outcome.ERROR])
def test_inconclusive_analysis_pauses_for_a_human(machine: RolloutMachine, outcome: Outcome) -> None:
    t = at_step(machine, 2)
    p = machine.analysis_finished(t.state, t.then, AnalysisView(2, outcome, (), "no data"), NOW)
    assert p.effects == ()
    assert p.state.phase is Phase.PAUSED
    assert "inconclusive" in p.state.reason
    cont = machine.promote(p.state, NOW)  # the human decides to go on
    assert cont.effects == (SetWeight(50),)


# ----------------------------------------------------------------------------- weight


def test_set_weight_only_while_paused(machine: RolloutMachine) -> None:
    paused = at_step(machine, 1)
    t = machine.set_weight(paused.state, 30)
    assert t.effects == (SetWeight(30),)
    with pytest.raises(Refused, match="while a rollout is paused"):
        machine.set_weight(at_step(machine, 2).state, 30)
    with pytest.raises(Refused, match="while a rollout is paused"):
        machine.set_weight(healthy(machine), 30)


@pytest.mark.parametrize("weight", [-1, 101])
def test_set_weight_bounds(machine: RolloutMachine, weight: int) -> None:
    with pytest.raises(Refused, match="between 0 and 100"):
        machine.set_weight(at_step(machine, 1).state, weight)


def test_set_weight_same_value_refused(machine: RolloutMachine) -> None:
    with pytest.raises(Refused, match="already has 20%"):
        machine.set_weight(at_step(machine, 1).state, 20)


# ----------------------------------------------------------------------------- rollback


def promoted(machine: RolloutMachine) -> RolloutState:
    t = machine.promote_full(at_step(machine, 1).state)
    return finish(machine, t).state


def test_rollback_to_previous_revision(machine: RolloutMachine) -> None:
    state = promoted(machine)
    t = machine.rollback(state, None)
    assert t.effects == (DeployStable("1.0.0"),)
    done = finish(machine, t).state
    assert done.phase is Phase.HEALTHY and done.stable_version == "1.0.0"
    assert done.revision == 3  # a rollback is a new revision, as in Argo


def test_rollback_to_named_revision(machine: RolloutMachine) -> None:
    state = promoted(machine)
    assert machine.rollback(state, 1).effects == (DeployStable("1.0.0"),)
    with pytest.raises(Refused, match="not retained"):
        machine.rollback(state, 42)
    with pytest.raises(Refused, match="is what runs now"):
        machine.rollback(state, 2)


def test_rollback_refused_during_rollout_or_without_history(machine: RolloutMachine) -> None:
    with pytest.raises(Refused, match="abort it first"):
        machine.rollback(at_step(machine, 1).state, None)
    with pytest.raises(Refused, match="no earlier revision"):
        machine.rollback(healthy(machine), None)


# ----------------------------------------------------------------------------- failures


def test_deploy_failure_aborts_without_traffic(machine: RolloutMachine) -> None:
    t = machine.start(healthy(machine), "1.1.0", VERSIONS, NOW)
    f = machine.failed(t.state, t.then, "health check failed")
    assert f.state.phase is Phase.ABORTED
    assert f.state.canary_version is None and f.state.weight == 0
    assert "failed to deploy" in f.state.reason


def test_weight_failure_mid_rollout_degrades(machine: RolloutMachine) -> None:
    t = at_step(machine, 3)
    f = machine.failed(t.state, t.then, "router unreachable")
    assert f.state.phase is Phase.DEGRADED
    assert "router unreachable" in f.state.reason
    a = machine.abort(f.state, "clean up")  # abort is still possible from Degraded
    assert a.effects == (SetWeight(0), RemoveCanary())


def test_rollback_failure_keeps_stable(machine: RolloutMachine) -> None:
    t = machine.rollback(promoted(machine), None)
    f = machine.failed(t.state, t.then, "boom")
    assert f.state.phase is Phase.DEGRADED and f.state.stable_version == "1.1.0"


def test_busy_environment_refuses_new_work(machine: RolloutMachine) -> None:
    t = machine.start(healthy(machine), "1.1.0", VERSIONS, NOW)  # deploying
    with pytest.raises(Refused):
        machine.set_weight(t.state, 10)
    a = machine.abort(at_step(machine, 1).state, "x")  # aborting
    with pytest.raises(Refused, match="already aborting"):
        machine.abort(a.state, "again")


def test_refusal_leaves_state_untouched(machine: RolloutMachine) -> None:
    state = at_step(machine, 2).state
    before = state
    with pytest.raises(Refused):
        machine.promote(state, NOW)
    assert state == before


def test_resume_token_names_are_checked(machine: RolloutMachine) -> None:
    state = healthy(machine)
    with pytest.raises(ValueError):
        machine.resume(state, Resume(state.epoch, 0, "bogus"), NOW)


# ----------------------------------------------------------------------------- causes


def test_every_way_off_the_normal_path_carries_its_cause(machine: RolloutMachine) -> None:
    t = at_step(machine, 2)
    failed = machine.analysis_finished(t.state, t.then, AnalysisView(2, Outcome.FAILED, (), "x"), NOW)
    assert failed.state.cause is Cause.ANALYSIS_FAILED
    # The abort's own effects fail: traffic is not known to be on stable any more.
    degraded = machine.failed(failed.state, failed.then, "router timeout")
    assert (degraded.state.phase, degraded.state.cause) == (Phase.DEGRADED, Cause.BACKEND_FAILURE)
    assert degraded.state.reason.startswith("abort failed: router timeout")
    by_user = machine.abort(at_step(machine, 1).state, "aborted by ann")
    assert by_user.state.cause is Cause.ABORTED_BY_USER
    gate = machine.stop(at_step(machine, 1).state, "health gate: canary 0/2 ready", Cause.HEALTH_GATE)
    assert gate is not None and gate.state.cause is Cause.HEALTH_GATE
    assert gate.effects == (SetWeight(0), RemoveCanary())
    assert machine.stop(healthy(machine), "x", Cause.CRASH_LOOP) is None  # nothing to abort
    assert machine.stop(gate.state, "x", Cause.CRASH_LOOP) is None  # already aborting
    # A new rollout starts with a clean slate.
    done = finish(machine, gate)
    assert machine.retry(done.state, VERSIONS, NOW).state.cause is None


def test_a_stable_crash_loop_degrades_and_recovers(machine: RolloutMachine) -> None:
    t = machine.stable_crash_loop(healthy(machine), "replica #1 exited 5 times")
    assert t is not None and (t.state.phase, t.state.cause) == (Phase.DEGRADED, Cause.CRASH_LOOP)
    back = machine.stable_recovered(t.state)
    assert back is not None and back.state.phase is Phase.HEALTHY and back.state.cause is None
    assert machine.stable_crash_loop(at_step(machine, 1).state, "x") is None  # a rollout is on


# ----------------------------------------------------------------------------- pause / resume by hand


def test_pause_holds_a_timed_pause_and_drops_its_timer(machine: RolloutMachine) -> None:
    timed = at_step(machine, 1)  # step 2: pause 5s, timer running
    assert timed.state.paused_until == NOW + 5
    held = machine.pause(timed.state, "ann")
    s = held.state
    assert (s.phase, s.activity, s.paused_by, s.paused_until) == (Phase.PAUSED, Activity.IDLE, "ann", None)
    assert "paused by ann" in s.reason and held.effects == ()
    assert s.epoch == timed.state.epoch + 1 and s.step_index == 1
    # The old timer reporting late must not move the held rollout on.
    assert machine.resume(s, timed.then, NOW + 5) is None


def test_pause_stops_a_running_analysis(machine: RolloutMachine) -> None:
    running = at_step(machine, 2)
    assert running.state.phase is Phase.PROGRESSING and running.state.activity is Activity.ANALYSING
    held = machine.pause(running.state, "ann").state
    assert held.phase is Phase.PAUSED and held.analysis is None
    late = AnalysisView(2, Outcome.SUCCESSFUL, ())
    assert machine.analysis_finished(held, running.then, late, NOW) is None


def test_resume_runs_the_held_step_again(machine: RolloutMachine) -> None:
    held = machine.pause(at_step(machine, 1).state, "ann").state
    t = machine.unpause(held, NOW + 100)
    assert t.state.phase is Phase.PAUSED and t.state.activity is Activity.WAITING
    assert t.state.paused_by is None and t.state.step_index == 1
    assert t.state.paused_until == NOW + 105  # the whole duration again
    assert t.effects == (WaitPause(5),) and t.note.startswith("resumed (paused by ann)")
    analysis = machine.pause(at_step(machine, 2).state, "bob").state
    again = machine.unpause(analysis, NOW)
    assert again.state.activity is Activity.ANALYSING and again.effects == (RunAnalysis(("success-rate",)),)


def test_promote_moves_past_a_held_step(machine: RolloutMachine) -> None:
    held = machine.pause(at_step(machine, 1).state, "ann").state
    t = machine.promote(held, NOW)
    assert t.state.step_index == 2 and t.effects == (RunAnalysis(("success-rate",)),)
    assert t.state.paused_by is None


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (lambda m: healthy(m), "no rollout in progress"),
        (lambda m: at_step(m, 4).state, "already paused: step 5/5: paused until promoted"),
        (lambda m: m.pause(at_step(m, 1).state, "ann").state, "already paused by ann"),
        (lambda m: m.start(healthy(m), "1.1.0", VERSIONS, NOW).state, "busy deploying canary"),
    ],
)
def test_pause_is_refused_where_it_means_nothing(machine: RolloutMachine, where, message: str) -> None:
    with pytest.raises(Refused, match=message):
        machine.pause(where(machine), "ann")


def test_resume_is_refused_unless_paused_by_hand(machine: RolloutMachine) -> None:
    with pytest.raises(Refused, match="nothing was paused by hand"):
        machine.unpause(at_step(machine, 4).state, NOW)  # a pause step waits for promote, not resume
    held = machine.pause(at_step(machine, 1).state, "ann").state
    aborted = machine.abort(held, "aborted by ann").state
    assert aborted.paused_by is None
    with pytest.raises(Refused):
        machine.unpause(aborted, NOW)
