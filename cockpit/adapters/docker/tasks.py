"""One-off containers of a release image for release tasks (database migrations): run a
command, stream its output, check its exit code, remove the container whatever happens."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import docker.errors

from cockpit.adapters.base import BackendError
from cockpit.adapters.docker import containers, labels
from cockpit.adapters.docker.client import Daemon, api_message
from cockpit.adapters.docker.logs import LogFollower
from cockpit.adapters.docker.options import DockerOptions
from cockpit.adapters.supervise.logs import LogTarget
from cockpit.model import Track
from cockpit.secrets import redact
from cockpit.units import format_duration

TAIL = 10  # lines of output kept for the result and the error


class TaskFailed(BackendError):
    """A release task exited with a non-zero code (or was stopped at its timeout)."""

    def __init__(self, message: str, result: TaskResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True, slots=True)
class TaskResult:
    exit_code: int
    seconds: float
    tail: tuple[str, ...]  # its last lines of output (secrets masked)


class _Collect:
    """A log target that keeps the last lines and passes everything on."""

    def __init__(self, target: LogTarget, on_line: Callable[[str], None] | None) -> None:
        self.target = target
        self.on_line = on_line
        self.tail: list[str] = []

    def emit(self, source: str, track: Track | None, texts: Iterable[str]) -> None:
        texts = list(texts)
        self.tail = (self.tail + [redact(t) for t in texts])[-TAIL:]
        self.target.emit(source, track, texts)
        if self.on_line is not None:
            for text in texts:
                self.on_line(text)

    def note(self, text: str, level: str = "info", track: Track | None = None) -> None:
        self.target.note(text, level, track)


async def run_task(
    daemon: Daemon,
    options: DockerOptions,
    target: LogTarget,
    *,
    service: str,
    env: str,
    image_id: str,
    version: str,
    command: Sequence[str],
    environment: Mapping[str, str],
    name: str,
    timeout: float,
    on_line: Callable[[str], None] | None = None,
) -> TaskResult:
    collect = _Collect(target, on_line)
    task_labels = {**labels.selector_dict(service, env), labels.VERSION: version, labels.TASK: name}
    container_name = f"{labels.stem(service, env)}.task.{name}.{uuid.uuid4().hex[:8]}"
    source = f"task {name} ({version})"
    client = daemon.client
    started = time.monotonic()
    try:
        container = await daemon.call(
            client.containers.create,
            image_id,
            command=list(command),
            name=container_name,
            labels=task_labels,
            environment=dict(environment),
            network_mode="host",
            init=options.init,
            detach=True,
        )
    except docker.errors.APIError as exc:
        raise BackendError(f"cannot create the container of task {name}: {api_message(exc)}") from None
    follower = LogFollower(daemon, container.id, collect, asyncio.get_running_loop(), lambda: (source, None))
    try:
        await daemon.call(container.start)
        follower.start()
        try:
            status = await asyncio.wait_for(daemon.call(container.wait), timeout)
            code = int(status.get("StatusCode", -1))
        except TimeoutError:
            await containers.stop(daemon, container.id, options.stop_timeout)
            code = -1
        await asyncio.to_thread(follower.join, 2.0)  # the last lines, before the container goes
        seconds = time.monotonic() - started
        result = TaskResult(code, seconds, tuple(collect.tail))
        last = " | ".join(result.tail[-3:]) or "(no output)"
        if code == -1:
            raise TaskFailed(f"task {name} ({version}) did not finish within {format_duration(timeout)}; stopped (last output: {last})", result)
        if code != 0:
            raise TaskFailed(f"task {name} ({version}) exited with code {code} (last output: {last})", result)
        return result
    except docker.errors.APIError as exc:
        raise BackendError(f"task {name} ({version}) failed to run: {api_message(exc)}") from None
    finally:
        follower.stop()
        await containers.remove(daemon, container.id, force=True)
