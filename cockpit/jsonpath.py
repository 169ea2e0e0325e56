"""One value picked out of a JSON document by a JSON path, for checks that compare it.

Written ``$.status``, ``$.items[0].name``, ``$["key.with.dots"]`` or ``$.list[-1]``: the
root ``$``, then keys and list indexes. jsonpath-ng parses the path (the same syntax the
http backend's mappings use); wildcards, slices and filters select several values and a
check compares one, so they are refused when the plan is loaded. The walk itself is kept
here because a failed check must say which part of the answer was absent, not just "no match".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import jsonpath_ng
from jsonpath_ng import Child, Fields, Index, Root
from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")  # keys shown as .name in messages; others quoted


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
    """Read ``text`` as a path, or raise :class:`JsonPathError` saying why.

    The syntax is jsonpath-ng's (the library the http backend reads answers with), so a
    path means the same in a smoke check and in a backend's status mapping; only the
    single-valued part of it (keys and indexes) is accepted here."""
    if not text.startswith("$"):
        raise JsonPathError(f"a JSON path starts with '$' (the document), such as '$.status'; found {text!r}")
    try:
        tree = jsonpath_ng.parse(text)
    except (
        JsonPathLexerError,
        JsonPathParserError,
        Exception,
    ) as err:  # the parser raises bare Exception at the end
        raise JsonPathError(f"bad JSON path {text!r}: {str(err).strip() or type(err).__name__}") from None
    return JsonPath(text, tuple(_parts(text, tree)))


def _parts(text: str, node: object) -> list[str | int]:
    """Keys and indexes from the root down; anything that selects several values refused."""
    if isinstance(node, Root):
        return []
    if isinstance(node, Child):
        return _parts(text, node.left) + _parts(text, node.right)
    if isinstance(node, Fields) and len(node.fields) == 1 and node.fields[0] != "*":
        return [node.fields[0]]
    if isinstance(node, Index) and len(node.indices) == 1:
        return [node.indices[0]]
    raise JsonPathError(
        f"bad JSON path {text!r}: {node} picks several values (wildcards, slices, filters and '..' do);"
        ' a check compares one: name keys (.name or ["name"]) and list indexes ([n]) only'
    )
