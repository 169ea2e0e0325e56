"""The canary weight as a bar that the mouse can drag.

The bar never changes the weight by itself: releasing the mouse posts
:class:`WeightBar.Requested`, and the screen sends it through the same path as
``+``/``-`` (the engine's rules, the protected-environment confirmation). While
dragging, the wanted weight is shown next to the current one.
"""

from __future__ import annotations

from textual import events
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

LABEL = "weight "
STEP = 5  # drag resolution in percent: finer is hard to hit with a mouse


class WeightBar(Widget):
    DEFAULT_CSS = """
    WeightBar { height: 1; width: 1fr; }
    """

    weight: reactive[int] = reactive(0)
    dragging: reactive[int | None] = reactive(None)
    enabled: reactive[bool] = reactive(True)

    class Requested(Message):
        def __init__(self, bar: WeightBar, weight: int) -> None:
            super().__init__()
            self.bar = bar
            self.weight = weight

    def _bar_width(self) -> int:
        return max(10, self.size.width - len(LABEL) - 12)

    def weight_at(self, x: int) -> int:
        """The weight a click at cell ``x`` asks for (snapped to 5 %)."""
        cells = self._bar_width()
        fraction = (x - len(LABEL) + 0.5) / cells
        return max(0, min(100, round(fraction * 100 / STEP) * STEP))

    def render(self) -> Content:
        cells = self._bar_width()
        shown = self.weight if self.dragging is None else self.dragging
        canary_cells = round(cells * shown / 100)
        # Canary share on the left in the canary colour, the rest is stable's.
        parts: list[str | tuple[str, str]] = [
            (LABEL, "bold"),
            # Faded while the weight cannot be changed (only a paused rollout takes + / - / drag).
            ("█" * canary_cells, "$canary" if self.enabled else "$canary 45%"),
            ("░" * (cells - canary_cells), "$stable" if self.enabled else "$stable 45%"),
            (f" {self.weight:>3}%", "$canary bold"),
        ]
        if self.dragging is not None and self.dragging != self.weight:
            parts.append((f" → {self.dragging}%", "$accent bold"))
        return Content.assemble(*parts)

    def on_mouse_down(self, event: events.MouseDown) -> None:
        if event.x < len(LABEL) or event.x >= len(LABEL) + self._bar_width():
            return
        self.capture_mouse()
        self.dragging = self.weight_at(event.x)
        event.stop()

    def on_mouse_move(self, event: events.MouseMove) -> None:
        if self.dragging is not None:
            self.dragging = self.weight_at(event.x)

    def on_mouse_up(self, event: events.MouseUp) -> None:
        if self.dragging is None:
            return
        wanted, self.dragging = self.dragging, None
        self.release_mouse()
        if wanted != self.weight:
            self.post_message(self.Requested(self, wanted))
        event.stop()
