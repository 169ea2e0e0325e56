"""The user's UI settings: ``~/.config/cockpit/config.toml``.

Only presentation lives here (theme, keys, log pane); what a release does lives in
the plan. A broken file is reported once and the defaults are used, so a typo never
locks an engineer out of the cockpit in the middle of an incident. The ``[user]`` section
belongs to :mod:`cockpit.identity`; the file itself is read by :func:`cockpit.paths.read_config`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cockpit.identity import UserSettings
from cockpit.paths import config_dir, config_path, read_config
from cockpit.ui.keys import keymap_problems

__all__ = ["LOG_MODES", "LogMode", "UIConfig", "UISettings", "config_dir", "config_path", "load_config"]

LogMode = Literal["focused", "merged", "split", "hidden"]
LOG_MODES: tuple[LogMode, ...] = ("focused", "merged", "split", "hidden")


class UISettings(BaseModel):
    """The ``[ui]`` table: how the screen gets a person's attention."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    bell: bool = False
    """Ring the terminal bell when an alert is raised (an abort by analysis, a Degraded
    environment, a failed action). Off by default: a bell in a shared tmux is loud."""


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
    ui: UISettings = Field(default_factory=UISettings)
    """Attention: ``[ui] bell = true`` rings the terminal bell at every new alert."""
    user: UserSettings = Field(default_factory=UserSettings)
    """Who you are in the journal (read by :mod:`cockpit.identity`; validated here too so a
    mistake in it is reported on screen like any other)."""

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
    table, problems = read_config(path)
    if problems:
        return UIConfig(), problems
    try:
        return UIConfig.model_validate(table), []
    except ValidationError as err:
        parts = []
        for e in err.errors(include_url=False):
            where = ".".join(str(p) for p in e["loc"]) or "(file)"
            parts.append(f"{where}: {e['msg'].removeprefix('Value error, ')}")
        return UIConfig(), [f"{path}: {'; '.join(parts)}; using defaults"]
