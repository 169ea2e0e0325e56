"""The local backend: replicas of each version as real processes on 127.0.0.1 behind a
weighted router (:mod:`cockpit.adapters.router`).

The names are loaded on first use, so importing a submodule (the options, the runtime
file) does not pay for the backend and aiohttp."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cockpit.adapters.local.backend import LocalBackend
    from cockpit.adapters.local.options import LocalOptions

__all__ = ["LocalBackend", "LocalOptions"]


def __getattr__(name: str) -> Any:
    if name == "LocalBackend":
        from cockpit.adapters.local.backend import LocalBackend

        return LocalBackend
    if name == "LocalOptions":
        from cockpit.adapters.local.options import LocalOptions

        return LocalOptions
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
