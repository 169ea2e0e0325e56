"""Persistence behind one interface: the :class:`Store` the engine journals to, and
:func:`open_store`, which picks the kind (SQLite today; PostgreSQL with pairing)."""

from cockpit.engine.store.base import (
    GENESIS,
    BrokenLink,
    JournalWriteError,
    KeptLine,
    Record,
    RolloutLog,
    Store,
    chain_hash,
)
from cockpit.engine.store.factory import StoreSettings, open_store, store_settings
from cockpit.engine.store.sqlite import SQLiteStore, keep_aside

__all__ = [
    "GENESIS",
    "BrokenLink",
    "JournalWriteError",
    "KeptLine",
    "Record",
    "RolloutLog",
    "SQLiteStore",
    "Store",
    "StoreSettings",
    "chain_hash",
    "keep_aside",
    "open_store",
    "store_settings",
]
