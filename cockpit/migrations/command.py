"""Running a ``command`` action (alembic, pgroll, flyway...) as a process on this host: its
environment with the resolved secrets, its output line by line with those secrets masked,
and a timeout that stops it (SIGTERM, then SIGKILL after a grace period)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cockpit.migrations.api import OnLine
from cockpit.migrations.records import mask, trim

GRACE = 5.0
"""Seconds between SIGTERM and SIGKILL when a command outlives its timeout."""


@dataclass(frozen=True, slots=True)
class CommandSpec:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    secret_env: dict[str, str] = field(default_factory=dict)  # resolved values: masked in output
    timeout: float = 600.0
    cwd: Path | None = None


@dataclass(frozen=True, slots=True)
class CommandResult:
    ok: bool
    output: str  # trimmed, secrets masked
    error: str | None = None
    exit_code: int | None = None


CommandExecutor = Callable[[CommandSpec, "OnLine | None"], Awaitable[CommandResult]]
"""How a runner runs a command action: :func:`run_command` here, or the engine's one-off
task on the environment's backend (a container of the release's image)."""


def _stop(proc: asyncio.subprocess.Process, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)  # the whole group: a shell's children too


async def run_command(
    spec: CommandSpec, on_line: OnLine | None = None, *, grace: float = GRACE
) -> CommandResult:
    """Run ``spec`` to its end or its timeout; never raises for the command's own failure."""
    secrets = list(spec.secret_env.values())
    env = {**os.environ, **spec.env, **spec.secret_env}
    try:
        proc = await asyncio.create_subprocess_exec(
            *spec.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            cwd=spec.cwd,
            start_new_session=True,
        )
    except FileNotFoundError:
        return CommandResult(False, "", f"command not found: {spec.argv[0]!r}")
    except PermissionError:
        return CommandResult(False, "", f"command not executable: {spec.argv[0]!r}")
    except OSError as err:
        return CommandResult(False, "", f"command {spec.argv[0]!r} cannot start: {err.strerror or err}")

    lines: list[str] = []

    async def read() -> None:
        assert proc.stdout is not None
        while raw := await proc.stdout.readline():
            line = mask(raw.decode("utf-8", "replace").rstrip("\r\n"), secrets)
            lines.append(line)
            if on_line is not None:
                on_line(line)

    reader = asyncio.ensure_future(read())
    timed_out = False
    try:
        await asyncio.wait_for(proc.wait(), spec.timeout)
    except TimeoutError:
        timed_out = True
        _stop(proc, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            _stop(proc, signal.SIGKILL)
            await proc.wait()
    except asyncio.CancelledError:
        _stop(proc, signal.SIGKILL)
        await proc.wait()
        raise
    finally:
        # A grandchild holding the pipe open must not keep us waiting for ever.
        try:
            await asyncio.wait_for(reader, 2.0)
        except TimeoutError:
            reader.cancel()
    output = trim("\n".join(lines))
    code = proc.returncode
    if timed_out:
        return CommandResult(False, output, f"timed out after {spec.timeout:g} s and was stopped", code)
    if code != 0:
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
        last = next((ln for ln in reversed(lines) if ln.strip()), "")
        return CommandResult(
            False, output, f"{spec.argv[0]} {how}" + (f": {last.strip()[:300]}" if last else ""), code
        )
    return CommandResult(True, output, None, code)


def resolve_secret_env(secret_env: Mapping[str, str], secret: Callable[[str], str]) -> dict[str, str]:
    """``{VAR: entry}`` to ``{VAR: value}`` through the plan's secrets."""
    return {var: secret(entry) for var, entry in secret_env.items()}
