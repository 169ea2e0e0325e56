"""One contract every DeployBackend honours, run against each registered backend.

To add a backend, write a factory ``(run_dir, service) -> DeployBackend`` (not started)
and add it to ``ADAPTER_FACTORIES``. The suite only uses the abstract interface: the
first two of ``versions()`` are the stable and canary versions it plays with."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio

from cockpit.adapters.base import (
    BackendError,
    BackendStatus,
    Capability,
    DeployBackend,
    Track,
    VersionNotFound,
)
from tests.local_fixtures import make_backend, service_fixture  # noqa: F401

Factory = Callable[[Path, str], DeployBackend]


def local_factory(run_dir: Path, name: str) -> DeployBackend:
    return make_backend(run_dir, name, env="contract", versions=["1.0.0", "1.1.0"])


def memory_factory(run_dir: Path, name: str) -> DeployBackend:
    # The in-memory backend the screen tests use must keep the same promises.
    from cockpit.adapters.base import AdapterContext
    from tests.memory_backend import MemoryBackend

    return MemoryBackend(
        AdapterContext(service=name, env="contract", run_dir=run_dir),
        MemoryBackend.Options(versions=["1.0.0", "1.1.0"]),
    )


ADAPTER_FACTORIES = [pytest.param(local_factory, id="local"), pytest.param(memory_factory, id="memory")]


@pytest_asyncio.fixture(params=ADAPTER_FACTORIES)
async def backend(
    request: pytest.FixtureRequest, tmp_path: Path, service: str
) -> AsyncIterator[DeployBackend]:
    instance: DeployBackend = request.param(tmp_path, service)
    try:
        yield instance
    finally:
        await instance.close()


async def started(backend: DeployBackend) -> tuple[str, str]:
    versions = list(await backend.versions())
    assert len(versions) >= 2, "the contract needs two versions"
    await backend.start(versions[0])
    return versions[0], versions[1]


def assert_only_stable(status: BackendStatus, version: str) -> None:
    assert status.stable is not None and status.stable.version == version
    assert status.stable.healthy
    assert status.canary is None
    assert status.weight == 0


@pytest.mark.asyncio
async def test_declares_itself(backend: DeployBackend) -> None:
    assert isinstance(backend.name, str) and backend.name
    assert isinstance(backend.capabilities, frozenset)
    assert all(isinstance(c, Capability) for c in backend.capabilities)
    versions = await backend.versions()
    assert list(versions) and all(isinstance(v, str) for v in versions)
    assert len(set(versions)) == len(versions)


@pytest.mark.asyncio
async def test_start_runs_stable_at_100(backend: DeployBackend) -> None:
    v1, _ = await started(backend)
    assert_only_stable(await backend.status(), v1)
    if Capability.SCRAPE_TARGETS in backend.capabilities:
        targets = backend.scrape_targets()
        assert targets[Track.STABLE] and not targets.get(Track.CANARY)


@pytest.mark.asyncio
async def test_canary_lifecycle(backend: DeployBackend) -> None:
    v1, v2 = await started(backend)
    await backend.deploy_canary(v2)
    status = await backend.status()
    assert status.canary is not None and status.canary.version == v2 and status.canary.healthy
    assert status.weight == 0 and status.stable.version == v1
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
async def test_weight_bounds(backend: DeployBackend) -> None:
    _, v2 = await started(backend)
    await backend.deploy_canary(v2)
    await backend.set_weight(10)
    for bad in (-1, 101, 1000):
        with pytest.raises(BackendError):
            await backend.set_weight(bad)
        assert (await backend.status()).weight == 10  # a refused change changes nothing


@pytest.mark.asyncio
async def test_typed_errors(backend: DeployBackend) -> None:
    v1, _ = await started(backend)
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
async def test_close_is_final_and_idempotent(backend: DeployBackend) -> None:
    await started(backend)
    await backend.close()
    await backend.close()
    with pytest.raises(BackendError):
        await backend.status()
