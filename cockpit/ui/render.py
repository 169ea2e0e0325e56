"""Pure functions from the engine's views to styled text for the environment columns.

Styles are Textual style strings naming theme variables (``$stable``, ``$fail`` ...),
resolved when painted, so a theme change recolours everything without re-rendering
here. Keeping this free of widgets makes every piece testable on its own.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

from textual.content import Content, Span

from cockpit.engine.state import Activity, Cause, CheckView, Measurement, Outcome, Phase
from cockpit.engine.views import EnvView
from cockpit.model import MetricsWindow, TrackMetrics, TrackStatus
from cockpit.plan.models import Plan
from cockpit.ui import migration_text

PHASE_STYLE = {
    Phase.HEALTHY: "$phase-healthy bold",
    Phase.PROGRESSING: "$phase-progressing bold",
    Phase.PAUSED: "$phase-paused bold",
    Phase.ABORTED: "$phase-aborted bold",
    Phase.DEGRADED: "$phase-degraded bold reverse",
}
# One cell wide in every terminal and in tmux: none of these is an emoji code point
# (▶ U+25B6, ⏸ U+23F8 and ✔ U+2714 are, and some terminals draw them two cells wide
# while tmux counts one - the rest of the line then shifts and leaves stray glyphs).
# ✓ and ✗ are East-Asian "neutral" (always narrow); ●, ‖ and ▲ are "ambiguous", narrow
# in tmux unless a CJK locale asks otherwise - as is every box-drawing line here.
PHASE_GLYPH = {
    Phase.HEALTHY: "✓",
    Phase.PROGRESSING: "●",
    Phase.PAUSED: "‖",
    Phase.ABORTED: "✗",
    Phase.DEGRADED: "▲",
}
# Symbol + colour for each outcome: colour alone must never carry the meaning.
OUTCOME_MARK = {
    Outcome.RUNNING: ("…", "$phase-progressing"),
    Outcome.SUCCESSFUL: ("✓", "$ok"),
    Outcome.FAILED: ("✗", "$fail bold"),
    Outcome.INCONCLUSIVE: ("?", "$warn bold"),
    Outcome.NO_DATA: ("∅", "$nodata"),
    Outcome.ERROR: ("!", "$warn"),
}
OUTCOME_TEXT = {Outcome.NO_DATA: "no data", Outcome.ERROR: "error"}
OPS = {">=": "≥", "<=": "≤", "==": "=", "!=": "≠", ">": ">", "<": "<"}
# Textual resolves "$text-muted" in content styles to plain white; a blend works in every theme.
DIM = "$foreground 55%"


# Plain text that must stay its own run (see ``tight``); the colour text has anyway.
TEXT = "$foreground"


def tight(content: Content) -> Content:
    """``content`` with every style run starting after its leading spaces, so spaces form
    runs of their own. Drawn in a terminal nothing changes; but an SVG screenshot draws
    each run as one text element, and rsvg (which renders them to PNG) drops the leading
    spaces of an element: "Failed", "   measured" came out as "Failedmeasured". Text
    meant to look plain is styled ``TEXT`` so that it is a run of its own too."""
    plain = content.plain
    spans = []
    for span in content.spans:
        start = span.start
        while start < span.end and plain[start] in " \n":
            start += 1
        if start < span.end:
            spans.append(Span(start, span.end, span.style))
    return Content(plain, spans)


# --------------------------------------------------------------------------- numbers


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "no data"
    if unit == "%":
        return f"{value:.1f}%" if value < 99.95 or value >= 100 else f"{value:.2f}%"
    if unit == "ms":
        return f"{value:.0f}ms"
    if unit == "req/s":
        return f"{value:.1f}/s"
    return f"{value:.3g}{unit}"


def fmt_condition(condition: str, unit: str = "") -> str:
    """``">= 95"`` -> ``"≥ 95%"``; a relative one as written, its operators readable:
    ``"<= stable * 1.2 + 10ms"`` -> ``"≤ stable × 1.2 + 10ms"``."""
    op, _, rest = condition.strip().partition(" ")
    rest = rest.strip()
    if _NUMBER.fullmatch(rest):
        return f"{OPS.get(op, op)} {rest}{unit if unit in ('%', 'ms') else ''}"
    return f"{OPS.get(op, op)} {rest.replace('*', '×')}"


def countdown(until: float, now: float) -> str:
    seconds = max(0, math.ceil(until - now))
    return f"{seconds}s" if seconds < 120 else f"{seconds // 60}m{seconds % 60:02d}s"


# --------------------------------------------------------------------------- thresholds


@dataclass(frozen=True)
class Limit:
    """A threshold for one live metric, in its display units."""

    op: str  # ">=" or "<=" ...
    value: float

    def breached(self, measured: float | None) -> bool:
        if measured is None:
            return False
        return not {
            ">=": measured >= self.value,
            "<=": measured <= self.value,
            ">": measured > self.value,
            "<": measured < self.value,
            "==": measured == self.value,
            "!=": measured != self.value,
        }[self.op]

    def text(self, unit: str) -> str:
        number = f"{self.value:g}"
        return f"{OPS.get(self.op, self.op)}{number}{unit if unit in ('%', 'ms') else ''}"


# --------------------------------------------------------------------------- gate limits

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_NUM = r"(\d+(?:\.\d+)?)"
# "<= stable * 1.2 + 10ms", "<= stable + 1%", ">= 0.9 * stable", optionally "canary <= ...".
_RELATIVE = re.compile(
    rf"^\s*(?:canary\s*)?(>=|<=|==|!=|>|<)\s*(?:{_NUM}\s*[*×]\s*)?stable\b(?:\s*[*×]\s*{_NUM})?"
    rf"(?:\s*([+-])\s*{_NUM}\s*(ms|s|%)?)?\s*$"
)


@dataclass(frozen=True)
class Relative:
    """A condition relative to stable: the limit is ``stable × factor + offset`` (the
    offset in the check's display unit), computed anew from each measurement's stable."""

    op: str
    factor: float = 1.0
    offset: float = 0.0

    def limit(self, stable: float) -> float:
        return stable * self.factor + self.offset

    def explain(self, stable: float) -> str:
        """``stable 120 × 1.2 + 10``: how the limit was computed, in numbers."""
        text = f"stable {fmt_number(stable)}"
        if self.factor != 1.0:
            text += f" × {self.factor:g}"
        if self.offset:
            text += f" {'+' if self.offset > 0 else '−'} {abs(self.offset):g}"
        return text


def relative_condition(condition: str, unit: str) -> Relative | None:
    """The relative form of ``condition``, or ``None`` when it is absolute or unreadable."""
    match = _RELATIVE.match(condition)
    if not match:
        return None
    op, before, after, sign, offset, offset_unit = match.groups()
    factor = float(before or 1.0) * float(after or 1.0)
    value = float(offset or 0.0)
    if offset_unit == "s" and unit == "ms":
        value *= 1000.0
    return Relative(op, factor, -value if sign == "-" else value)


def absolute_condition(condition: str) -> Limit | None:
    """``">= 95"`` as a :class:`Limit`; ``None`` for a relative or unreadable condition."""
    op, _, rest = condition.strip().partition(" ")
    if op not in OPS or not _NUMBER.fullmatch(rest.strip()):
        return None
    return Limit(op, float(rest))


def condition_op(condition: str) -> str | None:
    """The comparison of ``condition`` (``<=``...), whatever its right-hand side."""
    match = re.match(r"^\s*(?:canary\s*)?(>=|<=|==|!=|>|<)", condition)
    return match.group(1) if match else None


def limit_of(check: CheckView, m: Measurement | None) -> float | None:
    """The threshold ``m`` was judged against: the engine's ``Measurement.limit`` when it
    says, else the absolute threshold, else the relative one computed from ``m``'s stable."""
    if m is not None and m.limit is not None:
        return m.limit
    fixed = absolute_condition(check.condition)
    if fixed is not None:
        return fixed.value
    rel = relative_condition(check.condition, check.unit)
    if rel is not None and m is not None and m.stable_value is not None:
        return rel.limit(m.stable_value)
    return None


def fmt_gap(value: float, unit: str) -> str:
    """A distance between a value and its limit: ``32ms``, ``0.8 pts`` (of a percentage)."""
    if unit == "%":
        return f"{fmt_number(value)} pts"
    return fmt_value(value, unit)


def against_limit(op: str, value: float, limit: float, unit: str) -> tuple[bool, str]:
    """Whether ``value`` holds against ``limit`` and, in words, by how much:
    ``(False, "over by 32ms")``, ``(True, "68ms to spare")``."""
    holds = not Limit(op, limit).breached(value)
    gap = abs(value - limit)
    if op in ("==", "!="):
        return holds, ("equal" if value == limit else f"off by {fmt_gap(gap, unit)}")
    if holds:
        return True, (f"{fmt_gap(gap, unit)} to spare" if gap else "right on the limit")
    return False, f"{'over' if op in ('<=', '<') else 'under'} by {fmt_gap(gap, unit)}"


def live_limits(plan: Plan) -> dict[str, Limit]:
    """Thresholds the sparklines show, taken from the plan's built-in checks.

    A success-rate check ``>= 95`` is shown on the error-rate line as ``<= 5``: the
    screen plots errors, which is what an engineer looks for at 2 a.m.
    """
    limits: dict[str, Limit] = {}
    flipped = {">=": "<=", ">": "<", "<=": ">=", "<": ">", "==": "==", "!=": "!="}
    for check in plan.analysis.checks:
        cond = check.success
        if cond.relative:
            continue  # its limit moves with stable: the gate view draws it per measurement
        match check.metric:
            case "success-rate":
                limits.setdefault("err", Limit(flipped[cond.op], round(100.0 - cond.threshold, 6)))
            case "error-rate":
                limits["err"] = Limit(cond.op, cond.threshold)
            case "latency-p99":
                limits["p99"] = Limit(cond.op, cond.threshold)
            case "request-rate":
                limits["rate"] = Limit(cond.op, cond.threshold)
    return limits


# --------------------------------------------------------------------------- metric series

METRICS = (  # key, label, unit
    ("rate", "req/s", "req/s"),
    ("err", "err %", "%"),
    ("p99", "p99", "ms"),
)


def metric_of(key: str, track: TrackMetrics) -> float | None:
    if key == "rate":
        return track.request_rate if track.has_data else None
    if key == "err":
        return None if track.error_rate is None or not track.has_data else track.error_rate * 100.0
    return track.p99_ms if track.has_data else None


def series(windows: Sequence[MetricsWindow], key: str, canary: bool, points: int) -> list[float]:
    """The last ``points`` measured values of one metric of one track.

    Windows without data are left out rather than drawn as zero: a sparkline must
    not show a healthy-looking flat line where nothing was measured.
    """
    out: list[float] = []
    for window in windows[-points:]:
        value = metric_of(key, window.canary if canary else window.stable)
        if value is not None:
            out.append(value)
    # Textual draws a single value as a full-height block, which reads as "maxed out"
    # (a fresh canary's 0 % errors looked like a wall of errors): wait for a trend.
    return out if len(out) >= 2 else []


def series_with_gaps(
    windows: Sequence[MetricsWindow], key: str, canary: bool, points: int
) -> list[float | None]:
    """The last ``points`` windows of one metric of one track, ``None`` where nothing was
    measured: the zero-based chart draws a gap as a dot, never as a healthy zero."""
    return [metric_of(key, w.canary if canary else w.stable) for w in windows[-points:]]


def fmt_axis(top: float, unit: str) -> str:
    """The top of a chart's scale, short: ``300ms``, ``6%``, ``50/s``."""
    number = f"{top:g}" if top >= 1 else f"{top:.2g}"
    return {"%": f"{number}%", "ms": f"{number}ms", "req/s": f"{number}/s"}.get(unit, number)


def latest(windows: Sequence[MetricsWindow], key: str, canary: bool) -> float | None:
    if not windows:
        return None
    return metric_of(key, windows[-1].canary if canary else windows[-1].stable)


# --------------------------------------------------------------------------- column parts


def track_line(
    label: str, style: str, version: str | None, status: TrackStatus | None, note: str = ""
) -> Content:
    parts: list[str | tuple[str, str]] = [(label.ljust(max(7, len(label) + 1)), f"{style} bold")]
    if version is None:
        parts.append(("—", DIM))
        if note:
            parts.append((f"  {note}", DIM))
        return Content.assemble(*parts)
    parts.append((f"{version:<9}", style))
    if status is not None and status.version == version:
        mark, mark_style = ("✓", "$ok") if status.healthy else ("✗", "$fail bold")
        parts += [(f" {status.replicas_ready}/{status.replicas_desired} ready ", ""), (mark, mark_style)]
    elif note:
        parts.append((f" {note}", DIM))
    return Content.assemble(*parts)


def versions(view: EnvView) -> Content:
    r = view.rollout
    status = view.backend
    canary_note = ""
    if r.canary_version is None and r.activity is Activity.DEPLOYING and r.target_version:
        canary_note = f"deploying {r.target_version}…"
    if view.blue_green:
        # The stable track serves every user (active, blue); the canary track is the
        # new stack beside it at weight 0 (preview, green) until the switch.
        active = track_line("active", "$blue-stack", r.stable_version, status.stable if status else None)
        preview = track_line(
            "preview", "$green-stack", r.canary_version, status.canary if status else None, canary_note
        )
        return Content("\n").join([active, preview])
    stable = track_line("stable", "$stable", r.stable_version, status.stable if status else None)
    canary = track_line("canary", "$canary", r.canary_version, status.canary if status else None, canary_note)
    return Content("\n").join([stable, canary])


def switch(view: EnvView) -> Content:
    """The blue-green switch, where a canary card has its weight bar: which stack the
    users are on, and what the preview waits for."""
    r = view.rollout
    parts: list[str | tuple[str, str]] = [("switch  ", "bold"), ("users → ", DIM)]
    if r.weight >= 100 and r.canary_version:
        parts.append((f"preview {r.canary_version}", "$green-stack bold"))
    else:
        parts.append((f"active {r.stable_version}", "$blue-stack bold"))
    if r.canary_version is not None and r.weight < 100:
        parts.append(("  · preview: testers only, promote (p) switches", DIM))
    return Content.assemble(*parts)


def phase(view: EnvView, now: float) -> Content:
    r = view.rollout
    parts: list[str | tuple[str, str]] = [
        (f"{PHASE_GLYPH[r.phase]} {r.phase.value}", PHASE_STYLE[r.phase]),
    ]
    if r.step_label != "-":
        parts.append((f"  step {r.step_label}", "bold"))
        if r.phase is not Phase.HEALTHY and 0 <= r.step_index < len(view.steps):
            parts.append((f" {view.steps[r.step_index]}", ""))
    waiting = r.activity is Activity.WAITING and r.phase is Phase.PAUSED
    if r.paused_until is not None and r.phase is Phase.PAUSED:
        # "Paused · pausing · 5s left" said the same thing three times: the phase says
        # paused, the countdown says for how long.
        parts.append((f"  · {countdown(r.paused_until, now)} left", "$warn"))
    elif waiting:
        parts.append(("  · switch with promote (p)" if view.blue_green else "  · until promoted (p)", "$warn"))
    elif r.activity is not Activity.IDLE:
        parts.append((f"  · {r.activity.value}", "$accent"))
    if view.backend_error is not None:
        parts.append(("  (last known)", DIM))  # the backend cannot confirm it right now
    head = Content.assemble(*parts)
    reason = r.reason
    step_prefix = f"step {r.step_label}: "
    if reason.startswith(step_prefix):
        # "step 2/6: pause 5s" repeats the line above; keep only what it adds.
        rest = reason.removeprefix(step_prefix)
        shown_step = view.steps[r.step_index] if 0 <= r.step_index < len(view.steps) else ""
        # "paused until promoted" / "pause 5s" is what the head line says already.
        said = rest == shown_step or (rest == "paused until promoted" and shown_step == "pause")
        reason = "" if said else rest
    failed = r.analysis is not None and r.analysis.outcome is Outcome.FAILED and r.analysis.checks
    if r.phase is Phase.ABORTED and r.cause is Cause.ANALYSIS_FAILED and failed:
        # The engine's reason repeats every failed value, which the analysis lines below
        # show next to their limits; on a short screen that pushed them out of sight.
        track = "preview" if view.blue_green else "canary"
        where = (
            f"traffic on stable {r.stable_version}, {track} removed"
            if r.canary_version is None
            else "sending traffic back to stable…"
        )
        reason = f"analysis failed (✗ below); {where}"
    lines = [head]
    if reason:  # nothing more to say is said with no line at all: cards are short at 80x24
        lines.append(Content.styled(reason, DIM if r.phase is Phase.HEALTHY else ""))
    if r.warning:  # what the last status poll saw wrong (a replica down), shown at once
        lines.append(Content.styled(f"⚠ {r.warning}", "$warn bold"))
    return Content("\n").join(lines)


def needs(check: CheckView, explain: bool = True) -> str:
    """``(needs ≥ 95%)``: the limit as a requirement, so the line never reads as a claim.

    A condition relative to stable shows the limit it gave at the last measurement and,
    with ``explain``, how: ``(needs ≤ 150ms: stable × 1.2 + 10ms)``."""
    written = fmt_condition(check.condition, check.unit)
    if absolute_condition(check.condition) is not None:
        return f"(needs {written})"
    op, limit = condition_op(check.condition), limit_of(check, check.last)
    if op is None or limit is None:
        return f"(needs {written})"  # nothing measured yet: the rule as written
    computed = f"{OPS.get(op, op)} {fmt_value(limit, check.unit)}"
    rule = written.removeprefix(OPS.get(op, op)).strip()
    return f"(needs {computed}: {rule})" if explain else f"(needs {computed})"


def check_line(check: CheckView, width: int | None = None, with_stable: bool = True) -> Content:
    """``✗ success-rate 87.0% (needs ≥ 95%)  1/3  stable 99.8%``: the measured value
    right next to what it must be, progress, the no-data and error counts, then stable's
    value for comparison when ``width`` leaves room for it (``with_stable`` off: the line
    of recent values says it).

    Short of room, a relative condition's rule (``: stable × 1.2 + 10ms``) goes first,
    then stable's value; the counts are never dropped: they move to a second line,
    indented, rather than being cut by a wrap in the middle."""
    heads = [_check_head(check, needs(check)), _check_head(check, needs(check, explain=False))]
    if heads[0].cell_length == heads[1].cell_length:
        heads = heads[:1]
    counts = _check_counts(check)
    stable = stable_text(check) if with_stable else None
    tails = [[counts, stable], [counts]] if stable is not None else [[counts]]
    for tail in tails:
        for head in heads:
            line = Content("  ").join([head, *(part for part in tail if part is not None and part.plain)])
            if width is None or line.cell_length <= width:
                return line
    head = next((h for h in heads if width is None or h.cell_length <= width), heads[-1])
    if not counts.plain:
        return head
    second = Content.assemble("    ", counts)
    if stable is not None and width is not None and second.cell_length + 2 + stable.cell_length <= width:
        second = Content.assemble(second, "  ", stable)
    return Content("\n").join([head, second])


def _check_head(check: CheckView, requirement: str) -> Content:
    mark, style = OUTCOME_MARK[check.outcome]
    last = check.last
    parts: list[str | tuple[str, str]] = [(f"{mark} ", style), (f"{check.name} ", "")]
    if last is None:
        parts.append(("waiting", DIM))
    elif last.outcome in (Outcome.NO_DATA, Outcome.ERROR):
        parts.append((OUTCOME_TEXT[last.outcome], OUTCOME_MARK[last.outcome][1]))
    else:
        value_style = "$fail bold" if last.outcome is Outcome.FAILED else "bold"
        parts.append((fmt_value(last.value, check.unit), value_style))
    parts.append((f" {requirement}", ""))
    parts.append((f"  {check.taken}/{check.count}", DIM))
    return Content.assemble(*parts)


def _check_counts(check: CheckView) -> Content:
    """``no data ×1  read errors ×2``; empty when both are 0."""
    parts: list[Content] = []
    if check.no_data:
        # Windows without a single canary request: counted, never passed or failed.
        parts.append(Content.styled(f"no data ×{check.no_data}", "$nodata"))
    if check.errors:
        parts.append(Content.styled(f"read errors ×{check.errors}", "$warn"))
    return Content("  ").join(parts)


def stable_text(check: CheckView) -> Content | None:
    """``stable 99.8%``: the same metric on stable at the last measurement."""
    last = check.last
    if last is None or last.stable_value is None:
        return None
    return Content.styled(f"stable {fmt_value(last.stable_value, check.unit)}", "$stable")


def recent_line(check: CheckView, width: int) -> Content:
    """The last measurements of one check, oldest first, each with its verdict:
    ``  recent ✓99.9 ✓99.8 ✗87.0 ∅ no data``. As many as fit in ``width``."""
    cells: list[Content] = []
    for m in check.measurements:
        mark, style = OUTCOME_MARK[m.outcome]
        if m.value is None:
            text = "∅" if m.outcome is Outcome.NO_DATA else "!"
        else:
            text = f"{mark}{fmt_number(m.value)}"
        cells.append(Content.styled(text, style))
    stable = stable_text(check)
    head = Content.assemble("  ", stable, ("  recent ", DIM)) if stable else Content.styled("  recent ", DIM)
    room = width - head.cell_length
    shown: list[Content] = []
    used = 0
    for cell in reversed(cells):  # the newest matter most: keep them when space is short
        if used + cell.cell_length + 1 > room:
            break
        shown.insert(0, cell)
        used += cell.cell_length + 1
    if not shown:
        return Content.assemble(head, ("waiting for the first measurement", DIM))
    legend = "  ∅ = no data" if any(m.value is None for m in check.measurements[-len(shown) :]) else ""
    line = Content.assemble(head, Content(" ").join(shown))
    if legend and line.cell_length + len(legend) <= width:
        line = Content.assemble(line, (legend, DIM))
    return line


def fmt_number(value: float) -> str:
    """A measured value without its unit, short: 99.9, 420, 0.35."""
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 1:
        return f"{value:.1f}"
    return f"{value:.2g}"


def analysis(view: EnvView, width: int | None = None, recent: bool = False) -> Content:
    """The verdict and one line per check (fitted to ``width``); with ``recent``, each
    check's recent measurements under it."""
    a = view.rollout.analysis
    if a is None:
        return Content.assemble(("analysis ", "bold"), ("— none yet", DIM))
    mark, style = OUTCOME_MARK[a.outcome]
    head = Content.assemble(
        ("analysis ", "bold"),
        (f"step {a.step + 1} ", DIM),
        (f"{mark} {a.outcome.value}", style),
        # Before a blue-green switch the preview has no users: what is measured is the
        # testers' traffic sent to it.
        ("  on preview traffic" if view.blue_green else "", DIM),
    )
    # The verdict's message is already the phase's reason; the lines say it per check.
    lines = [head]
    for check in a.checks:
        if recent:  # stable's value moves to the line of recent values
            lines.append(check_line(check, width, with_stable=False))
            lines.append(recent_line(check, width or 80))
        else:
            lines.append(check_line(check, width))
    return Content("\n").join(lines)


def details(view: EnvView) -> Content:
    url = view.url
    lines = [
        Content.assemble(("migrations ", "bold"), migration_text.summary(view)),
        Content.assemble(("url ", "bold"), (url, "underline") if url else ("—", DIM)),
    ]
    if view.blue_green and view.rollout.canary_version is not None:
        preview = view.preview_url
        lines.append(
            Content.assemble(
                ("preview ", "bold"),
                (preview, "underline $green-stack") if preview else ("— (the backend gives no address)", DIM),
            )
        )
    return Content("\n").join(lines)


def trouble(view: EnvView, now: float) -> Content | None:
    """The backend-down / metrics-down banner, or None when all is well."""
    lines = []
    if view.backend_error is not None:
        retry = f" · retry in {countdown(view.retry_at, now)}" if view.retry_at else ""
        # Never reached since start: "not connected"; reached before and lost: "backend down".
        state = "not connected" if view.backend is None else "backend down"
        lines.append(
            Content.assemble(
                (f"✗ {state}", "$fail bold"), (retry, "$warn"), ("\n" + view.backend_error, "$fail")
            )
        )
    if view.metrics_error is not None:
        retry = f" (retry in {countdown(view.metrics_retry_at, now)})" if view.metrics_retry_at else ""
        lines.append(Content.assemble(("! metrics: ", "$warn bold"), (view.metrics_error + retry, "$warn")))
    return Content("\n").join(lines) if lines else None


def clock_text(now: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(now))
