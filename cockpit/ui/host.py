"""What the screens need from the app that hosts them, as a protocol.

The screens read the session, the configuration and the intents in flight through
this, so they never import the app module: the app imports the screens, and an import
back (even under ``TYPE_CHECKING``) would make a cycle (tests/test_ui_imports.py).
Requests go the other way as messages (:mod:`cockpit.ui.intents`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from textual.geometry import Size

from cockpit.engine.session import Session
from cockpit.ui.config import UIConfig
from cockpit.ui.intents import Intents


class CockpitHost(Protocol):
    session: Session
    config: UIConfig
    keymap: dict[str, str]
    intents: Intents
    clock: Callable[[], float]  # unix seconds; tests freeze it

    @property
    def size(self) -> Size: ...  # the terminal's, for the narrow layout

    def cycle_theme(self) -> str: ...

    async def action_quit(self) -> None: ...
