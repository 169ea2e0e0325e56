"""The header at 80 columns still says which release is under way (issue 8, item 3):
the service description and the word "driving" give way, the release does not."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Static

from cockpit.ui.app import CockpitApp
from cockpit.ui.widgets.header import CockpitHeader
from tests.test_ui_snapshots import rollout
from tests.ui_fixtures import make_app, make_session


def header_text(app: CockpitApp) -> str:
    header = app.screen.query_one(CockpitHeader)
    shown = [s for s in header.query("#header-row > Static") if s.display and s.region.width]
    return " ".join(str(s.render()).strip() for s in sorted(shown, key=lambda s: s.region.x))


@pytest.mark.asyncio
@pytest.mark.parametrize("width", [80, 200])
async def test_the_release_in_progress_is_never_cut(tmp_path: Path, width: int) -> None:
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=(width, 24)) as pilot:
        await rollout(pilot, "1.1.0", promote=False)  # dev paused at 20 %
        await pilot.pause(0.3)
        release = app.screen.query_one("#header-release", Static)
        text = str(release.render()).strip()
        assert text == "release dev: 1.1.0", text
        # The whole text fits in the space the release got, and the clock still shows.
        assert release.region.width >= len(text), (release.region, text)
        assert app.screen.query_one("#header-clock", Static).region.width > 0
        shown = header_text(app)
        if width < CockpitHeader.NARROW_WIDTH:
            assert "driving" not in shown and "Demo web shop" not in shown, shown
        else:
            assert "driving" in shown and "Demo web shop" in shown, shown
