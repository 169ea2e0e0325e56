"""What the engine asks of a journal store, whatever keeps the records.

The engine, the CLI and the history screen speak to :class:`Store` only; the SQLite
store (:mod:`cockpit.engine.store.sqlite`) is the one kind today, and a PostgreSQL store
(for a pair of cockpits) will be a second. Every store keeps the same promises, which
``tests/test_store.py`` checks against each kind:

* append-only: a record, once written, is never changed or removed;
* every write either lands whole or raises :class:`JournalWriteError` (never a driver's
  own error), because the engine stops moving traffic when it cannot keep a record;
* text is redacted (:func:`cockpit.secrets.redact`) before it is stored;
* records are hash-chained with :func:`chain_hash`, so :meth:`Store.verify` finds a
  rewrite and :meth:`Store.head` means the same thing in every store.

Beside the records, a store keeps each rollout's canary log lines (:class:`RolloutLog`,
:class:`KeptLine`): the evidence of an abort, which the live log rings lose within
minutes. They are bounded (the newest lines of a rollout, the newest rollouts of an
environment), redacted like everything else, and - unlike records - pruned: they are
evidence kept for a while, not the record of who did what.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Protocol, runtime_checkable

from cockpit.engine.state import Revision

# Every field of a record, in the fixed order of Record's fields and of the canonical
# content the hash chain covers.
COLUMNS = (
    "id",
    "ts",
    "user",
    "service",
    "env",
    "action",
    "reason",
    "outcome",
    "detail",
    "duration_ms",
    "phase",
    "stable_version",
    "canary_version",
    "target_version",
    "weight",
    "step",
    "revision",
)
GENESIS = "0" * 64  # the "previous hash" of the first record


class JournalWriteError(Exception):
    """A record could not be written (disk full, read-only file, lost directory). The
    message says which journal and why; callers must stop moving traffic rather than act
    without a record."""


@dataclass(frozen=True)
class BrokenLink:
    """The first place where the journal is not what was written: ``record_id`` is the
    record whose link fails (0 when the journal cannot be checked at all)."""

    record_id: int
    problem: str


@dataclass(frozen=True)
class Record:
    id: int
    ts: float
    user: str
    service: str
    env: str
    action: str
    reason: str
    outcome: str  # ok | refused | failed | started | info
    detail: str
    duration_ms: float | None
    phase: str | None
    stable_version: str | None
    canary_version: str | None
    target_version: str | None
    weight: int | None
    step: int | None
    revision: int | None

    def to_json(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class KeptLine:
    """One canary log line kept with its rollout; ``seq`` numbers the rollout's lines
    from 1 in the order they arrived (a gap means lines were dropped to stay bounded)."""

    seq: int
    ts: float
    source: str
    text: str


@dataclass(frozen=True)
class RolloutLog:
    """A rollout whose canary lines are kept: from the journal record that started it
    (``first_record``) until it ended (``ended_ts``, ``outcome`` its phase then: Healthy,
    Aborted, Degraded; both empty while it runs)."""

    id: int
    service: str
    env: str
    target_version: str
    started_ts: float
    first_record: int
    ended_ts: float | None
    outcome: str
    lines_seen: int  # canary lines the rollout produced; more than kept when bounded

    @property
    def finished(self) -> bool:
        return self.ended_ts is not None


def chain_hash(previous: str, values: tuple[object, ...]) -> str:
    """SHA-256 of the previous record's hash and this record's canonical content: every
    column in :data:`COLUMNS` order, as compact JSON (floats round-trip exactly)."""
    canonical = json.dumps(list(values), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"{previous}\n{canonical}".encode()).hexdigest()


@runtime_checkable
class Store(Protocol):
    """The journal as the engine uses it. A store opened ``read_only`` (status, history)
    answers reads and drops writes: :meth:`append` returns 0, :meth:`add_revision` does
    nothing."""

    read_only: bool

    def append(
        self,
        *,
        service: str,
        env: str,
        action: str,
        outcome: str,
        user: str,
        reason: str = "",
        detail: str = "",
        duration_ms: float | None = None,
        phase: str | None = None,
        stable_version: str | None = None,
        canary_version: str | None = None,
        target_version: str | None = None,
        weight: int | None = None,
        step: int | None = None,
        revision: int | None = None,
        ts: float | None = None,
    ) -> int:
        """Write one record linked to the last; returns its id (ids start at 1 and rise by
        one). Raises :class:`JournalWriteError` when it cannot be written."""
        ...

    def add_revision(self, service: str, env: str, revision: Revision) -> None:
        """Remember a revision of ``env`` (what rollback can return to)."""
        ...

    def revisions(self, service: str, env: str, limit: int = 10) -> list[Revision]:
        """The newest ``limit`` revisions of ``env``, oldest first."""
        ...

    def records(
        self,
        service: str | None = None,
        env: str | None = None,
        limit: int = 200,
        text: str | None = None,
        after_id: int = 0,
        before_id: int | None = None,
    ) -> list[Record]:
        """The newest ``limit`` records (oldest first), optionally filtered; ``text`` is a
        substring of the action, reason, detail, user or outcome; ids strictly between
        ``after_id`` and ``before_id`` (when given)."""
        ...

    def last_snapshot(self, service: str, env: str) -> Record | None:
        """The newest record of ``env`` that carries a phase: the state it was last left in."""
        ...

    def verify(self) -> BrokenLink | None:
        """The first broken link of the hash chain, or None when every record is as written."""
        ...

    def count(self) -> int:
        """How many records the journal holds."""
        ...

    def head(self) -> str:
        """The hash of the newest record (:data:`GENESIS` when empty)."""
        ...

    def open_rollout_log(
        self, service: str, env: str, target_version: str, first_record: int, ts: float, retain: int = 20
    ) -> int:
        """Start keeping the canary lines of a rollout of ``env`` that began with record
        ``first_record``; returns its id (0 when read-only). Only the newest ``retain``
        rollouts of ``env`` keep their lines: older ones are dropped here."""
        ...

    def keep_rollout_lines(self, log_id: int, lines: Sequence[KeptLine], keep: int) -> None:
        """Add ``lines`` (redacted before they are written) to rollout ``log_id`` in one
        transaction, then drop its oldest beyond the newest ``keep``."""
        ...

    def close_rollout_log(self, log_id: int, outcome: str, ts: float, lines_seen: int) -> None:
        """The rollout ended in ``outcome`` (its phase) at ``ts``, after ``lines_seen`` lines."""
        ...

    def rollout_log_for(self, service: str, env: str, record_id: int) -> RolloutLog | None:
        """The rollout record ``record_id`` of ``env`` belongs to: the newest one that started
        at or before it, or None."""
        ...

    def rollout_log_lines(self, log_id: int) -> list[KeptLine]:
        """The kept lines of rollout ``log_id``, in the order they arrived."""
        ...

    def close(self) -> None:
        """Release the store; nothing may be called on it afterwards."""
        ...
