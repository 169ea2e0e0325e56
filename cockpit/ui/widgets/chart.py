"""A bar chart drawn from zero, with the analysis limit as a line across it.

Textual's ``Sparkline`` scales each series from its own minimum to its maximum, so
noise between 89 and 91 ms looks like a cliff, and a flat series of 0.2 % errors
looks as alarming as one at 30 %. Here every value is drawn against one scale that
starts at zero and reaches past the limit, the same scale for stable and canary, so
what looks high is high - and how far a value is from the limit is visible at a glance.

Pure functions from numbers to styled lines: the widget (``MetricsPanel``) only
chooses widths and heights. Each column is one measured window, newest on the right;
``None`` (a window without a single request) is drawn as a dim dot, never as zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from textual.content import Content

# Eighths of a cell, from empty to full: a bar of height 1.5 cells is "█" over "▄".
BLOCKS = " ▁▂▃▄▅▆▇█"
LIMIT_GLYPH = "─"  # the limit line where no bar covers it
NO_DATA_GLYPH = "·"
HEADROOM = 1.15  # the scale reaches a little past the highest value or the limit


def nice_ceiling(value: float) -> float:
    """The smallest 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 x 10^n at or above ``value``: a
    readable scale top that wastes little of the chart's height."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0):
        candidate = step * 10**exponent
        if candidate >= value * (1 - 1e-9):
            return candidate
    return 10.0 ** (exponent + 1)  # pragma: no cover - the loop always returns


def scale_top(series: Sequence[Sequence[float | None]], limit: float | None) -> float:
    """One scale for every series of a metric: from 0 to past the highest value and
    the limit, so the limit line is always inside the chart."""
    peak = max([v for s in series for v in s if v is not None] + [limit or 0.0, 0.0])
    return nice_ceiling(peak * HEADROOM)


def bar_eighths(value: float, top: float, height: int) -> int:
    """How many eighths of a cell a bar of ``value`` fills in a chart ``height`` rows tall
    scaled from 0 to ``top``."""
    total = height * 8
    eighths = round(max(0.0, value) / top * total)
    if value > 0:
        eighths = max(1, eighths)  # a measured non-zero value is never invisible
    return min(total, eighths)


def row_of(limit: float | None, top: float, height: int) -> int | None:
    """The row (from the bottom) a limit line is drawn on; ``None`` when off the scale."""
    if limit is None or not 0 <= limit <= top:
        return None
    return min(height - 1, int(limit / top * height))


# A limit line a third of a cell low, centred or high: three heights per row, so a limit
# that moves with stable is seen moving before it crosses a whole row.
LIMIT_GLYPHS = ("▁", LIMIT_GLYPH, "▔")


def limit_mark(limit: float | None, top: float, height: int) -> tuple[int, str] | None:
    """The row (from the bottom) and glyph of a limit line drawn at a third of a cell's
    precision; ``None`` when the limit is off the scale."""
    row = row_of(limit, top, height)
    if row is None or limit is None:
        return None
    fraction = min(0.999, limit / top * height - row)
    glyph = LIMIT_GLYPHS[int(fraction * 3)]
    # On the bottom row a low line would read as the faint baseline of zero values.
    return row, LIMIT_GLYPH if row == 0 and glyph == LIMIT_GLYPHS[0] else glyph


def bar_glyph(level: int, row: int) -> str:
    """The glyph of a bar filled ``level`` eighths high in ``row`` (from the bottom)."""
    return BLOCKS[min(8, max(0, level - row * 8))]


def chart_lines(
    values: Sequence[float | None],
    width: int,
    height: int,
    top: float,
    *,
    limit: float | None = None,
    breached: Callable[[float], bool] = lambda _v: False,
    style: str = "",
    breach_style: str = "$fail",
    limit_style: str = "$fail 60%",
    dim_style: str = "$foreground 35%",
) -> list[Content]:
    """``height`` lines (top first) of ``width`` cells: the last ``width`` values as bars
    scaled from 0 to ``top``, the limit as a line. A breaching value's bar is drawn in
    ``breach_style``. Fewer values than cells leave the left side empty."""
    width, height = max(1, width), max(1, height)
    top = top if top > 0 else 1.0
    shown = list(values[-width:])
    pad = width - len(shown)
    levels = [None if v is None else bar_eighths(v, top, height) for v in shown]
    limit_row = row_of(limit, top, height)  # counted from the bottom
    lines: list[Content] = []
    for row in range(height - 1, -1, -1):
        parts: list[tuple[str, str]] = []
        base = row * 8
        on_limit = row == limit_row
        parts.append(((LIMIT_GLYPH if on_limit else " ") * pad, limit_style if on_limit else ""))
        for value, level in zip(shown, levels, strict=True):
            if level is None:
                glyph = NO_DATA_GLYPH if row == 0 else (LIMIT_GLYPH if on_limit else " ")
                parts.append((glyph, dim_style if row == 0 else limit_style))
                continue
            fill = min(8, max(0, level - base))
            if fill == 0:
                if on_limit:
                    parts.append((LIMIT_GLYPH, limit_style))
                elif row == 0:
                    parts.append((BLOCKS[1], dim_style))  # a zero: the baseline, faint
                else:
                    parts.append((" ", ""))
                continue
            assert value is not None
            parts.append((BLOCKS[fill], breach_style if breached(value) else style))
        lines.append(merge_runs(parts))
    return lines


def merge_runs(parts: list[tuple[str, str]]) -> Content:
    """One Content per line with runs of the same style joined (fewer spans to paint)."""
    merged: list[tuple[str, str]] = []
    for text, style in parts:
        if not text:
            continue
        if merged and merged[-1][1] == style:
            merged[-1] = (merged[-1][0] + text, style)
        else:
            merged.append((text, style))
    return Content.assemble(*merged)
