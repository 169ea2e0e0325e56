"""Pick a version to roll out, or a retained revision to roll back to.

The cursor moves one row per key and stops at the ends: Textual's OptionList jumps
over disabled rows and wraps from the last row to the first, so a Down pressed once
too often at 3 a.m. landed on the newest version again. Here every row can be
highlighted - the one running now too, marked as such - and Enter on a row that
cannot be picked says why instead of doing nothing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from cockpit.engine.state import Revision
from cockpit.ui.screens.modal import WatchedModal
from cockpit.ui.screens.summary import rollback_hint
from cockpit.ui.versions import version_key

MUTED = "$foreground 55%"


class PickerList(OptionList):
    """An option list whose cursor moves one row at a time and never wraps around."""

    def _go(self, index: int) -> None:
        if self.option_count:
            self.highlighted = max(0, min(self.option_count - 1, index))

    def action_cursor_down(self) -> None:
        self._go(0 if self.highlighted is None else self.highlighted + 1)

    def action_cursor_up(self) -> None:
        self._go(0 if self.highlighted is None else self.highlighted - 1)

    def action_first(self) -> None:
        self._go(0)

    def action_last(self) -> None:
        self._go(self.option_count - 1)

    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def action_page_down(self) -> None:
        self._go((self.highlighted or 0) + self._page())

    def action_page_up(self) -> None:
        self._go((self.highlighted or 0) - self._page())


class _Picker(WatchedModal[str | None]):
    DEFAULT_CSS = """
    _Picker { align: center middle; }
    _Picker #dialog { width: 72; height: auto; max-height: 80%; padding: 1 2;
                      border: thick $accent; background: $surface; }
    _Picker #title { text-style: bold; margin-bottom: 1; }
    _Picker #note { height: auto; min-height: 1; margin-top: 1; }
    _Picker #hint { color: $text-muted; margin-top: 1; }
    _Picker OptionList { height: auto; max-height: 16; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "cancel", id="picker_cancel")]

    def __init__(
        self,
        env: str,
        title: str,
        options: list[Option],
        hint: str,
        blocked: dict[str, str],
        *,
        watch: bool = True,
    ) -> None:
        """``blocked``: option id -> why it cannot be picked (shown when Enter is pressed on it)."""
        super().__init__(env, watch=watch)
        self.title_text = title
        self.options = options
        self.hint = hint
        self.blocked = blocked

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Content(self.title_text), id="title")
            yield PickerList(*self.options, id="choices")
            yield Static("", id="note")
            yield Static("", id="stale")
            yield Static(Content(self.hint), id="hint")

    def on_mount(self) -> None:
        super().on_mount()
        choices = self.query_one(PickerList)
        choices.focus()
        pickable = [i for i, o in enumerate(self.options) if o.id not in self.blocked]
        if self.options:
            choices.highlighted = pickable[0] if pickable else 0

    def note_for(self, option_id: str) -> Content:
        """What to say under the list while ``option_id`` is highlighted."""
        why = self.blocked.get(option_id)
        return Content.styled(f"✗ {why}", MUTED) if why else Content("")

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        self.query_one("#note", Static).update(self.note_for(event.option.id or ""))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        option_id = event.option.id or ""
        note = self.query_one("#note", Static)
        if why := self.blocked.get(option_id):
            note.update(Content.styled(f"✗ {why}", "bold $fail"))
            return
        if not self.still_valid():
            note.update(Content.styled("✗ not picked: the state changed (see below)", "bold $fail"))
            return
        self.dismiss(option_id)

    def on_stale(self) -> None:
        self.query_one("#title", Static).update(Content.styled(f"{self.title_text} (out of date)", "$fail"))

    def action_cancel(self) -> None:
        self.dismiss(None)


def newest_first(versions: Sequence[str]) -> list[str]:
    """``versions`` newest first: by version number when every one reads as one, else the
    backend's own order reversed (it lists oldest first)."""
    keyed = [(key, v) for v in versions if (key := version_key(v)) is not None]
    if len(keyed) == len(versions):
        return [v for _, v in sorted(keyed, key=lambda kv: kv[0], reverse=True)]
    return list(reversed(versions))


class VersionPicker(_Picker):
    """Dismisses with the chosen version, or ``None``."""

    def __init__(self, env: str, versions: Sequence[str], stable: str, *, watch: bool = True) -> None:
        self.stable = stable
        options = []
        for v in newest_first(versions):  # the version you want to ship is nearly always the latest
            if v == stable:
                options.append(Option(Content.assemble((v, f"bold {MUTED}"), ("  (stable, running now)", MUTED)), id=v))
            else:
                options.append(Option(Content(v), id=v))
        blocked = {stable: f"{stable} already runs as stable on {env}"} if stable in versions else {}
        super().__init__(
            env,
            f"Start a rollout on {env}",
            options,
            "↑↓ move · Enter picks (a summary follows) · Esc cancels",
            blocked,
            watch=watch,
        )

    def note_for(self, option_id: str) -> Content:
        hint = rollback_hint(option_id, self.stable) if option_id not in self.blocked else None
        return hint if hint is not None else super().note_for(option_id)


class RevisionPicker(_Picker):
    """Dismisses with the chosen revision number (as a string), or ``None``."""

    def __init__(self, env: str, revisions: Sequence[Revision], stable: str, *, watch: bool = True) -> None:
        current = revisions[-1].number if revisions else None
        options = []
        blocked = {}
        for rev in reversed(revisions):  # newest first
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(rev.ts))
            now = rev.number == current
            label = Content.assemble(
                (f"rev {rev.number:<3} ", "bold"),
                (f"{rev.version:<10}", "$stable" if now else ""),
                (f" {when}  {rev.user}", MUTED),
                ("  (running now)" if now else "", "$ok"),
            )
            options.append(Option(label, id=str(rev.number)))
            if now:
                blocked[str(rev.number)] = f"revision {rev.number} is the one running now"
            elif rev.version == stable:
                blocked[str(rev.number)] = f"revision {rev.number} is {rev.version}, the stable version already"
        super().__init__(
            env,
            f"Roll back {env} to a retained revision",
            options,
            "↑↓ move · Enter rolls back (an immediate cut-over, journaled) · Esc cancels",
            blocked,
            watch=watch,
        )
