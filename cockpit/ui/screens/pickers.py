"""Pick a version to roll out, or a retained revision to roll back to."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from cockpit.engine.state import Revision


class _Picker(ModalScreen[str | None]):
    DEFAULT_CSS = """
    _Picker { align: center middle; }
    _Picker #dialog { width: 64; height: auto; max-height: 80%; padding: 1 2;
                      border: thick $accent; background: $surface; }
    _Picker #title { text-style: bold; margin-bottom: 1; }
    _Picker #hint { color: $text-muted; margin-top: 1; }
    _Picker OptionList { height: auto; max-height: 16; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "cancel", id="picker_cancel")]

    def __init__(self, title: str, options: list[Option], hint: str) -> None:
        super().__init__()
        self.title_text = title
        self.options = options
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Content(self.title_text), id="title")
            yield OptionList(*self.options, id="choices")
            yield Static(Content(self.hint), id="hint")

    def on_mount(self) -> None:
        choices = self.query_one(OptionList)
        choices.focus()
        enabled = [i for i, o in enumerate(self.options) if not o.disabled]
        if enabled:
            choices.highlighted = enabled[0]

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class VersionPicker(_Picker):
    """Dismisses with the chosen version, or ``None``."""

    def __init__(self, env: str, versions: Sequence[str], stable: str) -> None:
        # Newest first: the version you want to ship is nearly always the latest.
        options = [
            Option(
                Content.assemble((v, "bold"), ("  (stable now)", "$foreground 55%")) if v == stable else v,
                id=v,
                disabled=v == stable,
            )
            for v in reversed(versions)
        ]
        super().__init__(f"Start a rollout on {env}", options, "Enter starts the rollout · Esc cancels")


class RevisionPicker(_Picker):
    """Dismisses with the chosen revision number (as a string), or ``None``."""

    def __init__(self, env: str, revisions: Sequence[Revision], stable: str) -> None:
        current = revisions[-1].number if revisions else None
        options = []
        for rev in reversed(revisions):  # newest first
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(rev.ts))
            now = rev.number == current
            label = Content.assemble(
                (f"rev {rev.number:<3} ", "bold"),
                (f"{rev.version:<10}", "$stable" if now else ""),
                (f" {when}  {rev.user}", "$foreground 55%"),
                ("  (running now)" if now else "", "$ok"),
            )
            options.append(Option(label, id=str(rev.number), disabled=now or rev.version == stable))
        super().__init__(
            f"Roll back {env} to a retained revision",
            options,
            "Enter rolls back (an immediate cut-over, journaled) · Esc cancels",
        )
