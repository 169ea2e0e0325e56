"""The cockpit's actions and their default keys, in one table.

Every binding has an ``id`` so users can remap it in ``config.toml`` (``[keys]``,
e.g. ``promote = "p"``); the footer, the ``?`` help and the command palette are all
generated from this table, so they can never disagree with the real keys.

A key that sends a command names a sample of it (``sends``): the command's capability
(``cockpit.engine.commands.capability``) decides whether the key is enabled for the
focused environment's backend, so a backend that cannot set a weight shows ``+10%``
greyed out instead of failing when pressed.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding, BindingType
from textual.keys import format_key

from cockpit.engine.commands import Command, SetWeight, capability


@dataclass(frozen=True)
class ActionSpec:
    id: str  # binding id, also the key in the user's [keys] table
    key: str  # default key(s), comma separated, Textual key names
    action: str  # action method on the main screen, without "action_"
    label: str  # short footer label
    help: str  # one line for ? help and the command palette
    footer: bool = True
    sends: Command | None = None  # a sample of the command the key sends (its capability matters)

    @property
    def method(self) -> str:
        """The action's name without its parameters ("weight"), as ``check_action`` gets it."""
        return self.action.split("(")[0]


ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("start", "s", "start", "start", "Start a rollout: pick a version for the focused environment"),
    ActionSpec(
        "weight_up",
        "plus,equals_sign",
        "weight(10)",
        "+10%",
        "Canary weight +10 % (while paused)",
        sends=SetWeight(10),
    ),
    ActionSpec(
        "weight_down",
        "minus",
        "weight(-10)",
        "-10%",
        "Canary weight -10 % (while paused)",
        sends=SetWeight(-10),
    ),
    ActionSpec(
        "weight_pick",
        "w",
        "pick_weight",
        "weight",
        "Pick the canary weight (one change, one confirmation; while paused)",
        sends=SetWeight(50),
    ),
    ActionSpec("promote", "p", "promote", "promote", "Promote past the current pause"),
    ActionSpec(
        "pause", "space", "pause", "pause", "Pause a progressing rollout where it is; again to resume"
    ),
    ActionSpec("promote_full", "P", "promote_full", "full", "Full promote: the canary to 100 % now"),
    ActionSpec("abort", "a", "abort", "abort", "Abort: all traffic back to stable, canary removed"),
    ActionSpec("retry", "R", "retry", "retry", "Retry an aborted rollout from the first step"),
    ActionSpec("rollback", "r", "rollback", "rollback", "Roll back to a retained revision"),
    ActionSpec(
        "gates",
        "g",
        "gates",
        "gates",
        "Analysis gates of the focused environment: values against limits, stable beside canary, trend, query",
    ),
    ActionSpec(
        "migrations",
        "m",
        "migrations",
        "migr",
        "Migrations of the focused environment: steps, states, output, lint; run next, roll back last",
    ),
    ActionSpec(
        "migrate_next",
        "M",
        "migrate_next",
        "run migration",
        "Migrations: run the next pending step on the focused environment (here and in the m view)",
        footer=False,
    ),
    ActionSpec(
        "migrate_undo",
        "U",
        "migrate_undo",
        "undo migration",
        "Migrations: roll back the last applied step, if reversible (here and in the m view)",
        footer=False,
    ),
    ActionSpec("history", "h", "history", "history", "The journal: who did what, when and why"),
    ActionSpec("logs", "l", "logs", "logs", "Log pane: focused env / merged / split / hidden"),
    ActionSpec("filter", "slash", "filter", "filter", "Filter the log pane (text, or /regex/)"),
    ActionSpec(
        "acknowledge",
        "exclamation_mark",
        "app.acknowledge_alert",
        "ack alert",
        "Acknowledge the newest alert (an abort by analysis, a Degraded environment, a failed action)",
    ),
    ActionSpec("theme", "t", "theme", "theme", "Next theme"),
    ActionSpec("help", "question_mark", "help", "help", "Keys and what they do"),
    ActionSpec("quit", "q", "quit", "quit", "Quit (stops the environments the cockpit owns)"),
    ActionSpec("next_env", "right,tab", "next_env", "next env", "Next environment", footer=False),
    ActionSpec("prev_env", "left,shift+tab", "prev_env", "prev env", "Previous environment", footer=False),
    ActionSpec("log_end", "end", "log_end", "follow", "Log pane: jump to the end and follow", footer=False),
    ActionSpec("log_page_up", "pageup", "log_page(-1)", "page up", "Log pane: page up", footer=False),
    ActionSpec("log_page_down", "pagedown", "log_page(1)", "page down", "Log pane: page down", footer=False),
    ActionSpec("log_next_match", "n", "log_match(1)", "next match", "Log pane: next filter match", footer=False),
    ActionSpec(
        "log_prev_match", "N", "log_match(-1)", "prev match", "Log pane: previous filter match", footer=False
    ),
    ActionSpec("log_wrap", "W", "log_wrap", "wrap", "Log pane: wrap long lines on/off", footer=False),
    ActionSpec("log_time", "T", "log_time", "time", "Log pane: timestamps on/off", footer=False),
    ActionSpec(
        "log_save", "S", "log_save", "save logs", "Log pane: save the lines shown (filtered) to a file", footer=False
    ),
)

BY_ID = {spec.id: spec for spec in ACTIONS}
# By action method name ("weight", without its parameters): what check_action is given.
SENDS: dict[str, Command] = {spec.method: spec.sends for spec in ACTIONS if spec.sends}


def missing_capability(action: str, capabilities: frozenset[object]) -> Command | None:
    """The command ``action`` would send if the backend lacks the capability it needs
    (``capabilities``: the focused environment's), else ``None``."""
    sample = SENDS.get(action)
    if sample is None:
        return None
    needed = capability(sample)
    return sample if needed is not None and needed not in capabilities else None


def bindings() -> list[BindingType]:
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
