"""The ``http`` backend: a deploy platform driven through its HTTP API, as the plan maps it.

With ``driver = "cockpit"`` the cockpit walks the steps and calls the plan's actions
(this class). With ``driver = "platform"`` the platform walks them and the cockpit mirrors
it: constructing the backend then gives :class:`~cockpit.adapters.http.platform.HttpPlatformBackend`,
which adds the PlatformRollouts role and ``DRIVES_STEPS`` (the engine picks the mirror
driver from that capability).

A mutating call whose effect is unknown (no answer in time, a 5xx) is never sent again
blindly: the backend reads the status and reports what it sees, so a slow platform can
never get two deploys from one keypress.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from cockpit.adapters.base import (
    AdapterContext,
    BackendError,
    BackendStatus,
    BackendUnavailable,
    Capability,
    CapabilityMissing,
    CommandRefused,
    DeployBackend,
    HealthCheckFailed,
    LogSink,
    VersionNotFound,
)
from cockpit.adapters.http import mapping
from cockpit.adapters.http.logs import LogFollower
from cockpit.adapters.http.options import HttpOptions, Request
from cockpit.adapters.http.transport import Answer, HttpStatusError, NoAnswer, Transport
from cockpit.secrets import redact

log = logging.getLogger(__name__)

SHOWS_UP_WITHIN = 5.0  # seconds a platform may take to list a track it accepted


class PlatformRefused(CommandRefused):
    """The platform said no (4xx) to an action; nothing changed."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def shown(status: BackendStatus) -> str:
    """The status in a few words, for a message."""
    stable = f"stable {status.stable.version}" if status.stable else "no stable"
    if status.canary is None:
        return f"{stable}, no canary"
    c = status.canary
    return f"{stable}, canary {c.version} ({c.replicas_ready}/{c.replicas_desired} ready) at {status.weight}%"


