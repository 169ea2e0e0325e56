"""Fixtures of the docker backend's tests: a real daemon and small offline images.

The daemon is the one ``DOCKER_HOST`` names with ``COCKPIT_TEST_DOCKER=1`` (scripts/test.sh
starts one through scripts/servers.sh). Without a reachable daemon the tests skip - and
fail when CI=true, where it must be there.

The images are busybox ``httpd`` on ``$PORT`` built offline ``FROM scratch`` (no registry
here): ``/healthz`` answers 200, ``/version`` says which version served. Variants:
``crash`` exits at once with code 3, ``sick`` never answers ``/healthz``, ``flaky``
serves for 1.5 s then exits with code 1, and the
``-hc`` repository declares a Docker HEALTHCHECK instead.

Each image carries a label with the hash of what it is built from (its Dockerfile and
files): an image of an older recipe left on a long-lived daemon (one without the ``rm``
applet, say) is built again, not reused."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from cockpit.adapters.base import AdapterContext
from cockpit.adapters.docker import labels
from cockpit.adapters.docker.backend import DockerBackend
from cockpit.adapters.docker.options import DockerOptions
from tests.conftest import IN_CI

REPO = "cockpit-test-bb"
HC_REPO = "cockpit-test-bb-hc"
VERSIONS = ("1.0.0", "1.1.0", "1.2.0")
BUSYBOX = shutil.which("busybox") or "/bin/busybox"
APPLETS = ("sh", "httpd", "wget", "echo", "sleep", "cat", "kill", "rm", "true")

SERVE = 'echo "starting $VERSION on port $PORT"; exec httpd -f -v -p 127.0.0.1:$PORT -h /www'
CMD = {
    "serve": SERVE,
    "crash": 'echo "boom: cannot open the database" >&2; exit 3',
    "flaky": 'echo "starting $VERSION"; httpd -p 127.0.0.1:$PORT -h /www; sleep 1.5; echo "dying now" >&2; exit 1',
    # A sick image that cannot remove /healthz must not serve it as healthy: it exits loudly.
    "sick": 'echo "serving without /healthz"; rm /www/healthz || { echo "sick: cannot remove /www/healthz" >&2; exit 9; }; '
    "exec httpd -f -v -p 127.0.0.1:$PORT -h /www",
}
RECIPE = "io.cockpit.test.recipe"


def daemon_url() -> str | None:
    return os.environ.get("DOCKER_HOST")


def require_daemon() -> str:
    url = daemon_url()
    problem = None
    if url is None or os.environ.get("COCKPIT_TEST_DOCKER") != "1":
        # Both, as tests/docker_fixtures.py: a developer's own DOCKER_HOST is never used by accident.
        problem = "no test Docker daemon: COCKPIT_TEST_DOCKER/DOCKER_HOST are not set (scripts/test.sh starts one)"
    else:
        try:
            client = docker.DockerClient(base_url=url, timeout=5)
            client.ping()
            client.close()
        except Exception as exc:
            problem = f"no Docker daemon answers at {url}: {exc}"
    if problem is not None:
        if IN_CI:
            pytest.fail(problem)
        pytest.skip(problem)
    assert url is not None
    return url


def _rootfs(version: str, kind: str) -> bytes:
    """A tar of the image's files: static busybox, its applets, the web root."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:

        def add_dir(name: str) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(info)

        def add_file(name: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 0
            tar.addfile(info, io.BytesIO(data))

        for d in ("bin", "www", "tmp"):
            add_dir(d)
        add_file("bin/busybox", Path(BUSYBOX).read_bytes(), 0o755)
        for applet in APPLETS:
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname, info.mtime = tarfile.SYMTYPE, "busybox", 0
            tar.addfile(info)
        add_file("www/healthz", b"ok\n")
        add_file("www/version", f"{version}\n".encode())
        add_file("www/index.html", f"{version} {kind}\n".encode())
    return out.getvalue()


def _recipe(version: str, kind: str, healthcheck: bool) -> tuple[str, bytes, str]:
    """The Dockerfile, the root filesystem and the hash of both."""
    lines = [
        "FROM scratch",
        "ADD rootfs.tar /",
        "ENV PATH=/bin",
        f"ENV VERSION={version}",
    ]
    if healthcheck:
        lines.append(
            "HEALTHCHECK --interval=200ms --timeout=1s --retries=2 "
            'CMD wget -q -O /dev/null "http://127.0.0.1:$PORT/healthz" || exit 1'
        )
    lines.append("CMD " + json.dumps(["/bin/sh", "-c", CMD[kind]]))
    dockerfile = "\n".join(lines) + "\n"
    rootfs = _rootfs(version, kind)
    digest = hashlib.sha256(dockerfile.encode() + rootfs).hexdigest()[:16]
    return dockerfile + f"LABEL {RECIPE}={digest}\n", rootfs, digest


def recipe_of(version: str, kind: str = "serve", healthcheck: bool = False) -> str:
    return _recipe(version, kind, healthcheck)[2]


def build(client: docker.DockerClient, repo: str, tag: str, version: str, kind: str = "serve", healthcheck: bool = False) -> str:
    """Build ``repo:tag`` offline (FROM scratch); returns the image id."""
    dockerfile, rootfs, _ = _recipe(version, kind, healthcheck)
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in (("Dockerfile", dockerfile.encode()), ("rootfs.tar", rootfs)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    image, _ = client.images.build(fileobj=context, custom_context=True, tag=f"{repo}:{tag}", rm=True, forcerm=True)
    return str(image.id)


@pytest.fixture(scope="session", name="docker_url")
def docker_url_fixture() -> str:
    return require_daemon()


@pytest.fixture(scope="session", name="docker_client")
def docker_client_fixture(docker_url: str) -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(base_url=docker_url, timeout=60)
    yield client
    client.close()


@pytest.fixture(scope="session", name="test_images")
def test_images_fixture(docker_client: docker.DockerClient) -> dict[str, str]:
    """tag -> image id of every test image (built once per session, reused if present and
    built from the same recipe)."""
    wanted = {
        **{(REPO, v): (v, "serve", False) for v in VERSIONS},
        (REPO, "crash"): ("9.9.9-crash", "crash", False),
        (REPO, "sick"): ("9.9.9-sick", "sick", False),
        (REPO, "flaky"): ("9.9.9-flaky", "flaky", False),
        (HC_REPO, "1.0.0"): ("1.0.0", "serve", True),
        (HC_REPO, "1.1.0"): ("1.1.0", "serve", True),
        (HC_REPO, "sick"): ("9.9.9-sick", "sick", True),
    }
    ids: dict[str, str] = {}
    for (repo, tag), (version, kind, hc) in wanted.items():
        try:
            found = docker_client.images.get(f"{repo}:{tag}")
        except docker.errors.ImageNotFound:
            found = None
        if found is not None and found.labels.get(RECIPE) == recipe_of(version, kind, hc):
            ids[f"{repo}:{tag}"] = str(found.id)
        else:
            ids[f"{repo}:{tag}"] = build(docker_client, repo, tag, version, kind, hc)
    return ids


def make_docker_backend(run_dir: Path, service: str, env: str = "test", **options: object) -> DockerBackend:
    raw: dict[str, object] = {
        "image": REPO,
        "versions": [*VERSIONS, "crash", "sick", "flaky"],
        "docker_host": daemon_url(),
        "health_timeout": 15.0,
        "health_interval": 0.2,
        "drain_timeout": 2.0,
        "stop_timeout": 2.0,
        **options,
    }
    ctx = AdapterContext(service=service, env=env, run_dir=run_dir)
    return DockerBackend(ctx, DockerOptions.model_validate(raw))


def new_service() -> str:
    return f"dk{uuid.uuid4().hex[:10]}"


def containers_of(client: docker.DockerClient, service: str) -> list[object]:
    return list(client.containers.list(all=True, filters={"label": f"{labels.SERVICE}={service}"}))


def wait_for(predicate: object, timeout: float = 10.0, what: str = "condition") -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def kill_main_process(client: docker.DockerClient, container_id: str) -> None:
    """SIGKILL the service inside a container (the child of its init), as a crash would:
    Docker's restart policy applies (a ``docker kill`` counts as a manual stop)."""
    pid = client.containers.get(container_id).attrs["State"]["Pid"]
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    os.kill(int(children[0]) if children else pid, 9)
