"""The first frame: the header and one empty column per environment, "loading plan…".

Shown while the app reads the plan and opens the session (cockpit/ui/loading.py); the
main screen replaces it. Nothing here touches the engine.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Static

from cockpit.ui.loading import Preview
from cockpit.ui.widgets.header import CockpitHeader

LOADING = "loading plan…"


class LoadingScreen(Screen[None]):
    AUTO_FOCUS = None
    DEFAULT_CSS = """
    LoadingScreen #loading-row { height: 1fr; }
    LoadingScreen .loading-column { width: 1fr; height: 100%; border: round $panel-lighten-2; padding: 0 1; }
    LoadingScreen .loading-title { text-style: bold; }
    LoadingScreen .loading-note { color: $text-muted; }
    """
    # Nothing to stop yet: q leaves at once (the main screen's q stops the environments).
    BINDINGS: ClassVar[list[BindingType]] = [Binding("q", "leave", "quit")]

    def __init__(self, preview: Preview) -> None:
        super().__init__(id="loading")
        self.preview = preview

    def compose(self) -> ComposeResult:
        p = self.preview
        yield CockpitHeader(p.service, p.description, p.user)
        with Horizontal(id="loading-row"):
            for env in p.envs or ("",):
                with Vertical(classes="loading-column"):
                    if env:
                        yield Static(env, classes="loading-title")
                    yield Static(LOADING, classes="loading-note")

    def action_leave(self) -> None:
        self.app.exit()
