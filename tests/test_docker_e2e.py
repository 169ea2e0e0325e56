"""Releases of the demo service on a real Docker Engine, driven through the cockpit's
engine (a :class:`~cockpit.engine.session.Session` on a plan with the docker backend),
under load the whole time.

Load: the demo's traffic generator (GETs, a separate process whose summary counts every
request) and POSTs from the test held in flight 0.2 s each. The router retries a GET
elsewhere when its upstream goes away, but never a POST; and the containers run with
``--shutdown-timeout 0.01`` (a service that drops what is in flight when told to stop):
only the backend's drain before a retired container is stopped keeps those POSTs whole.
Every scenario must end with ZERO failed requests, and the cockpit's log pane must have
shown lines from both tracks while both served.

Scenarios: canary to 100 % and promote; abort; blue-green switch then rollback to a
retained image by id (the tag was moved meanwhile); adoption of a container started
outside the cockpit; recovery after the cockpit was killed mid-canary."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from cockpit.demo.image import DemoImage
from cockpit.engine.commands import Abort, Promote, PromoteFull, Rollback, StartRollout
from cockpit.engine.session import Session
from cockpit.engine.state import Phase
from cockpit.model import Track
from cockpit.plan import parse_plan
from tests.docker_fixtures import remove_containers_of

pytestmark = pytest.mark.docker

ENV = "production"
RPS = 150
POSTERS = 8
POST_SLEEP = 0.2  # seconds each POST is held in flight by the service
DWELL = 0.6  # seconds of traffic in each state, so every state really serves requests
SERVICE_LABEL = "io.cockpit.service"

PLAN = """
[service]
name = "{service}"

[[environments]]
name = "production"
initial_version = "1.0.0"
  [environments.backend]
  adapter = "docker"
    [environments.backend.options]
    image = "cockpit-demo"
    versions = ["1.0.0", "1.1.0", "1.2.0"]
    docker_host = "{docker_host}"
    command = ["--port", "{{port}}", "--env", "{{env}}", "--shutdown-timeout", "0.01"]
    replicas = 2
    drain_timeout = "5s"
    stop_timeout = "5s"
{options}
{strategy}
"""

CANARY = """
[strategy.canary]
steps = [{ set_weight = 20 }, { pause = {} }, { set_weight = 50 }, { pause = {} }]
"""

BLUE_GREEN = """
[strategy.blue_green]
auto_promote = false
"""


def make_plan(service: str, docker_host: str, strategy: str = CANARY, options: str = "") -> str:
    return PLAN.format(service=service, docker_host=docker_host, strategy=strategy, options=options)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def until(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout:.0f} s: {what}")
        await asyncio.sleep(0.05)


class Posts:
    """Workers that POST in a loop until stopped; every answer is counted."""

    def __init__(self, url: str, hold: float) -> None:
        self.url = f"{url}/api/orders?sleep={hold}"
        self.answers: Counter[str] = Counter()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def run(self) -> None:
        async with aiohttp.ClientSession() as session:
            self._tasks = [asyncio.create_task(self._worker(session)) for _ in range(POSTERS)]
            await asyncio.gather(*self._tasks)

    def stop(self) -> None:
        self._stop.set()

    async def _worker(self, session: aiohttp.ClientSession) -> None:
        while not self._stop.is_set():
            try:
                async with session.post(self.url, json={"item": "demo"}) as answer:
                    await answer.read()
                    key = str(answer.status)
            except aiohttp.ClientError as exc:
                key = f"error {type(exc).__name__}"
            self.answers[key] += 1


class Load:
    """GETs from the demo's traffic generator plus the test's POSTs, against ``url``."""

    def __init__(self, url: str, hold: float = POST_SLEEP) -> None:
        self.url = url
        self.posts = Posts(url, hold)
        self.summary: dict[str, Any] = {}

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Load]:
        generator = subprocess.Popen(
            [
                *(sys.executable, "-m", "cockpit.demo.traffic", "--target", self.url),
                *("--rps", str(RPS), "--paths", "/,/api/orders", "--concurrency", "256"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        posting = asyncio.create_task(self.posts.run())
        try:
            yield self
        finally:
            self.posts.stop()
            await posting
            generator.send_signal(signal.SIGTERM)
            out, _ = await asyncio.to_thread(generator.communicate, timeout=30)
            self.summary = json.loads(out.strip().splitlines()[-1])

    def assert_no_failure(self) -> str:
        s = self.summary
        assert s["sent"] > RPS, s  # more than a second of real traffic
        assert s["errors"] == 0 and s["status_5xx"] == 0 and s["skipped"] == 0 and s["ok"] == s["sent"], s
        posted = sum(self.posts.answers.values())
        assert posted > 10 and self.posts.answers["201"] == posted, self.posts.answers
        return f"{s['sent']} GETs and {posted} POSTs, 0 failed"


def tracks_logged(session: Session, since: int = 0) -> set[Track]:
    """The tracks whose containers wrote request lines into the cockpit's log pane."""
    buffer = session.logs.buffers[ENV]
    return {
        line.track
        for line in buffer.since(max(since, buffer.first))
        if line.track is not None and '"msg":"request"' in line.text
    }


