"""A ``command`` step's process: its environment, secrets masked in every line, exit codes
explained, and a timeout that stops it (SIGTERM, then SIGKILL)."""

from __future__ import annotations

import sys
import time

import pytest

from cockpit.migrations.command import CommandSpec, run_command

PY = sys.executable


@pytest.mark.asyncio
async def test_env_and_masked_secrets_line_by_line() -> None:
    code = "import os; print('user', os.environ['DB_USER']); print('pw', os.environ['DB_PASSWORD']); raise SystemExit(3)"
    lines: list[str] = []
    spec = CommandSpec([PY, "-c", code], env={"DB_USER": "shop"}, secret_env={"DB_PASSWORD": "s3cr3t-pw"})
    result = await run_command(spec, lines.append)
    assert lines == ["user shop", "pw ***"] and result.output == "user shop\npw ***"
    assert not result.ok and result.exit_code == 3 and result.error is not None
    assert "exited with code 3: pw ***" in result.error and "s3cr3t-pw" not in result.error


@pytest.mark.asyncio
async def test_timeout_stops_with_sigterm_then_sigkill() -> None:
    began = time.monotonic()
    polite = await run_command(CommandSpec([PY, "-c", "import time; time.sleep(30)"], timeout=0.3))
    assert (
        not polite.ok and polite.error == "timed out after 0.3 s and was stopped" and polite.exit_code == -15
    )
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(30)"
    result = await run_command(CommandSpec([PY, "-c", stubborn], timeout=0.5), grace=0.3)
    assert not result.ok and result.exit_code == -9 and result.output == "up"
    assert time.monotonic() - began < 5


@pytest.mark.asyncio
async def test_missing_program_is_a_clear_failure() -> None:
    result = await run_command(CommandSpec(["/nonexistent/alembic", "upgrade"]))
    assert not result.ok and result.error == "command not found: '/nonexistent/alembic'"
