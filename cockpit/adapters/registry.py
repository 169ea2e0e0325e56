"""Find adapters by name through entry points, so third parties can add backends.

Listing reads only package metadata (nothing is imported); an adapter's module is
imported when a plan actually uses it. The built-in adapters are also listed here
so a source checkout that was never ``pip install``-ed still works.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

BACKENDS_GROUP = "cockpit.backends"
METRICS_GROUP = "cockpit.metrics_sources"

_BUILTIN: dict[str, dict[str, str]] = {
    BACKENDS_GROUP: {"local": "cockpit.adapters.local:LocalBackend"},
    METRICS_GROUP: {"scrape": "cockpit.adapters.scrape:ScrapeMetricsSource"},
}


class UnknownAdapter(LookupError):
    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        super().__init__(f"unknown {kind} {name!r} (known: {', '.join(known) or 'none'})")
        self.name = name
        self.known = known


@dataclass(frozen=True)
class AdapterRef:
    name: str
    target: str  # "module:attribute"

    def load(self) -> Any:
        module_name, _, attribute = self.target.partition(":")
        return getattr(importlib.import_module(module_name), attribute)


def _refs(group: str) -> dict[str, AdapterRef]:
    refs = {name: AdapterRef(name, target) for name, target in _BUILTIN[group].items()}
    for ep in entry_points(group=group):
        refs[ep.name] = AdapterRef(ep.name, ep.value)
    return refs


def backend_names() -> list[str]:
    return sorted(_refs(BACKENDS_GROUP))


def metrics_source_names() -> list[str]:
    return sorted(_refs(METRICS_GROUP))


def backend_class(name: str) -> Any:
    """The DeployBackend subclass registered as ``name`` (it has an ``Options`` model)."""
    refs = _refs(BACKENDS_GROUP)
    if name not in refs:
        raise UnknownAdapter("backend adapter", name, sorted(refs))
    return refs[name].load()


def metrics_source_class(name: str) -> Any:
    """The MetricsSource subclass registered as ``name`` (it has an ``Options`` model)."""
    refs = _refs(METRICS_GROUP)
    if name not in refs:
        raise UnknownAdapter("metrics source", name, sorted(refs))
    return refs[name].load()


def register(group: str, name: str, target: str) -> None:
    """Register an adapter at run time (tests, embedding); entry points are the normal way."""
    _BUILTIN.setdefault(group, {})[name] = target
