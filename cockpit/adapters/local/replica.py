"""One replica of a version (a supervised process on its own port) and a track's
observed status made of them."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from cockpit.adapters.base import Track, TrackStatus
from cockpit.adapters.local import runtime
from cockpit.adapters.supervise import procs
from cockpit.adapters.supervise.managed import ManagedProcess


@dataclass(eq=False)
class Replica:
    version: str
    index: int
    port: int
    track: Track
    proc: ManagedProcess | None = None
    healthy: bool = False  # passed its health check and has not exited or failed probes since
    started: float = field(default_factory=time.monotonic)
    failures: int = 0  # consecutive failed health probes
    restarts: int = 0  # restarts after a crash since the replica was deployed
    restart_times: deque[float] = field(default_factory=deque)  # within the policy window
    crash_loop: bool = False  # the restart policy gave up on it
    problem: str = ""  # what is wrong with it now ("" if nothing): shown in status
    keeper: asyncio.Task[None] | None = None  # the restart loop, while one runs

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def source(self) -> str:
        return f"{self.track} {self.version} #{self.index}"

    @property
    def ready(self) -> bool:
        return self.healthy and self.proc is not None and self.proc.running

    @property
    def restarting(self) -> bool:
        return self.keeper is not None and not self.keeper.done()

    def record(self) -> runtime.ReplicaRecord:
        pid = self.proc.pid if self.proc else 0
        return runtime.ReplicaRecord(
            pid, str(self.track), self.version, self.index, self.port, self.ready,
            self.restarts, self.crash_loop, self.problem,
        )  # fmt: skip


def track_status(records: Sequence[runtime.ReplicaRecord], track: str, routed: set[str]) -> TrackStatus | None:
    """A track as observed: ready means healthy by our probes, its process alive, and in
    the router's table (not marked down there)."""
    mine = [r for r in records if r.track == track]
    if not mine:
        return None
    ready = sum(1 for r in mine if r.healthy and procs.alive(r.pid) and r.url in routed)
    problems = [r.problem for r in mine if r.problem]
    return TrackStatus(
        version="/".join(sorted({r.version for r in mine})),
        replicas_desired=len(mine),
        replicas_ready=ready,
        restarts=sum(r.restarts for r in mine),
        crash_loop=any(r.crash_loop for r in mine),
        problem="; ".join(problems),
    )
