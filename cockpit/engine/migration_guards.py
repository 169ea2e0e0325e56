"""The guards of database migrations: pure functions over what was just observed - the
records the target database holds and the status the platform reports - never over what
the engine last did. Each returns why a step may not run now (one line naming the step,
the track and the version in the way), or ``None``.

Semantics (pgroll's and reshape's expand/contract):

* an **expand** step of release R runs before R is deployed; it must keep every older
  version working, so nothing on the platform stops it. Steps run in plan order.
* a **contract** step of R breaks what older versions need: refused while a rollout is in
  progress, while an expand step of a release <= R is not applied, or while any track runs
  a version < R.
* rolling back an **expand** of R breaks R: refused while any track runs a version >= R
  (or a rollout towards one is in progress). An irreversible step, or one with no down
  action, never rolls back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cockpit.engine.state import RolloutState
from cockpit.migrations.api import StepRecord, StepState
from cockpit.migrations.order import release_key
from cockpit.model import BackendStatus, TrackStatus
from cockpit.plan.migrations import Migration

Records = Mapping[str, StepRecord]

# Settled states from which ``up`` may run (a FAILED step without a transaction may have
# left part of it: its own SQL is expected to say IF NOT EXISTS, as the runner lets it run).
RUNNABLE = (StepState.PENDING, StepState.FAILED, StepState.ROLLED_BACK)


@dataclass(frozen=True, slots=True)
class Observed:
    """What the guards judge: read right before acting. ``status`` is ``None`` when the
    platform could not be read (``status_error`` says why): a guard that needs it refuses."""

    env: str
    records: Records
    rollout: RolloutState
    status: BackendStatus | None = None
    status_error: str | None = None


def state_of(step: Migration, records: Records) -> StepState:
    """The state the guards go by (:attr:`StepRecord.settled`): a run that failed or was
    interrupted inside a transaction left nothing, so it counts as before it started."""
    record = records.get(step.name)
    return StepState.PENDING if record is None else record.settled


def is_pending(step: Migration, records: Records) -> bool:
    """``up`` may run: never applied, failed, rolled back (nothing of it is left)."""
    return state_of(step, records) in RUNNABLE


def is_applied(step: Migration, records: Records) -> bool:
    return state_of(step, records) is StepState.APPLIED


def describe(step: Migration) -> str:
    """``contract 'drop-customer' of 1.1.0``."""
    return f"{step.phase} {step.name!r} of {step.release}"


def expand_due(steps: Sequence[Migration], records: Records, version: str) -> list[Migration]:
    """The expand steps a rollout to ``version`` must apply before deploying: release <=
    ``version``, not applied, in plan order."""
    key = release_key(version)
    return [
        s for s in steps if s.phase == "expand" and release_key(s.release) <= key and not is_applied(s, records)
    ]


def schema_refusal(steps: Sequence[Migration], records: Records, version: str) -> str | None:
    """Why ``version`` may never run again here: a contract step of a later release is
    applied, so the schema no longer has what ``version`` reads and writes (the contract
    is irreversible; a rollback to it would serve errors)."""
    key = release_key(version)
    done = [s for s in steps if s.phase == "contract" and release_key(s.release) > key and is_applied(s, records)]
    if not done:
        return None
    return (
        f"{describe(done[0])} is applied: the schema no longer has what {version} uses,"
        f" so {version} cannot run here again"
    )


def deploy_refusal(steps: Sequence[Migration], records: Records, version: str) -> str | None:
    """Why ``version`` may not be deployed: a contract of a later release removed what it
    uses, or an expand step it needs is not applied yet."""
    if gone := schema_refusal(steps, records, version):
        return gone
    missing = expand_due(steps, records, version)
    if not missing:
        return None
    first = missing[0]
    more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
    return (
        f"{describe(first)} is {state_of(first, records).value}{more}: {version} cannot be deployed before it"
    )


def _tracks(status: BackendStatus) -> list[tuple[str, TrackStatus]]:
    found = [("stable", status.stable), ("canary", status.canary)]
    return [(name, track) for name, track in found if track is not None and track.replicas_desired > 0]


def _replicas(track: TrackStatus) -> str:
    n = track.replicas_desired
    return f"{n} replica{'s' if n != 1 else ''}"


def _record_refusal(step: Migration, records: Records) -> str | None:
    """What the step's own record forbids for ``up``."""
    record = records.get(step.name)
    state = state_of(step, records)
    if state is StepState.APPLIED:
        return f"{describe(step)} is already applied"
    if state is StepState.RUNNING:
        by = f" by {record.by}" if record is not None and record.by else ""
        return f"{describe(step)} is running now{by}"
    if state is StepState.INTERRUPTED:
        return (
            f"{describe(step)} was interrupted outside a transaction: its effect is unknown;"
            f" check the database, then `cockpit migrate --resolve {step.name} applied|pending`"
        )
    return None


