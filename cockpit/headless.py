"""Run one rollout to its end without a screen (CI/CD), printing one line per transition.

Exit codes come from the rollout's typed cause and from a fresh look at the backend,
never from reason text, so CI only reads "safe" when it was observed to be:

* ``0`` promoted, verified: the backend shows the new version as stable at 100 %.
* ``3`` aborted by analysis (or an inconclusive analysis with no human to decide, or a
  failed smoke check: each a verdict on the release) AND a fresh status shows traffic
  back on stable (weight 0, no canary, stable healthy).
* ``4`` stopped at an indefinite pause (``pause = {}``): it waits for a promote and headless
  has no one to give it, so instead of waiting forever the rollout is aborted, and 4 only
  once traffic is observed back on stable. ``--auto-promote`` promotes such pauses at once;
  ``--pause-timeout D`` makes each one a timed pause of D.
* ``2`` usage or plan error, including a refused start.
* ``1`` anything else, with what is known printed: a failed abort, a Degraded end, a
  health-gate or crash-loop abort, a failing expand step (``migration-failed``: the
  release's database steps run first, so nothing was deployed), a journal failure, a
  timeout, or an outcome that the backend could not confirm.
* ``130`` interrupted (SIGINT/SIGTERM); the interruption is journaled with the state.

A closed stdout (a pipe whose reader went away) stops the printing, not the rollout.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from typing import TextIO

from cockpit.adapters.base import BackendConfigError, BackendError, VersionNotFound
from cockpit.engine.commands import Abort, Promote, StartRollout
from cockpit.engine.controller import EnvironmentController
from cockpit.engine.session import Session
from cockpit.engine.state import Activity, Cause, Outcome, Phase, RolloutState
from cockpit.model import BackendStatus
from cockpit.secrets import redact

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_ANALYSIS, EXIT_PAUSED, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
# Only these causes may end in 3 ("traffic on stable"), and only once that is observed.
ANALYSIS_CAUSES = (Cause.ANALYSIS_FAILED, Cause.INCONCLUSIVE_HEADLESS, Cause.SMOKE_FAILED)


class Printer:
    """Prints lines until the reader goes away (EPIPE); then prints nothing more."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.closed = False

    def __call__(self, line: str) -> None:
        if self.closed:
            return
        try:
            print(line, file=self.out, flush=True)
        except (BrokenPipeError, ValueError, OSError):  # ValueError: the file object was closed
            self.closed = True


def transition_printer(out: TextIO, started: float):
    say = Printer(out)

    def emit(env: str, note: str, state: RolloutState) -> None:
        canary = f" canary={state.canary_version}@{state.weight}%" if state.canary_version else ""
        say(
            f"{time.monotonic() - started:6.1f}s {env} {state.phase.value:<11} step {state.step_label:<5}"
            f" stable={state.stable_version}{canary} | {note}"
        )

    return emit


def _seen(status: BackendStatus | None, error: str | None) -> str:
    if status is None:
        return f"the backend cannot confirm it ({error})"
    track = status.stable
    stable = (
        f"stable {track.version} {track.replicas_ready}/{track.replicas_desired} ready"
        if track
        else "no stable"
    )
    canary = f", canary {status.canary.version} at {status.weight}%" if status.canary else ""
    return f"the backend shows {stable}{canary}"


async def verdict(controller: EnvironmentController, version: str) -> tuple[int, str]:
    """The exit code and its one line for a rollout that has ended, decided on the typed
    cause and a fresh status (never on what the engine last did)."""
    state = controller.state
    status: BackendStatus | None = None
    error: str | None = None
    try:
        status = await controller.backend.status()
    except BackendError as err:
        error = redact(str(err))
    env = controller.env.name
    if state.phase is Phase.HEALTHY and state.stable_version == version:
        observed = status.stable.version if status and status.stable else None
        if status and observed == version and status.canary is None and status.weight == 0:
            return EXIT_OK, f"promoted: {version} serves 100% of {env}"
        return EXIT_ERROR, f"error: {version} was promoted but is not verified: {_seen(status, error)}"
    cause = state.cause.value if state.cause else "unknown cause"
    if state.phase is Phase.ABORTED and state.cause in ANALYSIS_CAUSES:
        if _on_stable(state, status):
            return EXIT_ANALYSIS, f"aborted: {state.reason}"
        return (
            EXIT_ERROR,
            f"error: aborted ({cause}); traffic is not verified on stable: {_seen(status, error)}",
        )
    return EXIT_ERROR, f"{state.phase.value.lower()} ({cause}): {state.reason}; {_seen(status, error)}"


def _on_stable(state: RolloutState, status: BackendStatus | None) -> bool:
    """Observed: all traffic on a healthy stable of the version the engine holds stable."""
    return (
        status is not None
        and status.weight == 0
        and status.canary is None
        and status.stable is not None
        and status.stable.healthy
        and status.stable.version == state.stable_version
    )


async def pause_verdict(controller: EnvironmentController, pause: str) -> tuple[int, str]:
    """The exit code once a rollout stopped at an indefinite pause has been aborted:
    4 only when traffic is observed back on stable, 1 otherwise."""
    state = controller.state
    status: BackendStatus | None = None
    error: str | None = None
    try:
        status = await controller.backend.status()
    except BackendError as err:
        error = redact(str(err))
    if state.phase is Phase.ABORTED and _on_stable(state, status):
        return EXIT_PAUSED, f"paused: {pause}; traffic is back on stable {state.stable_version}"
    cause = state.cause.value if state.cause else "unknown cause"
    return EXIT_ERROR, (
        f"error: {pause}; the abort ended {state.phase.value} ({cause}), traffic is not verified on"
        f" stable: {_seen(status, error)}"
    )


