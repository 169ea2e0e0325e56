"""The router process on its own, with real demo services behind it."""

from __future__ import annotations

import ast
import asyncio
import collections
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from cockpit.adapters.router.protocol import TRACK_HEADER
from tests.local_fixtures import Router, free_port, hit, service_fixture, start_demo, stop, wait_http  # noqa: F401


@pytest_asyncio.fixture
async def pair(service: str):
    """Demo 1.0.0 and 1.1.0 and a router in front of them."""
    ports = free_port(), free_port()
    demos = [start_demo(service, "1.0.0", ports[0]), start_demo(service, "1.1.0", ports[1])]
    router = Router(service)
    try:
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        await asyncio.gather(*(wait_http(u + "/healthz") for u in urls), router.wait_ready())
        yield router, urls
    finally:
        stop(router.process, *demos)


@pytest.mark.asyncio
async def test_weighted_split_on_real_traffic(pair) -> None:
    router, (a, b) = pair
    await router.table([a], [b], 20)
    counts = await hit(router.url + "/", 1000)
    assert counts["1.0.0"] + counts["1.1.0"] == 1000, counts
    assert 150 <= counts["1.1.0"] <= 250, counts
    _, state = await router.control("GET", "/state")
    assert state["weight"] == 20
    assert state["requests"] == {"stable": counts["1.0.0"], "canary": counts["1.1.0"]}
    assert [u["url"] for u in state["tracks"]["canary"]] == [b]


@pytest.mark.asyncio
async def test_weight_extremes(pair) -> None:
    router, (a, b) = pair
    await router.table([a], [b], 0)
    assert await hit(router.url + "/", 100) == {"1.0.0": 100}
    await router.table([a], [b], 100)
    assert await hit(router.url + "/", 100) == {"1.1.0": 100}


@pytest.mark.asyncio
async def test_a_request_can_name_its_track_so_a_preview_at_weight_0_gets_test_traffic(pair) -> None:
    """Blue-green: the preview (canary track) takes no user traffic at weight 0, yet a
    request that asks for it by header reaches it; naming an empty track falls back."""
    router, (a, b) = pair
    await router.table([a], [b], 0)
    async with aiohttp.ClientSession() as s:
        for asked, version in (("canary", "1.1.0"), ("Canary", "1.1.0"), ("stable", "1.0.0")):
            async with s.get(router.url + "/", headers={TRACK_HEADER: asked}) as r:
                assert (await r.json())["version"] == version and r.headers[TRACK_HEADER] == asked.lower()
        await router.table([a], [], 0)
        async with s.get(router.url + "/", headers={TRACK_HEADER: "canary"}) as r:
            assert (await r.json())["version"] == "1.0.0" and r.headers[TRACK_HEADER] == "stable"
    assert await hit(router.url + "/", 50) == {"1.0.0": 50}  # without the header: the weight


@pytest.mark.asyncio
async def test_atomic_table_swap_under_load(pair) -> None:
    """Swap the whole table back and forth while requests flow: none fails, and once
    a swap has returned every new request follows the new table."""
    router, (a, b) = pair
    await router.table([a])
    stop_load = asyncio.Event()
    results: list[int] = []

    async def load() -> None:
        async with aiohttp.ClientSession() as s:
            while not stop_load.is_set():
                async with s.get(router.url + "/api/orders") as r:
                    await r.read()
                    results.append(r.status)

    loaders = [asyncio.create_task(load()) for _ in range(8)]
    for i in range(30):
        state = await router.table(
            [b] if i % 2 == 0 else [a], [a] if i % 3 == 0 else [], 50 if i % 3 == 0 else 0
        )
        assert state["table_version"] == i + 2
        await asyncio.sleep(0.02)
    stop_load.set()
    await asyncio.gather(*loaders)
    assert results and set(results) == {200}
    await router.table([b])
    assert await hit(router.url + "/", 50) == {"1.1.0": 50}


@pytest.mark.asyncio
async def test_retry_when_an_upstream_refuses(pair) -> None:
    router, (a, b) = pair
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    await router.table([dead, a])
    assert await hit(router.url + "/", 100) == {"1.0.0": 100}
    # Only the canary track is left alive: the router falls back to it.
    await router.table([dead], [b], 0)
    async with aiohttp.ClientSession() as s, s.get(router.url + "/") as r:
        assert r.status == 200
        assert r.headers[TRACK_HEADER] == "canary"
    _, state = await router.control("GET", "/state")
    assert state["failed"] == 0
    assert state["retries"] >= 1
    assert state["tracks"]["stable"][0]["connect_failures"] >= 1


