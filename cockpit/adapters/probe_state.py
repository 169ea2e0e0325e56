"""One health probe's result folded into a workload's state, the same way for every
backend that probes its own workloads (local replicas, Docker containers): consecutive
failures up to a limit take it out of the routing table, one answer puts it back."""

from __future__ import annotations

from enum import Enum
from typing import Protocol


class ProbeState(Protocol):
    healthy: bool
    failures: int  # consecutive failed probes
    problem: str  # what is wrong now, "" if nothing (shown in status)


class ProbeChange(Enum):
    BACK = "back"  # it answers again: back in the routing table
    OUT = "out"  # it failed ``limit`` probes in a row: out of the routing table


def record_probe(target: ProbeState, error: str | None, limit: int, label: str) -> ProbeChange | None:
    """Fold one probe (``error`` None: it answered) into ``target``; ``label`` names it in
    the problem ("replica #1"). Returns what changed for routing, None if nothing did."""
    if error is None:
        target.failures = 0
        if target.healthy:
            return None
        target.healthy, target.problem = True, ""
        return ProbeChange.BACK
    target.failures += 1
    if not target.healthy or target.failures < limit:
        return None
    target.healthy = False
    target.problem = f"{label} failed {target.failures} health probes: {error}"
    return ProbeChange.OUT
