"""The command palette, made to act on what was typed, never on an older result.

Textual's palette gathers results in a worker per query (``_gather_commands``), and
keeps the *previous* query's list on screen until the new one has results (it avoids a
flash). Enter selects whatever is highlighted in that list. So: type "full", clear it,
type "abo" and press Enter quickly, and the highlighted "Full promote" of the old list
runs - analysis skipped on production. The same with an empty query's full list.

Here Enter only selects from a list that is the settled result of the query as it is
now. Pressed earlier, it is held and, once the current query's results are in, selects
that query's top result; a query changed after the Enter drops it (the person is still
typing). The rest of the palette is Textual's.
"""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.command import CommandInput, CommandPalette
from textual.widgets import Button, Input
from textual.worker import get_current_worker

_GATHER = "--textual-command-palette-gather-commands"  # CommandPalette._GATHER_COMMANDS_GROUP


class CockpitPalette(CommandPalette):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._listed_for: str | None = None  # the query whose results are fully listed
        self._enter_for: str | None = None  # an Enter held until this query's results are in

    @property
    def query_now(self) -> str:
        """The query as Textual searches it (stripped)."""
        return self.query_one(CommandInput).value.strip()

    @work(exclusive=True, group=_GATHER)
    async def _gather_commands(self, search_value: str) -> None:
        self._listed_for = None  # the list on screen is stale from here on
        await CommandPalette._gather_commands.__wrapped__(self, search_value)  # type: ignore[attr-defined]
        if get_current_worker().is_cancelled:
            return
        self._listed_for = search_value
        if self._enter_for is not None:
            held, self._enter_for = self._enter_for, None
            if held == search_value == self.query_now:
                super()._select_or_command()

    # Textual dispatches an @on handler as the function of the class that declared it, so
    # an override must declare its own; prevent_default keeps the base class's from also
    # running on the same message.
    @on(Input.Submitted)
    @on(Button.Pressed)
    def _select_or_command(self, event: Input.Submitted | Button.Pressed | None = None) -> None:
        if event is not None:
            event.stop()
            event.prevent_default()
        if self._selected_command is not None and not self._list_visible:
            # A result was just chosen from a current list (its text now fills the input):
            # Textual runs it from here.
            super()._select_or_command()
            return
        query = self.query_now
        if self._listed_for != query:
            # The list on screen belongs to an older query (or is still filling): hold the
            # Enter for this query's own results.
            self._enter_for = query
            return
        self._enter_for = None
        super()._select_or_command()

    @on(Input.Changed)
    def _input(self, event: Input.Changed) -> None:
        event.prevent_default()
        # A newer query: an Enter held for an older one must not fire on its results.
        if self._enter_for is not None and self._enter_for != event.value.strip():
            self._enter_for = None
        super()._input(event)
