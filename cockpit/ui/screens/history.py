"""The journal on screen: who did what, when, why, and how it ended.

Typing filters (the journal's own text search over action, reason, detail, user
and outcome); the table refreshes every couple of seconds so a pair watching the
same release sees the other's actions arrive.
"""

from __future__ import annotations

import time
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.markup import escape
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from cockpit.engine.store import Record, Store

OUTCOME_STYLE = {
    "ok": "$ok",
    "refused": "$warn",
    "failed": "$fail bold",
    "info": "$foreground 55%",
    "started": "$accent",
}
LIMIT = 500


class HistoryScreen(Screen[None]):
    DEFAULT_CSS = """
    HistoryScreen #history-title { height: 1; background: $panel; padding: 0 1; text-style: bold; }
    HistoryScreen #history-filter { margin: 0 0; }
    HistoryScreen DataTable { height: 1fr; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "back", id="history_close"),
        Binding("f5", "reload", "reload", id="history_reload"),
    ]

    def __init__(self, journal: Store, service: str) -> None:
        super().__init__()
        self.journal = journal
        self.service = service
        self._last_id = -1
        self._text = ""

    def compose(self) -> ComposeResult:
        yield Static(Content(f"History · {self.service} · newest first"), id="history-title")
        yield Input(
            placeholder="type to filter (action, reason, detail, user, outcome) · Esc goes back",
            id="history-filter",
        )
        yield DataTable(id="history-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("time", "env", "user", "action", "outcome", "reason", "detail")
        self.reload()
        self.query_one(Input).focus()
        self.set_interval(2.0, self.reload)

    def on_input_changed(self, event: Input.Changed) -> None:
        self._text = event.value.strip()
        self._last_id = -1
        self.reload()

    def records(self) -> list[Record]:
        return self.journal.records(service=self.service, text=self._text or None, limit=LIMIT)

    def action_reload(self) -> None:
        self._last_id = -1
        self.reload()

    def reload(self) -> None:
        records = self.records()
        newest = records[-1].id if records else 0
        if newest == self._last_id:
            return
        self._last_id = newest
        table = self.query_one(DataTable)
        table.clear()
        for r in reversed(records):
            table.add_row(
                # Escaped: a DataTable reads strings as markup, and a reason such as
                # "[INC-42] roll back" must show as typed. (Strings, not Content, so
                # the columns are sized to fit.)
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.ts)),
                escape(r.env),
                escape(r.user),
                escape(r.action),
                Content.styled(r.outcome, OUTCOME_STYLE.get(r.outcome, "")),
                escape(r.reason),
                escape(r.detail),
                key=str(r.id),
            )
        title = f"History · {self.service} · {len(records)} records" + (
            f" matching {self._text!r}" if self._text else ""
        )
        self.query_one("#history-title", Static).update(Content(title + " · newest first"))

    def action_close(self) -> None:
        self.dismiss(None)
