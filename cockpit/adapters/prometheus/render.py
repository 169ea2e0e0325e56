"""Filling a query template's ``{placeholders}``.

PromQL has braces of its own (``metric{label="x"}``), so ``str.format`` cannot be used:
only ``{name}`` made of a lowercase identifier is a placeholder, and a label matcher
(which always holds ``=`` or ``~``) never looks like one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from cockpit.adapters.base import BackendConfigError

PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


def duration(seconds: float) -> str:
    """``seconds`` as a PromQL duration: whole seconds as ``30s``, else milliseconds."""
    if seconds <= 0:
        raise ValueError(f"a query window must be positive, found {seconds:g}s")
    millis = round(seconds * 1000)
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


def placeholders_in(template: str) -> set[str]:
    return set(PLACEHOLDER.findall(template))


def render(template: str, values: Mapping[str, str]) -> str:
    """``template`` with every placeholder replaced; an unknown one is a config error
    naming it and the ones that exist (a typo must not reach Prometheus as a literal)."""
    unknown = sorted(placeholders_in(template) - set(values))
    if unknown:
        names = ", ".join("{" + n + "}" for n in unknown)
        known = ", ".join("{" + n + "}" for n in sorted(values))
        raise BackendConfigError(f"unknown placeholder {names} in query {template!r} (known: {known})")
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], template)
