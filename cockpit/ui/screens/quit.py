"""Quitting mid-rollout: a confirmation that names what is in flight, and what to print after.

``q`` stops every environment the cockpit owns. With nothing in flight that is what
people expect and no question is asked. With a rollout under way - production at 20 %
at 3 a.m. - the screen lists each one (version, weight, phase; protected ones marked)
and what quitting does to it, and only ``y`` (or the Quit button) goes on: Enter and
Escape stay, so a stray keystroke never ends a release.

:func:`exit_summary` is what the terminal shows once the app has left, so the person
who quit still sees what was cut short and what was stopped or left as it was.
"""

from __future__ import annotations

import time
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Button, Static

from cockpit.engine.session import InFlight
from cockpit.ui.screens.modal import CockpitModal


def describe(item: InFlight, pending: str | None = None) -> str:
    """One line: "production (protected): 1.1.0 at 20% canary, Progressing (shifting traffic)"."""
    name = f"{item.env} (protected)" if item.protected else item.env
    version = item.target_version or "?"
    line = f"{name}: {version} at {item.weight}% canary, {item.phase}"
    if item.activity not in ("idle", "pausing"):  # "Paused (pausing)" would say it twice
        line += f" ({item.activity})"
    if pending:
        line += f"; under way: {pending}"
    return line


def fate(item: InFlight) -> str:
    """What quitting does to it: owned workloads stop with the cockpit; a platform keeps it."""
    if item.owned:
        return "its workloads stop with the cockpit; the next start shows it Aborted (interrupted), R retries"
    return f"left as it is on the platform ({item.weight}% canary), no longer watched"


class QuitScreen(CockpitModal[bool]):
    """Dismisses with True to quit, False to stay."""

    DEFAULT_CSS = """
    QuitScreen { align: center middle; }
    QuitScreen #dialog {
        width: 90; max-width: 100%; height: auto; padding: 1 2;
        border: thick $fail; background: $surface;
    }
    QuitScreen #title { text-style: bold; color: $fail; width: 100%; }
    QuitScreen .in-flight { width: 100%; margin-top: 1; }
    QuitScreen #hint { margin-top: 1; color: $text-muted; }
    QuitScreen #buttons { height: auto; margin-top: 1; align-horizontal: right; }
    QuitScreen Button { margin-left: 2; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,n", "stay", "stay", id="quit_stay"),
        Binding("y", "quit_now", "quit", id="quit_confirm"),
    ]

    def __init__(self, in_flight: list[InFlight], pending: dict[str, str]) -> None:
        super().__init__(id="quit-confirm")
        self.in_flight = in_flight
        self.pending = pending

    def compose(self) -> ComposeResult:
        count = len(self.in_flight)
        with Vertical(id="dialog"):
            yield Static(
                Content.styled(f"⚠ Quit with {count} rollout{'s' if count != 1 else ''} in flight?", "bold"),
                id="title",
            )
            for item in self.in_flight:
                style = "bold $fail" if item.protected else "bold"
                yield Static(
                    Content.assemble(
                        ("⚠ " if item.protected else "• ", style),
                        (describe(item, self.pending.get(item.env)), style),
                        ("\n→ " + fate(item), "$foreground 80%"),
                    ),
                    classes="in-flight",
                )
            yield Static("y quits · Enter or Esc stays", id="hint")
            with Horizontal(id="buttons"):
                yield Button("Stay (Esc)", id="stay")
                yield Button("Quit anyway (y)", id="quit", variant="error")

    def on_mount(self) -> None:
        self.query_one("#stay", Button).focus()  # Enter stays: quitting takes a deliberate y

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "quit")

    def action_stay(self) -> None:
        self.dismiss(False)

    def action_quit_now(self) -> None:
        self.dismiss(True)


def exit_summary(
    in_flight: list[InFlight], envs: list[str], owned: dict[str, bool], closed: bool, now: float
) -> list[str]:
    """The lines printed on the terminal after the app has left.

    ``closed``: every environment was stopped cleanly (False: a second q left at once, or
    stopping timed out - owned workloads then die with the process anyway).
    """
    when = time.strftime("%H:%M:%S", time.localtime(now))
    lines = [f"cockpit: quit at {when}"]
    if in_flight:
        lines.append(f"in flight when you quit ({len(in_flight)}):")
        for item in in_flight:
            lines.append(f"  {describe(item)}")
            lines.append(f"    -> {fate(item)}")
    else:
        lines.append("nothing was in flight")
    busy = {item.env for item in in_flight}
    stopped = [e for e in envs if owned.get(e) and e not in busy]
    kept = [e for e in envs if not owned.get(e) and e not in busy]
    how = (
        "stopped" if closed else "stopping was cut short (left at once); owned workloads end with the process"
    )
    if stopped:
        lines.append(f"{how}: {', '.join(stopped)}")
    if kept:
        lines.append(f"left as they were (the platform runs them): {', '.join(kept)}")
    return lines
