"""One environment's card: versions, weight (or the blue-green switch), phase, the step
timeline, live charts, analysis with its recent measurements, URLs.

The card is a pure renderer of :class:`EnvView`: the screen hands it a new view when the
view's ``seq`` changed (or a countdown ticked) and it updates only the parts whose text
changed, so an idle environment costs nothing per refresh.

It fits its height (:meth:`EnvColumn._fit`): what says where the release stands -
versions, phase and its reason, the analysis verdict per check - is always shown; the
timeline, the charts, the recent measurements and the URLs take what room is left, in
that order, and the charts grow taller with the spare rows. At 80x24 a card shows the
essentials without a scrollbar; at 200x50 the room goes to taller, wider charts.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widgets import Static

from cockpit.engine.state import Phase
from cockpit.engine.views import EnvView
from cockpit.model import MetricsWindow
from cockpit.ui import render
from cockpit.ui.widgets.metrics import COMPACT, MetricsPanel
from cockpit.ui.widgets.timeline import timeline_lines
from cockpit.ui.widgets.weight_bar import WeightBar

MAX_CHART_ROWS = 6  # taller than this a chart shows nothing more; the rest stays free


@dataclass(frozen=True)
class Fit:
    """What the card shows at its current size (see :meth:`EnvColumn._fit`)."""

    timeline: int = 0  # lines of the step timeline
    chart_rows: int = 0  # height of each chart; 0: no charts, COMPACT: one line per metric
    recent: bool = False  # a line of recent measurements under each check
    details: bool = False  # migrations and URLs


def line_count(text: Content | str, width: int) -> int:
    """Lines ``text`` takes once wrapped to ``width`` cells (as a Static draws it)."""
    content = text if isinstance(text, Content) else Content(text)
    if width <= 0 or not content.plain:
        return 1 if content.plain else 0
    return sum(max(1, len(line.wrap(width))) for line in content.split("\n"))


class EnvColumn(VerticalScroll, can_focus=False):
    DEFAULT_CSS = """
    EnvColumn {
        width: 1fr;
        height: 1fr;
        border: round $foreground 30%;
        padding: 0 1;
        scrollbar-size-vertical: 1;
    }
    EnvColumn.-down { border: round $fail; }
    /* The current environment is shown by its title bar, not by the border or
       focus: those repaint (and restyle) the whole column, and moving between
       environments must stay instant while logs stream. */
    EnvColumn .title { height: 1; width: 100%; text-style: bold; }
    EnvColumn .title.-current { background: $accent; color: $background; }
    EnvColumn > Static { width: 100%; height: auto; }
    EnvColumn .trouble { display: none; background: $fail 15%; }
    EnvColumn.-trouble .trouble { display: block; }
    EnvColumn.-down .stale { color: $text-muted; }
    EnvColumn .busy { display: none; color: $accent; text-style: bold; }
    EnvColumn.-busy .busy { display: block; }
    EnvColumn .switch { display: none; }
    EnvColumn.-blue-green .switch { display: block; }
    EnvColumn.-blue-green WeightBar { display: none; }
    """

    class Selected(Message):
        """The column was clicked: the screen makes it the current environment."""

        def __init__(self, env: str) -> None:
            super().__init__()
            self.env = env

    def __init__(
        self, env: str, protected: bool, limits: dict[str, render.Limit], sparkline_rows: int = 2
    ) -> None:
        # Starts "connecting" (-trouble): a class change restyles the whole column, so
        # the first frame must not need one.
        super().__init__(id=f"env-{env}", classes="env-column -trouble")
        self.env = env
        self.protected = protected
        self.limits = limits
        self.min_chart_rows = sparkline_rows  # the user's preferred chart height, when room allows
        self.shown_seq: int | None = None
        self._shown_state: tuple[object, ...] | None = None
        self._last_metrics: tuple[MetricsWindow, ...] | None = None
        self._view: EnvView | None = None
        self._now = 0.0
        self._busy: str | None = None
        self.fit = Fit()
        self.ready = False  # children mounted: show() before that would find nothing
        self.is_current = False
        self._texts: dict[str, Content | str] = {}

    def compose(self) -> ComposeResult:
        yield Static(self._title(), id="title", classes="title")
        yield Static("connecting…", id="trouble", classes="trouble")
        yield Static("", id="busy", classes="busy")
        yield Static("", id="versions", classes="stale")
        yield WeightBar(id="weight")
        yield Static("", id="switch", classes="switch stale")
        yield Static("", id="phase", classes="stale")
        yield Static("", id="timeline", classes="stale")
        yield Static("", id="analysis", classes="stale")
        yield Static("", id="details", classes="stale")

    def on_mount(self) -> None:
        self.ready = True
        # The charts are mounted once the first frame is on screen: the first frame
        # only needs the words.
        self.call_after_refresh(self._mount_metrics)

    async def _mount_metrics(self) -> None:
        panel = MetricsPanel(self.limits, self.fit.chart_rows, id="metrics")
        panel.display = self.fit.chart_rows != 0
        await self.mount(panel, after="#timeline")
        self._configure_panel(panel)
        if self._last_metrics is not None:
            panel.update(self._last_metrics)

    def on_click(self) -> None:
        self.post_message(self.Selected(self.env))

    def on_resize(self, _event: events.Resize) -> None:
        if self._view is not None:
            self._draw(self._view, self._now, self._busy)

    def set_current(self, current: bool) -> None:
        if current != self.is_current:
            self.is_current = current
            title = self.query_one("#title", Static)
            title.set_class(current, "-current")
            title.update(self._title(), layout=False)

    def _title(self) -> Content:
        # ▸, not ▶: U+25B6 is an emoji code point some terminals draw two cells wide.
        mark = "▸ " if self.is_current else "  "
        parts: list[str | tuple[str, str]] = [f"{mark}{self.env}"]
        if self.protected:
            parts.append(("  protected", "" if self.is_current else "$warn"))
        return Content.assemble(*parts)

    def _set(self, part: str, text: Content | str) -> None:
        # Static.update() relayouts; skip it when the text did not change. Content's == compares
        # the text alone, so the spans are compared too: a change of colour alone must redraw.
        before = self._texts.get(part)
        if before is None or before != text or _spans(before) != _spans(text):
            self._texts[part] = text
            self.query_one(f"#{part}", Static).update(text)

    def _show_part(self, part: str, shown: bool) -> None:
        widget = self.query_one(f"#{part}")
        if widget.display != shown:
            widget.display = shown

    @staticmethod
    def _state(view: EnvView, busy: str | None) -> tuple[object, ...]:
        return (
            view.rollout,
            view.backend,
            view.backend_error,
            view.retry_at,
            view.metrics_error,
            view.versions,
            view.migrations,
            busy,
        )

    def state_changed(self, view: EnvView, busy: str | None) -> bool:
        """Whether anything but the metrics changed since the view last shown."""
        return self._state(view, busy) != self._shown_state

    def show(self, view: EnvView, now: float, busy: str | None = None) -> None:
        if not self.ready:
            return  # shown_seq stays behind, so the next tick shows it
        self.shown_seq = view.seq
        self._shown_state = self._state(view, busy)
        self._view, self._now, self._busy = view, now, busy
        self._draw(view, now, busy)

    def _draw(self, view: EnvView, now: float, busy: str | None) -> None:
        trouble = render.trouble(view, now)
        if not view.up and view.backend_error is None:
            trouble = Content.styled("… connecting to the backend", "$foreground 55%")
        self.set_class(view.backend_error is not None, "-down")
        self.set_class(trouble is not None, "-trouble")
        self.set_class(view.blue_green, "-blue-green")
        self._set("trouble", trouble or "")
        self.set_class(busy is not None, "-busy")
        self._set("busy", Content(f"⟳ {busy}…") if busy else "")
        self._set("versions", render.versions(view))
        if view.blue_green:
            self._set("switch", render.switch(view))
        else:
            bar = self.query_one(WeightBar)
            bar.weight = view.rollout.weight
            bar.enabled = view.rollout.phase is Phase.PAUSED and view.rollout.canary_version is not None
        self._set("phase", render.phase(view, now))
        width = self.size.width
        fit = self._fit(view, now, trouble, busy, width)
        self.fit = fit
        self._show_part("timeline", fit.timeline > 0)
        if fit.timeline:
            self._set("timeline", Content("\n").join(timeline_lines(view, width, fit.timeline)))
        self._set("analysis", render.analysis(view, width, recent=fit.recent))
        self._show_part("details", fit.details)
        if fit.details:
            self._set("details", render.details(view))
        self._last_metrics = view.metrics
        for panel in self.query(MetricsPanel):  # none until after the first frame
            self._configure_panel(panel)
            panel.update(view.metrics)

    def _configure_panel(self, panel: MetricsPanel) -> None:
        view = self._view
        if view is not None and view.blue_green:
            names, styles = ("active", "preview"), ("$blue-stack", "$green-stack")
        else:
            names, styles = ("stable", "canary"), ("$stable", "$canary")
        panel.configure(self.fit.chart_rows, names, styles)
        if panel.display != (self.fit.chart_rows != 0):
            panel.display = self.fit.chart_rows != 0

    def _fit(self, view: EnvView, now: float, trouble: Content | None, busy: str | None, width: int) -> Fit:
        """Share the card's height: the essentials first, then the timeline, a chart row
        each, the recent measurements, the timeline in full, the URLs, taller charts."""
        height = self.size.height
        if width <= 0 or height <= 0:
            return Fit(timeline=1, chart_rows=self.min_chart_rows, details=True)
        used = 1 + 1  # the title and the weight bar (or the switch)
        if trouble is not None:
            used += line_count(trouble, width)
        if busy:
            used += 1
        used += line_count(render.versions(view), width)
        used += line_count(render.phase(view, now), width)
        used += line_count(render.analysis(view, width), width)
        room = height - used
        checks = len(view.rollout.analysis.checks) if view.rollout.analysis else 0
        timeline = 0
        if room >= 1:
            timeline, room = 1, room - 1
        rows = 0
        if room >= MetricsPanel.height_for(1):
            rows, room = 1, room - MetricsPanel.height_for(1)
        elif room >= MetricsPanel.height_for(COMPACT):
            # No room for titled charts: one line per metric beats none at all.
            rows, room = COMPACT, room - MetricsPanel.height_for(COMPACT)
        recent = False
        if checks and room >= checks:
            recent, room = True, room - checks
        full = len(timeline_lines(view, width, 3)) if timeline else 0
        if full > timeline and room >= full - timeline:
            room -= full - timeline
            timeline = full
        details = False
        need = line_count(render.details(view), width)
        if room >= need:
            details, room = True, room - need
        if rows > 0:
            per_row = len(render.METRICS)
            grow = min(MAX_CHART_ROWS - rows, room // per_row)
            rows += grow
        return Fit(timeline, rows, recent, details)

    def needs_tick(self, view: EnvView) -> bool:
        """Whether a countdown in this view changes with time alone."""
        return view.retry_at is not None or view.metrics_retry_at is not None or (
            view.rollout.paused_until is not None and view.rollout.phase is Phase.PAUSED
        )


def _spans(text: Content | str) -> object:
    return text.spans if isinstance(text, Content) else None
