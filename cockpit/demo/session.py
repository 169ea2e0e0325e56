"""A session of the embedded demo: a :class:`~cockpit.engine.session.Session` whose
environments get simulated users (:mod:`cockpit.demo.load`) once they are up."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cockpit.demo.load import DEMO_TRAFFIC, DemoTraffic, TrafficSettings, with_preview_testers
from cockpit.engine.session import Session
from cockpit.engine.views import BLUE_GREEN, strategy_kind
from cockpit.plan.models import Plan

# Where the demo's versions run -> its plan (package data of cockpit.demo).
DEMO_BACKENDS = {"local": "plan.toml", "docker": "plan_docker.toml"}


class DemoBackendError(Exception):
    """The chosen demo backend cannot run here; ``str(err)`` says why and what to do."""


def prepare_demo_backend(backend: str) -> None:
    """What a backend needs before its first deploy: for ``docker``, the demo images in
    the daemon ``DOCKER_HOST`` names (built offline and loaded when missing, a second or
    two; found in the cache otherwise). Fails before the screen opens, not in a column."""
    if backend != "docker":
        return
    from cockpit.demo.image import ImageBuildError, ensure_demo_images

    try:
        ensure_demo_images()
    except ImageBuildError as err:
        raise DemoBackendError(
            f"the Docker demo cannot start: {err} (DOCKER_HOST names the daemon)"
        ) from None


class DemoSession(Session):
    """Owns one traffic generator per environment of ``traffic``; they stop before the
    environments do. Everything else is the plain session."""

    def __init__(
        self, plan: Plan, *args: Any, traffic: Mapping[str, TrafficSettings] = DEMO_TRAFFIC, **kwargs: Any
    ) -> None:
        super().__init__(plan, *args, **kwargs)
        if strategy_kind(plan.strategy) == BLUE_GREEN:
            # The preview takes no user traffic before the switch: some users test it,
            # so its analysis has requests to measure.
            traffic = with_preview_testers(traffic)
        self.traffic = DemoTraffic(plan.service.name, self._router_urls, self.logs.sink_for, traffic)
        self.add_change_listener(self.traffic.changed)

    def _router_urls(self) -> dict[str, str | None]:
        return {view.name: view.url if view.up else None for view in self.views()}

    async def close(self) -> None:
        # Users first, so the generators' summaries do not count the shutdown as errors.
        await self.traffic.stop()
        await super().close()
