"""The header: service, the release in progress, who drives, and the clock."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Static

from cockpit.ui import render


class CockpitHeader(Horizontal):
    DEFAULT_CSS = """
    CockpitHeader { dock: top; height: 1; background: $panel; }
    CockpitHeader > Static { width: auto; height: 1; padding: 0 1; }
    CockpitHeader #header-release { width: 1fr; content-align: center middle; }
    CockpitHeader #header-clock { color: $text-muted; }
    """

    def __init__(self, service: str, description: str, user: str) -> None:
        super().__init__(id="header")
        self.service = service
        self.description = description
        self.user = user
        self._release: str | bool | None = False  # False: never shown yet
        self._clock = ""

    def compose(self) -> ComposeResult:
        title = Content.assemble(
            ("cockpit ", "$foreground 55%"),
            (self.service, "bold $accent"),
            (f"  {self.description}" if self.description else "", "$foreground 55%"),
        )
        yield Static(title, id="header-service")
        yield Static("", id="header-release")
        yield Static(Content.assemble(("driving ", "$foreground 55%"), (self.user, "bold")), id="header-user")
        yield Static("", id="header-clock")

    def show(self, release: str | None, now: float) -> None:
        if release != self._release:
            self._release = release
            text = (
                Content.assemble(("release ", "$foreground 55%"), (release, "bold $canary"))
                if release
                else Content.styled("no release in progress", "$foreground 55%")
            )
            self.query_one("#header-release", Static).update(text)
        clock = render.clock_text(now)
        if clock != self._clock:
            self._clock = clock
            self.query_one("#header-clock", Static).update(clock, layout=False)  # same width every second
