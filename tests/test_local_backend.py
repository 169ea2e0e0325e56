"""The local backend with real processes: lifecycle, typed errors, logs, attach, orphans."""

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
from pathlib import Path

import pytest

from cockpit.adapters.base import (
    BackendError,
    BackendUnavailable,
    HealthCheckFailed,
    LogLine,
    PortInUse,
    Track,
    VersionNotFound,
)
from cockpit.adapters.local import runtime
from cockpit.adapters.supervise import procs
from tests.local_fixtures import ROOT, free_port, hit, live_marked, make_backend, service_fixture, wait_gone  # noqa: F401

# A replica command whose behaviour depends on the version: "broken" never becomes
# healthy (and says why on stderr), "crash" exits at once, anything else is the demo.
FLAKY = textwrap.dedent(
    """
    import runpy, sys, time
    version, port = sys.argv[1], sys.argv[2]
    if version == "broken":
        print("db connection refused", file=sys.stderr, flush=True)
        time.sleep(60)
    elif version == "crash":
        print("config file missing", file=sys.stderr, flush=True)
        sys.exit(3)
    sys.argv = ["service", "--version", version, "--port", port]
    runpy.run_module("cockpit.demo.service", run_name="__main__")
    """
)
FLAKY_COMMAND = ["{python}", "-c", FLAKY, "{version}", "{port}"]


def pids_of(run_dir: Path) -> list[int]:
    rt = runtime.read(run_dir)
    assert rt is not None
    return rt.pids()


@pytest.mark.asyncio
async def test_release_lifecycle(tmp_path: Path, service: str) -> None:
    backend = make_backend(tmp_path, service, replicas=2)
    try:
        await backend.start("1.0.0")
        st = await backend.status()
        assert st.stable is not None and st.stable.version == "1.0.0" and st.stable.healthy
        assert st.stable.replicas_ready == 2 and st.canary is None and st.weight == 0
        assert st.url is not None and st.url.startswith("http://127.0.0.1:")
        assert await hit(st.url + "/", 40) == {"1.0.0": 40}
        first_stable = pids_of(tmp_path)[1:]

        await backend.deploy_canary("1.1.0")
        st = await backend.status()
        assert st.canary is not None and st.canary.version == "1.1.0" and st.canary.healthy
        assert st.weight == 0
        assert await hit(st.url + "/", 40) == {"1.0.0": 40}  # weight 0: no canary traffic
        targets = backend.scrape_targets()
        assert len(targets[Track.STABLE]) == 2 and len(targets[Track.CANARY]) == 2

        await backend.set_weight(30)
        assert (await backend.status()).weight == 30
        counts = await hit(st.url + "/", 200)
        assert counts["1.0.0"] + counts["1.1.0"] == 200
        assert 40 <= counts["1.1.0"] <= 80, counts

        await backend.promote_canary()
        st = await backend.status()
        assert st.stable is not None and st.stable.version == "1.1.0" and st.canary is None
        assert st.weight == 0
        assert await hit(st.url + "/", 40) == {"1.1.0": 40}
        assert wait_gone(first_stable, 5) == []  # the old stable was retired

        await backend.deploy_canary("1.2.0")
        await backend.set_weight(50)
        await backend.remove_canary()
        st = await backend.status()
        assert st.canary is None and st.weight == 0 and st.stable.version == "1.1.0"
        await backend.remove_canary()  # aborting twice is harmless

        await backend.deploy_stable("1.0.0")  # rollback
        st = await backend.status()
        assert st.stable.version == "1.0.0" and st.stable.replicas_ready == 2 and st.canary is None
        assert await hit(st.url + "/", 40) == {"1.0.0": 40}
        assert len(runtime.read(tmp_path).replicas) == 2
    finally:
        await backend.close()
    assert runtime.read(tmp_path) is None


@pytest.mark.asyncio
async def test_typed_errors_for_versions_and_weights(tmp_path: Path, service: str) -> None:
    backend = make_backend(tmp_path, service)
    with pytest.raises(VersionNotFound, match=r"known versions: 1\.0\.0, 1\.1\.0, 1\.2\.0"):
        await backend.start("0.9.0")
    try:
        await backend.start("1.0.0")
        with pytest.raises(VersionNotFound, match=r"'9\.9\.9'"):
            await backend.deploy_canary("9.9.9")
        with pytest.raises(VersionNotFound):
            await backend.deploy_stable("9.9.9")
        with pytest.raises(BackendError, match="no canary"):
            await backend.set_weight(10)
        with pytest.raises(BackendError, match="no canary"):
            await backend.promote_canary()
        await backend.deploy_canary("1.1.0")
        for bad in (-1, 101, 50.5):
            with pytest.raises(BackendError, match="0 to 100"):
                await backend.set_weight(bad)  # type: ignore[arg-type]
        assert (await backend.status()).weight == 0
        assert list(await backend.versions()) == ["1.0.0", "1.1.0", "1.2.0"]
    finally:
        await backend.close()


