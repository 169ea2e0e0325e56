"""The log pane: one or more :class:`LogView` plus a status line and the filter input.

Modes (``l`` cycles): the focused environment, all environments merged by time,
split side by side, hidden. The screen's refresh timer calls :meth:`flush` once
per tick; each view indexes its new lines in one batch.
"""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import Input, Static

from cockpit.engine.logbuffer import LogHub
from cockpit.ui.config import LOG_MODES, LogMode
from cockpit.ui.widgets.log_view import LogFilter, LogView


class LogPane(Vertical):
    DEFAULT_CSS = """
    LogPane { height: 1fr; border-top: hkey $foreground 25%; }
    LogPane.-hidden { display: none; }
    LogPane #log-status { height: 1; width: 1fr; background: $panel; padding: 0 1; }
    LogPane #log-views { height: 1fr; }
    LogPane #log-views > LogView { border-left: vkey $foreground 25%; }
    LogPane #log-views > LogView:first-child { border-left: none; }
    LogPane #log-filter { display: none; height: 3; border: tall $accent; }
    LogPane.-filtering #log-filter { display: block; }
    LogPane #log-filter.-invalid { border: tall $fail; }
    """

    class FilterClosed(Message):
        """The filter input was closed (Enter or Escape): the screen takes focus back."""

    def __init__(self, hub: LogHub, envs: list[str], mode: LogMode, env: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.hub = hub
        self.envs = envs
        self.env_index = {name: i for i, name in enumerate(envs)}
        self.mode: LogMode = mode
        self.env = env
        self.filter: LogFilter | None = None
        self.filter_error: str | None = None
        self._status: Content | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="log-status")
        yield Horizontal(id="log-views")
        yield Input(
            placeholder="filter: text, or /regex/  (Enter applies, Esc closes, empty clears)", id="log-filter"
        )

    def on_mount(self) -> None:
        # Hidden until / opens it; never take focus (and the screen's keys) before that.
        self.query_one("#log-filter", Input).can_focus = False
        self._rebuild()

    # ------------------------------------------------------------------ modes

    @property
    def views(self) -> list[LogView]:
        return list(self.query_one("#log-views", Horizontal).query_children(LogView))

    def _groups(self) -> list[list[str]]:
        if self.mode == "focused":
            return [[self.env]]
        if self.mode == "merged":
            return [list(self.envs)]
        if self.mode == "split":
            return [[env] for env in self.envs]
        return []

    def _rebuild(self) -> None:
        self.set_class(self.mode == "hidden", "-hidden")
        holder = self.query_one("#log-views", Horizontal)
        holder.remove_children()
        holder.mount_all(
            LogView(self.hub.buffers, group, self.env_index, self.filter) for group in self._groups()
        )
        self.update_status()

    def set_mode(self, mode: LogMode) -> None:
        if mode != self.mode:
            self.mode = mode
            self._rebuild()

    def cycle_mode(self) -> LogMode:
        self.set_mode(LOG_MODES[(LOG_MODES.index(self.mode) + 1) % len(LOG_MODES)])
        return self.mode

    def set_env(self, env: str) -> None:
        if env == self.env:
            return
        self.env = env
        if self.mode == "focused":
            for view in self.views:
                view.set_sources([env])
            self.update_status()

    def theme_changed(self) -> None:
        for view in self.views:
            view.theme_changed()

    # ------------------------------------------------------------------ filter

    def open_filter(self) -> None:
        if self.mode == "hidden":
            self.set_mode("focused")
        self.add_class("-filtering")
        box = self.query_one("#log-filter", Input)
        box.can_focus = True
        box.value = self.filter.text if self.filter else ""
        box.focus()

    def close_filter(self) -> None:
        self.remove_class("-filtering")
        self.query_one("#log-filter", Input).can_focus = False
        self.post_message(self.FilterClosed())

    def apply_filter_text(self, text: str) -> bool:
        """Apply a filter as typed; a bad regex keeps the previous filter and says why."""
        box = self.query_one("#log-filter", Input)
        try:
            parsed = LogFilter.parse(text)
        except ValueError as err:
            self.filter_error = str(err)
            box.add_class("-invalid")
            self.update_status()
            return False
        self.filter_error = None
        box.remove_class("-invalid")
        self.filter = parsed
        for view in self.views:
            view.set_filter(parsed)
        self.update_status()
        return True

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.apply_filter_text(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.apply_filter_text(event.value):
            self.close_filter()

    def on_key(self, event: events.Key) -> None:
        if event.key == "escape" and self.has_class("-filtering"):
            event.stop()
            self.close_filter()

    # ------------------------------------------------------------------ refresh

    def flush(self) -> None:
        if self.mode == "hidden":
            return
        for view in self.views:
            view.flush()
        self.update_status()

    def follow(self) -> None:
        for view in self.views:
            view.follow()
        self.update_status()

    def page(self, direction: int) -> None:
        for view in self.views:
            view.page(direction)
        self.update_status()

    def update_status(self) -> None:
        views = self.views
        where = {"focused": self.env, "merged": "all environments", "split": "split", "hidden": "hidden"}[
            self.mode
        ]
        parts: list[str | tuple[str, str]] = [("logs ", "bold"), (where, "$accent")]
        lines = sum(v.line_count for v in views)
        parts.append((f"  {lines:,} lines", "$foreground 55%"))
        if views and all(v.following for v in views):
            parts.append(("  ⇣ following", "$ok"))
        else:
            new = sum(v.new_lines for v in views)
            parts.append(("  ⏸ paused", "$warn bold"))
            if new:
                parts.append((f"  ▼ {new:,} new lines (End follows)", "$warn"))
        if self.filter is not None:
            parts.append((f"  filter {self.filter.text}", "$accent"))
        if self.filter_error:
            parts.append((f"  ✗ {self.filter_error}", "$fail bold"))
        dropped = sum(v.dropped for v in views)
        if dropped:
            parts.append((f"  dropped {dropped:,}", "$warn bold"))
        status = Content.assemble(*parts)
        if status != self._status:
            self._status = status
            # One row, always: no layout pass (a relayout of the whole screen at every
            # refresh would cost more than drawing the logs).
            self.query_one("#log-status", Static).update(status, layout=False)
