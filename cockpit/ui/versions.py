"""Which of two version strings is older, when that can be told at all.

``packaging`` is not a dependency of cockpit, and versions here are whatever a
backend runs (``1.2.0``, ``v2.0.1-rc1``, ``2024.11.3``, ``sha-3f9c2e1``), not always
PEP 440. So the comparison is careful rather than clever: it reads dotted numbers
(an optional leading ``v``, then an optional pre-release after ``-`` or ``a``/``b``/
``rc``), and answers ``None`` - "cannot tell" - for anything else. The screen then
shows no hint instead of a wrong one.
"""

from __future__ import annotations

import re

_VERSION = re.compile(
    r"^v?(?P<release>\d+(?:\.\d+)*)"
    r"(?:[-.]?(?P<pre>(?:a|alpha|b|beta|rc|pre|dev)\.?\d*|[-][0-9A-Za-z.]+))?$",
    re.IGNORECASE,
)

Key = tuple[tuple[int, ...], int, str]


def version_key(version: str) -> Key | None:
    """A sort key for ``version``, or ``None`` when it is not a dotted-number version.

    A pre-release sorts before its release (``1.2.0-rc1`` < ``1.2.0``); trailing zeros do
    not count (``1.2`` == ``1.2.0``). Pre-release labels compare as text, numbers inside
    them as numbers (``rc2`` < ``rc10``).
    """
    match = _VERSION.match(version.strip())
    if match is None:
        return None
    release = [int(part) for part in match.group("release").split(".")]
    while len(release) > 1 and release[-1] == 0:
        release.pop()
    pre = (match.group("pre") or "").lstrip("-.").lower()
    # Zero-pad numbers inside the label so "rc10" sorts after "rc2" as text.
    padded = re.sub(r"\d+", lambda m: m.group(0).zfill(8), pre)
    return tuple(release), 0 if pre else 1, padded


def is_older(version: str, than: str) -> bool | None:
    """``True`` when ``version`` is older than ``than``, ``False`` when not, ``None`` when
    either is not a version this module can read (then nobody should be told either way)."""
    a, b = version_key(version), version_key(than)
    if a is None or b is None:
        return None
    return a < b
