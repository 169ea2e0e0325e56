"""The docker backend against a real Docker daemon: what the contract does not cover -
death seen through the events stream, restarts and crash loops, HEALTHCHECK, logs of
both tracks across restarts, rollback by image id, the kept previous colour, replica
ratios, recovery after a crash, adoption, release task containers, the label filter."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import docker
import docker.errors
import pytest
import pytest_asyncio

from cockpit.adapters.base import BackendError, HealthCheckFailed, VersionNotFound
from cockpit.adapters.docker.backend import DockerBackend
from cockpit.adapters.docker.images import ImageNotPresent, retention_tag
from cockpit.adapters.docker.tasks import TaskFailed
from cockpit.engine.reconcile import reconcile
from cockpit.engine.state import Phase
from cockpit.model import LogLine, Track
from tests.docker_backend_fixtures import (  # noqa: F401 - fixtures
    REPO,
    VERSIONS,
    build,
    containers_of,
    docker_client_fixture,
    docker_url_fixture,
    kill_main_process,
    make_docker_backend,
    new_service,
    test_images_fixture,
)

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("test_images")]
ROOT = Path(__file__).resolve().parent.parent


class Env:
    """A backend under test, its log lines, and the daemon's view of its containers."""

    def __init__(self, run_dir: Path, client: docker.DockerClient, service: str) -> None:
        self.run_dir, self.client, self.service = run_dir, client, service
        self.lines: list[LogLine] = []
        self.backends: list[DockerBackend] = []

    def backend(self, **options: object) -> DockerBackend:
        backend = make_docker_backend(self.run_dir, self.service, **options)
        backend.attach_log_sink(self.lines.extend)
        self.backends.append(backend)
        return backend

    def running(self, track: str | None = None) -> list[object]:
        found = [c for c in containers_of(self.client, self.service) if c.status == "running"]  # type: ignore[attr-defined]
        return [c for c in found if track is None or f".{track}." in c.name]  # type: ignore[attr-defined]

    def texts(self, source_part: str = "") -> list[str]:
        return [line.text for line in self.lines if source_part in line.source]


@pytest_asyncio.fixture
async def env(tmp_path: Path, docker_client: docker.DockerClient) -> AsyncIterator[Env]:
    e = Env(tmp_path, docker_client, new_service())
    yield e
    for backend in e.backends:
        await backend.close()
    for c in containers_of(docker_client, e.service):
        c.remove(force=True)  # type: ignore[attr-defined]


async def until(predicate: object, timeout: float = 10.0, what: str = "condition") -> float:
    """Seconds it took for ``predicate()`` (sync or async) to hold."""
    assert callable(predicate)
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return time.monotonic() - start
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def routed(backend: DockerBackend) -> int:
    """Upstreams in the router's table now (stable and canary)."""
    assert backend._control is not None
    state = await backend._control.state()
    return sum(len(entries) for entries in state["tracks"].values())


async def routes(backend: DockerBackend, count: int) -> bool:
    return await routed(backend) == count


async def versions_served(url: str, n: int) -> dict[str, int]:
    seen: dict[str, int] = {}
    async with aiohttp.ClientSession() as session:
        for _ in range(n):
            async with session.get(url + "/version") as resp:
                assert resp.status == 200
                version = (await resp.text()).strip()
                seen[version] = seen.get(version, 0) + 1
    return seen


# --------------------------------------------------------------------------- death and health


@pytest.mark.asyncio
async def test_a_dead_container_leaves_the_table_through_the_events_stream(env: Env) -> None:
    # Probes every 60 s and a resync every 5 s: only the events stream can see it in time.
    backend = env.backend(replicas=2, health_interval=60.0, restart={"policy": "never"})
    await backend.start("1.0.0")
    victim = env.running("stable")[0]
    kill_main_process(env.client, victim.id)  # type: ignore[attr-defined]

    async def one_ready() -> bool:
        s = await backend.status()
        return s.stable is not None and s.stable.replicas_ready == 1

    took = await until(one_ready, 3.0, "the dead container to leave the table")
    assert took < 2.0
    assert await until(lambda: routes(backend, 1), 2.0, "the router's table without it") < 2.0
    status = await backend.status()
    assert status.stable is not None and "exited with code 137" in status.stable.problem  # from the die event

    async def said_why() -> bool:
        s = await backend.status()
        return s.stable is not None and "not restarted (restart policy 'never')" in s.stable.problem

    await until(said_why, 3.0, "the restart policy in the problem")
    status = await backend.status()
    assert status.stable is not None
    assert not status.stable.healthy and not status.stable.crash_loop
    assert await versions_served(status.url or "", 10) == {"1.0.0": 10}  # the other one serves all


