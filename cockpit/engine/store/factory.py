"""Which store keeps the journal: chosen here, once, for the whole session.

SQLite is the only kind today. A PostgreSQL store arrives with pairing (two cockpits
sharing one journal); it will be one more ``kind`` here and nothing else in the engine
changes, because everything else speaks :class:`~cockpit.engine.store.base.Store`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from cockpit import paths
from cockpit.engine.store.base import Store
from cockpit.engine.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from cockpit.plan.models import Plan

StoreKind = Literal["sqlite"]
KINDS: tuple[StoreKind, ...] = ("sqlite",)


@dataclass(frozen=True)
class StoreSettings:
    """Where the journal lives. ``path`` (SQLite) defaults to the journal in the state dir."""

    kind: StoreKind = "sqlite"
    path: Path | None = None


def store_settings(source: Plan | StoreSettings | None) -> StoreSettings:
    """The settings ``source`` asks for. A plan names no store yet (pairing will add one),
    so a plan, like None, gets the default: SQLite in the state dir."""
    return source if isinstance(source, StoreSettings) else StoreSettings()


def open_store(source: Plan | StoreSettings | None, state_dir: Path, *, read_only: bool = False) -> Store:
    """Open the journal store for ``source`` under ``state_dir``. ``read_only`` (status,
    history) never writes. Raises :class:`~cockpit.engine.store.base.JournalWriteError`
    when a store opened for writing cannot be written."""
    settings = store_settings(source)
    if settings.kind == "sqlite":
        return SQLiteStore(settings.path or paths.journal_path(state_dir), read_only=read_only)
    raise ValueError(f"unknown store kind {settings.kind!r} (known: {', '.join(KINDS)})")
