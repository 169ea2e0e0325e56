"""The journal in the order people read it, for the history screen and ``cockpit history``.

Newest first - but an action comes before its consequences. A command is journaled as
``started`` before its work and ``ok``/``failed`` after it, and what the work did in
between ("aborted: traffic on stable, canary removed") is journaled by the engine, so a
plain newest-first list shows the consequence above the command that caused it. Here the
records of one command (its ``started`` record, everything of that environment up to its
end record, and the engine's records that follow at once in the phase it left) form one
*entry*; entries are listed newest first, and inside an entry the command comes first.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from cockpit.engine.store.base import Record, RolloutLog

ENDS = frozenset({"ok", "failed", "refused"})
# A record this long after its rollout ended is not about that rollout any more.
ROLLOUT_GRACE_S = 120.0
# Escape sequences and control characters a process wrote must not reach a terminal.
CONTROL = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|[\x00-\x08\x0b-\x1f\x7f]")
ENGINE_OUTCOMES = frozenset({"info"})  # records the engine writes about what happened


@dataclass(frozen=True)
class Row:
    record: Record
    consequence: bool  # written because of the command above it in the same entry


def reading_order(records: list[Record]) -> list[Row]:
    """``records`` (oldest first, as the store returns them) as rows: entries newest first,
    each command before its consequences."""
    entries: list[list[Row]] = []
    open_command: dict[str, list[Row]] = {}  # env -> the entry of its command under way
    last_end: dict[str, tuple[list[Row], str | None]] = {}  # env -> ended entry, its phase
    for record in records:
        env = record.env
        entry = open_command.get(env)
        if entry is not None and record.outcome == "started":
            del open_command[env]  # a command that never ended (the cockpit was killed): closed here
            entry = None
        if entry is not None:
            entry.append(Row(record, True))
            if record.action == entry[0].record.action and record.outcome in ENDS:
                del open_command[env]
                last_end[env] = (entry, record.phase)
            continue
        if record.outcome == "started":
            entry = [Row(record, False)]
            entries.append(entry)
            open_command[env] = entry
            last_end.pop(env, None)
            continue
        ended = last_end.get(env)
        if ended is not None and record.outcome in ENGINE_OUTCOMES and record.phase == ended[1]:
            # The platform's own report of what the command just did (the mirror driver).
            ended[0].append(Row(record, True))
            continue
        last_end.pop(env, None)
        entries.append([Row(record, False)])
    return [row for entry in reversed(entries) for row in entry]


def details(record: Record) -> list[tuple[str, str]]:
    """Every field of ``record`` as (label, text), for a person to read."""
    when = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(record.ts))
    rows = [
        ("record", f"#{record.id}"),
        ("when", when),
        ("who", record.user),
        ("where", f"{record.service} / {record.env}"),
        ("command", record.action),
        ("result", record.outcome),
        ("reason", record.reason or "(none given)"),
        ("detail", record.detail or "(none)"),
    ]
    if record.duration_ms is not None:
        rows.append(("took", f"{record.duration_ms:.0f} ms"))
    state = [
        f"phase {record.phase}" if record.phase else "",
        f"stable {record.stable_version}" if record.stable_version else "",
        f"canary {record.canary_version}" if record.canary_version else "",
        f"target {record.target_version}" if record.target_version else "",
        f"weight {record.weight}%" if record.weight is not None else "",
        f"step {record.step + 1}" if record.step is not None else "",
        f"revision {record.revision}" if record.revision is not None else "",
    ]
    rows.append(("state after", ", ".join(part for part in state if part) or "(not recorded)"))
    return rows


def belongs(record: Record, kept: RolloutLog | None) -> bool:
    """Whether ``kept`` (the rollout started last at or before ``record``) is about it:
    not when the record came well after that rollout ended."""
    return kept is not None and (kept.ended_ts is None or record.ts <= kept.ended_ts + ROLLOUT_GRACE_S)


def describe_rollout_log(kept: RolloutLog, lines: int) -> str:
    """One line about a rollout's kept canary log."""
    started = time.strftime("%H:%M:%S", time.localtime(kept.started_ts))
    if kept.ended_ts is None:
        span = f"started {started}, still running"
    else:
        span = f"{started} - {time.strftime('%H:%M:%S', time.localtime(kept.ended_ts))}, {kept.outcome}"
    dropped = kept.lines_seen - lines
    tail = f" of {kept.lines_seen:,} seen (bounded: the newest and the end)" if dropped > 0 else ""
    return f"rollout of {kept.target_version} ({span}): {lines:,} canary lines kept{tail}"
