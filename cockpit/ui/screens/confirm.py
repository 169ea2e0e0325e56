"""Typed confirmation for protected environments.

The engineer types the environment's name (so a muscle-memory Enter on the wrong
column cannot ship to production) and a reason, which lands in the journal with
the action. Escape cancels with no effect. Dismisses with the reason, or ``None``.

The cockpit stays visible behind it, dimmed, and the modal watches the environment
(:class:`~cockpit.ui.screens.modal.WatchedModal`): if the rollout moves while the
reason is typed, it says what changed and will not confirm. A rollout's start shows
its summary here too (env, from → to, the steps), so a protected start is one modal.
"""

from __future__ import annotations

from typing import ClassVar, cast

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Button, Input, Label, Static

from cockpit.engine.commands import Abort, Command, Pause, StartRollout
from cockpit.ui.host import CockpitHost
from cockpit.ui.screens.modal import EnvSnapshot, WatchedModal
from cockpit.ui.screens.summary import start_summary


class ConfirmScreen(WatchedModal[str | None]):
    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen #dialog {
        width: 72; height: auto; padding: 1 2;
        border: thick $fail; background: $surface;
    }
    ConfirmScreen #dialog.-reason-only { border: thick $warn; }
    ConfirmScreen #title { text-style: bold; color: $fail; width: 100%; }
    ConfirmScreen #what { margin: 1 0; width: 100%; }
    ConfirmScreen #summary { margin-bottom: 1; width: 100%; }
    ConfirmScreen Label { margin-top: 1; color: $text-muted; }
    ConfirmScreen #problem { color: $fail; text-style: bold; height: auto; min-height: 1; margin-top: 1; }
    ConfirmScreen #buttons { height: auto; margin-top: 1; align-horizontal: right; }
    ConfirmScreen Button { margin-left: 2; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "cancel", id="confirm_cancel"),
        # Enter is taken before the focused Input sees it, so focus moves to the reason
        # *now*: an Input's Submitted message (and focus(), which is deferred) would arrive
        # after keys typed right behind the Enter, and those would land in the name field.
        Binding("enter", "enter", show=False, priority=True, id="confirm_enter"),
    ]

    def __init__(
        self, env: str, what: str, need_name: bool = True, *, command: Command | None = None, watch: bool = True
    ) -> None:
        """``command``: what confirming sends; a start shows its summary, an abort stays
        possible while its rollout moves on. ``watch``: see :class:`WatchedModal`."""
        super().__init__(env, watch=watch)
        self.what = what
        self.need_name = need_name
        self.command = command

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="" if self.need_name else "-reason-only"):
            title = f"{self.env} is protected" if self.need_name else "a reason is required"
            yield Static(Content.styled(f"⚠ {title}", "bold"), id="title")
            yield Static(
                Content.assemble(
                    ("You are about to ", ""), (self.what, "bold $accent"), (" on ", ""), (self.env, "bold")
                ),
                id="what",
            )
            if isinstance(self.command, StartRollout) and self.watching:
                view = cast(CockpitHost, self.app).session.view(self.env)
                yield Static(start_summary(view, self.command.version, compact=True), id="summary")
            if self.need_name:
                yield Label(f"Type the environment's name ({self.env}) to confirm")
                yield Input(placeholder=self.env, id="name")
            yield Label("Reason (recorded in the journal with your name)")
            yield Input(placeholder="why, ticket, incident…", id="reason")
            yield Static("", id="problem")
            yield Static("", id="stale")
            with Horizontal(id="buttons"):
                yield Button("Cancel (Esc)", id="cancel")
                yield Button(f"Confirm: {self.what}", id="confirm", variant="error")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#name" if self.need_name else "#reason", Input).focus()

    def blocks(self, opened: EnvSnapshot, now: EnvSnapshot) -> bool:
        if isinstance(self.command, Abort | Pause):
            # The brakes must not be taken away because the canary moved a step while the
            # reason was typed (a progressing rollout moves by itself); only when the
            # rollout they were meant for is over or replaced.
            return not opened.same_rollout(now)
        return True

    def on_stale(self) -> None:
        self.query_one("#confirm", Button).disabled = self.stale

    def _problem(self) -> str | None:
        if self.need_name and self.query_one("#name", Input).value.strip() != self.env:
            return f"type {self.env!r} exactly to confirm"
        if not self.query_one("#reason", Input).value.strip():
            return "a reason is required"
        return None

    def _confirm(self) -> None:
        if not self.still_valid():
            self.query_one("#problem", Static).update(Content("✗ not sent: the state changed (see below)"))
            return
        problem = self._problem()
        if problem:
            self.query_one("#problem", Static).update(Content(f"✗ {problem}"))
            return
        self.dismiss(self.query_one("#reason", Input).value.strip())

    def action_enter(self) -> None:
        focused = self.focused
        if isinstance(focused, Button):
            focused.press()
            return
        reason = self.query_one("#reason", Input)
        if isinstance(focused, Input) and focused.id == "name" and not reason.value.strip():
            self.set_focus(reason)  # synchronous, unlike Widget.focus()
            return
        if isinstance(focused, Input):
            # The keys typed before this Enter may still wait in the field's own queue (a
            # priority binding runs as the key arrives): confirm behind them, so the reason
            # checked and journaled is all of what was typed, not its first half.
            focused.call_later(self._confirm)
            return
        self._confirm()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "confirm":
            self._confirm()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