def versions_logged(session: Session, since: int = 0) -> set[str]:
    """The versions that wrote request lines into the cockpit's log pane."""
    found = set()
    for line in session.logs.buffers[ENV].since(since):
        if '"msg":"request"' in line.text:
            found.add(json.loads(line.text[line.text.index("{") :])["version"])
    return found


def log_mark(session: Session) -> int:
    buffer = session.logs.buffers[ENV]
    return buffer.first + len(buffer)


async def both_tracks_log(session: Session, since: int) -> None:
    await until(lambda: tracks_logged(session, since) >= {Track.STABLE, Track.CANARY}, "logs of both tracks")


def service_containers(client: Any, service: str) -> list[Any]:
    return client.containers.list(filters={"label": f"{SERVICE_LABEL}={service}"})


async def ok(session: Session, command: Any, reason: str = "e2e") -> None:
    result = await session.submit(ENV, command, reason)
    assert result.ok, result.message


@asynccontextmanager
async def started(plan_text: str, state_dir: Path) -> AsyncIterator[Session]:
    session = Session(parse_plan(plan_text), state_dir=state_dir, user="e2e")
    try:
        problems = await session.start()
        assert problems == [], [str(p) for p in problems]
        yield session
    finally:
        await session.close()


# --------------------------------------------------------------------------- canary


@pytest.mark.asyncio
async def test_canary_to_full_then_promote_with_zero_failed_requests(
    docker_host: str,
    demo_images: dict[str, DemoImage],
    docker_service: str,
    docker_client: Any,
    state_dir: Path,
) -> None:
    async with started(make_plan(docker_service, docker_host), state_dir) as session:
        assert session.view(ENV).url is not None
        async with Load(session.view(ENV).url or "").running() as load:
            await asyncio.sleep(DWELL)
            mark = log_mark(session)
            await ok(session, StartRollout("1.1.0"))
            view = session.view(ENV)
            assert view.rollout.phase is Phase.PAUSED and view.rollout.weight == 20
            assert view.backend is not None and view.backend.weight == 20
            await both_tracks_log(session, mark)
            await ok(session, Promote())
            assert session.view(ENV).rollout.weight == 50
            await asyncio.sleep(DWELL)
            await ok(session, PromoteFull())
            await until(lambda: session.view(ENV).rollout.phase is Phase.HEALTHY, "healthy after promote")
            await asyncio.sleep(DWELL)
        view = session.view(ENV)
        assert view.rollout.stable_version == "1.1.0" and view.rollout.canary_version is None
        assert view.backend is not None and view.backend.stable is not None
        assert view.backend.stable.version == "1.1.0" and view.backend.canary is None
        running = service_containers(docker_client, docker_service)
        assert {c.image.id for c in running} == {demo_images["1.1.0"].id} and len(running) == 2
    print("canary -> 100 % -> promote:", load.assert_no_failure())


