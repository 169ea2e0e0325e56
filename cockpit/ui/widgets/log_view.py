"""A line-API view over the engine's ring buffers.

Nothing is copied into the widget: it keeps an *index* of absolute line numbers
(``number * 8 + source``) into the :class:`LogBuffer` rings, and renders only the
rows on screen, caching each rendered line by its absolute number. New lines are
indexed in one batch per refresh (``flush``), so a flood costs one repaint per
refresh however many lines arrived. Memory is bounded by the index length and the
render cache, both capped.

Follow: the view sticks to the end until the *user* scrolls up (page up, the wheel,
the scrollbar, ``n``/``N``); ``End`` (or scrolling back to the bottom) resumes it. It is
a flag, not "is the view at its end right now": a resize, the filter input opening
under the view, or a mode change moves the end, and must not silently stop the tail.
Scrolled up, the view stays on the same lines (even as old ones fall off the ring) and
counts the lines arriving below.

Wrap: long lines fold onto the next rows. The view still scrolls by *lines* (row ``y``
of the virtual size is line ``y``); while following, the rows are laid out from the
last line upwards so the newest line is always on screen.
"""

from __future__ import annotations

import contextlib
import heapq
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from rich.segment import Segment
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from cockpit.engine.logbuffer import LogBuffer
from cockpit.model import LogLine
from cockpit.ui.logformat import LogFormatter, LogStyles, highlight

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
        self._follow = True  # stick to the tail; only the user scrolling up clears it
        self._moving = 0  # >0 while the view scrolls itself (not the user)
        self.wrap = False
        self.show_time = True
        self.current: int | None = None  # index key of the match n/N moved to
        self._wrapped: tuple[tuple[object, ...], list[Strip]] | None = None
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
        self.current = None
        self._set_virtual_size(Size(0, 0))
        # Other lines (another environment, a new filter): shown from their newest, followed.
        self.flush(follow=True)
        self.refresh()  # even when the new sources hold nothing: the old lines must go

    def set_filter(self, log_filter: LogFilter | None) -> None:
        if log_filter == self.filter:
            return
        self.filter = log_filter
        self.set_sources(self.sources)  # re-index what the rings hold under the new filter

    def theme_changed(self) -> None:
        self._styles = None
        self._restyle()

    def _restyle(self) -> None:
        """Forget every rendered line (the theme, wrap or timestamps changed)."""
        self._formatter = None
        self._cache.clear()
        self._max_width = 0
        self._wrapped = None
        self.refresh()

    def set_wrap(self, wrap: bool) -> None:
        if wrap == self.wrap:
            return
        self.wrap = wrap
        with self._self_moving():
            self.scroll_to(x=0, animate=False, immediate=True, force=True)
            self._set_virtual_size(Size(0 if wrap else self._max_width, len(self._index)))
        self._restyle()
        if self._follow:
            self.follow()

    def set_show_time(self, show: bool) -> None:
        if show != self.show_time:
            self.show_time = show
            self._restyle()

    @property
    def dropped(self) -> int:
        return sum(ring.dropped for ring in self._rings)

    @property
    def line_count(self) -> int:
        return len(self._index)

    @property
    def following(self) -> bool:
        return self._follow

    # ------------------------------------------------------------------ follow

    @contextlib.contextmanager
    def _self_moving(self) -> Iterator[None]:
        """Scrolls made inside are the view's own (a flush, a resize), not the user's."""
        self._moving += 1
        try:
            yield
        finally:
            self._moving -= 1

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if not self._moving:
            # The user scrolled (wheel, scrollbar): follow only from the bottom.
            self._follow = new_value >= self.max_scroll_y
            if self._follow:
                self.new_lines = 0

    def _size_updated(self, size: Size, virtual_size: Size, container_size: Size, layout: bool = True) -> bool:
        before = (self.size, self.container_size)
        with self._self_moving():
            changed = super()._size_updated(size, virtual_size, container_size, layout)
        if self._follow and (self.size, self.container_size) != before:
            # The end moved under the view (resize, the filter box opening): stay on it.
            self._wrapped = None
            self.call_after_refresh(self._stick_to_end)
        return changed

    def _stick_to_end(self) -> None:
        if self._follow and self.scroll_y != self.max_scroll_y:
            with self._self_moving():
                self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True, force=True)

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
        at_end = self._follow if follow is None else follow
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
        with self._self_moving():
            self._set_virtual_size(Size(0 if self.wrap else self._max_width, len(index)))
            if at_end:
                self._follow = True
                self.new_lines = 0
                self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True, force=True)
            else:
                self.new_lines += added
                if removed:
                    # Keep the same lines in view while old ones fall off the front.
                    self.scroll_to(
                        y=max(0, self.scroll_y - removed), animate=False, immediate=True, force=True
                    )
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
            self._formatter = LogFormatter(
                self._styles, self.env_index, show_env=len(self.sources) > 1, show_time=self.show_time
            )
        return self._formatter

    def _strip(self, key: int) -> Strip:
        """The rendered line of index ``key``: cached, matches marked, the n/N match reversed."""
        if key == self.current:
            return self._render_key(key)  # not cached: it changes with every n/N
        strip = self._cache.get(key)
        if strip is None:
            strip = self._cache[key] = self._render_key(key)
            if strip.cell_length > self._max_width:
                self._max_width = strip.cell_length
        return strip

    def _render_key(self, key: int) -> Strip:
        formatter = self._ensure_styles()
        line = self._rings[key % K].get(key // K)
        if line is None:
            return Strip([Segment("… line dropped from the buffer", formatter.styles.dim)])
        segments = formatter.segments(line)
        if self.filter is not None:
            mark = formatter.styles.current if key == self.current else formatter.styles.match
            segments = highlight(segments, self.filter.pattern, mark)
        return Strip(segments)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        base = self._ensure_styles().styles.base
        if self.wrap:
            region = self.scrollable_content_region
            rows = self._wrapped_rows(scroll_y, region.width, region.height)
            return rows[y].extend_cell_length(width, base) if y < len(rows) else Strip.blank(width, base)
        row = scroll_y + y
        if row >= len(self._index):
            return Strip.blank(width, base)
        return self._strip(self._index[row]).crop_extend(scroll_x, scroll_x + width, base)

    def _wrapped_rows(self, top: int, width: int, height: int) -> list[Strip]:
        """The screen's rows with long lines folded: from line ``top`` down, or - while
        following - from the last line up, so the tail is on screen however lines fold.
        Laid out once per frame (render_line asks row by row)."""
        index = self._index
        tail = index[-1] if index else -1
        shape = (top, width, height, len(index), tail, self._follow, self.current)
        if self._wrapped is not None and self._wrapped[0] == shape:
            return self._wrapped[1]
        width = max(1, width)
        rows: list[Strip] = []
        if self._follow:
            row = len(index) - 1
            while row >= 0 and len(rows) < height:
                rows[:0] = self._fold(self._strip(index[row]), width)
                row -= 1
            rows = rows[-height:] if height else []
        else:
            row = top
            while row < len(index) and len(rows) < height:
                rows += self._fold(self._strip(index[row]), width)
                row += 1
            rows = rows[:height]
        self._wrapped = (shape, rows)
        return rows

    @staticmethod
    def _fold(strip: Strip, width: int) -> list[Strip]:
        length = strip.cell_length
        if length <= width:
            return [strip]
        # divide() keeps the pieces up to the last cut: the last cut is the line's end.
        return list(strip.divide([*range(width, length, width), length]))

    def line_text(self, row: int) -> str:
        """The plain text shown on ``row`` (tests and copy)."""
        if not 0 <= row < len(self._index):
            return ""
        key = self._index[row]
        line = self._rings[key % K].get(key // K)
        if line is None:
            return ""
        return "".join(seg.text for seg in self._ensure_styles().segments(line))

    def lines(self) -> Iterator[LogLine]:
        """The lines the view holds (under its filter), oldest first: what a save writes."""
        for key in list(self._index):
            line = self._rings[key % K].get(key // K)
            if line is not None:
                yield line

    def follow(self) -> None:
        self._follow = True
        self.new_lines = 0
        self.current = None
        with self._self_moving():
            self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True, force=True)
        self._wrapped = None
        self.refresh()

    def page(self, direction: int) -> None:
        height = max(1, self.scrollable_content_region.height - 1)
        target = max(0, min(int(self.max_scroll_y), int(self.scroll_y) + direction * height))
        self._scroll_by_user(target)

    def _scroll_by_user(self, target: int) -> None:
        """Scroll to row ``target`` as the user asked: follow stops unless it is the end."""
        if self._follow and target < self.max_scroll_y:
            # Where the tail was shown from, so paging up from a wrapped tail moves up.
            self._follow = False
        with self._self_moving():
            self.scroll_to(y=target, animate=False, immediate=True, force=True)
        if target >= self.max_scroll_y:
            self._follow = True
            self.new_lines = 0
        self._wrapped = None
        self.refresh()

    # ------------------------------------------------------------------ matches (n / N)

    def _match_rows(self) -> list[int]:
        if self.filter is None:
            return []
        pattern = self.filter.pattern
        return [row for row in range(len(self._index)) if pattern.search(self.line_text(row))]

    def jump(self, direction: int) -> tuple[int, int] | None:
        """Move to the next (``direction`` 1) or previous (-1) line whose shown text matches
        the filter; returns (its 1-based place among the matches, how many), or None when
        nothing matches. Starts from the match shown last, else from the screen's edge."""
        rows = self._match_rows()
        if not rows:
            return None
        height = max(1, self.scrollable_content_region.height)
        current_row = self._row_of(self.current)
        if current_row is None:
            top = self.max_scroll_y if self._follow else int(self.scroll_y)
            current_row = top - 1 if direction > 0 else top + height
        if direction > 0:
            picked = next((r for r in rows if r > current_row), rows[0])
        else:
            picked = next((r for r in reversed(rows) if r < current_row), rows[-1])
        self.current = self._index[picked]
        # A jump is the user reading: the tail must not carry the match away.
        self._follow = False
        if not int(self.scroll_y) <= picked < int(self.scroll_y) + height:
            self._scroll_by_user(max(0, min(int(self.max_scroll_y), picked - height // 2)))
            self._follow = False
        self._wrapped = None
        self.refresh()
        return rows.index(picked) + 1, len(rows)

    def _row_of(self, key: int | None) -> int | None:
        if key is None:
            return None
        with contextlib.suppress(ValueError):
            return self._index.index(key)
        return None
