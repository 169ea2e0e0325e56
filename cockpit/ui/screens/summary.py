"""What a rollout will do, shown before it starts: environment, from → to, the steps.

Shown on every environment: on an unprotected one as its own modal (one Enter starts),
on a protected one inside the typed confirmation (:mod:`cockpit.ui.screens.confirm`),
so nobody starts a rollout without having seen where, what and how.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Button, Static

from cockpit.engine.views import EnvView
from cockpit.ui.screens.modal import WatchedModal
from cockpit.ui.versions import is_older

MUTED = "$foreground 55%"


def rollback_hint(version: str, stable: str) -> Content | None:
    """A "did you mean rollback?" when ``version`` is older than the ``stable`` one running
    now; ``None`` when it is not, or when the two cannot be compared."""
    if not is_older(version, stable):
        return None
    return Content.assemble(
        ("↩ ", "bold $warn"),
        (version, "bold"),
        (" is older than ", "$warn"),
        (stable, "bold"),
        (", running now. Did you mean a rollback (r)? ", "$warn"),
        ("That is an immediate, journaled cut-over to a retained revision; this walks the"
         " canary steps with the older version.", MUTED),
    )


def _step_text(step: str) -> str:
    # A pause with no duration waits for a person: say so, and how to go on.
    return "pause until promoted (p)" if step == "pause" else step


def _step_line(n: int, step: str) -> Content:
    return Content.assemble((f"  {n:>2}. ", MUTED), _step_text(step))


def start_summary(view: EnvView, version: str, compact: bool = False) -> Content:
    """Env, from → to and the strategy's steps, as lines of text; ``compact`` puts the
    steps on one wrapped line (inside the typed confirmation, which must still fit a
    small terminal with its two fields and buttons)."""
    r = view.rollout
    lines = [
        Content.assemble(
            (view.name, "bold"),
            ("  ", ""),
            (r.stable_version, "bold $stable"),
            (" → ", ""),
            (version, "bold $canary"),
            ("  as a canary", MUTED),
        ),
    ]
    if compact:
        steps = [f"{n}. {_step_text(step)}" for n, step in enumerate(view.steps, start=1)]
        lines.append(Content.assemble((f"steps ({len(steps)}): ", MUTED), " · ".join(steps)))
    else:
        lines.append(Content.styled(f"steps ({len(view.steps)}):", MUTED))
        lines += [_step_line(n, step) for n, step in enumerate(view.steps, start=1)]
    hint = rollback_hint(version, r.stable_version)
    if hint is not None:
        lines += [Content(""), hint]
    return Content("\n").join(lines)


class StartSummary(WatchedModal[bool]):
    """The last look before a rollout starts on an unprotected environment: Enter starts
    it (dismisses ``True``), Escape does not (``False``)."""

    DEFAULT_CSS = """
    StartSummary { align: center middle; }
    StartSummary #dialog { width: 72; height: auto; max-height: 90%; padding: 1 2;
                           border: thick $accent; background: $surface; }
    StartSummary #title { text-style: bold; margin-bottom: 1; }
    StartSummary #buttons { height: auto; margin-top: 1; align-horizontal: right; }
    StartSummary Button { margin-left: 2; }
    """
    AUTO_FOCUS = "#start"  # Enter starts; Tab reaches Cancel
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "cancel", id="summary_cancel"),
        Binding("enter", "start", "start", priority=True, id="summary_start"),
    ]

    def __init__(self, view: EnvView, version: str, *, watch: bool = True) -> None:
        super().__init__(view.name, watch=watch)
        self.view = view
        self.version = version

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Content(f"Start a rollout on {self.env}?"), id="title")
            yield Static(start_summary(self.view, self.version), id="summary")
            yield Static("", id="stale")
            with Horizontal(id="buttons"):
                yield Button("Cancel (Esc)", id="cancel")
                yield Button(f"Start {self.version} (Enter)", id="start", variant="primary")

    def on_stale(self) -> None:
        self.query_one("#start", Button).disabled = self.stale

    def action_start(self) -> None:
        focused = self.focused
        if isinstance(focused, Button) and focused.id == "cancel":
            self.dismiss(False)
            return
        if self.still_valid():
            self.dismiss(True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "start":
            self.action_start()
        else:
            self.dismiss(False)

    def action_cancel(self) -> None:
        self.dismiss(False)
