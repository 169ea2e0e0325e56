"""Run one rollout to its end without a screen (CI/CD), printing one line per transition.

Exit codes: 0 promoted to 100 %, 3 aborted by analysis (or inconclusive with no
human to decide), 2 usage or plan error (including a refused start), 1 anything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from typing import TextIO

from cockpit.adapters.base import BackendConfigError, VersionNotFound
from cockpit.engine.session import Session
from cockpit.engine.state import Activity, Phase, RolloutState

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_ANALYSIS = 0, 1, 2, 3


def transition_printer(out: TextIO, started: float):
    def emit(env: str, note: str, state: RolloutState) -> None:
        canary = f" canary={state.canary_version}@{state.weight}%" if state.canary_version else ""
        print(
            f"{time.monotonic() - started:6.1f}s {env} {state.phase.value:<11} step {state.step_label:<5}"
            f" stable={state.stable_version}{canary} | {note}",
            file=out,
            flush=True,
        )

    return emit


async def run_rollout(
    session: Session,
    env: str,
    version: str,
    *,
    auto_promote: bool = False,
    reason: str = "",
    timeout: float = 1800.0,
    out: TextIO = sys.stdout,
) -> int:
    loop = asyncio.get_running_loop()
    interrupted = asyncio.Event()
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
        result = await session.start_rollout(env, version, reason)
        if not result.ok:
            print(f"error: rollout refused: {result.message}", file=sys.stderr)
            return EXIT_USAGE
        deadline = time.monotonic() + timeout
        promoted_at: tuple[int, int] | None = None
        while True:
            state = controller.state
            busy = state.activity not in (Activity.IDLE, Activity.WAITING)
            if state.phase is Phase.HEALTHY and state.stable_version == version and not busy:
                print(f"promoted: {version} serves 100% of {env}", file=out, flush=True)
                return EXIT_OK
            if state.phase is Phase.ABORTED and not busy:
                print(f"aborted: {state.reason}", file=out, flush=True)
                return EXIT_ANALYSIS if state.reason.startswith("analysis failed") else EXIT_ERROR
            if state.phase is Phase.DEGRADED:
                print(f"degraded: {state.reason}", file=out, flush=True)
                return EXIT_ERROR
            if (
                state.phase is Phase.PAUSED
                and state.activity is Activity.IDLE
                and state.reason.startswith("analysis inconclusive")
            ):
                # No human is here to decide: the safe choice is to send traffic back to stable.
                await session.abort(env, reason="analysis inconclusive; no human in headless mode")
                await _wait_idle(controller)
                print(f"aborted: {controller.state.reason}", file=out, flush=True)
                return EXIT_ANALYSIS
            waiting_for_human = state.phase is Phase.PAUSED and state.paused_until is None
            if waiting_for_human and (state.epoch, state.step_index) != promoted_at:
                if auto_promote:
                    promoted_at = (state.epoch, state.step_index)
                    await session.promote(env, reason=reason or "auto-promote (headless)")
                    continue
                if promoted_at != (-1, state.step_index):
                    promoted_at = (-1, state.step_index)
                    print(
                        "paused until promoted: run with --auto-promote, or promote from the cockpit",
                        file=out,
                        flush=True,
                    )
            if interrupted.is_set():
                print(
                    f"interrupted: {env} left {state.phase.value} at step {state.step_label}", file=sys.stderr
                )
                return 130
            if time.monotonic() > deadline:
                print(f"error: timed out after {timeout:g}s in {state.phase.value}", file=sys.stderr)
                return EXIT_ERROR
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(interrupted.wait(), 0.1)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        await session.close()


async def _wait_idle(controller, limit: float = 60.0) -> None:
    end = time.monotonic() + limit
    while controller.state.activity is not Activity.IDLE and time.monotonic() < end:
        await asyncio.sleep(0.1)
