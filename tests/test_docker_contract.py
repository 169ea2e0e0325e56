"""The shipped backend contract (cockpit.adapters.testing) run against the docker backend
and a real Docker daemon. After each test no container of its service may be left."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from cockpit.adapters.base import DeployBackend
from cockpit.adapters.testing import BackendContract
from tests.docker_backend_fixtures import (  # noqa: F401 - fixtures
    containers_of,
    docker_client_fixture,
    docker_url_fixture,
    make_docker_backend,
    new_service,
    test_images_fixture,
)

pytestmark = pytest.mark.docker


class TestDockerBackendContract(BackendContract):
    @pytest.fixture
    def service(self, docker_client: docker.DockerClient, test_images: dict[str, str]) -> Iterator[str]:
        service = new_service()
        yield service
        left = containers_of(docker_client, service)
        assert not left, f"containers left behind: {left}"

    def make_backend(self, run_dir: Path, service: str) -> DeployBackend:
        return make_docker_backend(run_dir, service, env="contract")


class TestDockerBackendContractTwoReplicasHealthcheck(TestDockerBackendContract):
    """The same promises with two containers per track whose image has a HEALTHCHECK."""

    def make_backend(self, run_dir: Path, service: str) -> DeployBackend:
        return make_docker_backend(run_dir, service, env="contract", image="cockpit-test-bb-hc", versions=["1.0.0", "1.1.0"], replicas=2)
