"""Small read-only modals over the dimmed cockpit: the key help."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Static

from cockpit.ui.keys import ACTIONS, display_keys
from cockpit.ui.screens.modal import CockpitModal

DISABLED = "$foreground 45%"  # a key the focused environment's backend cannot run


class _Info(CockpitModal[None]):
    DEFAULT_CSS = """
    _Info { align: center middle; }
    _Info #dialog { width: 96; max-width: 100%; height: auto; max-height: 90%; padding: 0 1;
                    border: thick $accent; background: $surface; }
    _Info #scroll { height: auto; max-height: 60vh; scrollbar-size-vertical: 1; }
    _Info #title { text-style: bold; margin-bottom: 1; }
    _Info #hint { color: $text-muted; margin-top: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "close", id="info_close"),
        Binding("q", "close", "close", show=False, id="info_close_q"),
    ]

    def __init__(self, title: str, body: Content) -> None:
        super().__init__()
        self.title_text = title
        self.body = body

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Content(self.title_text), id="title")
            # Scrolls (↑/↓, PgUp/PgDn): the key list is longer than an 80x24 terminal.
            with VerticalScroll(id="scroll"):
                yield Static(self.body, id="body")
            yield Static("↑/↓ scroll · Esc closes", id="hint")

    def action_close(self) -> None:
        self.dismiss(None)


class HelpScreen(_Info):
    def __init__(self, keymap: dict[str, str], unavailable: dict[str, str] | None = None) -> None:
        """``unavailable``: binding id -> why that key cannot run on the focused environment
        (its backend lacks the capability); those lines are dimmed, with the reason."""
        unavailable = unavailable or {}
        lines = []
        for spec in ACTIONS:
            keys = f"{display_keys(spec, keymap):>14}  "
            if why := unavailable.get(spec.id):
                lines.append(Content.assemble((keys, DISABLED), (spec.help, DISABLED)))
                lines.append(Content.assemble((" " * len(keys), DISABLED), (f"unavailable: {why}", DISABLED)))
                continue
            lines.append(Content.assemble((keys, "bold $accent"), spec.help))
        lines.append(
            Content.assemble((f"{'ctrl+p':>14}  ", "bold $accent"), "Command palette: every action by name")
        )
        body = Content("\n").join(lines)
        super().__init__("Keys (remap them in ~/.config/cockpit/config.toml [keys])", body)
