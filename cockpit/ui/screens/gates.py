"""The gate view (``g``): the focused environment's analysis, one gate at a time, explained.

For each check (gate) of the current or last analysis run: its verdict as a word, a
glyph and a colour; the condition as written; the last canary value against the limit
it was judged by - for a limit relative to stable, how that limit was computed - with
stable beside it; canary and stable on one zero-based chart with the limit drawn; the
recent measurements (NoData and errors as such, with their message); the counts against
the plan's limits; the query on demand. The view follows the live environment while it
is open: a measurement taken behind it appears at once, and a metrics source that is
down says so, with its error and when it is tried again, instead of a frozen picture.

Read-only: nothing here sends a command, so unlike the acting modals it never goes stale.
"""

from __future__ import annotations

import logging
import re
import time
from typing import ClassVar, cast

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Static

from cockpit.engine.state import AnalysisView, CheckView, Measurement, Outcome
from cockpit.engine.views import EnvView
from cockpit.plan.models import Check, Plan
from cockpit.ui import render
from cockpit.ui.host import CockpitHost
from cockpit.ui.screens.modal import WATCH_INTERVAL, CockpitModal
from cockpit.ui.widgets.gate_chart import GateChart
from cockpit.units import format_duration

log = logging.getLogger(__name__)

LABEL = 11  # the width of the labels on the left of a gate's block
SHOWN_MEASUREMENTS = 10


# --------------------------------------------------------------------------- pure parts


def labelled(label: str, *parts: str | tuple[str, str] | Content) -> Content:
    return Content.assemble((f"{label:<{LABEL}}", render.DIM), *parts)


def verdict(outcome: Outcome) -> Content:
    """``✗ Failed``: the glyph and the word, in the outcome's colour."""
    mark, style = render.OUTCOME_MARK[outcome]
    return Content.styled(f"{mark} {render.OUTCOME_TEXT.get(outcome, outcome.value)}", style)


def plan_check(plan: Plan, name: str) -> Check | None:
    """The plan's definition of check ``name`` (its limits, its query as written); a
    platform that runs its own analysis may report checks the plan does not define."""
    return next((c for c in plan.analysis.checks if c.name == name), None)


def last_with_value(check: CheckView) -> Measurement | None:
    return next((m for m in reversed(check.measurements) if m.value is not None), None)


def fmt_time(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))


def value_line(check: CheckView, names: tuple[str, str], styles: tuple[str, str]) -> list[Content]:
    """``canary 182ms  limit 154ms (stable 120 × 1.2 + 10)  ✗ over by 28ms`` and the
    stable line under it; a last measurement without a value says why."""
    last = check.last
    if last is None:
        return [labelled(names[1], ("waiting for the first measurement", render.DIM))]
    lines: list[Content] = []
    if last.value is None:
        mark, style = render.OUTCOME_MARK[last.outcome]
        why = (
            f"error reading the metrics: {last.message}"
            if last.outcome is Outcome.ERROR
            else f"no data: no {names[1]} requests in the window"
        )
        lines.append(labelled(names[1], (f"{mark} {why}", style)))
        previous = last_with_value(check)
        if previous is not None:
            lines.append(labelled("", (f"last value at {fmt_time(previous.ts)}:", render.DIM)))
            lines.append(_judged(check, previous, names, styles))
        elif last.stable_value is not None:
            lines.append(_stable(check, last, names, styles))
        return lines
    return [_judged(check, last, names, styles)]


def _judged(
    check: CheckView, m: Measurement, names: tuple[str, str], styles: tuple[str, str]
) -> Content:
    assert m.value is not None
    limit = render.limit_of(check, m)
    op = render.condition_op(check.condition)
    failed = m.outcome is Outcome.FAILED
    parts: list[str | tuple[str, str] | Content] = [
        (render.fmt_value(m.value, check.unit), "$fail bold" if failed else f"{styles[1]} bold")
    ]
    if limit is not None and op is not None:
        parts.append((f"   limit {render.OPS.get(op, op)} {render.fmt_value(limit, check.unit)}", "bold"))
        rel = render.relative_condition(check.condition, check.unit)
        if rel is not None and m.stable_value is not None:
            parts.append((f" ({rel.explain(m.stable_value)})", render.DIM))
        holds, words = render.against_limit(op, m.value, limit, check.unit)
        parts.append(("   ✓ " if holds else "   ✗ ", "$ok" if holds else "$fail bold"))
        parts.append((words, "$ok" if holds else "$fail bold"))
    else:
        parts.append((f"   needs {render.fmt_condition(check.condition, check.unit)}", "bold"))
    line = labelled(names[1], *parts)
    return Content("\n").join([line, _stable(check, m, names, styles)])


