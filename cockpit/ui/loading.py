"""What the app needs to paint its first frame before the plan is loaded.

Parsing and validating a plan and opening a session take a few hundred milliseconds
(pydantic, the journal, the adapters and their imports). The command line hands the app
a :class:`SessionLoader` instead of a session: the app paints a :class:`Preview` at once
(header, one empty column per environment saying "loading plan…"), then reads the plan
in a worker thread and opens the session on its own loop (the local backend's children
must be forked from the loop's thread), and the main screen replaces the preview.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the point is not to import these before the first frame
    from cockpit.engine.session import Session
    from cockpit.plan.models import Plan


@dataclass(frozen=True)
class Preview:
    """What is known before the plan is validated: from a quick read of its TOML, so a
    plan that turns out to be wrong only ever shows here as "loading plan…"."""

    service: str
    description: str = ""
    envs: tuple[str, ...] = ()
    user: str = ""


@dataclass(frozen=True)
class SessionLoader:
    preview: Preview
    read_plan: Callable[[], Plan]
    """Parses and validates the plan; runs in a worker thread. Raises on a bad plan."""
    open_session: Callable[[Plan], Session]
    """Opens the session (journal, adapters); runs on the app's loop. Raises on failure."""
