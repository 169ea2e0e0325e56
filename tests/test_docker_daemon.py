"""scripts/servers.sh's Docker daemon: started in a private runtime dir, and stopped with
nothing left behind - no dockerd, containerd, shim or container process, no mount - even
when the daemon died first and its containers were orphaned. And the docker fixtures'
rule: without a daemon a docker test skips, saying why, but fails in CI."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from cockpit.adapters.supervise import procs
from cockpit.demo import image

ROOT = Path(__file__).resolve().parent.parent


def servers(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ROOT / "scripts/servers.sh"), *args], capture_output=True, text=True, timeout=120
    )


def processes_naming(text: str) -> list[int]:
    """Live processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if text.encode() in cmdline and procs.alive(int(entry.name)):
                found.append(int(entry.name))
    return found


@pytest.fixture
def runtime_dir(docker_host: str) -> Iterator[Path]:  # docker_host: skip/fail as the other docker tests
    rt = Path(tempfile.mkdtemp(prefix="cdt", dir="/tmp"))  # short: socket paths < 108 chars
    yield rt
    servers("stop", str(rt))
    shutil.rmtree(rt, ignore_errors=True)


@pytest.mark.docker
@pytest.mark.parametrize("daemon", ["running", "killed"])
def test_stop_leaves_no_process_and_no_mount(runtime_dir: Path, daemon: str) -> None:
    import docker

    started = servers("start", str(runtime_dir), "docker")
    assert started.returncode == 0, started.stderr
    exports = dict(
        line.removeprefix("export ").replace("'", "").split("=", 1) for line in started.stdout.splitlines()
    )
    host = exports["DOCKER_HOST"]
    assert host == f"unix://{runtime_dir}/docker.sock" and exports["COCKPIT_TEST_DOCKER"] == "1"
    image.build(host)  # from the cache: the load alone
    client = docker.DockerClient(base_url=host)
    pids = []
    for _ in range(2):
        container = client.containers.run(
            f"{image.REPOSITORY}:1.0.0",
            ["-c", "sleep 600"],
            entrypoint=["sh"],
            detach=True,
            network_mode="host",
        )
        container.reload()
        pids.append(container.attrs["State"]["Pid"])
    client.close()
    assert all(procs.alive(p) for p in pids)
    if daemon == "killed":  # the containers are orphaned with their shims
        os.kill(int((runtime_dir / "dockerd.launch.pid").read_text()), signal.SIGKILL)

    stopped = servers("stop", str(runtime_dir))
    assert stopped.returncode == 0, stopped.stderr
    assert [p for p in pids if procs.alive(p)] == []
    assert processes_naming(f"{runtime_dir}/") == []
    assert f" {runtime_dir}/" not in Path("/proc/mounts").read_text()
    shutil.rmtree(runtime_dir)  # nothing mounted or busy: the dir goes


@pytest.mark.parametrize("ci", ["", "true"])
def test_without_a_daemon_docker_tests_skip_or_fail_in_ci(ci: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "COCKPIT_TEST_DOCKER")}
    run = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs"),
            *("-k", "unchanged_inputs", "tests/test_docker_image.py"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**env, "CI": ci},
    )
    if ci:
        assert run.returncode == 1, run.stdout
        assert "CI needs a real Docker Engine" in run.stdout
    else:
        assert run.returncode == 0, run.stdout
        assert "SKIPPED" in run.stdout and "no test Docker daemon" in run.stdout
