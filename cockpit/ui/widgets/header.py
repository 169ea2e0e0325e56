"""The header: service, the release in progress, who drives, and the clock; under it,
the alert banner while an alert waits to be acknowledged.

"No release in progress" is true right after analysis aborted production, and the
worst thing to read then: the banner (``widgets/alerts.py``) says what happened until
a person acknowledges it. The header reads the alerts from the session at each refresh
and tells the app when they change (:class:`CockpitHeader.AlertsChanged`), which rings
the bell if the user asked for one and shows the acknowledge key.
"""

from __future__ import annotations

from typing import cast

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import Static

from cockpit.engine.alerts import Alert
from cockpit.ui import keys, render
from cockpit.ui.host import CockpitHost
from cockpit.ui.widgets.alerts import AlertBanner


class CockpitHeader(Vertical):
    DEFAULT_CSS = """
    CockpitHeader { dock: top; height: auto; }
    CockpitHeader #header-row { height: 1; background: $panel; }
    CockpitHeader #header-row > Static { width: auto; height: 1; padding: 0 1; }
    CockpitHeader #header-row #header-release { width: 1fr; content-align: center middle; }
    CockpitHeader #header-clock { color: $text-muted; }
    /* Narrow terminals: the release is what matters at 3 a.m.; the description and the
       word "driving" give way first, so "release production: 1.2.0" is never cut. */
    CockpitHeader.-narrow #header-description { display: none; }
    CockpitHeader.-narrow #header-driving { display: none; }
    CockpitHeader.-narrow #header-row > Static { padding: 0 0 0 1; }
    """

    NARROW_WIDTH = 120  # below this the header drops the service description and "driving"

    class AlertsChanged(Message):
        """The unacknowledged alerts changed; ``alerts`` newest first."""

        def __init__(self, alerts: list[Alert]) -> None:
            super().__init__()
            self.alerts = alerts

    def __init__(self, service: str, description: str, user: str) -> None:
        super().__init__(id="header")
        self.service = service
        self.description = description
        self.user = user
        self._release: str | bool | None = False  # False: never shown yet
        self._clock = ""
        self._alerts_version = -1

    def compose(self) -> ComposeResult:
        title = Content.assemble(("cockpit ", "$foreground 55%"), (self.service, "bold $accent"))
        with Horizontal(id="header-row"):
            yield Static(title, id="header-service")
            description = Static(Content.styled(self.description, "$foreground 55%"), id="header-description")
            if not self.description:  # only ever hidden inline: the narrow CSS must still win
                description.display = False
            yield description
            yield Static("", id="header-release")
            yield Static(Content.styled("driving", "$foreground 55%"), id="header-driving")
            yield Static(Content.styled(self.user, "bold"), id="header-user")
            yield Static("", id="header-clock")
        yield AlertBanner()

    def on_resize(self) -> None:
        self.set_class(self.size.width < self.NARROW_WIDTH, "-narrow")

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
        self._show_alerts()

    def _show_alerts(self) -> None:
        host = cast(CockpitHost, self.app)
        log = host.session.alert_log
        if log.version == self._alerts_version:  # one int compare per refresh in the common case
            return
        self._alerts_version = log.version
        alerts = log.active()
        ack = keys.display_keys(keys.BY_ID["acknowledge"], host.keymap)
        self.query_one(AlertBanner).show(alerts, ack)
        # Straight to the app: created in the screen's refresh timer, the message has the
        # screen as its sender, and Textual stops bubbling at the sender.
        self.app.post_message(self.AlertsChanged(alerts))
