"""Clear errors from the docker backend: a daemon that is not there, a socket this user may
not use, an image that is not present locally (said at once: the cockpit never pulls), a
port that is taken (checked before anything starts), and options that make no sense."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import docker
import pydantic
import pytest

from cockpit.adapters.base import BackendUnavailable, PortInUse
from cockpit.adapters.docker import containers
from cockpit.adapters.docker.images import ImageNotPresent
from cockpit.adapters.docker.options import DockerOptions
from cockpit.adapters.supervise import procs
from tests.docker_backend_fixtures import (  # noqa: F401 - fixtures
    containers_of,
    docker_client_fixture,
    docker_url_fixture,
    make_docker_backend,
    new_service,
    test_images_fixture,
)

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- no daemon needed


@pytest.mark.asyncio
async def test_no_socket_names_the_path(tmp_path: Path) -> None:
    sock = tmp_path / "nowhere" / "docker.sock"
    backend = make_docker_backend(tmp_path, new_service(), docker_host=f"unix://{sock}")
    with pytest.raises(BackendUnavailable) as caught:
        await backend.start("1.0.0")
    assert f"no socket at {sock}" in str(caught.value) and "is dockerd running?" in str(caught.value)
    with pytest.raises(BackendUnavailable):
        await backend.attach()
    await backend.close()


@pytest.mark.asyncio
async def test_a_socket_nobody_answers_on_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.sock"
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(path))  # bound, never listening: connect() is refused
    try:
        backend = make_docker_backend(tmp_path, new_service(), docker_host=f"unix://{path}")
        with pytest.raises(BackendUnavailable, match="connection refused"):
            await backend.start("1.0.0")
        await backend.close()
    finally:
        dead.close()


def test_the_options_load_without_the_docker_sdk() -> None:
    """A plan is checked (and the registry lists the adapter) without importing the SDK."""
    code = (
        "import sys; from cockpit.adapters.docker.options import DockerOptions; "
        "from cockpit.adapters import registry; assert 'docker' in registry.backend_names(); "
        "DockerOptions.model_validate({'image': 'x', 'versions': ['1']}); "
        "print(sorted(m for m in sys.modules if m == 'docker' or m.startswith('docker.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-1500:]
    assert out.stdout.strip() == "[]"


def test_options_say_what_is_wrong() -> None:
    base = {"image": "svc", "versions": ["1"]}
    with pytest.raises(pydantic.ValidationError, match="without tag or digest"):
        DockerOptions.model_validate({**base, "image": "svc:1.0"})
    with pytest.raises(pydantic.ValidationError, match="exactly one of 'container' or 'compose_service'"):
        DockerOptions.model_validate({**base, "adopt": {"container": "a", "compose_service": "web"}})
    with pytest.raises(pydantic.ValidationError, match="unknown placeholder"):
        DockerOptions.model_validate({**base, "command": ["serve", "{host}"]})
    with pytest.raises(pydantic.ValidationError, match="Extra inputs are not permitted"):
        DockerOptions.model_validate({**base, "replica": 2})
    with pytest.raises(pydantic.ValidationError):
        DockerOptions.model_validate({**base, "traffic": "dns"})


# --------------------------------------------------------------------------- with a daemon

@pytest.mark.docker
def test_permission_denied_names_the_socket(docker_url: str) -> None:
    if not docker_url.startswith("unix://"):
        pytest.skip("the daemon is not on a unix socket")
    socket_path = docker_url.removeprefix("unix://")
    if os.stat(socket_path).st_mode & 0o006:
        pytest.skip(f"{socket_path} is open to every user")
    script = textwrap.dedent(
        f"""
        import asyncio
        from cockpit.adapters.docker.client import Daemon
        try:
            asyncio.run(Daemon({docker_url!r}).connect())
        except Exception as exc:
            print(type(exc).__name__, exc)
        """
    )
    # As nobody, who is not in the socket's group (needs root to switch users).
    if os.geteuid() != 0:
        pytest.skip("switching to another user needs root")
    out = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", script],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env=os.environ | {"PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert out.stdout.startswith("DaemonPermissionDenied"), out.stdout + out.stderr[-1500:]
    assert f"permission denied on the Docker socket {socket_path}" in out.stdout


@pytest.mark.docker
@pytest.mark.asyncio
async def test_an_image_not_present_is_said_at_once_and_never_pulled(
    tmp_path: Path, docker_client: docker.DockerClient, test_images: dict[str, str]
) -> None:
    service = new_service()
    backend = make_docker_backend(tmp_path, service, versions=["1.0.0", "7.7.7"], image="cockpit-test-absent")
    start = time.monotonic()
    with pytest.raises(ImageNotPresent) as caught:
        await backend.start("1.0.0")
    assert time.monotonic() - start < 5.0
    assert "image cockpit-test-absent:1.0.0 is not present on the Docker daemon" in str(caught.value)
    assert "never pulls" in str(caught.value)
    await backend.close()
    backend = make_docker_backend(tmp_path, service, versions=["1.0.0", "7.7.7"])
    try:
        await backend.start("1.0.0")
        with pytest.raises(ImageNotPresent, match=r"cockpit-test-bb:7\.7\.7 is not present"):
            await backend.deploy_canary("7.7.7")
        assert (await backend.status()).canary is None
    finally:
        await backend.close()
    assert not containers_of(docker_client, service)


@pytest.mark.docker
@pytest.mark.asyncio
async def test_a_taken_router_port_fails_before_any_container_starts(
    tmp_path: Path, docker_client: docker.DockerClient, test_images: dict[str, str]
) -> None:
    service = new_service()
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        backend = make_docker_backend(tmp_path, service, port=port)
        with pytest.raises(PortInUse, match=f"port {port} on 127.0.0.1 is already in use"):
            await backend.start("1.0.0")
        await backend.close()
        assert not containers_of(docker_client, service)
    finally:
        holder.close()


@pytest.mark.docker
@pytest.mark.asyncio
async def test_a_taken_container_port_is_skipped_before_the_container_starts(
    tmp_path: Path, docker_client: docker.DockerClient, test_images: dict[str, str]
) -> None:
    base = procs.free_port()
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", base))
    holder.listen(1)
    backend = make_docker_backend(tmp_path, new_service(), base_port=base, health_timeout=3.0)
    try:
        # Without the check the container would be given the taken port and never answer.
        await backend.start("1.0.0")
        status = await backend.status()
        assert status.stable is not None and status.stable.healthy
        from cockpit.adapters.docker import labels

        ports = {int(c.labels[labels.PORT]) for c in containers_of(docker_client, backend.ctx.service)}  # type: ignore[attr-defined]
        assert ports and base not in ports and min(ports) > base
    finally:
        await backend.close()
        holder.close()
    assert containers.port_taken(base) is None
    assert "already in use" in (_held(base) or "")


def _held(port: int) -> str | None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen(1)
        return containers.port_taken(port)
