"""The journal on screen: who did what, when, why, and how it ended.

Typing filters (the journal's own text search over action, reason, detail, user
and outcome); the table refreshes every couple of seconds so a pair watching the
same release sees the other's actions arrive. Newest first, each command before its
consequences (:func:`cockpit.engine.store.history.reading_order`, as ``cockpit
history`` prints them); Enter opens a record in full, with the canary log kept with
its rollout.
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
from cockpit.engine.store.history import Row, reading_order

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
        Binding("enter", "open", "open", id="history_open"),
        Binding("down", "move(1)", "down", show=False, id="history_down"),
        Binding("up", "move(-1)", "up", show=False, id="history_up"),
    ]

    def __init__(self, journal: Store, service: str) -> None:
        super().__init__()
        self.journal = journal
        self.service = service
        self._last_id = -1
        self._text = ""
        self.rows: list[Row] = []  # as shown, top to bottom

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
        # New records arrive on top: the highlighted one stays highlighted.
        # (On the top row, the top row stays: that is where the newest arrive.)
        row_was = table.cursor_row
        was = self.rows[row_was].record.id if 0 < row_was < len(self.rows) else None
        table.clear()
        self.rows = reading_order(records)
        for row in self.rows:
            r = row.record
            table.add_row(
                # Escaped: a DataTable reads strings as markup, and a reason such as
                # "[INC-42] roll back" must show as typed. (Strings, not Content, so
                # the columns are sized to fit.)
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.ts)),
                escape(r.env),
                escape(r.user),
                ("  ↳ " if row.consequence else "") + escape(r.action),
                Content.styled(r.outcome, OUTCOME_STYLE.get(r.outcome, "")),
                escape(r.reason),
                escape(r.detail),
                key=str(r.id),
            )
        if was is not None:
            at = next((i for i, row in enumerate(self.rows) if row.record.id == was), None)
            if at is not None:
                table.move_cursor(row=at)
        title = f"History · {self.service} · {len(records)} records" + (
            f" matching {self._text!r}" if self._text else ""
        )
        self.query_one("#history-title", Static).update(Content(title + " · newest first"))

    def action_move(self, step: int) -> None:
        table = self.query_one(DataTable)
        table.move_cursor(row=max(0, min(table.row_count - 1, table.cursor_row + step)))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_open()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        """The highlighted record in full, with the other records of its command."""
        from cockpit.ui.screens.history_detail import HistoryDetailScreen

        table = self.query_one(DataTable)
        if not self.rows or not 0 <= table.cursor_row < len(self.rows):
            self.notify("no record to open", timeout=2)
            return
        index = table.cursor_row
        start = index
        while start > 0 and self.rows[start].consequence:
            start -= 1
        end = index + 1
        while end < len(self.rows) and self.rows[end].consequence:
            end += 1
        entry = self.rows[start:end]
        self.app.push_screen(HistoryDetailScreen(self.journal, self.rows[index].record, entry))

    def action_close(self) -> None:
        self.dismiss(None)
