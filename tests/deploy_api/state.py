"""The deploy API's state: apps and environments, workloads that become ready over time,
the rollout the platform walks on its own timers, and each environment's log book.

Everything runs on the service's one event loop; routes call the methods here and turn
:class:`ApiError` into a JSON error answer. Time is real (``time.time``): the tests
observe state changing the way a real platform's does, by polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import re
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_VERSIONS = ("1.0.0", "1.1.0", "1.2.0")
DEFAULT_STABLE = "1.0.0"
DEFAULT_REPLICAS = 2
READY_DELAY = 0.3  # a new replica answers its readiness probe this long after the deploy
PROGRESS_DEADLINE = 10.0  # a rollout waits this long for its canary to become ready
KEPT_LINES = 5000  # per environment; older lines are dropped like a platform's log retention
KEPT_REVISIONS = 10
REQUEST_LOG_INTERVAL = 0.1  # one request line per ready replica per interval: ~10 lines/s
# Environments nobody asked about for this long stop producing request logs, so a session
# of many tests (each with its own app) does not keep the shared machine busy.
IDLE_AFTER = 60.0
PATHS = ("/", "/api/orders", "/api/orders", "/api/checkout", "/healthz")
DURATION_PATTERN = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class ApiError(Exception):
    """A refusal the API answers with ``status`` and ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Workload:
    """A set of replicas of one version; ready once ``ready_at`` passed, unless broken."""

    version: str
    replicas: int
    ready_at: float

    def ready(self, now: float, broken: Iterable[str]) -> int:
        if self.version in broken or now < self.ready_at:
            return 0
        return self.replicas

    def as_json(self, now: float, broken: Iterable[str]) -> dict[str, Any]:
        return {"version": self.version, "replicas": self.replicas, "ready": self.ready(now, broken)}


class LogBook:
    """One environment's log lines with increasing ``seq`` (from 1); followers wait on
    :meth:`wait` for lines newer than the ones they have."""

    def __init__(self) -> None:
        self.lines: deque[dict[str, Any]] = deque(maxlen=KEPT_LINES)
        self.next_seq = 1
        self.closed = False
        self._changed = asyncio.Event()

    def add(self, track: str, version: str, replica: str, message: str) -> dict[str, Any]:
        line = {
            "seq": self.next_seq,
            "ts": round(time.time(), 3),
            "track": track,
            "version": version,
            "replica": replica,
            "message": message,
        }
        self.next_seq += 1
        self.lines.append(line)
        # Wake every follower, then hand later ones a fresh event to wait on.
        self._changed.set()
        self._changed = asyncio.Event()
        return line

    def since(self, seq: int) -> list[dict[str, Any]]:
        """Lines with ``seq >= seq`` still kept (``after`` is the ``next`` of the last answer)."""
        return [line for line in self.lines if line["seq"] >= seq]

    def close(self) -> None:
        self.closed = True
        self._changed.set()

    async def wait(self, seq: int, timeout: float) -> None:
        """Return once a line with ``seq >= seq`` exists, or after ``timeout`` seconds."""
        if self.next_seq > seq or self.closed:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)