@pytest.mark.asyncio
async def test_abort_with_zero_failed_requests(
    docker_host: str,
    demo_images: dict[str, DemoImage],
    docker_service: str,
    docker_client: Any,
    state_dir: Path,
) -> None:
    async with started(make_plan(docker_service, docker_host), state_dir) as session:
        # POSTs held 1 s: the engine sets the weight to 0 before it removes the canary, and
        # shorter requests would all end in that gap, drained or not.
        async with Load(session.view(ENV).url or "", hold=1.0).running() as load:
            await asyncio.sleep(DWELL)
            mark = log_mark(session)
            await ok(session, StartRollout("1.2.0"))
            await ok(session, Promote())  # 50 %: half the POSTs in flight are on the canary
            await both_tracks_log(session, mark)
            await asyncio.sleep(1.2)  # POSTs of 1 s now in flight on the canary as well
            await ok(session, Abort(), "looks wrong")
            view = session.view(ENV)
            assert view.rollout.phase is Phase.ABORTED and view.rollout.canary_version is None
            await asyncio.sleep(DWELL)
        assert view.backend is not None and view.backend.canary is None
        running = service_containers(docker_client, docker_service)
        assert {c.image.id for c in running} == {demo_images["1.0.0"].id} and len(running) == 2
    print("abort at 50 %:", load.assert_no_failure())


# --------------------------------------------------------------------------- blue-green, rollback


@pytest.mark.asyncio
async def test_blue_green_switch_and_rollback_with_zero_failed_requests(
    docker_host: str,
    demo_images: dict[str, DemoImage],
    docker_service: str,
    docker_client: Any,
    state_dir: Path,
) -> None:
    plan = make_plan(docker_service, docker_host, BLUE_GREEN)
    async with started(plan, state_dir) as session, Load(session.view(ENV).url or "").running() as load:
        await asyncio.sleep(DWELL)
        await ok(session, StartRollout("1.1.0"))
        view = session.view(ENV)
        assert view.rollout.phase is Phase.PAUSED and view.rollout.weight == 0  # green is the preview
        assert view.backend is not None and view.backend.canary is not None
        mark = log_mark(session)
        await ok(session, Promote())  # the switch: 0 -> 100 at once
        await until(lambda: session.view(ENV).rollout.phase is Phase.HEALTHY, "healthy after the switch")
        assert session.view(ENV).rollout.stable_version == "1.1.0"
        await asyncio.sleep(DWELL)
        # Blue served, then green: a switch leaves no canary phase to log, so versions tell.
        assert versions_logged(session, mark) == {"1.0.0", "1.1.0"}
        mark = log_mark(session)
        await ok(session, Rollback(), "regression")
        assert session.view(ENV).rollout.stable_version == "1.0.0"
        await asyncio.sleep(DWELL)
        assert "1.0.0" in versions_logged(session, mark)
        running = service_containers(docker_client, docker_service)
        assert {c.image.id for c in running} == {demo_images["1.0.0"].id} and len(running) == 2
    print("blue-green switch, then rollback:", load.assert_no_failure())


@pytest.fixture
def moved_tag(docker_client: Any, demo_images: dict[str, DemoImage]) -> Iterator[None]:
    """The tag ``cockpit-demo:1.0.0`` names 1.2.0's image for the test (put back after:
    the session-wide images must stay as the other tests expect them)."""
    try:
        yield
    finally:
        docker_client.images.get(demo_images["1.0.0"].id).tag("cockpit-demo", "1.0.0")


@pytest.mark.asyncio
async def test_rollback_to_a_retained_image_by_id_after_its_tag_moved(
    docker_host: str,
    demo_images: dict[str, DemoImage],
    docker_service: str,
    docker_client: Any,
    tmp_path: Path,
    moved_tag: None,
) -> None:
    """The backend itself (the engine's Rollback names a version, not an image id): the
    image id of a retained deployment runs again even though its tag now names another."""
    from cockpit.adapters.base import AdapterContext
    from cockpit.adapters.docker import DockerBackend
    from cockpit.adapters.docker.options import DockerOptions

    options = parse_plan(make_plan(docker_service, docker_host)).environments[0].backend.options
    backend = DockerBackend(
        AdapterContext(service=docker_service, env=ENV, run_dir=tmp_path),
        DockerOptions.model_validate(options),
    )
    await backend.start("1.0.0")
    try:
        url = (await backend.status()).url
        async with Load(url or "").running() as load:
            await backend.deploy_canary("1.1.0")
            await backend.set_weight(100)
            await backend.promote_canary()
            await asyncio.sleep(DWELL)
            docker_client.images.get(demo_images["1.2.0"].id).tag("cockpit-demo", "1.0.0")
            first = demo_images["1.0.0"].id
            assert first in [image_id for image_id, _ in backend.retained()]
            await backend.deploy_stable(first.removeprefix("sha256:")[:12])  # a short id, as a user types it
            await asyncio.sleep(DWELL)
        status = await backend.status()
        assert status.stable is not None and status.stable.version == "1.0.0"
        running = service_containers(docker_client, docker_service)
        assert {c.image.id for c in running} == {first} and len(running) == 2
        async with aiohttp.ClientSession() as http, http.get(f"{url}/healthz") as answer:
            assert (await answer.json())["version"] == "1.0.0"
    finally:
        await backend.close()
    print("rollback by image id:", load.assert_no_failure())


