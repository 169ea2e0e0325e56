"""Fixtures for the tests that need a real Docker Engine.

scripts/test.sh starts a private daemon once per run (scripts/servers.sh) and exports
``DOCKER_HOST`` and ``COCKPIT_TEST_DOCKER=1``. Run by hand without it, these tests skip
with the reason; in CI (``CI=true``) a missing or unreachable daemon fails them.

* ``docker_client``: a session-wide SDK client on that daemon (``docker_host``: its URL).
* ``demo_images``: the demo service's images, one per version (cockpit/demo/image.py),
  built or found in the cache once per run. Image contract: the entrypoint runs
  ``python3.11 -m cockpit.demo.service --version V``; the command (``--port P --env E``)
  is the adapter's to give; labels ``cockpit.demo.version`` and the env
  ``COCKPIT_DEMO_VERSION`` carry the version.
* ``docker_service``: a unique service name for one test; afterwards every container of
  the test daemon that names it in a label value, or carries this run's test label, is
  removed (containers outlive sessions on purpose, so leftovers are cleaned, not failed).
* ``docker_labels``: the labels a test puts on containers it starts itself (adoption
  tests), so the cleanup finds them too.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import docker

    from cockpit.demo.image import DemoImage

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
RUN_LABEL = "cockpit.test-run"
RUN_ID = uuid.uuid4().hex[:12]
DEMO_VERSIONS = ("1.0.0", "1.1.0", "1.2.0")


def _unavailable(message: str) -> None:
    if IN_CI:
        pytest.fail(f"{message} (CI needs a real Docker Engine: run the suite with scripts/test.sh)")
    pytest.skip(f"{message} (start the suite with scripts/test.sh for a private daemon)")


@pytest.fixture(scope="session")
def docker_host() -> str:
    """The daemon's URL, from the ``DOCKER_HOST`` scripts/servers.sh exported."""
    host = os.environ.get("DOCKER_HOST", "")
    if os.environ.get("COCKPIT_TEST_DOCKER") != "1" or not host:
        _unavailable("no test Docker daemon: COCKPIT_TEST_DOCKER/DOCKER_HOST are not set")
    return host


@pytest.fixture(scope="session")
def docker_client(docker_host: str) -> Iterator[docker.DockerClient]:
    try:
        import docker
    except ImportError:
        _unavailable("the docker SDK is not installed (pip install -e '.[test]')")
    client = docker.DockerClient(base_url=docker_host, timeout=60)
    try:
        client.ping()
    except Exception as error:  # the SDK raises requests' and its own errors alike
        client.close()
        _unavailable(f"the Docker daemon at {docker_host} does not answer: {error}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def demo_images(docker_host: str, docker_client: docker.DockerClient) -> dict[str, DemoImage]:
    """Version -> the demo image loaded in the test daemon (built once, then cached)."""
    from cockpit.demo.image import ensure_demo_images

    return ensure_demo_images(docker_host, DEMO_VERSIONS)


@pytest.fixture
def docker_labels() -> dict[str, str]:
    return {RUN_LABEL: RUN_ID}


def remove_containers_of(client: docker.DockerClient, name: str) -> list[str]:
    """Removes (killed at once) every container naming ``name`` in a label value or
    carrying this run's label; returns the names removed."""
    removed = []
    for container in client.containers.list(all=True, ignore_removed=True):
        labels: dict[str, Any] = container.labels or {}
        if name in labels.values() or labels.get(RUN_LABEL) == RUN_ID:
            with contextlib.suppress(Exception):  # already gone: what we wanted
                container.remove(force=True)
                removed.append(container.name)
    return removed


@pytest.fixture
def docker_service(docker_client: docker.DockerClient) -> Iterator[str]:
    """A unique service name; the containers of it (and of this run's label) go afterwards."""
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    remove_containers_of(docker_client, name)
