"""Names shared by the router process and the backend that drives it.

Kept apart from :mod:`.server` so importing a backend does not import the router's
server module (and the router process stays light at start)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TOKEN_ENV = "COCKPIT_ROUTER_TOKEN"  # the control token reaches the router via env, not argv (ps)
TOKEN_HEADER = "X-Cockpit-Token"
# Added to every proxied response: which track served it. On a request it asks for a
# track ("canary" or "stable") whatever the weight: how a blue-green preview is reached.
TRACK_HEADER = "x-cockpit-track"


@dataclass(frozen=True, slots=True)
class RouterTable:
    """One routing table: which upstreams serve each track, and the canary's share."""

    stable: tuple[str, ...] = ()
    canary: tuple[str, ...] = ()
    weight: int = 0  # percent of requests drawn for the canary, 0..100

    def to_json(self) -> dict[str, Any]:
        return {"stable": list(self.stable), "canary": list(self.canary), "weight": self.weight}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RouterTable:
        """The table a router reports in ``GET /state`` (what it really routes by)."""
        tracks = state.get("tracks", {})
        return cls(
            stable=tuple(u["url"] for u in tracks.get("stable", [])),
            canary=tuple(u["url"] for u in tracks.get("canary", [])),
            weight=int(state.get("weight", 0)),
        )

    def describe(self) -> str:
        return f"{len(self.stable)} stable, {len(self.canary)} canary at {self.weight} %"


@dataclass(frozen=True, slots=True)
class DrainResult:
    """The answer of ``POST /drain``: whether the given upstreams have nothing in flight."""

    drained: bool
    in_flight: dict[str, int] = field(default_factory=dict)
