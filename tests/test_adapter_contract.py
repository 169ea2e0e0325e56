"""The shipped backend contract (cockpit.adapters.testing), run against this project's
backends. A backend in another package runs the same suite the same way: see
tests/thirdparty_backend and tests/test_thirdparty_contract.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from cockpit.adapters.base import DeployBackend
from cockpit.adapters.memory import MemoryBackend
from cockpit.adapters.testing import BackendContract, contract_context
from tests.local_fixtures import make_backend, service_fixture  # noqa: F401


class TestLocalBackendContract(BackendContract):
    @pytest.fixture
    def service(self, service: str) -> str:
        # The module's leak-checking ``service`` (local_fixtures): after each test, no
        # process of it may be alive.
        return service

    def make_backend(self, run_dir: Path, service: str) -> DeployBackend:
        return make_backend(run_dir, service, env="contract", versions=["1.0.0", "1.1.0"])


class TestMemoryBackendContract(BackendContract):
    """The in-memory backend the screen tests use must keep the same promises."""

    def make_backend(self, run_dir: Path, service: str) -> DeployBackend:
        return MemoryBackend(contract_context(run_dir, service), MemoryBackend.Options(versions=["1.0.0", "1.1.0"]))