def up_refusal(step: Migration, steps: Sequence[Migration], seen: Observed) -> str | None:
    """Why ``up`` of ``step`` may not run now, or ``None``."""
    records = seen.records
    if why := _record_refusal(step, records):
        return why
    index = steps.index(step)
    earlier = next((s for s in steps[:index] if s.phase == step.phase and not is_applied(s, records)), None)
    if earlier is not None:
        return f"{describe(earlier)} comes first (plan order) and is {state_of(earlier, records).value}"
    if step.phase == "expand":
        return None
    return contract_refusal(step, steps, seen)


def contract_refusal(step: Migration, steps: Sequence[Migration], seen: Observed) -> str | None:
    """Why the contract ``step`` would break something now: a rollout in progress, an
    expand it depends on, or a process of an older version on any track."""
    records, rollout = seen.records, seen.rollout
    if rollout.in_rollout:
        return (
            f"a rollout of {rollout.target_version} is in progress on {seen.env} ({rollout.phase.value}):"
            f" {describe(step)} waits until it ends"
        )
    key = release_key(step.release)
    expand = next(
        (s for s in steps if s.phase == "expand" and release_key(s.release) <= key and not is_applied(s, records)),
        None,
    )
    if expand is not None:
        return f"{describe(expand)} is {state_of(expand, records).value}: {describe(step)} needs it first"
    if seen.status is None:
        return (
            f"{seen.env}'s platform cannot be read ({seen.status_error or 'no status yet'}):"
            f" {describe(step)} is refused until it is seen that no older version runs"
        )
    for track_name, track in _tracks(seen.status):
        if release_key(track.version) < key:
            return (
                f"{seen.env}'s {track_name} runs {track.version} ({_replicas(track)}):"
                f" {describe(step)} would break it"
            )
    return None


def last_applied(steps: Sequence[Migration], records: Records) -> Migration | None:
    """The step ``roll back last`` would undo: the applied one finished last (a stack)."""
    applied = [(i, s) for i, s in enumerate(steps) if is_applied(s, records)]
    if not applied:
        return None

    def order(item: tuple[int, Migration]) -> tuple[float, int]:
        record = records[item[1].name]
        return (record.finished_at or record.started_at, item[0])

    return max(applied, key=order)[1]


def down_refusal(step: Migration, seen: Observed) -> str | None:
    """Why ``down`` of ``step`` may not run now, or ``None``."""
    state = state_of(step, seen.records)
    if state is not StepState.APPLIED:
        return f"{describe(step)} is {state.value}, not applied: there is nothing to roll back"
    if step.irreversible:
        return f"{describe(step)} is irreversible: it cannot be rolled back"
    if step.down is None:
        return f"{describe(step)} has no down action: it cannot be rolled back"
    if step.phase == "contract":
        return None  # undoing a contract gives older versions back what they need
    key = release_key(step.release)
    rollout = seen.rollout
    if rollout.in_rollout and rollout.target_version and release_key(rollout.target_version) >= key:
        return (
            f"a rollout of {rollout.target_version} is in progress on {seen.env}:"
            f" rolling back {describe(step)} would break it"
        )
    if seen.status is None:
        return (
            f"{seen.env}'s platform cannot be read ({seen.status_error or 'no status yet'}):"
            f" rolling back {describe(step)} is refused until it is seen that no version needing it runs"
        )
    for track_name, track in _tracks(seen.status):
        if release_key(track.version) >= key:
            return (
                f"{seen.env}'s {track_name} runs {track.version} ({_replicas(track)}):"
                f" rolling back {describe(step)} would break it"
            )
    return None


@dataclass(frozen=True, slots=True)
class Choice:
    """What a key would do: the step, and why it may not now (``refused``), if so."""

    step: Migration | None
    refused: str | None


def next_up(steps: Sequence[Migration], seen: Observed, phase: str | None = None) -> Choice:
    """``run next``: the first pending step in plan order (of ``phase``, if given) whose
    guard allows it; when none does, the first pending step with its refusal."""
    candidates = [s for s in steps if (phase is None or s.phase == phase) and not is_applied(s, seen.records)]
    if not candidates:
        what = f"{phase} step" if phase else "step"
        return Choice(None, f"every {what} is applied on {seen.env}")
    first: Choice | None = None
    for step in candidates:
        why = up_refusal(step, steps, seen)
        if why is None:
            return Choice(step, None)
        first = first or Choice(step, why)
    return first or Choice(None, None)


def rollback_choice(steps: Sequence[Migration], seen: Observed) -> Choice:
    """``roll back last``: the last applied step, if its guard allows it."""
    step = last_applied(steps, seen.records)
    if step is None:
        return Choice(None, f"no step is applied on {seen.env}")
    return Choice(step, down_refusal(step, seen))
