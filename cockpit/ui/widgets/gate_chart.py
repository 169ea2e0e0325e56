"""One gate's trend: canary and stable side by side on one zero-based chart, with the
limit each measurement was judged against drawn as a line across.

Each measurement the analysis keeps is one group of columns, oldest on the left, the
newest at the right end: stable's bar, canary's bar, a gap. The limit line runs through
every group at the height of *that* measurement's limit, so a limit relative to stable
(``<= stable × 1.2 + 10ms``) is seen moving with stable, step by step. The gaps keep the
line visible where the bars cover it. Under each group, the measurement's verdict as a
glyph (✓ ✗ ? ∅ !): the colours repeat it, never carry it alone.

Pure functions from a :class:`CheckView` to styled lines; the widget only gives the size.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.content import Content
from textual.widget import Widget

from cockpit.engine.analysis import KEPT_MEASUREMENTS
from cockpit.engine.state import CheckView, Measurement, Outcome
from cockpit.ui import render
from cockpit.ui.widgets.chart import (
    BLOCKS,
    LIMIT_GLYPH,
    NO_DATA_GLYPH,
    bar_eighths,
    bar_glyph,
    limit_mark,
    merge_runs,
    scale_top,
)

AXIS = 7  # the scale's labels: top, the limit, 0
LIMIT_STYLE = "$fail"
DIM_STYLE = "$foreground 35%"
MIN_GROUP, MAX_GROUP = 3, 13  # cells per measurement: a bar each for stable and canary, a gap
CANARY_STYLE = {Outcome.FAILED: "$fail bold", Outcome.INCONCLUSIVE: "$warn"}


def _group_width(plot: int, slots: int) -> int:
    return max(MIN_GROUP, min(MAX_GROUP, plot // max(1, slots)))


def slots_for(width: int) -> int:
    """How many measurements fit in a chart ``width`` cells wide (the analysis keeps 10)."""
    return max(1, min(KEPT_MEASUREMENTS, (width - AXIS) // MIN_GROUP))


def gate_top(check: CheckView, measurements: Sequence[Measurement]) -> float:
    """The chart's scale: from 0 past the highest canary, stable and limit shown."""
    values = [m.value for m in measurements] + [m.stable_value for m in measurements]
    limits = [render.limit_of(check, m) for m in measurements]
    return scale_top([values, limits], render.limit_of(check, check.last))


def legend(check: CheckView, names: tuple[str, str], styles: tuple[str, str]) -> Content:
    """``█ stable 120ms  █ canary 182ms  ─ limit 150ms``: the latest measured of each, in
    its colour (a last measurement that failed to read says nothing about the values)."""
    last = next((m for m in reversed(check.measurements) if m.value is not None), check.last)
    limit = render.limit_of(check, last)

    def shown(value: float | None) -> str:
        return "—" if value is None else render.fmt_value(value, check.unit)

    return Content.assemble(
        ("█ ", styles[0]),
        (f"{names[0]} {shown(last.stable_value if last else None)}", f"{styles[0]} bold"),
        ("  █ ", styles[1]),
        (f"{names[1]} {shown(last.value if last else None)}", f"{styles[1]} bold"),
        (f"  {LIMIT_GLYPH} ", LIMIT_STYLE),
        (f"limit {shown(limit)}", LIMIT_STYLE),
    )


