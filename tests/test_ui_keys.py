"""The key table itself: one key, one action.

Several people add keys to ``cockpit.ui.keys.ACTIONS`` at once (the weight picker and the
log pane's wrap toggle both once took ``w``); a key bound twice runs whichever binding
Textual sees first and silently hides the other, so the table is checked as a whole.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
from textual.widgets import Input
from textual.widgets._footer import FooterKey

from cockpit.ui.keys import ACTIONS
from cockpit.ui.widgets.key_footer import KeyFooter
from tests.ui_fixtures import make_app, make_session, started, wait_for


def test_no_key_is_bound_to_two_actions() -> None:
    owners: dict[str, list[str]] = defaultdict(list)
    for spec in ACTIONS:
        for key in spec.key.split(","):
            owners[key.strip()].append(spec.id)
    shared = {key: ids for key, ids in owners.items() if len(ids) > 1}
    assert not shared, f"keys bound to several actions: {shared}"


def test_binding_ids_are_unique() -> None:
    ids = [spec.id for spec in ACTIONS]
    assert len(ids) == len(set(ids))


@pytest.mark.asyncio
async def test_the_footer_offers_no_letter_keys_while_the_log_filter_is_typed_in(tmp_path: Path) -> None:
    """Issue 8, item 14: typing ``/error`` then ``p`` types a p; a footer that still says
    "p promote" while the filter has the focus lies about what the key does."""
    app = make_app(make_session(tmp_path))
    async with app.run_test(size=(200, 50)) as pilot:
        await wait_for(pilot, lambda: started(app) and bool(app.screen.query(KeyFooter)), what="start")

        def footer_keys() -> set[str]:
            return {k.key for k in app.screen.query_one(KeyFooter).query(FooterKey)}

        await wait_for(pilot, lambda: {"p", "a", "space"} <= footer_keys(), what="the action keys")
        await pilot.press("slash")
        await wait_for(pilot, lambda: isinstance(app.focused, Input), what="the filter focused")
        await wait_for(pilot, lambda: not ({"p", "a", "space", "plus", "slash"} & footer_keys()), what="letters gone")
        await pilot.press("p")  # typed into the filter, not a promote
        assert app.screen.query_one("#log-filter", Input).value == "p"
        await pilot.press("escape")
        await wait_for(pilot, lambda: {"p", "a", "space"} <= footer_keys(), what="the action keys back")
