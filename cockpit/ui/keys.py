"""The cockpit's actions and their default keys, in one table.

Every binding has an ``id`` so users can remap it in ``config.toml`` (``[keys]``,
e.g. ``promote = "p"``); the footer, the ``?`` help and the command palette are all
generated from this table, so they can never disagree with the real keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding
from textual.keys import format_key


@dataclass(frozen=True)
class ActionSpec:
    id: str  # binding id, also the key in the user's [keys] table
    key: str  # default key(s), comma separated, Textual key names
    action: str  # action method on the main screen, without "action_"
    label: str  # short footer label
    help: str  # one line for ? help and the command palette
    footer: bool = True


ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("start", "s", "start", "start", "Start a rollout: pick a version for the focused environment"),
    ActionSpec("weight_up", "plus,equals_sign", "weight(10)", "+10%", "Canary weight +10 % (while paused)"),
    ActionSpec("weight_down", "minus", "weight(-10)", "-10%", "Canary weight -10 % (while paused)"),
    ActionSpec("promote", "p", "promote", "promote", "Promote past the current pause"),
    ActionSpec("promote_full", "P", "promote_full", "full", "Full promote: the canary to 100 % now"),
    ActionSpec("abort", "a", "abort", "abort", "Abort: all traffic back to stable, canary removed"),
    ActionSpec("retry", "R", "retry", "retry", "Retry an aborted rollout from the first step"),
    ActionSpec("rollback", "r", "rollback", "rollback", "Roll back to a retained revision"),
    ActionSpec("migrations", "m", "migrations", "migr", "Show the plan's migrations"),
    ActionSpec("history", "h", "history", "history", "The journal: who did what, when and why"),
    ActionSpec("logs", "l", "logs", "logs", "Log pane: focused env / merged / split / hidden"),
    ActionSpec("filter", "slash", "filter", "filter", "Filter the log pane (text, or /regex/)"),
    ActionSpec("theme", "t", "theme", "theme", "Next theme"),
    ActionSpec("help", "question_mark", "help", "help", "Keys and what they do"),
    ActionSpec("quit", "q", "quit", "quit", "Quit (stops the environments the cockpit owns)"),
    ActionSpec("next_env", "right,tab", "next_env", "next env", "Next environment", footer=False),
    ActionSpec("prev_env", "left,shift+tab", "prev_env", "prev env", "Previous environment", footer=False),
    ActionSpec("log_end", "end", "log_end", "follow", "Log pane: jump to the end and follow", footer=False),
    ActionSpec("log_page_up", "pageup", "log_page(-1)", "page up", "Log pane: page up", footer=False),
    ActionSpec("log_page_down", "pagedown", "log_page(1)", "page down", "Log pane: page down", footer=False),
)

BY_ID = {spec.id: spec for spec in ACTIONS}


def bindings() -> list[Binding]:
    return [
        Binding(spec.key, spec.action, spec.label, show=spec.footer, id=spec.id, tooltip=spec.help)
        for spec in ACTIONS
    ]


def keymap_problems(keys: dict[str, str]) -> list[str]:
    """Problems in a user's [keys] table (unknown ids, empty keys)."""
    problems = []
    for binding_id, key in keys.items():
        if binding_id not in BY_ID:
            problems.append(f"keys.{binding_id}: unknown action (known: {', '.join(BY_ID)})")
        elif not key.strip():
            problems.append(f"keys.{binding_id}: empty key")
    return problems


def display_keys(spec: ActionSpec, keymap: dict[str, str]) -> str:
    """The keys for ``spec`` as a person reads them (``+``, ``?``, ``shift+tab``)."""
    keys = keymap.get(spec.id, spec.key)
    return " ".join(format_key(k.strip()) for k in keys.split(","))
