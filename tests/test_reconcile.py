"""The pure reconcile step (journal snapshot + observed status -> state, notes), like the
machine's tests: no I/O. Also the pieces split out of the controller with it: backoff,
and the driver chosen by the backend's capability."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from cockpit.adapters.base import BackendStatus, Capability, TrackStatus
from cockpit.engine.drivers import MachineDriver, MirrorDriver, driver_class
from cockpit.engine.machine import RolloutMachine
from cockpit.engine.polling import backoff
from cockpit.engine.reconcile import reconcile
from cockpit.engine.state import Cause, Phase, Revision, RolloutState
from cockpit.plan.models import Pause, Step


@dataclass
class Snap:
    phase: str | None
    target_version: str | None
    step: int | None = 1
    reason: str = ""
    detail: str = ""


def fresh() -> RolloutState:
    machine = RolloutMachine([Step(set_weight=20), Step(pause=Pause())])
    return machine.initial("production", "1.0.0", [Revision(1, "1.0.0", 1.0, "ann")])


def status(stable: str = "1.0.0", canary: str | None = None, weight: int = 0) -> BackendStatus:
    return BackendStatus(
        stable=TrackStatus(stable, 2, 2),
        canary=TrackStatus(canary, 2, 2) if canary else None,
        weight=weight,
    )


def test_nothing_recorded_and_nothing_different_changes_nothing() -> None:
    assert reconcile(fresh(), None, status()) == (fresh(), [])
    assert reconcile(fresh(), Snap("Healthy", "1.1.0"), status()) == (fresh(), [])
    assert reconcile(fresh(), None, None) == (fresh(), [])


def test_the_backend_stable_wins_over_the_journal() -> None:
    state, notes = reconcile(fresh(), None, status(stable="1.1.0"))
    assert state.stable_version == "1.1.0" and state.reason == "stable 1.1.0 (as found on the backend)"
    assert notes == ["the backend runs 1.1.0 as stable; the journal said 1.0.0"]


@pytest.mark.parametrize("was", ["Progressing", "Paused"])
def test_a_rollout_cut_off_without_a_canary_is_interrupted(was: str) -> None:
    state, notes = reconcile(fresh(), Snap(was, "1.1.0", step=1), status())
    assert (state.phase, state.cause, state.target_version, state.step_index) == (
        Phase.ABORTED,
        Cause.INTERRUPTED,
        "1.1.0",
        1,
    )
    assert "stopped during the rollout of 1.1.0 (step 2)" in state.reason
    assert notes == [state.reason + " (cause interrupted)"]


def test_a_canary_that_outlived_the_cockpit_is_held_for_a_person() -> None:
    state, notes = reconcile(fresh(), Snap("Progressing", "1.1.0", step=0), status(canary="1.1.0", weight=20))
    assert (state.phase, state.canary_version, state.weight, state.cause) == (Phase.PAUSED, "1.1.0", 20, None)
    assert state.reason.startswith("resumed after restart: canary 1.1.0 at 20%")
    assert notes == [state.reason]


def test_an_ended_rollout_keeps_its_phase_and_a_degraded_one_comes_back_aborted() -> None:
    aborted, _ = reconcile(fresh(), Snap("Aborted", "1.1.0", detail="aborted by ann: looks off"), status())
    assert (aborted.phase, aborted.reason) == (Phase.ABORTED, "aborted by ann: looks off")
    degraded, _ = reconcile(fresh(), Snap("Degraded", "1.1.0"), status())
    assert (degraded.phase, degraded.reason) == (Phase.ABORTED, "Degraded before restart")


def test_backoff_doubles_up_to_thirty_seconds() -> None:
    assert [backoff(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 30, 30, 30]


def test_the_driver_is_chosen_by_the_drives_steps_capability() -> None:
    assert driver_class({Capability.SET_WEIGHT}) is MachineDriver
    assert driver_class({Capability.DRIVES_STEPS, Capability.SET_WEIGHT}, "argo") is MirrorDriver