def _pause_text(env: str, state: RolloutState) -> str:
    return (
        f"{env} stopped at step {state.step_label}, an indefinite pause that waits for a promote;"
        " headless has no one to promote (run with --auto-promote, or --pause-timeout DURATION)"
    )


def _ended(state: RolloutState, version: str) -> bool:
    if state.activity not in (Activity.IDLE, Activity.WAITING):
        return False
    if state.phase is Phase.HEALTHY:
        return state.stable_version == version
    return state.phase in (Phase.ABORTED, Phase.DEGRADED)


def _inconclusive(state: RolloutState) -> bool:
    """Paused on an inconclusive analysis: a human would decide; headless has none."""
    view = state.analysis
    return (
        state.phase is Phase.PAUSED
        and state.activity is Activity.IDLE
        and view is not None
        and view.step == state.step_index
        and view.outcome not in (Outcome.RUNNING, Outcome.SUCCESSFUL)
    )


async def run_rollout(
    session: Session,
    env: str,
    version: str,
    *,
    auto_promote: bool = False,
    pause_timeout: float | None = None,
    reason: str = "",
    timeout: float = 1800.0,
    out: TextIO = sys.stdout,
) -> int:
    """``pause_timeout``: each indefinite pause is waited out for that many seconds, then
    promoted, like a timed pause. Without it or ``auto_promote`` such a pause stops the run
    (exit 4): nobody can promote a headless rollout from elsewhere."""
    loop = asyncio.get_running_loop()
    interrupted = asyncio.Event()
    say = Printer(out)
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, interrupted.set)
    try:
        problems = await session.start(only=[env])
        if problems:
            problem = problems[0]
            print(f"error: cannot start {problem}", file=sys.stderr)
            usage = isinstance(problem.error, BackendConfigError | VersionNotFound)
            return EXIT_USAGE if usage else EXIT_ERROR
        controller = session.controller(env)
        result = await session.submit(env, StartRollout(version), reason)
        if not result.ok:
            print(f"error: rollout refused: {result.message}", file=sys.stderr)
            return EXIT_USAGE
        deadline = time.monotonic() + timeout
        promoted_at: tuple[int, int] | None = None
        paused_since: dict[tuple[int, int], float] = {}  # indefinite pauses met: since when
        stopped_at: str | None = None  # set once the run gave up at an indefinite pause
        while True:
            state = controller.state
            if _ended(state, version) or (stopped_at is not None and _ended(state, "")):
                code, line = (
                    await pause_verdict(controller, stopped_at)
                    if stopped_at is not None
                    else await verdict(controller, version)
                )
                say(line)
                return code
            if _inconclusive(state):
                # No human is here to decide: the safe choice is to send traffic back to stable.
                why = "analysis inconclusive; no human in headless mode"
                aborted = await session.submit(env, Abort(cause=Cause.INCONCLUSIVE_HEADLESS), why)
                if not aborted.ok and _inconclusive(controller.state):  # refused: nothing moved
                    say(f"error: the abort was refused: {aborted.message}")
                    return EXIT_ERROR
                continue  # the verdict above decides, on what is then observed
            waiting_for_human = state.phase is Phase.PAUSED and state.paused_until is None
            at = (state.epoch, state.step_index)
            if waiting_for_human and at != promoted_at and stopped_at is None:
                if not auto_promote and pause_timeout is None:
                    # Waiting would be forever: no one can promote this run from elsewhere.
                    stopped_at = _pause_text(env, state)
                    aborted = await session.submit(env, Abort(), stopped_at)
                    if not aborted.ok and controller.state.phase is Phase.PAUSED:
                        say(f"error: {stopped_at}; the abort was refused: {aborted.message}")
                        return EXIT_ERROR
                    continue  # the pause verdict above decides, on what is then observed
                if pause_timeout is not None and not auto_promote:
                    since = paused_since.get(at)
                    if since is None:
                        since = paused_since[at] = time.monotonic()
                        say(
                            f"paused at step {state.step_label}: promoting in {pause_timeout:g}s (--pause-timeout)"
                        )
                    due = time.monotonic() - since >= pause_timeout
                else:
                    due = True
                if due:
                    promoted_at = at
                    why = (
                        "auto-promote (headless)"
                        if auto_promote
                        else f"--pause-timeout {pause_timeout:g}s elapsed"
                    )
                    promoted = await session.submit(env, Promote(), reason or why)
                    if not promoted.ok and promoted.cause is not None:
                        # Refused on observation (health gate, journal): with no human to
                        # decide, an automatic step that may not go forward goes back.
                        await session.submit(env, Abort(cause=promoted.cause), promoted.message)
                    continue
            if interrupted.is_set():
                where = f"{env} left {state.phase.value} at step {state.step_label}"
                controller.record_interruption(f"SIGINT/SIGTERM in headless mode; {where}")
                print(f"interrupted: {where}", file=sys.stderr)
                return EXIT_INTERRUPTED
            if time.monotonic() > deadline:
                why = f"headless --timeout {timeout:g}s reached in {state.phase.value}"
                controller.record_timeout(why)
                if state.in_rollout:  # nobody will finish it: send traffic back to stable
                    await session.submit(env, Abort(cause=Cause.TIMEOUT), why)
                print(f"error: timed out after {timeout:g}s in {state.phase.value}", file=sys.stderr)
                return EXIT_ERROR
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(interrupted.wait(), 0.1)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        await session.close()
