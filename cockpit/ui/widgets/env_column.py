"""One environment's column: versions, weight, phase, live metrics, analysis, URL.

The column is a pure renderer of :class:`EnvView`: the screen hands it a new view
when the view's ``seq`` changed (or a countdown ticked) and it updates only the
parts whose text changed, so an idle environment costs nothing per refresh.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widgets import Static

from cockpit.engine.state import Phase
from cockpit.engine.views import EnvView
from cockpit.model import MetricsWindow
from cockpit.ui import render
from cockpit.ui.widgets.metrics import MetricsPanel
from cockpit.ui.widgets.weight_bar import WeightBar


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
    EnvColumn .gap { height: 1; }
    """

    class Selected(Message):
        """The column was clicked: the screen makes it the current environment."""

        def __init__(self, env: str) -> None:
            super().__init__()
            self.env = env

    def __init__(
        self, env: str, protected: bool, limits: dict[str, render.Limit], sparkline_rows: int = 1
    ) -> None:
        # Starts "connecting" (-trouble): a class change restyles the whole column, so
        # the first frame must not need one.
        super().__init__(id=f"env-{env}", classes="env-column -trouble")
        self.env = env
        self.protected = protected
        self.limits = limits
        self.sparkline_rows = sparkline_rows
        self.shown_seq: int | None = None
        self._shown_state: tuple[object, ...] | None = None
        self._last_metrics: tuple[MetricsWindow, ...] | None = None
        self.ready = False  # children mounted: show() before that would find nothing
        self.is_current = False
        self._texts: dict[str, Content | str] = {}

    def compose(self) -> ComposeResult:
        yield Static(self._title(), id="title", classes="title")
        yield Static("connecting…", id="trouble", classes="trouble")
        yield Static("", id="busy", classes="busy")
        yield Static("", id="versions", classes="stale")
        yield WeightBar(id="weight")
        yield Static("", id="phase", classes="stale")
        yield Static("", id="analysis", classes="stale")
        yield Static("", id="details", classes="stale")

    def on_mount(self) -> None:
        self.ready = True
        # The metrics grid (a score of widgets per column, half the cost of the
        # first frame) is mounted once the first frame is on screen.
        self.call_after_refresh(self._mount_metrics)

    async def _mount_metrics(self) -> None:
        panel = MetricsPanel(self.limits, self.sparkline_rows, id="metrics")
        await self.mount(panel, after="#phase")
        if self._last_metrics is not None:
            panel.update(self._last_metrics)

    def on_click(self) -> None:
        self.post_message(self.Selected(self.env))

    def set_current(self, current: bool) -> None:
        if current != self.is_current:
            self.is_current = current
            title = self.query_one("#title", Static)
            title.set_class(current, "-current")
            title.update(self._title(), layout=False)

    def _title(self) -> Content:
        mark = "▶ " if self.is_current else "  "
        parts: list[str | tuple[str, str]] = [f"{mark}{self.env}"]
        if self.protected:
            parts.append(("  protected", "" if self.is_current else "$warn"))
        return Content.assemble(*parts)

    def _set(self, part: str, text: Content | str) -> None:
        # Static.update() relayouts; skip it when the text did not change.
        if self._texts.get(part) != text:
            self._texts[part] = text
            self.query_one(f"#{part}", Static).update(text)

    @staticmethod
    def _state(view: EnvView, busy: str | None) -> tuple[object, ...]:
        return (
            view.rollout,
            view.backend,
            view.backend_error,
            view.retry_at,
            view.metrics_error,
            view.versions,
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
        trouble = render.trouble(view, now)
        if not view.up and view.backend_error is None:
            trouble = Content.styled("… connecting to the backend", "$foreground 55%")
        self.set_class(view.backend_error is not None, "-down")
        self.set_class(trouble is not None, "-trouble")
        self._set("trouble", trouble or "")
        self.set_class(busy is not None, "-busy")
        self._set("busy", Content(f"⟳ {busy}…") if busy else "")
        self._set("versions", render.versions(view))
        bar = self.query_one(WeightBar)
        bar.weight = view.rollout.weight
        bar.enabled = view.rollout.phase is Phase.PAUSED and view.rollout.canary_version is not None
        self._set("phase", render.phase(view, now))
        self._last_metrics = view.metrics
        for panel in self.query(MetricsPanel):  # none until after the first frame
            panel.update(view.metrics)
        self._set("analysis", render.analysis(view))
        self._set("details", render.details(view))

    def needs_tick(self, view: EnvView) -> bool:
        """Whether a countdown in this view changes with time alone."""
        return view.retry_at is not None or (
            view.rollout.paused_until is not None and view.rollout.phase is Phase.PAUSED
        )
