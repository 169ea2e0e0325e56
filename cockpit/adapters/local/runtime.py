"""The runtime file: what a running local environment consists of, in its run dir.

The owner rewrites it after every change. It serves two readers: ``attach`` in another
cockpit (router address, token, which replica runs which version) and the owner's next
``start`` after a crash (which pids are leftovers to kill). It holds the router's control
token, so it is written with mode 0600.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

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
    traffic_pid: int | None = None
    replicas: list[ReplicaRecord] = field(default_factory=list)
    format: int = FORMAT

    def pids(self) -> list[int]:
        pids = [self.router_pid, *(r.pid for r in self.replicas)]
        return pids + ([self.traffic_pid] if self.traffic_pid else [])


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
        return Runtime(**data, replicas=replicas)
    except (OSError, ValueError, TypeError):
        return None


def remove(run_dir: Path) -> None:
    path_in(run_dir).unlink(missing_ok=True)
