"""The demo service, its traffic generator, and the demo's users per environment, as real
processes."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from pydantic import ValidationError

from cockpit import paths
from cockpit.adapters.local import runtime
from cockpit.adapters.local.options import LocalOptions
from cockpit.adapters.router import RouterControl
from cockpit.adapters.supervise import procs
from cockpit.cli import demo_plan
from cockpit.demo.load import DEMO_TRAFFIC, traffic_argv
from cockpit.demo.session import DemoSession
from cockpit.plan.models import Plan
from tests.local_fixtures import (  # noqa: F401
    demo_command,
    free_port,
    service_fixture,
    start_demo,
    stop,
    wait_gone,
    wait_http,
)


def run_service(name: str, version: str, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        demo_command(version, port, "t"),
        env=procs.child_env(f"{name}/svc"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.asyncio
async def test_endpoints_metrics_and_logs(service: str) -> None:
    port = free_port()
    svc = run_service(service, "1.1.0", port)
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_http(base + "/healthz")
        async with aiohttp.ClientSession() as s:
            async with s.get(base + "/healthz") as r:
                assert await r.json() == {"status": "ok", "version": "1.1.0"}
            for path in ("/", "/api/orders", "/api/checkout"):
                async with s.get(base + path) as r:
                    assert r.status == 200 and (await r.json())["version"] == "1.1.0"
            async with s.get(base + "/nope") as r:
                assert r.status == 404
            async with s.get(base + "/metrics") as r:
                text = await r.text()
        assert 'http_requests_total{code="200",path="/api/orders"} 1.0' in text
        assert 'http_requests_total{code="404",path="other"} 1.0' in text
        assert 'http_request_duration_seconds_bucket{le="0.001",path="/"}' in text
        assert 'le="2.0"' in text
        assert "/healthz" not in text  # probes are not user traffic
    finally:
        svc.send_signal(signal.SIGTERM)
        out, _ = svc.communicate(timeout=10)
    assert svc.returncode == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert records[0]["msg"] == "started" and records[-1]["msg"] == "stopped"
    requests = [r for r in records if r["msg"] == "request"]
    assert [r["path"] for r in requests] == ["/", "/api/orders", "/api/checkout", "/nope"]
    for r in requests:
        assert {"ts", "level", "msg", "path", "status", "duration_ms", "version"} <= r.keys()
    assert requests[-1]["level"] == "warning" and requests[0]["level"] == "info"


@pytest.mark.asyncio
async def test_1_2_0_regresses_on_checkout_only(service: str) -> None:
    port = free_port()
    svc = start_demo(service, "1.2.0", port)
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_http(base + "/healthz")
        async with aiohttp.ClientSession() as s:

            async def timed(path: str) -> tuple[int, float]:
                started = time.perf_counter()
                async with s.get(base + path) as r:
                    await r.read()
                    return r.status, time.perf_counter() - started

            checkout = await asyncio.gather(*(timed("/api/checkout") for _ in range(60)))
            orders = await asyncio.gather(*(timed("/api/orders") for _ in range(60)))
        failures = sum(1 for status, _ in checkout if status == 500)
        assert 6 <= failures <= 36, failures  # ~30 %
        assert min(t for _, t in checkout) >= 0.15
        assert all(status == 200 for status, _ in orders)
        assert max(t for _, t in orders) < 0.145  # below the regression's 150 ms floor
    finally:
        stop(svc)


@pytest.mark.asyncio
async def test_sigterm_finishes_requests_in_flight(service: str) -> None:
    port = free_port()
    svc = run_service(service, "1.2.0", port)  # checkout takes 150-400 ms
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_http(base + "/healthz")
        async with aiohttp.ClientSession() as s:
            slow = asyncio.ensure_future(s.get(base + "/api/checkout"))
            await asyncio.sleep(0.05)
            svc.send_signal(signal.SIGTERM)
            response = await slow
            assert response.status in (200, 500)  # the service's answer, not a reset
            assert (await response.json())["version"] == "1.2.0"
        code = await asyncio.to_thread(svc.wait, 10)
        assert code == 0
    finally:
        svc.kill()
        svc.communicate()


def test_traffic_generator_holds_its_rate(service: str) -> None:
    port = free_port()
    svc = start_demo(service, "1.0.0", port)
    try:
        asyncio.run(wait_http(f"http://127.0.0.1:{port}/healthz"))
        out = subprocess.run(
            [
                *(sys.executable, "-m", "cockpit.demo.traffic", "--target", f"http://127.0.0.1:{port}"),
                *("--rps", "100", "--duration", "2", "--paths", "/,/api/orders"),
            ],
            env=procs.child_env(f"{service}/traffic"),
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    finally:
        stop(svc)
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert 170 <= summary["sent"] <= 201, summary
    assert summary["ok"] == summary["sent"] and summary["errors"] == 0
    assert summary["p99_ms"] is not None and summary["p99_ms"] < 100


# --------------------------------------------------------------------------- the demo's users


def demo_plan_named(service: str) -> Plan:
    """The embedded demo plan on free ports, under the test's unique service name."""
    data = demo_plan(0).model_dump()
    data["service"]["name"] = service
    return Plan.model_validate(data)


