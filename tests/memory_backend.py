"""The in-memory backend now ships as ``cockpit.adapters.memory``; this module keeps the
old import path working and, as before, registers the "memory" adapters on import."""

from __future__ import annotations

from cockpit.adapters.memory import DEFAULT_PROFILES, MemoryBackend, MemoryMetrics, Profile, register

__all__ = ["DEFAULT_PROFILES", "MemoryBackend", "MemoryMetrics", "Profile", "register"]

register()
