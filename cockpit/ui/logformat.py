"""Log lines -> coloured segments, JSON shown readably.

``{"ts":..,"level":"info","msg":"request","path":"/api/orders","status":200,"duration_ms":3.2}``
is shown as ``12:01:02 INFO  request /api/orders 200 3ms``: an engineer reads the
request, not the JSON. Lines are formatted only when they scroll into view (the
view caches them by absolute line number), so this may be a little generous.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from textual.color import Color

from cockpit.model import LogLine, Track

SOURCE_WIDTH = 15  # "canary 1.12.0 #1"
ENV_WIDTH = 10
LEVELS = {
    "error": "error",
    "err": "error",
    "critical": "error",
    "fatal": "error",
    "exception": "error",
    "warning": "warn",
    "warn": "warn",
    "info": "info",
    "debug": "debug",
    "trace": "debug",
}
LEVEL_LABEL = {"error": "ERROR", "warn": "WARN ", "info": "INFO ", "debug": "DEBUG", "": "     "}
TEXT_LEVEL = re.compile(r"\b(ERROR|FATAL|CRITICAL|Traceback|WARN(?:ING)?)\b")
SHOWN_ELSEWHERE = frozenset(
    {"ts", "time", "timestamp", "level", "levelname", "severity", "msg", "message", "version"}
)
REQUEST_KEYS = ("method", "path", "status", "duration_ms")
# Escape sequences and control characters from a process must not reach the terminal.
CONTROL = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class LogStyles:
    base: Style
    time: Style
    text: Style
    dim: Style
    stable: Style
    canary: Style
    router: Style
    warn: Style
    error: Style
    envs: tuple[Style, ...]
    match: Style  # a filter match inside a line
    current: Style  # the match n/N moved to

    @classmethod
    def from_variables(cls, variables: dict[str, str], base: Style | None = None) -> LogStyles:
        """Styles from the theme's variables, on top of the view's own ``base`` style
        (its background), so every segment paints the pane's background."""

        def colour(name: str, fallback: str = "#c0c0c0") -> Style:
            try:
                parsed = Color.parse(variables.get(name, fallback))
            except Exception:  # a theme value Textual accepted but rich cannot use
                parsed = Color.parse(fallback)
            return Style(color=parsed.rich_color)

        bg = Style(bgcolor=base.bgcolor) if base is not None and base.bgcolor else Style()
        text = Style(color=base.color) if base is not None and base.color else colour("foreground", "#d0d0d0")
        return cls(
            base=bg + text,
            time=bg + colour("log-time", "#808080"),
            text=bg + text,
            dim=bg + colour("log-time", "#808080"),
            stable=bg + colour("stable"),
            canary=bg + colour("canary"),
            router=bg + colour("router"),
            warn=bg + colour("warn") + Style(bold=True),
            error=bg + colour("fail") + Style(bold=True),
            envs=tuple(bg + colour(f"env-{i}") for i in range(1, 7)),
            match=_on(colour("accent", "#ffb000"), Style(bold=True, underline=True)),
            current=Style(reverse=True, bold=True),
        )


def _on(colour: Style, extra: Style) -> Style:
    """The theme's ``colour`` as a background under dark text: a match reads as marked in
    every theme, without depending on the pane's own background."""
    return Style(bgcolor=colour.color, color="black") + extra


def highlight(segments: list[Segment], pattern: re.Pattern[str], style: Style) -> list[Segment]:
    """``segments`` with every non-empty match of ``pattern`` in their joined text restyled
    (``style`` laid over the segment's own). The text is unchanged, only cut at the
    matches' edges."""
    plain = "".join(seg.text for seg in segments)
    spans = [(m.start(), m.end()) for m in pattern.finditer(plain) if m.end() > m.start()]
    if not spans:
        return segments
    out: list[Segment] = []
    pos = 0  # character offset of the current segment's start
    span = 0
    for seg in segments:
        text, seg_style = seg.text, seg.style
        start, end = pos, pos + len(text)
        cut = start
        while span < len(spans) and spans[span][0] < end:
            a, b = max(spans[span][0], cut), min(spans[span][1], end)
            if a > cut:
                out.append(Segment(text[cut - start : a - start], seg_style))
            if b > a:
                out.append(Segment(text[a - start : b - start], (seg_style or Style()) + style))
            cut = max(cut, b)
            if spans[span][1] <= end:
                span += 1
            else:
                break
        if cut < end:
            out.append(Segment(text[cut - start :], seg_style))
        pos = end
    return out


def readable(line: LogLine) -> tuple[float, str, str]:
    """(timestamp, level, message) of a line, decoding a JSON object if it is one."""
    text = line.text
    if text.startswith("{") and text.endswith("}"):
        try:
            record = json.loads(text)
        except ValueError:
            record = None
        if isinstance(record, dict):
            return _from_record(record, line.ts)
    match = TEXT_LEVEL.search(text)
    level = "" if match is None else ("warn" if match.group(1).startswith("WARN") else "error")
    return line.ts, level, text


def _from_record(record: dict[str, object], fallback_ts: float) -> tuple[float, str, str]:
    ts = record.get("ts", record.get("time", fallback_ts))
    if not isinstance(ts, int | float):
        ts = fallback_ts
    raw_level = str(record.get("level", record.get("levelname", record.get("severity", "")))).lower()
    level = LEVELS.get(raw_level, "")
    msg = str(record.get("msg", record.get("message", "")))
    words: list[str] = []
    skip = set(SHOWN_ELSEWHERE)
    if "path" in record and ("status" in record or msg == "request"):
        words.append(str(record.get("method", msg or "request")))
        words.append(str(record["path"]))
        if "status" in record:
            words.append(str(record["status"]))
        duration = record.get("duration_ms")
        if isinstance(duration, int | float):
            words.append(f"{duration:.0f}ms")
        skip.update(REQUEST_KEYS)
    elif msg:
        words.append(msg)
    words += [f"{k}={_short(v)}" for k, v in record.items() if k not in skip]
    return float(ts), level, " ".join(words)


def _short(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return text if len(text) <= 80 else text[:77] + "..."


class LogFormatter:
    def __init__(
        self, styles: LogStyles, env_index: dict[str, int], show_env: bool, show_time: bool = True
    ) -> None:
        self.styles = styles
        self.env_index = env_index
        self.show_env = show_env
        self.show_time = show_time

    def segments(self, line: LogLine) -> list[Segment]:
        s = self.styles
        ts, level, message = readable(line)
        out = [Segment(time.strftime("%H:%M:%S ", time.localtime(ts)), s.time)] if self.show_time else []
        if self.show_env:
            env_style = s.envs[self.env_index.get(line.env, 0) % len(s.envs)]
            out.append(Segment(f"{line.env[:ENV_WIDTH]:<{ENV_WIDTH}} ", env_style))
        track_style = (
            s.stable if line.track is Track.STABLE else s.canary if line.track is Track.CANARY else s.router
        )
        out.append(Segment(f"{line.source[:SOURCE_WIDTH]:<{SOURCE_WIDTH}} ", track_style))
        level_style = s.error if level == "error" else s.warn if level == "warn" else s.dim
        out.append(Segment(LEVEL_LABEL.get(level, "     ") + " ", level_style))
        text_style = s.error if level == "error" else s.warn if level == "warn" else s.text
        out.append(Segment(CONTROL.sub("", message.replace("\t", "    ")), text_style))
        return out
