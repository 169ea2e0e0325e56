"""Benchmark the docker backend on a real Docker Engine (the one ``DOCKER_HOST`` names).

Prints, over ``--rounds`` rounds (median, min, max):

* container start-to-healthy: ``docker run`` of the demo image until ``/healthz`` answers
  (no cockpit involved: the floor of every deploy);
* through the cockpit's engine, a Session on a one-environment plan (2 replicas), with
  light load on the router: a canary start (containers started, healthy, routed at
  20 %), a canary step (20 -> 50 %), an abort (all traffic back to stable, the canary's
  containers drained and removed), a full promote, and a rollback to the retained image
  of the previous revision.

The images are built (or found in the cache) first: cockpit/demo/image.py, figures printed.

    python scripts/bench_docker.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cockpit.demo import image  # noqa: E402
from cockpit.engine.commands import Abort, Promote, PromoteFull, Rollback, StartRollout  # noqa: E402
from cockpit.engine.session import Session  # noqa: E402
from cockpit.plan import parse_plan  # noqa: E402

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
    docker_host = "{host}"
    command = ["--port", "{{port}}", "--env", "{{env}}"]
    replicas = 2

[strategy.canary]
steps = [{{ set_weight = 20 }}, {{ pause = {{}} }}, {{ set_weight = 50 }}, {{ pause = {{}} }}]
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def start_to_healthy(host: str, rounds: int) -> list[float]:
    import docker  # the SDK: a test/bench dependency here, the adapter's in the package

    client = docker.DockerClient(base_url=host)
    figures = []
    try:
        for _ in range(rounds):
            port = free_port()
            started = time.monotonic()
            container = client.containers.run(
                f"{image.REPOSITORY}:1.0.0", ["--port", str(port)], detach=True, network_mode="host"
            )
            try:
                wait_healthy(f"http://127.0.0.1:{port}/healthz")
                figures.append(time.monotonic() - started)
            finally:
                container.remove(force=True)
    finally:
        client.close()
    return figures


async def light_load(url: str, stop: asyncio.Event) -> int:
    """A few requests a second on the router, so every measured change happens under traffic."""
    import aiohttp

    failed = 0
    async with aiohttp.ClientSession() as http:
        while not stop.is_set():
            try:
                async with http.get(f"{url}/api/orders") as answer:
                    await answer.read()
                    failed += answer.status >= 500
            except aiohttp.ClientError:
                failed += 1
            await asyncio.sleep(0.02)
    return failed


async def timed(figures: dict[str, list[float]], name: str, action: Callable[[], Awaitable[Any]]) -> None:
    started = time.monotonic()
    result = await action()
    figures.setdefault(name, []).append(time.monotonic() - started)
    if not result.ok:
        raise SystemExit(f"bench: {name} was refused: {result.message}")


async def engine_round(host: str, figures: dict[str, list[float]]) -> int:
    plan = parse_plan(PLAN.format(service=f"bench{uuid.uuid4().hex[:8]}", host=host))
    env = "production"
    with tempfile.TemporaryDirectory() as state:
        session = Session(plan, state_dir=Path(state), user="bench")
        try:
            started = time.monotonic()
            problems = await session.start()
            if problems:
                raise SystemExit(f"bench: the environment did not start: {[str(p) for p in problems]}")
            figures.setdefault("environment start (2 containers + router)", []).append(
                time.monotonic() - started
            )
            stop = asyncio.Event()
            loader = asyncio.create_task(light_load(session.view(env).url or "", stop))
            await timed(
                figures,
                "canary start (deploy, healthy, 20 %)",
                lambda: session.submit(env, StartRollout("1.1.0"), "b"),
            )
            await timed(figures, "canary step (20 -> 50 %)", lambda: session.submit(env, Promote(), "b"))
            await timed(
                figures, "abort (traffic back, canary removed)", lambda: session.submit(env, Abort(), "b")
            )
            await session.submit(env, StartRollout("1.1.0"), "b")
            await timed(
                figures,
                "full promote (canary becomes stable)",
                lambda: session.submit(env, PromoteFull(), "b"),
            )
            await timed(
                figures,
                "rollback (retained image, 2 containers)",
                lambda: session.submit(env, Rollback(), "b"),
            )
            stop.set()
            return await loader
        finally:
            await session.close()


def line(name: str, values: list[float]) -> str:
    return (
        f"  {name:<44} median {statistics.median(values):6.2f} s   "
        f"min {min(values):6.2f}   max {max(values):6.2f}   (n={len(values)})"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    host = os.environ.get("DOCKER_HOST")
    if not host:
        raise SystemExit("bench: DOCKER_HOST is not set (scripts/bench.sh starts a private daemon)")

    report = image.build(host)
    print(
        f"demo images: built={report.built} loaded={report.loaded} in {report.seconds:.2f} s, "
        f"archive {report.archive_bytes / 1e6:.1f} MB (3 images, one shared layer)"
    )
    print(line("container start-to-healthy (docker run)", start_to_healthy(host, max(args.rounds, 5))))
    figures: dict[str, list[float]] = {}
    failed = 0
    for _ in range(args.rounds):
        failed += await engine_round(host, figures)
    print("through the engine (Session, docker backend, 2 replicas, light load):")
    for name, values in figures.items():
        print(line(name, values))
    print(f"  requests failed under the light load: {failed}")


if __name__ == "__main__":
    asyncio.run(main())
