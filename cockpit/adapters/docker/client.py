"""The connection to the Docker daemon and the translation of SDK failures into the
cockpit's typed errors.

The docker SDK is blocking: every call runs on a small executor of this backend's own
(not the loop's default one, which other adapters share), so a daemon that hangs cannot
starve them and the screen never waits on it. Streams (events, logs) have their own
threads (see :mod:`.events`, :mod:`.logs`)."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import docker
import docker.errors

from cockpit.adapters.base import (
    BackendConfigError,
    BackendError,
    BackendUnavailable,
)
from cockpit.secrets import redact

T = TypeVar("T")

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
CALL_TIMEOUT = 30  # seconds: one API call (a stop waits stop_timeout on top)
WORKERS = 4


class DaemonPermissionDenied(BackendConfigError):
    """The socket exists but this user may not use it."""


def daemon_url(docker_host: str | None) -> str:
    """The daemon the plan names, else ``DOCKER_HOST``, else the default socket."""
    return docker_host or os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET


def describe_failure(url: str, exc: BaseException) -> BackendError:
    """One clear line on why the daemon at ``url`` cannot be used."""
    if isinstance(exc, BackendError):
        return exc  # already said
    text = str(exc)
    socket_path = url.removeprefix("unix://") if url.startswith("unix://") else None
    if isinstance(exc, PermissionError) or "Permission denied" in text:
        return DaemonPermissionDenied(
            f"permission denied on the Docker socket {socket_path or url}: this user may not "
            "use the daemon (add it to the 'docker' group or point docker_host at a socket it may use)"
        )
    if isinstance(exc, FileNotFoundError) or "No such file or directory" in text:
        return BackendUnavailable(
            f"the Docker daemon is not reachable: no socket at {socket_path or url} "
            "(is dockerd running? set docker_host or DOCKER_HOST to its socket)"
        )
    if "Connection refused" in text:
        return BackendUnavailable(
            f"the Docker daemon is not reachable at {url}: connection refused (is dockerd running?)"
        )
    # requests' Timeout is an OSError subclass; matched by name so requests is not imported here.
    if isinstance(exc, TimeoutError) or any(c.__name__.endswith("Timeout") for c in type(exc).__mro__):
        return BackendUnavailable(f"the Docker daemon at {url} did not answer within {CALL_TIMEOUT}s")
    reason = redact(text.splitlines()[0] if text else type(exc).__name__)
    return BackendUnavailable(f"the Docker daemon is not reachable at {url}: {reason}")


class Daemon:
    """One connection to a Docker daemon, called off the event loop."""

    def __init__(self, docker_host: str | None) -> None:
        self.url = daemon_url(docker_host)
        self._client: docker.DockerClient | None = None
        self._executor = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="cockpit-docker")

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            raise BackendUnavailable(f"not connected to the Docker daemon at {self.url}")
        return self._client

    def new_client(self, timeout: int | None = CALL_TIMEOUT) -> docker.DockerClient:
        """A client of its own (for a stream thread: a requests session is not shared
        between a blocking stream and other calls)."""
        try:
            return docker.DockerClient(base_url=self.url, timeout=timeout, version="auto")
        except docker.errors.DockerException as exc:
            raise describe_failure(self.url, exc.__context__ or exc) from None
        except OSError as exc:
            raise describe_failure(self.url, exc) from None

    async def connect(self) -> None:
        """Connect and ping. Raises :class:`BackendUnavailable` (daemon down, no socket) or
        :class:`DaemonPermissionDenied`, each naming the socket."""
        if self._client is not None:
            return
        client = await self._in_thread(self.new_client)
        try:
            await self._in_thread(client.ping)
        except Exception as exc:
            client.close()
            raise describe_failure(self.url, _root(exc)) from None
        self._client = client

    async def call(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        """Run a blocking SDK call in a thread; a daemon that went away becomes
        :class:`BackendUnavailable`. SDK API errors (404, 409, ...) pass through for the
        caller to say what they mean in its context."""
        try:
            return await self._in_thread(fn, *args, **kwargs)
        except docker.errors.APIError:
            raise
        except OSError as exc:  # requests' connection errors and timeouts are OSErrors
            raise describe_failure(self.url, _root(exc)) from None
        except docker.errors.DockerException as exc:
            raise describe_failure(self.url, _root(exc)) from None

    async def _in_thread(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        return await loop.run_in_executor(self._executor, functools.partial(ctx.run, fn, *args, **kwargs))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        self._executor.shutdown(wait=False, cancel_futures=True)


def _root(exc: BaseException) -> BaseException:
    """The innermost cause: the SDK wraps socket errors two or three times."""
    seen = exc
    while seen.__cause__ is not None or seen.__context__ is not None:
        nxt = seen.__cause__ or seen.__context__
        assert nxt is not None
        if isinstance(nxt, PermissionError | FileNotFoundError | ConnectionRefusedError):
            return nxt
        seen = nxt
    return exc if "Permission denied" in str(exc) or "No such file" in str(exc) else seen


def api_message(exc: docker.errors.APIError) -> str:
    """The daemon's own words for an API error, on one line."""
    explanation = exc.explanation
    if isinstance(explanation, bytes):
        explanation = explanation.decode(errors="replace")
    return redact(str(explanation or exc).splitlines()[0])
