"""The demo image builder (cockpit/demo/image.py) against the real Docker Engine: the
same inputs give the same image ids, unchanged inputs are not rebuilt, and a container of
each image serves the demo service of its version and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import socket
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest

from cockpit.demo import image
from cockpit.demo.image import DemoImage, ImageBuildError

pytestmark = pytest.mark.docker


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_json(url: str, timeout: float = 10.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                return dict(json.loads(answer.read()))
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_same_inputs_give_the_same_image_ids(tmp_path: Path) -> None:
    modules = image.imported_modules()
    entries = image.rootfs_entries(modules)
    # Bytecode included: compiled twice, it must come out byte for byte the same.
    first = image.write_archive(entries, ["1.0.0", "1.1.0"], tmp_path / "a.tar", modules)
    second = image.write_archive(entries, ["1.0.0", "1.1.0"], tmp_path / "b.tar", modules)
    assert first == second
    assert first["1.0.0"] != first["1.1.0"]  # the version is in the config
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()


def test_the_rootfs_holds_what_the_service_needs_and_no_test_suite() -> None:
    entries = image.rootfs_entries()
    names = {e.name for e in entries}
    assert {"usr/bin/python3.11", "usr/bin/sh", "usr/lib/python3.11/asyncio/__init__.py"} <= names
    assert {"app/site/aiohttp/__init__.py", "app/site/prometheus_client/__init__.py"} <= names
    assert "app/site/cockpit/demo/service.py" in names
    assert any(n.startswith("usr/lib/x86_64-linux-gnu/libc.so") for n in names)
    assert not any(n.startswith("usr/lib/python3.11/test/") for n in names)
    busybox = next(e for e in entries if e.name == "usr/bin/busybox")
    assert busybox.source is not None and busybox.link is None
    assert [e.name for e in entries] == sorted(names)  # sorted, each once


def test_a_changed_input_changes_the_fingerprint(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text("x = 1\n")
    entries = [image.Entry("app/site/mod.py", source=source)]
    before = image.fingerprint(entries, ["1.0.0"])
    assert image.fingerprint(entries, ["1.0.0"]) == before
    source.write_text("x = 22\n")
    assert image.fingerprint(entries, ["1.0.0"]) != before
    assert image.fingerprint(entries, ["1.0.0", "1.1.0"]) != image.fingerprint(entries, ["1.0.0"])


def test_the_layer_is_deterministic_tar(tmp_path: Path) -> None:
    source = tmp_path / "run.sh"
    source.write_text("echo hi\n")
    source.chmod(0o700)
    entries = [
        image.Entry("app"),
        image.Entry("app/run.sh", source=source),
        image.Entry("bin", link="usr/bin"),
    ]
    with (tmp_path / "layer.tar").open("wb") as out:
        image.write_layer(entries, out)
    with tarfile.open(tmp_path / "layer.tar") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["app", "app/run.sh", "bin"]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(image.EPOCH, 0, 0, "", "")}
    assert members[1].mode == 0o755  # executable bits normalised, not the builder's umask


def test_a_missing_daemon_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ImageBuildError, match="no Docker daemon answers at unix://"):
        image.DaemonClient(f"unix://{tmp_path}/none.sock").ping()
    with pytest.raises(ImageBuildError, match="only unix:// and tcp://"):
        image.DaemonClient("ssh://host")


def test_unchanged_inputs_are_neither_rebuilt_nor_reloaded(
    docker_host: str, demo_images: dict[str, DemoImage]
) -> None:
    report = image.build(docker_host, tuple(demo_images))
    assert (report.built, report.loaded) == (False, False)
    assert {v: i.id for v, i in report.images.items()} == {v: i.id for v, i in demo_images.items()}


def test_each_image_serves_its_version_and_stops_on_sigterm(
    docker_client: object,
    demo_images: dict[str, DemoImage],
    docker_labels: dict[str, str],
    docker_service: str,
) -> None:
    import docker

    assert isinstance(docker_client, docker.DockerClient)
    for version, demo in demo_images.items():
        loaded = docker_client.images.get(demo.tag)
        assert loaded.id == demo.id
        assert loaded.labels[image.VERSION_LABEL] == version
        port = free_port()
        container = docker_client.containers.run(
            demo.tag,
            ["--port", str(port), "--env", "staging"],
            detach=True,
            network_mode="host",
            labels=docker_labels,
            name=f"{docker_service}-{version.replace('.', '-')}",
        )
        assert get_json(f"http://127.0.0.1:{port}/healthz") == {"status": "ok", "version": version}
        started = time.monotonic()
        container.stop(timeout=10)
        assert time.monotonic() - started < 5  # SIGTERM handled by the service itself, not the kill timeout
        container.reload()
        assert container.attrs["State"]["ExitCode"] == 0
        lines = [json.loads(line) for line in container.logs().decode().splitlines()]
        assert lines[0]["msg"] == "started" and lines[0]["version"] == version
        container.remove()


def test_the_image_has_a_shell(
    docker_client: object, demo_images: dict[str, DemoImage], docker_labels: dict[str, str]
) -> None:
    import docker

    assert isinstance(docker_client, docker.DockerClient)
    out = docker_client.containers.run(
        demo_images["1.0.0"].tag,
        ["-c", "echo $COCKPIT_DEMO_VERSION; ls /app/site/cockpit/demo/__pycache__/service.cpython-311.pyc"],
        entrypoint=["sh"],
        labels=docker_labels,
        remove=True,
    )
    assert out.decode().split() == ["1.0.0", "/app/site/cockpit/demo/__pycache__/service.cpython-311.pyc"]


def test_images_the_daemon_lost_are_loaded_again_from_the_cache(
    docker_host: str, docker_client: object, demo_images: dict[str, DemoImage]
) -> None:
    import docker

    assert isinstance(docker_client, docker.DockerClient)
    docker_client.images.remove(demo_images["1.1.0"].tag)  # the tag goes (the layer may stay)
    report = image.build(docker_host, tuple(demo_images))
    assert (report.built, report.loaded) == (False, True)
    assert docker_client.images.get(demo_images["1.1.0"].tag).id == demo_images["1.1.0"].id