def _stable(check: CheckView, m: Measurement, names: tuple[str, str], styles: tuple[str, str]) -> Content:
    if m.stable_value is None:
        return labelled(names[0], ("— not measured (no stable data in the window)", render.DIM))
    parts: list[str | tuple[str, str]] = [(render.fmt_value(m.stable_value, check.unit), f"{styles[0]} bold")]
    if m.value is not None:
        diff = m.value - m.stable_value
        sign = "+" if diff >= 0 else "−"
        gap = render.fmt_gap(abs(diff), check.unit)
        parts.append((f"   {names[1]} {sign}{gap} against {names[0]}", render.DIM))
    return labelled(names[0], *parts)


def counts_line(check: CheckView, defined: Check | None, width: int = 0) -> Content:
    """``taken 2/3   failed 1 (limit 0)   inconclusive 0   no data 1 (limit 3)   errors 0``,
    broken between items (never inside one) to fit ``width``."""

    def count(label: str, value: int, limit: int | None, style: str, tail: str = "") -> Content:
        over = limit is not None and value > limit
        shown = f"{label} {value}" + (f" (limit {limit}{tail})" if limit is not None else "")
        return Content.styled(shown, f"{style} bold" if over else (render.TEXT if value else render.DIM))

    items = [
        Content.assemble(("taken ", render.TEXT), (f"{check.taken}/{check.count}", "bold")),
        count("failed", check.failed, defined.failure_limit if defined else None, "$fail"),
        count("inconclusive", check.inconclusive, defined.inconclusive_limit if defined else None, "$warn"),
        count("no data", check.no_data, defined.no_data_limit if defined else None, "$nodata"),
        count("errors", check.errors, defined.error_limit if defined else None, "$warn", " in a row"),
    ]
    lines: list[list[Content]] = [[]]
    used = 0
    for item in items:
        needed = item.cell_length + (3 if lines[-1] else 0)
        if lines[-1] and width > 0 and used + needed > width:
            lines.append([])
            used, needed = 0, item.cell_length
        lines[-1].append(item)
        used += needed
    return Content("\n").join(Content("   ").join(line) for line in lines)


def measurements_table(check: CheckView, width: int, names: tuple[str, str]) -> Content:
    """The recent measurements, newest first: time, canary, stable, limit, outcome (an
    error with its message, cut to the width)."""
    headings = (("time", 10), (names[1], 10), (names[0], 10), ("limit", 10))
    head = Content.assemble(*((f"{title:<{w}}", render.DIM) for title, w in headings), ("outcome", render.DIM))
    if not check.measurements:
        return Content("\n").join([head, Content.styled("no measurement yet", render.DIM)])
    rows = [head]
    for m in reversed(check.measurements[-SHOWN_MEASUREMENTS:]):
        limit = render.limit_of(check, m)
        cells = [fmt_time(m.ts), _cell(m.value, check.unit), _cell(m.stable_value, check.unit), _cell(limit, check.unit)]
        mark, style = render.OUTCOME_MARK[m.outcome]
        outcome = f"{mark} {m.outcome.value}" + (f": {m.message}" if m.message else "")
        row = Content.assemble(
            *((f"{text:<{w}}", render.TEXT if i else render.DIM) for i, (text, (_t, w)) in enumerate(zip(cells, headings, strict=True))),
            (outcome, style),
        )
        rows.append(row.truncate(width, ellipsis=True) if width > 0 else row)
    return Content("\n").join(rows)


def _cell(value: float | None, unit: str) -> str:
    return "—" if value is None else render.fmt_value(value, unit)


# Where a long query may break: after a comma, a space or an opening bracket.
_BREAK = re.compile(r"(?<=[,\s({\[])")


def wrap_query(query: str, width: int) -> list[str]:
    """``query`` in lines of at most ``width`` cells, broken after commas, spaces and
    opening brackets where possible, folded where a single token is longer."""
    width = max(8, width)
    lines: list[str] = []
    for source_line in query.strip().splitlines() or [""]:
        line = ""
        for token in _BREAK.split(source_line.strip()):
            if len(line) + len(token) <= width:
                line += token
                continue
            if line.strip():
                lines.append(line.rstrip())
            line = token.lstrip()
            while len(line) > width:
                lines.append(line[:width])
                line = line[width:]
        if line.strip() or not lines:
            lines.append(line.rstrip())
    return lines


