"""The words and marks for an environment's database migrations, shared by the card (its
migrations line and step timeline), the migrations view (``m``) and the keys that run or
undo a step. Pure functions of :class:`~cockpit.migrations.api.MigrationsView`.

A state is a glyph *and* a word or colour, never colour alone:
✓ applied, ● running, ✗ failed, ○ pending, ↺ rolled back, ! interrupted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from textual.content import Content

from cockpit.engine.commands import RollbackMigration, RunMigration
from cockpit.engine.views import EnvView
from cockpit.migrations.api import MigrationsView, StepState, StepView

DIM = "$foreground 55%"

STATE_MARK: dict[StepState, tuple[str, str]] = {
    StepState.APPLIED: ("✓", "$ok"),
    StepState.RUNNING: ("●", "$phase-progressing bold"),
    StepState.FAILED: ("✗", "$fail bold"),
    StepState.PENDING: ("○", DIM),
    StepState.ROLLED_BACK: ("↺", "$warn"),
    StepState.INTERRUPTED: ("!", "$warn bold"),
}
# A step that still has to run (rolled back counts: its up runs again next time).
NOT_DONE = frozenset({StepState.PENDING, StepState.ROLLED_BACK, StepState.FAILED, StepState.INTERRUPTED})


def mark(state: StepState) -> Content:
    glyph, style = STATE_MARK[state]
    return Content.styled(glyph, style)


def state_text(state: StepState) -> Content:
    """``✓ applied``: the glyph and the word, in the state's colour."""
    glyph, style = STATE_MARK[state]
    return Content.styled(f"{glyph} {state.value}", style)


def fmt_took(seconds: float | None) -> str:
    """How long a step took: ``0.04s``, ``2.3s``, ``1m05s``; ``—`` when it never finished."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s"


def find(m: MigrationsView, name: str | None) -> StepView | None:
    return next((s for s in m.steps if s.name == name), None) if name else None


def describe(step: StepView | None, name: str) -> str:
    """``orders-full-name (expand of 1.1.0)``: a step as a confirmation names it."""
    if step is None:
        return name
    return f"{name} ({step.phase} of {step.release})"


def short_refusal(refusal: str, env: str) -> str:
    """The first clause of a guard's refusal, for the card's one line: "production's stable
    runs 1.0.0 (2 replicas): contract … would break it" -> "stable runs 1.0.0 (2 replicas)".
    The migrations view shows it whole."""
    head = refusal.split(": ", 1)[0].strip() or refusal
    return head.removeprefix(f"{env}'s ").removeprefix(f"{env}: ")


# --------------------------------------------------------------------------- the card's line


def _phase_summary(steps: list[StepView], phase: str) -> Content | None:
    if not steps:
        return None
    for state in (StepState.RUNNING, StepState.FAILED, StepState.INTERRUPTED):
        hit = next((s for s in steps if s.state is state), None)
        if hit is not None:
            glyph, style = STATE_MARK[state]
            return Content.assemble((f"{phase} ", ""), (f"{glyph} {hit.name}", style))
    applied = sum(s.state is StepState.APPLIED for s in steps)
    if applied == len(steps):
        return Content.assemble((f"{phase} {applied}/{len(steps)} ", ""), ("✓", "$ok"))
    return Content.styled(f"{phase} {applied}/{len(steps)}", "")


def summary(view: EnvView) -> Content:
    """The card's migrations line: ``expand 2/2 ✓ · contract ready``, ``contract refused:
    stable runs 1.0.0``, ``expand ✗ orders-full-name``."""
    m = view.migrations
    if m is None:
        return Content.styled("no migrations", DIM)
    if m.database is None:
        return Content.styled("no database for this environment", DIM)
    if m.error is not None:
        return Content.styled(f"! {m.error}", "$warn")
    if not m.steps:
        return Content.styled("no steps", DIM)
    expand = [s for s in m.steps if s.phase == "expand"]
    contract = [s for s in m.steps if s.phase != "expand"]
    parts = [p for p in (_phase_summary(expand, "expand"), _contract_summary(view, m, contract)) if p]
    return Content(" · ").join(parts)


def _contract_summary(view: EnvView, m: MigrationsView, steps: list[StepView]) -> Content | None:
    nxt = find(m, m.next_step)
    waiting = (StepState.PENDING, StepState.ROLLED_BACK)
    if m.running is None and nxt is not None and nxt.phase != "expand" and nxt.state in waiting:
        if m.next_refused:
            return Content.styled(f"contract refused: {short_refusal(m.next_refused, view.name)}", "$warn")
        return Content.styled("contract ready", "$accent bold")
    return _phase_summary(steps, "contract")


# --------------------------------------------------------------------------- the timeline


def release_steps(view: EnvView, release: str | None) -> tuple[list[StepView], list[StepView]]:
    """The steps the card's timeline shows around ``release``'s canary steps: its expand
    steps (and any expand step running or stopped, whatever its release: it holds the
    rollout) before, its contract steps after."""
    m = view.migrations
    if m is None or release is None or m.database is None:
        return [], []
    stuck = (StepState.RUNNING, StepState.FAILED, StepState.INTERRUPTED)
    before = [s for s in m.steps if s.phase == "expand" and (s.release == release or s.state in stuck)]
    after = [s for s in m.steps if s.phase != "expand" and s.release == release]
    return before, after


# --------------------------------------------------------------------------- the keys


@dataclass(frozen=True)
class MigrationAsk:
    """What a key would send (``command`` and its words ``what``), or why it does
    nothing (``refused``: the guard's words, said before the key is pressed)."""

    command: RunMigration | RollbackMigration | None
    what: str
    refused: str | None = None


def next_ask(view: EnvView) -> MigrationAsk:
    """What "run next" would do on ``view``'s environment now."""
    return _ask(
        view,
        "run the next migration step",
        lambda m: (m.next_step, m.next_refused),
        "nothing to run: every step is applied",
        lambda name: (RunMigration(step=name), "run migration"),
    )


def undo_ask(view: EnvView) -> MigrationAsk:
    """What "roll back last" would do on ``view``'s environment now."""
    return _ask(
        view,
        "roll back the last migration step",
        lambda m: (m.last_applied, m.rollback_refused),
        "nothing to roll back: no step is applied",
        lambda name: (RollbackMigration(step=name), "roll back migration"),
    )


def _ask(
    view: EnvView,
    label: str,
    target: Callable[[MigrationsView], tuple[str | None, str | None]],
    nothing: str,
    command: Callable[[str], tuple[RunMigration | RollbackMigration, str]],
) -> MigrationAsk:
    """One key's ask: the step it would act on and the guard's refusal (``target``), or why
    it has nothing to act on."""
    m = view.migrations
    if m is None:
        return MigrationAsk(None, label, "no [[migrations]] in this plan")
    if m.database is None:
        return MigrationAsk(None, label, f"{view.name} has no database in the plan")
    if m.running is not None:
        return MigrationAsk(None, label, f"{m.running} is running now")
    name, refused = target(m)
    if name is None:
        return MigrationAsk(None, label, refused or m.error or nothing)
    sent, verb = command(name)
    return MigrationAsk(sent, f"{verb} {describe(find(m, name), name)}", refused)
