"""One journal record in full: who, when, command, reason, result, what was seen, the
state it left, the records of the same command (its cause or consequences), and - for a
rollout - the canary log lines kept with it (the evidence of an abort, long after the
live log has moved on)."""

from __future__ import annotations

import time
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Static

from cockpit.engine.store import Record, Store
from cockpit.engine.store.history import Row, belongs, describe_rollout_log, details
from cockpit.model import LogLine, Track
from cockpit.ui.logformat import CONTROL, LEVEL_LABEL, readable

LEVEL_STYLE = {"error": "$fail bold", "warn": "$warn bold"}


class HistoryDetailScreen(Screen[None]):
    DEFAULT_CSS = """
    HistoryDetailScreen #detail-title { height: 1; background: $panel; padding: 0 1; text-style: bold; }
    HistoryDetailScreen #detail-body { height: 1fr; padding: 0 1; }
    HistoryDetailScreen .section { margin-top: 1; text-style: bold; color: $accent; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "back", id="history_detail_close"),
        Binding("q", "close", "back", show=False, id="history_detail_close_q"),
    ]

    def __init__(self, journal: Store, record: Record, entry: list[Row]) -> None:
        super().__init__()
        self.journal = journal
        self.record = record
        self.entry = entry
        self.kept_lines = 0

    def compose(self) -> ComposeResult:
        r = self.record
        yield Static(Content(f"History · record #{r.id} · {r.env} · {r.action} {r.outcome}"), id="detail-title")
        with VerticalScroll(id="detail-body"):
            yield Static(self._fields(), id="detail-fields")
            if len(self.entry) > 1:
                yield Static(Content("The command and what it did"), classes="section")
                yield Static(self._entry(), id="detail-entry")
            yield Static(Content("Canary log kept with the rollout"), classes="section")
            heading, lines = self._canary_log()
            yield Static(heading, id="detail-log-heading")
            yield Static(lines, id="detail-log")
        yield Footer()

    def _fields(self) -> Content:
        label_width = 12
        parts: list[Content] = []
        for label, text in details(self.record):
            if label == "detail" and self.record.outcome == "info":
                label = "seen"  # the engine's records say what it observed and did
            style = "$fail bold" if label == "result" and text == "failed" else ""
            parts.append(Content.assemble((f"{label:<{label_width}}", "$foreground 55%"), (text, style)))
        return Content("\n").join(parts)

    def _entry(self) -> Content:
        parts = []
        for row in self.entry:
            r = row.record
            mark = "▶ " if r.id == self.record.id else "  "
            when = time.strftime("%H:%M:%S", time.localtime(r.ts))
            arrow = "  ↳ " if row.consequence else ""
            parts.append(
                Content.assemble(
                    (mark, "$accent bold"),
                    (f"{when} ", "$foreground 55%"),
                    arrow,
                    (f"{r.action} {r.outcome}", "bold"),
                    f" by {r.user}: {r.detail}",
                    (f" (reason: {r.reason})" if r.reason else "", "$foreground 70%"),
                )
            )
        return Content("\n").join(parts)

    def _canary_log(self) -> tuple[Content, Content]:
        r = self.record
        kept = self.journal.rollout_log_for(r.service, r.env, r.id)
        if kept is None or not belongs(r, kept):
            return Content.styled("no rollout log belongs to this record", "$foreground 55%"), Content("")
        lines = self.journal.rollout_log_lines(kept.id)
        self.kept_lines = len(lines)
        heading = Content(describe_rollout_log(kept, len(lines)))
        if not lines:
            return heading, Content.styled("(the canary wrote nothing)", "$foreground 55%")
        rows = []
        for line in lines:
            ts, level, message = readable(LogLine(line.ts, r.env, line.source, Track.CANARY, line.text))
            rows.append(
                Content.assemble(
                    (time.strftime("%H:%M:%S ", time.localtime(ts)), "$foreground 55%"),
                    (f"{CONTROL.sub('', line.source)[:15]:<15} ", "$accent"),
                    (LEVEL_LABEL.get(level, "     ") + " ", LEVEL_STYLE.get(level, "$foreground 55%")),
                    (CONTROL.sub("", message.replace("\t", "    ")), LEVEL_STYLE.get(level, "")),
                )
            )
        return heading, Content("\n").join(rows)

    def action_close(self) -> None:
        self.dismiss(None)