def query_block(check: CheckView, defined: Check | None, source: str, shown: bool, width: int) -> Content:
    """The query behind the gate, on demand; a built-in metric a source computes itself says so."""
    query, origin = check.query, "as sent for the canary"
    if not query and defined is not None and defined.query:
        query, origin = defined.query, "as written in the plan"
    if not query:
        metric = defined.metric if defined and defined.metric else check.name
        return labelled("query", (f"none: the {source} source computes {metric} itself", render.DIM))
    if not shown:
        return labelled("query", ("hidden · enter shows it", render.DIM))
    lines = [labelled("query", (f"{origin} · enter hides it", render.DIM))]
    lines += [Content.styled(f"  {text}", "$accent") for text in wrap_query(query, width - 2)]
    return Content("\n").join(lines)


def gate_tabs(checks: tuple[CheckView, ...], selected: int, width: int) -> Content:
    """``gates  ✗ latency-p99  ✓ success-rate``: every gate with its verdict, the one
    shown highlighted; ``←/→`` moves between them."""
    parts: list[Content] = [Content.styled("gates", "bold")]
    for i, check in enumerate(checks):
        mark, style = render.OUTCOME_MARK[check.outcome]
        parts.append(Content.styled(f"{mark} {check.name}", f"{style} reverse" if i == selected else style))
    line = Content("  ").join(parts)
    if len(checks) > 1:
        hint = Content.styled(f"   ←/→ {len(checks)} gates", render.DIM)
        if line.cell_length + hint.cell_length <= width:
            line = Content.assemble(line, hint)
    return line


def analysis_title(view: EnvView, a: AnalysisView | None) -> Content:
    """``Gates · staging · step 3/5 · ✗ Failed · 1.2.0``; a finished rollout says that
    this is the last analysis, not a live one."""
    parts: list[str | tuple[str, str] | Content] = [("Gates · ", "bold"), (view.name, "bold")]
    if a is None:
        return Content.assemble(*parts)
    r = view.rollout
    parts += [(f" · step {a.step + 1}/{len(view.steps) or r.steps_total} · ", render.TEXT), verdict(a.outcome)]
    if r.target_version:
        parts.append((f" · {r.target_version}", render.TEXT))
    if not r.in_rollout:
        parts.append((f" (last run; now {r.phase.value})", render.DIM))
    elif view.blue_green:
        parts.append((" · on preview traffic", render.DIM))
    return Content.assemble(*parts)


def no_analysis(view: EnvView, plan: Plan) -> Content:
    """What the plan would check, when no analysis ran here yet."""
    lines = [Content(f"no analysis has run in {view.name} yet; the plan's checks are:")]
    env = plan.environment(view.name) if view.name in {e.name for e in plan.environments} else None
    strategy = env.strategy if env is not None and env.strategy is not None else plan.strategy
    used = [name for step in strategy.steps() if step.analysis for name in step.analysis.checks]
    checks = [c for c in plan.analysis.checks if c.name in used] or list(plan.analysis.checks)
    if not checks:
        return Content(f"no analysis has run in {view.name} yet, and the plan defines no checks")
    width = max(len(c.name) for c in checks) + 2
    for c in checks:
        what = f"built-in {c.metric}" if c.metric else "query"
        unit = render.fmt_condition(str(c.success), _unit(c))
        lines.append(
            Content.assemble(
                (f"  {c.name:<{width}}", "bold"),
                (f"{unit:<14}", render.TEXT),
                (f"every {format_duration(c.interval)} × {c.count}, {what}", render.DIM),
            )
        )
    if used:
        where = [f"step {i + 1}" for i, s in enumerate(strategy.steps()) if s.analysis]
        lines.append(Content.styled(f"they run at {', '.join(where)} of a rollout", render.DIM))
    return Content("\n").join(lines)


def _unit(check: Check) -> str:
    from cockpit.engine.analysis import UNITS

    return UNITS.get(check.metric or "", "")