@pytest.mark.asyncio
async def test_port_in_use(tmp_path: Path, service: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        backend = make_backend(tmp_path, service, env="production", port=port)
        with pytest.raises(PortInUse) as err:
            await backend.start("1.0.0")
        assert str(err.value) == f"port {port} on 127.0.0.1 is already in use (environment production)"
        await backend.close()


@pytest.mark.asyncio
async def test_fixed_router_port(tmp_path: Path, service: str) -> None:
    port = free_port()
    backend = make_backend(tmp_path, service, port=port)
    try:
        await backend.start("1.0.0")
        assert (await backend.status()).url == f"http://127.0.0.1:{port}"
    finally:
        await backend.close()


@pytest.mark.asyncio
async def test_health_check_failures(tmp_path: Path, service: str) -> None:
    backend = make_backend(
        tmp_path,
        service,
        command=FLAKY_COMMAND,
        versions=["1.0.0", "broken", "crash"],
        health_timeout="1500ms",
    )
    with pytest.raises(HealthCheckFailed, match="db connection refused") as err:
        await backend.start("broken")
    assert "within 1.5s" in str(err.value) and "connection refused" in str(err.value)
    assert live_marked(service + "/") == []
    try:
        await backend.start("1.0.0")
        started = time.monotonic()
        with pytest.raises(HealthCheckFailed, match=r"exited with code 3.*config file missing"):
            await backend.deploy_canary("crash")
        assert time.monotonic() - started < 1.4  # an exit fails fast, not at the 1.5 s deadline
        with pytest.raises(HealthCheckFailed, match="did not answer /healthz"):
            await backend.deploy_stable("broken")
        st = await backend.status()  # nothing changed: stable still serves, no canary
        assert st.stable.version == "1.0.0" and st.stable.healthy and st.canary is None
        assert await hit(st.url + "/", 20) == {"1.0.0": 20}
        assert len(runtime.read(tmp_path).replicas) == 1
    finally:
        await backend.close()


@pytest.mark.asyncio
async def test_logs_reach_the_sink(tmp_path: Path, service: str) -> None:
    lines: list[LogLine] = []
    backend = make_backend(tmp_path, service, env="dev")
    try:
        await backend.start("1.0.0")
        backend.attach_log_sink(lines.extend)  # attached late: the start-up lines were kept
        await backend.deploy_canary("1.1.0")
        await backend.set_weight(100)
        await hit((await backend.status()).url + "/api/orders", 10)
        await asyncio.sleep(0.3)
    finally:
        await backend.close()
    sources = {line.source for line in lines}
    assert {"router", "stable 1.0.0 #1", "canary 1.1.0 #1"} <= sources, sources
    assert all(line.env == "dev" for line in lines)
    router = [line for line in lines if line.source == "router"]
    assert any("router started" in line.text for line in router)
    assert any("routing table changed" in line.text for line in router)
    assert all(line.track is None for line in router)
    canary = [line for line in lines if line.source == "canary 1.1.0 #1"]
    assert all(line.track is Track.CANARY for line in canary)
    requests = [json.loads(line.text) for line in canary if '"msg":"request"' in line.text]
    assert len(requests) == 10 and {r["path"] for r in requests} == {"/api/orders"}
    stable_start = [line for line in lines if line.source == "stable 1.0.0 #1" and '"started"' in line.text]
    assert stable_start and stable_start[0].track is Track.STABLE


@pytest.mark.asyncio
async def test_attach_is_read_only(tmp_path: Path, service: str) -> None:
    watcher = make_backend(tmp_path, service)
    with pytest.raises(BackendUnavailable, match="no runtime file"):
        await watcher.attach()
    owner = make_backend(tmp_path, service)
    try:
        await owner.start("1.0.0")
        await owner.deploy_canary("1.1.0")
        await owner.set_weight(40)
        watcher = make_backend(tmp_path, service)
        await watcher.attach()
        seen = await watcher.status()
        assert seen.stable.version == "1.0.0" and seen.canary.version == "1.1.0"
        assert seen.weight == 40 and seen.url == (await owner.status()).url
        assert "read-only" in seen.detail
        assert watcher.scrape_targets() == owner.scrape_targets()
        with pytest.raises(BackendError, match="read-only"):
            await watcher.set_weight(50)
        await owner.promote_canary()  # the watcher follows what the owner does
        seen = await watcher.status()
        assert seen.stable.version == "1.1.0" and seen.canary is None
        # A second owner of the same environment is refused.
        with pytest.raises(BackendError, match="already runs"):
            await make_backend(tmp_path, service).start("1.0.0")
    finally:
        await owner.close()
    with pytest.raises(BackendUnavailable):
        await watcher.status()
    await watcher.close()
    with pytest.raises(BackendUnavailable):
        await make_backend(tmp_path, service).attach()


@pytest.mark.asyncio
async def test_close_leaves_no_process(tmp_path: Path, service: str) -> None:
    backend = make_backend(tmp_path, service, replicas=2)
    await backend.start("1.0.0")
    await backend.deploy_canary("1.1.0")
    pids = pids_of(tmp_path)
    assert len(pids) == 5 and all(procs.alive(p) for p in pids)  # router, 4 replicas
    await backend.close()
    await backend.close()  # idempotent
    assert wait_gone(pids, 1) == []


OWNER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from cockpit.adapters.base import AdapterContext
    from cockpit.adapters.local import LocalBackend
    from cockpit.adapters.supervise.logs import LogHub
    from cockpit.demo.load import TrafficSettings, spawn_traffic

    async def main():
        ctx = AdapterContext(service=sys.argv[1], env="dev", run_dir=Path(sys.argv[2]))
        options = LocalBackend.Options(versions=["1.0.0", "1.1.0"], replicas=2)
        backend = LocalBackend(ctx, options)
        await backend.start("1.0.0")
        await backend.deploy_canary("1.1.0")
        # The demo's users, spawned as `cockpit demo` does: they must die with us too.
        url = (await backend.status()).url
        logs = LogHub("dev", notes_source="demo")
        traffic = await spawn_traffic(url, TrafficSettings(20, ("/",)), sys.argv[1] + "/dev/traffic", logs)
        print("ready", traffic.pid, flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


def run_owner(name: str, run_dir: Path) -> subprocess.Popen[str]:
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, name, str(run_dir)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert owner.stdout is not None
    word, traffic = owner.stdout.readline().split()
    assert word == "ready"
    owner.traffic_pid = int(traffic)  # type: ignore[attr-defined]
    return owner


@pytest.mark.asyncio
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
async def test_no_orphans_when_the_cockpit_dies(tmp_path: Path, service: str, sig: int) -> None:
    owner = await asyncio.to_thread(run_owner, service, tmp_path)
    pids = [*pids_of(tmp_path), owner.traffic_pid]  # type: ignore[attr-defined]
    assert len(pids) == 6 and all(procs.alive(p) for p in pids)  # router, 4 replicas, traffic
    owner.send_signal(sig)
    owner.wait(5)
    owner.stdout.close()
    assert wait_gone(pids, 5) == [], "children outlived their cockpit"

    # The next cockpit finds the stale runtime file and starts cleanly.
    backend = make_backend(tmp_path, service, env="dev")
    try:
        await backend.start("1.0.0")
        assert (await backend.status()).stable.healthy
    finally:
        await backend.close()


@pytest.mark.asyncio
async def test_start_kills_marked_leftovers_only(tmp_path: Path, service: str) -> None:
    """A stale runtime file names one process that is ours (marker) and one that is not
    (a recycled pid): only ours is killed."""
    marker = f"{service}/dev/old-run"
    ours = subprocess.Popen(["sleep", "60"], env=procs.child_env(marker), start_new_session=True)
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        tmp_path.mkdir(exist_ok=True)
        runtime.write(
            tmp_path,
            runtime.Runtime(
                service=service,
                env="dev",
                owner_pid=999_999,
                marker=marker,
                router_pid=stranger.pid,
                router_url="http://127.0.0.1:1",
                control_url="http://127.0.0.1:1",
                token="x",
                replicas=[runtime.ReplicaRecord(ours.pid, "stable", "1.0.0", 1, 1, True)],
            ),
        )
        backend = make_backend(tmp_path, service, env="dev")
        try:
            await backend.start("1.0.0")
        finally:
            await backend.close()
        assert ours.wait(5) == -signal.SIGKILL
        assert stranger.poll() is None
    finally:
        for p in (ours, stranger):
            p.kill()
            p.wait()


def test_options_are_strict_and_documented() -> None:
    from pydantic import ValidationError

    from cockpit.adapters.local import LocalBackend

    opts = LocalBackend.Options(versions=["1"], health_timeout="500ms", drain_timeout="2m")
    assert opts.health_timeout == 0.5 and opts.drain_timeout == 120.0
    assert opts.command[:3] == ["{python}", "-m", "cockpit.demo.service"]
    assert all(f.description for f in LocalBackend.Options.model_fields.values())
    restart = LocalBackend.Options(versions=["1"], restart={"backoff": "250ms", "window": "2m"}).restart
    assert (restart.policy, restart.max_restarts, restart.backoff, restart.window) == ("on-failure", 5, 0.25, 120.0)
    assert all(f.description for f in type(restart).model_fields.values())
    for bad in (
        {"versions": ["1"], "replica": 2},  # unknown key
        {"versions": ["1"], "replicas": 9},
        {"versions": []},
        {"versions": ["1", "1"]},
        {"versions": ["1"], "command": ["run", "{verison}"]},
        {"versions": ["1"], "health_path": "healthz"},
        {"versions": ["1"], "port": 70000},
        {"versions": ["1"], "restart": {"policy": "always"}},
        {"versions": ["1"], "restart": {"max_restart": 3}},
        {"versions": ["1"], "restart": {"backoff": "soon"}},
        {"versions": ["1"], "health_interval": "0s"},
        {"versions": ["1"], "health_failures": 0},
    ):
        with pytest.raises(ValidationError):
            LocalBackend.Options(**bad)
