"""A small JSON path: one value picked out of a JSON document, for checks that compare it.

Written ``$.status``, ``$.items[0].name``, ``$["key.with.dots"]`` or ``$.list[-1]``: the
root ``$``, then keys (``.name`` or a quoted ``["name"]``) and list indexes (``[n]``).
Wildcards, slices and filters select several values; a check compares one, so they are
refused when the plan is loaded, with the position of what could not be read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_INDEX = re.compile(r"\[(-?\d+)\]")
_QUOTED = re.compile(r"""\[\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')\s*\]""")
_ESCAPE = re.compile(r"\\(.)")


class JsonPathError(ValueError):
    """The path cannot be read; the message says where and why."""


class Missing(LookupError):
    """The document has no value at the path; the message says which part is absent."""


@dataclass(frozen=True, slots=True)
class JsonPath:
    text: str
    parts: tuple[str | int, ...]

    def find(self, document: Any) -> Any:
        """The value at this path in ``document``; :class:`Missing` when there is none."""
        value = document
        walked = "$"
        for part in self.parts:
            if isinstance(part, int):
                if not isinstance(value, list):
                    raise Missing(f"{walked} is {_kind(value)}, not a list")
                if not -len(value) <= part < len(value):
                    raise Missing(
                        f"{walked} has {len(value)} item{'s' if len(value) != 1 else ''}, no [{part}]"
                    )
                value = value[part]
                walked += f"[{part}]"
            else:
                if not isinstance(value, dict):
                    raise Missing(f"{walked} is {_kind(value)}, not an object")
                if part not in value:
                    raise Missing(f"{walked} has no key {part!r}")
                value = value[part]
                walked += f".{part}" if _NAME.fullmatch(part) else f"[{part!r}]"
        return value

    def __str__(self) -> str:
        return self.text


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def parse(text: str) -> JsonPath:
    """Read ``text`` as a path, or raise :class:`JsonPathError` naming the position."""
    if not text.startswith("$"):
        raise JsonPathError(f"a JSON path starts with '$' (the document), such as '$.status'; found {text!r}")
    parts: list[str | int] = []
    pos = 1
    while pos < len(text):
        char = text[pos]
        if char == ".":
            name = _NAME.match(text, pos + 1)
            if name is None:
                raise JsonPathError(_at(text, pos + 1, "expected a key name after '.'"))
            parts.append(name.group(0))
            pos = name.end()
        elif char == "[":
            if index := _INDEX.match(text, pos):
                parts.append(int(index.group(1)))
                pos = index.end()
            elif quoted := _QUOTED.match(text, pos):
                raw = quoted.group(1) if quoted.group(1) is not None else quoted.group(2)
                parts.append(_ESCAPE.sub(r"\1", raw))
                pos = quoted.end()
            else:
                raise JsonPathError(
                    _at(
                        text,
                        pos,
                        'expected [n] (a list index) or ["key"]; wildcards, slices and'
                        " filters pick several values and a check compares one",
                    )
                )
        else:
            raise JsonPathError(_at(text, pos, "expected '.key' or '[...]'"))
    return JsonPath(text, tuple(parts))


def _at(text: str, pos: int, why: str) -> str:
    rest = text[pos:] or "the end"
    return f"bad JSON path {text!r} at character {pos + 1} ({rest!r}): {why}"