class HttpBackend(DeployBackend):
    name = "http"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.SET_WEIGHT, Capability.ROLLBACK_TO_REVISION, Capability.LOGS}
    )
    Options = HttpOptions

    options: HttpOptions  # the base declares a BaseModel; this backend is given its own model

    def __new__(cls, ctx: AdapterContext, options: HttpOptions, *args: Any, **kwargs: Any) -> HttpBackend:
        # One registered name, two roles: the plan's driver decides which class is built,
        # and so whether the engine mirrors the platform (DRIVES_STEPS) or walks the steps.
        if cls is HttpBackend and options.driver == "platform":
            from cockpit.adapters.http.platform import HttpPlatformBackend

            return super().__new__(HttpPlatformBackend)
        return super().__new__(cls)

    def __init__(self, ctx: AdapterContext, options: HttpOptions, sleep: Callable[[float], Any] = asyncio.sleep) -> None:
        super().__init__(ctx, options)
        self.transport = Transport(options, ctx.secrets, sleep)
        self._sleep = sleep
        self._sink: LogSink | None = None
        self._logs: LogFollower | None = None

    # ------------------------------------------------------------------ requests

    def values(self, **more: object) -> dict[str, object]:
        return {"service": self.ctx.service, "env": self.ctx.env, "version": None, "weight": None,
                "revision": None, "steps": None, **more}

    def request(self, action: str) -> Request:
        request = self.options.actions.get(action)
        if request is None:
            raise CapabilityMissing(f"the plan maps no request for the http backend's {action!r} action")
        return request

    async def call(self, action: str, **values: object) -> Answer:
        return await self.transport.call(action, self.request(action), self.values(**values))

    async def mutate(self, action: str, done: Callable[[BackendStatus], bool], what: str, **values: object) -> None:
        """Send a mutating action once. If its effect is unknown (no answer, a 5xx) read the
        status: go on if it shows ``done``, else say what it shows; never send it again."""
        request = self.request(action)
        try:
            await self.transport.call(action, request, self.values(**values))
            return
        except NoAnswer as err:
            if not err.sent:
                raise
            unknown: BackendError = err
        except HttpStatusError as err:
            if err.status < 500:
                raise self.refused(err, what) from None
            unknown = err
        # A call marked idempotent was already sent again by the transport; any other was not.
        tried = f"after {1 + self.options.retries} attempts" if request.retry_safe else "and was not sent again"
        try:
            status = await self.status()
        except BackendError as read_err:
            raise BackendUnavailable(
                f"{unknown}; the status cannot be read either ({read_err}): {what} is not confirmed {tried}"
            ) from None
        if done(status):
            log.warning("%s: %s, yet the status shows it done (%s)", what, redact(str(unknown)), shown(status))
            return
        raise BackendUnavailable(
            f"{unknown}; the status shows {shown(status)}: {what} is not confirmed {tried}"
            " (it may still take effect)"
        )

    @staticmethod
    def refused(err: HttpStatusError, what: str) -> BackendError:
        if err.status in (401, 403):
            return err
        if err.status in (400, 404, 409, 422):
            because = err.error or err.body or f"answered {err.status}"
            return PlatformRefused(f"{what} refused by the platform ({err.method} {err.path} {err.status}): {because}", err.status)
        return err

    # ------------------------------------------------------------------ observing

    async def status(self) -> BackendStatus:
        try:
            answer = await self.call("status")
        except HttpStatusError as err:
            if err.status == 404:
                raise BackendUnavailable(f"nothing is deployed for {self.ctx.service} in {self.ctx.env}: {err}") from None
            raise
        return mapping.backend_status(answer.data, self.options.status, self.options.url)

    async def versions(self) -> Sequence[str]:
        answer = await self.call("versions")
        return mapping.version_list(answer.data, self.options.versions)

    async def _known(self, version: str) -> None:
        known = await self.versions()
        if version not in known:
            raise VersionNotFound(f"version {version} does not exist on the platform (known: {', '.join(known) or 'none'})")

    async def wait_ready(self, track: str, version: str) -> BackendStatus:
        """Poll the status until ``track`` runs ``version`` with every replica ready."""
        started = time.monotonic()
        grace = min(SHOWS_UP_WITHIN, self.options.ready_timeout)
        while True:
            status = await self.status()
            running = status.canary if track == "canary" else status.stable
            if running is not None and running.version == version and running.healthy:
                return status
            waited = time.monotonic() - started
            if (running is None or running.version != version) and waited >= grace:
                raise BackendError(f"{track} {version} does not show on the platform ({shown(status)})")
            if waited >= self.options.ready_timeout:
                raise HealthCheckFailed(
                    f"{track} {version} not ready after {self.options.ready_timeout:g}s ({shown(status)});"
                    " no traffic was sent to it"
                )
            await self._sleep(self.options.poll_interval)

    # ------------------------------------------------------------------ lifecycle

    async def start(self, stable_version: str) -> None:
        # The platform runs the service on its own: starting verifies it answers and shows a
        # stable track; it changes nothing (what runs is what the status says).
        status = await self.status()
        if status.stable is None:
            raise BackendUnavailable(f"the platform reports no stable version of {self.ctx.service} in {self.ctx.env}")
        if status.stable.version != stable_version:
            log.warning("%s: the platform runs stable %s (the cockpit expected %s)",
                        self.ctx.env, status.stable.version, stable_version)
        self._follow_logs()

    async def attach(self) -> None:
        status = await self.status()
        if status.stable is None:
            raise BackendUnavailable(f"nothing runs for {self.ctx.service} in {self.ctx.env} on {self.options.base_url}")
        self._follow_logs()

    async def close(self) -> None:
        logs, self._logs = self._logs, None
        if logs is not None:
            await logs.stop()
        await self.transport.close()

    def attach_log_sink(self, sink: LogSink) -> None:
        self._sink = sink

    def _follow_logs(self) -> None:
        if self._sink is None or self.options.logs is None or self._logs is not None:
            return
        self._logs = LogFollower(self.transport, self.options.logs, self.values(), self.ctx.env, self._sink)
        self._logs.start()

    # ------------------------------------------------------------------ acting (cockpit driver)

    async def deploy_canary(self, version: str) -> None:
        await self._known(version)
        what = f"deploying canary {version}"
        try:
            await self.mutate("deploy_canary", lambda s: s.canary is not None and s.canary.version == version,
                              what, version=version)
        except CommandRefused as err:
            raise self._not_found(err, version) from None
        await self.wait_ready("canary", version)

    async def set_weight(self, weight: int) -> None:
        if not 0 <= weight <= 100:
            raise BackendError(f"weight must be between 0 and 100, not {weight}")
        await self.mutate("set_weight", lambda s: s.canary is not None and s.weight == weight,
                          f"setting the canary weight to {weight}%", weight=weight)

    async def promote_canary(self) -> None:
        status = await self.status()
        if status.canary is None:
            raise BackendError("there is no canary to promote")
        version = status.canary.version
        await self.mutate("promote", lambda s: s.canary is None and s.stable is not None and s.stable.version == version,
                          f"promoting canary {version}", version=version)
        await self.wait_ready("stable", version)

    async def remove_canary(self) -> None:
        status = await self.status()
        if status.canary is None and status.weight == 0:
            return  # nothing to abort: traffic is on stable already
        await self.mutate("abort", lambda s: s.canary is None and s.weight == 0, "aborting the canary")

    async def deploy_stable(self, version: str) -> None:
        await self._known(version)  # before removing anything: a bad version changes nothing
        await self.remove_canary()
        revision = None
        if self.options.revisions is not None:
            answer = await self.call("status")
            numbers = [n for n, v in mapping.revision_list(answer.data, self.options.revisions) if v == version]
            revision = numbers[-1] if numbers else None
        try:
            await self.mutate("rollback", lambda s: s.canary is None and s.stable is not None and s.stable.version == version,
                              f"rolling back to {version}", version=version, revision=revision)
        except CommandRefused as err:
            raise self._not_found(err, version) from None
        await self.wait_ready("stable", version)

    @staticmethod
    def _not_found(err: CommandRefused, version: str) -> BackendError:
        if isinstance(err, PlatformRefused) and err.status == 404:
            return VersionNotFound(f"version {version}: {err}")
        return err