@pytest.mark.asyncio
async def test_a_crashed_container_restarted_by_docker_comes_back_and_counts(env: Env) -> None:
    backend = env.backend(health_interval=60.0)
    await backend.start("1.0.0")
    victim = env.running("stable")[0]
    kill_main_process(env.client, victim.id)  # type: ignore[attr-defined]

    async def back() -> bool:
        s = await backend.status()
        return s.stable is not None and s.stable.restarts == 1 and s.stable.healthy

    await until(back, 10.0, "the restarted container to be healthy again")
    status = await backend.status()
    assert status.stable is not None and status.stable.problem == ""
    assert any("restarted by Docker" in t for t in env.texts("docker"))
    assert await versions_served(status.url or "", 3) == {"1.0.0": 3}


@pytest.mark.asyncio
async def test_a_container_that_keeps_dying_is_a_crash_loop(env: Env) -> None:
    backend = env.backend(restart={"policy": "on-failure", "max_restarts": 1}, health_interval=0.2)
    await backend.start("1.0.0")
    await backend.deploy_canary("flaky")  # healthy for 1.5 s, then exit 1, again and again

    async def crash_loop() -> bool:
        s = await backend.status()
        return s.canary is not None and s.canary.crash_loop

    await until(crash_loop, 20.0, "the crash loop")
    status = await backend.status()
    assert status.canary is not None and not status.canary.healthy
    assert "crash loop" in status.canary.problem and "gave up after 1 restarts" in status.canary.problem
    assert status.stable is not None and status.stable.healthy


@pytest.mark.asyncio
async def test_a_container_stopped_by_hand_is_not_a_crash_loop(env: Env) -> None:
    backend = env.backend(replicas=2, health_interval=60.0)
    await backend.start("1.0.0")
    env.running("stable")[0].stop(timeout=1)  # type: ignore[attr-defined]

    async def said() -> bool:
        s = await backend.status()
        return s.stable is not None and "stopped outside the cockpit" in s.stable.problem

    await until(said, 5.0, "the stop to be reported")
    status = await backend.status()
    assert status.stable is not None and not status.stable.crash_loop and status.stable.replicas_ready == 1


@pytest.mark.asyncio
async def test_a_container_that_exits_fails_the_deploy_with_its_last_lines(env: Env) -> None:
    backend = env.backend()
    await backend.start("1.0.0")
    with pytest.raises(HealthCheckFailed) as caught:
        await backend.deploy_canary("crash")
    message = str(caught.value)
    assert "exited with code 3" in message and "boom: cannot open the database" in message
    status = await backend.status()
    assert status.canary is None and status.weight == 0
    assert len(env.running()) == 1 and not env.running("canary")
    assert not [c for c in containers_of(env.client, env.service) if ".canary." in c.name]  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_a_container_never_healthy_fails_the_deploy_in_time(env: Env) -> None:
    backend = env.backend(health_timeout=1.5)
    await backend.start("1.0.0")
    start = time.monotonic()
    with pytest.raises(HealthCheckFailed) as caught:
        await backend.deploy_canary("sick")
    assert time.monotonic() - start < 6.0
    assert "did not become healthy within 1.5s" in str(caught.value)
    assert "last check: HTTP 404" in str(caught.value)
    assert "last log lines: " in str(caught.value) and "response:404" in str(caught.value)
    assert (await backend.status()).canary is None


