"""The shipped backend contract (cockpit.adapters.testing.BackendContract) run against the
http backend driving the real deploy-API test service, with the plan options a team
would write (tests/test_http_backend.py's ``plan_options``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cockpit.adapters import registry
from cockpit.adapters.base import AdapterContext, DeployBackend
from cockpit.adapters.testing import BackendContract
from tests.deploy_api.fixtures import DeployApi, deploy_api_fixture, deploy_api_server_fixture  # noqa: F401
from tests.test_http_backend import plan_options, resolver

pytestmark = pytest.mark.deploy_api


class TestHttpContract(BackendContract):
    api: DeployApi

    @pytest.fixture(autouse=True)
    def _platform(self, deploy_api: DeployApi) -> None:
        self.api = deploy_api

    def make_backend(self, run_dir: Path, service: str) -> DeployBackend:
        ctx = AdapterContext(service=service, env="contract", run_dir=run_dir, secrets=resolver(self.api.token))
        return registry.create_backend("http", ctx, plan_options(self.api.url))

    @pytest.mark.asyncio
    async def test_attach_to_nothing_is_unavailable(self, tmp_path: Path, service: str) -> None:
        # The test service creates an environment on first use, so "nothing there" is what
        # a real platform answers for an unknown environment: a 404 on its status.
        self.api.fault(method="GET", path_suffix="/status", status=404, times=1)
        await super().test_attach_to_nothing_is_unavailable(tmp_path, service)
        assert [c["status"] for c in self.api.calls(service)] == [404]