@pytest.mark.asyncio
async def test_an_engine_rollback_runs_the_image_the_revision_ran_even_after_its_tag_moved(
    docker_host: str,
    demo_images: dict[str, DemoImage],
    docker_service: str,
    docker_client: Any,
    state_dir: Path,
    moved_tag: None,
) -> None:
    async with started(make_plan(docker_service, docker_host, BLUE_GREEN), state_dir) as session:
        await ok(session, StartRollout("1.1.0"))
        await ok(session, Promote())
        await until(lambda: session.view(ENV).rollout.phase is Phase.HEALTHY, "healthy after the switch")
        docker_client.images.get(demo_images["1.2.0"].id).tag("cockpit-demo", "1.0.0")
        await ok(session, Rollback(), "regression")
        running = service_containers(docker_client, docker_service)
        assert {c.image.id for c in running} == {demo_images["1.0.0"].id}
        view = session.view(ENV)
        assert view.rollout.stable_version == "1.0.0"
        # The screen's status says which build serves, though the tag names another now.
        def stable_image() -> str | None:
            status = session.view(ENV).backend
            return status.stable.image if status is not None and status.stable is not None else None

        await until(lambda: stable_image() == demo_images["1.0.0"].id, "the status's image id of stable")
        async with aiohttp.ClientSession() as http, http.get(f"{view.url}/healthz") as answer:
            assert (await answer.json())["version"] == "1.0.0"


# --------------------------------------------------------------------------- adoption


@pytest.mark.asyncio
async def test_a_container_started_outside_is_adopted_then_replaced_with_zero_failed_requests(
    docker_host: str,
    demo_images: dict[str, DemoImage],
    docker_service: str,
    docker_client: Any,
    docker_labels: dict[str, str],
    state_dir: Path,
) -> None:
    port = free_port()
    legacy = docker_client.containers.run(
        demo_images["1.0.0"].tag,
        ["--port", str(port), "--env", ENV, "--shutdown-timeout", "0.01"],
        detach=True,
        network_mode="host",
        labels=docker_labels,  # the test's own label only: nothing the cockpit knows
        name=f"{docker_service}-legacy",
    )
    options = f'    adopt = {{ container = "{legacy.name}", port = {port} }}'
    async with started(make_plan(docker_service, docker_host, options=options), state_dir) as session:
        view = session.view(ENV)
        assert view.backend is not None and view.backend.stable is not None
        assert view.backend.stable.version == "1.0.0" and view.rollout.stable_version == "1.0.0"
        legacy.reload()
        assert legacy.status == "running"  # taken over as it is, not restarted
        async with Load(view.url or "").running() as load:
            await asyncio.sleep(DWELL)
            mark = log_mark(session)
            await ok(session, StartRollout("1.1.0"))
            await both_tracks_log(session, mark)  # the adopted container's lines count as stable
            await ok(session, PromoteFull())
            await until(lambda: session.view(ENV).rollout.phase is Phase.HEALTHY, "healthy after promote")
            await asyncio.sleep(DWELL)
        legacy.reload()
        assert legacy.status == "exited"  # stopped by the promote, never removed: not the cockpit's
        running = service_containers(docker_client, docker_service)
        assert {c.image.id for c in running} == {demo_images["1.1.0"].id}
    print("adoption then canary:", load.assert_no_failure())


# --------------------------------------------------------------------------- recovery

