"""Where the cockpit keeps its state (the journal and runtime files) and where the user's
config file is, with the one function that reads it."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import platformdirs


class StateDirError(Exception):
    """The state directory cannot be created or used; ``str(err)`` is one line for the user."""


def state_dir(override: str | Path | None = None) -> Path:
    """``--state-dir``, else ``COCKPIT_STATE_DIR``, else the user's state dir; created 0700
    (it holds the journal: who did what, and why) and checked usable before anything runs."""
    chosen = override or os.environ.get("COCKPIT_STATE_DIR")
    try:
        path = Path(chosen).expanduser() if chosen else Path(platformdirs.user_state_dir("cockpit"))
    except RuntimeError as err:  # "~user" for a user that does not exist
        raise StateDirError(f"state dir {chosen}: {err}") from None
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:
        raise StateDirError(f"state dir {path} is a file, not a directory") from None
    except NotADirectoryError:
        raise StateDirError(f"state dir {path} cannot be created: a part of that path is a file") from None
    except OSError as err:
        raise StateDirError(f"state dir {path} cannot be created: {err.strerror or err}") from None
    if not path.is_dir():
        raise StateDirError(f"state dir {path} is not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise StateDirError(f"state dir {path} is not writable by this user")
    return path


def journal_path(base: Path) -> Path:
    return base / "journal.sqlite3"


def run_dir(base: Path, service: str, env: str) -> Path:
    path = base / "run" / service / env
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_dir() -> Path:
    """``COCKPIT_CONFIG_DIR``, else the platform's config dir (``~/.config/cockpit`` on Linux)."""
    chosen = os.environ.get("COCKPIT_CONFIG_DIR")
    return Path(chosen).expanduser() if chosen else Path(platformdirs.user_config_dir("cockpit"))


def config_path() -> Path:
    return config_dir() / "config.toml"


def read_config(path: Path | None = None) -> tuple[dict[str, Any], list[str]]:
    """The user's config file as a TOML table (empty when there is none), and the problem
    that made it unreadable. Each part of the cockpit validates only its own section (the
    screen its settings, :mod:`cockpit.identity` the user's name), so the file is read here
    and only here."""
    path = path or config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, []
    except (OSError, UnicodeDecodeError) as err:
        return {}, [f"{path}: cannot read ({err}); using defaults"]
    try:
        return tomllib.loads(text), []
    except tomllib.TOMLDecodeError as err:
        return {}, [f"{path}: not valid TOML ({err}); using defaults"]
