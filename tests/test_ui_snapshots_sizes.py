"""The main screen mid-canary and after an abort at three terminal sizes (issue 8):
80x24 (tabs, compact cards), 160x48 (the default) and 240x60 (tall charts).

Same frozen world as tests/test_ui_snapshots.py (its fixtures and steps are reused).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from tests.test_ui_snapshots import app_for, finish, frozen_world, rollout  # noqa: F401 - the fixture

SIZES = [(80, 24), (160, 48), (240, 60)]
STATES = {"mid-canary": "1.1.0", "aborted": "1.2.0"}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("state", list(STATES))
def test_main_screen(
    snap_compare: Callable[..., bool], tmp_path: Path, state: str, size: tuple[int, int]
) -> None:
    async def run_before(pilot: Pilot) -> None:
        await rollout(pilot, STATES[state])
        await finish(pilot)

    assert snap_compare(app_for(tmp_path), terminal_size=size, run_before=run_before)
