"""Where the cockpit keeps its state: the journal and runtime files."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def state_dir(override: str | Path | None = None) -> Path:
    """``--state-dir``, else ``COCKPIT_STATE_DIR``, else the user's state dir."""
    chosen = override or os.environ.get("COCKPIT_STATE_DIR")
    path = Path(chosen).expanduser() if chosen else Path(platformdirs.user_state_dir("cockpit"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def journal_path(base: Path) -> Path:
    return base / "journal.sqlite3"


def run_dir(base: Path, service: str, env: str) -> Path:
    path = base / "run" / service / env
    path.mkdir(parents=True, exist_ok=True)
    return path
