"""The backend contract as a test suite any package can run against its own backend.

A backend in another package proves it keeps the promises of
:class:`~cockpit.adapters.base.DeployBackend` by subclassing :class:`BackendContract` in
one of its test modules and saying how to build one (not started)::

    from cockpit.adapters.testing import BackendContract, contract_context

    class TestMyBackend(BackendContract):
        def make_backend(self, run_dir, service):
            return MyBackend(contract_context(run_dir, service), MyBackend.Options(...))

pytest collects the inherited ``test_*`` methods. The suite only uses the abstract
interface: the first two of ``versions()`` are the stable and canary versions it plays
with, so the backend must offer at least two. Parts that need a capability (fine-grained
weights, scrape targets) run only when the backend declares it.

This module imports pytest and needs the pytest-asyncio plugin (the tests are
coroutines marked ``asyncio``). It is for test runs only: nothing in the cockpit imports
it (tests/test_rooms.py checks that).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio  # noqa: F401 - the checks are asyncio coroutines: without the plugin they would not run
from pydantic import BaseModel

from cockpit.adapters.base import (
    AdapterContext,
    BackendError,
    BackendUnavailable,
    Capability,
    DeployBackend,
    VersionNotFound,
)
from cockpit.model import BackendStatus, Track

__all__ = ["BackendContract", "assert_only_stable", "contract_context"]


def contract_context(run_dir: Path, service: str, env: str = "contract") -> AdapterContext:
    """The context the suite's backends run in (no options, no secrets)."""
    return AdapterContext(service=service, env=env, run_dir=run_dir)


def assert_only_stable(status: BackendStatus, version: str) -> None:
    """``version`` runs healthy at 100 % and there is no canary."""
    assert status.stable is not None and status.stable.version == version, status
    assert status.stable.healthy, status
    assert status.canary is None, status
    assert status.weight == 0, status


class BackendContract:
    """The DeployBackend contract. Subclass it as ``Test...`` and implement :meth:`make_backend`.

    Not named ``Test...`` itself, so pytest collects only the subclasses."""

    def make_backend(self, run_dir: Path, service: str) -> DeployBackend:
        """A new, not started backend for ``service`` keeping its runtime files in ``run_dir``."""
        raise NotImplementedError(f"{type(self).__name__} must implement make_backend(run_dir, service)")

    @pytest.fixture
    def service(self) -> str:
        """A service name of its own per test, so runs never see each other's workloads.
        Override it (e.g. to check that the test left no process behind)."""
        return f"contract{uuid.uuid4().hex[:10]}"

    @contextlib.asynccontextmanager
    async def opened(self, run_dir: Path, service: str) -> AsyncIterator[DeployBackend]:
        """A backend from :meth:`make_backend`, closed whatever the test does."""
        backend = self.make_backend(run_dir, service)
        try:
            yield backend
        finally:
            await backend.close()

    async def started(self, backend: DeployBackend) -> tuple[str, str]:
        """Start ``backend`` on its first version; returns its first two versions."""
        versions = list(await backend.versions())
        assert len(versions) >= 2, "the contract needs a backend offering two versions"
        await backend.start(versions[0])
        return versions[0], versions[1]

    # ------------------------------------------------------------------ the contract

    @pytest.mark.asyncio
    async def test_declares_itself(self, tmp_path: Path, service: str) -> None:
        async with self.opened(tmp_path, service) as backend:
            assert isinstance(backend, DeployBackend)
            assert isinstance(backend.name, str) and backend.name
            assert isinstance(backend.capabilities, frozenset)
            assert all(isinstance(c, Capability) for c in backend.capabilities)
            # The engine builds it as cls(ctx, cls.Options.model_validate(plan options)).
            options = type(backend).Options
            assert isinstance(options, type) and issubclass(options, BaseModel)
            versions = await backend.versions()
            assert list(versions) and all(isinstance(v, str) for v in versions)
            assert len(set(versions)) == len(versions)

    @pytest.mark.asyncio
    async def test_attach_to_nothing_is_unavailable(self, tmp_path: Path, service: str) -> None:
        async with self.opened(tmp_path, service) as backend:
            with pytest.raises(BackendUnavailable):
                await backend.attach()

    @pytest.mark.asyncio
    async def test_start_runs_stable_at_100(self, tmp_path: Path, service: str) -> None:
        async with self.opened(tmp_path, service) as backend:
            v1, _ = await self.started(backend)
            assert_only_stable(await backend.status(), v1)
            if Capability.SCRAPE_TARGETS in backend.capabilities:
                targets = backend.scrape_targets()
                assert targets[Track.STABLE] and not targets.get(Track.CANARY)

    @pytest.mark.asyncio
    async def test_canary_lifecycle(self, tmp_path: Path, service: str) -> None:
        async with self.opened(tmp_path, service) as backend:
            v1, v2 = await self.started(backend)
            await backend.deploy_canary(v2)
            status = await backend.status()
            assert status.canary is not None and status.canary.version == v2 and status.canary.healthy
            assert status.weight == 0 and status.stable is not None and status.stable.version == v1
            if Capability.SET_WEIGHT in backend.capabilities:
                for weight in (1, 25, 100, 0, 60):
                    await backend.set_weight(weight)
                    assert (await backend.status()).weight == weight
            await backend.promote_canary()
            assert_only_stable(await backend.status(), v2)

            await backend.deploy_canary(v1)
            await backend.remove_canary()  # abort
            assert_only_stable(await backend.status(), v2)

            await backend.deploy_canary(v1)
            await backend.deploy_stable(v1)  # rollback removes any canary first
            assert_only_stable(await backend.status(), v1)

    @pytest.mark.asyncio
    async def test_weight_bounds(self, tmp_path: Path, service: str) -> None:
        async with self.opened(tmp_path, service) as backend:
            if Capability.SET_WEIGHT not in backend.capabilities:
                pytest.skip(f"the {backend.name} backend does not declare {Capability.SET_WEIGHT}")
            _, v2 = await self.started(backend)
            await backend.deploy_canary(v2)
            await backend.set_weight(10)
            for bad in (-1, 101, 1000):
                with pytest.raises(BackendError):
                    await backend.set_weight(bad)
                assert (await backend.status()).weight == 10  # a refused change changes nothing

    @pytest.mark.asyncio
    async def test_typed_errors(self, tmp_path: Path, service: str) -> None:
        async with self.opened(tmp_path, service) as backend:
            v1, _ = await self.started(backend)
            with pytest.raises(VersionNotFound):
                await backend.deploy_canary("0.0.0-does-not-exist")
            with pytest.raises(VersionNotFound):
                await backend.deploy_stable("0.0.0-does-not-exist")
            with pytest.raises(BackendError):
                await backend.set_weight(50)  # no canary
            with pytest.raises(BackendError):
                await backend.promote_canary()  # no canary
            assert_only_stable(await backend.status(), v1)  # nothing half-applied

    @pytest.mark.asyncio
    async def test_close_is_final_and_idempotent(self, tmp_path: Path, service: str) -> None:
        async with self.opened(tmp_path, service) as backend:
            await self.started(backend)
            await backend.close()
            await backend.close()
            with pytest.raises(BackendError):
                await backend.status()