def child_argv(shim_pid: int) -> list[str]:
    """What a shim runs: its command line after ``--``."""
    argv = Path(f"/proc/{shim_pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    return argv[argv.index("--") + 1 :]


def test_the_demo_users_cover_the_demo_plan() -> None:
    """Every demo environment gets users at its rate; only production's reach /api/checkout
    (1.2.0's regression hides there, so staging looks fine)."""
    assert {e.name for e in demo_plan(None).environments} == set(DEMO_TRAFFIC)
    assert {env: s.rps for env, s in DEMO_TRAFFIC.items()} == {"dev": 10, "staging": 20, "production": 40}
    assert [env for env, s in DEMO_TRAFFIC.items() if "/api/checkout" in s.paths] == ["production"]
    assert all({"/", "/api/orders"} <= set(s.paths) for s in DEMO_TRAFFIC.values())


def test_the_traffic_options_are_gone_from_the_plan_format() -> None:
    """Load is the demo's business: a plan that asks the backend for it is refused."""
    with pytest.raises(ValidationError, match="traffic_rps"):
        LocalOptions(versions=["1.0.0"], traffic_rps=5)  # type: ignore[call-arg]


@pytest.mark.asyncio
async def test_a_demo_session_runs_users_on_each_environment_once_it_is_up(
    tmp_path: Path, service: str
) -> None:
    session = DemoSession(demo_plan_named(service), state_dir=tmp_path, user="t")
    routers: dict[str, int] = {}
    alive_at_stop: list[bool] = []
    try:
        assert await session.start(only=["dev", "production"]) == []  # staging stays down
        for _ in range(200):
            if set(session.traffic.running) == {"dev", "production"}:
                break
            await asyncio.sleep(0.05)
        assert set(session.traffic.running) == {"dev", "production"}, "no users on an environment that is up"
        urls = {v.name: v.url for v in session.views()}
        for env, proc in session.traffic.running.items():
            assert child_argv(proc.pid) == traffic_argv(str(urls[env]), DEMO_TRAFFIC[env])
            assert procs.has_marker(proc.pid, session.traffic.marker(env))  # ours, found after a crash
            rt = runtime.read(paths.run_dir(tmp_path, service, env))
            assert rt is not None
            routers[env] = rt.router_pid
        rt = runtime.read(paths.run_dir(tmp_path, service, "production"))
        assert rt is not None
        async with aiohttp.ClientSession() as http:  # the users reach production's router
            control = RouterControl(http, rt.control_url, rt.token, "production")
            for _ in range(200):
                if sum((await control.state())["requests"].values()) >= 5:
                    break
                await asyncio.sleep(0.05)
        users = list(session.traffic.pids)
        stop_users = session.traffic.stop

        production_users = session.traffic.running["production"]

        async def stop_and_look() -> None:
            alive_at_stop.extend(procs.alive(pid) for pid in routers.values())
            await stop_users()

        session.traffic.stop = stop_and_look  # type: ignore[method-assign]
    finally:
        await session.close()
    assert alive_at_stop == [True, True], "the users must stop before the environments they use"
    assert wait_gone(users, 2) == []
    summaries = [
        json.loads(line.text)
        for line in session.logs.buffers["production"].tail(10_000)
        if line.source == "traffic" and line.text.startswith("{")
    ]
    # The users reached production's router and were served by stable, shutdown included.
    said = [line.text for line in session.logs.buffers["production"].tail(10_000) if line.source == "traffic"]
    assert len(summaries) == 1, (
        f"production's users exited with {production_users.process.returncode} and printed"
        f" {len(summaries)} summaries; their last lines: {said[-15:]}"
    )
    (summary,) = summaries
    assert summary["sent"] >= 5 and summary["ok"] == summary["sent"] and summary["errors"] == 0, summary
    assert summary["tracks"] == {"stable": summary["sent"]}, summary
