"""A backend whose platform is a JSON file: ``{"stable": ..., "canary": ..., "weight": ...}``.

Written only against cockpit's public contract (``cockpit.adapters.base`` and
``cockpit.model``), as any third-party backend would be.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from cockpit.adapters.base import (
    AdapterContext,
    BackendError,
    BackendUnavailable,
    Capability,
    DeployBackend,
    VersionNotFound,
)
from cockpit.model import BackendStatus, TrackStatus


class JsonFileOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    versions: list[str] = Field(min_length=1)
    """The versions that exist, oldest first."""
    replicas: int = Field(default=1, ge=1)


class JsonFileBackend(DeployBackend):
    name: ClassVar[str] = "jsonfile"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.SET_WEIGHT})
    Options: ClassVar[type[JsonFileOptions]] = JsonFileOptions

    def __init__(self, ctx: AdapterContext, options: JsonFileOptions) -> None:
        super().__init__(ctx, options)
        self.options: JsonFileOptions = options
        self._file = ctx.run_dir / f"{ctx.service}-{ctx.env}.json"
        self._closed = False

    def _read(self) -> dict[str, Any]:
        if self._closed:
            raise BackendUnavailable(f"the {self.ctx.env} jsonfile backend is closed")
        try:
            return json.loads(self._file.read_text())
        except FileNotFoundError:
            raise BackendUnavailable(f"nothing runs for {self.ctx.env} ({self._file} is missing)") from None

    def _write(self, **changes: Any) -> None:
        state = self._read() if self._file.exists() else {"stable": None, "canary": None, "weight": 0}
        self._file.parent.mkdir(parents=True, exist_ok=True)
        self._file.write_text(json.dumps(state | changes))

    def _known(self, version: str) -> None:
        if version not in self.options.versions:
            raise VersionNotFound(f"version {version} does not exist (known: {', '.join(self.options.versions)})")

    async def start(self, stable_version: str) -> None:
        self._known(stable_version)
        self._closed = False
        self._write(stable=stable_version, canary=None, weight=0)

    async def attach(self) -> None:
        self._read()

    async def close(self) -> None:
        self._closed = True  # the file is the platform: it outlives this cockpit

    def _track(self, version: str | None) -> TrackStatus | None:
        n = self.options.replicas  # a file has no crashing replicas: all of them are always ready
        return None if version is None else TrackStatus(version, n, n)

    async def status(self) -> BackendStatus:
        state = self._read()
        return BackendStatus(self._track(state["stable"]), self._track(state["canary"]), state["weight"])

    async def versions(self) -> Sequence[str]:
        return list(self.options.versions)

    async def deploy_canary(self, version: str) -> None:
        self._known(version)
        self._write(canary=version, weight=0)

    async def set_weight(self, weight: int) -> None:
        if not 0 <= weight <= 100:
            raise BackendError(f"weight must be between 0 and 100, not {weight}")
        if self._read()["canary"] is None and weight:
            raise BackendError("there is no canary to send traffic to")
        self._write(weight=weight)

    async def promote_canary(self) -> None:
        canary = self._read()["canary"]
        if canary is None:
            raise BackendError("there is no canary to promote")
        self._write(stable=canary, canary=None, weight=0)

    async def remove_canary(self) -> None:
        self._write(canary=None, weight=0)

    async def deploy_stable(self, version: str) -> None:
        self._known(version)
        self._write(stable=version, canary=None, weight=0)
