"""No request fails while a release walks every cut-over the local backend has.

A separate load generator process (the demo traffic generator) sends requests through
the router the whole time; its summary counts every request it sent."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cockpit.adapters.local import procs
from tests.local_fixtures import make_backend, service_fixture  # noqa: F401

RPS = 300
DWELL = 0.4  # seconds of traffic at each step, so every state really serves requests


@pytest.mark.asyncio
async def test_release_with_zero_failed_requests(tmp_path: Path, service: str) -> None:
    backend = make_backend(tmp_path, service, env="production", replicas=2, drain_timeout="5s")
    load = None
    try:
        await backend.start("1.0.0")
        url = (await backend.status()).url
        load = subprocess.Popen(
            [
                *(sys.executable, "-m", "cockpit.demo.traffic", "--target", url),
                *("--rps", str(RPS), "--paths", "/,/api/orders", "--concurrency", "256"),
            ],
            env=procs.child_env(f"{service}/load"),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        # Canary, stepped weights, promote.
        await asyncio.sleep(DWELL)
        await backend.deploy_canary("1.1.0")
        for weight in (20, 50, 100):
            await backend.set_weight(weight)
            await asyncio.sleep(DWELL)
        await backend.promote_canary()
        await asyncio.sleep(DWELL)
        # Another canary, aborted.
        await backend.deploy_canary("1.2.0")
        await backend.set_weight(50)
        await asyncio.sleep(DWELL)
        await backend.remove_canary()
        await asyncio.sleep(DWELL)
        # Rollback to the first version.
        await backend.deploy_stable("1.0.0")
        await asyncio.sleep(DWELL)
        status = await backend.status()
        assert status.stable.version == "1.0.0" and status.canary is None
    finally:
        if load is not None:
            load.send_signal(signal.SIGTERM)
            out, _ = load.communicate(timeout=30)
        await backend.close()
    summary = json.loads(out.strip().splitlines()[-1])
    n = summary["sent"]
    assert n > RPS, summary  # the release took more than a second of real traffic
    assert summary["errors"] == 0 and summary["status_5xx"] == 0, summary
    assert summary["skipped"] == 0 and summary["ok"] == n, summary
    print(f"zero-downtime: {n} requests, 0 failed")
