"""The migration guards as pure functions: records and an observed status in, a refusal
naming the step, the track and the version out (or none)."""

from __future__ import annotations

import pytest

from cockpit.engine import migration_guards as g
from cockpit.engine.state import Phase, RolloutState
from cockpit.migrations.api import StepRecord, StepState
from cockpit.model import BackendStatus, TrackStatus
from cockpit.plan.migrations import Migration, MigrationAction


def step(name: str, release: str, phase: str, *, down: bool = True, irreversible: bool = False, tx: bool = True):
    return Migration(
        name=name,
        release=release,
        phase=phase,  # type: ignore[arg-type]
        up=MigrationAction(sql="select 1"),
        down=MigrationAction(sql="select 2") if down and not irreversible else None,
        irreversible=irreversible,
        transaction=tx,
    )


EXPAND = step("orders-full-name", "1.1.0", "expand")
EXPAND2 = step("orders-index", "1.1.0", "expand")
CONTRACT = step("drop-customer", "1.1.0", "contract", irreversible=True)
LATER = step("add-notes", "1.10.0", "expand")
STEPS = [EXPAND, EXPAND2, CONTRACT, LATER]


def rec(name: str, state: StepState, at: float = 1.0, by: str = "", tx: bool = True) -> StepRecord:
    return StepRecord(name, "expand", "1.1.0", state, "c", at, at + 0.5, by=by, transaction=tx)


def status(stable: str | None, canary: str | None = None, replicas: int = 2) -> BackendStatus:
    track = lambda v: TrackStatus(v, replicas, replicas) if v else None  # noqa: E731
    return BackendStatus(track(stable), track(canary), 0)


def healthy(stable: str = "1.0.0") -> RolloutState:
    return RolloutState(env="production", phase=Phase.HEALTHY, stable_version=stable, steps_total=1)


def seen(records: dict, st: BackendStatus | None, rollout: RolloutState | None = None, error: str | None = None):
    return g.Observed("production", records, rollout or healthy(), st, error)


APPLIED_EXPANDS = {"orders-full-name": rec("orders-full-name", StepState.APPLIED), "orders-index": rec("orders-index", StepState.APPLIED, 2.0)}


def test_expand_due_follows_release_order_and_records() -> None:
    assert g.expand_due(STEPS, {}, "1.1.0") == [EXPAND, EXPAND2]
    # 1.10.0 > 1.9.0 > 1.1.0: natural order, not text order
    assert g.expand_due(STEPS, {}, "1.9.0") == [EXPAND, EXPAND2]
    assert g.expand_due(STEPS, {}, "1.10.0") == [EXPAND, EXPAND2, LATER]
    assert g.expand_due(STEPS, {}, "1.0.0") == []
    assert g.expand_due(STEPS, APPLIED_EXPANDS, "1.1.0") == []
    failed = {"orders-full-name": rec("orders-full-name", StepState.FAILED, tx=False)}
    assert g.deploy_refusal(STEPS, failed, "1.1.0") == (
        "expand 'orders-full-name' of 1.1.0 is failed (and 1 more): 1.1.0 cannot be deployed before it"
    )
    # A failed run inside a transaction left nothing: pending again.
    rolled = {"orders-full-name": rec("orders-full-name", StepState.FAILED)}
    assert g.deploy_refusal(STEPS, rolled, "1.1.0") == (
        "expand 'orders-full-name' of 1.1.0 is pending (and 1 more): 1.1.0 cannot be deployed before it"
    )
    assert g.deploy_refusal(STEPS, APPLIED_EXPANDS, "1.1.0") is None


def test_contract_refused_while_an_older_version_runs_names_track_version_and_replicas() -> None:
    why = g.up_refusal(CONTRACT, STEPS, seen(APPLIED_EXPANDS, status("1.0.0")))
    assert why == "production's stable runs 1.0.0 (2 replicas): contract 'drop-customer' of 1.1.0 would break it"
    why = g.up_refusal(CONTRACT, STEPS, seen(APPLIED_EXPANDS, status("1.1.0", "1.0.0", 1)))
    assert why == "production's canary runs 1.0.0 (1 replica): contract 'drop-customer' of 1.1.0 would break it"
    assert g.up_refusal(CONTRACT, STEPS, seen(APPLIED_EXPANDS, status("1.1.0"))) is None
    assert g.up_refusal(CONTRACT, STEPS, seen(APPLIED_EXPANDS, status("1.10.0"))) is None


def test_contract_refused_before_its_expand_during_a_rollout_and_without_a_status() -> None:
    why = g.up_refusal(CONTRACT, STEPS, seen({}, status("1.1.0")))
    assert why == "expand 'orders-full-name' of 1.1.0 is pending: contract 'drop-customer' of 1.1.0 needs it first"
    rolling = RolloutState("production", Phase.PAUSED, "1.1.0", 2, target_version="1.2.0")
    why = g.up_refusal(CONTRACT, STEPS, seen(APPLIED_EXPANDS, status("1.1.0"), rolling))
    assert why is not None and why.startswith("a rollout of 1.2.0 is in progress on production (Paused)")
    why = g.up_refusal(CONTRACT, STEPS, seen(APPLIED_EXPANDS, None, error="connection refused"))
    assert why is not None and why.startswith("production's platform cannot be read (connection refused)")