def metrics_trouble(view: EnvView, now: float) -> Content | None:
    """``! metrics source down · retrying in 8s`` and the source's error under it;
    ``None`` while the source answers."""
    if view.metrics_error is None:
        return None
    retry = (
        f" · retrying in {render.countdown(view.metrics_retry_at, now)}"
        if view.metrics_retry_at is not None
        else " · retried at the next poll"
    )
    lines = [
        Content.assemble(("! metrics source down", "$warn bold"), (retry, "$warn bold")),
        Content.styled(f"  {view.metrics_error}", "$warn"),
    ]
    if view.rollout.analysis is not None:
        note = "  the gates show what was measured before; a measurement that cannot read counts as an error"
        lines.append(Content.styled(note, render.DIM))
    return Content("\n").join(lines)


# --------------------------------------------------------------------------- the modal


class GateScreen(CockpitModal[None]):
    DEFAULT_CSS = """
    GateScreen { align: center middle; }
    GateScreen #gate-dialog { width: 96%; max-width: 140; height: 94%; padding: 0 1;
                              border: thick $accent; background: $surface; }
    GateScreen #gate-title { height: auto; text-style: bold; }
    GateScreen #gate-trouble { height: auto; display: none; background: $warn 15%; margin-bottom: 1; }
    GateScreen #gate-trouble.-shown { display: block; }
    GateScreen #gate-tabs { height: 1; margin-bottom: 1; }
    GateScreen #gate-body { height: 1fr; scrollbar-size-vertical: 1; }
    GateScreen #gate-body > Static { height: auto; width: 100%; }
    GateScreen #gate-body > .gap { margin-top: 1; }
    GateScreen GateChart { margin-top: 1; }
    GateScreen #gate-hint { height: 1; color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "close", id="gates_close"),
        Binding("q,g", "close", "close", show=False, id="gates_close_q"),
        Binding("right,tab", "gate(1)", "next gate", id="gates_next"),
        Binding("left,shift+tab", "gate(-1)", "previous gate", id="gates_prev"),
        Binding("enter", "toggle_query", "query", id="gates_query"),
        Binding("down", "scroll(1)", "scroll", show=False, id="gates_down"),
        Binding("up", "scroll(-1)", "scroll", show=False, id="gates_up"),
        Binding("pagedown", "page(1)", "page", show=False, id="gates_page_down"),
        Binding("pageup", "page(-1)", "page", show=False, id="gates_page_up"),
    ]

    def __init__(self, env: str) -> None:
        super().__init__()
        self.env = env
        self.selected = ""  # the name of the gate shown (kept by name: checks may be reordered)
        self.query_shown = False
        self._shown: tuple[object, ...] | None = None
        self._texts: dict[str, tuple[str, tuple[object, ...]]] = {}
        self._failed = False  # said once that drawing failed

    @property
    def cockpit(self) -> CockpitHost:
        return cast(CockpitHost, self.app)

    def compose(self) -> ComposeResult:
        with Vertical(id="gate-dialog"):
            yield Static("", id="gate-title")
            yield Static("", id="gate-trouble")
            yield Static("", id="gate-tabs")
            with VerticalScroll(id="gate-body", can_focus=False):
                yield Static("", id="gate-head")
                yield GateChart(self._chart_rows(), id="gate-chart")
                yield Static("", id="gate-counts", classes="gap")
                yield Static("", id="gate-table", classes="gap")
                yield Static("", id="gate-query", classes="gap")
            yield Static("", id="gate-hint")

    def on_mount(self) -> None:
        self.follow()
        self.set_interval(WATCH_INTERVAL, self.follow, name="gate-follow")

    def on_resize(self, _event: events.Resize) -> None:
        self.query_one(GateChart).set_rows(self._chart_rows())
        self.follow(force=True)

    def _chart_rows(self) -> int:
        # 4 rows at 24 lines, up to 8 on a tall terminal: the rest goes to the table.
        return max(4, min(8, 4 + (self.app.size.height - 24) // 4))

    # ------------------------------------------------------------------ live

    def view(self) -> EnvView:
        return self.cockpit.session.view(self.env)

    def follow(self, force: bool = False) -> None:
        """Redraw when the environment changed, or a second passed (the retry countdown)."""
        try:
            view = self.view()
            now = self.cockpit.clock()
            r = view.rollout
            key: tuple[object, ...] = (view.seq, r.analysis, view.metrics_error, view.metrics_retry_at)
            key += (int(now), self.selected, self.query_shown)
            if key == self._shown and not force:
                return
            self._shown = key
            self.draw(view, now)
        except Exception:  # a drawing bug must not take the cockpit down mid-release
            log.exception("the gate view could not be drawn")
            if not self._failed:
                self._failed = True
                self.notify("the gate view could not be drawn; details are in the log", severity="error")

    def _checks(self, view: EnvView) -> tuple[CheckView, ...]:
        a = view.rollout.analysis
        return a.checks if a is not None else ()

    def _index(self, checks: tuple[CheckView, ...]) -> int:
        names = [c.name for c in checks]
        return names.index(self.selected) if self.selected in names else 0

    def _width(self) -> int:
        width = self.query_one("#gate-head", Static).size.width
        return width if width > 0 else max(20, self.app.size.width - 8)

    def draw(self, view: EnvView, now: float) -> None:
        a = view.rollout.analysis
        width = self._width()
        self._set("#gate-title", analysis_title(view, a))
        trouble = metrics_trouble(view, now)
        box = self.query_one("#gate-trouble", Static)
        self._set("#gate-trouble", trouble or Content(""))
        box.set_class(trouble is not None, "-shown")
        checks = self._checks(view)
        for part in ("#gate-chart", "#gate-counts", "#gate-table", "#gate-query", "#gate-tabs"):
            self.query_one(part).display = bool(checks)
        hint = "Esc closes"
        if not checks:
            self._set("#gate-head", no_analysis(view, self.cockpit.session.plan))
            self._set("#gate-hint", Content.styled(hint, render.DIM))
            return
        index = self._index(checks)
        check = checks[index]
        self.selected = check.name
        names, styles = (
            (("active", "preview"), ("$blue-stack", "$green-stack"))
            if view.blue_green
            else (("stable", "canary"), ("$stable", "$canary"))
        )
        plan = self.cockpit.session.plan
        defined = plan_check(plan, check.name)
        self._set("#gate-tabs", gate_tabs(checks, index, width))
        self._set("#gate-head", self._head(check, defined, names, styles))
        self.query_one(GateChart).show(check, names, styles)
        self._set("#gate-counts", counts_line(check, defined, width))
        table = measurements_table(check, width, names)
        self._set("#gate-table", Content("\n").join([Content.styled("recent measurements, newest first", "bold"), table]))
        source = self._source()
        self._set("#gate-query", query_block(check, defined, source, self.query_shown, width))
        keys = ["←/→ gates"] if len(checks) > 1 else []
        keys += ["enter query", "↑/↓ scroll", "Esc closes"]
        self._set("#gate-hint", Content.styled(" · ".join(keys), render.DIM))

    def _set(self, part: str, content: Content) -> None:
        # Static.update() relayouts; skip it when nothing changed (the view redraws every second).
        # Content compares by its text alone: a gate highlighted in another tab, or a value
        # turning red, changes only the styles, so those are compared too.
        shown = render.tight(content)
        key = (shown.plain, tuple(shown.spans))
        if self._texts.get(part) != key:
            self._texts[part] = key
            self.query_one(part, Static).update(shown)

    def _source(self) -> str:
        plan = self.cockpit.session.plan
        try:
            return plan.environment(self.env).metrics.source
        except KeyError:
            return "metrics"

    def _head(
        self, check: CheckView, defined: Check | None, names: tuple[str, str], styles: tuple[str, str]
    ) -> Content:
        title = Content.assemble((check.name, "bold"), "  ", verdict(check.outcome))
        every = check.interval or (defined.interval if defined else 0.0)
        cadence = f"   measured every {format_duration(every)}" if every else ""
        lines = [
            Content.assemble(title, (cadence, render.DIM)),
            labelled("condition", (check.condition, "bold"), (f"   {names[1]} {render.fmt_condition(check.condition, check.unit)}", render.DIM)),
            *value_line(check, names, styles),
        ]
        return Content("\n").join(lines)

    # ------------------------------------------------------------------ keys

    def action_close(self) -> None:
        self.dismiss(None)

    def action_gate(self, step: int) -> None:
        checks = self._checks(self.view())
        if len(checks) < 2:
            return
        self.selected = checks[(self._index(checks) + step) % len(checks)].name
        self.follow(force=True)

    def action_toggle_query(self) -> None:
        self.query_shown = not self.query_shown
        self.follow(force=True)

    def action_scroll(self, lines: int) -> None:
        body = self.query_one("#gate-body", VerticalScroll)
        body.scroll_relative(y=lines, animate=False)

    def action_page(self, direction: int) -> None:
        body = self.query_one("#gate-body", VerticalScroll)
        body.scroll_relative(y=direction * max(1, body.size.height - 2), animate=False)
