"""The local backend: each version runs as replicas (real processes on 127.0.0.1) behind
a weighted HTTP router, so a release can be practised with real traffic.

This module is the replica and track logic only. The router (its process, control client
and lifecycle) is :mod:`cockpit.adapters.router`; spawning and supervising children is
:mod:`cockpit.adapters.supervise`; who owns a running environment and how another
cockpit attaches to it is :mod:`.runtime`. Load for the demo is the demo's business
(:mod:`cockpit.demo.load`), not the backend's.

Zero downtime comes from one rule applied to every cut-over: change the routing table
first, let the router drain what is in flight on the retired replicas (bounded by
``drain_timeout``), and only then stop them (SIGTERM, SIGKILL after a grace period).

All children are spawned from the event loop thread: ``PR_SET_PDEATHSIG`` fires when the
forking *thread* exits, and the loop thread lives as long as the cockpit.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import ClassVar, Literal

import aiohttp

from cockpit.adapters.base import (
    AdapterContext,
    BackendConfigError,
    BackendError,
    BackendStatus,
    BackendUnavailable,
    Capability,
    DeployBackend,
    HealthCheckFailed,
    LogSink,
    Track,
    VersionNotFound,
)
from cockpit.adapters.local import runtime
from cockpit.adapters.local.options import LocalOptions
from cockpit.adapters.local.replica import Replica, track_status
from cockpit.adapters.probe_state import ProbeChange, record_probe
from cockpit.adapters.router.control import RouterControl
from cockpit.adapters.router.handle import RouterHandle
from cockpit.adapters.supervise import procs
from cockpit.adapters.supervise.logs import LogHub
from cockpit.adapters.supervise.managed import STOP_GRACE, ManagedProcess
from cockpit.secrets import redact
from cockpit.units import format_duration

HEALTH_POLL = 0.1
PROBE_TIMEOUT = 1.0  # ceiling of one health probe of a serving replica
_STATE_WORDS = {"idle": "idle", "owner": "started", "attached": "attached", "closed": "closed"}


class LocalBackend(DeployBackend):
    """Runs each version as local processes behind a weighted router, per environment."""

    name: ClassVar[str] = "local"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.SET_WEIGHT,
            Capability.BLUE_GREEN,
            Capability.LOGS,
            Capability.SCRAPE_TARGETS,
            Capability.ROLLBACK_TO_REVISION,
            Capability.OWNS_WORKLOADS,
        }
    )
    Options: ClassVar[type[LocalOptions]] = LocalOptions
    options: LocalOptions  # the base declares a BaseModel; this backend is always given its own model

    def __init__(self, ctx: AdapterContext, options: LocalOptions) -> None:
        self.ctx = ctx
        self.options = options
        self._logs = LogHub(ctx.env, notes_source="local")
        self._lock = asyncio.Lock()
        self._mode: Literal["idle", "owner", "attached", "closed"] = "idle"
        self._marker = f"{ctx.service}/{ctx.env}/{uuid.uuid4().hex}"
        self._token = secrets.token_hex(16)
        self._session: aiohttp.ClientSession | None = None
        self._control: RouterControl | RouterHandle | None = None
        self._router: RouterHandle | None = None
        self._router_url: str | None = None
        self._stable: list[Replica] = []
        self._canary: list[Replica] = []
        self._pending: list[Replica] = []  # started, not yet in the routing table
        self._weight = 0
        self._attached: runtime.Runtime | None = None
        self._monitor_task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self, stable_version: str) -> None:
        async with self._lock:
            if self._mode != "idle":
                raise BackendError(
                    f"the local backend of {self.ctx.env} is already {_STATE_WORDS[self._mode]}"
                )
            self._check_version(stable_version)
            self.ctx.run_dir.mkdir(parents=True, exist_ok=True)
            await self._reap_stale()
            listen = procs.bind_listener(self.options.port, self.ctx.env)
            try:
                control = procs.bind_listener(0, self.ctx.env)
            except BaseException:
                listen.close()
                raise
            self._mode = "owner"
            try:
                await self._start_router(listen, control)
                self._stable = await self._start_replicas(stable_version, Track.STABLE)
                await self._push_table(self._stable, [], 0)
                self._write_runtime()
            except BaseException:
                await self._stop_everything()
                runtime.remove(self.ctx.run_dir)
                if self._session is not None:
                    await self._session.close()
                    self._session = None
                self._mode = "idle"
                raise
            self._monitor_task = asyncio.ensure_future(self._monitor())
            self._logs.note(f"{self.ctx.env} up at {self._router_url}: stable {stable_version} at 100 %")

    async def attach(self) -> None:
        async with self._lock:
            if self._mode != "idle":
                raise BackendError(
                    f"the local backend of {self.ctx.env} is already {_STATE_WORDS[self._mode]}"
                )
            rt = runtime.running(self.ctx.run_dir, self.ctx.service, self.ctx.env)
            session = self._new_session()
            control = RouterControl(session, rt.control_url, rt.token, self.ctx.env)
            try:
                await control.state()
            except BaseException:
                await session.close()
                raise
            self._session, self._control, self._attached = session, control, rt
            self._router_url = rt.router_url
            self._mode = "attached"

    async def close(self) -> None:
        async with self._lock:
            if self._mode == "owner":
                await self._stop_watching()
                await self._stop_everything()
                runtime.remove(self.ctx.run_dir)
            if self._session is not None:
                await self._session.close()
                self._session = None
            self._mode = "closed"

    # ------------------------------------------------------------------ observation

    async def status(self) -> BackendStatus:
        control = self._require_control()
        state = await control.state()
        routed = {t: {e["url"] for e in entries if not e["down"]} for t, entries in state["tracks"].items()}
        if self._mode == "attached":
            rt = runtime.read(self.ctx.run_dir) or self._attached
            assert rt is not None
            self._attached = rt
            detail = f"attached read-only, driven by cockpit pid {rt.owner_pid}; "
            records = list(rt.replicas)
        else:
            records = [r.record() for r in (*self._stable, *self._canary)]
            detail = ""
        stable = track_status(records, "stable", routed.get("stable", set()))
        canary = track_status(records, "canary", routed.get("canary", set()))
        # A canary replica answers directly too: the blue-green preview's own address.
        preview_url = next(
            (r.url for r in records if r.track == "canary" and r.healthy and procs.alive(r.pid)), None
        )
        requests = sum(state["requests"].values())
        detail += (
            f"router pid {state['pid']}: {requests} requests, {state['retries']} retried, "
            f"{state['failed']} failed at the router"
        )
        return BackendStatus(
            stable=stable,
            canary=canary,
            weight=int(state["weight"]),
            url=self._router_url,
            detail=detail,
            preview_url=preview_url,
        )

    async def versions(self) -> Sequence[str]:
        return list(self.options.versions)

    def attach_log_sink(self, sink: LogSink) -> None:
        self._logs.attach(sink)

    def scrape_targets(self) -> Mapping[Track, Sequence[str]]:
        if self._mode == "attached":
            rt = runtime.read(self.ctx.run_dir) or self._attached
            records = rt.replicas if rt else []
            return {
                t: [f"{r.url}/metrics" for r in records if r.track == t and r.healthy and procs.alive(r.pid)]
                for t in (Track.STABLE, Track.CANARY)
            }
        return {
            Track.STABLE: [f"{r.url}/metrics" for r in self._stable if r.ready],
            Track.CANARY: [f"{r.url}/metrics" for r in self._canary if r.ready],
        }

    # ------------------------------------------------------------------ actions

    async def deploy_canary(self, version: str) -> None:
        async with self._lock:
            self._require_owner()
            self._check_version(version)
            if self._canary:  # a new canary replaces the old one, which is aborted first
                await self._remove_canary()
            canary = await self._start_replicas(version, Track.CANARY)
            try:
                await self._push_table(self._stable, canary, 0)
            except BaseException:
                await self._stop_replicas(canary)
                raise
            self._canary, self._weight = canary, 0
            self._write_runtime()
            self._logs.note(f"canary {version} healthy, at weight 0 %", track=Track.CANARY)

    async def set_weight(self, weight: int) -> None:
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
            raise BackendError(f"canary weight must be a whole number from 0 to 100, found {weight!r}")
        async with self._lock:
            self._require_owner()
            if not self._canary and weight != 0:
                raise BackendError(f"no canary runs in {self.ctx.env}: deploy one before setting a weight")
            if weight == self._weight:
                return
            await self._push_table(self._stable, self._canary, weight)
            self._weight = weight
            self._write_runtime()
            self._logs.note(f"canary weight {weight} %", track=Track.CANARY)

    async def promote_canary(self) -> None:
        async with self._lock:
            self._require_owner()
            if not self._canary:
                raise BackendError(f"no canary runs in {self.ctx.env}: nothing to promote")
            old, new = self._stable, self._canary
            await self._push_table(new, [], 0)
            for r in new:
                r.track = Track.STABLE
            self._stable, self._canary, self._weight = new, [], 0
            self._write_runtime()
            self._logs.note(f"promoted {new[0].version} to stable at 100 %; retiring the old stable")
            await self._retire(old)

    async def remove_canary(self) -> None:
        async with self._lock:
            self._require_owner()
            await self._remove_canary()

    async def deploy_stable(self, version: str) -> None:
        async with self._lock:
            self._require_owner()
            self._check_version(version)
            # Start and health-check the new version before touching traffic: if it never
            # becomes healthy, nothing has changed.
            new = await self._start_replicas(version, Track.STABLE)
            old = [*self._stable, *self._canary]
            try:
                await self._push_table(new, [], 0)
            except BaseException:
                await self._stop_replicas(new)
                raise
            self._stable, self._canary, self._weight = new, [], 0
            self._write_runtime()
            self._logs.note(f"stable is now {version} at 100 %; retiring {len(old)} old replica(s)")
            await self._retire(old)

    # ------------------------------------------------------------------ internals

    async def _remove_canary(self) -> None:
        if not self._canary:
            return
        canary = self._canary
        await self._push_table(self._stable, [], 0)
        self._canary, self._weight = [], 0
        self._write_runtime()
        self._logs.note(f"canary {canary[0].version} removed: all traffic on stable", track=Track.CANARY)
        await self._retire(canary)

    async def _retire(self, replicas: list[Replica]) -> None:
        """Wait for requests in flight on replicas already out of the table, then stop them."""
        if not replicas:
            return
        for r in replicas:
            r.healthy = False
        assert self._control is not None
        try:
            result = await self._control.drain([r.url for r in replicas], self.options.drain_timeout)
            if not result.drained:
                self._logs.note(
                    f"{sum(result.in_flight.values())} request(s) still in flight after "
                    f"{format_duration(self.options.drain_timeout)}; stopping anyway",
                    "warning",
                )
        except BackendError as exc:  # router gone: nothing can be in flight through it
            self._logs.note(f"could not drain: {exc}", "warning")
        await self._stop_replicas(replicas)
        self._write_runtime()

    async def _stop_replicas(self, replicas: list[Replica]) -> None:
        await asyncio.gather(*(r.proc.stop() for r in replicas if r.proc is not None))
        for r in replicas:
            r.healthy = False
            if r in self._pending:
                self._pending.remove(r)

    async def _start_replicas(self, version: str, track: Track) -> list[Replica]:
        replicas: list[Replica] = []
        try:
            for index in range(1, self.options.replicas + 1):
                replicas.append(await self._spawn_replica(version, index, track))
            self._write_runtime()
            deadline = time.monotonic() + self.options.health_timeout
            checks = [asyncio.ensure_future(self._wait_healthy(r, deadline)) for r in replicas]
            done, pending = await asyncio.wait(checks, return_when=asyncio.FIRST_EXCEPTION)
            for task in pending:
                task.cancel()
            for task in done:
                if (exc := task.exception()) is not None:
                    raise exc
        except BaseException:
            await self._stop_replicas(replicas)
            self._write_runtime()
            raise
        for r in replicas:
            self._pending.remove(r)
        return replicas

    async def _spawn_replica(self, version: str, index: int, track: Track) -> Replica:
        replica = Replica(version=version, index=index, port=0, track=track)
        self._pending.append(replica)
        await self._spawn_process(replica)
        return replica

    async def _spawn_process(self, replica: Replica) -> None:
        """Start (or start again) ``replica``'s process on a fresh port."""
        port = procs.free_port()
        argv = self.options.render(
            version=replica.version,
            port=port,
            env=self.ctx.env,
            service=self.ctx.service,
            python=procs.python(),
            # Absolute, as the plan's sqlite:///{state_dir}/... database URLs are filled.
            state_dir=str((self.ctx.state_dir or self.ctx.run_dir).absolute()),
        )
        env = procs.child_env(
            self._marker,
            {**self.options.env, **self._secret_env(), "PORT": str(port)},
            cockpit_path_too=procs.runs_cockpit(argv),
        )
        try:
            process = await procs.spawn(argv, env=env, grace=STOP_GRACE)
        except OSError as exc:
            raise BackendConfigError(f"cannot start {argv[0]!r} for version {replica.version}: {exc}") from None
        replica.port, replica.healthy, replica.failures = port, False, 0
        replica.proc = ManagedProcess(
            process, self._logs, lambda: (replica.source, replica.track), lambda p: self._lost(replica, p)
        )

    def _secret_env(self) -> dict[str, str]:
        """The ``secret_env`` variables with their values, resolved now (and masked from
        then on in everything shown). Errors name the reference, never a value."""
        values: dict[str, str] = {}
        for var, name in self.options.secret_env.items():
            if self.ctx.secrets is None:
                raise BackendConfigError(
                    f"secret_env {var} refers to secret {name!r}, but no secrets are available here"
                )
            try:
                values[var] = self.ctx.secrets(name)
            except Exception as exc:  # any resolver failure is a configuration problem
                raise BackendConfigError(
                    f"secret_env {var}: secret {name!r} cannot be resolved ({redact(str(exc))})"
                ) from None
        return values

    def _serves(self, replica: Replica) -> bool:
        """Still part of a track (not retired, not a deploy in progress)."""
        return self._mode == "owner" and (replica in self._stable or replica in self._canary)

    def _lost(self, replica: Replica, proc: ManagedProcess) -> None:
        """A replica's process exited on its own: out of the table at once (the router
        would otherwise keep retrying it), then restarted per the plan's policy."""
        if proc is not replica.proc:
            return  # an old process of a replica restarted since
        replica.healthy = False
        replica.problem = f"replica #{replica.index} exited with code {proc.process.returncode}" + (
            f" (last stderr line: {redact(proc.last_stderr)})" if proc.last_stderr else ""
        )
        if self._mode == "owner":
            self._write_runtime()
        if not self._serves(replica) or replica.restarting:
            return  # a deploy's own health check reports it / the restart loop handles it
        replica.keeper = asyncio.ensure_future(self._keep_alive(replica))
        replica.keeper.add_done_callback(self._keeper_done)

    def _keeper_done(self, task: asyncio.Task[None]) -> None:
        # A restart loop that dies of a bug must say so, not leave a replica silently out.
        if not task.cancelled() and (exc := task.exception()) is not None:
            self._logs.note(f"restart loop failed: {redact(repr(exc))}", "error")

    async def _keep_alive(self, replica: Replica) -> None:
        await self._route(f"{replica.source} is gone")
        policy = self.options.restart
        while self._serves(replica):
            now = time.monotonic()
            while replica.restart_times and now - replica.restart_times[0] > policy.window:
                replica.restart_times.popleft()
            if policy.policy == "never":
                self._note(f"{replica.source} is not restarted (restart policy 'never')", "warning", replica)
                return
            if len(replica.restart_times) >= policy.max_restarts:
                last = redact(replica.proc.last_stderr) if replica.proc is not None else ""
                replica.crash_loop = True
                replica.problem = (
                    f"crash loop: replica #{replica.index} ({replica.version}) exited "
                    f"{len(replica.restart_times) + 1} times within {format_duration(policy.window)}; "
                    f"last stderr line: {last or '(none)'}"
                )
                self._note(f"{replica.source}: {replica.problem}; no more restarts", "error", replica)
                self._write_runtime()
                return
            delay = min(policy.backoff * 2 ** len(replica.restart_times), policy.max_backoff)
            self._note(f"restarting {replica.source} in {format_duration(delay)}", "warning", replica)
            await asyncio.sleep(delay)
            if not self._serves(replica):
                return
            replica.restart_times.append(time.monotonic())
            replica.restarts += 1
            try:
                await self._spawn_process(replica)
                self._write_runtime()
                await self._wait_healthy(replica, time.monotonic() + self.options.health_timeout)
            except BackendError as exc:
                replica.problem = f"restart of replica #{replica.index} failed: {exc}"
                self._note(replica.problem, "error", replica)
                if replica.proc is not None:
                    await replica.proc.stop()
                continue
            replica.problem = ""
            self._note(
                f"{replica.source} restarted (pid {replica.proc.pid if replica.proc else '?'}, "
                f"restart {replica.restarts}), healthy: back in the routing table",
                replica=replica,
            )
            async with self._lock:
                if self._serves(replica):
                    await self._route()
            self._write_runtime()
            return

    async def _wait_healthy(self, replica: Replica, deadline: float) -> None:
        assert replica.proc is not None and self._session is not None
        url = replica.url + self.options.health_path
        last_error = "no answer yet"
        while True:
            if not replica.proc.running:
                await replica.proc.flush()
                raise HealthCheckFailed(
                    f"{replica.version} replica #{replica.index} exited with code "
                    f"{replica.proc.process.returncode} before it became healthy "
                    f"(last stderr line: {redact(replica.proc.last_stderr) or '(none)'})"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise HealthCheckFailed(
                    f"{replica.version} replica #{replica.index} did not answer {self.options.health_path} "
                    f"with 200 within {format_duration(self.options.health_timeout)} "
                    f"(last error: {last_error}; "
                    f"last stderr line: {redact(replica.proc.last_stderr) or '(none)'})"
                )
            try:
                timeout = aiohttp.ClientTimeout(total=max(0.05, min(1.0, remaining)))
                async with self._session.get(url, timeout=timeout) as resp:
                    await resp.read()
                    if resp.status == 200:
                        await self._check_owner(replica)
                        replica.healthy = True
                        return
                    last_error = f"HTTP {resp.status}"
            except aiohttp.ClientConnectorError:
                last_error = "connection refused"
            except (aiohttp.ClientError, TimeoutError) as exc:
                last_error = str(exc) or type(exc).__name__
            await asyncio.sleep(min(HEALTH_POLL, max(0.0, deadline - time.monotonic())))

    async def _check_owner(self, replica: Replica) -> None:
        """An answer on the port proves nothing: the socket listening there must be the
        replica's own (another local user may have bound the port first)."""
        assert replica.proc is not None
        uid = await asyncio.to_thread(procs.port_intruder, replica.port, replica.proc.pid)
        if uid is not None:
            raise HealthCheckFailed(
                f"{replica.version} replica #{replica.index}: port {replica.port} is held by another "
                f"process (uid {uid}), not by the replica; it gets no traffic"
            )

    # ------------------------------------------------------------------ health monitor

    async def _monitor(self) -> None:
        """Probe every serving replica; keep the routing table to those that answer."""
        while True:
            await asyncio.sleep(self.options.health_interval)
            try:
                await self._monitor_once()
            except BackendError as exc:  # router unreachable: the status shows it
                self._logs.note(f"health monitor: {redact(str(exc))}", "warning")

    async def _monitor_once(self) -> None:
        watched = [
            r for r in (*self._stable, *self._canary)
            if r.proc is not None and r.proc.running and not r.restarting and not r.crash_loop
        ]  # fmt: skip
        results = await asyncio.gather(*(self._probe(r) for r in watched))
        answered = [r for r, error in zip(watched, results, strict=True) if error is None]
        intruders = await asyncio.to_thread(self._intruders, answered) if answered else {}
        results = [intruders.get(r, error) for r, error in zip(watched, results, strict=True)]
        changed = False
        for replica, error in zip(watched, results, strict=True):
            if not self._serves(replica) or replica.proc is None or not replica.proc.running:
                continue  # retired or exited meanwhile (the exit has its own path)
            label = f"replica #{replica.index}"
            change = record_probe(replica, error, self.options.health_failures, label)
            if change is ProbeChange.BACK:
                self._note(f"{replica.source} answers again: back in the routing table", replica=replica)
            elif change is ProbeChange.OUT:
                self._note(f"{replica.source} {replica.problem[len(label) + 1:]}", "error", replica)
            changed = changed or change is not None
        if changed:
            await self._route("health probes")
            self._write_runtime()
        if not self._lock.locked():
            async with self._lock:  # repair a table an action pushed with a replica lost meanwhile
                await self._reconcile()

    async def _probe(self, replica: Replica) -> str | None:
        """None if the replica answers its health path with 200 (who answered is checked
        by :meth:`_intruders`)."""
        assert self._session is not None and replica.proc is not None
        timeout = aiohttp.ClientTimeout(total=min(PROBE_TIMEOUT, self.options.health_interval * 2))
        try:
            async with self._session.get(replica.url + self.options.health_path, timeout=timeout) as resp:
                await resp.read()
                if resp.status != 200:
                    return f"HTTP {resp.status}"
        except aiohttp.ClientConnectorError:
            return "connection refused"
        except (aiohttp.ClientError, TimeoutError) as exc:
            return str(exc) or type(exc).__name__
        return None

    @staticmethod
    def _intruders(replicas: Sequence[Replica]) -> dict[Replica, str]:
        """Replicas whose port someone else listens on: one read of the socket tables for
        all of them (run in a thread: it is /proc work, not for the event loop)."""
        found = procs.listeners({r.port for r in replicas})
        errors: dict[Replica, str] = {}
        for r in replicas:
            uid = procs.port_intruder(r.port, r.proc.pid, found.get(r.port, {})) if r.proc else None
            if uid is not None:  # uid 0 is an intruder too
                errors[r] = f"port {r.port} is held by another process (uid {uid})"
        return errors

    async def _route(self, why: str = "") -> None:
        """Push the table of ready replicas (same weight). Removals do not wait for the
        lock: a deploy may hold it for its whole health timeout."""
        stable = [r for r in self._stable if r.ready]
        canary = [r for r in self._canary if r.ready]
        try:
            await self._push_table(stable, canary, self._weight)
        except BackendError as exc:
            self._logs.note(f"could not update the routing table: {redact(str(exc))}", "error")
            return
        if why:
            self._note_table(why, stable, canary)

    def _note_table(self, why: str, stable: list[Replica], canary: list[Replica]) -> None:
        text = f"routing table updated ({why}): {len(stable)} stable, {len(canary)} canary replica(s) ready"
        if self._canary and not canary and stable:
            text += "; no canary replica is ready: the router sends the canary's share to stable"
        elif self._stable and not stable and canary:
            text += "; no stable replica is ready: the router sends stable's share to the canary"
        elif not stable and not canary:
            text += "; no replica is ready: requests fail"
        self._logs.note(redact(text), "warning")

    async def _reconcile(self) -> None:
        state = await self._require_control().state()
        seen = {t: [e["url"] for e in entries] for t, entries in state["tracks"].items()}
        want = {
            "stable": [r.url for r in self._stable if r.ready],
            "canary": [r.url for r in self._canary if r.ready],
        }
        if seen.get("stable", []) != want["stable"] or seen.get("canary", []) != want["canary"]:
            await self._route("repair")

    async def _stop_watching(self) -> None:
        tasks = [t for t in (self._monitor_task, *(r.keeper for r in (*self._stable, *self._canary))) if t]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._monitor_task = None

    def _note(self, text: str, level: str = "info", replica: Replica | None = None) -> None:
        self._logs.note(redact(text), level, replica.track if replica is not None else None)

    async def _start_router(self, listen: socket.socket, control: socket.socket) -> None:
        # The handle keeps the sockets (a dead router's port waits, it is never refused or
        # taken), restarts the router when it dies and restores its table.
        self._session = self._new_session()
        self._router = RouterHandle(
            env=self.ctx.env,
            marker=self._marker,
            token=self._token,
            session=self._session,
            logs=self._logs,
            on_restart=self._write_runtime,  # the runtime file names the new router pid
        )
        await self._router.start(listen, control)
        self._control = self._router
        self._router_url = self._router.router_url
        self._write_runtime()

    async def _stop_everything(self) -> None:
        replicas = [*self._stable, *self._canary, *self._pending]
        stops = [r.proc.stop() for r in replicas if r.proc is not None]
        if self._router is not None:
            stops.append(self._router.stop())
        await asyncio.gather(*stops, return_exceptions=True)
        self._stable, self._canary, self._pending, self._router = [], [], [], None

    async def _reap_stale(self) -> None:
        """Kill what a crashed earlier cockpit left running for this environment."""
        killed = await asyncio.to_thread(runtime.claim, self.ctx.run_dir, self.ctx.service, self.ctx.env)
        if killed:
            self._logs.note(f"killed {killed} leftover process(es) of an earlier run", "warning")

    def _write_runtime(self) -> None:
        if self._mode != "owner" or self._router is None or self._control is None:
            return
        assert self._router_url is not None
        replicas = [*self._stable, *self._canary, *self._pending]
        runtime.write(
            self.ctx.run_dir,
            runtime.Runtime(
                service=self.ctx.service,
                env=self.ctx.env,
                owner_pid=os.getpid(),
                marker=self._marker,
                router_pid=self._router.pid,
                router_url=self._router_url,
                control_url=self._control.url,
                token=self._token,
                weight=self._weight,
                replicas=[r.record() for r in replicas if r.proc is not None and r.proc.running],
            ),
        )

    async def _push_table(self, stable: list[Replica], canary: list[Replica], weight: int) -> None:
        assert self._control is not None
        await self._control.put_table([r.url for r in stable], [r.url for r in canary], weight)

    def _new_session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    def _check_version(self, version: str) -> None:
        if version not in self.options.versions:
            raise VersionNotFound(
                f"version {version!r} does not exist in {self.ctx.env}; "
                f"known versions: {', '.join(self.options.versions)}"
            )

    def _require_owner(self) -> None:
        if self._mode == "attached":
            owner = self._attached.owner_pid if self._attached else "?"
            raise BackendError(f"attached read-only: {self.ctx.env} is driven by cockpit pid {owner}")
        if self._mode != "owner":
            raise BackendError(f"the local backend of {self.ctx.env} is not started ({self._mode})")

    def _require_control(self) -> RouterControl | RouterHandle:
        if self._mode not in ("owner", "attached") or self._control is None:
            raise BackendUnavailable(f"the local backend of {self.ctx.env} is not running ({self._mode})")
        return self._control
