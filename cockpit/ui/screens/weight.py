"""Pick the canary's target weight in one go (the `w` key).

``+``/``-`` move the weight by 10 % and, on a protected environment, ask for the typed
confirmation every time: going from 20 % to 50 % by hand costs three modals and three
reasons. Here the engineer picks the target first (arrows, or digits typed), sees the
current and the target side by side, and the cockpit sends *one* set-weight command:
one confirmation with one reason on a protected environment, one journal record.

Chosen over "confirm once per rollout, then ± freely": a confirmation that silently
covers later changes is a guard nobody sees any more, and a reason typed for 30 % says
nothing about 80 %. Here every change is still confirmed and journaled with its reason.
"""

from __future__ import annotations

from typing import ClassVar

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from cockpit.ui.screens.modal import WatchedModal

BAR = 50  # cells of the bar: 2 % each
MUTED = "$foreground 55%"


def type_digit(buffer: str, digit: str) -> str:
    """The typed weight after ``digit``: "3" then "5" is 35, "1" "0" "0" is 100; a digit
    that would go past 100 starts a new number ("5" "5" "5" is 55, then 5)."""
    candidate = (buffer + digit).lstrip("0") or "0"
    return candidate if int(candidate) <= 100 and len(candidate) <= 3 else digit


class WeightPicker(WatchedModal[int | None]):
    """Dismisses with the target weight in percent, or ``None``."""

    DEFAULT_CSS = """
    WeightPicker { align: center middle; }
    WeightPicker #dialog { width: 72; height: auto; padding: 1 2;
                           border: thick $accent; background: $surface; }
    WeightPicker #title { text-style: bold; margin-bottom: 1; }
    WeightPicker #bar { margin-bottom: 1; }
    WeightPicker #note { height: auto; min-height: 1; }
    WeightPicker #hint { color: $text-muted; margin-top: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "cancel", id="weight_cancel"),
        # Not a priority binding: those run as the key arrives, ahead of the digits still
        # queued on this screen, and "4 0 Enter" typed fast would send the old target.
        Binding("enter", "pick", "pick", id="weight_pick"),
        Binding("up,right,plus,equals_sign", "step(10)", "+10", show=False, id="weight_up10"),
        Binding("down,left,minus", "step(-10)", "-10", show=False, id="weight_down10"),
        Binding("shift+up,shift+right", "step(1)", "+1", show=False, id="weight_up1"),
        Binding("shift+down,shift+left", "step(-1)", "-1", show=False, id="weight_down1"),
        Binding("home", "set(0)", "0%", show=False, id="weight_zero"),
        Binding("end", "set(100)", "100%", show=False, id="weight_full"),
        Binding("backspace", "erase", "erase", show=False, id="weight_erase"),
    ]

    target: reactive[int] = reactive(0)

    def __init__(self, env: str, current: int, *, protected: bool = False, watch: bool = True) -> None:
        super().__init__(env, watch=watch)
        self.current = current
        self.protected = protected
        self.typed = ""  # digits typed so far
        self.set_reactive(WeightPicker.target, min(100, current + 10))

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Content(f"Canary weight on {self.env}"), id="title")
            yield Static(self._bar(), id="bar")
            yield Static("", id="note")
            yield Static("", id="stale")
            then = "the typed confirmation and a reason follow" if self.protected else "sent at once"
            yield Static(
                Content(f"↑↓ ±10 · shift+↑↓ ±1 · digits type it · Home 0 · End 100\nEnter: {then} · Esc cancels"),
                id="hint",
            )

    def _bar(self) -> Content:
        canary = round(BAR * self.target / 100)
        mark = round(BAR * self.current / 100)
        cells = ["█" if i < canary else "░" for i in range(BAR)]
        bar = Content.assemble(
            *((c, "$canary" if c == "█" else "$stable") for c in cells),
        )
        marker = Content.assemble((" " * mark + "▲", MUTED), (f" now {self.current}%", MUTED))
        head = Content.assemble(
            ("now ", MUTED),
            (f"{self.current}%", "bold"),
            ("   →   target ", MUTED),
            (f"{self.target}%", "bold $accent"),
            (f"   ({self.target - self.current:+d} %)" if self.target != self.current else "   (no change)", MUTED),
        )
        return Content("\n").join([head, bar, marker])

    def watch_target(self) -> None:
        if self.is_mounted:
            self.query_one("#bar", Static).update(self._bar())
            self.query_one("#note", Static).update("")

    def action_step(self, delta: int) -> None:
        self.typed = ""
        self.target = max(0, min(100, self.target + delta))

    def action_set(self, weight: int) -> None:
        self.typed = ""
        self.target = weight

    def action_erase(self) -> None:
        self.typed = self.typed[:-1]
        self.target = int(self.typed or "0")

    def on_key(self, event: events.Key) -> None:
        character = event.character
        if character is not None and len(character) == 1 and character in "0123456789":
            self.typed = type_digit(self.typed, character)
            self.target = int(self.typed)

    def on_stale(self) -> None:
        self.query_one("#title", Static).update(
            Content.styled(f"Canary weight on {self.env} (out of date)", "$fail")
        )

    def action_pick(self) -> None:
        note = self.query_one("#note", Static)
        if self.target == self.current:
            note.update(Content.styled(f"✗ the canary already has {self.current}%: pick another weight", "$fail"))
            return
        if not self.still_valid():
            note.update(Content.styled("✗ not sent: the state changed (see below)", "bold $fail"))
            return
        self.dismiss(self.target)

    def action_cancel(self) -> None:
        self.dismiss(None)
