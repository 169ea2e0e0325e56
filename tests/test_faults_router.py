"""The router under faults: killed, stopped, crashing in a loop, its log pipe closed.

Real processes and sockets throughout: the local backend (or the router handle) starts a
real router process and the tests send it signals."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from cockpit.adapters.base import BackendUnavailable, LogLine, PortInUse
from cockpit.adapters.local import runtime
from cockpit.adapters.router import RouterHandle
from cockpit.adapters.router.protocol import TOKEN_HEADER, TRACK_HEADER
from cockpit.adapters.supervise import procs
from cockpit.adapters.supervise.logs import LogHub
from tests.local_fixtures import (  # noqa: F401
    free_port,
    make_backend,
    marker_env,
    service_fixture,
    start_demo,
    stop,
    wait_http,
)

RECOVERY_LIMIT = 2.0  # seconds from kill -9 to a router that serves its table again


def router_pid(run_dir: Path) -> int:
    rt = runtime.read(run_dir)
    assert rt is not None
    return rt.router_pid


async def first_answer(url: str, timeout: float = 10.0) -> tuple[int, float]:
    """The status of one GET to ``url`` and when it was answered (monotonic). Not
    retried: a connection refused or reset is a failure."""
    async with (
        aiohttp.ClientSession() as s,
        s.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as r,
    ):
        await r.read()
        return r.status, time.monotonic()


async def tracks(url: str, n: int) -> Counter[str]:
    """Send ``n`` GETs, 8 at a time; count the answers by the track that served them."""
    counts: Counter[str] = Counter()
    sem = asyncio.Semaphore(8)
    async with aiohttp.ClientSession() as s:

        async def one() -> None:
            async with sem, s.get(url) as r:
                await r.read()
                counts[r.headers.get(TRACK_HEADER, "?") if r.status == 200 else f"http {r.status}"] += 1

        await asyncio.gather(*(one() for _ in range(n)))
    return counts


async def until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def wait_for_line(lines: list[LogLine], needle: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        found = [line.text for line in lines if needle in line.text]
        if found:
            return found[-1]
        assert time.monotonic() < deadline, f"no log line with {needle!r}: {[x.text for x in lines][-10:]}"
        await asyncio.sleep(0.02)


@pytest.mark.asyncio
async def test_kill_9_router_comes_back_on_its_port_with_its_table(tmp_path: Path, service: str) -> None:
    backend = make_backend(tmp_path, service, replicas=1)
    lines: list[LogLine] = []
    backend.attach_log_sink(lines.extend)
    try:
        await backend.start("1.0.0")
        await backend.deploy_canary("1.1.0")
        await backend.set_weight(30)
        url = (await backend.status()).url
        assert url is not None
        old_pid = router_pid(tmp_path)

        os.kill(old_pid, signal.SIGKILL)
        killed = time.monotonic()
        # The port stays ours while the router is dead: this request waits in the backlog
        # and the restarted router answers it.
        status, answered = await first_answer(url + "/")
        recovery = answered - killed
        print(f"router kill -9: first request answered {recovery:.2f}s after the kill")
        assert status == 200
        assert recovery < RECOVERY_LIMIT

        line = await wait_for_line(lines, "router died", RECOVERY_LIMIT)
        assert "signal SIGKILL" in line and "restarted in" in line and "table restored" in line, line
        new_pid = router_pid(tmp_path)  # the runtime file names the new router
        assert new_pid != old_pid and procs.alive(new_pid)

        observed = await backend.status()
        assert observed.url == url
        assert observed.weight == 30
        assert observed.stable is not None and observed.stable.version == "1.0.0"
        assert observed.canary is not None and observed.canary.version == "1.1.0"
        counts = await tracks(url + "/", 400)
        assert counts["stable"] + counts["canary"] == 400, counts
        assert 80 <= counts["canary"] <= 160, counts  # 30 % of 400 is 120, sd 9
    finally:
        await backend.close()


@pytest.mark.asyncio
async def test_an_abort_while_the_router_is_dead_succeeds(tmp_path: Path, service: str) -> None:
    """The reported failure: the router died, the abort that followed failed too."""
    backend = make_backend(tmp_path, service, replicas=1)
    try:
        await backend.start("1.0.0")
        await backend.deploy_canary("1.1.0")
        await backend.set_weight(50)
        url = (await backend.status()).url
        assert url is not None
        os.kill(router_pid(tmp_path), signal.SIGKILL)
        started = time.monotonic()
        await backend.remove_canary()  # waits for the restart instead of failing
        print(f"abort during a router restart took {time.monotonic() - started:.2f}s")
        observed = await backend.status()
        assert observed.canary is None and observed.weight == 0
        assert await tracks(url + "/", 50) == {"stable": 50}
    finally:
        await backend.close()


@pytest.mark.asyncio
async def test_a_stopped_router_gives_a_clear_timeout(tmp_path: Path, service: str) -> None:
    backend = make_backend(tmp_path, service, replicas=1)
    try:
        await backend.start("1.0.0")
        pid = router_pid(tmp_path)
        os.kill(pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(BackendUnavailable) as caught:
                await backend.status()
            waited = time.monotonic() - started
        finally:
            os.kill(pid, signal.SIGCONT)
        message = str(caught.value)
        print(f"stopped router: status() failed after {waited:.2f}s: {message}")
        assert waited < 4.0
        assert "did not answer GET /state within 2s" in message, message
        assert f"pid {pid}) is stopped" in message, message
        assert "\n" not in message
        # Continued, it answers again; it was never restarted (a stopped router is not dead).
        assert (await backend.status()).stable is not None
        assert router_pid(tmp_path) == pid
    finally:
        await backend.close()


@pytest.mark.asyncio
async def test_a_router_that_keeps_dying_is_reported_as_a_crash_loop(service: str) -> None:
    logs = LogHub("test", notes_source="local")
    lines: list[LogLine] = []
    logs.attach(lines.extend)
    listen, control = procs.bind_listener(0, "test"), procs.bind_listener(0, "test")
    port = listen.getsockname()[1]
    async with aiohttp.ClientSession() as session:
        handle = RouterHandle(
            env="test",
            marker=f"{service}/router",
            token="t",
            session=session,
            logs=logs,
            backoff=(0.0,),
            crash_loop_deaths=3,
        )
        try:
            await handle.start(listen, control)
            await handle.put_table(["http://127.0.0.1:9"], [], 0)
            for death in range(1, 4):
                pid = handle.pid
                os.kill(pid, signal.SIGKILL)
                if death < 3:
                    await until(lambda: handle.restarts == death)  # noqa: B023 - awaited here
                    assert handle.pid != pid and (await handle.state())["pid"] == handle.pid
            await until(lambda: handle.crash_loop)
            assert "died 3 times within 60s" in handle.problem and "crash loop" in handle.problem
            with pytest.raises(BackendUnavailable, match="crash loop"):
                await handle.put_table([], [], 0)
            assert any("crash loop" in line.text for line in lines)
            # Nobody else can take the port while the environment is in a crash loop.
            with pytest.raises(PortInUse):
                procs.bind_listener(port, "test")
        finally:
            await handle.stop()
    procs.bind_listener(port, "test").close()  # released once the handle is stopped


@pytest.mark.asyncio
async def test_router_survives_a_closed_log_pipe(service: str) -> None:
    """The cockpit stops reading the router's stdout: the router must keep routing."""
    demo_port = free_port()
    demo = start_demo(service, "1.0.0", demo_port)
    listen, control = procs.bind_listener(0, "test"), procs.bind_listener(0, "test")
    env = marker_env(service)
    env["COCKPIT_ROUTER_TOKEN"] = "t"
    router = subprocess.Popen(
        [
            *(sys.executable, "-m", "cockpit.adapters.router"),
            *("--listen-fd", str(listen.fileno()), "--control-fd", str(control.fileno())),
        ],
        env=env,
        pass_fds=(listen.fileno(), control.fileno()),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{listen.getsockname()[1]}"
    control_url = f"http://127.0.0.1:{control.getsockname()[1]}"
    listen.close()
    control.close()
    try:
        await wait_http(f"http://127.0.0.1:{demo_port}/healthz")
        assert router.stdout is not None
        json.loads(router.stdout.readline())  # "router started": it is up
        router.stdout.close()  # the read end is gone: its next log line meets EPIPE
        table = {"stable": [f"http://127.0.0.1:{demo_port}"], "canary": [], "weight": 0}
        async with aiohttp.ClientSession() as s:
            for _ in range(2):  # the second line is written after the first one failed
                async with s.put(control_url + "/table", json=table, headers={TOKEN_HEADER: "t"}) as r:
                    assert r.status == 200, await r.text()
            async with s.get(url + "/") as r:
                assert r.status == 200 and (await r.json())["version"] == "1.0.0"
        assert router.poll() is None
    finally:
        stop(router, demo)


@pytest.mark.asyncio
async def test_a_drain_cut_by_the_routers_death_is_answered_by_the_new_router(service: str) -> None:
    """The router dies while the cockpit waits on a drain: the request it waited for died
    with the router, so the restarted router answers the (repeated) drain, not an error."""
    demo_port = free_port()
    demo = start_demo(service, "1.0.0", demo_port)
    upstream = f"http://127.0.0.1:{demo_port}"
    listen, control = procs.bind_listener(0, "test"), procs.bind_listener(0, "test")
    async with aiohttp.ClientSession() as session:
        handle = RouterHandle(
            env="test",
            marker=f"{service}/router",
            token="t",
            session=session,
            logs=LogHub("test", notes_source="local"),
        )
        try:
            await asyncio.gather(wait_http(upstream + "/healthz"), handle.start(listen, control))
            await handle.put_table([upstream], [], 0)
            slow = asyncio.ensure_future(session.post(handle.router_url + "/api/orders?sleep=1.5"))
            for _ in range(100):  # until the router has the POST in flight on the upstream
                if (await handle.state())["tracks"]["stable"][0]["in_flight"]:
                    break
                await asyncio.sleep(0.02)
            await handle.put_table([], [], 0)
            drain = asyncio.ensure_future(handle.drain([upstream], 10))
            await asyncio.sleep(0.2)
            assert not drain.done()  # waiting for the slow POST
            os.kill(handle.pid, signal.SIGKILL)
            result = await asyncio.wait_for(drain, 5)
            assert result.drained and result.in_flight == {}
            with pytest.raises(aiohttp.ClientError):
                await slow  # it died with the router: nothing of it is in flight any more
        finally:
            await handle.stop()
            stop(demo)

