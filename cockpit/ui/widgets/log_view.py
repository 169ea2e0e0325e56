"""A line-API view over the engine's ring buffers.

Nothing is copied into the widget: it keeps an *index* of absolute line numbers
(``number * 8 + source``) into the :class:`LogBuffer` rings, and renders only the
rows on screen, caching each rendered line by its absolute number. New lines are
indexed in one batch per refresh (``flush``), so a flood costs one repaint per
refresh however many lines arrived. Memory is bounded by the index length and the
render cache, both capped.

Follow: the view sticks to the end while it is scrolled to the end; scrolled up, it
stays on the same lines (even as old ones fall off the ring) and counts the lines
arriving below.
"""

from __future__ import annotations

import heapq
import re
from collections import deque
from dataclasses import dataclass

from rich.segment import Segment
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from cockpit.engine.logbuffer import LogBuffer
from cockpit.model import LogLine
from cockpit.ui.logformat import LogFormatter, LogStyles

K = 8  # index keys are number * K + source; a plan has at most 6 environments
CACHE_LIMIT = 1000  # rendered lines kept per view; a screen shows well under 100


@dataclass(frozen=True)
class LogFilter:
    """Substring (case-insensitive unless it has capitals), or a regex written ``/re/``."""

    text: str
    pattern: re.Pattern[str]

    @classmethod
    def parse(cls, text: str) -> LogFilter | None:
        """``None`` for an empty filter; raises ValueError for a bad regex."""
        if not text:
            return None
        if len(text) >= 2 and text.startswith("/") and text.endswith("/"):
            try:
                return cls(text, re.compile(text[1:-1]))
            except re.error as err:
                raise ValueError(f"bad regex {text}: {err}") from None
        flags = 0 if any(c.isupper() for c in text) else re.IGNORECASE
        return cls(text, re.compile(re.escape(text), flags))

    def matches(self, line: LogLine) -> bool:
        return self.pattern.search(line.text) is not None or self.pattern.search(line.source) is not None


