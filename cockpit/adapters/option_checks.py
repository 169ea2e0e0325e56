"""Checks that several backends' options share (a command with placeholders, a list of
versions, a health path), written once so every backend refuses bad plans in the same
words. Each raises ``ValueError`` with what was wrong; pydantic locates it in the plan."""

from __future__ import annotations

import string
from collections.abc import Set


def check_placeholders(command: list[str], known: Set[str]) -> list[str]:
    """Every ``{name}`` in ``command`` is one of ``known``, and the braces parse."""
    for arg in command:
        try:
            fields = {name for _, name, _, _ in string.Formatter().parse(arg) if name is not None}
        except ValueError as exc:
            raise ValueError(f"bad placeholder in {arg!r}: {exc}") from None
        unknown = fields - known
        if unknown:
            raise ValueError(
                f"unknown placeholder {{{min(unknown)}}} in {arg!r}; "
                f"known: {', '.join('{' + p + '}' for p in sorted(known))}"
            )
    return command


def check_versions(versions: list[str]) -> list[str]:
    """No empty version, none listed twice."""
    seen: set[str] = set()
    for v in versions:
        if not v.strip():
            raise ValueError("a version cannot be empty")
        if v in seen:
            raise ValueError(f"version {v!r} is listed twice")
        seen.add(v)
    return versions


def check_absolute_path(path: str) -> str:
    """An HTTP path as a probe sends it: starting with ``/``."""
    if not path.startswith("/"):
        raise ValueError(f"expected a path starting with '/', found {path!r}")
    return path
