"""``--log FILE``: the cockpit's :mod:`logging` records written to a private file.

Without ``--log`` the records go nowhere (the screen owns the terminal, and headless
output is for CI to read). With it, every record at ``--log-level`` or above is appended
to FILE, created 0600 (a log tells how releases went and where things run), and each
formatted record - message, arguments and traceback alike - passes through
:func:`cockpit.secrets.redact`, so a secret value the cockpit resolved never reaches it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
DEFAULT_LEVEL = "INFO"
# Chatty libraries: one record per HTTP request to each router and metrics endpoint.
# They stay at WARNING unless DEBUG is asked for.
NOISY = ("httpx", "httpcore", "asyncio", "markdown_it")


class LogFileError(Exception):
    """FILE cannot be used as a log; the message says why."""


class RedactingFormatter(logging.Formatter):
    """Formats as usual, then masks every secret value resolved so far."""

    def format(self, record: logging.LogRecord) -> str:
        from cockpit.secrets import redact

        return redact(super().format(record))


def open_private(path: Path) -> int:
    """A descriptor appending to ``path``, created 0600; an existing file is made 0600
    too. A symlink is refused: it could point the log at another user's file."""
    flags = (
        os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    )
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as err:
        raise LogFileError(f"cannot write the log {path}: {err.strerror or err}") from None
    try:
        os.fchmod(fd, 0o600)
    except OSError as err:
        os.close(fd)
        raise LogFileError(f"cannot make the log {path} private (0600): {err.strerror or err}") from None
    return fd


def configure(path: str | Path, level: str = DEFAULT_LEVEL) -> logging.Handler:
    """Send the root logger's records at ``level`` and above to ``path``; returns the handler."""
    if level.upper() not in LEVELS:
        raise LogFileError(f"unknown log level {level!r} (known: {', '.join(LEVELS)})")
    numeric = getattr(logging, level.upper())
    stream = os.fdopen(open_private(Path(path)), "a", encoding="utf-8", buffering=1)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter("%(asctime)s %(process)d %(levelname)-7s %(name)s: %(message)s"))
    handler.setLevel(numeric)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in NOISY:
        logging.getLogger(name).setLevel(numeric if numeric <= logging.DEBUG else logging.WARNING)
    return handler
