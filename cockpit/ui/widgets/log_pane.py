"""The log pane: one or more :class:`LogView` plus a status line and the filter input.

Modes (``l`` cycles): the focused environment, all environments merged by time,
split side by side, hidden. The screen's refresh timer calls :meth:`flush` once
per tick; each view indexes its new lines in one batch.

The filter's matches are marked in the lines; ``n``/``N`` move between them, ``w``
folds long lines, ``T`` hides the timestamps, ``S`` saves what the pane shows (under
its filter) to a private file.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import Input, Static

from cockpit.engine.logbuffer import LogHub
from cockpit.model import LogLine
from cockpit.secrets import redact
from cockpit.ui.config import LOG_MODES, LogMode
from cockpit.ui.logformat import CONTROL
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
        self.wrap = False
        self.show_time = True
        self.match: tuple[int, int] | None = None  # (place, count) of the n/N match shown
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
        views = [LogView(self.hub.buffers, group, self.env_index, self.filter) for group in self._groups()]
        for view in views:
            view.wrap, view.show_time = self.wrap, self.show_time
        holder.mount_all(views)
        self.match = None
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
        self.match = None
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

    # ------------------------------------------------------------------ matches, wrap, timestamps, save

    def jump(self, direction: int) -> str | None:
        """Move to the next (1) or previous (-1) match in the first view that has one;
        returns why nothing moved, or None."""
        if self.filter is None:
            return "no filter: press / and type what to look for"
        for view in self.views:
            found = view.jump(direction)
            if found is not None:
                self.match = found
                self.update_status()
                return None
        self.match = None
        self.update_status()
        return f"no line shown matches {self.filter.text}"

    def toggle_wrap(self) -> bool:
        self.wrap = not self.wrap
        for view in self.views:
            view.set_wrap(self.wrap)
        self.update_status()
        return self.wrap

    def toggle_time(self) -> bool:
        self.show_time = not self.show_time
        for view in self.views:
            view.set_show_time(self.show_time)
        self.update_status()
        return self.show_time

    def save(self, directory: Path) -> tuple[Path, int]:
        """Write the lines the pane holds, under its filter, to a new file in ``directory``
        named after what it shows and when; returns the path and how many lines. The file
        is created 0600 (logs can say more than their author meant) and never overwrites
        one; known secret values are masked. Raises OSError when it cannot be written."""
        name = {"focused": self.env, "merged": "all", "split": "split", "hidden": self.env}[self.mode]
        stamp = time.strftime("%Y%m%d-%H%M%S")
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = directory / f"{name}-{stamp}.log"
        n = 1
        while path.exists():
            path = directory / f"{name}-{stamp}-{n}.log"
            n += 1
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        count = 0
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            header = f"# cockpit logs: {name}, saved {time.strftime('%Y-%m-%d %H:%M:%S %z')}"
            if self.filter is not None:
                header += f", filter {self.filter.text}"
            out.write(redact(header) + "\n")
            for view in self.views:
                for line in view.lines():
                    out.write(saved_line(line))
                    count += 1
        return path, count

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
            if self.match is not None:
                parts.append((f"  match {self.match[0]:,}/{self.match[1]:,} (n/N)", "$accent"))
        if self.wrap:
            parts.append(("  wrap", "$foreground 55%"))
        if not self.show_time:
            parts.append(("  no timestamps", "$foreground 55%"))
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


def saved_line(line: LogLine) -> str:
    """One line of a saved log: full date and time, environment, source, the raw text
    (control characters stripped, secrets masked)."""
    when = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(line.ts)) + f".{int(line.ts % 1 * 1000):03d}"
    return redact(f"{when} {line.env} {line.source}: {CONTROL.sub('', line.text)}") + "\n"
