"""The ``http`` backend: a deploy platform with an HTTP control API, mapped in the plan.

Modules: :mod:`.options` (the plan's options; no httpx, the plan loader imports it),
:mod:`.transport` (requests, TLS, timeouts, retries, errors), :mod:`.mapping` (answers
read through JSON paths), :mod:`.backend` (the cockpit walks the steps), :mod:`.platform`
(the platform walks them; the cockpit mirrors), :mod:`.logs` (poll, NDJSON, SSE).

The backend is loaded on first use, so importing the options does not import httpx."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cockpit.adapters.http.backend import HttpBackend
    from cockpit.adapters.http.options import HttpOptions

__all__ = ["HttpBackend", "HttpOptions"]


def __getattr__(name: str) -> Any:
    if name == "HttpBackend":
        from cockpit.adapters.http.backend import HttpBackend

        return HttpBackend
    if name == "HttpOptions":
        from cockpit.adapters.http.options import HttpOptions

        return HttpOptions
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
