"""The demo service and traffic generator as real processes."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time

import aiohttp
import pytest

from cockpit.adapters.supervise import procs
from tests.local_fixtures import demo_command, free_port, service_fixture, start_demo, stop, wait_http  # noqa: F401


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