DRIVER = """
import asyncio, sys
from pathlib import Path
from cockpit.engine.commands import StartRollout
from cockpit.engine.session import Session
from cockpit.plan import parse_plan

async def main() -> None:
    session = Session(parse_plan(Path(sys.argv[1]).read_text()), state_dir=Path(sys.argv[2]), user="first")
    await session.start()
    result = await session.submit("production", StartRollout("1.1.0"), "release")
    print("rolled" if result.ok else f"refused {result.message}", session.view("production").rollout.weight, flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


@pytest.mark.asyncio
@pytest.mark.parametrize("then", ["continue", "abort"])
async def test_a_cockpit_killed_mid_canary_is_recovered_by_the_next(
    then: str,
    docker_host: str,
    demo_images: dict[str, DemoImage],
    docker_service: str,
    docker_client: Any,
    state_dir: Path,
    tmp_path: Path,
) -> None:
    plan = make_plan(docker_service, docker_host)
    (tmp_path / "plan.toml").write_text(plan)
    first = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(DRIVER), str(tmp_path / "plan.toml"), str(state_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = await asyncio.wait_for(asyncio.to_thread(first.stdout.readline), 90)  # type: ignore[union-attr]
        assert line.split() == ["rolled", "20"], (line, first.stderr.read() if not line else "")  # type: ignore[union-attr]
        before = {c.id: c.image.id for c in service_containers(docker_client, docker_service)}
    finally:
        first.kill()  # SIGKILL: no close, no cleanup; the containers keep running
        first.wait(10)
    assert sorted(before.values()) == sorted([demo_images["1.0.0"].id] * 2 + [demo_images["1.1.0"].id] * 2)

    async with started(plan, state_dir) as session:
        view = session.view(ENV)
        # The truth, from the containers: 1.1.0 is the canary at 20 %, nothing was restarted.
        assert view.backend is not None and view.backend.canary is not None
        assert view.backend.canary.version == "1.1.0" and view.backend.weight == 20
        assert view.rollout.canary_version == "1.1.0"
        assert {c.id for c in service_containers(docker_client, docker_service)} == set(before)
        async with Load(view.url or "").running() as load:
            await asyncio.sleep(DWELL)
            if then == "continue":
                await ok(session, PromoteFull(), "pick the release up")
                await until(lambda: session.view(ENV).rollout.phase is Phase.HEALTHY, "healthy")
                expected = demo_images["1.1.0"].id
            else:
                await ok(session, Abort(), "start over")
                expected = demo_images["1.0.0"].id
            await asyncio.sleep(DWELL)
        running = service_containers(docker_client, docker_service)
        assert {c.image.id for c in running} == {expected} and len(running) == 2
    print(f"recovered, then {then}:", load.assert_no_failure())


# --------------------------------------------------------------------------- the demo on docker


def cockpit_cli(
    *args: str, state: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cockpit", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COCKPIT_STATE_DIR": str(state), **(env or {})},
    )


@pytest.mark.asyncio
async def test_the_docker_demo_catches_the_bad_release_headless(
    docker_host: str, demo_images: dict[str, DemoImage], docker_client: Any, tmp_path: Path
) -> None:
    """``cockpit demo --backend docker``: three environments of containers, the demo's
    users, metrics scraped from the containers, and analysis aborting 1.2.0 in production."""
    try:
        result = await asyncio.to_thread(
            cockpit_cli,
            *("demo", "--backend", "docker", "--headless", "--env", "production", "--version", "1.2.0"),
            *("--port-base", "0"),
            state=tmp_path,
        )
        assert result.returncode == 3, result.stdout + result.stderr
        lines = result.stdout.splitlines()
        # 1.2.0 fails on errors, latency or both: which check crosses first varies.
        assert lines[-1].startswith("aborted: analysis failed: "), lines[-3:]
        assert any("canary=1.2.0@20%" in line for line in lines)
        assert (tmp_path / "demo-docker").is_dir() and not (tmp_path / "demo").exists()  # its own journal
        assert service_containers(docker_client, "shop") == []  # a clean exit removes its containers
    finally:
        remove_containers_of(docker_client, "shop")


def test_the_docker_demo_without_a_daemon_says_so(tmp_path: Path) -> None:
    result = cockpit_cli(
        "demo", "--backend", "docker", "--headless", "--version", "1.1.0",
        state=tmp_path, env={"DOCKER_HOST": f"unix://{tmp_path}/none.sock"},
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: the Docker demo cannot start: no Docker daemon answers at unix://{tmp_path}/none.sock: "
        "No such file or directory (DOCKER_HOST names the daemon)"
    )
