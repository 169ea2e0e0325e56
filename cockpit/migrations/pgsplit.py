"""Splitting a PostgreSQL script into statements: a statement without a transaction (such as
``CREATE INDEX CONCURRENTLY``) must be sent alone, and each statement gets its own timeout
and its place ("statement 2/3") in an error."""

from __future__ import annotations

import re

_DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$")


def split_statements(sql: str) -> list[str]:
    """Statements of ``sql`` at top-level semicolons: not inside quotes, ``$tag$`` bodies
    (functions, triggers) or comments. Empty and comment-only pieces are dropped."""
    out: list[str] = []
    start = i = 0
    n = len(sql)
    while i < n:
        ch = sql[i]
        if ch in "'\"":
            end = sql.find(ch, i + 1)
            while end != -1 and end + 1 < n and sql[end + 1] == ch:  # '' inside a literal
                end = sql.find(ch, end + 2)
            i = n if end == -1 else end + 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end == -1 else end + 1
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end == -1 else end + 2
        elif (
            ch == "$"
            and (m := _DOLLAR.match(sql, i))
            and not (i > 0 and (sql[i - 1].isalnum() or sql[i - 1] == "_"))
        ):
            end = sql.find(m.group(0), m.end())
            i = n if end == -1 else end + len(m.group(0))
        elif ch == ";":
            _add(out, sql[start:i])
            start = i = i + 1
        else:
            i += 1
    _add(out, sql[start:])
    return out


def _add(out: list[str], piece: str) -> None:
    text = piece.strip()
    bare = re.sub(r"--[^\n]*|/\*.*?\*/", "", text, flags=re.S).strip()
    if bare:
        out.append(text)