def test_steps_run_in_plan_order_and_records_decide() -> None:
    why = g.up_refusal(EXPAND2, STEPS, seen({}, None))
    assert why == "expand 'orders-full-name' of 1.1.0 comes first (plan order) and is pending"
    assert g.up_refusal(EXPAND, STEPS, seen({}, None)) is None  # expand needs no status
    applied = {"orders-full-name": rec("orders-full-name", StepState.APPLIED)}
    assert g.up_refusal(EXPAND, STEPS, seen(applied, None)) == "expand 'orders-full-name' of 1.1.0 is already applied"
    running = {"orders-full-name": rec("orders-full-name", StepState.RUNNING, by="bob@ci")}
    assert g.up_refusal(EXPAND, STEPS, seen(running, None)) == "expand 'orders-full-name' of 1.1.0 is running now by bob@ci"
    # Interrupted inside a transaction: nothing of it stayed, it runs again.
    interrupted = {"orders-full-name": rec("orders-full-name", StepState.INTERRUPTED)}
    assert g.up_refusal(EXPAND, STEPS, seen(interrupted, None)) is None
    loose = step("concurrent-index", "1.1.0", "expand", tx=False)
    why = g.up_refusal(loose, [loose], seen({"concurrent-index": rec("concurrent-index", StepState.INTERRUPTED, tx=False)}, None))
    assert why is not None and "--resolve concurrent-index applied|pending" in why


def test_run_next_picks_the_first_allowed_step_or_says_why_not() -> None:
    choice = g.next_up(STEPS, seen({}, status("1.0.0")))
    assert choice == g.Choice(EXPAND, None)
    # Contract refused (1.0.0 still runs), but a later release's expand may go ahead.
    choice = g.next_up(STEPS, seen(APPLIED_EXPANDS, status("1.0.0")))
    assert choice == g.Choice(LATER, None)
    every = {**APPLIED_EXPANDS, "add-notes": rec("add-notes", StepState.APPLIED, 3.0)}
    choice = g.next_up(STEPS, seen(every, status("1.0.0")))
    assert choice.step == CONTRACT and choice.refused is not None and "stable runs 1.0.0" in choice.refused
    assert g.next_up(STEPS, seen(every, status("1.0.0")), phase="expand").refused == "every expand step is applied on production"


def test_roll_back_last_is_stack_order_and_guarded() -> None:
    # orders-index finished last: it is the one rolled back first.
    choice = g.rollback_choice(STEPS, seen(APPLIED_EXPANDS, status("1.0.0")))
    assert choice == g.Choice(EXPAND2, None)
    choice = g.rollback_choice(STEPS, seen(APPLIED_EXPANDS, status("1.0.0", "1.1.0")))
    assert choice.step == EXPAND2
    assert choice.refused == "production's canary runs 1.1.0 (2 replicas): rolling back expand 'orders-index' of 1.1.0 would break it"
    contracted = {**APPLIED_EXPANDS, "drop-customer": rec("drop-customer", StepState.APPLIED, 5.0)}
    choice = g.rollback_choice(STEPS, seen(contracted, status("1.1.0")))
    assert choice.step == CONTRACT
    assert choice.refused == "contract 'drop-customer' of 1.1.0 is irreversible: it cannot be rolled back"
    no_down = step("orders-full-name", "1.1.0", "expand", down=False)
    why = g.down_refusal(no_down, seen(APPLIED_EXPANDS, status("1.0.0")))
    assert why == "expand 'orders-full-name' of 1.1.0 has no down action: it cannot be rolled back"
    assert g.rollback_choice(STEPS, seen({}, status("1.0.0"))).refused == "no step is applied on production"


def test_the_machine_runs_expand_first_and_stops_with_nothing_deployed() -> None:
    from cockpit.engine.machine import DeployCanary, Refused, RolloutMachine, RunExpand
    from cockpit.engine.state import Activity, Cause
    from cockpit.plan.models import Step

    m = RolloutMachine([Step(set_weight=50)])
    start = m.start(healthy(), "1.1.0", ["1.0.0", "1.1.0"], 0.0, migrate=True)
    assert start.effects == (RunExpand("1.1.0"),) and start.state.activity is Activity.MIGRATING
    assert start.then is not None and start.then.what == "expanded"
    # No abort while a schema step runs (it ends by itself; a failure stops the rollout).
    with pytest.raises(Refused, match="running expand steps"):
        m.abort(start.state, "no")
    shown = m.expand_progress(start.state, start.then, "expand 1/2: orders-full-name")
    assert shown.reason == "expand 1/2: orders-full-name"
    deploy = m.resume(shown, start.then, 1.0)
    assert deploy is not None and deploy.effects == (DeployCanary("1.1.0"),)
    failed = m.expand_failed(shown, start.then, "expand 'orders-audit' of 1.1.0 failed after 0.01s: boom")
    assert failed is not None and failed.effects == ()
    assert failed.state.cause is Cause.MIGRATION_FAILED and failed.state.canary_version is None
    assert failed.state.epoch == start.state.epoch + 1  # a late report of the old run is dropped
    assert m.expand_failed(failed.state, start.then, "late") is None
    retry = m.retry(failed.state, ["1.0.0", "1.1.0"], 2.0, migrate=True)
    assert retry.effects == (RunExpand("1.1.0"),)
    # Without a database, the rollout deploys at once, as before.
    assert m.start(healthy(), "1.1.0", [], 0.0).effects == (DeployCanary("1.1.0"),)
