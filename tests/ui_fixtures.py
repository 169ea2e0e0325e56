"""Shared pieces of the UI tests: a small plan on the memory backend, a session
factory and a helper to wait for the engine without sleeping blindly."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot

import tests.memory_backend  # noqa: F401 - registers the "memory" adapters
from cockpit.adapters import memory_platform
from cockpit.engine.session import Session
from cockpit.plan.loader import parse_plan
from cockpit.ui.app import CockpitApp
from cockpit.ui.config import UIConfig

memory_platform.register()

# The backend and metrics source of each driver: the cockpit walks the memory backend's steps
# (machine driver); the memory platform walks its own (mirror driver). Tests that run on both
# set DRIVER (tests/test_ui_actions.py); snapshots stay on the machine driver.
ADAPTERS = {"machine": "memory", "mirror": "memory-platform"}
DRIVER = "machine"

FIXED_NOW = 1_767_225_600.0 + 9 * 3600 + 41 * 60 + 5  # 2026-01-01 09:41:05 UTC
SIZE = (160, 48)
REPO = Path(__file__).resolve().parent.parent

ENV_TEMPLATE = """
[[environments]]
name = "{name}"
protected = {protected}
initial_version = "1.0.0"
  [environments.backend]
  adapter = "{adapter}"
    [environments.backend.options]
    url = "http://127.0.0.1:{port}"
    down = {down}
  [environments.metrics]
  source = "{adapter}"
  interval = "{interval}"
"""

PLAN_TAIL = """
[strategy.canary]
steps = [
  { set_weight = 20 },
  { pause = {} },
  { analysis = { checks = ["success-rate", "latency-p99"] } },
  { set_weight = 50 },
  { pause = {} },
]

[[analysis.checks]]
name = "success-rate"
metric = "success-rate"
success = ">= 95"
interval = "50ms"
count = 2

[[analysis.checks]]
name = "latency-p99"
metric = "latency-p99"
success = "<= 250"
interval = "50ms"
count = 2
"""


def plan_text(
    envs: tuple[str, ...] = ("dev", "staging", "production"),
    protected: tuple[str, ...] = ("production",),
    down: tuple[str, ...] = (),
    interval: str = "50ms",
) -> str:
    parts = ['[service]\nname = "shop"\ndescription = "Demo web shop API"\n']
    for i, name in enumerate(envs):
        parts.append(
            ENV_TEMPLATE.format(
                name=name,
                protected=str(name in protected).lower(),
                port=18080 + i,
                down=str(name in down).lower(),
                interval=interval,
                adapter=ADAPTERS[DRIVER],
            )
        )
    parts.append(PLAN_TAIL)
    return "".join(parts)


def make_session(tmp_path: Path, text: str | None = None, user: str = "alice") -> Session:
    plan = parse_plan(text or plan_text())
    return Session(plan, state_dir=tmp_path / "state", user=user, log_capacity=2000)


def make_app(
    session: Session, *, clock: Callable[[], float] | None = None, theme: str | None = None, **config: object
) -> CockpitApp:
    return CockpitApp(session, theme_name=theme, config=UIConfig(**config), clock=clock)  # type: ignore[arg-type]


async def wait_for(
    pilot: Pilot, predicate: Callable[[], object], timeout: float = 5.0, what: str = ""
) -> None:
    """Let the app run until ``predicate()`` holds (or fail after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.02)
    await pilot.pause()


def started(app: CockpitApp) -> bool:
    return app.session_started and all(v.up for v in app.session.views() if v.backend_error is None)
