"""The platform's JSON answers read through the plan's JSON paths.

A path that finds nothing means "not there" (a track that does not run); a value of the
wrong type is an error naming the path and what was found, never a guess.
"""

from __future__ import annotations

import functools
from typing import Any

from jsonpath_ng import JSONPath
from jsonpath_ng import parse as parse_path

from cockpit.adapters.base import BackendError, BackendStatus, TrackStatus
from cockpit.adapters.http.options import RevisionsMap, StatusMap
from cockpit.adapters.http.transport import trimmed


class MappingError(BackendError):
    """An answer does not have the shape the plan's JSON paths describe."""


@functools.lru_cache(maxsize=256)
def compiled(path: str) -> JSONPath:
    return parse_path(path)


def find_all(data: Any, path: str) -> list[Any]:
    return [m.value for m in compiled(path).find(data)]


def find(data: Any, path: str | None) -> Any:
    """The one value at ``path`` (``None`` when it finds nothing or null)."""
    if path is None:
        return None
    found = find_all(data, path)
    if len(found) > 1:
        raise MappingError(f"JSON path {path} found {len(found)} values where one is expected")
    return found[0] if found else None


def text(data: Any, path: str | None, what: str) -> str | None:
    value = find(data, path)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise MappingError(f"{what} ({path}) should be text, found {trimmed(repr(value))}")
    return str(value)


def integer(data: Any, path: str | None, what: str) -> int | None:
    value = find(data, path)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise MappingError(f"{what} ({path}) should be a whole number, found {trimmed(repr(value))}")
    return int(value)


def _track(data: Any, version: str, desired: str, ready: str, name: str) -> TrackStatus | None:
    running = text(data, version, f"the {name} version")
    if running is None:
        return None
    wanted = integer(data, desired, f"the {name} replicas desired")
    up = integer(data, ready, f"the {name} replicas ready")
    if wanted is None or up is None:
        missing = desired if wanted is None else ready
        raise MappingError(f"{name} {running} runs but {missing} finds no replica count in the status answer")
    problem = "" if up >= wanted else f"{up}/{wanted} replicas ready"
    return TrackStatus(running, wanted, up, problem=problem)


def backend_status(data: Any, m: StatusMap, url: str | None) -> BackendStatus:
    weight = integer(data, m.weight, "the canary weight")
    if weight is None:
        weight = 0  # no canary, no weight field: all traffic on stable
    if not 0 <= weight <= 100:
        raise MappingError(f"the canary weight ({m.weight}) should be 0..100, found {weight}")
    return BackendStatus(
        stable=_track(data, m.stable_version, m.stable_desired, m.stable_ready, "stable"),
        canary=_track(data, m.canary_version, m.canary_desired, m.canary_ready, "canary"),
        weight=weight,
        url=url,
        detail=text(data, m.detail, "the detail") or "",
    )


def version_list(data: Any, path: str) -> list[str]:
    found = find_all(data, path)
    bad = [v for v in found if not isinstance(v, str)]
    if bad:
        raise MappingError(f"the versions ({path}) should be text, found {trimmed(repr(bad[0]))}")
    return list(dict.fromkeys(found))


def revision_list(data: Any, m: RevisionsMap) -> list[tuple[int, str]]:
    """(number, version) of each revision the platform keeps, oldest first."""
    out: list[tuple[int, str]] = []
    for item in find_all(data, m.items):
        number = integer(item, m.number, "a revision number")
        version = text(item, m.version, "a revision's version")
        if number is None or version is None:
            raise MappingError(f"a revision ({m.items}) lacks {m.number} or {m.version}: {trimmed(repr(item))}")
        out.append((number, version))
    return sorted(out)