def gate_chart_lines(
    check: CheckView,
    width: int,
    height: int,
    names: tuple[str, str] = ("stable", "canary"),
    styles: tuple[str, str] = ("$stable", "$canary"),
) -> list[Content]:
    """The legend, ``height`` chart rows (top first) and a row of verdicts, each line
    ``width`` cells at most."""
    height = max(1, height)
    if not check.measurements:
        blank = [Content("")] * (height + 1)
        return [
            legend(check, names, styles),
            *blank[:-1],
            Content.styled("waiting for the first measurement", render.DIM),
        ]
    slots = slots_for(width)
    shown = list(check.measurements[-slots:])
    group = _group_width(width - AXIS, slots)
    bar = (group - 1) // 2
    gap = group - 2 * bar
    top = gate_top(check, shown)
    fixed = render.absolute_condition(check.condition)
    empty = limit_mark(fixed.value if fixed else None, top, height)  # slots not measured yet
    limits = [render.limit_of(check, m) for m in shown]
    marks_at = [limit_mark(limit, top, height) for limit in limits]
    padding = slots - len(shown)
    lines = [legend(check, names, styles)]
    for row in range(height - 1, -1, -1):
        parts: list[tuple[str, str]] = [_axis(check, row, height, top, marks_at[-1], limits[-1])]
        parts.append(((empty[1] if empty and empty[0] == row else " ") * group * padding, LIMIT_STYLE))
        for m, mark in zip(shown, marks_at, strict=True):
            line = mark[1] if mark is not None and mark[0] == row else None
            parts += _cells(m.stable_value, styles[0], bar, row, top, height, line)
            canary_style = CANARY_STYLE.get(m.outcome, styles[1])
            parts += _cells(m.value, canary_style, bar, row, top, height, line)
            parts.append(((line or " ") * gap, LIMIT_STYLE))
        lines.append(merge_runs(parts))
    marks: list[tuple[str, str]] = [(" " * AXIS + " " * group * padding, "")]
    for m in shown:
        glyph, style = render.OUTCOME_MARK[m.outcome]
        marks += [(" " * bar, ""), (glyph.ljust(bar + gap), style)]
    lines.append(merge_runs(marks))
    return lines


def _axis(
    check: CheckView, row: int, height: int, top: float, mark: tuple[int, str] | None, limit: float | None
) -> tuple[str, str]:
    if mark is not None and row == mark[0] and limit is not None:
        return f"{render.fmt_axis(limit, check.unit):>{AXIS - 1}} ", LIMIT_STYLE
    label = render.fmt_axis(top, check.unit) if row == height - 1 else ("0" if row == 0 else "")
    return f"{label:>{AXIS - 1}} ", render.DIM


def _cells(
    value: float | None, style: str, width: int, row: int, top: float, height: int, line: str | None
) -> list[tuple[str, str]]:
    """One bar ``width`` cells wide in ``row``; the limit ``line`` glyph (when the limit is
    on this row) where the bar leaves room."""
    if value is None:  # no data, or an error: a dot on the floor, never a healthy zero
        if row == 0 and line is None:
            return [(NO_DATA_GLYPH * width, DIM_STYLE)]
        return [((line or " ") * width, LIMIT_STYLE if line else "")]
    glyph = bar_glyph(bar_eighths(value, top, height), row)
    if glyph != " ":
        return [(glyph * width, style)]
    if line is not None:
        return [(line * width, LIMIT_STYLE)]
    if row == 0:  # a measured zero: the baseline, faint
        return [(BLOCKS[1] * width, DIM_STYLE)]
    return [(" " * width, "")]


class GateChart(Widget):
    """The chart of one gate, as wide as it is given; ``rows`` tall plus legend and verdicts."""

    DEFAULT_CSS = """
    GateChart { height: auto; width: 100%; text-wrap: nowrap; text-overflow: clip; }
    """

    def __init__(self, rows: int = 6, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.rows = rows
        self.check: CheckView | None = None
        self.names = ("stable", "canary")
        self.styles_for = ("$stable", "$canary")

    def show(self, check: CheckView, names: tuple[str, str], styles: tuple[str, str]) -> None:
        # CheckView is a frozen dataclass of plain values: equal means nothing new to draw.
        if (check, names, styles) != (self.check, self.names, self.styles_for):
            self.check, self.names, self.styles_for = check, names, styles
            self.refresh()

    def set_rows(self, rows: int) -> None:
        if rows != self.rows:
            self.rows = rows
            self.refresh(layout=True)

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        return self.rows + 2

    def render(self) -> Content:
        if self.check is None:
            return Content("")
        lines = gate_chart_lines(self.check, self.size.width, self.rows, self.names, self.styles_for)
        return Content("\n").join(render.tight(line) for line in lines)
