"""What the containers cannot say about themselves, kept in the environment's run dir.

The containers carry their version and track (labels and name); the router's weight,
its address, the adopted container and the deployment history are written here after
every change. After a crash the next ``start`` reads the weight back to rebuild the
router's table as it was; an ``attach`` in another cockpit reads the router's address and
token (so the file is written 0600, atomically: temp file then rename)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FILE_NAME = "docker-backend.json"
FORMAT = 1


@dataclass
class Deployment:
    version: str
    image_id: str
    ts: float


@dataclass
class EnvState:
    service: str
    env: str
    owner_pid: int = 0
    router_url: str = ""
    control_url: str = ""
    token: str = ""
    weight: int = 0
    adopted: dict[str, str] = field(default_factory=dict)  # container id -> track
    history: list[Deployment] = field(default_factory=list)  # oldest first
    format: int = FORMAT


def path_in(run_dir: Path) -> Path:
    return run_dir / FILE_NAME


def write(run_dir: Path, state: EnvState) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = path_in(run_dir)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(asdict(state), fh)
    os.replace(tmp, path)


def read(run_dir: Path, service: str, env: str) -> EnvState | None:
    """The state file of this service/env, ``None`` if missing, unreadable or another's."""
    try:
        data: dict[str, Any] = json.loads(path_in(run_dir).read_text())
        if data.get("format") != FORMAT or data.get("service") != service or data.get("env") != env:
            return None
        history = [Deployment(**d) for d in data.pop("history", [])]
        return EnvState(**data, history=history)
    except (OSError, ValueError, TypeError):
        return None
