"""The http backend with ``driver = "platform"`` against the deploy-API service: the platform
walks the steps; the backend reports its rollout (PlatformRollouts) and forwards commands."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio

from cockpit.adapters.base import BackendConfigError, Capability, CommandRefused, PlatformRollouts
from cockpit.adapters.http.platform import HttpPlatformBackend
from cockpit.engine.drivers import MirrorDriver, driver_class
from cockpit.model import Operation, PauseReason, PlatformRollout, RolloutPhase
from cockpit.plan.models import AnalysisStep, Pause, Step
from tests.deploy_api.fixtures import DeployApi, deploy_api_fixture, deploy_api_server_fixture  # noqa: F401
from tests.test_http_backend import make

pytestmark = pytest.mark.deploy_api

STEPS = [Step(set_weight=20), Step(pause=Pause()), Step(set_weight=50)]


@pytest_asyncio.fixture
async def platform(deploy_api: DeployApi, tmp_path: Path) -> AsyncIterator[HttpPlatformBackend]:
    backend = make(deploy_api, tmp_path, driver="platform")
    assert isinstance(backend, HttpPlatformBackend)
    try:
        await backend.start("1.0.0")
        await backend.use_strategy(STEPS, [])
        yield backend
    finally:
        await backend.close()


async def until(
    backend: HttpPlatformBackend, predicate: Callable[[PlatformRollout], bool], what: str, timeout: float = 8.0
) -> PlatformRollout:
    deadline = time.monotonic() + timeout
    while True:
        rollout = await backend.rollout_status()
        if predicate(rollout):
            return rollout
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached in {timeout}s; last: {rollout}")
        await asyncio.sleep(0.05)


def test_platform_driver_is_mirrored(deploy_api: DeployApi, tmp_path: Path) -> None:
    backend = make(deploy_api, tmp_path, driver="platform")
    assert isinstance(backend, PlatformRollouts) and Capability.DRIVES_STEPS in backend.capabilities
    assert driver_class(backend.capabilities) is MirrorDriver
    walked = make(deploy_api, tmp_path)
    assert not isinstance(walked, PlatformRollouts) and Capability.DRIVES_STEPS not in walked.capabilities


@pytest.mark.asyncio
async def test_status_mapping_through_a_walk(platform: HttpPlatformBackend, deploy_api: DeployApi) -> None:
    idle = await platform.rollout_status()
    assert (idle.phase, idle.stable_version, idle.canary_version, idle.aborted) == (RolloutPhase.HEALTHY, "1.0.0", None, False)
    assert idle.steps == ("set weight 20%", "pause", "set weight 50%")
    assert (await platform.rollout_status()).generation == idle.generation  # nothing changed

    answer = await platform.send("set-image", version="1.1.0")
    assert answer.startswith("set-image: POST /api/apps/") and answer.endswith("answered 202")
    paused = await until(platform, lambda r: r.phase is RolloutPhase.PAUSED, "paused at the pause step")
    assert (paused.pause, paused.step_index, paused.weight) == (PauseReason.STEP, 1, 20)
    assert (paused.canary_version, paused.target_version, paused.paused_by) == ("1.1.0", "1.1.0", None)
    assert paused.generation > idle.generation
    assert paused.steps == ("setWeight 20", "pause until promoted", "setWeight 50")  # the platform's own words

    await platform.send("promote")
    done = await until(platform, lambda r: r.phase is RolloutPhase.HEALTHY and r.canary_version is None, "promoted")
    assert (done.stable_version, done.weight, done.aborted) == ("1.1.0", 0, False)
    assert [(r.number, r.version) for r in done.revisions][-1][1] == "1.1.0"
    # The cockpit sent only the person's commands; the platform moved the traffic itself.
    sent = [(c["method"], c["path"].rsplit("/", 1)[-1]) for c in deploy_api.calls() if c["method"] != "GET"]
    assert sent == [("POST", "rollouts"), ("POST", "promote")]


@pytest.mark.asyncio
async def test_pause_resume_abort_retry(platform: HttpPlatformBackend) -> None:
    await platform.use_strategy([Step(set_weight=20), Step(pause=Pause(duration=30.0)), Step(set_weight=50)], [])
    await platform.send("set-image", version="1.1.0")
    timed = await until(platform, lambda r: r.phase is RolloutPhase.PAUSED, "in the timed pause")
    assert timed.pause is PauseReason.STEP and timed.paused_until is not None and timed.paused_until > time.time()

    await platform.send("pause", by="ann")
    held = await until(platform, lambda r: r.pause is PauseReason.USER, "paused by hand")
    assert (held.phase, held.paused_by) == (RolloutPhase.PAUSED, "ann")
    with pytest.raises(CommandRefused, match="already paused by ann"):
        await platform.send("pause", by="bob")
    await platform.send("resume")
    await until(platform, lambda r: r.pause is not PauseReason.USER, "resumed")

    await platform.send("abort")
    aborted = await until(platform, lambda r: r.aborted and r.canary_version is None, "aborted")
    assert (aborted.phase, aborted.weight, aborted.stable_version, aborted.failure) == (RolloutPhase.DEGRADED, 0, "1.0.0", "")

    await platform.send("retry")
    ready = lambda r: not r.aborted and r.canary_version == "1.1.0" and r.operation is Operation.NONE  # noqa: E731
    again = await until(platform, ready, "retried, canary ready")
    assert again.phase in (RolloutPhase.PROGRESSING, RolloutPhase.PAUSED)
    await platform.send("promote-full")
    done = await until(platform, lambda r: r.phase is RolloutPhase.HEALTHY and r.canary_version is None, "promoted")
    assert done.stable_version == "1.1.0"


@pytest.mark.asyncio
async def test_undo_rolls_back_to_a_kept_revision(platform: HttpPlatformBackend) -> None:
    await platform.send("set-image", version="1.1.0")
    await until(platform, lambda r: r.phase is RolloutPhase.PAUSED, "paused")
    await platform.send("promote-full")
    done = await until(platform, lambda r: r.phase is RolloutPhase.HEALTHY and r.stable_version == "1.1.0", "promoted")
    first = next(r for r in done.revisions if r.version == "1.0.0")
    await platform.send("undo", revision=first.number)
    back = await until(platform, lambda r: r.stable_version == "1.0.0", "rolled back")
    assert back.revisions[-1].version == "1.0.0" and back.revisions[-1].number > first.number
    with pytest.raises(CommandRefused, match="revision 99 is not among"):
        await platform.send("undo", revision=99)


@pytest.mark.asyncio
async def test_refusals(platform: HttpPlatformBackend, deploy_api: DeployApi, tmp_path: Path) -> None:
    with pytest.raises(CommandRefused, match="no rollout"):
        await platform.send("promote")  # the platform's own words, nothing changed
    with pytest.raises(CommandRefused, match="unknown version"):
        await platform.send("set-image", version="9.9.9")
    with pytest.raises(BackendConfigError, match="runs no analysis"):
        await platform.use_strategy([Step(analysis=AnalysisStep(checks=["errors"]))], [])
    options = make(deploy_api, tmp_path, driver="platform").options
    trimmed = options.model_copy(update={"commands": {k: v for k, v in options.commands.items() if k != "retry"}})
    bare = HttpPlatformBackend(platform.ctx, trimmed)
    with pytest.raises(CommandRefused, match="maps no request for the 'retry' command"):
        await bare.send("retry")
    await bare.close()
    assert (await platform.rollout_status()).phase is RolloutPhase.HEALTHY


@pytest.mark.asyncio
async def test_unknown_phase_word_is_an_error(platform: HttpPlatformBackend, deploy_api: DeployApi, tmp_path: Path) -> None:
    options = platform.options
    assert options.rollout is not None
    rollout = options.rollout.model_copy(update={"phases": {"Healthy": "Healthy"}})
    strict = HttpPlatformBackend(platform.ctx, options.model_copy(update={"rollout": rollout}))
    await platform.send("set-image", version="1.1.0")
    await until(platform, lambda r: r.phase is RolloutPhase.PAUSED, "paused")
    with pytest.raises(Exception, match=r"rollout phase .* is 'Paused', which the plan's rollout.phases does not list"):
        await strict.rollout_status()
    await strict.close()
