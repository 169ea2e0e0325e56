"""The user's UI settings: ``~/.config/cockpit/config.toml``.

Only presentation lives here (theme, keys, log pane); what a release does lives in
the plan. A broken file is reported once and the defaults are used, so a typo never
locks an engineer out of the cockpit in the middle of an incident.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cockpit.ui.keys import keymap_problems

LogMode = Literal["focused", "merged", "split", "hidden"]
LOG_MODES: tuple[LogMode, ...] = ("focused", "merged", "split", "hidden")


def config_dir() -> Path:
    """``COCKPIT_CONFIG_DIR``, else the platform's config dir (``~/.config/cockpit`` on Linux)."""
    chosen = os.environ.get("COCKPIT_CONFIG_DIR")
    return Path(chosen).expanduser() if chosen else Path(platformdirs.user_config_dir("cockpit"))


def config_path() -> Path:
    return config_dir() / "config.toml"


class UIConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    theme: str | None = None
    """Theme to start with (a file name in themes/ without .toml); "dark" if unset."""
    keys: dict[str, str] = Field(default_factory=dict)
    """Remapped keys by action id, e.g. ``promote = "p"`` or ``abort = "a,ctrl+a"``."""
    log_mode: LogMode = "focused"
    """Log pane at start: the focused environment, all merged, split side by side, or hidden."""
    log_height: int = Field(default=40, ge=10, le=80)
    """Share of the screen height (percent) the log pane takes when shown."""
    refresh_hz: float = Field(default=10.0, ge=1.0, le=30.0)
    """How often the screen is refreshed from the engine's state and the log buffers."""
    sparkline_rows: int = Field(default=2, ge=1, le=3)
    """Height of each sparkline; taller costs more to draw at every refresh."""
    min_column_width: int = Field(default=40, ge=20, le=120)
    """Below this many columns per environment the screen shows tabs instead."""

    @field_validator("keys")
    @classmethod
    def _known_keys(cls, keys: dict[str, str]) -> dict[str, str]:
        problems = keymap_problems(keys)
        if problems:
            raise ValueError("; ".join(p.removeprefix("keys.") for p in problems))
        return keys


def load_config(path: Path | None = None) -> tuple[UIConfig, list[str]]:
    """The config at ``path`` (default: the user's), and the problems that made it fall back."""
    path = path or config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return UIConfig(), []
    except (OSError, UnicodeDecodeError) as err:
        return UIConfig(), [f"{path}: cannot read ({err}); using defaults"]
    try:
        return UIConfig.model_validate(tomllib.loads(text)), []
    except tomllib.TOMLDecodeError as err:
        return UIConfig(), [f"{path}: not valid TOML ({err}); using defaults"]
    except ValidationError as err:
        parts = []
        for e in err.errors(include_url=False):
            where = ".".join(str(p) for p in e["loc"]) or "(file)"
            parts.append(f"{where}: {e['msg'].removeprefix('Value error, ')}")
        return UIConfig(), [f"{path}: {'; '.join(parts)}; using defaults"]
