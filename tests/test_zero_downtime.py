"""No request fails while a release walks every cut-over the local backend has.

Two kinds of load run the whole time:

* GETs from a separate load generator process (the demo traffic generator), whose summary
  counts every request it sent. The router retries a GET elsewhere when its upstream goes
  away, so GETs alone would not notice a replica stopped under a request.
* POSTs from this test, each held in flight 0.2 s by the service (``?sleep=``). A POST is
  never retried, and the replicas run with ``--shutdown-timeout 0.01`` (a service that drops
  what is in flight when told to stop): only the router's drain before a retired replica
  is stopped keeps these POSTs whole.

At each canary weight the router's own counters must show the canary serving its share."""

from __future__ import annotations

import asyncio
import json
import math
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from cockpit.adapters.local import LocalBackend, runtime
from cockpit.adapters.local.options import DEMO_COMMAND
from cockpit.adapters.router import RouterControl
from cockpit.adapters.router.protocol import TRACK_HEADER
from cockpit.adapters.supervise import procs
from tests.local_fixtures import make_backend, service_fixture  # noqa: F401

RPS = 300
DWELL = 0.4  # seconds of traffic at each step, so every state really serves requests
WEIGHT_DWELL = 0.8  # longer at each weight: enough requests to measure the split
POSTERS = 12
POST_SLEEP = 0.2


class Posts:
    """Workers that POST in a loop until stopped; every answer is counted."""

    def __init__(self, url: str) -> None:
        self.url = f"{url}/api/orders?sleep={POST_SLEEP}"
        self.answers: Counter[str] = Counter()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Posts:
        self._session = aiohttp.ClientSession()
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(POSTERS)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)
        await self._session.close()

    async def _worker(self) -> None:
        while not self._stop.is_set():
            try:
                async with self._session.post(self.url, json={"item": "demo"}) as r:
                    await r.read()
                    key = f"{r.status} {r.headers.get(TRACK_HEADER, '?')}"
            except aiohttp.ClientError as exc:
                key = f"error {type(exc).__name__}"
            self.answers[key] += 1


async def canary_share_at(backend: LocalBackend, control: RouterControl, weight: int) -> tuple[float, int]:
    """Set the weight, let traffic flow, and return the canary's share of what the router
    served meanwhile (its own per-track counters) and how many requests that was."""
    await backend.set_weight(weight)
    await asyncio.sleep(POST_SLEEP + 0.1)  # requests picked at the previous weight are done
    before = (await control.state())["requests"]
    await asyncio.sleep(WEIGHT_DWELL)
    after = (await control.state())["requests"]
    canary = after["canary"] - before["canary"]
    n = canary + after["stable"] - before["stable"]
    return (100 * canary / n if n else 0.0), n


def assert_share(weight: int, share: float, n: int) -> None:
    # 4.5 standard deviations of a binomial share over the n requests actually served
    # (fewer on a loaded machine, so a wider bound), never tighter than 5 points.
    assert n >= 50, f"only {n} requests at weight {weight}"
    sd = 100 * math.sqrt(weight / 100 * (1 - weight / 100) / n)
    tolerance = max(5.0, 4.5 * sd)
    assert abs(share - weight) <= tolerance, f"canary served {share:.1f} % at weight {weight} (n={n})"


@pytest.mark.asyncio
async def test_release_with_zero_failed_requests(tmp_path: Path, service: str) -> None:
    backend = make_backend(
        tmp_path,
        service,
        env="production",
        replicas=2,
        drain_timeout="5s",
        command=[*DEMO_COMMAND, "--shutdown-timeout", "0.01"],
    )
    load = None
    shares: list[str] = []
    try:
        await backend.start("1.0.0")
        url = (await backend.status()).url
        assert url is not None
        rt = runtime.read(tmp_path)
        assert rt is not None
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
        async with aiohttp.ClientSession() as session, Posts(url) as posts:
            control = RouterControl(session, rt.control_url, rt.token, "production")
            # Canary, stepped weights (each measured), promote.
            await asyncio.sleep(DWELL)
            await backend.deploy_canary("1.1.0")
            for weight in (20, 50, 100):
                share, n = await canary_share_at(backend, control, weight)
                shares.append(f"{weight} %: {share:.1f} % of {n}")
                assert_share(weight, share, n)
            await backend.promote_canary()
            await asyncio.sleep(DWELL)
            # Another canary, aborted while it serves half the traffic (POSTs in flight on it).
            await backend.deploy_canary("1.2.0")
            share, n = await canary_share_at(backend, control, 50)
            shares.append(f"50 %: {share:.1f} % of {n}")
            assert_share(50, share, n)
            await backend.remove_canary()
            await asyncio.sleep(DWELL)
            # Rollback to the first version: every POST in flight is on the retired stable.
            await backend.deploy_stable("1.0.0")
            await asyncio.sleep(DWELL)
        status = await backend.status()
        assert status.stable is not None and status.stable.version == "1.0.0" and status.canary is None
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
    posted = sum(posts.answers.values())
    created = sum(v for k, v in posts.answers.items() if k.startswith("201 "))
    assert posted > 50 and created == posted, posts.answers
    print(f"zero-downtime: {n} GETs and {posted} POSTs, 0 failed; canary share at " + "; ".join(shares))
