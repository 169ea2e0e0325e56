"""Who acts: the OS user, and the name of the person behind it.

One place answers "who did this?" for the journal and the screen. The OS user is what the
machine knows; the display name is who the person says they are, for a shared account
(``root`` on a bastion): ``$COCKPIT_USER`` for one shell, else ``[user] name`` in
``~/.config/cockpit/config.toml``. Both are shown together as ``"Ann (root)"``, so the
journal never loses the account that really acted.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cockpit.paths import read_config

ENV_VAR = "COCKPIT_USER"


class UserSettings(BaseModel):
    """The ``[user]`` section of the config file."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    name: str | None = Field(default=None, max_length=80)
    """Your name in the journal, shown beside the OS user: "Ann (root)"."""

    @field_validator("name")
    @classmethod
    def _one_line(cls, name: str | None) -> str | None:
        # A journal line per action: a name that could break it into two is refused.
        if name is not None and any(not ch.isprintable() for ch in name):
            raise ValueError("the name must be one line of printable text")
        return (name or "").strip() or None


@dataclass(frozen=True)
class Identity:
    os_user: str
    display_name: str | None = None

    @property
    def label(self) -> str:
        """``"Ann (root)"``; just the OS user when no name is set or the name is the OS user."""
        name = self.display_name
        return f"{name} ({self.os_user})" if name and name != self.os_user else self.os_user

    def __str__(self) -> str:
        return self.label


def os_user() -> str:
    """The login name, or ``uid<N>`` in a container whose uid has no passwd entry."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid{os.getuid()}"


def configured_name(config: Path | None = None) -> str | None:
    """``[user] name`` from the config file; None when unset or unusable (the screen reports
    a broken config file; the journal then names the OS user alone)."""
    table, problems = read_config(config)
    if problems:
        return None
    try:
        return UserSettings.model_validate(table.get("user", {})).name
    except ValidationError:
        return None


def current_identity(config: Path | None = None) -> Identity:
    """Who acts now: ``$COCKPIT_USER`` wins over the config file (one shell can speak for
    someone else without editing a shared file)."""
    named = os.environ.get(ENV_VAR, "").strip()
    return Identity(os_user(), named or configured_name(config))


def current_user() -> str:
    """The identity as the journal writes it: ``"Ann (root)"``."""
    return current_identity().label
