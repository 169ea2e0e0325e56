"""The footer of the main screen: the keys, ``? h q`` first, only whole keys.

Textual's footer lists every key in binding order and lets the row scroll sideways;
at 80 columns ``? help`` and ``q quit`` fell off the end, a half key stayed on screen
("h h"), and the command palette's key, docked right, was drawn over the scrolled row
(stray letters beside it). Here the keys someone lost at 3 a.m. needs - help, history,
quit - come first, a key is shown only if it fits whole, and the palette's key only
when every key fits and there is room left for it (``ctrl+p`` works either way).
"""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.keys import key_to_character
from textual.widgets import Footer, Input
from textual.widgets._footer import FooterKey

# Binding ids, leftmost and so the last to go on a narrow screen: the way out and the
# way to learn the keys first, then what stops or holds a bad release.
FIRST = ("help", "history", "quit", "abort", "pause", "promote")
PALETTE_ROOM = 2  # the palette key's left border and its gap


def key_width(key_display: str, description: str) -> int:
    """Cells one compact footer key takes: ``key description`` and a gap after it."""
    return len(key_display) + (1 + len(description) if description else 0) + 1


# Key names whose character an Input takes as text (key_to_character does not map these).
TEXT_KEYS = frozenset({"plus", "minus", "equals_sign", "space", "slash"})


def types_text(key: str) -> bool:
    """True for a key that, pressed in a text field, is typed rather than run (``p``,
    ``+``, ``space``): while someone types, the footer must not offer it as an action."""
    if key in TEXT_KEYS:
        return True
    char = key_to_character(key)
    return char is not None and char.isprintable()


def ordered(bindings: list[tuple[Binding, bool, str]]) -> list[tuple[Binding, bool, str]]:
    """``? h q`` and the keys that stop a release first, then the others in table order."""
    first = [b for name in FIRST for b in bindings if b[0].id == name]
    return first + [b for b in bindings if b not in first]


class KeyFooter(Footer):
    def __init__(self) -> None:
        super().__init__(compact=True)
        self._width = 0
        self.hidden_keys = 0  # keys left out for lack of room (the ? help lists them all)

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width != self._width:
            self._width = event.size.width
            self.call_after_refresh(self.recompose)

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        width = self.size.width or self.app.size.width
        active = self.screen.active_bindings
        # Typing in a text field (the log filter): p, +, space... are letters there, not
        # actions; the footer shows only what still acts (Escape, Enter, ctrl keys).
        typing = isinstance(self.screen.focused, Input)
        seen: set[str] = set()
        bindings: list[tuple[Binding, bool, str]] = []
        for _node, binding, enabled, tooltip in active.values():
            if typing and types_text(binding.key):
                continue
            if binding.show and binding.action not in seen:  # one key per action ("+" and "=")
                seen.add(binding.action)
                bindings.append((binding, enabled, tooltip))
        used, hidden = 0, 0
        keys: list[FooterKey] = []
        for binding, enabled, tooltip in ordered(bindings):
            display = self.app.get_key_display(binding)
            needed = key_width(display, binding.description)
            if used + needed - 1 > width:  # the last key's gap may fall off the edge
                hidden += 1
                continue
            used += needed
            key = FooterKey(
                binding.key,
                display,
                binding.description,
                binding.action,
                disabled=not enabled,
                tooltip=tooltip,
            )
            keys.append(key.data_bind(compact=Footer.compact))
        self.hidden_keys = hidden
        yield from keys
        palette = active.get(self.app.COMMAND_PALETTE_BINDING)
        if palette is None or hidden or not self.app.ENABLE_COMMAND_PALETTE:
            return
        _node, binding, enabled, tooltip = palette
        display = self.app.get_key_display(binding)
        if used + key_width(display, binding.description) + PALETTE_ROOM <= width:
            yield FooterKey(
                binding.key,
                display,
                binding.description,
                binding.action,
                classes="-command-palette",
                disabled=not enabled,
                tooltip=binding.tooltip or binding.description,
            )
