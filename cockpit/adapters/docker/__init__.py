"""The docker backend: each version as containers of a local image on the host network,
behind the cockpit's weighted router (:mod:`cockpit.adapters.router`).

Modules: :mod:`.options` (the plan's options, no SDK), :mod:`.client` (the daemon
connection and its errors), :mod:`.labels` and :mod:`.containers` (what the cockpit
marks and runs), :mod:`.images` (local images only, retention), :mod:`.health`,
:mod:`.events`, :mod:`.logs`, :mod:`.tasks` (one-off release task containers),
:mod:`.state` (the run-dir file), :mod:`.backend`.

The names are loaded on first use, so the options (imported by the plan loader) do not
import the docker SDK."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cockpit.adapters.docker.backend import DockerBackend
    from cockpit.adapters.docker.options import DockerOptions

__all__ = ["DockerBackend", "DockerOptions"]


def __getattr__(name: str) -> Any:
    if name == "DockerBackend":
        from cockpit.adapters.docker.backend import DockerBackend

        return DockerBackend
    if name == "DockerOptions":
        from cockpit.adapters.docker.options import DockerOptions

        return DockerOptions
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
