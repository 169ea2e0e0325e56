"""Is a container healthy? Its image's HEALTHCHECK decides when it has one (Docker runs
it and reports ``healthy``/``unhealthy``); otherwise an HTTP probe of its port does.

A deploy waits here until every new container is healthy; a container that exits
before, or is not healthy by the deadline, fails the deploy with its last log lines in
the error, and no traffic was sent to it."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from cockpit.adapters.base import HealthCheckFailed
from cockpit.adapters.docker import containers
from cockpit.adapters.docker.client import Daemon
from cockpit.secrets import redact
from cockpit.units import format_duration

POLL = 0.1
PROBE_TIMEOUT = 1.0


async def probe(session: aiohttp.ClientSession, url: str, timeout: float = PROBE_TIMEOUT) -> str | None:
    """``None`` if ``url`` answers 200, else why not."""
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            await resp.read()
            return None if resp.status == 200 else f"HTTP {resp.status}"
    except aiohttp.ClientConnectorError:
        return "connection refused"
    except (aiohttp.ClientError, TimeoutError) as exc:
        return str(exc) or type(exc).__name__


def docker_health(data: dict[str, object]) -> tuple[str | None, str]:
    """(status, last check output) of a container's HEALTHCHECK; status ``None`` if it has none."""
    state = data.get("State")
    health = state.get("Health") if isinstance(state, dict) else None
    if not isinstance(health, dict):
        return None, ""
    log = health.get("Log") or []
    output = str(log[-1].get("Output", "")).strip() if log and isinstance(log[-1], dict) else ""
    return str(health.get("Status")), output


async def wait_healthy(
    daemon: Daemon,
    session: aiohttp.ClientSession,
    *,
    container_id: str,
    what: str,
    url: str,
    deadline: float,
    timeout: float,
) -> None:
    """Until the container is healthy. Raises :class:`HealthCheckFailed` (with its last log
    lines) if it exits first or the deadline passes."""
    last_error = "no answer yet"
    while True:
        data = await containers.inspect(daemon, container_id)
        if data is None:
            raise HealthCheckFailed(f"{what} was removed before it became healthy")
        state = data.get("State") or {}
        if not state.get("Running") and state.get("Status") in ("exited", "dead"):
            lines = await containers.last_lines(daemon, container_id)
            oom = " (killed: out of memory)" if state.get("OOMKilled") else ""
            raise HealthCheckFailed(
                f"{what} exited with code {state.get('ExitCode')}{oom} before it became healthy "
                f"(last log lines: {redact(lines) or '(none)'})"
            )
        status, output = docker_health(data)
        if status is not None:
            if status == "healthy":
                return
            last_error = f"HEALTHCHECK {status}" + (f": {output}" if output else "")
        elif state.get("Running"):
            error = await probe(session, url, max(0.05, min(PROBE_TIMEOUT, deadline - time.monotonic())))
            if error is None:
                return
            last_error = error
        if time.monotonic() >= deadline:
            lines = await containers.last_lines(daemon, container_id)
            raise HealthCheckFailed(
                f"{what} did not become healthy within {format_duration(timeout)} "
                f"(last check: {redact(last_error)}; last log lines: {redact(lines) or '(none)'})"
            )
        await asyncio.sleep(min(POLL, max(0.0, deadline - time.monotonic())))


__all__ = ["docker_health", "probe", "wait_healthy"]
