"""The log pane at 3 a.m.: follow that survives the filter box and resizes, matches
marked and walked with n/N, wrap and timestamp toggles, and a private save to a file.
Driven through Textual's Pilot against a real Session on the in-memory backend."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from rich.segment import Segment
from textual.pilot import Pilot

from cockpit.adapters.memory import MemoryBackend
from cockpit.model import Track
from cockpit.secrets import MASK, resolve
from cockpit.ui.app import CockpitApp
from cockpit.ui.widgets.log_pane import LogPane
from cockpit.ui.widgets.log_view import LogView
from tests.ui_fixtures import SIZE, make_app, make_session, started, wait_for

pytestmark = pytest.mark.asyncio


def dev(app: CockpitApp) -> MemoryBackend:
    backend = app.session.controller("dev").backend
    assert isinstance(backend, MemoryBackend)
    return backend


def request(i: int) -> str:
    status = 500 if i % 10 == 0 else 200
    return f'{{"level": "info", "msg": "request", "path": "/api/orders/{i}", "status": {status}}}'


async def ready(pilot: Pilot, app: CockpitApp, lines: int = 300) -> tuple[LogPane, LogView]:
    await wait_for(pilot, lambda: started(app), what="session start")
    for i in range(lines):
        dev(app).emit(request(i))
    pane = app.screen.query_one(LogPane)
    await wait_for(pilot, lambda: pane.views[0].line_count >= lines, what="lines indexed")
    return pane, pane.views[0]


def at_end(view: LogView) -> bool:
    return view.scroll_y == view.max_scroll_y


def shown(view: LogView) -> list[str]:
    """The text of every row on screen, as drawn."""
    return ["".join(seg.text for seg in view.render_line(y)) for y in range(view.scrollable_content_region.height)]


async def test_follow_survives_the_filter_box_and_resizes(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        pane, view = await ready(pilot, app)
        height = view.size.height
        await pilot.press("slash")  # the filter box opens under the view: it shrinks
        await wait_for(pilot, lambda: view.size.height < height, what="view shrunk by the filter box")
        await pilot.pause()
        assert view.following and at_end(view)
        dev(app).emit("arrived while typing")
        await wait_for(pilot, lambda: any("arrived while typing" in row for row in shown(view)), what="tail")
        await pilot.press("escape")
        await wait_for(pilot, lambda: view.size.height == height, what="filter box closed")
        dev(app).emit("after the filter closed")
        await wait_for(pilot, lambda: any("after the filter closed" in r for r in shown(view)), what="tail")
        assert view.following and "following" in str(pane.query_one("#log-status").render())

        await pilot.resize_terminal(120, 30)
        await wait_for(pilot, lambda: view.size.height < height - 5, what="resized")
        await pilot.pause()
        assert view.following and at_end(view)
        dev(app).emit("after the resize")
        await wait_for(pilot, lambda: any("after the resize" in r for r in shown(view)), what="tail")

        # Only the user scrolling up stops it; a resize then leaves it paused, End resumes.
        await pilot.press("pageup")
        await pilot.pause()
        assert not view.following
        await pilot.resize_terminal(*SIZE)
        await pilot.pause(0.1)
        assert not view.following
        await pilot.press("end")
        await pilot.pause()
        assert view.following and at_end(view)


async def test_filter_matches_are_marked_and_n_N_walk_them(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        pane, view = await ready(pilot, app)
        await pilot.press("slash", *"orders/1", "enter")
        await wait_for(pilot, lambda: view.line_count == 111, what="filter applied")  # 1, 10-19, 100-199
        await pilot.pause()
        styles = view._ensure_styles().styles
        marked = [
            seg
            for y in range(view.scrollable_content_region.height)
            for seg in view.render_line(y)
            if isinstance(seg, Segment) and seg.style is not None and seg.style.underline
        ]
        assert marked and all(seg.text == "orders/1" for seg in marked)
        assert all(seg.style is not None and seg.style.bgcolor == styles.match.bgcolor for seg in marked)

        await pilot.press("n")
        await pilot.pause()
        assert pane.match is not None and pane.match[1] == 111
        first = pane.match[0]
        assert not view.following  # jumping is reading: the tail no longer carries the view
        assert "match" in str(pane.query_one("#log-status").render())
        current = view.current
        assert current is not None
        await pilot.press("n")
        await pilot.pause()
        assert pane.match == (first % 111 + 1, 111) and view.current != current
        await pilot.press("N")
        await pilot.pause()
        assert pane.match == (first, 111) and view.current == current
        row = view._index.index(current) - int(view.scroll_y)
        assert 0 <= row < view.size.height  # the match is on screen...
        reversed_segments = [s for s in view.render_line(row) if s.style is not None and s.style.reverse]
        assert [s.text for s in reversed_segments] == ["orders/1"]  # ...and shown as the current one

        # The first match, then N wraps round to the last.
        while pane.match is not None and pane.match[0] != 1:
            await pilot.press("N")
        await pilot.press("N")
        await pilot.pause()
        assert pane.match == (111, 111)
        await pilot.press("end")
        await pilot.pause()
        assert view.following and view.current is None


async def test_n_without_a_filter_says_what_to_do(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        _pane, view = await ready(pilot, app, lines=20)
        await pilot.press("n")
        await pilot.pause()
        assert any("no filter" in n.message for n in app._notifications)
        assert view.following and view.current is None


async def test_wrap_folds_long_lines_and_keeps_the_tail_on_screen(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        pane, view = await ready(pilot, app, lines=50)
        long = "begin " + "x" * 400 + " THE-END"
        dev(app).emit(long)
        await wait_for(pilot, lambda: view.line_count == 51, what="long line")
        await pilot.pause()
        assert not any("THE-END" in row for row in shown(view))  # cut at the edge
        await pilot.press("W")
        await pilot.pause()
        rows = shown(view)
        assert pane.wrap and view.wrap and "wrap" in str(pane.query_one("#log-status").render())
        assert "THE-END" in rows[-1] or "THE-END" in "".join(rows[-3:])
        folded = [row for row in rows if "x" * 40 in row]
        assert len(folded) >= 3  # one line, over several rows
        assert view.following
        dev(app).emit("short tail line")
        await wait_for(pilot, lambda: "short tail line" in shown(view)[-1], what="tail on the last row")
        await pilot.press("W")
        await pilot.pause()
        assert not view.wrap and not any("THE-END" in row for row in shown(view))


async def test_timestamps_toggle(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        pane, view = await ready(pilot, app, lines=5)
        clock = r"\d\d:\d\d:\d\d "
        import re

        assert re.match(clock, view.line_text(view.line_count - 1))
        await pilot.press("T")
        await pilot.pause()
        assert not pane.show_time and not re.match(clock, view.line_text(view.line_count - 1))
        assert not any(re.match(clock, row) for row in shown(view) if row.strip())
        assert "no timestamps" in str(pane.query_one("#log-status").render())
        await pilot.press("T")
        await pilot.pause()
        assert re.match(clock, view.line_text(view.line_count - 1))


async def test_save_writes_the_filtered_lines_to_a_private_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COCKPIT_TEST_TOKEN", "tok-5ecret-value")
    secret = resolve("env:COCKPIT_TEST_TOKEN")
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        _pane, view = await ready(pilot, app, lines=100)
        dev(app).emit(f"ERROR login failed for token {secret}", Track.CANARY)
        await pilot.press("slash", *"/status.: 500|ERROR/", "enter")
        await wait_for(pilot, lambda: view.line_count == 11, what="filter applied")
        await pilot.press("S")
        await wait_for(pilot, lambda: any("saved to" in n.message for n in app._notifications), what="saved")
        note = next(n.message for n in app._notifications if "saved to" in n.message)
        saved = list((app.session.state_dir / "saved-logs").iterdir())
        assert len(saved) == 1 and str(saved[0]) in note and saved[0].name.startswith("dev-")
        assert stat.S_IMODE(os.stat(saved[0]).st_mode) == 0o600
        text = saved[0].read_text()
        body = text.splitlines()[1:]
        assert len(body) == 11 and sum('"status": 500' in line for line in body) == 10
        assert secret not in text and MASK in text
        assert "filter /status.: 500|ERROR/" in text.splitlines()[0]

        await pilot.press("S")  # a second save never overwrites the first
        await wait_for(pilot, lambda: len(list(saved[0].parent.iterdir())) == 2, what="second file")


async def test_save_failure_is_reported_not_fatal(tmp_path: Path) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app, lines=3)
        (app.session.state_dir / "saved-logs").write_text("a file where the directory should be")
        await pilot.press("S")
        await wait_for(pilot, lambda: any("logs not saved" in n.message for n in app._notifications), what="err")
        assert app.is_running
