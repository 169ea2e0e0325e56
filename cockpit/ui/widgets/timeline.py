"""The rollout's steps as one line, the current one highlighted (as Argo's dashboard):

    ✓ 20% → ✓ pause 5s → ● analysis → 50% → pause 5s → analysis → promote

Steps done carry ✓, the current one its phase glyph in reverse video (✗ where a
rollout was aborted), the ones ahead are dim. The steps are the engine's own words
(``EnvView.steps``); only their length is adapted here: ``set weight 20%`` reads
``20%`` and an analysis step drops its check names, which the analysis lines below
list anyway; a smoke step reads ``smoke``, and once it aborted the rollout, ``smoke NAME``
with the check that failed (the reason line says what it expected and what came back).
An environment with a database shows the release's migration steps with their states
around the canary's (expand before: they run before anything is deployed; contract
after), ``✓ orders-full-name → ● 20% → … → promote → ○ drop-customer``: the release
shown is the rollout's target, or the stable version when no rollout is on (its contract
may still wait). When the line does not fit it wraps at a step boundary; with fewer lines than needed, a
window around the current step is shown between ``…``.
"""

from __future__ import annotations

from textual.content import Content

from cockpit.engine.state import Activity, Cause, Phase
from cockpit.engine.views import EnvView
from cockpit.migrations.api import StepState, StepView
from cockpit.ui import migration_text, render

ARROW = " → "


def short(step: str) -> str:
    """A step's description, short enough for the timeline."""
    if step.startswith("set weight "):
        return step.removeprefix("set weight ")
    if step.startswith("analysis "):
        return "analysis"
    if step.startswith("smoke "):
        return "smoke"
    return step


def final_step(view: EnvView) -> str:
    """What follows the last step: the switch of a blue-green rollout, else the promote."""
    return "switch" if view.strategy == "blue-green" else "promote"


def items(view: EnvView) -> tuple[list[Content], int]:
    """One styled item per step and the final promote / switch, with the release's
    migration steps around them (expand before, contract after); the current one's index
    (-1 when no rollout is on and no migration step runs)."""
    r = view.rollout
    rolling = r.target_version is not None and r.phase is not Phase.HEALTHY
    before, after = migration_text.release_steps(view, r.target_version if rolling else r.stable_version)
    waiting = next((i for i, s in enumerate(before) if s.state is not StepState.APPLIED), None)
    # While its expand steps are not all applied, the canary waits: none of its steps ran.
    held = rolling and waiting is not None
    canary, current = _canary_items(view, held)
    if held and waiting is not None:
        current = waiting
    elif current >= 0:
        current += len(before)
    steps: list[StepView | None] = [*before, *([None] * len(canary)), *after]
    running = next((i for i, s in enumerate(steps) if s is not None and s.state is StepState.RUNNING), None)
    if running is not None:
        current = running
    out = [_migration_item(s) for s in before] + canary + [_migration_item(s) for s in after]
    if current >= 0 and (step := steps[current]) is not None:
        out[current] = Content.styled(out[current].plain, f"{migration_text.STATE_MARK[step.state][1]} reverse")
    return out, current


def _migration_item(step: StepView) -> Content:
    glyph, style = migration_text.STATE_MARK[step.state]
    name_style = render.DIM if step.state is StepState.APPLIED else style
    return Content.assemble((f"{glyph} ", style), (step.name, name_style))


def _canary_items(view: EnvView, held: bool = False) -> tuple[list[Content], int]:
    r = view.rollout
    names = [short(s) for s in view.steps] + [final_step(view)]
    final = len(names) - 1
    rolling = r.target_version is not None and r.phase is not Phase.HEALTHY
    current = final if r.activity is Activity.PROMOTING else min(r.step_index, final)
    failed_smoke = [s.name for s in r.smoke if not s.passed]
    if rolling and r.cause is Cause.SMOKE_FAILED and failed_smoke and names[current] == "smoke":
        names[current] = f"smoke {', '.join(failed_smoke)}"
    out: list[Content] = []
    for i, name in enumerate(names):
        if not rolling:
            out.append(Content.styled(name, render.DIM))
        elif held:
            out.append(Content.styled(name, ""))
        elif i < current:
            out.append(Content.assemble(("✓ ", "$ok"), (name, render.DIM)))
        elif i == current:
            glyph = render.PHASE_GLYPH[r.phase]
            style = render.PHASE_STYLE[r.phase].replace(" reverse", "")
            out.append(Content.styled(f"{glyph} {name}", f"{style} reverse"))
        else:
            out.append(Content.styled(name, ""))
    return out, current if rolling else -1


def timeline_lines(view: EnvView, width: int, max_lines: int = 3) -> list[Content]:
    """The timeline in at most ``max_lines`` lines of ``width`` cells."""
    parts, current = items(view)
    if not parts or max_lines <= 0:
        return []
    head = Content.styled("steps ", "bold")
    lines = _wrap(parts, width, head)
    if len(lines) <= max_lines:
        return lines
    # Too long: a window around the current step, on one line per allowed line.
    lo = hi = max(0, current)
    while True:
        grown = False
        for lo2, hi2 in ((lo - 1, hi), (lo, hi + 1)):
            if lo2 < 0 or hi2 >= len(parts):
                continue
            if len(_wrap(_windowed(parts, lo2, hi2), width, head)) <= max_lines:
                lo, hi, grown = lo2, hi2, True
        if not grown:
            break
    return _wrap(_windowed(parts, lo, hi), width, head)[:max_lines]


def _windowed(parts: list[Content], lo: int, hi: int) -> list[Content]:
    shown = parts[lo : hi + 1]
    if lo > 0:
        shown = [Content.styled("…", render.DIM), *shown]
    if hi < len(parts) - 1:
        shown = [*shown, Content.styled("…", render.DIM)]
    return shown


def _wrap(parts: list[Content], width: int, head: Content) -> list[Content]:
    lines: list[Content] = []
    line = head
    arrow = Content.styled(ARROW, render.DIM)
    for i, part in enumerate(parts):
        piece = part if i == 0 else Content.assemble(arrow, part)
        if line.cell_length + piece.cell_length > width and line.cell_length > head.cell_length:
            lines.append(line)
            line = Content.assemble(" " * head.cell_length, part)
        else:
            line = Content.assemble(line, piece)
    lines.append(line)
    return lines
