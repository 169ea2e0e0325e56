"""Live metrics of one environment: request rate, error rate and p99, canary beside
stable, with the plan's threshold on each line.

Sparklines get a *new* list at each update (Textual repaints on assignment, not on
mutation) and only when the metrics changed; they stay 1-3 rows tall because their
cost grows with the cells drawn at every refresh.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Grid
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Label, Sparkline

from cockpit.model import MetricsWindow
from cockpit.ui import render

POINTS = 60  # samples per sparkline (a minute at the default 1 s metrics interval)


class MetricsHead(Widget):
    """``stable`` and ``canary`` above their sparklines, ``limit`` above the limits."""

    def render(self) -> Content:
        # Mirrors the grid: 6 + 1fr + 8 + 1fr + 8 + 7 cells with a gutter of 1.
        spark = max(1, (self.size.width - (6 + 8 + 8 + 7 + 5)) // 2)
        return Content.assemble(
            " " * 7, ("stable".ljust(spark + 10), "$stable"), ("canary".ljust(spark + 10), "$canary"), "limit"
        )


class MetricsPanel(Grid):
    DEFAULT_CSS = """
    MetricsPanel {
        grid-size: 6;
        grid-columns: 6 1fr 8 1fr 8 7;
        grid-gutter: 0 1;
        height: auto;
    }
    /* Numbers sit on the bottom row of a tall sparkline, level with its baseline. */
    MetricsPanel Label { width: 100%; height: 100%; content-align-vertical: bottom; }
    MetricsPanel .head { color: $text-muted; }
    MetricsPanel #metrics-head { column-span: 6; }
    MetricsPanel .value { text-align: right; }
    MetricsPanel .value.stable { color: $stable; }
    MetricsPanel .value.canary { color: $canary; }
    MetricsPanel .value.-breach { color: $fail; text-style: bold reverse; }
    MetricsPanel .limit { color: $text-muted; }
    MetricsPanel Sparkline { width: 100%; }
    MetricsPanel Sparkline.stable > .sparkline--max-color { color: $stable; }
    MetricsPanel Sparkline.stable > .sparkline--min-color { color: $stable 40%; }
    MetricsPanel Sparkline.canary > .sparkline--max-color { color: $canary; }
    MetricsPanel Sparkline.canary > .sparkline--min-color { color: $canary 40%; }
    MetricsPanel Sparkline.-breach > .sparkline--max-color { color: $fail; }
    """

    def __init__(self, limits: dict[str, render.Limit], rows: int = 1, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.limits = limits
        self.rows = rows
        self._last: object = ()  # never a real marker: the first update always draws
        self._cells: dict[tuple[str, str], tuple[Sparkline, Label]] = {}

    def compose(self) -> ComposeResult:
        # One widget for the header row: every widget costs at start and at each restyle.
        yield MetricsHead(id="metrics-head", classes="head")
        for key, label, unit in render.METRICS:
            limit = self.limits.get(key)
            yield Label(label, classes="head")
            for track in ("stable", "canary"):
                spark = Sparkline([], id=f"{key}-{track}-spark", classes=track)
                spark.styles.height = self.rows
                yield spark
                yield Label("", id=f"{key}-{track}-value", classes=f"value {track}")
            yield Label(limit.text(unit) if limit else "", classes="limit")

    def on_mount(self) -> None:
        # The header row, then one row per metric as tall as its sparklines.
        self.styles.grid_rows = " ".join(["1", *[str(self.rows)] * len(render.METRICS)])
        # Looked up once: update() runs at every metrics poll of every environment.
        for key, _, _ in render.METRICS:
            for track in ("stable", "canary"):
                self._cells[key, track] = (
                    self.query_one(f"#{key}-{track}-spark", Sparkline),
                    self.query_one(f"#{key}-{track}-value", Label),
                )

    def update(self, windows: Sequence[MetricsWindow]) -> None:
        marker = (windows[-1].ts, len(windows)) if windows else None
        if not self._cells or marker == self._last:
            return  # nothing new measured: keep the sparklines as drawn
        self._last = marker
        for key, _, unit in render.METRICS:
            limit = self.limits.get(key)
            for track in ("stable", "canary"):
                canary = track == "canary"
                value = render.latest(windows, key, canary)
                breach = bool(limit and limit.breached(value))
                spark, label = self._cells[key, track]
                spark.data = render.series(windows, key, canary, POINTS)
                spark.set_class(breach, "-breach")
                text = "—" if value is None else render.fmt_value(value, unit).replace("/s", "")
                if text != label.content:
                    # A grid cell of fixed size: no relayout of the screen for a new number.
                    label.update(text, layout=False)
                label.set_class(breach, "-breach")