def parse_duration(value: object) -> float:
    """Seconds from a number or an Argo-style string ("10s", "1m", "500ms")."""
    if isinstance(value, bool):
        raise ApiError(400, f"pause duration must be a number of seconds or like '10s', not {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ApiError(400, f"pause duration must not be negative, not {value}")
        return float(value)
    if isinstance(value, str) and (match := DURATION_PATTERN.match(value.strip())):
        return float(match.group(1)) * DURATION_UNITS[match.group(2)]
    raise ApiError(400, f"pause duration must be a number of seconds or like '10s', not {value!r}")


def parse_steps(raw: object) -> list[dict[str, Any]]:
    """The rollout's steps, checked: ``{"setWeight": 0..100}`` or ``{"pause": {}}`` /
    ``{"pause": {"duration": 1}}``. Durations are normalised to seconds (or None)."""
    if not isinstance(raw, list) or not raw:
        raise ApiError(400, "steps must be a non-empty list")
    steps: list[dict[str, Any]] = []
    for index, step in enumerate(raw):
        if isinstance(step, dict) and set(step) == {"setWeight"}:
            weight = step["setWeight"]
            if not isinstance(weight, int) or isinstance(weight, bool) or not 0 <= weight <= 100:
                raise ApiError(400, f"step {index}: setWeight must be an integer 0..100, not {weight!r}")
            steps.append({"setWeight": weight})
        elif isinstance(step, dict) and set(step) == {"pause"} and isinstance(step["pause"], dict):
            pause = step["pause"]
            if set(pause) - {"duration"}:
                raise ApiError(400, f"step {index}: a pause takes only 'duration', not {sorted(pause)}")
            duration = pause.get("duration")
            steps.append({"pause": {"duration": None if duration is None else parse_duration(duration)}})
        else:
            raise ApiError(
                400, f"step {index}: expected {{'setWeight': N}} or {{'pause': {{...}}}}, not {step!r}"
            )
    return steps


def describe_step(step: dict[str, Any]) -> str:
    if "setWeight" in step:
        return f"setWeight {step['setWeight']}"
    duration = step["pause"]["duration"]
    return "pause until promoted" if duration is None else f"pause {duration:g}s"


class Platform:
    """Every app/environment the service knows, the versions that never become ready,
    and the counters that name deployments and rollouts."""

    def __init__(self) -> None:
        self.envs: dict[tuple[str, str], Env] = {}
        self.broken: set[str] = set()
        self._deployments = itertools.count(1)
        self._rollouts = itertools.count(1)

    def env(self, app: str, name: str) -> Env:
        """The environment, created on first use with the defaults."""
        key = (app, name)
        if key not in self.envs:
            self.envs[key] = Env(self, app, name)
        env = self.envs[key]
        env.last_used = time.monotonic()
        return env

    def configure(
        self,
        app: str,
        name: str,
        versions: list[str],
        stable: str,
        replicas: int,
        progress_deadline: float,
    ) -> Env:
        """Replace an environment with one built from the given settings."""
        old = self.envs.pop((app, name), None)
        if old is not None:
            old.close()
        env = Env(self, app, name, versions, stable, replicas, progress_deadline)
        self.envs[(app, name)] = env
        return env

    def deployment_id(self) -> str:
        return f"d-{next(self._deployments)}"

    def rollout_id(self) -> str:
        return f"r-{next(self._rollouts)}"

    def reset(self) -> None:
        for env in self.envs.values():
            env.close()
        self.envs.clear()
        self.broken.clear()

    def log_requests(self) -> None:
        """One request line per ready replica of every environment in use (the ticker)."""
        now = time.time()
        idle_before = time.monotonic() - IDLE_AFTER
        for env in self.envs.values():
            if env.last_used >= idle_before:
                env.log_requests(now)


class Env:
    """One app's environment: a stable workload, maybe a canary, the canary's weight, the
    revisions, the platform-walked rollout if one was started, and the log book."""

    def __init__(
        self,
        platform: Platform,
        app: str,
        name: str,
        versions: Iterable[str] = DEFAULT_VERSIONS,
        stable: str = DEFAULT_STABLE,
        replicas: int = DEFAULT_REPLICAS,
        progress_deadline: float = PROGRESS_DEADLINE,
    ) -> None:
        now = time.time()
        self.platform = platform
        self.app = app
        self.name = name
        self.versions = list(versions)
        self.stable = Workload(stable, replicas, ready_at=now)
        self.canary: Workload | None = None
        self.weight = 0
        self.revision = 1
        self.revisions: list[dict[str, Any]] = [{"revision": 1, "version": stable}]
        self.rollout: Rollout | None = None
        self.progress_deadline = progress_deadline
        self.logs = LogBook()
        self.last_used = time.monotonic()

    # ------------------------------------------------------------------ reading

    def status(self) -> dict[str, Any]:
        now = time.time()
        broken = self.platform.broken
        return {
            "stable": self.stable.as_json(now, broken),
            "canary": None if self.canary is None else self.canary.as_json(now, broken),
            "weight": self.weight,
            "revision": self.revision,
            "revisions": list(self.revisions),
            "rollout": None if self.rollout is None else self.rollout.as_json(),
        }

    def canary_ready(self) -> bool:
        return self.canary is not None and self.canary.ready(time.time(), self.platform.broken) > 0

    def check_version(self, version: object) -> str:
        if not isinstance(version, str) or not version:
            raise ApiError(400, f"version must be a non-empty string, not {version!r}")
        if version not in self.versions:
            raise ApiError(404, f"unknown version {version} (known: {', '.join(self.versions)})")
        return version

    # ------------------------------------------------------------------ the cockpit-walked actions

    def refuse_while_rolling(self) -> None:
        if self.rollout is not None and self.rollout.running:
            raise ApiError(
                409,
                f"rollout {self.rollout.id} of {self.rollout.version} is in progress; use /rollouts/current",
            )

    def deploy_canary(self, version: str) -> str:
        """Start (or restart) ``version`` as the canary at weight 0; its replica becomes ready
        :data:`READY_DELAY` later. A repeat of the same version really deploys again."""
        if self.canary is not None and self.canary.version != version:
            raise ApiError(409, f"a canary of {self.canary.version} exists; abort or promote it first")
        deployment = self.platform.deployment_id()
        self.canary = Workload(version, 1, ready_at=time.time() + READY_DELAY)
        self.weight = 0
        self.logs.add("canary", version, "controller", f"deploy {deployment}: canary {version} (1 replica)")
        return deployment

    def set_weight(self, weight: object) -> None:
        if not isinstance(weight, int) or isinstance(weight, bool) or not 0 <= weight <= 100:
            raise ApiError(400, f"weight must be an integer 0..100, not {weight!r}")
        if self.canary is None:
            raise ApiError(409, "no canary: deploy one before setting a weight")
        if weight != self.weight:
            self.logs.add("canary", self.canary.version, "router", f"weight {self.weight} -> {weight} %")
        self.weight = weight

    def promote(self) -> None:
        if self.canary is None:
            raise ApiError(409, "no canary to promote")
        canary = self.canary
        self.stable = Workload(canary.version, self.stable.replicas, ready_at=canary.ready_at)
        self.canary = None
        self.weight = 0
        self._new_revision(canary.version)
        self.logs.add(
            "stable",
            canary.version,
            "controller",
            f"promoted {canary.version} to stable (revision {self.revision})",
        )

    def abort(self) -> None:
        """Weight 0 and the canary removed; aborting nothing is not an error."""
        if self.canary is None:
            return
        version = self.canary.version
        self.weight = 0
        self.canary = None
        self.logs.add("canary", version, "controller", f"aborted canary {version}: weight 0, replica removed")

    def rollback(self, version: str) -> None:
        """Replace stable by ``version`` (any canary goes first); revision +1."""
        self.abort()
        self.stable = Workload(version, self.stable.replicas, ready_at=time.time() + READY_DELAY)
        self._new_revision(version)
        self.logs.add("stable", version, "controller", f"rolled back to {version} (revision {self.revision})")

    def _new_revision(self, version: str) -> None:
        self.revision += 1
        self.revisions.append({"revision": self.revision, "version": version})
        del self.revisions[:-KEPT_REVISIONS]

    # ------------------------------------------------------------------ the platform-walked rollout

    def start_rollout(self, version: str, steps: list[dict[str, Any]]) -> Rollout:
        self.refuse_while_rolling()
        if self.canary is not None and self.canary.version != version:
            if self.rollout is None:
                raise ApiError(409, f"a canary of {self.canary.version} exists; abort or promote it first")
            self.abort()  # the leftover canary of a failed rollout
        if version == self.stable.version:
            raise ApiError(409, f"{version} is already the stable version")
        self.rollout = Rollout(self, self.platform.rollout_id(), version, steps)
        self.rollout.begin()
        return self.rollout

    def current_rollout(self) -> Rollout:
        if self.rollout is None:
            raise ApiError(404, "no rollout in this environment")
        return self.rollout

    # ------------------------------------------------------------------ logs and teardown

    def log_requests(self, now: float) -> None:
        broken = self.platform.broken
        tracks = [("stable", self.stable)] + ([("canary", self.canary)] if self.canary else [])
        for track, workload in tracks:
            for index in range(workload.ready(now, broken)):
                path = random.choice(PATHS)
                millis = random.randint(1, 9)
                self.logs.add(track, workload.version, f"{track}-{index}", f"GET {path} 200 {millis}ms")

    def close(self) -> None:
        if self.rollout is not None:
            self.rollout.stop()
        self.logs.close()


@dataclass
class Rollout:
    """A rollout the platform walks itself, one step after another, in its own task.

    A ``setWeight`` step waits for the canary to be ready (``Degraded`` once the progress
    deadline passes), a timed pause waits its duration, a pause without duration waits for
    ``promote``; after the last step the platform promotes. ``generation`` grows at every
    change, like a Kubernetes object's."""

    env: Env
    id: str
    version: str
    steps: list[dict[str, Any]]
    step: int = 0
    phase: str = "Progressing"
    message: str = ""
    generation: int = 1
    pause: str | None = None  # "step" (a pause step) or "user" (the pause command)
    paused_by: str | None = None
    paused_until: float | None = None  # end of the running timed pause (unix seconds)
    pause_left: float | None = None  # what a user's pause froze of a timed pause
    user_paused: bool = False
    deployment: str = ""
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self.phase in ("Progressing", "Paused")

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "version": self.version,
            "phase": self.phase,
            "step": self.step,
            "steps": len(self.steps),
            "stepsDescribed": [describe_step(s) for s in self.steps],
            "message": self.message,
            "generation": self.generation,
            "pause": self.pause,
            "pausedBy": self.paused_by,
            "pausedUntil": self.paused_until,
            "deployment": self.deployment,
        }

    # ------------------------------------------------------------------ lifecycle

    def begin(self) -> None:
        """Deploy the canary and start walking from step 0."""
        self.deployment = self.env.deploy_canary(self.version)
        self.step = 0
        self.pause = None
        self.paused_until = None
        self.pause_left = None
        self.user_paused = False
        self._set("Progressing", f"deployed canary {self.version} ({self.deployment})")
        self._task = asyncio.get_running_loop().create_task(self._walk(), name=f"rollout {self.id}")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def _set(self, phase: str, message: str) -> None:
        self.phase = phase
        self.message = message
        self.generation += 1
        self.env.logs.add("canary", self.version, "rollout", f"{self.id} {phase}: {message}")

    async def _sleep(self, timeout: float | None) -> None:
        """Wait ``timeout`` seconds (None: forever) or until a command wakes the walker."""
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    def _poke(self) -> None:
        self.generation += 1
        self._wake.set()

    # ------------------------------------------------------------------ the walker

    async def _walk(self) -> None:
        while self.step < len(self.steps):
            if self.user_paused:
                await self._sleep(None)
                continue
            step = self.steps[self.step]
            if "setWeight" in step:
                if not await self._wait_canary_ready():
                    return
                self.env.set_weight(step["setWeight"])
                self._next_step(f"weight {step['setWeight']} %")
            elif await self._hold_pause(step["pause"]["duration"]):
                self._next_step("pause over")
        self.env.set_weight(100)
        self.env.promote()
        self.pause = None
        self._set("Healthy", f"promoted {self.version} after {len(self.steps)} steps")
        self._task = None

    async def _wait_canary_ready(self) -> bool:
        deadline = time.monotonic() + self.env.progress_deadline
        if not self.env.canary_ready():
            self._set("Progressing", f"step {self.step}: waiting for canary {self.version} to be ready")
        while not self.env.canary_ready():
            if self.user_paused:  # a user's pause stops the clock too
                while self.user_paused:
                    await self._sleep(None)
                deadline = time.monotonic() + self.env.progress_deadline
                continue
            if time.monotonic() > deadline:
                self.env.set_weight(0)
                self._set(
                    "Degraded",
                    f"canary {self.version} did not become ready within {self.env.progress_deadline:g}s",
                )
                self._task = None
                return False
            await self._sleep(0.05)
        return True

    async def _hold_pause(self, duration: float | None) -> bool:
        """One pass of a pause step; True when it is over (timer ran out or promoted)."""
        if self.pause != "step":
            self.pause = "step"
            if duration is not None:
                self.paused_until = time.time() + (
                    self.pause_left if self.pause_left is not None else duration
                )
            self.pause_left = None
            what = "until promoted" if duration is None else f"for {duration:g}s"
            self._set("Paused", f"step {self.step}: paused {what}")
        if duration is None:
            await self._sleep(None)
            return False  # woken by a command: promote() already moved the step on
        assert self.paused_until is not None
        left = self.paused_until - time.time()
        if left <= 0:
            return True
        await self._sleep(left)
        return False

    def _next_step(self, message: str) -> None:
        self.step += 1
        self.pause = None
        self.paused_until = None
        self.pause_left = None
        self._set("Progressing", f"step {self.step - 1} done: {message}")

    # ------------------------------------------------------------------ commands

    def command(self, name: str, body: dict[str, Any]) -> None:
        commands = {
            "promote": self._promote,
            "promote-full": self._promote_full,
            "pause": self._pause,
            "resume": self._resume,
            "abort": self._abort,
            "retry": self._retry,
        }
        if name not in commands:
            raise ApiError(404, f"unknown rollout command {name!r} (known: {', '.join(commands)})")
        commands[name](body)

    def _require_running(self, command: str) -> None:
        if not self.running:
            raise ApiError(409, f"cannot {command}: rollout {self.id} is {self.phase}")

    def _promote(self, body: dict[str, Any]) -> None:
        """Skip the pause step the rollout waits in (and lift a user's pause)."""
        self._require_running("promote")
        if self.step >= len(self.steps) or "pause" not in self.steps[self.step]:
            raise ApiError(409, f"cannot promote: step {self.step} is not a pause")
        self.user_paused = False
        self._next_step("promoted")
        self._poke()

    def _promote_full(self, body: dict[str, Any]) -> None:
        """Skip every remaining step: the canary becomes stable now."""
        self._require_running("promote-full")
        if not self.env.canary_ready():
            raise ApiError(409, f"cannot promote-full: canary {self.version} is not ready")
        self.stop()
        self.user_paused = False
        self.pause = None
        self.paused_until = None
        self.env.set_weight(100)
        self.env.promote()
        self.step = len(self.steps)
        self._set("Healthy", f"promoted {self.version} in full (steps skipped)")

    def _pause(self, body: dict[str, Any]) -> None:
        self._require_running("pause")
        if self.user_paused:
            raise ApiError(409, f"rollout {self.id} is already paused by {self.paused_by or 'a user'}")
        by = body.get("by")
        self.user_paused = True
        self.paused_by = by if isinstance(by, str) and by else None
        if self.paused_until is not None:  # freeze what is left of a timed pause
            self.pause_left = max(0.0, self.paused_until - time.time())
            self.paused_until = None
        self.pause = "user"
        self._set("Paused", f"paused by {self.paused_by or 'a user'} at step {self.step}")
        self._poke()

    def _resume(self, body: dict[str, Any]) -> None:
        self._require_running("resume")
        if not self.user_paused:
            raise ApiError(
                409, f"rollout {self.id} is not paused by a user (a pause step is lifted with promote)"
            )
        self.user_paused = False
        self.paused_by = None
        self.pause = None  # the walker re-enters a pause step and restores its timer
        self._set("Progressing", f"resumed at step {self.step}")
        self._poke()

    def _abort(self, body: dict[str, Any]) -> None:
        if self.phase in ("Healthy", "Aborted"):
            raise ApiError(409, f"cannot abort: rollout {self.id} is {self.phase}")
        self.stop()
        self.env.abort()
        self.user_paused = False
        self.pause = None
        self.paused_until = None
        self._set("Aborted", f"aborted at step {self.step}: weight 0, canary removed")

    def _retry(self, body: dict[str, Any]) -> None:
        if self.phase not in ("Aborted", "Degraded"):
            raise ApiError(409, f"cannot retry: rollout {self.id} is {self.phase}")
        self.env.abort()
        self.begin()
