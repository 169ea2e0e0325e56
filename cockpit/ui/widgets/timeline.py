"""The rollout's steps as one line, the current one highlighted (as Argo's dashboard):

    ✓ 20% → ✓ pause 5s → ● analysis → 50% → pause 5s → analysis → promote

Steps done carry ✓, the current one its phase glyph in reverse video (✗ where a
rollout was aborted), the ones ahead are dim. The steps are the engine's own words
(``EnvView.steps``); only their length is adapted here: ``set weight 20%`` reads
``20%`` and an analysis step drops its check names, which the analysis lines below
list anyway; a smoke step reads ``smoke``, and once it aborted the rollout, ``smoke NAME``
with the check that failed (the reason line says what it expected and what came back).
When the line does not fit it wraps at a step boundary; with fewer lines than needed, a
window around the current step is shown between ``…``.
"""

from __future__ import annotations

from textual.content import Content

from cockpit.engine.state import Activity, Cause, Phase
from cockpit.engine.views import EnvView
from cockpit.ui import render

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
    """One styled item per step and the final promote / switch; the current one's index
    (-1 when no rollout is on)."""
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
