"""Make a freshly started engine agree with the journal and with what the backend runs.

Pure, like the machine: it takes the state built from the plan and the retained
revisions, the journal's last snapshot of the environment and the backend's status
(if it could be read), and returns the state to resume from plus the notes to journal
(one ``reconcile`` record each). What the backend runs wins over what was recorded.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from cockpit.engine.state import Cause, Phase, RolloutState
from cockpit.model import BackendStatus


class Snapshot(Protocol):
    """What the journal last recorded about the environment (a journal ``Record``)."""

    @property
    def phase(self) -> str | None: ...
    @property
    def target_version(self) -> str | None: ...
    @property
    def step(self) -> int | None: ...
    @property
    def reason(self) -> str: ...
    @property
    def detail(self) -> str: ...


def reconcile(
    state: RolloutState, snapshot: Snapshot | None, status: BackendStatus | None
) -> tuple[RolloutState, list[str]]:
    notes: list[str] = []
    if status and status.stable and status.stable.version != state.stable_version:
        notes.append(
            f"the backend runs {status.stable.version} as stable; the journal said {state.stable_version}"
        )
        state = replace(
            state,
            stable_version=status.stable.version,
            reason=f"stable {status.stable.version} (as found on the backend)",
        )
    if snapshot is None or snapshot.phase in (None, Phase.HEALTHY.value) or snapshot.target_version is None:
        return state, notes
    was = Phase(snapshot.phase)
    step = snapshot.step or 0
    if status and status.canary is not None:
        # The canary outlived the cockpit (an attached backend): hold it for a person.
        state = replace(
            state,
            phase=Phase.PAUSED,
            canary_version=status.canary.version,
            target_version=snapshot.target_version,
            weight=status.weight,
            step_index=step,
            reason=(
                f"resumed after restart: canary {status.canary.version} at {status.weight}%;"
                " promote (p) to go on or abort (a)"
            ),
        )
    elif was in (Phase.PROGRESSING, Phase.PAUSED):
        # Cut off by a kill or a signal: say so with its cause, in the state and the journal.
        state = replace(
            state,
            phase=Phase.ABORTED,
            target_version=snapshot.target_version,
            step_index=step,
            cause=Cause.INTERRUPTED,
            reason=(
                f"interrupted: the cockpit stopped during the rollout of {snapshot.target_version}"
                f" (step {step + 1}); the canary is gone, traffic is on stable"
                f" {state.stable_version}; R retries"
            ),
        )
    else:
        state = replace(
            state,
            # A Degraded end comes back as Aborted: the canary did not survive the restart.
            phase=Phase.ABORTED if was is Phase.DEGRADED else was,
            target_version=snapshot.target_version,
            reason=snapshot.detail or snapshot.reason or f"{was.value} before restart",
        )
    cause = f" (cause {state.cause})" if state.cause else ""
    notes.append(state.reason + cause)
    return state, notes
