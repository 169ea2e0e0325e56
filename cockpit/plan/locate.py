"""Find the line of a field path in TOML text, for error messages.

``tomllib`` keeps no positions, so this scans the text once: table headers,
arrays of tables (which get an index), ``key = value`` lines and the elements of
multi-line arrays of inline tables. It is a best-effort map for messages only;
the plan itself is always parsed by ``tomllib``.
"""

from __future__ import annotations

import functools
import re

Loc = tuple[str | int, ...]

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(
    r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*="""
)
_INLINE_KEY = re.compile(r"""[{,]\s*([A-Za-z0-9_-]+|"[^"]*")\s*=""")


def _split_key(key: str) -> list[str]:
    parts = re.findall(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""", key)
    return [p.strip("\"'") for p in parts]


@functools.lru_cache(maxsize=8)
def _line_map(text: str) -> dict[Loc, int]:
    lines: dict[Loc, int] = {}
    array_index: dict[tuple[str, ...], int] = {}  # table-array key path -> current index
    table: Loc = ()
    open_array: Loc | None = None  # a multi-line array value being read
    element = 0

    def resolve(keys: list[str]) -> Loc:
        out: list[str | int] = []
        for n in range(1, len(keys) + 1):
            out.append(keys[n - 1])
            prefix = tuple(keys[:n])
            if prefix in array_index and n < len(keys):
                out.append(array_index[prefix])
        return tuple(out)

    def record(loc: Loc, lineno: int) -> None:
        lines.setdefault(loc, lineno)

    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0] if '"' not in raw and "'" not in raw else raw
        if open_array is not None:
            stripped = line.strip()
            if stripped.startswith("{"):
                record(open_array + (element,), lineno)
                for key in _INLINE_KEY.findall(stripped):
                    record(open_array + (element, key.strip("\"'")), lineno)
                element += 1
            if stripped.startswith("]") or stripped.endswith("]"):
                open_array = None
            continue
        header = _HEADER.match(line)
        if header:
            keys = _split_key(header.group(2))
            if header.group(1) == "[[":
                key = tuple(keys)
                array_index[key] = array_index.get(key, -1) + 1
                # Nested arrays restart when their parent element changes.
                for other in list(array_index):
                    if len(other) > len(key) and other[: len(key)] == key:
                        del array_index[other]
                table = resolve(keys) + (array_index[key],)
            else:
                table = resolve(keys)
            # A header also stands for the tables it opens implicitly: [strategy.canary]
            # is where "strategy" is first written, [[analysis.checks]] where "analysis.checks" is.
            for end in range(1, len(table) + 1):
                record(table[:end], lineno)
            continue
        key_match = _KEY.match(line)
        if key_match:
            loc = table + tuple(_split_key(key_match.group(1)))
            record(loc, lineno)
            rest = line[key_match.end() :].strip()
            if rest.startswith("{"):
                for key in _INLINE_KEY.findall(rest):
                    record(loc + (key.strip("\"'"),), lineno)
            elif rest.startswith("["):
                inner = rest[1:].strip()
                element = 0
                for n, chunk in enumerate(re.findall(r"\{[^{}]*\}", inner)):
                    record(loc + (n,), lineno)
                    for key in _INLINE_KEY.findall(chunk):
                        record(loc + (n, key.strip("\"'")), lineno)
                if not inner.rstrip().endswith("]"):
                    open_array = loc
    return lines


def line_of(text: str, loc: Loc) -> int | None:
    """The line where ``loc`` (or its nearest written ancestor) stands, 1-based."""
    found = _line_map(text)
    for end in range(len(loc), 0, -1):
        line = found.get(tuple(loc[:end]))
        if line is not None:
            return line
    return None