@pytest.mark.asyncio
async def test_no_upstream_gives_502_or_503(pair) -> None:
    router, _ = pair
    await router.table([])
    async with aiohttp.ClientSession() as s:
        async with s.get(router.url + "/") as r:
            assert r.status == 503
        await router.table([f"http://127.0.0.1:{free_port()}"])
        async with s.get(router.url + "/") as r:
            assert r.status == 502


@pytest.mark.asyncio
async def test_drain_waits_for_requests_in_flight(service: str) -> None:
    port = free_port()
    slow = start_demo(service, "1.2.0", port)  # /api/checkout takes 150-400 ms on 1.2.0
    router = Router(service)
    try:
        url = f"http://127.0.0.1:{port}"
        await asyncio.gather(wait_http(url + "/healthz"), router.wait_ready())
        await router.table([url])
        async with aiohttp.ClientSession() as s:
            request = asyncio.create_task(s.get(router.url + "/api/checkout"))
            await asyncio.sleep(0.05)  # the request is now in flight on the slow upstream
            await router.table([])
            started = time.monotonic()
            status, result = await router.control("POST", "/drain", {"urls": [url], "timeout": 5})
            waited = time.monotonic() - started
            response = await request
            assert response.status in (200, 500)  # 1.2.0's own answer, not a router error
            assert response.headers[TRACK_HEADER] == "stable"
            response.release()
        assert status == 200 and result == {"drained": True, "in_flight": {}}
        assert waited >= 0.05
    finally:
        stop(router.process, slow)


@pytest.mark.asyncio
async def test_control_api_checks_token_and_input(pair) -> None:
    router, (a, _) = pair
    async with aiohttp.ClientSession() as s, s.get(router.control_url + "/state") as r:
        assert r.status == 403
    status, body = await router.control("PUT", "/table", {"stable": [a], "weight": 101})
    assert status == 400 and "0..100" in body["error"]
    status, body = await router.control("PUT", "/table", {"stable": ["not a url"]})
    assert status == 400


@pytest.mark.asyncio
async def test_split_is_fair_per_client_when_another_client_interleaves(pair) -> None:
    """Client A sends 2,000 requests one after the other; between two of A's requests,
    client B sends four. A shared credit counter would give A the canary every time or
    never (A is always the 5th request of 5 at weight 20); a draw per request gives A 20 %."""
    router, (a, b) = pair
    await router.table([a], [b], 20)
    seen: collections.Counter[str] = collections.Counter()
    url = router.url + "/healthz"  # no service-side delay: 10,000 requests stay quick
    async with aiohttp.ClientSession() as client_a, aiohttp.ClientSession() as client_b:

        async def one(session: aiohttp.ClientSession) -> str:
            async with session.get(url) as r:
                await r.read()
                assert r.status == 200
                return r.headers[TRACK_HEADER]

        for _ in range(2000):
            seen[await one(client_a)] += 1
            await asyncio.gather(*(one(client_b) for _ in range(4)))
    share = 100 * seen["canary"] / 2000
    print(f"canary share seen by one client at weight 20: {share:.1f} % of 2000 requests")
    assert seen["stable"] + seen["canary"] == 2000
    assert 17 <= share <= 23, seen  # sd 0.9 points: 3 points is 3.4 sd


# --------------------------------------------------------------------------- the package


ADAPTERS = Path(__file__).resolve().parent.parent / "cockpit" / "adapters"


def cockpit_imports(package: str) -> dict[str, set[str]]:
    """``{module file: cockpit modules it imports}`` for every module of ``package``."""
    found: dict[str, set[str]] = {}
    for path in sorted((ADAPTERS / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        found[path.name] = {n for n in names if n.startswith("cockpit")}
    return found


@pytest.mark.parametrize("package", ["router", "supervise"])
def test_router_and_supervision_owe_nothing_to_the_local_backend(package: str) -> None:
    """Any backend can run the router in front of its workloads, and supervise children."""
    for module, names in cockpit_imports(package).items():
        assert not {n for n in names if n.startswith("cockpit.adapters.local")}, (package, module)
        if package == "supervise":  # below the router: the router uses it, not the reverse
            assert not {n for n in names if n.startswith("cockpit.adapters.router")}, module


def test_the_router_process_starts_light() -> None:
    """``python -m cockpit.adapters.router`` loads the server and the protocol only: no
    backend, no pydantic, no control client (it would slow down every restart)."""
    code = (
        "import runpy, sys; sys.argv = ['router', '--help']\n"
        "try:\n    runpy.run_module('cockpit.adapters.router', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('cockpit') or m == 'pydantic'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True)
    loaded = ast.literal_eval(out.stdout.strip().splitlines()[-1])
    assert loaded == [
        "cockpit",
        "cockpit.adapters",
        "cockpit.adapters.router",
        "cockpit.adapters.router.protocol",
        "cockpit.adapters.router.server",
    ], loaded
