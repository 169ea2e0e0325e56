"""The demo's users: one traffic generator per environment, against its router.

The load is the demo's, not a backend's: a backend runs versions and routes requests; who
sends them is the business of whoever practises a release. :class:`DemoTraffic` watches a
session and starts :mod:`cockpit.demo.traffic` for an environment once it is up (its
router URL known), as a supervised child that dies with the cockpit (see
:mod:`cockpit.adapters.supervise.procs`), and stops them all before the environments stop,
so a summary is not full of errors from the shutdown itself.

The settings are a Python mapping here, not a table of the plan: a plan describes how a
service is released, and a plan with a ``traffic_rps`` would promise load that no real
environment gets. The demo plan stays a plan any user could copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from cockpit.adapters.base import LogSink
from cockpit.adapters.supervise import procs
from cockpit.adapters.supervise.logs import LogHub, LogTarget
from cockpit.adapters.supervise.managed import ManagedProcess


@dataclass(frozen=True, slots=True)
class TrafficSettings:
    """Steady open-loop load on one environment."""

    rps: float  # requests per second
    paths: tuple[str, ...]  # requested in turn
    # Share of requests (0..1) that ask the router for the canary track by header. In a
    # blue-green rollout the preview stands at weight 0: these are its testers, and the
    # analysis before the switch measures them (no other request reaches the preview).
    preview_share: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.preview_share <= 0.5:
            raise ValueError(f"preview_share must be from 0 to 0.5, found {self.preview_share!r}")
        if not 0 < self.rps <= 10_000:
            raise ValueError(f"rps must be above 0 and at most 10000, found {self.rps!r}")
        if not self.paths or any(not p.startswith("/") or "," in p for p in self.paths):
            raise ValueError(f"paths must start with '/' and hold no ',', found {self.paths!r}")


# Share of the simulated users that test a blue-green preview (see TrafficSettings).
PREVIEW_SHARE = 0.1

# The demo plan's three environments. Only production sends /api/checkout: 1.2.0's
# regression lives there, so staging looks fine and production's analysis catches it.
DEMO_TRAFFIC: Mapping[str, TrafficSettings] = {
    "dev": TrafficSettings(10, ("/", "/api/orders")),
    "staging": TrafficSettings(20, ("/", "/api/orders")),
    "production": TrafficSettings(40, ("/", "/api/orders", "/api/checkout")),
}


def traffic_argv(target: str, settings: TrafficSettings) -> list[str]:
    argv = [
        procs.python(), "-m", "cockpit.demo.traffic", "--target", target,
        "--rps", f"{settings.rps:g}", "--paths", ",".join(settings.paths),
    ]  # fmt: skip
    if settings.preview_share:
        argv += ["--preview-share", f"{settings.preview_share:g}"]
    return argv


def with_preview_testers(
    settings: Mapping[str, TrafficSettings], share: float = PREVIEW_SHARE
) -> dict[str, TrafficSettings]:
    """The same load with ``share`` of it sent to the preview (a blue-green plan's)."""
    return {env: replace(s, preview_share=share) for env, s in settings.items()}


async def spawn_traffic(
    target: str, settings: TrafficSettings, marker: str, logs: LogTarget
) -> ManagedProcess:
    """Start one traffic generator against ``target``; its lines go to ``logs`` as
    ``traffic``. Call from the event loop thread (the child dies with that thread)."""
    process = await procs.spawn(traffic_argv(target, settings), env=procs.child_env(marker))
    return ManagedProcess(process, logs, lambda: ("traffic", None))


class DemoTraffic:
    """One traffic generator per environment named in ``settings``, started the first
    time that environment is seen up, stopped by :meth:`stop`."""

    def __init__(
        self,
        service: str,
        urls: Callable[[], Mapping[str, str | None]],
        sinks: Callable[[str], LogSink],
        settings: Mapping[str, TrafficSettings] = DEMO_TRAFFIC,
    ) -> None:
        self._service = service
        self._urls = urls
        self._sinks = sinks
        self._settings = dict(settings)
        self._run = uuid.uuid4().hex[:12]
        self._starting: dict[str, asyncio.Task[None]] = {}
        self.running: dict[str, ManagedProcess] = {}
        self._stopped = False

    def marker(self, env: str) -> str:
        """The marker the generator of ``env`` carries (a later cockpit recognises it)."""
        return f"{self._service}/{env}/traffic/{self._run}"

    def changed(self) -> None:
        """A change listener: start the generator of every environment that is up now.
        Called on the event loop thread, so the children die with it."""
        waiting = [e for e in self._settings if e not in self._starting]
        if self._stopped or not waiting:
            return  # cheap once every generator runs: this is called on every change
        urls = self._urls()
        for env in waiting:
            url = urls.get(env)
            if url:
                self._starting[env] = asyncio.ensure_future(self._start(env, url))

    async def _start(self, env: str, url: str) -> None:
        logs = LogHub(env, notes_source="demo")
        logs.attach(self._sinks(env))
        try:
            proc = await spawn_traffic(url, self._settings[env], self.marker(env), logs)
        except OSError as exc:
            logs.note(f"cannot start the demo traffic against {url}: {exc}", "error")
            return
        if self._stopped:  # stop() ran while this one was being spawned
            await proc.stop()
            return
        self.running[env] = proc

    async def stop(self) -> None:
        self._stopped = True
        starting = [t for t in self._starting.values() if not t.done()]
        if starting:
            with contextlib.suppress(Exception):
                await asyncio.gather(*starting, return_exceptions=True)
        running, self.running = list(self.running.values()), {}
        await asyncio.gather(*(p.stop() for p in running), return_exceptions=True)

    @property
    def pids(self) -> Sequence[int]:
        return [p.pid for p in self.running.values()]
