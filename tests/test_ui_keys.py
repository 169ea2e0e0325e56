"""The key table itself: one key, one action.

Several people add keys to ``cockpit.ui.keys.ACTIONS`` at once (the weight picker and the
log pane's wrap toggle both once took ``w``); a key bound twice runs whichever binding
Textual sees first and silently hides the other, so the table is checked as a whole.
"""

from __future__ import annotations

from collections import defaultdict

from cockpit.ui.keys import ACTIONS


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
