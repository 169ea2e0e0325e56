"""Ownership of a running local environment: its runtime file, in its run dir.

The owner rewrites it after every change. It serves two readers: ``attach`` in another
cockpit (router address, token, which replica runs which version) and the owner's next
``start`` after a crash (which pids are leftovers to kill). It holds the router's control
token, so it is written with mode 0600. :func:`claim` and :func:`running` are those two
readings.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cockpit.adapters.base import BackendError, BackendUnavailable
from cockpit.adapters.supervise import procs

FILE_NAME = "local-backend.json"
FORMAT = 1


@dataclass
class ReplicaRecord:
    pid: int
    track: str
    version: str
    index: int
    port: int
    healthy: bool
    restarts: int = 0  # restarts after a crash since the replica was deployed
    crash_loop: bool = False  # the restart policy gave up on it
    problem: str = ""  # what is wrong with it now, "" if nothing (secrets masked)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Runtime:
    service: str
    env: str
    owner_pid: int
    marker: str  # value of the marker env var every child carries
    router_pid: int
    router_url: str
    control_url: str
    token: str
    weight: int = 0
    replicas: list[ReplicaRecord] = field(default_factory=list)
    format: int = FORMAT

    def pids(self) -> list[int]:
        return [self.router_pid, *(r.pid for r in self.replicas)]


def path_in(run_dir: Path) -> Path:
    return run_dir / FILE_NAME


def write(run_dir: Path, runtime: Runtime) -> None:
    """Atomic replace (temp file + rename) so a reader never sees half a file. The file
    is a few hundred bytes on a local disk: written inline, a thread hop would cost more."""
    target = path_in(run_dir)
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(asdict(runtime), f, indent=1)
    os.replace(tmp, target)


def read(run_dir: Path) -> Runtime | None:
    try:
        data: dict[str, Any] = json.loads(path_in(run_dir).read_text())
        if data.get("format") != FORMAT:
            return None
        replicas = [ReplicaRecord(**r) for r in data.pop("replicas", [])]
        # Written by an earlier cockpit whose backend ran the demo's traffic: that process
        # carries the marker, so claim() still finds it.
        data.pop("traffic_pid", None)
        return Runtime(**data, replicas=replicas)
    except (OSError, ValueError, TypeError):
        return None


def remove(run_dir: Path) -> None:
    path_in(run_dir).unlink(missing_ok=True)


def running(run_dir: Path, service: str, env: str) -> Runtime:
    """The environment another cockpit runs here, to attach to; BackendUnavailable if
    nothing runs (no file, or its router is gone)."""
    rt = read(run_dir)
    if rt is None:
        raise BackendUnavailable(f"nothing runs for {service}/{env}: no runtime file in {run_dir}")
    if not procs.alive(rt.router_pid):
        raise BackendUnavailable(
            f"nothing runs for {service}/{env}: its router (pid {rt.router_pid}) is gone"
        )
    return rt


def claim(run_dir: Path, service: str, env: str) -> int:
    """Make ``run_dir`` ours before a start: refuse (BackendError) while a live cockpit
    drives it; otherwise kill what a crashed earlier cockpit left running and return how
    many processes that was."""
    rt = read(run_dir)
    if rt is None:
        return 0
    router_alive = procs.alive(rt.router_pid) and procs.has_marker(rt.router_pid, rt.marker)
    if router_alive and procs.alive(rt.owner_pid):
        raise BackendError(
            f"{service}/{env} already runs, driven by cockpit pid {rt.owner_pid} "
            f"(router at {rt.router_url}); attach to it or stop that cockpit first"
        )
    killed = procs.kill_marked(rt.marker)
    remove(run_dir)
    return killed
