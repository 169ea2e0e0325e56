"""Live metrics of one environment: request rate, error rate and p99, stable beside
canary on one zero-based scale with the plan's limit drawn across (``chart.py``).

One widget draws the whole panel (a single render per metrics poll instead of a score
of widgets per column). Per metric::

    p99    stable 90ms                canary 420ms  ≤250ms
    300ms  ▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁  ──────────▆▆▆██▇▇▇▇
        0  ▂▂▂▂▂▂▂▂▂▂▂▂▂▂▂▂▂▂▂▂▂▂▂▂▂  ▂▂▂▂▂▂▂▂▂▂█████████

The column chooses the chart height (``rows``) from the room it has; 0 hides the panel.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.content import Content
from textual.widget import Widget

from cockpit.model import MetricsWindow
from cockpit.ui import render
from cockpit.ui.widgets.chart import chart_lines, scale_top

AXIS = 7  # the label / scale column
COMPACT = -1  # rows: one line per metric, values beside one-row charts (a short terminal)
GAP = 2  # between the stable and the canary chart


class MetricsPanel(Widget):
    DEFAULT_CSS = """
    MetricsPanel { height: auto; width: 100%; text-wrap: nowrap; text-overflow: clip; }
    """

    def __init__(self, limits: dict[str, render.Limit], rows: int = 2, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.limits = limits
        self.rows = rows
        self.names = ("stable", "canary")  # blue-green: ("active", "preview")
        self.styles_for = ("$stable", "$canary")
        self._windows: tuple[MetricsWindow, ...] = ()
        self._last: object = ()  # never a real marker: the first update always draws

    @staticmethod
    def height_for(rows: int) -> int:
        """Lines the panel takes with charts ``rows`` tall; ``COMPACT``: one line per metric."""
        if rows == COMPACT:
            return len(render.METRICS)
        return len(render.METRICS) * (1 + rows) if rows > 0 else 0

    def configure(self, rows: int, names: tuple[str, str], styles: tuple[str, str]) -> None:
        if (rows, names, styles) != (self.rows, self.names, self.styles_for):
            self.rows, self.names, self.styles_for = rows, names, styles
            self.refresh(layout=True)

    def update(self, windows: Sequence[MetricsWindow]) -> None:
        marker = (windows[-1].ts, len(windows)) if windows else None
        if marker == self._last:
            return  # nothing new measured: keep the charts as drawn
        self._last = marker
        self._windows = tuple(windows)
        self.refresh()

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        return max(1, self.height_for(self.rows))

    def render(self) -> Content:
        return Content("\n").join(
            panel_lines(self._windows, self.limits, self.size.width, self.rows, self.names, self.styles_for)
        )


def panel_lines(
    windows: Sequence[MetricsWindow],
    limits: dict[str, render.Limit],
    width: int,
    rows: int,
    names: tuple[str, str] = ("stable", "canary"),
    styles: tuple[str, str] = ("$stable", "$canary"),
) -> list[Content]:
    """The panel as lines (pure, for tests): a title line and ``rows`` chart lines per
    metric, or one line per metric when ``rows`` is ``COMPACT``."""
    if rows == COMPACT:
        return compact_lines(windows, limits, width, styles)
    if rows <= 0:
        return []
    chart_w = max(4, (width - AXIS - GAP) // 2)
    lines: list[Content] = []
    for key, label, unit in render.METRICS:
        limit = limits.get(key)
        stable = render.series_with_gaps(windows, key, False, chart_w)
        canary = render.series_with_gaps(windows, key, True, chart_w)
        top = scale_top([stable, canary], limit.value if limit else None)
        readings: list[Content] = []
        for i, canary_track in enumerate((False, True)):
            value = render.latest(windows, key, canary_track)
            breach = bool(limit and limit.breached(value))
            shown = "—" if value is None else render.fmt_value(value, unit)
            readings.append(
                Content.assemble(
                    (f"{names[i]} ", styles[i]),
                    (shown, "$fail bold reverse" if breach else f"{styles[i]} bold"),
                )
            )
        title = Content.assemble(
            (f"{label:<{AXIS}}", "bold"),
            readings[0],
            " " * max(1, chart_w + GAP - readings[0].cell_length),
            readings[1],
        )
        if limit:
            for words in (f"  limit {limit.text(unit)}", f" {limit.text(unit)}"):
                if title.cell_length + len(words) <= width:
                    title = Content.assemble(title, (words, render.DIM))
                    break
        lines.append(title.truncate(width, ellipsis=True))
        breached = limit.breached if limit else (lambda _v: False)
        charts = []
        for values, style, name in ((stable, styles[0], names[0]), (canary, styles[1], names[1])):
            if not any(v is not None for v in values):
                # Not a flat line: nothing was measured (no canary deployed, or no request).
                blank = [Content(" " * chart_w)] * rows
                blank[-1] = Content.styled(f"no {name} traffic".ljust(chart_w)[:chart_w], render.DIM)
                charts.append(blank)
                continue
            charts.append(
                chart_lines(
                    values,
                    chart_w,
                    rows,
                    top,
                    limit=limit.value if limit else None,
                    breached=lambda v, b=breached: b(v),  # type: ignore[misc]
                    style=style,
                )
            )
        for row in range(rows):
            axis = render.fmt_axis(top, unit) if row == 0 else ("0" if row == rows - 1 else "")
            lines.append(
                Content.assemble(
                    (f"{axis:>{AXIS - 1}} ", render.DIM), charts[0][row], " " * GAP, charts[1][row]
                )
            )
    return lines


def compact_lines(
    windows: Sequence[MetricsWindow],
    limits: dict[str, render.Limit],
    width: int,
    styles: tuple[str, str] = ("$stable", "$canary"),
) -> list[Content]:
    """One line per metric: ``p99   90ms ▁▁▁▁▁▁  420ms ▁▁▁▆▇█  ≤250ms`` - stable then
    canary in their colours, each beside a one-row chart on the shared zero-based scale."""
    value_w, limit_w = 7, 8
    chart_w = max(3, (width - AXIS - 2 * (value_w + 1) - 1 - limit_w) // 2)
    lines: list[Content] = []
    for key, label, unit in render.METRICS:
        limit = limits.get(key)
        series = [render.series_with_gaps(windows, key, canary, chart_w) for canary in (False, True)]
        top = scale_top(series, limit.value if limit else None)
        breached = limit.breached if limit else (lambda _v: False)
        parts: list[str | tuple[str, str] | Content] = [(f"{label:<{AXIS}}", "bold")]
        for i, values in enumerate(series):
            value = render.latest(windows, key, i == 1)
            breach = bool(limit and limit.breached(value))
            shown = "—" if value is None else render.fmt_value(value, unit).replace("/s", "")
            parts.append((f"{shown:>{value_w}} ", "$fail bold reverse" if breach else f"{styles[i]} bold"))
            if any(v is not None for v in values):
                parts.append(
                    chart_lines(
                        values,
                        chart_w,
                        1,
                        top,
                        limit=limit.value if limit else None,
                        breached=lambda v, b=breached: b(v),  # type: ignore[misc]
                        style=styles[i],
                    )[0]
                )
            else:
                parts.append((" " * chart_w, ""))
            parts.append(" " if i == 0 else "")
        if limit:
            parts.append((f" {limit.text(unit)}", render.DIM))
        lines.append(Content.assemble(*parts).truncate(width))
    return lines
