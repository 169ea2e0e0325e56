"""The journal under its old name: every action with who, when, why, outcome and duration.

The journal now lives behind :class:`cockpit.engine.store.Store` (see
:mod:`cockpit.engine.store`); ``Journal`` is the SQLite store, and the names below stay
importable from here so code written against this module keeps working. New code
imports from :mod:`cockpit.engine.store` and :mod:`cockpit.identity`.
"""

from __future__ import annotations

from cockpit.engine.store.base import (
    COLUMNS,
    GENESIS,
    BrokenLink,
    JournalWriteError,
    Record,
    Store,
    chain_hash,
)
from cockpit.engine.store.sqlite import PRIVATE_DIR, PRIVATE_FILE, SQLiteStore, keep_aside, make_private
from cockpit.engine.store.sqlite_schema import MIGRATIONS, SCHEMA_VERSION, migrate, schema_version
from cockpit.identity import current_user

Journal = SQLiteStore

__all__ = [
    "COLUMNS",
    "GENESIS",
    "MIGRATIONS",
    "PRIVATE_DIR",
    "PRIVATE_FILE",
    "SCHEMA_VERSION",
    "BrokenLink",
    "Journal",
    "JournalWriteError",
    "Record",
    "Store",
    "chain_hash",
    "current_user",
    "keep_aside",
    "make_private",
    "migrate",
    "schema_version",
]