class LogView(ScrollView, can_focus=False):
    DEFAULT_CSS = """
    /* The horizontal scrollbar is always shown: if it appeared with the first long
       line, the view would shrink by a row and silently stop following the tail. */
    LogView { height: 1fr; width: 1fr; background: $surface; overflow-x: scroll; overflow-y: scroll;
              scrollbar-size-vertical: 1; scrollbar-size-horizontal: 1;
              scrollbar-background: $surface; scrollbar-color: $foreground 20%; }
    """

    def __init__(
        self,
        buffers: dict[str, LogBuffer],
        sources: list[str],
        env_index: dict[str, int],
        log_filter: LogFilter | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.buffers = buffers
        self.env_index = env_index
        self.filter = log_filter
        self.new_lines = 0  # arrived while scrolled up
        self.missed = 0  # fell off a ring before this view indexed them (counted once)
        self.indexed = 0  # lines ever indexed (shown or scrolled past)
        self._styles: LogStyles | None = None
        self._formatter: LogFormatter | None = None
        self._cache: dict[int, Strip] = {}
        self._max_width = 0
        self.set_sources(sources)

    # ------------------------------------------------------------------ sources and filter

    def set_sources(self, sources: list[str]) -> None:
        """Show ``sources`` (environment names) from what their rings still hold."""
        self.sources = list(sources)
        self._rings = [self.buffers[s] for s in self.sources]
        self._scanned = [ring.first for ring in self._rings]
        self._index: deque[int] = deque(maxlen=min((r.capacity for r in self._rings), default=1))
        self._oldest: list[int | None] = [None] * len(self._rings)
        self._formatter = None
        self._cache.clear()
        self.new_lines = 0
        self._set_virtual_size(Size(0, 0))
        self.flush(follow=True)
        self.refresh()  # even when the new sources hold nothing: the old lines must go

    def set_filter(self, log_filter: LogFilter | None) -> None:
        if log_filter == self.filter:
            return
        self.filter = log_filter
        self.set_sources(self.sources)  # re-index what the rings hold under the new filter

    def theme_changed(self) -> None:
        self._styles = None
        self._formatter = None
        self._cache.clear()
        self.refresh()

    @property
    def dropped(self) -> int:
        return sum(ring.dropped for ring in self._rings)

    @property
    def line_count(self) -> int:
        return len(self._index)

    @property
    def following(self) -> bool:
        return self.scroll_y >= self.max_scroll_y

    # ------------------------------------------------------------------ indexing

    def _new_keys(self) -> list[int] | range:
        """Index keys of the lines that arrived since the last flush, in display order."""
        batches: list[list[tuple[float, int]]] = []
        plain: list[int] | range | None = None
        for source, ring in enumerate(self._rings):
            start = self._scanned[source]
            if start < ring.first:
                self.missed += ring.first - start
                start = ring.first
            end = ring.end
            self._scanned[source] = end
            if start >= end:
                continue
            if self.filter is None and len(self._rings) == 1:
                # The hot path: one unfiltered source needs no line objects at all.
                plain = range(start * K + source, end * K + source, K)
                continue
            lines = ring.since(start)
            if self.filter is not None:
                matches = self.filter.matches
                picked = [
                    (line.ts, (start + i) * K + source) for i, line in enumerate(lines) if matches(line)
                ]
            else:
                picked = [(line.ts, (start + i) * K + source) for i, line in enumerate(lines)]
            if picked:
                batches.append(picked)
                if self._oldest[source] is None:
                    self._oldest[source] = picked[0][1] // K
        if plain is not None:
            return plain
        if not batches:
            return []
        if len(batches) == 1:
            return [key for _, key in batches[0]]
        # Merge the sources' batches by time; each batch is already in time order.
        return [key for _, key in heapq.merge(*batches)]

    def flush(self, follow: bool | None = None) -> int:
        """Index what arrived; returns the number of lines added to the view."""
        at_end = self.following if follow is None else follow
        index = self._index
        before = len(index)
        keys = self._new_keys()
        index.extend(keys)
        added = len(keys)
        self.indexed += added
        removed = before + added - len(index)
        removed += self._prune()
        if not added and not removed:
            return 0
        if len(self._cache) > CACHE_LIMIT:
            self._cache.clear()
        self._set_virtual_size(Size(self._max_width, len(index)))
        if at_end:
            self.new_lines = 0
            self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True, force=True)
        else:
            self.new_lines += added
            if removed:
                # Keep the same lines in view while old ones fall off the front.
                self.scroll_to(y=max(0, self.scroll_y - removed), animate=False, immediate=True, force=True)
        self.refresh()
        return added

    def _set_virtual_size(self, size: Size) -> None:
        """Set the scrollable size without a layout of the whole screen.

        ``virtual_size`` is a layout reactive: assigning it re-lays out the screen at
        every refresh while lines trickle in (most of a frame's cost). Both scrollbars
        are always shown here, so only they need to learn the new size.
        """
        if size == self.virtual_size:
            return
        self.set_reactive(LogView.virtual_size, size)
        if self.is_mounted:
            self._scroll_update(size)

    def _prune(self) -> int:
        """Drop index entries whose line has left its ring; returns how many."""
        index = self._index
        firsts = [ring.first for ring in self._rings]
        removed = 0
        while index and (index[0] // K) < firsts[index[0] % K]:
            index.popleft()
            removed += 1
        if len(self._rings) == 1:
            return removed  # one source: its entries are in order, stale ones only at the front
        # Merged or filtered: a stale entry of one source can sit behind live ones of
        # another. Rebuild (O(index)) only when some source's oldest entry is gone.
        if any(o is not None and o < firsts[s] for s, o in enumerate(self._oldest)):
            kept = [key for key in index if key // K >= firsts[key % K]]
            removed += len(index) - len(kept)
            index.clear()
            index.extend(kept)
            self._oldest = [None] * len(self._rings)
            missing = len(self._rings)
            for key in index:
                if self._oldest[key % K] is None:
                    self._oldest[key % K] = key // K
                    missing -= 1
                    if not missing:
                        break
        return removed

    # ------------------------------------------------------------------ rendering

    def _ensure_styles(self) -> LogFormatter:
        if self._formatter is None:
            if self._styles is None:
                self._styles = LogStyles.from_variables(self.app.theme_variables, self.rich_style)
            self._formatter = LogFormatter(self._styles, self.env_index, show_env=len(self.sources) > 1)
        return self._formatter

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        formatter = self._ensure_styles()
        base = formatter.styles.base
        row = scroll_y + y
        if row >= len(self._index):
            return Strip.blank(width, base)
        key = self._index[row]
        strip = self._cache.get(key)
        if strip is None:
            line = self._rings[key % K].get(key // K)
            if line is None:
                strip = Strip([Segment("… line dropped from the buffer", formatter.styles.dim)])
            else:
                strip = Strip(formatter.segments(line))
            self._cache[key] = strip
            if strip.cell_length > self._max_width:
                self._max_width = strip.cell_length
        return strip.crop_extend(scroll_x, scroll_x + width, base)

    def line_text(self, row: int) -> str:
        """The plain text shown on ``row`` (tests and copy)."""
        if not 0 <= row < len(self._index):
            return ""
        key = self._index[row]
        line = self._rings[key % K].get(key // K)
        if line is None:
            return ""
        return "".join(seg.text for seg in self._ensure_styles().segments(line))

    def follow(self) -> None:
        self.new_lines = 0
        self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True, force=True)

    def page(self, direction: int) -> None:
        height = max(1, self.scrollable_content_region.height - 1)
        self.scroll_to(
            y=max(0, min(self.max_scroll_y, self.scroll_y + direction * height)),
            animate=False,
            immediate=True,
            force=True,
        )
