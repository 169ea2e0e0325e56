"""Create, start, stop and find the cockpit's containers.

Containers run on the host network (no bridge here, and one port per container is what
the router needs); the port is checked free on this host right before the container is
created, so a taken port is a precise :class:`PortInUse`, not a container that dies."""

from __future__ import annotations

import errno
import socket
from collections.abc import Collection, Mapping
from typing import Any

import docker.errors

from cockpit.adapters.base import BackendConfigError, BackendError, PortInUse
from cockpit.adapters.docker import labels
from cockpit.adapters.docker.client import Daemon, api_message
from cockpit.adapters.docker.options import DockerOptions
from cockpit.adapters.supervise import procs


def port_taken(port: int) -> str | None:
    """Why ``port`` cannot be used on this host now (``None``: it is free). A container on
    the host network binds where it likes, so both loopback and the wildcard are tried."""
    for host in ("0.0.0.0", "127.0.0.1"):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    owners = procs.listeners({port}).get(port, {})
                    who = f" (listening socket of uid {min(owners.values())})" if owners else ""
                    return f"port {port} is already in use on this host{who}"
                if exc.errno in (errno.EACCES, errno.EPERM):
                    return f"port {port} needs privileges on this host (ports below 1024)"
                return f"port {port} cannot be bound on this host: {exc.strerror or exc}"
    return None


def pick_port(base_port: int, reserved: Collection[int], what: str) -> int:
    """A port for a new container: the next free one from ``base_port`` (skipping the
    ports of the cockpit's own containers, which may not listen yet), or any free one."""
    if not base_port:
        for _ in range(50):
            port = procs.free_port()
            if port not in reserved:
                return port
        raise PortInUse(f"no free port found for {what}")
    for port in range(base_port, min(base_port + 200, 65536)):
        if port in reserved:
            continue
        problem = port_taken(port)
        if problem is None:
            return port
        if "privileges" in problem:
            raise BackendConfigError(f"cannot start {what}: {problem}")
    raise PortInUse(f"cannot start {what}: no free port from base_port {base_port} (ports {base_port}-{base_port + 199} are taken)")


def check_free(port: int, what: str) -> None:
    """Raise :class:`PortInUse` if ``port`` is taken now (checked before a container starts)."""
    problem = port_taken(port)
    if problem is not None:
        raise PortInUse(f"cannot start {what}: {problem}")


async def run(
    daemon: Daemon,
    options: DockerOptions,
    *,
    name: str,
    image_id: str,
    command: list[str] | None,
    environment: Mapping[str, str],
    container_labels: Mapping[str, str],
) -> str:
    """Create and start one container; returns its id. A container that cannot be
    created or started is removed again, so nothing half-made is left behind."""
    restart: dict[str, Any] = (
        {"Name": "on-failure", "MaximumRetryCount": options.restart.max_restarts}
        if options.restart.policy == "on-failure" and options.restart.max_restarts > 0
        else {"Name": "no"}
    )
    client = daemon.client
    try:
        container = await daemon.call(
            client.containers.create,
            image_id,
            command=command or None,
            name=name,
            labels=dict(container_labels),
            environment=dict(environment),
            network_mode="host",
            restart_policy=restart,
            init=options.init,
            stop_signal="SIGTERM",
            detach=True,
        )
    except docker.errors.ImageNotFound:
        raise BackendError(f"cannot create container {name}: image {image_id[:19]} vanished from the daemon") from None
    except docker.errors.APIError as exc:
        raise BackendError(f"cannot create container {name}: {api_message(exc)}") from None
    try:
        await daemon.call(container.start)
    except BaseException as exc:
        await remove(daemon, container.id, force=True)
        if isinstance(exc, docker.errors.APIError):
            raise BackendError(f"cannot start container {name}: {api_message(exc)}") from None
        raise
    return str(container.id)


async def stop(daemon: Daemon, container_id: str, timeout: float) -> None:
    """Stop (SIGTERM, SIGKILL after ``timeout``); a container already gone is fine."""
    try:
        container = await daemon.call(daemon.client.containers.get, container_id)
        await daemon.call(container.stop, timeout=max(0, round(timeout)))
    except docker.errors.NotFound:
        return
    except docker.errors.APIError as exc:
        raise BackendError(f"cannot stop container {container_id[:12]}: {api_message(exc)}") from None


async def start(daemon: Daemon, container_id: str) -> None:
    try:
        container = await daemon.call(daemon.client.containers.get, container_id)
        await daemon.call(container.start)
    except docker.errors.APIError as exc:
        raise BackendError(f"cannot start container {container_id[:12]}: {api_message(exc)}") from None


async def remove(daemon: Daemon, container_id: str, *, force: bool = False) -> None:
    try:
        await daemon.call(daemon.client.api.remove_container, container_id, force=force)
    except docker.errors.NotFound:
        return
    except docker.errors.APIError as exc:
        if "already in progress" in api_message(exc):
            return
        raise BackendError(f"cannot remove container {container_id[:12]}: {api_message(exc)}") from None


async def rename(daemon: Daemon, container_id: str, new_name: str) -> None:
    try:
        await daemon.call(daemon.client.api.rename, container_id, new_name)
    except docker.errors.APIError as exc:
        raise BackendError(f"cannot rename container {container_id[:12]} to {new_name}: {api_message(exc)}") from None


async def inspect(daemon: Daemon, container_id: str) -> dict[str, Any] | None:
    """The container's inspect data, ``None`` if it is gone."""
    try:
        data: dict[str, Any] = await daemon.call(daemon.client.api.inspect_container, container_id)
        return data
    except docker.errors.NotFound:
        return None
    except docker.errors.APIError as exc:
        raise BackendError(f"cannot inspect container {container_id[:12]}: {api_message(exc)}") from None


async def labelled(daemon: Daemon, service: str, env: str) -> list[labels.Found]:
    """Every container (running or not) the cockpit labelled for this service and env."""
    try:
        summaries = await daemon.call(
            daemon.client.api.containers, all=True, filters={"label": labels.selector(service, env)}
        )
        found: list[labels.Found] = []
        for summary in summaries:
            data = await inspect(daemon, summary["Id"])
            if data is not None and (record := labels.read(data)) is not None:
                found.append(record)
        return found
    except docker.errors.APIError as exc:
        raise BackendError(f"cannot list the containers of {service}/{env}: {api_message(exc)}") from None


async def last_lines(daemon: Daemon, container_id: str, count: int = 5) -> str:
    """The last ``count`` log lines of a container, joined by `` | `` (for an error message)."""
    try:
        raw = await daemon.call(daemon.client.api.logs, container_id, tail=count, stdout=True, stderr=True)
    except (docker.errors.APIError, BackendError):
        return ""
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    return " | ".join(line.strip() for line in text.splitlines() if line.strip())
