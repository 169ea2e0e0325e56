"""The docker backend: each version runs as containers of a local image on the host
network, one port per container, behind the cockpit's weighted router
(:mod:`cockpit.adapters.router`, shared with the local backend).

Zero downtime follows the local backend's rule: change the routing table first, let the
router drain what is in flight on the retired containers, then stop them.

What it watches, and how:

* the Docker events stream (:mod:`.events`): a container that dies leaves the routing
  table at once; Docker's restart policy brings it back and it re-enters once healthy;
  a restart policy that gives up is a crash loop the track reports (the engine's health
  gate then refuses a promote or a weight change);
* health: the image's HEALTHCHECK when it has one (Docker's ``health_status`` events),
  otherwise HTTP probes of ``health_path`` (:mod:`.health`);
* logs of every container of both tracks, followed across restarts (:mod:`.logs`).

The containers outlive the cockpit process. A ``start`` that finds this environment's
labelled containers running (the cockpit crashed mid-canary) takes them over as they are
and reports them truthfully - which version on which track, the weight the state file
kept - so the engine's reconcile decides to go on or abort. A clean ``close`` removes
them (the router, in the cockpit, goes too).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import aiohttp
import docker.errors

from cockpit.adapters.base import (
    AdapterContext,
    BackendConfigError,
    BackendError,
    BackendStatus,
    BackendUnavailable,
    Capability,
    DeployBackend,
    LogSink,
    Track,
    TrackStatus,
)
from cockpit.adapters.docker import containers, health, images, labels, state
from cockpit.adapters.docker.client import Daemon, api_message
from cockpit.adapters.docker.events import Event, EventWatcher
from cockpit.adapters.docker.logs import LogFollower
from cockpit.adapters.docker.options import DockerOptions
from cockpit.adapters.docker.tasks import TaskResult, run_task
from cockpit.adapters.probe_state import ProbeChange, record_probe
from cockpit.adapters.router.control import RouterControl
from cockpit.adapters.router.handle import RouterHandle
from cockpit.adapters.supervise import procs
from cockpit.adapters.supervise.logs import LogHub
from cockpit.secrets import redact
from cockpit.units import format_duration

RESYNC_EVERY = 5.0  # seconds between full reads of the containers (events may be missed)
_STATE_WORDS = {"idle": "idle", "owner": "started", "attached": "attached", "closed": "closed"}
COMPOSE_SERVICE = "com.docker.compose.service"
COMPOSE_PROJECT = "com.docker.compose.project"


@dataclass(eq=False)
class Box:
    """One container of a track, as the backend knows it."""

    id: str
    name: str
    track: str  # "stable", "canary" or "previous" (kept for an instant rollback)
    version: str
    image_id: str
    index: int
    port: int
    docker_health: bool  # its HEALTHCHECK decides, not our probe
    adopted: bool = False  # not created by the cockpit: never removed by it
    running: bool = True
    healthy: bool = False
    died: bool = False  # exited since it was last seen running
    failures: int = 0  # consecutive failed probes
    restarts: int = 0
    crash_loop: bool = False
    problem: str = ""
    follower: LogFollower | None = None
    waiter: asyncio.Task[None] | None = None  # waits for health after a restart

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ready(self) -> bool:
        return self.running and self.healthy and not self.crash_loop

    @property
    def source(self) -> str:
        return f"{self.track} {self.version} #{self.index} [{self.name if self.adopted else self.id[:12]}]"

    def log_track(self) -> Track | None:
        return Track(self.track) if self.track in ("stable", "canary") else None


class DockerBackend(DeployBackend):
    """Runs each version as containers of a local image behind a weighted router."""

    name: ClassVar[str] = "docker"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.SET_WEIGHT,
            Capability.BLUE_GREEN,
            Capability.LOGS,
            Capability.SCRAPE_TARGETS,
            Capability.ROLLBACK_TO_REVISION,
        }
    )
    Options: ClassVar[type[DockerOptions]] = DockerOptions
    options: DockerOptions

    def __init__(self, ctx: AdapterContext, options: DockerOptions) -> None:
        self.ctx = ctx
        self.options = options
        self.daemon = Daemon(options.docker_host)
        self._logs = LogHub(ctx.env, notes_source="docker")
        self._lock = asyncio.Lock()
        self._mode: Literal["idle", "owner", "attached", "closed"] = "idle"
        self._marker = f"{ctx.service}/{ctx.env}/{uuid.uuid4().hex}"
        self._token = secrets.token_hex(16)
        self._session: aiohttp.ClientSession | None = None
        self._router: RouterHandle | None = None
        self._control: RouterControl | RouterHandle | None = None
        self._router_url: str | None = None
        self._boxes: list[Box] = []  # every container of the tracks, pending ones too
        self._pending: set[Box] = set()  # started, not yet part of a track
        self._weight = 0
        self._asked_weight = 0  # with replica-ratio: the weight asked for (status shows the real one)
        self._previous_until = 0.0
        self._previous_timer: asyncio.TimerHandle | None = None
        self._history: list[state.Deployment] = []
        self._watchers: list[EventWatcher] = []
        self._monitor_task: asyncio.Task[None] | None = None
        self._resync_task: asyncio.Task[None] | None = None
        self._attached: state.EnvState | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self, stable_version: str) -> None:
        async with self._lock:
            if self._mode != "idle":
                raise BackendError(f"the docker backend of {self.ctx.env} is already {_STATE_WORDS[self._mode]}")
            await self.daemon.connect()
            self._loop = asyncio.get_running_loop()
            listen = procs.bind_listener(self.options.port, self.ctx.env)
            try:
                control = procs.bind_listener(0, self.ctx.env)
            except BaseException:
                listen.close()
                raise
            self._mode = "owner"
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
            try:
                await self._start_router(listen, control)
                found = await containers.labelled(self.daemon, self.ctx.service, self.ctx.env)
                saved = state.read(self.ctx.run_dir, self.ctx.service, self.ctx.env)
                self._history = list(saved.history) if saved else []
                self._watch({"label": labels.selector(self.ctx.service, self.ctx.env)}, "labelled")
                if any(f.running or f.status == "restarting" for f in found) or (saved and saved.adopted):
                    await self._recover(found, saved)
                else:
                    await self._remove_leftovers(found)
                    if self.options.adopt is not None:
                        await self._adopt()
                    else:
                        await self._start_track(stable_version, "stable", self.options.replicas)
                await self._push(self._weight)
                self._remember_stable()
                self._write_state()
            except BaseException:
                await self._teardown(remove=True)
                self._mode = "idle"
                raise
            self._monitor_task = asyncio.ensure_future(self._monitor())
            self._logs.note(f"{self.ctx.env} up at {self._router_url}: {self._describe_tracks()}")

    async def attach(self) -> None:
        async with self._lock:
            if self._mode != "idle":
                raise BackendError(f"the docker backend of {self.ctx.env} is already {_STATE_WORDS[self._mode]}")
            await self.daemon.connect()
            found = await containers.labelled(self.daemon, self.ctx.service, self.ctx.env)
            if not any(f.running for f in found):
                raise BackendUnavailable(
                    f"no container of {self.ctx.service}/{self.ctx.env} runs on the Docker daemon at {self.daemon.url}"
                )
            saved = state.read(self.ctx.run_dir, self.ctx.service, self.ctx.env)
            self._attached = saved
            if saved and saved.control_url and saved.token:
                self._session = aiohttp.ClientSession()
                self._control = RouterControl(self._session, saved.control_url, saved.token, self.ctx.env)
                self._router_url = saved.router_url
            self._mode = "attached"

    async def close(self) -> None:
        async with self._lock:
            if self._mode == "owner":
                await self._teardown(remove=True)
            if self._session is not None:
                await self._session.close()
                self._session = None
            self.daemon.close()
            self._mode = "closed"

    # ------------------------------------------------------------------ observation

    async def status(self) -> BackendStatus:
        if self._mode == "attached":
            return await self._attached_status()
        self._require_owner(reading=True)
        assert self._control is not None
        # What runs, as the daemon says now (one call), not what the last event said.
        summaries = await self._list_states()
        router = await self._control.state()
        routed = {t: {e["url"] for e in entries if not e["down"]} for t, entries in router["tracks"].items()}
        tracks: dict[str, TrackStatus | None] = {}
        for track in ("stable", "canary"):
            boxes = [b for b in self._boxes if b.track == track and b not in self._pending]
            tracks[track] = self._track_status(boxes, summaries, routed.get(track, set()))
        try:
            tags: dict[str, str] | str = await images.tag_ids(self.daemon, self.options.image)
        except BackendError as exc:  # only the detail's remark on moved tags needs them
            tags = redact(str(exc))
        detail = self._detail(router, tags)
        return BackendStatus(
            stable=tracks["stable"], canary=tracks["canary"], weight=int(router["weight"]), url=self._router_url, detail=detail
        )

    async def versions(self) -> Sequence[str]:
        return list(self.options.versions)

    def retained(self) -> list[tuple[str, str]]:
        """(image id, version) of the deployments kept for rollback, oldest first."""
        return [(d.image_id, d.version) for d in self._history]

    def attach_log_sink(self, sink: LogSink) -> None:
        self._logs.attach(sink)

    def scrape_targets(self) -> Mapping[Track, Sequence[str]]:
        return {
            Track.STABLE: [f"{b.url}/metrics" for b in self._track("stable") if b.ready],
            Track.CANARY: [f"{b.url}/metrics" for b in self._track("canary") if b.ready],
        }

    # ------------------------------------------------------------------ actions

    async def deploy_canary(self, version: str) -> None:
        async with self._lock:
            self._require_owner()
            if self._track("canary"):
                await self._remove_canary()
            count = 1 if self.options.traffic == "replica-ratio" else self.options.replicas
            # A new deploy runs what the version's tag names now, even when a retained
            # deployment of the same version ran another build: asking for a canary is
            # asking to try that build, and the canary's checks judge it before it serves
            # everyone. Said loudly, and the status reports the image id either way.
            image = await self._find_image(version)
            ran = None if images.is_image_id(version) else self._last_deployed(version)
            if ran is not None and ran != image.id:
                self._logs.note(
                    f"canary {version}: its tag {self.options.image}:{version} names image {image.short_id}, "
                    f"not {images.short(ran)} which {version} ran before; deploying the tag's image",
                    "warning",
                    Track.CANARY,
                )
            canary = await self._start_track(image, "canary", count)
            try:
                await self._push(0)
            except BaseException:
                await self._retire(canary, drain=False)
                raise
            self._asked_weight = 0
            self._write_state()
            self._logs.note(
                f"canary {canary[0].version} (image {image.short_id}) healthy, at weight 0 %; preview at {canary[0].url}",
                track=Track.CANARY,
            )

    async def set_weight(self, weight: int) -> None:
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
            raise BackendError(f"canary weight must be a whole number from 0 to 100, found {weight!r}")
        async with self._lock:
            self._require_owner()
            canary = self._track("canary")
            if not canary and weight != 0:
                raise BackendError(f"no canary runs in {self.ctx.env}: deploy one before setting a weight")
            if self.options.traffic == "replica-ratio" and canary:
                await self._set_ratio(weight, canary)
                return
            if weight == self._weight:
                return
            await self._push(weight)
            self._write_state()
            self._logs.note(f"canary weight {weight} %", track=Track.CANARY)

    async def promote_canary(self) -> None:
        async with self._lock:
            self._require_owner()
            canary = self._track("canary")
            if not canary:
                raise BackendError(f"no canary runs in {self.ctx.env}: nothing to promote")
            if len(canary) < self.options.replicas:  # replica-ratio: stable gets its full count
                more = self.options.replicas - len(canary)
                canary += await self._start_track(self._image_of(canary[0]), "canary", more, first_index=len(canary) + 1)
            await self._switch_to(canary, f"promoted {canary[0].version} to stable at 100 %")

    async def remove_canary(self) -> None:
        async with self._lock:
            self._require_owner()
            await self._remove_canary()

    async def deploy_stable(self, version: str) -> None:
        """Rollback: ``version`` is a version or the image id of a retained deployment. A
        version with a retained deployment runs the image that deployment ran, by its id:
        its tag may name another build by now (see :meth:`_rollback_image`). The previous
        stable's containers, when still kept (``keep_previous``), take the traffic back at
        once; otherwise new containers start and must be healthy first."""
        async with self._lock:
            self._require_owner()
            kept = [
                b for b in self._track("previous")
                if version in (b.version, b.image_id) or (images.is_image_id(version) and b.image_id.removeprefix("sha256:").startswith(version.removeprefix("sha256:")))
            ]  # fmt: skip
            if kept and all(b.ready for b in kept):
                await self._switch_to(
                    kept, f"rolled back to {kept[0].version} (image {images.short(kept[0].image_id)}) at once "
                    "(its containers were kept)",
                )  # fmt: skip
                return
            image = await self._rollback_image(version)
            # Named "canary" while they start: a crash in between never shows two stables.
            new = await self._start_track(image, "canary", self.options.replicas, keep_pending=True)
            try:
                await self._switch_to(new, f"stable is now {new[0].version} (image {image.short_id}) at 100 %")
            except BaseException:
                if self._pending.intersection(new):  # the table never changed: they go again
                    await self._retire(new, drain=False)
                raise

    async def run_task(
        self,
        version: str,
        command: Sequence[str],
        *,
        name: str = "task",
        env: Mapping[str, str] | None = None,
        timeout: float = 600.0,
        on_line: Callable[[str], None] | None = None,
    ) -> TaskResult:
        """Run ``command`` once in a new container of ``version``'s image (a version tag or a
        retained image id) with the environment's variables and secrets: its output goes
        to the log pane (source ``task NAME (VERSION)``) and to ``on_line``; the container
        is removed afterwards. Returns a :class:`TaskResult`; raises
        :class:`~cockpit.adapters.docker.tasks.TaskFailed` on a non-zero exit or a timeout."""
        if self._mode != "owner":
            self._require_owner()
        image = await self._find_image(version)
        environment = {**self.options.env, **(env or {}), **self._secret_env()}
        return await run_task(
            self.daemon, self.options, self._logs,
            service=self.ctx.service, env=self.ctx.env, image_id=image.id, version=image.version,
            command=command, environment=environment, name=name, timeout=timeout, on_line=on_line,
        )  # fmt: skip

    # ------------------------------------------------------------------ tracks

    @staticmethod
    def _image_of(box: Box) -> images.Image:
        return images.Image(box.image_id, box.version, box.docker_health)

    def _track(self, track: str) -> list[Box]:
        return [b for b in self._boxes if b.track == track and b not in self._pending]

    async def _find_image(self, ref: str) -> images.Image:
        retained = {d.image_id: d.version for d in self._history}
        return await images.find(self.daemon, self.options.image, ref, self.options.versions, retained)

    def _last_deployed(self, version: str) -> str | None:
        """The image id the newest retained deployment of ``version`` ran, if one is kept."""
        return next((d.image_id for d in reversed(self._history) if d.version == version), None)

    async def _rollback_image(self, ref: str) -> images.Image:
        """What a rollback to ``ref`` runs. A rollback promises the code that served before,
        so a version with a retained deployment runs that deployment's image by id, never
        what the version's tag names now (a tag can be moved to another build, and the
        journal would then say one version while another build serves). Only a version
        older than every retained deployment runs its tag's image."""
        ran = None if images.is_image_id(ref) else self._last_deployed(ref)
        if ran is None:
            return await self._find_image(ref)
        known = True
        try:
            tagged = await images.tagged(self.daemon, self.options.image, ref)
        except BackendError:  # only what is said below needs it: the rollback goes on
            known, tagged = False, None
        try:
            image = await self._find_image(ran)
        except images.ImageNotPresent:
            raise images.ImageNotPresent(
                f"cannot roll back to {ref}: the image its last deployment ran ({images.short(ran)}) is no longer "
                f"on the Docker daemon at {self.daemon.url}"
                + (f"; the tag {self.options.image}:{ref} names another image ({images.short(tagged)}), "
                   f"which a rollback does not run unverified: deploy {ref} as a canary to try it" if tagged else "")
            ) from None  # fmt: skip
        if known and tagged != image.id:
            now = f"names {images.short(tagged)}" if tagged else "is gone"
            self._logs.note(
                f"rollback to {ref}: running image {image.short_id}, which its last deployment ran; "
                f"the tag {self.options.image}:{ref} {now} since, and is not used",
                "warning",
            )
        return image

    async def _start_track(
        self,
        ref: str | images.Image,
        track: str,
        count: int,
        *,
        first_index: int = 1,
        keep_pending: bool = False,
    ) -> list[Box]:
        """Start ``count`` containers of ``ref`` (a version, a retained image id or an image
        already found) and wait until all are healthy. On any failure all of them are
        removed again and nothing else changed. ``keep_pending``: they stay out of the
        tracks until :meth:`_switch_to` makes them stable (a rollback's new stable)."""
        image = ref if isinstance(ref, images.Image) else await self._find_image(ref)
        release = uuid.uuid4().hex[:8]
        started: list[Box] = []
        try:
            for index in range(first_index, first_index + count):
                started.append(await self._run_container(image, track, release, index))
            deadline = time.monotonic() + self.options.health_timeout
            checks = [asyncio.ensure_future(self._wait_healthy(b, deadline)) for b in started]
            done, pending = await asyncio.wait(checks, return_when=asyncio.FIRST_EXCEPTION)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            # Read every finished check's failure, raise one: replicas often fail together, and
            # asyncio.wait reads only the failure that woke it (another left unread is logged
            # as "Task exception was never retrieved", seen on a loaded vfs daemon).
            failures = [exc for task in done if (exc := task.exception()) is not None]
            if failures:
                raise failures[0]
        except BaseException:
            await self._retire(started, drain=False)
            raise
        if not keep_pending:
            self._pending.difference_update(started)
        return started

    async def _run_container(self, image: images.Image, track: str, release: str, index: int) -> Box:
        version = image.version
        what = f"{track} {version} #{index}"
        reserved = {b.port for b in self._boxes}
        port = containers.pick_port(self.options.base_port, reserved, what)
        containers.check_free(port, what)
        name = labels.container_name(self.ctx.service, self.ctx.env, track, release, index)
        command = (
            self.options.render(version=version, port=port, env=self.ctx.env, service=self.ctx.service)
            if self.options.command
            else None
        )
        environment = {**self.options.env, **self._secret_env(), self.options.port_env: str(port)}
        container_labels = labels.make(
            service=self.ctx.service, env=self.ctx.env, track=track, version=version,
            image_id=image.id, release=release, index=index, port=port,
        )  # fmt: skip
        cid = await containers.run(
            self.daemon, self.options, name=name, image_id=image.id, command=command,
            environment=environment, container_labels=container_labels,
        )  # fmt: skip
        box = Box(cid, name, track, version, image.id, index, port, image.healthcheck)
        self._boxes.append(box)
        self._pending.add(box)
        self._follow(box)
        return box

    async def _wait_healthy(self, box: Box, deadline: float) -> None:
        assert self._session is not None
        await health.wait_healthy(
            self.daemon, self._session, container_id=box.id, what=f"{box.track} {box.version} container #{box.index} ({box.name})",
            url=box.url + self.options.health_path, deadline=deadline, timeout=self.options.health_timeout,
        )  # fmt: skip
        box.healthy, box.failures = True, 0

    async def _switch_to(self, new: list[Box], words: str) -> None:
        """Make ``new`` the stable track at 100 % in one table change, then retire (or
        keep, with ``keep_previous``) what served before."""
        old = [b for b in self._boxes if b not in new and b not in self._pending]
        await self._push_table(new, [], 0)
        # The tracks change in memory with no await in between, so a health event handled
        # meanwhile cannot push a table with the old tracks back.
        self._pending.difference_update(new)
        keep = self.options.keep_previous > 0
        old_stable = [b for b in old if b.track == "stable"]
        for box in new:
            box.track = "stable"
        for box in old:
            box.track = "previous" if keep and box in old_stable else "retiring"
        self._weight = self._asked_weight = 0
        self._remember_stable()
        self._write_state()
        for box in (*new, *(old_stable if keep else ())):
            await self._rename(box)
        retiring = [b for b in old if b.track == "retiring"]
        if keep and old_stable:
            self._keep_previous_until(time.monotonic() + self.options.keep_previous)
            self._logs.note(
                f"{words}; previous stable {old_stable[0].version} kept running for an instant rollback "
                f"for {format_duration(self.options.keep_previous)}"
            )
        else:
            self._logs.note(f"{words}; retiring {len(retiring)} old container(s)")
        await self._retire(retiring)

    async def _remove_canary(self) -> None:
        canary = self._track("canary")
        if not canary:
            return
        await self._push_table(self._track("stable"), [], 0)
        self._weight = self._asked_weight = 0
        self._write_state()
        self._logs.note(f"canary {canary[0].version} removed: all traffic on stable", track=Track.CANARY)
        await self._retire(canary)

    async def _set_ratio(self, weight: int, canary: list[Box]) -> None:
        """replica-ratio: the canary's share is its share of the containers."""
        stable = max(1, len(self._track("stable")))
        best = min(range(1, self.options.max_canary_replicas + 1), key=lambda k: abs(round(100 * k / (stable + k)) - weight))
        wanted = best if weight > 0 else len(canary)
        if wanted > len(canary):
            first = max(b.index for b in canary) + 1
            canary = canary + await self._start_track(
                self._image_of(canary[0]), "canary", wanted - len(canary), first_index=first
            )
        elif wanted < len(canary):
            extra = sorted(canary, key=lambda b: b.index)[wanted:]
            canary = [b for b in canary if b not in extra]
            await self._push_table(self._track("stable"), canary, self._ratio_weight(len(canary)) if weight else 0)
            await self._retire(extra)
        real = self._ratio_weight(len(canary)) if weight else 0
        await self._push(real)
        self._asked_weight = weight
        self._write_state()
        self._logs.note(
            f"canary weight asked {weight} %: {len(canary)} canary of {stable + len(canary)} containers "
            f"= {real} % (replica ratio)",
            track=Track.CANARY,
        )

    def _ratio_weight(self, canary: int) -> int:
        stable = max(1, len(self._track("stable")))
        return round(100 * canary / (stable + canary))

    async def _retire(self, boxes: list[Box], *, drain: bool = True) -> None:
        """Wait for requests in flight on containers already out of the table, then stop
        and remove them (an adopted container is stopped, never removed)."""
        if not boxes:
            return
        for box in boxes:
            box.healthy, box.track = False, "retiring"
        if drain and self._control is not None:
            try:
                result = await self._control.drain([b.url for b in boxes], self.options.drain_timeout)
                if not result.drained:
                    self._logs.note(
                        f"{sum(result.in_flight.values())} request(s) still in flight after "
                        f"{format_duration(self.options.drain_timeout)}; stopping anyway",
                        "warning",
                    )
            except BackendError as exc:
                self._logs.note(f"could not drain: {exc}", "warning")
        for box in boxes:
            if box in self._boxes:
                self._boxes.remove(box)
            self._pending.discard(box)
        await asyncio.gather(*(self._dispose(b) for b in boxes), return_exceptions=True)

    async def _dispose(self, box: Box) -> None:
        if box.waiter is not None:
            box.waiter.cancel()
        try:
            if box.adopted:
                await containers.stop(self.daemon, box.id, self.options.stop_timeout)
            else:
                await containers.remove(self.daemon, box.id, force=True)
        finally:
            if box.follower is not None:
                box.follower.stop()

    async def _rename(self, box: Box) -> None:
        """Give the container the name of the track it is on now (an adopted container
        keeps its name: its track is in the state file)."""
        if box.adopted:
            return
        new_name = labels.renamed(box.name, box.track)
        if new_name != box.name:
            await containers.rename(self.daemon, box.id, new_name)
            box.name = new_name

    def _keep_previous_until(self, until: float) -> None:
        if self._previous_timer is not None:
            self._previous_timer.cancel()
        assert self._loop is not None
        self._previous_until = until
        self._previous_timer = self._loop.call_at(
            self._loop.time() + (until - time.monotonic()), lambda: asyncio.ensure_future(self._expire_previous())
        )

    async def _expire_previous(self) -> None:
        async with self._lock:
            previous = self._track("previous")
            if previous and self._mode == "owner":
                self._logs.note(f"previous stable {previous[0].version} no longer kept: stopping it")
                await self._retire(previous, drain=False)
                self._write_state()

    # ------------------------------------------------------------------ recovery and adoption

    async def _recover(self, found: list[labels.Found], saved: state.EnvState | None) -> None:
        """Take over what a crashed cockpit left running, unchanged, and say what it is."""
        taken = [f for f in found if f.running or f.status == "restarting"]
        await self._remove_leftovers([f for f in found if f not in taken or f.track == "previous"])
        taken = [f for f in taken if f.track != "previous"]
        for f in taken:
            image_health = f.health is not None
            box = Box(f.id, f.name, f.track, f.version, f.image_id, f.index, f.port, image_health,
                      running=f.running, restarts=f.restart_count)  # fmt: skip
            self._boxes.append(box)
            self._follow(box)
        for cid, track in (saved.adopted if saved else {}).items():
            data = await containers.inspect(self.daemon, cid)
            if data is not None and (data.get("State") or {}).get("Running"):
                self._boxes.append(self._adopted_box(data, track))
                self._watch({"container": [cid]}, "adopted")
        deadline = time.monotonic() + min(self.options.health_timeout, 10.0)
        results = await asyncio.gather(*(self._wait_healthy(b, deadline) for b in self._boxes), return_exceptions=True)
        for box, result in zip(self._boxes, results, strict=True):
            if isinstance(result, BaseException):
                box.problem = redact(str(result))
        canary = self._track("canary")
        if canary and saved is not None:
            self._weight = saved.weight if self.options.traffic == "weights" else self._ratio_weight(len(canary))
            source = "from the state file" if self.options.traffic == "weights" else "from the container counts"
        else:
            self._weight, source = 0, "no canary" if not canary else "no state file: all traffic on stable"
        self._asked_weight = self._weight
        self._logs.note(
            f"found this environment's containers running (the cockpit stopped without closing): taken over as they are: "
            f"{self._describe_tracks()} (weight {source})",
            "warning",
        )

    async def _remove_leftovers(self, found: list[labels.Found]) -> None:
        """Containers of ours that do not serve (exited, or a kept previous stable whose
        time is unknown): removed, they are the cockpit's own."""
        for f in found:
            await containers.remove(self.daemon, f.id, force=True)
        if found:
            self._logs.note(f"removed {len(found)} leftover container(s) of an earlier run", "warning")

    async def _adopt(self) -> None:
        adopt = self.options.adopt
        assert adopt is not None
        client = self.daemon.client
        if adopt.container is not None:
            try:
                data = await self.daemon.call(client.api.inspect_container, adopt.container)
            except docker.errors.NotFound:
                raise BackendConfigError(f"adopt: no container named {adopt.container!r} on the Docker daemon at {self.daemon.url}") from None
        else:
            wanted = [f"{COMPOSE_SERVICE}={adopt.compose_service}"]
            if adopt.compose_project:
                wanted.append(f"{COMPOSE_PROJECT}={adopt.compose_project}")
            summaries = await self.daemon.call(client.api.containers, filters={"label": wanted, "status": "running"})
            if len(summaries) != 1:
                raise BackendConfigError(
                    f"adopt: {len(summaries)} running containers of Compose service {adopt.compose_service!r}"
                    " found; adoption takes exactly one"
                )
            data = await self.daemon.call(client.api.inspect_container, summaries[0]["Id"])
        if not (data.get("State") or {}).get("Running"):
            raise BackendConfigError(f"adopt: container {data['Name'].lstrip('/')} is not running")
        box = self._adopted_box(data, "stable")
        self._boxes.append(box)
        self._watch({"container": [box.id]}, "adopted")
        await self._wait_healthy(box, time.monotonic() + self.options.health_timeout)
        self._logs.note(f"adopted container {box.name} ({box.version}, port {box.port}) as stable, without a restart")

    def _adopted_box(self, data: dict[str, Any], track: str) -> Box:
        adopt = self.options.adopt
        config = data.get("Config") or {}
        port = adopt.port if adopt and adopt.port else _published_port(data)
        if port is None:
            raise BackendConfigError(
                f"adopt: container {data['Name'].lstrip('/')} publishes no port (host network?); "
                "set adopt.port to where it answers"
            )
        image_ref = str(config.get("Image", ""))
        tag = image_ref.rpartition(":")[2] if ":" in image_ref.rpartition("/")[2] else ""
        version = (adopt.version if adopt and adopt.version else None) or tag or str(data.get("Image", ""))[7:19]
        box = Box(
            str(data["Id"]), data["Name"].lstrip("/"), track, version, str(data.get("Image", "")), 1, port,
            docker_health=health.docker_health(data)[0] is not None, adopted=True,
        )  # fmt: skip
        self._follow(box)
        return box

    # ------------------------------------------------------------------ events and health

    def _watch(self, filters: dict[str, Any], what: str) -> None:
        assert self._loop is not None
        watcher = EventWatcher(self.daemon, filters, f"{self.ctx.env}-{what}", self._loop, self._on_event, self._on_resync)
        watcher.start()
        self._watchers.append(watcher)

    def _box(self, container_id: str) -> Box | None:
        return next((b for b in self._boxes if b.id == container_id), None)

    def _on_event(self, event: Event) -> None:
        if self._mode != "owner":
            return
        box = self._box(str((event.get("Actor") or {}).get("ID") or event.get("id", "")))
        if box is None:
            return
        action = str(event.get("Action", ""))
        attributes = (event.get("Actor") or {}).get("Attributes") or {}
        if action == "die":
            box.running = box.healthy = False
            box.died = True
            code = attributes.get("exitCode", "?")
            box.problem = f"container #{box.index} ({box.name}) exited with code {code}"
            if box not in self._pending:
                self._note(f"{box.source} died (exit code {code}): out of the routing table", "error", box)
                self._spawn(self._after_death(box))
        elif action == "oom":
            box.problem = f"container #{box.index} ({box.name}) was killed: out of memory"
        elif action == "start":
            box.running = True
            if box.died:
                box.died = False
                box.restarts += 1
                self._note(f"{box.source} restarted by Docker (restart {box.restarts}); waiting until healthy", "warning", box)
                if box.waiter is None or box.waiter.done():
                    box.waiter = self._spawn(self._back_when_healthy(box))
        elif action.startswith("health_status"):
            status = action.partition(":")[2].strip()
            if box.docker_health and box.running and box not in self._pending:
                was = box.ready
                box.healthy = status == "healthy"
                if status == "healthy":
                    box.problem = ""
                else:
                    box.problem = f"container #{box.index} ({box.name}) reports HEALTHCHECK {status}"
                if was != box.ready:
                    self._spawn(self._route(f"{box.source} is {status}"))
        elif action == "destroy":
            box.running = box.healthy = False
            box.problem = f"container #{box.index} ({box.name}) was removed outside the cockpit"
            if box not in self._pending:
                self._spawn(self._route(f"{box.source} was removed"))

    async def _after_death(self, box: Box) -> None:
        await self._route(f"{box.source} died")
        data = await containers.inspect(self.daemon, box.id)
        state_ = (data or {}).get("State") or {}
        if data is None or state_.get("Running") or state_.get("Restarting"):
            return
        await asyncio.sleep(0.2)  # Docker decides on a restart right after the die event
        data = await containers.inspect(self.daemon, box.id)
        state_ = (data or {}).get("State") or {}
        if data is None or state_.get("Running") or state_.get("Restarting"):
            return
        self._mark_given_up(box, data)

    def _mark_given_up(self, box: Box, data: dict[str, Any]) -> None:
        policy = self.options.restart
        if box.adopted or policy.policy == "never" or policy.max_restarts == 0:
            box.problem += "; not restarted (restart policy 'never')"
            return
        code = (data.get("State") or {}).get("ExitCode")
        if code == 0:
            box.problem += "; it exited cleanly, so Docker's on-failure policy does not restart it"
            return
        if int(data.get("RestartCount", 0)) < policy.max_restarts:
            # Not Docker giving up: the container was stopped (by hand, or by a daemon that
            # shut down), which no restart policy undoes.
            box.problem += "; stopped outside the cockpit, not restarted by Docker"
            return
        box.crash_loop = True
        box.problem = (
            f"crash loop: container #{box.index} ({box.version}) exited {int(data.get('RestartCount', 0)) + 1} times; "
            f"Docker gave up after {policy.max_restarts} restarts (last exit code {code})"
        )
        self._note(f"{box.source}: {box.problem}", "error", box)
        self._spawn(self._add_last_lines(box))

    async def _add_last_lines(self, box: Box) -> None:
        lines = await containers.last_lines(self.daemon, box.id)
        if lines and box.crash_loop:
            box.problem += f"; last log lines: {redact(lines)}"

    async def _back_when_healthy(self, box: Box) -> None:
        try:
            await self._wait_healthy(box, time.monotonic() + self.options.health_timeout)
        except BackendError as exc:
            box.problem = redact(str(exc))
            return
        box.problem = ""
        if box in self._boxes:
            self._note(f"{box.source} healthy again: back in the routing table", box=box)
            await self._route(f"{box.source} is back")

    def _on_resync(self, why: str) -> None:
        self._logs.note(why, "warning")
        if self._mode == "owner" and (self._resync_task is None or self._resync_task.done()):
            self._resync_task = self._spawn(self._resync())

    async def _resync(self) -> None:
        """Read every container's state: what happened while no event could arrive."""
        summaries = await self._list_states()
        changed = False
        for box in list(self._boxes):
            if box in self._pending or box.adopted:
                continue
            status = summaries.get(box.id)
            running = status == "running"
            if running != box.running:
                changed = True
                box.running = running
                if not running:
                    box.healthy = False
                    box.died = True
                    box.problem = f"container #{box.index} ({box.name}) is {status or 'gone'}"
                    data = await containers.inspect(self.daemon, box.id)
                    if data is not None and not (data.get("State") or {}).get("Restarting"):
                        self._mark_given_up(box, data)
                elif box.waiter is None or box.waiter.done():
                    box.died = False
                    box.waiter = self._spawn(self._back_when_healthy(box))
        if changed:
            await self._route("resynchronised with the daemon")

    async def _monitor(self) -> None:
        """HTTP probes of serving containers without a HEALTHCHECK; a full resync now and then."""
        last_resync = time.monotonic()
        while True:
            await asyncio.sleep(self.options.health_interval)
            try:
                await self._probe_all()
                if time.monotonic() - last_resync >= RESYNC_EVERY:
                    last_resync = time.monotonic()
                    await self._resync()
            except BackendError as exc:
                self._logs.note(f"health monitor: {redact(str(exc))}", "warning")

    async def _probe_all(self) -> None:
        assert self._session is not None
        watched = [
            b for b in self._boxes
            if b not in self._pending and b.running and not b.docker_health and not b.crash_loop
            and (b.waiter is None or b.waiter.done())
        ]  # fmt: skip
        timeout = min(health.PROBE_TIMEOUT, self.options.health_interval * 2)
        results = await asyncio.gather(*(health.probe(self._session, b.url + self.options.health_path, timeout) for b in watched))
        changed = False
        for box, error in zip(watched, results, strict=True):
            if box not in self._boxes or not box.running:
                continue
            label = f"container #{box.index} ({box.name})"
            change = record_probe(box, error, self.options.health_failures, label)
            if change is ProbeChange.BACK:
                self._note(f"{box.source} answers again: back in the routing table", box=box)
            elif change is ProbeChange.OUT:
                self._note(f"{box.source}: {box.problem}", "error", box)
            changed = changed or change is not None
        if changed:
            await self._route("health probes")

    async def _route(self, why: str = "") -> None:
        """Push the table of ready containers at the current weight; does not take the
        lock (a deploy may hold it for its whole health timeout)."""
        if self._mode != "owner" or self._control is None:
            return
        stable = [b for b in self._track("stable") if b.ready]
        canary = [b for b in self._track("canary") if b.ready]
        try:
            await self._push_table(stable, canary, self._weight)
        except BackendError as exc:
            self._logs.note(f"could not update the routing table: {redact(str(exc))}", "error")
            return
        if why:
            text = f"routing table updated ({why}): {len(stable)} stable, {len(canary)} canary container(s) ready"
            if self._track("canary") and not canary and stable:
                text += "; no canary container is ready: the router sends the canary's share to stable"
            elif not stable and not canary:
                text += "; no container is ready: requests fail"
            self._logs.note(redact(text), "warning")

    # ------------------------------------------------------------------ router

    async def _start_router(self, listen: Any, control: Any) -> None:
        assert self._session is not None
        self._router = RouterHandle(
            env=self.ctx.env, marker=self._marker, token=self._token, session=self._session,
            logs=self._logs, on_restart=self._write_state,
        )  # fmt: skip
        await self._router.start(listen, control)
        self._control = self._router
        self._router_url = self._router.router_url

    async def _push(self, weight: int) -> None:
        await self._push_table(self._track("stable"), self._track("canary"), weight)

    async def _push_table(self, stable: list[Box], canary: list[Box], weight: int) -> None:
        assert self._control is not None
        await self._control.put_table([b.url for b in stable if b.ready], [b.url for b in canary if b.ready], weight)
        self._weight = weight

    # ------------------------------------------------------------------ status helpers

    async def _list_states(self) -> dict[str, str]:
        """Container id -> Docker state ("running", "exited", "restarting", ...), one call."""
        ids = {b.id for b in self._boxes if b.adopted}
        try:
            summaries = await self.daemon.call(
                self.daemon.client.api.containers, all=True, filters={"label": labels.selector(self.ctx.service, self.ctx.env)}
            )
            found = {s["Id"]: str(s.get("State", "")) for s in summaries}
            for cid in ids:
                data = await containers.inspect(self.daemon, cid)
                found[cid] = str(((data or {}).get("State") or {}).get("Status", "")) if data else ""
        except docker.errors.APIError as exc:
            raise BackendError(f"cannot list the containers of {self.ctx.env}: {api_message(exc)}") from None
        return found

    def _track_status(self, boxes: list[Box], states: dict[str, str], routed: set[str]) -> TrackStatus | None:
        if not boxes:
            return None
        ready = sum(1 for b in boxes if b.ready and states.get(b.id) == "running" and b.url in routed)
        problems = [b.problem for b in boxes if b.problem]
        problems += [f"container #{b.index} ({b.name}) is {states.get(b.id) or 'gone'}" for b in boxes
                     if states.get(b.id) != "running" and not b.problem]  # fmt: skip
        return TrackStatus(
            version="/".join(sorted({b.version for b in boxes})),
            replicas_desired=len(boxes),
            replicas_ready=ready,
            restarts=sum(b.restarts for b in boxes),
            crash_loop=any(b.crash_loop for b in boxes),
            problem="; ".join(problems),
            image="/".join(sorted({b.image_id for b in boxes})),
        )

    def _detail(self, router: dict[str, Any], tags: dict[str, str] | str) -> str:
        """``tags``: the repository's tag -> image id, or why they could not be read."""
        parts = [f"docker {self.daemon.url}"]
        for track in ("stable", "canary"):
            parts += self._image_words(track, tags if isinstance(tags, dict) else None)
        if isinstance(tags, str):
            parts.append(f"tags not compared: {tags}")
        canary = self._track("canary")
        if canary:
            parts.append(f"preview (canary direct): {canary[0].url}")
            if self.options.traffic == "replica-ratio":
                total = len(self._track("stable")) + len(canary)
                parts.append(f"replica ratio: {len(canary)} canary of {total} containers = {router['weight']} % (asked {self._asked_weight} %)")
        previous = self._track("previous")
        if previous:
            left = max(0.0, self._previous_until - time.monotonic())
            parts.append(f"previous stable {previous[0].version} kept for instant rollback ({format_duration(left)} left)")
        requests = sum(router["requests"].values())
        parts.append(f"router pid {router['pid']}: {requests} requests, {router['retries']} retried, {router['failed']} failed")
        return "; ".join(parts)

    def _image_words(self, track: str, tags: dict[str, str] | None) -> list[str]:
        """Which image a track runs, and whether its version's tag still names it (a tag
        moved after the deploy, or a rollback that ran a retained image, shows here)."""
        boxes = self._track(track)
        if not boxes:
            return []
        words = []
        for version, image_id in sorted({(b.version, b.image_id) for b in boxes}):
            text = f"{track} {version} runs image {images.short(image_id)}"
            tag = tags.get(version) if tags is not None else None
            if tags is not None and not any(b.adopted for b in boxes) and tag != image_id:
                now = f"names {images.short(tag)}" if tag else "is gone"
                text += f" (the tag {self.options.image}:{version} {now})"
            words.append(text)
        return words

    def _describe_tracks(self) -> str:
        words = []
        for track in ("stable", "canary"):
            boxes = self._track(track)
            if boxes:
                words.append(f"{track} {boxes[0].version} ({len(boxes)} container(s))")
        if self._track("canary"):
            words.append(f"at {self._weight} %")
        return ", ".join(words) or "no container"

    async def _attached_status(self) -> BackendStatus:
        found = await containers.labelled(self.daemon, self.ctx.service, self.ctx.env)
        weight = self._attached.weight if self._attached else 0
        detail = "attached read-only"
        if self._control is not None:
            try:
                weight = int((await self._control.state())["weight"])
            except BackendError as exc:
                detail += f"; router not reachable ({exc}); weight as last written"
        tracks: dict[str, TrackStatus | None] = {}
        for track in ("stable", "canary"):
            mine = [f for f in found if f.track == track]
            tracks[track] = None if not mine else TrackStatus(
                version="/".join(sorted({f.version for f in mine})),
                replicas_desired=len(mine),
                replicas_ready=sum(1 for f in mine if f.running and f.health in (None, "healthy")),
                restarts=sum(f.restart_count for f in mine),
                image="/".join(sorted({f.image_id for f in mine})),
            )  # fmt: skip
        return BackendStatus(stable=tracks["stable"], canary=tracks["canary"], weight=weight, url=self._router_url, detail=detail)

    # ------------------------------------------------------------------ plumbing

    def _follow(self, box: Box) -> None:
        assert self._loop is not None
        box.follower = LogFollower(self.daemon, box.id, self._logs, self._loop, lambda: (box.source, box.log_track()))
        box.follower.start()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and (exc := task.exception()) is not None:
            self._logs.note(f"docker backend task failed: {redact(str(exc) or repr(exc))}", "error")

    def _note(self, text: str, level: str = "info", box: Box | None = None) -> None:
        self._logs.note(redact(text), level, box.log_track() if box is not None else None)

    def _secret_env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for var, name in self.options.secret_env.items():
            if self.ctx.secrets is None:
                raise BackendConfigError(f"secret_env {var} refers to secret {name!r}, but no secrets are available here")
            try:
                values[var] = self.ctx.secrets(name)
            except Exception as exc:  # any resolver failure is a configuration problem
                raise BackendConfigError(f"secret_env {var}: secret {name!r} cannot be resolved ({redact(str(exc))})") from None
        return values

    def _remember_stable(self) -> None:
        stable = self._track("stable")
        if not stable:
            return
        head = stable[0]
        if not self._history or self._history[-1].image_id != head.image_id:
            self._history.append(state.Deployment(head.version, head.image_id, time.time()))
            self._history = self._history[-self.options.retain :]
            if not head.adopted:
                self._spawn(self._retain(head))

    async def _retain(self, head: Box) -> None:
        image = images.Image(head.image_id, head.version, head.docker_health)
        await images.retain(self.daemon, self.options.image, self.ctx.env, image, [d.image_id for d in self._history])

    def _write_state(self) -> None:
        if self._mode != "owner" or self._router is None:
            return
        state.write(
            self.ctx.run_dir,
            state.EnvState(
                service=self.ctx.service, env=self.ctx.env, owner_pid=os.getpid(),
                router_url=self._router_url or "", control_url=self._router.url, token=self._token,
                weight=self._weight, adopted={b.id: b.track for b in self._boxes if b.adopted},
                history=list(self._history),
            ),
        )  # fmt: skip

    def _keep_only_history(self) -> None:
        """After a clean close nothing runs, so the state file keeps only the deployment
        history (no router, no token): the next start still knows which image each
        retained version ran, and a rollback by version runs that image, not a moved tag."""
        with contextlib.suppress(OSError):
            if self._history:
                state.write(self.ctx.run_dir, state.EnvState(self.ctx.service, self.ctx.env, history=list(self._history)))
            else:
                state.path_in(self.ctx.run_dir).unlink()

    async def _teardown(self, *, remove: bool) -> None:
        for watcher in self._watchers:
            watcher.stop()
        tasks = [t for t in (self._monitor_task, self._resync_task, *(b.waiter for b in self._boxes)) if t]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._previous_timer is not None:
            self._previous_timer.cancel()
        if self._router is not None:
            await self._router.stop()
        if remove:
            boxes = list(self._boxes)
            adopted = [b for b in boxes if b.adopted]
            await asyncio.gather(*(self._dispose(b) for b in boxes if not b.adopted), return_exceptions=True)
            for box in adopted:  # left running as found: the cockpit did not create it
                if box.follower is not None:
                    box.follower.stop()
            self._boxes, self._pending = [], set()
            self._keep_only_history()
        self._watchers, self._monitor_task, self._router = [], None, None

    def _require_owner(self, *, reading: bool = False) -> None:
        if self._mode == "attached":
            owner = self._attached.owner_pid if self._attached else "?"
            raise BackendError(f"attached read-only: {self.ctx.env} is driven by cockpit pid {owner}")
        if self._mode != "owner":
            error = BackendUnavailable if reading else BackendError
            raise error(f"the docker backend of {self.ctx.env} is not started ({self._mode})")


def _published_port(data: dict[str, Any]) -> int | None:
    ports = ((data.get("NetworkSettings") or {}).get("Ports")) or {}
    for bindings in ports.values():
        for binding in bindings or []:
            if binding.get("HostPort"):
                return int(binding["HostPort"])
    return None
