"""Theme files -> Textual themes.

Themes are small TOML files (``themes/dark.toml`` ...) so users can add their own in
``~/.config/cockpit/themes`` without writing Python. Every file is validated; a
broken one is collected as a :class:`ThemeProblem` (shown once by the app) and
skipped, so a typo in a theme never stops the cockpit from starting.

Search path, later directories overriding earlier ones by theme name:

1. ``<checkout>/themes`` - the canonical files, next to the ``cockpit`` package in a
   source checkout or an editable install;
2. ``cockpit/ui/builtin_themes`` - the same files shipped inside the wheel (used
   only when the checkout directory does not exist);
3. the user's ``<config dir>/themes``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from textual.color import Color, ColorParseError
from textual.theme import Theme

from cockpit.ui.config import config_dir

DEFAULT_THEME = "dark"
BUILTIN_ORDER = ("dark", "light", "high-contrast")

# Colours the cockpit's own CSS and renderers use, beyond Textual's palette. A theme
# may override any of them in its [variables] table; these defaults keep a theme that
# names none of them (or Textual's built-in themes) usable.
THEME_VARIABLES: dict[str, str] = {
    "stable": "#5fa8ff",
    "canary": "#ffb454",
    "router": "#9aa5b1",
    "blue-stack": "#5fa8ff",  # blue-green: the active stack (every user on it)
    "green-stack": "#57c27a",  # blue-green: the preview stack beside it
    "ok": "#57c27a",
    "fail": "#f4645d",
    "warn": "#e5b540",
    "nodata": "#9aa5b1",
    "phase-healthy": "#57c27a",
    "phase-progressing": "#5fa8ff",
    "phase-paused": "#e5b540",
    "phase-aborted": "#f4645d",
    "phase-degraded": "#f4645d",
    "env-1": "#7fb8ff",
    "env-2": "#c397ff",
    "env-3": "#ffa657",
    "env-4": "#56d4c3",
    "env-5": "#ff8fb3",
    "env-6": "#d6c85c",
    "log-time": "#7d8590",
}


def _colour(value: str) -> str:
    try:
        Color.parse(value)
    except ColorParseError:
        raise ValueError(
            f"{value!r} is not a colour (expected e.g. '#4c8dd8', 'rgb(76,141,216)' or 'orange')"
        ) from None
    return value


Colour = Annotated[str, AfterValidator(_colour)]


class ThemeFile(BaseModel):
    """The schema of one theme file; unknown keys are errors, as in the plan."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    name: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]*$")
    """The theme's name (``t`` cycles by name); the file name without ``.toml`` if absent."""
    dark: bool = True
    """Whether this is a dark theme (Textual derives shades from it)."""
    primary: Colour
    secondary: Colour | None = None
    accent: Colour | None = None
    warning: Colour | None = None
    error: Colour | None = None
    success: Colour | None = None
    foreground: Colour | None = None
    background: Colour | None = None
    surface: Colour | None = None
    panel: Colour | None = None
    boost: Colour | None = None
    variables: dict[str, Colour] = Field(default_factory=dict)
    """Cockpit colours (stable, canary, ok, fail, phase-*, env-1..6, ...)."""

    def to_theme(self, fallback_name: str) -> Theme:
        unknown = sorted(set(self.variables) - set(THEME_VARIABLES))
        if unknown:
            raise ValueError(f"unknown variables {', '.join(unknown)} (known: {', '.join(THEME_VARIABLES)})")
        fields = self.model_dump(exclude={"name", "variables"})
        return Theme(
            name=self.name or fallback_name, variables={**THEME_VARIABLES, **self.variables}, **fields
        )


@dataclass(frozen=True)
class ThemeProblem:
    source: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.message}"


# Used when even dark.toml is missing or broken, so the app always has its default.
FALLBACK = Theme(
    name=DEFAULT_THEME,
    primary="#4c8dd8",
    secondary="#2f5f8f",
    accent="#f0a040",
    warning="#e5b540",
    error="#f4645d",
    success="#57c27a",
    foreground="#d8dee9",
    background="#14171c",
    surface="#1b1f26",
    panel="#262d37",
    dark=True,
    variables=dict(THEME_VARIABLES),
)


def builtin_dirs() -> list[Path]:
    package = Path(__file__).resolve().parent
    checkout = package.parent.parent / "themes"
    shipped = package / "builtin_themes"
    return [checkout if checkout.is_dir() else shipped]


def theme_dirs() -> list[Path]:
    return [*builtin_dirs(), config_dir() / "themes"]


def load_theme_file(path: Path) -> Theme:
    """One theme file -> Theme; raises ValueError with a one-line explanation."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read: {err}") from None
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"not valid TOML: {err}") from None
    try:
        model = ThemeFile.model_validate(data)
    except ValidationError as err:
        parts = []
        for e in err.errors(include_url=False):
            where = ".".join(str(p) for p in e["loc"]) or "(file)"
            parts.append(f"{where}: {e['msg'].removeprefix('Value error, ')}")
        raise ValueError("; ".join(parts)) from None
    return model.to_theme(path.stem)


def load_themes(dirs: list[Path] | None = None) -> tuple[dict[str, Theme], list[ThemeProblem]]:
    """Every valid theme found (in search-path order) and the problems met on the way."""
    themes: dict[str, Theme] = {}
    problems: list[ThemeProblem] = []
    for directory in theme_dirs() if dirs is None else dirs:
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.toml")):
            try:
                theme = load_theme_file(path)
            except ValueError as err:
                problems.append(ThemeProblem(str(path), str(err)))
                continue
            themes.pop(theme.name, None)  # re-insert so an override keeps the newer position
            themes[theme.name] = theme
    if DEFAULT_THEME not in themes:
        themes[DEFAULT_THEME] = FALLBACK
    # The shipped themes first in a fixed order, so ``t`` always cycles the same way.
    ordered = [n for n in BUILTIN_ORDER if n in themes] + [n for n in themes if n not in BUILTIN_ORDER]
    return {name: themes[name] for name in ordered}, problems
