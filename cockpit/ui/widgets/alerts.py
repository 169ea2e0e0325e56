"""The alert banner: what went wrong on its own, under the header, until acknowledged.

It shows the newest unacknowledged alert (which environment, what happened, the
engine's cause, when) and how many more wait behind it, with the key that
acknowledges it. Hidden while there is none, so the screen is unchanged then. A
symbol and the words carry the meaning; the colour only adds to it.
"""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from cockpit.engine.alerts import Alert
from cockpit.ui import render


class AlertBanner(Static):
    DEFAULT_CSS = """
    AlertBanner {
        display: none;
        height: auto;
        max-height: 3;
        padding: 0 1;
        background: $fail 25%;
        color: $foreground;
        /* Each of the two lines stays one line: cut with an ellipsis on a narrow
           terminal rather than wrapped into a third row that pushes the cause out. */
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    AlertBanner.-shown { display: block; }
    """

    def __init__(self) -> None:
        super().__init__("", id="alerts")
        self._shown: tuple[tuple[int, ...], str] | None = None

    def show(self, alerts: list[Alert], ack_key: str) -> None:
        """``alerts``: newest first; ``ack_key``: the key that acknowledges, as people read it."""
        ids = tuple(a.id for a in alerts)
        if (ids, ack_key) == self._shown:
            return
        self._shown = (ids, ack_key)
        self.set_class(bool(alerts), "-shown")
        if not alerts:
            self.update("")
            return
        newest = alerts[0]
        # What, where, when, how many and the key on the first line; the engine's cause
        # below it. Lines never wrap (a narrow terminal cuts them with an ellipsis), so the
        # key to acknowledge goes first, where no width can cut it.
        count = f"(1 of {len(alerts)}) " if len(alerts) > 1 else ""
        self.update(
            Content.assemble(
                ("⚠ ALERT ", "bold $fail"),
                (f"{ack_key} acknowledge  ", "$foreground 70%"),
                (count, "bold"),
                (render.clock_text(newest.ts), "$foreground 70%"),
                " ",
                (newest.env, "bold"),
                f": {newest.what}",
                (f"\n  {newest.cause}" if newest.cause else "", "$foreground 85%"),
            )
        )