@pytest.mark.asyncio
async def test_replicas_failing_their_checks_together_leave_no_unread_failure(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replicas whose checks fail in the same instant: the deploy raises one failure, reads
    the others (unread, asyncio reports "Task exception was never retrieved") and removes
    them all. Three, so that whatever order the finished checks come in, reading only the
    one raised leaves another unread (asyncio.wait reads just the one that woke it)."""
    backend = env.backend(replicas=3)
    await backend.start("1.0.0")
    unhandled: list[str] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, context: unhandled.append(context["message"]))

    async def refused(box: object, deadline: float) -> None:
        raise HealthCheckFailed(f"{box.name} refused")  # type: ignore[attr-defined]

    monkeypatch.setattr(backend, "_wait_healthy", refused)
    with pytest.raises(HealthCheckFailed, match=r"canary.*refused"):
        await backend.deploy_canary("1.1.0")
    gc.collect()  # an unread task failure is reported when the task is collected
    assert unhandled == []
    assert not [c for c in containers_of(env.client, env.service) if ".canary." in c.name]  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_healthcheck_of_the_image_decides(env: Env) -> None:
    backend = env.backend(image="cockpit-test-bb-hc", versions=["1.0.0", "1.1.0", "sick"], replicas=2, health_interval=60.0, health_timeout=4.0)
    await backend.start("1.0.0")
    with pytest.raises(HealthCheckFailed, match="HEALTHCHECK"):
        await backend.deploy_canary("sick")
    victim = env.running("stable")[0]
    removed = victim.exec_run(["rm", "/www/healthz"])  # type: ignore[attr-defined]
    assert removed.exit_code == 0, removed.output  # the image has rm: the probe fails for real

    async def one_ready() -> bool:
        s = await backend.status()
        return s.stable is not None and s.stable.replicas_ready == 1

    await until(one_ready, 5.0, "the unhealthy container to leave the table")
    status = await backend.status()
    assert status.stable is not None and "HEALTHCHECK unhealthy" in status.stable.problem


@pytest.mark.asyncio
async def test_the_events_stream_reconnects_after_a_drop(env: Env) -> None:
    backend = env.backend(replicas=2, health_interval=60.0, restart={"policy": "never"})
    await backend.start("1.0.0")
    watcher = backend._watchers[0]
    watcher.drop()
    await until(lambda: watcher.reconnects >= 1 and watcher.connected.is_set(), 5.0, "a reconnect")
    await until(lambda: any("reconnected" in t for t in env.texts("docker")), 5.0, "the reconnect note")
    kill_main_process(env.client, env.running("stable")[0].id)  # type: ignore[attr-defined]

    async def one_ready() -> bool:
        s = await backend.status()
        return s.stable is not None and s.stable.replicas_ready == 1

    assert await until(one_ready, 3.0, "the death seen after the reconnect") < 2.0
    assert await until(lambda: routes(backend, 1), 2.0, "the router's table without it") < 2.0
    status = await backend.status()
    assert status.stable is not None and "exited with code 137" in status.stable.problem  # from the die event


# --------------------------------------------------------------------------- logs


@pytest.mark.asyncio
async def test_logs_of_both_tracks_with_labels_and_across_a_restart(env: Env) -> None:
    backend = env.backend(health_interval=60.0)
    await backend.start("1.0.0")
    await backend.deploy_canary("1.1.0")
    await backend.set_weight(50)
    status = await backend.status()
    await versions_served(status.url or "", 20)
    stable_id = env.running("stable")[0].id[:12]  # type: ignore[attr-defined]
    canary_id = env.running("canary")[0].id[:12]  # type: ignore[attr-defined]
    await until(lambda: env.texts(f"[{canary_id}]") and env.texts(f"[{stable_id}]"), 5.0, "lines of both")
    stable_lines = [line for line in env.lines if f"[{stable_id}]" in line.source]
    canary_lines = [line for line in env.lines if f"[{canary_id}]" in line.source]
    assert all(line.track is Track.STABLE and line.source.startswith("stable 1.0.0 #1") for line in stable_lines)
    assert all(line.track is Track.CANARY and line.source.startswith("canary 1.1.0 #1") for line in canary_lines)
    assert any("response:200" in line.text for line in canary_lines)

    kill_main_process(env.client, env.running("stable")[0].id)  # type: ignore[attr-defined]
    await until(lambda: len([t for t in env.texts(f"[{stable_id}]") if t.startswith("starting 1.0.0")]) == 2, 10.0, "the start line of the restarted container")
    await asyncio.sleep(0.5)
    starts = [t for t in env.texts(f"[{stable_id}]") if t.startswith("starting 1.0.0")]
    assert len(starts) == 2  # once per start: the follower re-followed without repeating lines


# --------------------------------------------------------------------------- rollback


@pytest.mark.asyncio
async def test_rollback_to_a_retained_image_by_id(env: Env, test_images: dict[str, str]) -> None:
    backend = env.backend(retain=2)
    await backend.start("1.0.0")
    await backend.deploy_canary("1.1.0")
    await backend.promote_canary()
    old_id = test_images[f"{REPO}:1.0.0"]
    assert [v for _, v in backend.retained()] == ["1.0.0", "1.1.0"]
    env.client.images.get(f"{REPO}:cockpit-test-{old_id[7:19]}")  # the retention tag holds it
    with pytest.raises(VersionNotFound, match="not one of the retained"):
        await backend.deploy_stable("0123456789ab")
    await backend.deploy_stable(old_id[7:19])  # by short id, not by tag
    status = await backend.status()
    assert status.stable is not None and status.stable.version == "1.0.0" and status.stable.healthy
    assert await versions_served(status.url or "", 3) == {"1.0.0": 3}
    await backend.deploy_canary("1.2.0")
    await backend.promote_canary()  # four deployments, retain=2: 1.1.0's retention tag goes
    assert [v for _, v in backend.retained()] == ["1.0.0", "1.2.0"]
    gone = f"{REPO}:cockpit-test-{test_images[f'{REPO}:1.1.0'][7:19]}"

    def dropped() -> bool:
        try:
            env.client.images.get(gone)
        except docker.errors.ImageNotFound:
            return True
        return False

    await until(dropped, 5.0, "the oldest retention tag to go")
    env.client.images.get(f"{REPO}:1.1.0")  # only the cockpit's own tag went, not the version's


@pytest.fixture
def own_repo(env: Env, test_images: dict[str, str]) -> Iterator[str]:
    """A repository of the test's own naming the test images 1.0.0, 1.1.0 and 1.2.0: its
    tags can be moved without touching the tags the other tests use. Untagged after."""
    repo = f"{REPO}-{env.service}"
    for version in VERSIONS:
        env.client.images.get(test_images[f"{REPO}:{version}"]).tag(repo, version)
    yield repo
    for image in env.client.images.list(name=repo):
        for tag in image.tags:
            if tag.startswith(f"{repo}:"):
                env.client.images.remove(tag, noprune=True)


def images_running(env: Env, track: str | None = None) -> set[str]:
    return {c.image.id for c in env.running(track)}  # type: ignore[attr-defined]


async def promoted_then_moved(env: Env, backend: DockerBackend, repo: str, test_images: dict[str, str]) -> None:
    """1.0.0 served, 1.1.0 promoted over it, then the tag 1.0.0 moved to 1.2.0's build."""
    await backend.start("1.0.0")
    await backend.deploy_canary("1.1.0")
    await backend.promote_canary()
    env.client.images.get(test_images[f"{REPO}:1.2.0"]).tag(repo, "1.0.0")


@pytest.mark.asyncio
async def test_a_rollback_by_version_runs_the_image_its_deployment_ran_after_the_tag_moved(
    env: Env, own_repo: str, test_images: dict[str, str]
) -> None:
    ran, moved = test_images[f"{REPO}:1.0.0"], test_images[f"{REPO}:1.2.0"]
    backend = env.backend(image=own_repo)
    await promoted_then_moved(env, backend, own_repo, test_images)
    await backend.deploy_stable("1.0.0")  # a version, as the engine's Rollback names it
    assert images_running(env) == {ran}
    status = await backend.status()
    assert status.stable is not None and status.stable.version == "1.0.0" and status.stable.healthy
    assert status.stable.image == ran  # the status says which build serves
    assert f"stable 1.0.0 runs image {ran[7:19]} (the tag {own_repo}:1.0.0 names {moved[7:19]})" in status.detail
    assert await versions_served(status.url or "", 3) == {"1.0.0": 3}
    notes = env.texts("docker")
    assert any(f"running image {ran[7:19]}, which its last deployment ran" in t and moved[7:19] in t for t in notes)
    assert any(f"stable is now 1.0.0 (image {ran[7:19]})" in t for t in notes)


@pytest.mark.asyncio
async def test_a_canary_of_a_version_runs_what_its_tag_names_now_and_says_so(
    env: Env, own_repo: str, test_images: dict[str, str]
) -> None:
    """A deploy asks for the build the tag names now (its checks judge it); the retained
    deployment of the same version ran another: a warning, and the status tells them apart."""
    ran, moved = test_images[f"{REPO}:1.0.0"], test_images[f"{REPO}:1.2.0"]
    backend = env.backend(image=own_repo)
    await promoted_then_moved(env, backend, own_repo, test_images)
    await backend.deploy_canary("1.0.0")
    assert images_running(env, "canary") == {moved}
    status = await backend.status()
    assert status.canary is not None and status.canary.version == "1.0.0" and status.canary.image == moved
    assert status.stable is not None and status.stable.image == test_images[f"{REPO}:1.1.0"]
    assert f"canary 1.0.0 runs image {moved[7:19]}" in status.detail and "(the tag" not in status.detail
    canary_notes = [line.text for line in env.lines if line.track is Track.CANARY and line.source == "docker"]
    assert any(f"names image {moved[7:19]}, not {ran[7:19]} which 1.0.0 ran before" in t for t in canary_notes)
    # Promoted, it is the newest deployment of 1.0.0: a later rollback to 1.0.0 runs it.
    await backend.promote_canary()
    assert backend.retained()[-1] == (moved, "1.0.0")


@pytest.mark.asyncio
async def test_the_deployment_history_outlives_a_clean_close(
    env: Env, own_repo: str, test_images: dict[str, str]
) -> None:
    ran = test_images[f"{REPO}:1.0.0"]
    first = env.backend(image=own_repo)
    await promoted_then_moved(env, first, own_repo, test_images)
    await first.close()
    assert env.running() == []
    saved = json.loads((env.run_dir / "docker-backend.json").read_text())
    assert saved["token"] == "" and saved["control_url"] == "" and saved["owner_pid"] == 0  # nothing runs
    second = env.backend(image=own_repo)
    await second.start("1.1.0")
    assert second.retained() == [(ran, "1.0.0"), (test_images[f"{REPO}:1.1.0"], "1.1.0")]
    await second.deploy_stable("1.0.0")
    assert images_running(env) == {ran}


@pytest.mark.asyncio
async def test_a_rollback_whose_image_is_gone_fails_clearly_and_leaves_stable_serving(
    env: Env, own_repo: str, test_images: dict[str, str]
) -> None:
    """The image a version ran is no longer on the daemon: never fall back to the tag."""
    doomed = build(env.client, own_repo, "1.0.0", "1.0.0+doomed")  # a build only this test tags
    backend = env.backend(image=own_repo, retain=3)
    await promoted_then_moved(env, backend, own_repo, test_images)  # its 1.0.0 tag moves away
    assert images_running(env) == {test_images[f"{REPO}:1.1.0"]}
    held = f"{own_repo}:{retention_tag('test', doomed)}"
    await until(lambda: held in env.client.images.get(doomed).tags, 5.0, "the retention tag")
    assert env.client.images.get(doomed).tags == [held]
    env.client.images.remove(held)  # its last tag: the image goes
    with pytest.raises(ImageNotPresent, match=rf"cannot roll back to 1\.0\.0: the image its last deployment ran \({doomed[7:19]}\) is no longer") as err:
        await backend.deploy_stable("1.0.0")
    assert f"names another image ({test_images[f'{REPO}:1.2.0'][7:19]})" in str(err.value)
    assert images_running(env) == {test_images[f"{REPO}:1.1.0"]}
    status = await backend.status()
    assert status.stable is not None and status.stable.version == "1.1.0" and status.stable.healthy


@pytest.mark.asyncio
async def test_the_previous_colour_is_kept_for_an_instant_rollback(env: Env) -> None:
    backend = env.backend(keep_previous=30.0)
    await backend.start("1.0.0")
    blue = env.running("stable")[0].id  # type: ignore[attr-defined]
    await backend.deploy_canary("1.1.0")
    preview = (await backend.status()).detail
    assert "preview (canary direct): http://127.0.0.1:" in preview
    await backend.promote_canary()
    status = await backend.status()
    assert "previous stable 1.0.0 kept for instant rollback" in status.detail
    assert [c.id for c in env.running("previous")] == [blue]  # type: ignore[attr-defined]
    await backend.deploy_stable("1.0.0")
    status = await backend.status()
    assert status.stable is not None and status.stable.version == "1.0.0" and status.stable.healthy
    assert [c.id for c in env.running("stable")] == [blue]  # type: ignore[attr-defined]  # no new container


@pytest.mark.asyncio
async def test_the_previous_colour_goes_when_its_time_is_up(env: Env) -> None:
    backend = env.backend(keep_previous=1.0)
    await backend.start("1.0.0")
    await backend.deploy_canary("1.1.0")
    await backend.promote_canary()
    assert len(env.running("previous")) == 1
    await until(lambda: not env.running("previous"), 6.0, "the previous colour to be stopped")
    assert "kept for instant rollback" not in (await backend.status()).detail
    await backend.deploy_stable("1.0.0")  # no longer kept: new containers, still a rollback
    status = await backend.status()
    assert status.stable is not None and status.stable.version == "1.0.0" and status.stable.healthy


@pytest.mark.asyncio
async def test_replica_ratio_states_the_weight_it_really_gives(env: Env) -> None:
    backend = env.backend(traffic="replica-ratio", replicas=2, max_canary_replicas=4)
    await backend.start("1.0.0")
    await backend.deploy_canary("1.1.0")
    await backend.set_weight(30)
    status = await backend.status()
    assert status.weight == 33 and "1 canary of 3 containers = 33 % (asked 30 %)" in status.detail
    await backend.set_weight(50)
    assert (await backend.status()).weight == 50 and len(env.running("canary")) == 2
    await backend.set_weight(10)
    assert (await backend.status()).weight == 33 and len(env.running("canary")) == 1
    await backend.promote_canary()
    status = await backend.status()
    assert status.stable is not None and status.stable.version == "1.1.0" and status.stable.replicas_ready == 2


# --------------------------------------------------------------------------- recovery and adoption

CRASHING_COCKPIT = textwrap.dedent(
    """
    import asyncio, os, sys
    from tests.docker_backend_fixtures import make_docker_backend
    from pathlib import Path

    async def main():
        b = make_docker_backend(Path(sys.argv[1]), sys.argv[2])
        await b.start("1.0.0")
        await b.deploy_canary("1.1.0")
        await b.set_weight(25)
        print("ready", flush=True)
        os._exit(9)  # no close: the cockpit dies mid-canary

    asyncio.run(main())
    """
)




class Snapshot:
    """The journal's last record of the environment, as reconcile reads it."""

    phase = Phase.PROGRESSING.value
    target_version = "1.1.0"
    step = 1
    reason = ""
    detail = ""


@pytest.mark.asyncio
async def test_after_a_crash_start_reports_the_true_state_for_reconcile(env: Env) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CRASHING_COCKPIT, str(env.run_dir), env.service],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env=os.environ | {"PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert "ready" in proc.stdout, proc.stderr[-2000:]
    before = {c.id for c in env.running()}  # type: ignore[attr-defined]
    assert len(before) == 2  # the containers outlived the cockpit

    backend = env.backend()
    await backend.start("1.0.0")
    status = await backend.status()
    assert status.stable is not None and status.stable.version == "1.0.0" and status.stable.healthy
    assert status.canary is not None and status.canary.version == "1.1.0" and status.canary.healthy
    assert status.weight == 25  # the weight the crashed cockpit had set, from the state file
    assert {c.id for c in env.running()} == before  # taken over, not restarted  # type: ignore[attr-defined]
    assert any("taken over as they are" in t for t in env.texts("docker"))
    served = await versions_served(status.url or "", 40)
    assert set(served) == {"1.0.0", "1.1.0"}

    from cockpit.engine.state import RolloutState

    fresh = RolloutState(env="test", phase=Phase.HEALTHY, stable_version="1.0.0", steps_total=3)
    state, notes = reconcile(fresh, Snapshot(), status)
    assert state.phase is Phase.PAUSED and state.canary_version == "1.1.0" and state.weight == 25, notes
    await backend.remove_canary()  # the engine may abort: it works on what was taken over
    assert not env.running("canary")


@pytest.mark.asyncio
async def test_an_adopted_container_becomes_stable_without_a_restart(env: Env, docker_client: docker.DockerClient) -> None:
    from cockpit.adapters.supervise import procs

    port = procs.free_port()
    name = f"legacy-{env.service}"
    legacy = docker_client.containers.run(
        f"{REPO}:1.0.0", name=name, detach=True, network_mode="host", environment={"PORT": str(port)}, init=True
    )
    try:
        started_at = docker_client.containers.get(legacy.id).attrs["State"]["StartedAt"]
        backend = env.backend(adopt={"container": name, "port": port})
        await backend.start("1.0.0")
        status = await backend.status()
        assert status.stable is not None and status.stable.version == "1.0.0" and status.stable.healthy
        assert docker_client.containers.get(legacy.id).attrs["State"]["StartedAt"] == started_at
        assert await versions_served(status.url or "", 3) == {"1.0.0": 3}
        await backend.deploy_canary("1.1.0")
        await backend.promote_canary()
        legacy.reload()
        assert legacy.status == "exited"  # stopped after the promote, never removed
        await backend.close()
        docker_client.containers.get(legacy.id)  # still there
    finally:
        legacy.remove(force=True)


@pytest.mark.asyncio
async def test_the_cockpit_touches_only_what_it_labelled(env: Env, docker_client: docker.DockerClient) -> None:
    from cockpit.adapters.docker import labels

    # Same service, another environment; and a container without any label.
    other_env = docker_client.containers.run(
        f"{REPO}:1.0.0", detach=True, network_mode="host", environment={"PORT": "1"},
        command=["sleep", "60"],
        labels=labels.make(service=env.service, env="production", track="stable", version="1.0.0",
                           image_id="sha256:0", release="deadbeef", index=1, port=1),
        # Named as the cockpit names its own: only the labels tell it apart.
        name=f"{labels.stem(env.service, 'test')}.stable.deadbeef.1",
    )  # fmt: skip
    unlabelled = docker_client.containers.run(f"{REPO}:1.0.0", detach=True, network_mode="host", command=["sleep", "60"])
    try:
        backend = env.backend()
        await backend.start("1.0.0")
        await backend.deploy_canary("1.1.0")
        await backend.promote_canary()
        status = await backend.status()
        assert status.stable is not None and status.stable.replicas_desired == 1
        await backend.close()
        for c in (other_env, unlabelled):
            c.reload()
            assert c.status == "running"
    finally:
        for c in (other_env, unlabelled):
            with contextlib.suppress(docker.errors.NotFound):  # a broken filter may have removed it
                c.remove(force=True)


# --------------------------------------------------------------------------- release tasks


@pytest.mark.asyncio
async def test_a_release_task_runs_once_streams_and_is_removed(env: Env) -> None:
    backend = env.backend()
    await backend.start("1.0.0")
    seen: list[str] = []
    result = await backend.run_task(
        "1.1.0", ["sh", "-c", "echo migrating to $VERSION; echo step 2; echo done"], name="migrate", on_line=seen.append
    )
    assert result.exit_code == 0 and result.tail[-1] == "done"
    assert seen == ["migrating to 1.1.0", "step 2", "done"]
    assert "migrating to 1.1.0" in env.texts("task migrate (1.1.0)")
    with pytest.raises(TaskFailed) as caught:
        await backend.run_task("1.1.0", ["sh", "-c", "echo relation users exists >&2; exit 4"], name="migrate")
    assert caught.value.result.exit_code == 4 and "exited with code 4" in str(caught.value)
    assert "relation users exists" in str(caught.value)
    with pytest.raises(TaskFailed, match="did not finish within 500ms"):
        await backend.run_task("1.1.0", ["sleep", "30"], name="slow", timeout=0.5)
    from cockpit.adapters.docker import labels

    tasks = env.client.containers.list(all=True, filters={"label": f"{labels.TASK}"})
    assert not [c for c in tasks if c.labels.get(labels.SERVICE) == env.service]
    with pytest.raises(BackendError):
        await backend.run_task("7.7.7", ["true"])


# --------------------------------------------------------------------------- the demo service's images


async def load(url: str, stop: asyncio.Event, seen: dict[str, int], failures: list[str]) -> None:
    """One client sending requests until ``stop``; counts versions served and failures."""
    async with aiohttp.ClientSession() as session:
        while not stop.is_set():
            try:
                async with session.get(url + "/", timeout=aiohttp.ClientTimeout(total=5)) as resp:
                    body = await resp.json(content_type=None)
                    if resp.status != 200:
                        failures.append(f"HTTP {resp.status}")
                        continue
                    seen[body["version"]] = seen.get(body["version"], 0) + 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                failures.append(repr(exc))


@pytest.mark.asyncio
async def test_demo_images_exact_weights_and_no_failed_request_across_the_release(
    tmp_path: Path, demo_images: dict[str, object], docker_service: str
) -> None:
    ctx_options = {
        "image": "cockpit-demo", "versions": ["1.0.0", "1.1.0", "1.2.0"],
        "command": ["--port", "{port}", "--env", "{env}"], "replicas": 2,
    }  # fmt: skip
    backend = make_docker_backend(tmp_path, docker_service, **ctx_options)
    try:
        await backend.start("1.0.0")
        await backend.deploy_canary("1.1.0")
        url = (await backend.status()).url or ""
        stop, seen, failures = asyncio.Event(), {}, []  # type: ignore[var-annotated]
        clients = [asyncio.ensure_future(load(url, stop, seen, failures)) for _ in range(6)]
        try:
            await backend.set_weight(25)
            await asyncio.sleep(0.3)  # requests picked at weight 0 are done
            seen.clear()
            await until(lambda: sum(seen.values()) >= 400, 30.0, "400 requests at 25 %")
            share = 100 * seen.get("1.1.0", 0) / sum(seen.values())
            n = sum(seen.values())
            assert abs(share - 25) <= 4.5 * 100 * (0.25 * 0.75 / n) ** 0.5, (share, n)
            await backend.set_weight(100)
            await backend.promote_canary()
            await backend.deploy_canary("1.2.0")
            await backend.set_weight(50)
            await backend.remove_canary()  # abort
            await backend.deploy_stable("1.0.0")  # rollback
            await asyncio.sleep(0.3)
        finally:
            stop.set()
            await asyncio.gather(*clients)
        assert failures == [], failures[:5]
        status = await backend.status()
        assert status.stable is not None and status.stable.version == "1.0.0" and status.canary is None
    finally:
        await backend.close()


@pytest.mark.asyncio
async def test_a_compose_service_is_adopted_and_a_missing_one_is_a_clear_error(
    env: Env, docker_client: docker.DockerClient
) -> None:
    from cockpit.adapters.base import BackendConfigError
    from cockpit.adapters.supervise import procs

    port = procs.free_port()
    project = f"p{env.service}"
    web = docker_client.containers.run(
        f"{REPO}:1.1.0", detach=True, network_mode="host", environment={"PORT": str(port)}, init=True,
        labels={"com.docker.compose.service": "web", "com.docker.compose.project": project},
    )  # fmt: skip
    try:
        missing = env.backend(adopt={"compose_service": "api", "compose_project": project, "port": port})
        with pytest.raises(BackendConfigError, match="0 running containers of Compose service 'api'"):
            await missing.start("1.0.0")
        backend = env.backend(adopt={"compose_service": "web", "compose_project": project, "port": port})
        await backend.start("1.0.0")
        status = await backend.status()
        assert status.stable is not None and status.stable.version == "1.1.0" and status.stable.healthy
        assert await versions_served(status.url or "", 3) == {"1.1.0": 3}
        await backend.close()
        web.reload()
        assert web.status == "running"  # closing the cockpit leaves what it adopted as it was
    finally:
        web.remove(force=True)


@pytest.mark.asyncio
async def test_a_second_cockpit_attaches_read_only(env: Env) -> None:
    owner = env.backend()
    await owner.start("1.0.0")
    await owner.deploy_canary("1.1.0")
    await owner.set_weight(40)
    watcher = env.backend()
    await watcher.attach()
    status = await watcher.status()
    assert status.stable is not None and status.stable.version == "1.0.0" and status.stable.replicas_ready == 1
    assert status.canary is not None and status.canary.version == "1.1.0" and status.weight == 40
    assert "attached read-only" in status.detail
    with pytest.raises(BackendError, match="attached read-only"):
        await watcher.set_weight(0)
    await watcher.close()
    assert (await owner.status()).weight == 40  # the watcher's close changed nothing
